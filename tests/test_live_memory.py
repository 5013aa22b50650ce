"""The live pipeline keeps bounded state: 12 simulated minutes through the recorder and the
streaming core (as ``insole record`` runs them), sampled every 2 minutes. Counts of what is
retained, not RSS or wall clock; ``bench/live_memory.py`` is the 4-hour run with RSS and PSS.
"""

from __future__ import annotations

import importlib.util

import pytest
from helpers import ROOT

from insole.analysis.document import LiveFeed
from insole.io.recorder import Recorder

_spec = importlib.util.spec_from_file_location("live_memory", ROOT / "bench" / "live_memory.py")
live_memory = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(live_memory)
pipeline_state, retained = live_memory.pipeline_state, live_memory.retained

pytestmark = pytest.mark.live  # a reader thread: make test-repeat

MINUTES = 12
RATE_HZ = 500


def test_twelve_minutes_keep_bounded_state(tmp_path):
    events = []
    live = LiveFeed(lambda kind, side, payload: events.append(kind))
    rec = Recorder([f"sim://easy-run?side=left&seed=3&duration_s={MINUTES * 60}&realtime=0"],
                   tmp_path / "s", live=live)
    samples = []
    rec.start()
    try:
        w = rec.workers[0]
        next_rows = 2 * 60 * RATE_HZ
        while w.is_alive():
            rec.stop.wait(0.05)
            p = w.pipeline
            if p is not None and p.decoder.assembler._row_next >= next_rows and p.core is not None:
                core = p.core
                samples.append({"min": core.rows / RATE_HZ / 60, **pipeline_state([w]),
                                "buffer_rows": len(core._total),
                                "core_bytes": retained(core)[0],
                                "live": retained(live)})
                next_rows += 2 * 60 * RATE_HZ
    finally:
        rec.close()
    assert w.analysis_fault is None
    assert len(samples) >= 5, samples
    assert events.count("step") > MINUTES * 80  # about 85 steps a minute a foot
    warm = [s for s in samples if s["min"] >= 4]
    first, last = warm[0], warm[-1]
    minutes = last["min"] - first["min"]
    for s in warm:
        # the undecided samples: at most 10 s without a quiet stretch, plus a block of 65 s
        assert s["buffer_rows"] <= (10 + 65) * RATE_HZ
        # the step table: ~250 bytes a step, its capacity at most doubled
        assert s["table_mb"] * 1e6 <= 2 * 400 * max(s["steps"], 256)
    # everything else grows only by small per-window histories: the clock sync's minima (16 B
    # per 0.5 s bin, capacity doubling), the swing baseline's window medians (3 floats per 2 s),
    # the drift rules' window medians: well under 20 kB per simulated minute (1.2 MB an hour)
    growth_b = (last["other_mb"] - first["other_mb"]) * 1e6
    assert growth_b / minutes < 20_000, (first, last)
    # Python objects: the swing baseline's window medians (4 per 2 s window: 120 a minute)
    # and the recorder's latency ring (one per step, at most 10 000); a step's own results
    # live in the table's arrays, so a per-step dict or list kept anywhere (~20 objects a step)
    # would show here
    steps_per_min = (last["steps"] - first["steps"]) / minutes
    items_per_min = (last["other_items"] - first["other_items"]) / minutes
    assert items_per_min < 150 + 2 * steps_per_min, (first, last)
    live_b, live_items = last["live"]
    assert live_b < 1_000_000 and live_items < 200
