"""What the clock sync's fixed memory costs on long runs: bounded bins against the unbounded ones.

The assembler keeps at most 2048 clock-sync minima (``SyncBins``): past 1024 s of device time
the 0.5 s bins become 1 s, past 2048 s 2 s, then 4 s (68 min), 8 s (2.3 h), 16 s (4.6 h); the
fit's windows are whole bins, so a run of 2 hours is fitted with 8 s windows and one of 4 hours
with 8 s windows too, where the unbounded store (one minimum per 0.5 s, as before) gave 5 s.

Each trial is a two-foot run of ``--hours`` with BLE-like arrival times, made exactly as
``bench/ble_clock.py`` makes them (offsets to ±2 s, drifts to ±100 ppm, the extremes in trial 0;
connection events, missed events, stalls, host latency and spikes). Each foot's packets go
through the production path (``FootAssembler.add_raw``, the ledger's ``clock_*``); the
unbounded store is the same ``SyncBins`` with room for every 0.5 s bin, fitted by the same
``clock_estimate``. Printed per run length: the largest differences bounded - unbounded in
offset, drift and residual over all feet, the largest difference of a sample's mapped host time
over the run, and the left/right error (as ``bench/ble_clock.py`` measures it) of both.

    python bench/clock_long.py [--hours 2 4] [--trials 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

from insole import protocol as P
from insole.analysis.stream import SYNC_BIN_S, FootAssembler, SyncBins, clock_estimate

# bench/ble_clock.py: the BLE arrival model and the packet format
_spec = importlib.util.spec_from_file_location("ble_clock", Path(__file__).resolve().parent / "ble_clock.py")
ble_clock = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ble_clock)

BATCH = 5000  # packets per add_raw call


def one_foot(rng: np.random.Generator, duration_s: float, offset_s: float, drift_ppm: float,
             interval_ms: float, start_true_s: float) -> dict:
    period_us = int(1e6 / ble_clock.RATE_HZ)
    sets = ble_clock.SETS
    n = int(duration_s / (sets * period_us * 1e-6))
    last_dev = (np.arange(n) * sets * period_us + (sets - 1) * period_us) * 1e-6
    scale = 1.0 + drift_ppm * 1e-6  # device seconds per true second
    host = ble_clock.deliver(start_true_s + last_dev / scale + ble_clock.READY_MS / 1000.0, rng,
                             interval_ms)
    clock0_us = int((start_true_s + offset_s) * scale * 1e6)
    samples = np.zeros((sets, ble_clock.CHANNELS), np.uint16)
    asm = FootAssembler("long")
    for a in range(0, n, BATCH):
        b = min(a + BATCH, n)
        raws = [P.encode(P.Data("left", k & 0xFFFF, (clock0_us + k * sets * period_us) & 0xFFFFFFFF,
                                period_us, samples)) for k in range(a, b)]
        if a == 0:  # the first packet one by one: the batched path needs the format known
            asm.add(P.decode(raws[0]), float(host[0]))
            raws, a = raws[1:], 1
        asm.add_raw(raws, host[a:b].tolist())
    new = asm.ledger()
    unbounded = SyncBins(SYNC_BIN_S, 2 * int(np.ceil(duration_s / SYNC_BIN_S / 2)) + 2)
    unbounded.add(last_dev, host)
    dev, diff = unbounded.points()
    assert unbounded.bin_s == SYNC_BIN_S
    old = clock_estimate(np.stack([dev, diff + dev], axis=1), bin_s=SYNC_BIN_S)
    return {"new": new, "old": old, "bin_s": asm._sync.bin_s, "scale": scale, "start": start_true_s}


def trial(seed: int, duration_s: float) -> dict:
    rng = np.random.default_rng([seed, int(duration_s)])
    feet = []
    for _ in range(2):
        offset, drift, interval_ms, start = ble_clock.foot_params(rng, seed)
        feet.append(one_foot(rng, duration_s, offset, drift, interval_ms, start))
    grid_true = np.linspace(0.6, duration_s - 0.6, 20000)
    err = {"new": [], "old": []}
    map_diff_ms = []
    for f in feet:
        dev = (grid_true - f["start"]) * f["scale"]  # the device second of each true instant
        mapped = {}
        for k in ("new", "old"):
            q = f[k]
            mapped[k] = dev * (1.0 + q["clock_drift_ppm"] * 1e-6) + q["clock_offset_s"]
            err[k].append(mapped[k] - grid_true)
        map_diff_ms.append(np.max(np.abs(mapped["new"] - mapped["old"])) * 1e3)
    return {"feet": feet, "map_diff_ms": max(map_diff_ms),
            "lr_ms": {k: (v[0] - v[1]) * 1e3 for k, v in err.items()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, nargs="+", default=[2.0, 4.0])
    ap.add_argument("--trials", type=int, default=3)
    args = ap.parse_args()
    for hours in args.hours:
        t = time.perf_counter()
        runs = [trial(s, hours * 3600.0) for s in range(args.trials)]
        feet = [f for r in runs for f in r["feet"]]

        def worst(key, scale=1.0):
            return max(abs(f["new"][key] - f["old"][key]) * scale for f in feet)
        lr = {k: np.concatenate([r["lr_ms"][k] for r in runs]) for k in ("new", "old")}
        print(f"{hours:g} h, {args.trials} two-foot trials, bins of {feet[0]['bin_s']:g} s (unbounded: "
              f"{SYNC_BIN_S:g} s), windows used {min(f['new']['clock_windows_used'] for f in feet)}-"
              f"{max(f['new']['clock_windows_used'] for f in feet)} (unbounded "
              f"{min(f['old']['clock_windows_used'] for f in feet)}-"
              f"{max(f['old']['clock_windows_used'] for f in feet)})")
        same = sum(all(f["new"][k] == f["old"][k] for k in f["old"]) for f in feet)
        print(f"  bit-identical estimates: {same} of {len(feet)} feet")
        print(f"  bounded - unbounded, worst foot: offset {worst('clock_offset_s', 1e3):.3f} ms, "
              f"drift {worst('clock_drift_ppm'):.4f} ppm, residual {worst('clock_residual_ms'):.3f} ms; "
              f"mapped sample time {max(r['map_diff_ms'] for r in runs):.3f} ms at most")
        for k, name in (("new", "bounded"), ("old", "unbounded")):
            a = np.abs(lr[k])
            print(f"  |left - right| {name:9s}: median {np.median(a):.2f} ms, p99 "
                  f"{np.percentile(a, 99):.2f} ms, max {a.max():.2f} ms")
        print(f"  [{time.perf_counter() - t:.0f} s]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
