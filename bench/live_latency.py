"""Live analysis cost and delay through real ptys: two feet x 500 Hz, as `insole record` runs.

The simulator streams both feet in real time on pseudo-terminals (a separate process, so its
CPU is not counted); an in-process :class:`insole.io.recorder.Recorder` reads them with the
production serial source, writes the session and feeds every chunk to the streaming core, with a
LiveFeed turning decided steps into events (flags evaluated after every step). Per run:

- analysis CPU: thread CPU time spent in the analysis per second of stream, in % of one core;
- recorder CPU: the whole process (reading, writing, analysis) per second of wall time;
- delay toe-off → update: from the arrival of the chunk that carried a step's first sample
  after toe-off to the moment its step and flag events were made (p50, p99). It includes the
  detector's look-ahead (``merge_gap_ms`` = 40 ms of samples after toe-off must be seen) and the
  device's packets (firmware ``BATCH_MS``: 19 sample sets = 38 ms at 500 Hz, sent when the last
  is taken; the simulator cuts them the same way), so it is about 38 ms plus the host's part;
- packet wait: from the arrival of the chunk with the toe-off sample to the arrival of the
  chunk that completed the look-ahead (the look-ahead as the packets deliver it);
- delay decision → update: from the arrival of the chunk that completed that look-ahead to the
  events (the host's own processing);
- the load average (1 min) at the end of each run: the machine is shared.
- both over the steps after the warm-up: a foot's first 2 s of steps wait for its first swing
  window to be complete (the swing baseline, issue 9), reported apart (count, largest delay).

Prints JSON lines (one per run, then the medians) for bench/run.py.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from insole.analysis.document import LiveFeed
from insole.io.recorder import Recorder

ROOT = Path(__file__).resolve().parent.parent
# the first swing window (SwingTracker, 2 s): its steps are released when it is complete
WARM_UP_S = 2.0


def one_run(seconds: float, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        sim = subprocess.Popen([sys.executable, "-m", "insole.cli", "sim", "easy-run", "--side", "both",
                                "--pty", "--seed", str(seed), "--duration-s", str(seconds + 30)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        try:
            ports = {}
            while len(ports) < 2:
                line = sim.stdout.readline()
                if not line:
                    raise RuntimeError(sim.stderr.read())
                parts = line.split()
                if len(parts) == 2 and parts[1].startswith("/dev/"):
                    ports[parts[0]] = parts[1]
            events = {"step": 0, "flags": 0}
            to_s: dict[str, list[float]] = {}  # each foot's steps' toe-off, in event order

            def on_event(kind, side, payload):
                events[kind] += 1
                if kind == "step":
                    to_s.setdefault(side, []).append(payload["to_s"])

            rec = Recorder([f"serial://{p}" for p in ports.values()], Path(tmp) / "s", seconds,
                           live=LiveFeed(on_event))
            r0 = resource.getrusage(resource.RUSAGE_SELF)
            t0 = time.monotonic()
            res = rec.run()
            wall = time.monotonic() - t0
            r1 = resource.getrusage(resource.RUSAGE_SELF)
        finally:
            if sim.poll() is None:
                sim.terminate()
            sim.communicate(timeout=20)
    workers = res["workers"]
    lat = np.array([x for w in workers for x in w.latency_s]) * 1e3
    # the steps of a foot's first swing window (2 s) wait for it to be complete (the swing
    # baseline of its rows; docs/analysis.md, Streaming): the warm-up, reported apart
    warm = np.array([t < WARM_UP_S for w in workers for t in to_s.get(w.side, [])[:len(w.latency_s)]])
    if len(warm) != len(lat):
        raise RuntimeError(f"{len(warm)} step events for {len(lat)} latencies")
    steady = lat[~warm]
    cpu = sum(w.analysis_cpu_s for w in workers)
    proc_cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    return {"stream_s": round(wall, 1), "steps": int(events["step"]),
            "analysis_cpu_pct": round(100 * cpu / wall, 2),
            "recorder_cpu_pct": round(100 * proc_cpu / wall, 2),
            "toe_off_to_update_ms_p50": round(float(np.percentile(steady[:, 0], 50)), 1),
            "toe_off_to_update_ms_p99": round(float(np.percentile(steady[:, 0], 99)), 1),
            "toe_off_to_update_ms_max": round(float(steady[:, 0].max()), 1),
            "decision_to_update_ms_p50": round(float(np.percentile(steady[:, 1], 50)), 2),
            "decision_to_update_ms_p99": round(float(np.percentile(steady[:, 1], 99)), 2),
            "packet_wait_ms_p50": round(float(np.percentile(steady[:, 0] - steady[:, 1], 50)), 1),
            "packet_wait_ms_p99": round(float(np.percentile(steady[:, 0] - steady[:, 1], 99)), 1),
            "warm_up_steps": int(warm.sum()),
            "warm_up_toe_off_to_update_ms_max": round(float(lat[warm, 0].max()), 1) if warm.any() else None,
            "analysis_faults": [w.analysis_fault for w in workers if w.analysis_fault],
            "load_avg_1m": round(os.getloadavg()[0], 2)}


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    results = []
    for k in range(runs):
        r = one_run(seconds, seed=k + 1)
        results.append(r)
        print(json.dumps(r), flush=True)
    med = {key: float(np.median([r[key] for r in results])) for key in results[0]
           if isinstance(results[0][key], (int, float))}
    print(json.dumps({"median_of_runs": runs, **med}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
