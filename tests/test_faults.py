"""Faults through the real serial path (a pty, pyserial, the recorder, the streaming core).

Each test runs 32 s of simulated running at 12x real time with one fault, then checks the three
things issue 8 asks of every fault: steps found against the truth over the time with data
(F1 >= 0.98), no sample set analysed that the device did not send in a frame that arrived
(fabricated == 0, counted row by row against the simulator's record), and the fault counted
where the user sees it (the document's quality ledger, the recorder's counters, the printed
summary of ``insole analyse``). How they are measured: tests/faults_run.py.
"""

from __future__ import annotations

import pytest
from faults_run import run_faulty

from insole.cli.analyse import format_summary

pytestmark = pytest.mark.live  # ptys and threads: make test-repeat


def _common(run, sides=("left",)):
    for s in sides:
        assert run.f1(s) >= 0.98, run.score["feet"][s]
        assert run.scored_true_steps[s] >= 30
        assert run.fabricated[s] == 0, f"{run.fabricated[s]} of {run.analysed_sets[s]} sample sets"
        assert run.analysed_sets[s] > 0.9 * run.delivered_sets[s]
        assert run.recorder[s]["fault"] is None and run.recorder[s]["analysis_fault"] is None
    return format_summary(run.doc)


def test_five_percent_packet_loss(tmp_path):
    run = run_faulty(tmp_path, loss_pct=5)
    text = _common(run)
    q = run.quality["left"]
    data_packets = q["packets"] - q["status_packets"] - 1  # less INFO
    assert 0.02 < q["packets_lost"] / (data_packets + q["packets_lost"]) < 0.09, q
    assert q["samples_missing"] > 0 and q["decode_errors"] == 0
    assert f"{q['packets_lost']} packets lost" in text


def test_one_percent_corrupted_frames(tmp_path):
    run = run_faulty(tmp_path, corrupt_pct=1)
    text = _common(run)
    q = run.quality["left"]
    # one byte changed in a frame is exactly one damaged frame, never a packet
    assert q["decode_errors"] == run.fates["left"]["corrupt"] > 0
    assert run.recorder["left"]["bad_frames"] == q["decode_errors"]
    assert f"{q['decode_errors']} damaged frames" in text


def test_bursts_of_garbage_between_frames(tmp_path):
    run = run_faulty(tmp_path, garbage_pct=2)
    text = _common(run)
    q = run.quality["left"]
    assert run.fates["left"]["garbage"] > 5
    # a burst costs at most the frame after it, counted, and never passes for a packet
    assert q["decode_errors"] >= run.fates["left"]["garbage"] // 2
    assert run.analysed_sets["left"] <= run.delivered_sets["left"]
    assert f"{q['decode_errors']} damaged frames" in text


def test_device_overruns(tmp_path):
    run = run_faulty(tmp_path, overrun_at=(8.0, 17.0, 29.0), overrun_ms=100)
    text = _common(run)
    q = run.quality["left"]
    # 3 overruns of 100 ms at 500 Hz: the STATUS counter and the seq/time gaps agree
    assert q["device_overruns"] == 150 and q["samples_dropped"] == 150
    assert q["packets_lost"] == 0
    assert "150 samples dropped on the device" in text


def test_sensor_disconnected_mid_run(tmp_path):
    run = run_faulty(tmp_path, disconnect_sensor="met5", disconnect_at_s=20.0)
    text = _common(run)
    q = run.quality["left"]
    assert q["sensor_faults"] == ["met5"]
    assert q["device_fault_mask"] == 1 << 4
    assert "faulty sensors: met5" in text


def test_heel_sensor_disconnected_mid_run(tmp_path):
    # Without the heel, a heel striker's contact is seen ~60 ms late, from the other zones: the
    # steps from the heel's last good reading on have no initial contact, strike or loading rate
    # (lost, docs/analysis.md) and are scored on their toe-off (F1 0.50 at 20 ms before).
    from insole.analysis.metrics import HEEL_DEAD

    run = run_faulty(tmp_path, disconnect_sensor="heel", disconnect_at_s=16.0)
    text = _common(run)
    assert run.score["feet"]["left"]["matched_on_toe_off"] >= 8
    steps = run.doc["feet"]["left"]["steps"]
    assert not any(s["strike"] == "forefoot" for s in steps)
    assert all(s["lost"]["strike"] == HEEL_DEAD for s in steps if s["ic_s"] is None)
    assert run.quality["left"]["sensor_faults"] == ["heel"]
    assert "faulty sensors: heel" in text
    assert "without their initial contact" in text


def test_port_closed_and_reopened_mid_run(tmp_path):
    # the left port is unplugged at 15 s for 1.5 s of device time; the right one goes on
    run = run_faulty(tmp_path, sides=("left", "right"), replugs={"left": [(15.0, 1.5)]})
    text = _common(run, ("left", "right"))
    assert run.meta["left"]["replugs"] == 1 and run.meta["left"]["frames_unplugged"] > 20
    assert len([g for g in run.meta["left"]["gaps_s"] if 0 < g[0]]) >= 1
    ql, qr = run.quality["left"], run.quality["right"]
    assert run.recorder["left"]["reconnects"] == 1 == ql["link_reconnects"]
    assert ql["packets_lost"] >= run.meta["left"]["frames_unplugged"] - 3  # less STATUS frames
    assert ql["samples_missing"] > 500  # 1.5 s at 500 Hz, as a gap
    assert qr["packets_lost"] == 0 and qr.get("link_reconnects", 0) == 0
    # the data after the reconnect was recorded and analysed: steps to the end of the run
    last_ic = max(s["ic_s"] for s in run.doc["feet"]["left"]["steps"])
    assert last_ic > 27.0
    assert "link lost and back 1 time(s)" in text


def test_serial_url_reconnect_option():
    from insole.errors import SourceError
    from insole.io.sources import RECONNECT_S, open_source

    assert open_source("serial:///dev/ttyUSB0").reconnect_s == RECONNECT_S
    assert open_source("serial:///dev/ttyUSB0?reconnect_s=0").reconnect_s == 0.0
    for bad in ("serial:///dev/ttyUSB0?reconnect_s=x", "serial:///dev/ttyUSB0?reconnect_s=-1",
                "serial:///dev/ttyUSB0?baud=9600"):
        with pytest.raises(SourceError):
            open_source(bad)


def test_a_port_that_does_not_come_back_ends_the_source_as_a_fault(tmp_path):
    from insole.io.sources import SourceClosed, open_source
    from insole.sim.pty import Pty

    port = Pty.open(link=str(tmp_path / "tty"))
    src = open_source(f"serial://{port.path}?reconnect_s=0.3").open()
    try:
        port.unplug()
        assert src.read(0.1) == b"" and not src.connected  # away: tried again
        with pytest.raises(SourceClosed, match="not back within 0.3 s"):
            for _ in range(50):  # 5 s at most
                src.read(0.1)
        assert src.ledger()["disconnects"] == 1 and src.ledger()["reconnects"] == 0
    finally:
        src.close()
        port.close(drain_s=0.0)


@pytest.mark.parametrize("garbage_pct", [0.0, 5.0])
def test_garbage_bursts_leave_the_other_fault_decisions_as_they_were(garbage_pct):
    from insole import protocol as P
    from insole.sim import simulate

    base = simulate("easy-run", "left", 6.0, seed=2, loss_pct=5, corrupt_pct=2)
    junk = simulate("easy-run", "left", 6.0, seed=2, loss_pct=5, corrupt_pct=2,
                    garbage_pct=garbage_pct)
    a = [(t, fate) for t, _, _, fate in base.frames_with_fate()]
    b = [(t, fate if fate != "garbage" else "sent") for t, _, _, fate in junk.frames_with_fate()]
    assert a == b
    # a burst goes before its frame, whose own bytes follow it unchanged
    for (_, fr0, _, _), (_, fr1, _, fate) in zip(base.frames_with_fate(), junk.frames_with_fate()):
        assert fr1.endswith(fr0) and (fate != "garbage" or len(fr1) > len(fr0))
    out: list = []
    dec = P.StreamDecoder()
    dec.feed_raw(b"".join(fr for _, fr in junk.frames()), out, as_bytes=True)
    assert dec.error_count >= sum(f == "corrupt" for _, f in a)
