"""How the live pipeline's cost of deciding a step grows with the run (docs/latency.md).

One foot of the simulator's ``easy-run`` is fed packet by packet, in process, through what
``insole record`` runs for each source: a :class:`FootPipeline` with the step table on disk
(:class:`StepFile`) and a :class:`LiveFeed` making the step and flag events. For the packets
that decide a step it prints the CPU-bound wall time of that ``feed`` call (p50, p99) in the
first, middle and last tenth of the run: the flags are evaluated over every step so far, so
this grows with the run.

    python bench/live_step_cost.py [--minutes 60] [--seed 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from insole import sim
from insole.analysis.core import StepFile
from insole.analysis.document import FootPipeline, LiveFeed
from insole.sim.device import capture_bytes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args()
    foot = sim.simulate("easy-run", "left", a.minutes * 60.0, seed=a.seed)
    frames = [f for f in capture_bytes(foot).split(b"\x00") if f]
    events: list[str] = []
    rec = []
    with tempfile.TemporaryDirectory() as tmp:
        live = LiveFeed(lambda kind, side, payload: events.append(kind))
        pipe = FootPipeline("left", "serial", on_steps=live.on_steps,
                            step_table=lambda core: StepFile(core, Path(tmp) / "left.steps"))
        for i, fr in enumerate(frames):
            n0 = len(events)
            t = time.perf_counter()
            pipe.feed(fr + b"\x00")
            if len(events) > n0:
                rec.append((i / len(frames), (time.perf_counter() - t) * 1e3))
        pipe.finish()
    r = np.array(rec)
    for start in (0.0, 0.45, 0.9):
        sel = r[(r[:, 0] >= start) & (r[:, 0] < start + 0.1), 1]
        print(f"minutes {start * a.minutes:5.1f}-{(start + 0.1) * a.minutes:5.1f}: {len(sel)} packets "
              f"that decide a step, p50 {np.median(sel):.2f} ms, p99 {np.percentile(sel, 99):.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
