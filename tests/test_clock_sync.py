"""The clock sync's bounded store (issue 8, item 7): fixed memory however long the run, the same
estimate as from every packet while the run fits the store's 0.5 s and 1 s bins (2048 s), and
a known offset and drift recovered from a 4-hour run."""

from __future__ import annotations

import numpy as np
import pytest

from insole import protocol as P
from insole.analysis.stream import SYNC_MAX_BINS, FootAssembler, SyncBins, robust_line

PERIOD_US = 2000
SETS = 19  # the firmware's 38 ms packets at 500 Hz
PACKET_S = SETS * PERIOD_US * 1e-6
LAST_S = (SETS - 1) * PERIOD_US * 1e-6  # a packet's sync point is its last sample


def host_times(dev_s: np.ndarray, rng: np.random.Generator, offset_s: float, drift_ppm: float) -> np.ndarray:
    """Host receive times: the true line plus 2 ms, an exponential delay (mean 4 ms), 1 % spikes
    of up to 20 ms and, at 0.2 % of packets, a stall of 0.1-0.6 s whose queue then arrives at
    once (every packet of the stall is late)."""
    delay = 0.002 + rng.exponential(0.004, len(dev_s))
    spikes = rng.random(len(dev_s)) < 0.01
    delay[spikes] += rng.uniform(0.005, 0.020, spikes.sum())
    for k in np.flatnonzero(rng.random(len(dev_s)) < 0.002):
        stall = rng.uniform(0.1, 0.6)
        late = (dev_s >= dev_s[k]) & (dev_s < dev_s[k] + stall)
        delay[late] += dev_s[k] + stall - dev_s[late]
    return offset_s + dev_s * (1 + drift_ppm * 1e-6) + delay


def run_assembler(duration_s: float, seed: int, offset_s: float = 1000.0, drift_ppm: float = 40.0):
    """A foot's packets through the production path: the first few one by one (``add``), the
    rest in batches (``add_raw``'s vectorised path). Returns the assembler and the (device s,
    host s) of every packet."""
    rng = np.random.default_rng(seed)
    n = int(duration_s / PACKET_S)
    dev = (np.arange(n) * SETS * PERIOD_US + (SETS - 1) * PERIOD_US) * 1e-6  # as the assembler has it
    host = host_times(dev, rng, offset_s, drift_ppm)
    asm = FootAssembler("sync")
    samples = np.zeros((SETS, 1), np.uint16)
    t0_start = 4_000_000_000  # wraps after about 5 minutes
    data = [P.Data("left", k & 0xFFFF, (t0_start + k * SETS * PERIOD_US) & 0xFFFFFFFF, PERIOD_US, samples)
            for k in range(min(n, 50))]
    for k, pkt in enumerate(data):
        asm.add(pkt, float(host[k]))
    for a in range(50, n, 5000):
        b = min(a + 5000, n)
        raws = [P.encode(P.Data("left", k & 0xFFFF, (t0_start + k * SETS * PERIOD_US) & 0xFFFFFFFF,
                                PERIOD_US, samples)) for k in range(a, b)]
        asm.add_raw(raws, host[a:b].tolist())
    return asm, dev, host


def every_packet_fit(dev: np.ndarray, host: np.ndarray, window_s: float = 5.0) -> dict:
    """The fit the unbounded store gave: per window of every packet the smallest host - device
    (written out here), then the same robust line (``stream.robust_line``)."""
    diff = host - dev
    win = np.floor(dev / window_s).astype(np.int64)
    order = np.lexsort((diff, win))  # by window, the smallest difference first
    first = order[np.r_[True, win[order][1:] != win[order][:-1]]]
    x, y = dev[first], diff[first]
    y = (y + x) - x  # the store keeps host - device; the ledger hands the fit host = diff + device
    return robust_line(x, y)


@pytest.mark.parametrize("duration_s, bin_s", [(900.0, 0.5), (2000.0, 1.0)])
def test_runs_up_to_2048_s_give_the_every_packet_estimate_bit_for_bit(duration_s, bin_s):
    asm, dev, host = run_assembler(duration_s, seed=int(duration_s))
    assert asm._sync.bin_s == bin_s  # 2000 s: past 1024 s of 0.5 s bins, one doubling
    q = asm.ledger()
    want = every_packet_fit(dev, host)
    for key in ("clock_offset_s", "clock_drift_ppm", "clock_residual_ms", "clock_windows_used"):
        assert q[key] == want[key], key


def test_store_memory_is_fixed_over_six_hours():
    """6 hours of 38 ms packets, fed straight to the store a minute at a time (and every tenth
    minute one by one): the same two arrays throughout, and each bin holds exactly the minimum
    that bins of the final width take from every packet."""
    rng = np.random.default_rng(11)
    store = SyncBins()
    arrays = (store.dev_s, store.diff_s)
    nbytes = store.nbytes
    assert nbytes == SYNC_MAX_BINS * 16
    all_dev, all_diff = [], []
    per_min = int(60 / PACKET_S)
    for minute in range(360):
        dev = (minute * per_min + np.arange(per_min)) * PACKET_S + LAST_S
        host = host_times(dev, rng, -3.0, -70.0)
        if minute % 10 == 9:
            for d, h in zip(dev.tolist(), host.tolist()):
                store.add_one(d, h)
        else:
            store.add(dev, host)
        assert store.nbytes == nbytes and (store.dev_s, store.diff_s) == arrays
        all_dev.append(dev)
        all_diff.append(host - dev)
    dev, diff = np.concatenate(all_dev), np.concatenate(all_diff)
    assert store.bin_s == 16.0  # 6 h is 21,600 s: 2048 bins of 16 s
    b = np.floor(dev / store.bin_s).astype(np.int64)
    want = np.full(b.max() + 1, np.inf)
    np.minimum.at(want, b, diff)
    got_dev, got_diff = store.points()
    assert np.array_equal(got_diff, want)
    assert np.array_equal(np.floor(got_dev / store.bin_s).astype(np.int64), np.arange(len(want)))


def test_four_hour_run_recovers_offset_and_drift():
    """Through the assembler: 4 hours (bins of 8 s, so 8 s windows instead of 5 s) recover the
    true line within 0.05 ppm and 0.5 ms (true offset 1000.002 s: the line plus the smallest
    delay) and stay within 0.01 ppm and 0.05 ms of the unbounded store's estimate (measured over
    seeds 0-3: within 0.0005 ppm and 0.08 ms of the truth, 0.0007 ppm and 0.005 ms of the old)."""
    asm, dev, host = run_assembler(4 * 3600.0, seed=5, offset_s=1000.0, drift_ppm=-85.0)
    assert asm._sync.bin_s == 8.0 and asm._sync.nbytes == SYNC_MAX_BINS * 16
    q = asm.ledger()
    assert q["clock_drift_ppm"] == pytest.approx(-85.0, abs=0.05)
    assert q["clock_offset_s"] == pytest.approx(1000.002, abs=0.0005)
    assert q["clock_residual_ms"] < 2
    old = every_packet_fit(dev, host)
    assert q["clock_drift_ppm"] == pytest.approx(old["clock_drift_ppm"], abs=0.01)
    assert q["clock_offset_s"] == pytest.approx(old["clock_offset_s"], abs=0.00005)


def test_store_rejects_an_odd_capacity():
    with pytest.raises(ValueError, match="even"):
        SyncBins(max_bins=7)
