"""`make bench`: how well two feet share one time base when their packets come over BLE.

Each trial simulates a left and a right insole for 60 s: each device clock has its own offset
(uniform in ±2 s) and drift (uniform in ±100 ppm, the extremes included in every tenth trial)
against the host clock. A DATA packet (19 sample sets at 500 Hz, the firmware's 38 ms BATCH_MS: one every 38 ms) is ready
0.2 ms after its last sample; BLE delivers it at a connection event (interval drawn from 7.5,
15, 30 and 50 ms per foot, random phase), at most 4 notifications per event; 5 % of events are
missed (retransmission: the queue waits for the next), and a 150-600 ms interference stall
starts at 0.5 % of events, so notifications arrive in bursts. The host stack adds 0.3 ms plus an
exponential delay (mean 1 ms) to each, and 1 % of them a scheduling spike of 5-20 ms.

The host times go through the production path (``FootAssembler`` -> ``clock_estimate``), and
every sample's device time is mapped onto the host clock with the estimated offset and drift.
The figure that matters is the left/right error: (mapped - true) of the left foot minus that of
the right at the same instant, over the whole minute; a common latency cancels, a foot-specific
one does not. Printed: its median and p99 over all instants of all trials (aim: p99 <= 5 ms).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from insole import protocol as P
from insole.analysis.stream import FootAssembler
from insole.sim.device import batch_size

RATE_HZ = 500
SETS = batch_size(5)  # the firmware's packets: 38 ms of sets, at most a 247-byte ATT MTU's
CHANNELS = 5
DURATION_S = 60.0
INTERVALS_MS = (7.5, 15.0, 30.0, 50.0)
PER_EVENT = 4
MISSED_EVENT_P = 0.05
STALL_P = 0.005
STALL_MS = (150.0, 600.0)
HOST_BASE_MS = 0.3
HOST_EXP_MS = 1.0
SPIKE_P = 0.01
SPIKE_MS = (5.0, 20.0)
READY_MS = 0.2


def deliver(ready_s: np.ndarray, rng: np.random.Generator, interval_ms: float) -> np.ndarray:
    """Host receive times of packets ready at ``ready_s`` (true seconds), BLE-like."""
    ci = interval_ms / 1000.0
    t = rng.uniform(0, ci) + ready_s[0] - ci
    out = np.empty_like(ready_s)
    i = 0
    n = len(ready_s)
    while i < n:
        t += ci
        if rng.random() < STALL_P:
            t += rng.uniform(*STALL_MS) / 1000.0
            continue
        if rng.random() < MISSED_EVENT_P:
            continue
        k = 0
        while i < n and k < PER_EVENT and ready_s[i] <= t:
            out[i] = t
            i += 1
            k += 1
    lat = HOST_BASE_MS + rng.exponential(HOST_EXP_MS, n)
    spikes = rng.random(n) < SPIKE_P
    lat[spikes] += rng.uniform(*SPIKE_MS, spikes.sum())
    return out + lat / 1000.0


def one_foot(rng: np.random.Generator, offset_s: float, drift_ppm: float, interval_ms: float,
             start_true_s: float):
    """Returns (mapping function device-s -> host-s, the true time of device second 0)."""
    period_s = 1.0 / RATE_HZ
    n_pkts = int(DURATION_S / (SETS * period_s))
    # device time (s since its first sample) of each packet's first and last sample
    first_dev = np.arange(n_pkts) * SETS * period_s
    last_dev = first_dev + (SETS - 1) * period_s
    scale = 1.0 + drift_ppm * 1e-6  # device seconds per true second
    true_of = lambda d: start_true_s + d / scale  # noqa: E731
    host = deliver(true_of(last_dev) + READY_MS / 1000.0, rng, interval_ms)
    clock0_us = int((start_true_s + offset_s) * scale * 1e6) & 0xFFFFFFFF
    asm = FootAssembler("bench")
    samples = np.zeros((SETS, CHANNELS), np.uint16)
    for k in range(n_pkts):
        t0 = (clock0_us + int(round(first_dev[k] * 1e6))) & 0xFFFFFFFF
        asm.add(P.Data("left", k & 0xFFFF, t0, int(period_s * 1e6), samples), float(host[k]))
    q = asm.finish().quality
    a, b = 1.0 + q["clock_drift_ppm"] * 1e-6, q["clock_offset_s"]
    return (lambda d: d * a + b), true_of


def foot_params(rng: np.random.Generator, seed: int) -> tuple[float, float, float, float]:
    """One foot's (clock offset s, drift ppm, connection interval ms, start s): every tenth
    trial at the extremes."""
    offset = rng.uniform(-2.0, 2.0)
    drift = rng.uniform(-100.0, 100.0)
    if seed % 10 == 0:
        drift = rng.choice([-100.0, 100.0])
        offset = rng.choice([-2.0, 2.0])
    start = rng.uniform(0.0, 0.5)  # the feet start streaming at different instants
    return offset, drift, rng.choice(INTERVALS_MS), start


def trial(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    errs = []
    for _ in range(2):
        offset, drift, interval_ms, start = foot_params(rng, seed)
        errs.append((one_foot(rng, offset, drift, interval_ms, start), start))
    # compare the two feet at the same true instants, over the minute both cover
    grid_true = np.linspace(0.6, DURATION_S - 0.6, 2000)
    diffs = []
    for (mapping, true_of), start in errs:
        # device second of each grid instant: invert true_of (linear)
        d0, d1 = 0.0, 1.0
        t0, t1 = true_of(d0), true_of(d1)
        dev = (grid_true - t0) / (t1 - t0)
        diffs.append(mapping(dev) - grid_true)
    return (diffs[0] - diffs[1]) * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=60)
    args = ap.parse_args()
    t = time.perf_counter()
    all_err = np.concatenate([trial(s) for s in range(args.trials)])
    per_trial = all_err.reshape(args.trials, -1)
    worst = np.max(np.abs(per_trial), axis=1)
    print(f"BLE clock: left/right sample-time error after {DURATION_S:.0f} s, {args.trials} "
          "trials (offsets to ±2 s, drifts to ±100 ppm, connection intervals 7.5-50 ms, bursts)")
    print(f"  |left - right| error: median {np.median(np.abs(all_err)):.2f} ms, "
          f"p99 {np.percentile(np.abs(all_err), 99):.2f} ms, worst trial {worst.max():.2f} ms "
          f"(aim: p99 <= 5 ms)  [{time.perf_counter() - t:.1f} s]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
