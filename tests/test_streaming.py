"""One core, any block size: the same captures fed in blocks of one packet, of one second and
whole give the same document (every step, its metrics, the flags, the ledger).

A simulated run with packet loss, corrupt frames, a device overrun and a reboot, and a real
recording converted by insole.validation.datasets (gaitpdb GaCo01, walking at 100 Hz).
"""

from __future__ import annotations

import pytest
from helpers import SHARED

from insole import protocol as P
from insole import sim
from insole.analysis import Analysis, FootPipeline
from insole.validation import datasets


def _frames(raw: bytes) -> list[bytes]:
    """The capture cut after every frame delimiter: one packet per chunk."""
    parts = raw.split(b"\x00")
    return [p + b"\x00" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _seconds(raw: bytes, bytes_per_s: int) -> list[bytes]:
    """Pieces of one second's worth of bytes, cut wherever that falls (mid-frame too)."""
    return [raw[i:i + bytes_per_s] for i in range(0, len(raw), bytes_per_s)]


def _analyse(captures: dict[str, bytes], cut, on_steps=None) -> dict:
    runs = []
    for name, raw in captures.items():
        pipe = FootPipeline(name, on_steps=on_steps)
        for chunk in cut(raw):
            pipe.feed(chunk)
        runs.append(pipe.finish())
    return Analysis(runs).document()


def _rebooted(foot, at_s: float) -> bytes:
    """The foot's frames with the device rebooted at ``at_s`` (seq from 0, a fresh clock)."""
    out, first = bytearray(), None
    for t_s, fr, pkt in foot.frames_with_packets():
        if isinstance(pkt, P.Data) and t_s >= at_s:
            if first is None:
                first = (pkt.seq, pkt.t0_us)
            pkt = P.Data(pkt.side, (pkt.seq - first[0]) & 0xFFFF,
                         (700_000 + pkt.t0_us - first[1]) & 0xFFFFFFFF, pkt.period_us,
                         pkt.samples, pkt.overrun)
            fr = P.frame(pkt)
        out += fr
    return bytes(out)


def _check_equal(captures: dict[str, bytes], bytes_per_s: int) -> dict:
    decided: list[tuple[str, float]] = []

    def note(core, first, stop):
        decided.extend((core.info.side, float(x)) for x in core.table["ic_idx"][first:stop])

    whole = _analyse(captures, lambda raw: [raw])
    per_packet = _analyse(captures, _frames, note)
    per_second = _analyse(captures, lambda raw: _seconds(raw, bytes_per_s))
    for side in whole["feet"]:
        assert per_packet["feet"][side]["steps"] == whole["feet"][side]["steps"], side
        assert per_second["feet"][side]["steps"] == whole["feet"][side]["steps"], side
    assert per_packet["flags"] == per_second["flags"] == whole["flags"]
    assert per_packet == whole and per_second == whole  # the ledger and summaries too
    # every step came out as it was decided, once, in order
    for side in whole["feet"]:
        mine = [x for s, x in decided if s == side]
        assert len(mine) == len(whole["feet"][side]["steps"])
        assert mine == sorted(mine)
    return whole


def test_a_lossy_rebooting_simulated_run_gives_one_answer_whatever_the_blocks():
    feet = {side: sim.simulate("heel-striker", side, 120.0, seed=7, loss_pct=5.0, corrupt_pct=1.0,
                               overrun_at=[40.0])
            for side in ("left", "right")}
    captures = {"left.bin": _rebooted(feet["left"], 60.0),
                "right.bin": b"".join(fr for _, fr in feet["right"].frames())}
    doc = _check_equal(captures, bytes_per_s=5440)
    left = doc["feet"]["left"]
    assert left["quality"]["device_reboots"] == 1
    assert left["quality"]["packets_lost"] > 0 and left["quality"]["decode_errors"] > 0
    assert left["summary"]["steps"] > 120 and doc["feet"]["right"]["summary"]["steps"] > 120
    assert any(not s["complete"] for s in left["steps"])  # steps across lost packets
    assert {f["code"] for f in doc["flags"]} >= {"heel_strike_force"}


def test_a_converted_real_recording_gives_one_answer_whatever_the_blocks(tmp_path):
    src = SHARED / "data" / "gaitpdb" / "GaCo01_01.txt"
    if not src.is_file():
        pytest.fail(f"{src} is missing; ../shared/data is part of the test fixtures")
    datasets.convert("gaitpdb", src, tmp_path)
    captures = {n: (tmp_path / n).read_bytes() for n in ("left.bin", "right.bin")}
    doc = _check_equal(captures, bytes_per_s=1200)
    assert doc["feet"]["left"]["summary"]["steps"] > 50


@pytest.mark.live
def test_record_prints_the_steps_the_offline_analysis_finds(tmp_path):
    """`insole record` runs the same core on the chunks as it records them: the steps it
    prints as they happen are the steps `insole analyse` finds in the session afterwards."""
    from helpers import run_cli

    from insole.analysis import run_paths

    urls = [f"sim://easy-run?side={s}&realtime=0&duration_s=40&seed=3" for s in ("left", "right")]
    out = tmp_path / "session"
    r = run_cli("record", *urls, "--out", out, "--body-mass-kg", "70", timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    printed = {"left": [], "right": []}
    for line in r.stdout.decode().splitlines():
        if " step at " in line:
            side, rest = line.split(None, 1)
            printed[side].append(float(rest.split("step at")[1].split("s:")[0]))
    doc = run_paths([str(out)], body_mass_kg=70.0).document()
    for side in ("left", "right"):
        offline = [round(s["ic_s"], 2) for s in doc["feet"][side]["steps"]]
        assert len(offline) > 40
        assert printed[side] == offline, side
    quiet = run_cli("record", *urls, "--out", tmp_path / "quiet", "-q", timeout=120)
    assert quiet.returncode == 0 and b"step at" not in quiet.stdout
