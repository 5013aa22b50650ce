"""The live window (`insole live`): headless frames from the simulator, recording while showing,
paced replay, the streaming step analysis against the whole recording's, and the real TkAgg window
under Xvfb (skipped with a reason where Xvfb or Tk is missing; `make test` installs Xvfb)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest
from helpers import ROOT, run_cli
from matplotlib.image import imread

from insole import sim
from insole.analysis import analyse
from insole.analysis.stream import streams_from_sources
from insole.io.session import load_inputs
from insole.io.sources import FileSource
from insole.live import LiveFeed, SampleBlock, StreamingSteps
from insole.live.pacing import PacedSource

pytestmark = pytest.mark.live  # starts processes, threads or ptys: make test-repeat

HEEL_RGB = np.array([0x00, 0x72, 0xB2]) / 255  # the heel trace's colour (figures/style.py)


def _colour_pixels(png, rgb, tol=0.03) -> int:
    img = imread(png)[:, :, :3]
    return int(np.all(np.abs(img - rgb) < tol, axis=2).sum())


def test_headless_sim_draws_frames_and_saves_the_last(tmp_path):
    png = tmp_path / "live.png"
    r = run_cli("live", "sim://heel-striker?duration_s=20", "--headless", "--frames", "40",
                "--speed", "4", "--png", png, "--stats-json", timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    stats = json.loads(r.stdout.decode().splitlines()[0])
    assert stats["frames"] == 40
    img = imread(png)
    assert img.shape[0] > 500 and img.shape[1] > 500
    # the heel trace was drawn (blitted artists are in the saved frame, not only the axes)
    assert _colour_pixels(png, HEEL_RGB) > 200
    assert "left: " in r.stderr.decode() and " 0 packets" not in r.stderr.decode()


class _FlagWatch:
    """Wraps a step analysis; sets ``done`` once both feet have a flag (tests wait on it)."""

    def __init__(self, inner):
        self.inner = inner
        self.flagged: set[str] = set()
        self.done = threading.Event()

    def feed(self, side, block):
        new, flags = self.inner.feed(side, block)
        if flags:
            self.flagged.add(side)
            if len(self.flagged) == 2:
                self.done.set()
        return new, flags


def test_flags_rise_on_both_feet_while_showing_a_heel_striker():
    watch = _FlagWatch(StreamingSteps())
    feed = LiveFeed(["sim://heel-striker?side=left&duration_s=40",
                     "sim://heel-striker?side=right&duration_s=40"], speed=20, analysis=watch)
    with feed:
        assert watch.done.wait(timeout=60), f"flags only on {watch.flagged}"
    # after the feed has closed (its analysis thread joined), the flags that rose are shown
    assert not any(w.is_alive() for w in feed.workers)
    for side in ("left", "right"):
        foot = feed.feet[side]
        assert {f["code"] for f in foot.flags} == {"heel_strike_force"}
        assert foot.steps_total >= 20
        valr = [s["valr_bw_per_s"] for s in foot.steps]
        assert 70 < float(np.median(valr)) < 115  # the scenario's ~90 BW/s


def test_record_while_showing_keeps_every_packet(tmp_path):
    out = tmp_path / "session"
    feed = LiveFeed(["sim://easy-run?side=left&duration_s=6", "sim://easy-run?side=right&duration_s=6"],
                    record_dir=out, speed=10)
    with feed:
        for w in feed.workers:
            w.join(timeout=60)  # the simulation ends by itself
            assert not w.is_alive()
    meta = json.loads((out / "session.json").read_text())
    assert meta["closed"] is True
    streams = streams_from_sources(load_inputs([out]))
    for side in ("left", "right"):
        assert streams[side].quality["packets"] == feed.feet[side].packets > 100
        assert streams[side].quality["packets_lost"] == 0


def test_paced_replay_releases_every_byte_unchanged_and_in_order(tmp_path):
    foot = sim.simulate("easy-run", "left", 5.0, seed=2, loss_pct=2, corrupt_pct=2)
    cap = tmp_path / "cap.bin"
    sim.write_capture(cap, foot)
    src = PacedSource(FileSource(f"file://{cap}", str(cap)), speed=1000.0).open()
    got = bytearray()
    from insole.io.sources import SourceClosed

    with pytest.raises(SourceClosed):
        while True:
            got += src.read(0.5)
    src.close()
    assert bytes(got) == cap.read_bytes()


def test_paced_replay_at_real_speed_holds_frames_back(tmp_path):
    foot = sim.simulate("easy-run", "left", 30.0, seed=2)
    cap = tmp_path / "cap.bin"
    sim.write_capture(cap, foot)
    src = PacedSource(FileSource(f"file://{cap}", str(cap)), speed=1.0).open()
    try:
        first = src.read(0.05)
    finally:
        src.close()
    # at most ~0.05 s of a 30 s capture may be out after 0.05 s (INFO and the first packets)
    assert 0 < len(first) < cap.stat().st_size / 20


def test_streaming_steps_give_the_analysis_of_the_whole_recording_step_for_step(tmp_path):
    # the live window's default: the streaming core, fed blocks of 19 sample sets, two lost
    foot = sim.simulate("heel-striker", "left", 45.0, seed=3)
    cap = tmp_path / "left.bin"
    sim.write_capture(cap, foot)
    fs = streams_from_sources(load_inputs([cap]))["left"]
    period_s = fs.period_us * 1e-6
    # 38 ms in mid-stance of the step nearest 20 s never arrive (two blocks)
    ic = min((st["ic_s"] for st in analyse({"left": fs})["feet"]["left"]["steps"]),
             key=lambda t: abs(t - 20.0))
    a0 = int((ic + 0.12) / period_s) // 19 * 19
    cut = (a0, a0 + 38)
    volts = fs.volts.copy()
    volts[cut[0]:cut[1]] = np.nan
    fs.volts = volts
    # with the mass given, both divide by the same body weight (live would use its estimate so
    # far, the document the final one)
    doc = analyse({"left": fs}, body_mass_kg=foot.body_mass_kg)
    live = StreamingSteps(body_mass_kg=foot.body_mass_kg)
    got, flags = [], []
    for a in range(0, fs.n, 19):
        b = min(fs.n, a + 19)
        if cut[0] <= a < cut[1]:
            continue  # the blocks of the gap never come
        new, flags = live.feed("left", SampleBlock("left", fs.info, a * period_s, period_s,
                                                   fs.volts[a:b], fs.volts[a:b]))
        got.extend(new)
    want = doc["feet"]["left"]["steps"]
    # every step decided so far, with the same metrics (the last one waits for the quiet
    # after it, which the end of the recording gives the whole analysis)
    assert len(want) - 1 <= len(got) <= len(want)

    def own(st):  # a step's own fields (stride and swing need the next step, not yet decided)
        return {k: v for k, v in st.items() if k not in ("stride_ms", "swing_ms")}

    assert [own(s) for s in got] == [own(s) for s in want[:len(got)]]
    assert any(s.get("lost") for s in got)  # the steps at the gap keep what is intact
    assert {f["code"] for f in flags} == {f["code"] for f in doc["flags"]} == {"heel_strike_force"}


def test_live_user_errors_are_one_line_exit_2(capsys):
    from insole.cli import main

    for args in (("ble://Insole-L", "--headless", "--frames", "2"),
                 ("sim://easy-run", "--headless"),
                 ("sim://no-such-scenario", "--headless", "--frames", "2"),
                 ("sim://easy-run", "--headless", "--frames", "2", "--speed", "0")):
        assert main(["live", *args]) == 2, args
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("insole live: error:"), err


def _xvfb_reason() -> str | None:
    if not shutil.which("xvfb-run"):
        return "xvfb-run not installed (make test installs the Debian package xvfb when apt is available)"
    r = subprocess.run([sys.executable, "-c", "import tkinter"], capture_output=True)
    if r.returncode != 0:
        return "tkinter missing from this Python (Debian package python3-tk)"
    return None


@pytest.mark.skipif(_xvfb_reason() is not None, reason=str(_xvfb_reason()))
def test_tk_window_under_xvfb_draws_records_and_closes_cleanly(tmp_path):
    png = tmp_path / "window.png"
    out = tmp_path / "session"
    r = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", sys.executable, "-m", "insole.cli",
                        "live", "sim://heel-striker?side=left&duration_s=30",
                        "sim://heel-striker?side=right&duration_s=30",
                        "--frames", "90", "--png", str(png), "--record", str(out), "--stats-json"],
                       capture_output=True, timeout=120, cwd=ROOT,
                       env={**__import__("os").environ, "MPLBACKEND": "TkAgg"})
    assert r.returncode == 0, r.stderr.decode()
    stats = json.loads(r.stdout.decode().splitlines()[0])
    print(f"TkAgg under Xvfb: {stats}")  # the frame rate, for the record (never asserted)
    assert stats["frames"] == 90 and stats["fps"] > 0
    assert _colour_pixels(png, HEEL_RGB) > 200
    meta = json.loads((out / "session.json").read_text())
    assert meta["closed"] is True  # closing the window ended the recording cleanly
    assert all(s["bytes"] > 0 for s in meta["sources"])
