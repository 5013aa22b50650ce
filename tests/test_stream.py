"""Per-foot assembly: clock unwrapping, seq gaps, device drops, gaps stay NaN, quality ledger."""

from __future__ import annotations

import numpy as np
import pytest

from insole import protocol as P
from insole.analysis.stream import FootAssembler, clock_estimate, stream_from_source
from insole.errors import InputFileError, ProtocolError
from insole.io.session import Chunk, SourceData

INFO = P.Info("right", ("heel", "arch", "met1"), 500, 3300, 750, "a4cf12003f9a", "t")


def packets(n_pkts, sets=4, t_start=0, seq_start=0, period=2000):
    out = []
    for k in range(n_pkts):
        s = np.full((sets, 3), k, dtype=np.uint16)
        s[:, 1] = np.arange(sets) + k * sets
        out.append(P.Data("right", (seq_start + k) & 0xFFFF,
                          (t_start + k * sets * period) & 0xFFFFFFFF, period, s))
    return out


def test_clock_and_seq_wrap_are_unwrapped():
    asm = FootAssembler()
    asm.add(INFO)
    for p in packets(10, t_start=2**32 - 3 * 8000, seq_start=65530):
        asm.add(p)
    fs = asm.finish()
    assert fs.n == 40
    assert not np.isnan(fs.volts).any()
    assert fs.quality["packets_lost"] == 0 and fs.quality["samples_dropped"] == 0
    # the counter column runs 0..39 without a jump across both wraps
    assert np.allclose(fs.volts[:, 1] / P.SAMPLE_UNIT_V, np.arange(40))
    assert fs.side == "right" and fs.zones == ("heel", "arch", "met1")


def test_lost_packets_leave_nan_and_are_counted():
    asm = FootAssembler()
    pk = packets(10)
    for i, p in enumerate(pk):
        if i not in (3, 4, 7):
            asm.add(p)
    fs = asm.finish()
    assert fs.n == 40
    assert fs.quality["packets_lost"] == 3
    assert fs.quality["samples_missing"] == 12
    assert fs.quality["samples_dropped"] == 0
    assert np.isnan(fs.volts[12:20]).all() and np.isnan(fs.volts[28:32]).all()
    assert fs.quality["missing_info"] == 1  # no INFO arrived: a stand-in, and it is said


def test_device_overrun_is_a_drop_not_a_loss():
    asm = FootAssembler()
    asm.add(INFO)
    pk = packets(6)
    # the device skipped 10 sample sets before packet 3: t0 jumps, seq does not
    for i, p in enumerate(pk):
        if i >= 3:
            p = P.Data(p.side, p.seq, p.t0_us + 10 * 2000, p.period_us, p.samples, overrun=(i == 3))
        asm.add(p)
    fs = asm.finish()
    assert fs.quality["packets_lost"] == 0
    assert fs.quality["samples_dropped"] == 10
    assert fs.quality["overrun_packets"] == 1
    assert fs.n == 34 and np.isnan(fs.volts[12:22]).all()


def test_duplicates_and_rate_changes_are_counted_not_mixed_in():
    asm = FootAssembler()
    pk = packets(4)
    for p in (pk[0], pk[1], pk[1], pk[2], pk[3]):
        asm.add(p)
    asm.add(P.Data("right", 4, 99_000_000, 1000, np.zeros((2, 3), np.uint16)))
    fs = asm.finish()
    assert fs.quality["duplicate_packets"] == 1
    assert fs.quality["format_changed_packets"] == 1
    assert fs.n == 16


def test_no_data_is_a_clear_error():
    asm = FootAssembler("x.bin")
    asm.add(INFO)
    with pytest.raises(InputFileError, match="no DATA"):
        asm.finish()


def test_stream_from_source_counts_decoder_errors_and_keeps_going():
    frames = [P.frame(INFO)] + [P.frame(p) for p in packets(20)]
    frames[5] = frames[5][:10] + bytes([frames[5][10] ^ 0x40]) + frames[5][11:]  # CRC error
    raw = b"garbage!" + b"".join(frames) + frames[1][:7]  # and a truncated tail
    fs = stream_from_source(SourceData("cap", "serial", [Chunk(None, raw)]))
    assert fs.quality["packets_lost"] == 1
    assert fs.quality["decode_errors"] >= 2
    assert fs.quality["decode_errors_by_kind"]["truncated"] == 1


def test_clock_estimate_recovers_offset_and_drift():
    rng = np.random.default_rng(3)
    dev = np.arange(0, 600, 0.046)
    host = 1000.0 + dev * (1 + 40e-6) + 0.002 + rng.exponential(0.004, len(dev))
    est = clock_estimate(np.stack([dev, host], axis=1))
    assert est["clock_drift_ppm"] == pytest.approx(40, abs=3)
    assert est["clock_offset_s"] == pytest.approx(1000.002, abs=0.001)
    assert est["clock_residual_ms"] < 2


def test_raw_fast_path_equals_decoding_each_packet():
    """add_raw (headers read in bulk) must build exactly what decode()+add() builds."""
    rng = np.random.default_rng(7)
    pk = [INFO] + packets(300, sets=5)
    raws = [P.encode(p) for p in pk]
    # loss, duplicates, reordering, a device overrun, damaged lengths and foreign packets
    for i in sorted(rng.choice(np.arange(5, 295), 20, replace=False), reverse=True):
        del raws[i]
    raws.insert(50, raws[49])
    raws[60], raws[61] = raws[61], raws[60]
    raws.insert(70, raws[70][:-2])  # bad length
    raws.insert(80, b"\x01\x01\x00")  # short DATA
    raws.insert(90, P.encode(P.Status("right", 1, 2, 3, 500, 499, 0, 0, 1, 170)))
    raws.insert(95, b"\x01\x7f\x00\x00")  # unknown type
    slow = FootAssembler()
    errors_slow: dict[str, int] = {}
    for r in raws:
        try:
            slow.add(P.decode(r), 1.0)
        except ProtocolError as e:
            errors_slow[e.kind] = errors_slow.get(e.kind, 0) + 1
    fast = FootAssembler()
    errors_fast = fast.add_raw(raws, [1.0] * len(raws))
    a, b = slow.finish(errors_slow), fast.finish(dict(errors_fast))
    assert errors_slow == dict(errors_fast) and errors_slow
    assert a.quality == b.quality
    np.testing.assert_array_equal(a.volts, b.volts)
    assert a.quality["status_packets"] == b.quality["status_packets"] == 1


def test_a_reboot_starts_a_new_segment_not_duplicates():
    # the device reboots after 10 packets: seq back to 0, its clock restarts near 0
    asm = FootAssembler()
    asm.add(INFO)
    for p in packets(10, t_start=50_000_000, seq_start=300):
        asm.add(p, host_time_s=1000.0 + p.t0_us * 1e-6)
    host_gap_s = 2.0
    for p in packets(10, t_start=1_200_000, seq_start=0):
        asm.add(p, host_time_s=1000.0 + 50.0 + 0.08 + host_gap_s + (p.t0_us - 1_200_000) * 1e-6)
    fs = asm.finish()
    q = fs.quality
    assert q["device_reboots"] == 1 and q.get("duplicate_packets", 0) == 0
    assert q["packets_lost"] == 0 and q["samples_dropped"] == 0
    # every sample set of both segments is there, in order, with the reboot's gap missing
    kept = ~np.isnan(fs.volts[:, 0])
    assert kept.sum() == 80
    assert np.array_equal(np.rint(fs.volts[kept, 1] / P.SAMPLE_UNIT_V), np.r_[np.arange(40), np.arange(40)])
    gap_s = q["reboot_gap_samples"] * 0.002
    assert gap_s == pytest.approx(host_gap_s, abs=0.01)
    assert q["segments"][1]["first_t0_us"] == 1_200_000


def test_a_reboot_without_host_times_gets_the_stated_gap():
    from insole.analysis.stream import REBOOT_GAP_UNKNOWN_US

    asm = FootAssembler()
    for p in packets(5, t_start=9_000_000, seq_start=1000) + packets(5, t_start=0, seq_start=0):
        asm.add(p)
    fs = asm.finish()
    assert fs.quality["device_reboots"] == 1 and fs.quality["reboot_gap_unknown"] == 1
    assert (~np.isnan(fs.volts[:, 0])).sum() == 40
    assert fs.quality["reboot_gap_samples"] == REBOOT_GAP_UNKNOWN_US // 2000 - 1


@pytest.mark.parametrize("host_jump_s", [-3.4e9, 3.4e9, -5.0])
def test_a_reboot_gap_the_host_clock_cannot_have_seen_is_unknown(host_jump_s):
    """A damaged or reset host clock (back, or billions of seconds on) does not size a reboot's
    gap: it gets the stated unknown gap, counted, and no grid of that length (tools/fuzz.py
    found a .rec whose host times made a 1.7e12-row grid)."""
    from insole.analysis.stream import REBOOT_GAP_UNKNOWN_US

    asm = FootAssembler()
    for p in packets(5, t_start=9_000_000, seq_start=1000):
        asm.add(p, host_time_s=1.7e9)
    for p in packets(5, t_start=0, seq_start=0):
        asm.add(p, host_time_s=1.7e9 + host_jump_s)
    fs = asm.finish()
    assert fs.quality["device_reboots"] == 1 and fs.quality["reboot_gap_unknown"] == 1
    assert fs.quality["reboot_gap_samples"] == REBOOT_GAP_UNKNOWN_US // 2000 - 1
    assert (~np.isnan(fs.volts[:, 0])).sum() == 40


def test_an_old_packet_again_is_still_a_duplicate_not_a_reboot():
    asm = FootAssembler()
    pk = packets(6, seq_start=2)
    for p in (*pk, pk[0], pk[3]):  # seq 2 and 5 again, with the device times they had
        asm.add(p)
    fs = asm.finish()
    assert fs.quality["duplicate_packets"] == 2 and fs.quality["device_reboots"] == 0
