"""The live pipeline keeps bounded state: 12 simulated minutes through the recorder and the
streaming core (as ``insole record`` runs them), sampled every 2 minutes. Counts of what is
retained, not RSS or wall clock; ``bench/live_memory.py`` is the 4-hour run with RSS and PSS.
After a 4-minute warm-up nothing retained may grow with the steps (before the step table went to
disk, the swing medians' counts and the latency ring: this failed by about 3 items a step).
"""

from __future__ import annotations

import importlib.util

import pytest
from helpers import ROOT

from insole.analysis.core import StepFile, read_step_file
from insole.analysis.document import LiveFeed
from insole.analysis.stream import SYNC_MAX_BINS
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
                asm = p.decoder.assembler
                # the file first: the reader thread decides steps while this samples, so the steps
                # counted next are never fewer than the rows on disk
                table_rows = len(read_step_file(tmp_path / "s" / "source0.steps")["ic_idx"])
                samples.append({"min": core.rows / RATE_HZ / 60, **pipeline_state([w]),
                                "buffer_rows": len(core._total),
                                "table_rows": table_rows,
                                "sync_b": asm._sync.nbytes,
                                "grids_b": core.flag_state.nbytes + core.activity.nbytes,
                                "arrivals": len(w._arrivals),
                                "live": retained(live)})
                next_rows += 2 * 60 * RATE_HZ
    finally:
        rec.close()
    assert w.analysis_fault is None
    assert len(samples) >= 5, samples
    assert events.count("step") > MINUTES * 80  # about 85 steps a minute a foot
    warm = [s for s in samples if s["min"] >= 4]
    first, last = warm[0], warm[-1]
    assert last["steps"] - first["steps"] > 500
    for s in warm:
        # the undecided samples: at most 10 s without a quiet stretch, plus a block of 65 s
        assert s["buffer_rows"] <= (10 + 65) * RATE_HZ
        # the steps are on disk (source0.steps/) but for a fixed buffer of the last ones
        assert s["table_mb"] * 1e6 <= StepFile.FLUSH_ROWS * 250
        assert 0 <= s["steps"] - s["table_rows"] <= StepFile.FLUSH_ROWS + 8  # a few more steps may come between the two reads
    # Nothing else the pipeline keeps grows with the steps: not the Python containers (no
    # per-step or per-window object: the swing baseline's medians are counts of distinct values,
    # the latency ring a fixed array, the live feed's rolling medians in files; the worker's
    # ring of chunk arrivals fills to its 512 and is counted apart) ...
    assert max(s["arrivals"] for s in warm) <= 512
    assert (last["other_items"] - last["arrivals"]) - (first["other_items"] - first["arrivals"]) < 50, \
        (first, last)
    # ... nor the arrays (the clock sync's bins too: two arrays of fixed size, SyncBins, 32 kB;
    # before, one minimum per 0.5 s of device time, counted apart) ...
    assert all(s["sync_b"] == SYNC_MAX_BINS * 16 for s in samples), samples
    # the undecided rows and the chunk in flight make them vary by up to about 40 kB; a per-step
    # array of 100 bytes would add 70 kB over these 700 steps. The flags' grids are counted
    # apart: a block (4-16 kB) is made when a value falls further out than any before, fewer
    # and fewer as the run goes on (tests/test_flag_state.py: 40 000 steps)
    def arrays_b(s):
        return s["other_mb"] * 1e6 - s["grids_b"]
    assert max(arrays_b(s) for s in warm) - arrays_b(first) < 64_000, warm
    assert last["grids_b"] - first["grids_b"] < 160_000, warm  # 64 kB in this run: four 16 kB blocks
    # closed, the files hold every step the live feed printed
    assert len(read_step_file(tmp_path / "s" / "source0.steps")["ic_idx"]) == events.count("step")
    live_b, live_items = last["live"]
    assert live_b < 10_000 and live_items < 100, last["live"]
