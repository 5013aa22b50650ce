"""A device that reboots halfway through a run: every step of both halves is kept and analysed."""

from __future__ import annotations

from insole import protocol as P
from insole.analysis import analyse
from insole.analysis.stream import stream_from_source
from insole.io.session import Chunk, SourceData
from insole.sim import simulate


def _rebooted_capture(foot, at_s: float, restart_t0_us: int = 850_000) -> tuple[bytes, int]:
    """The foot's capture with the device rebooted at ``at_s``: seq from 0, a fresh clock."""
    out, first_seq, t_first = bytearray(), None, None
    n_after = 0
    for t_s, pkt in foot.packets():
        if isinstance(pkt, P.Data) and t_s >= at_s:
            if first_seq is None:
                first_seq, t_first = pkt.seq, pkt.t0_us
            pkt = P.Data(pkt.side, (pkt.seq - first_seq) & 0xFFFF,
                         (restart_t0_us + pkt.t0_us - t_first) & 0xFFFFFFFF, pkt.period_us,
                         pkt.samples, pkt.overrun)
            n_after += 1
        out += P.frame(pkt)
    return bytes(out), n_after


def test_a_capture_that_reboots_halfway_keeps_every_step_of_both_halves():
    foot = simulate("easy-run", "left", 60.0, seed=4)
    whole = stream_from_source(SourceData("whole", "serial", [Chunk(None, b"".join(
        fr for _, fr in foot.frames()))]))
    raw, n_after = _rebooted_capture(foot, 30.0)
    assert n_after > 100
    rebooted = stream_from_source(SourceData("rebooted", "serial", [Chunk(None, raw)]))
    assert rebooted.quality["device_reboots"] == 1
    assert rebooted.quality.get("duplicate_packets", 0) == 0
    # every sample set the device sent is in the stream
    assert rebooted.quality["sample_sets"] == whole.quality["sample_sets"]
    steps_whole = analyse({"left": whole})["feet"]["left"]["steps"]
    steps_rebooted = analyse({"left": rebooted})["feet"]["left"]["steps"]
    # the only step that may be lost is the one in flight at the reboot
    assert len(steps_rebooted) >= len(steps_whole) - 1
    assert len(steps_whole) >= 75
    late = [s for s in steps_rebooted if s["ic_s"] > 31.0]
    assert len(late) >= len([s for s in steps_whole if s["ic_s"] > 30.0]) - 1
