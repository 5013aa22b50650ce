"""Recording over real pseudo-terminals with the production serial source, crash safety, export."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import time

import pytest
from helpers import INSOLE, ROOT, run_cli, start_sim, stop

from insole.analysis.stream import streams_from_sources
from insole.io.session import REC_MAGIC, load_inputs

pytestmark = pytest.mark.live  # starts processes, threads or ptys: make test-repeat


def start_recorder(ports, out, *extra):
    return subprocess.Popen([*INSOLE, "record", *(f"serial://{v}" for v in ports.values()),
                             "--out", str(out), "-q", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)


def wait_for_bytes(out, n_files, min_bytes=20_000, timeout_s=20):
    t_end = time.monotonic() + timeout_s
    while time.monotonic() < t_end:
        files = list(out.glob("source*.rec"))
        if len(files) == n_files and all(f.stat().st_size > min_bytes for f in files):
            return
        time.sleep(0.2)
    raise AssertionError("recorder wrote too little")


def test_record_two_ports_then_ctrl_c_closes_cleanly(tmp_path):
    sim, ports = start_sim(tmp_path)
    out = tmp_path / "session"
    try:
        rec = start_recorder(ports, out)
        # about 9 s of two feet: at least 10 whole steps each to score (3 s held only 4-5: a flake)
        wait_for_bytes(out, 2, min_bytes=60_000, timeout_s=60)
        rec.send_signal(signal.SIGINT)
        stdout, stderr = rec.communicate(timeout=20)
    finally:
        stop(sim)
    assert rec.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr
    meta = json.loads((out / "session.json").read_text())
    assert meta["closed"] is True
    assert {s["side"] for s in meta["sources"]} == {"left", "right"}
    feet = streams_from_sources(load_inputs([out]))
    assert set(feet) == {"left", "right"}
    for fs in feet.values():
        assert fs.quality["decode_errors"] <= 1  # at most the frame cut by the port opening
        assert fs.quality["packets_lost"] == 0
        assert fs.info.firmware != "unknown", "the recorder's GET_INFO got no INFO back"
        assert fs.n > 500
        assert fs.host_sync is not None and fs.quality["clock_residual_ms"] < 50
    # the recording started after the device: scored against the truth on the device clock
    from insole.analysis import analyse
    from insole.validation.score import score

    doc = analyse(feet)
    result = score(doc, json.loads((tmp_path / "truth.json").read_text()))
    for side in ("left", "right"):
        assert result["feet"][side]["tp"] >= 5
        assert result["feet"][side]["f1"] >= 0.99, result["feet"][side]
        assert result["feet"][side]["ic_error_ms"]["median"] <= 2
    # both feet on the host clock: a step is half a stride, flight is step minus contact
    assert "host clock" in doc["summary"]["time_base"]
    for side in ("left", "right"):
        sm = doc["feet"][side]["summary"]
        assert sm["step_ms_median"] == pytest.approx(sm["stride_ms_median"] / 2, abs=25)
        assert sm["flight_ms_median"] == pytest.approx(sm["step_ms_median"] - sm["contact_ms_median"],
                                                       abs=15)
        assert 50 < sm["flight_ms_median"] < 200  # running has a flight phase
    # export: one row per sample set, both feet, forces in newtons
    r = run_cli("export", out, "--csv", tmp_path / "x.csv")
    assert r.returncode == 0, r.stderr.decode()
    with (tmp_path / "x.csv").open() as f:
        rows = list(csv.reader(f))
    assert rows[0][:2] == ["t_s", "side"] and rows[0][2].endswith("_force_n")
    assert len(rows) - 1 == sum(fs.n for fs in feet.values())


def test_sigkill_leaves_a_readable_session_missing_at_most_a_second(tmp_path):
    sim, ports = start_sim(tmp_path, side="left")
    out = tmp_path / "session"
    try:
        rec = start_recorder(ports, out)
        wait_for_bytes(out, 1, min_bytes=60_000)
        time.sleep(1.5)
        stop(rec, kill=True)
        t_killed = time.time()
    finally:
        stop(sim)
    meta = json.loads((out / "session.json").read_text())
    assert meta["closed"] is False
    (src,) = load_inputs([out])
    assert src.chunks, "nothing survived the kill"
    assert t_killed - src.chunks[-1].host_time_s < 1.5  # at most the last second (+ scheduling)
    raw = (out / "source0.rec").read_bytes()
    assert raw.startswith(REC_MAGIC)
    r = run_cli("analyse", out, "--json", "-")
    assert r.returncode == 0, r.stderr.decode()


def test_port_unplugged_mid_run_is_a_counted_fault_and_data_is_kept(tmp_path):
    sim, ports = start_sim(tmp_path)
    out = tmp_path / "session"
    rec = start_recorder(ports, out)
    try:
        wait_for_bytes(out, 2)
        stop(sim, kill=True)  # both ptys vanish: the "USB cable pulled" path
        stdout, stderr = rec.communicate(timeout=30)
    finally:
        if rec.poll() is None:
            stop(rec, kill=True)
    assert b"Traceback" not in stderr
    assert rec.returncode == 0
    text = stdout.decode()
    assert text.count("FAULT") == 2, text
    meta = json.loads((out / "session.json").read_text())
    assert meta["closed"] is True
    assert all(s["fault"] for s in meta["sources"])
    feet = streams_from_sources(load_inputs([out]))
    assert all(fs.n > 100 for fs in feet.values())


def test_pyserial_loop_url_opens_through_serial_for_url():
    from insole import protocol as P
    from insole.io.sources import open_source

    src = open_source("loop://").open()
    try:
        frame = P.frame(P.Reply(0x12, 0))
        src.write(frame)
        got = b""
        for _ in range(20):
            got += src.read(0.05)
            if got.endswith(b"\x00") and len(got) >= len(frame):
                break
        # loop:// echoes, so the GET_INFO frame a recorder sends would come back the same way
        assert got.endswith(frame)
    finally:
        src.close()


def test_record_from_sim_and_file_urls(tmp_path):
    out = tmp_path / "s"
    r = run_cli("record", "sim://forefoot-runner?side=right&seed=3&duration_s=12&realtime=0",
                "--out", out, "-q")
    assert r.returncode == 0, r.stderr.decode()
    (fs,) = streams_from_sources(load_inputs([out])).values()
    assert fs.side == "right" and abs(fs.n - 12 * 500) < 50
    # replay that session's bytes as a file:// source into a new session
    cap = tmp_path / "cap.bin"
    cap.write_bytes(b"".join(c.data for c in load_inputs([out])[0].chunks))
    r = run_cli("record", f"file://{cap}", "--out", tmp_path / "s2", "-q")
    assert r.returncode == 0, r.stderr.decode()
    (fs2,) = streams_from_sources(load_inputs([tmp_path / "s2"])).values()
    assert fs2.n == fs.n


def test_spy_url_reads_a_pty_and_hexdumps_the_wire(tmp_path):
    import os
    import tty

    from insole import protocol as P
    from insole.io.sources import open_source

    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    src = open_source(f"spy://{path}").open()
    try:
        frame = P.frame(P.Reply(0x13, 0))
        os.write(master, frame)
        got = b""
        for _ in range(40):
            got += src.read(0.05)
            if got.endswith(frame):
                break
        assert got.endswith(frame)
    finally:
        src.close()
        os.close(master)
        os.close(slave)
