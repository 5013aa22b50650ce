"""Calibration: bench fit, standing-trial fit, the file format, and the two commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from insole import protocol as P
from insole.errors import InputFileError
from insole.io import trial
from insole.model import calibration as C
from insole.model import fits, hardware
from insole.model.sensor import DEFAULT_K_N_OHM, volts_from_force
from insole.sim import standing

ZONES = ("heel", "arch", "met1", "met23", "met5")
ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `insole ARGS...` as a user would (kept here: tests/firmware has its own conftest)."""
    return subprocess.run([sys.executable, "-m", "insole.cli", *map(str, args)],
                          capture_output=True, timeout=timeout, cwd=ROOT)


def _trial(side, tmp_path, **kw):
    raw = standing.synthetic_standing_trial(side, **kw)
    path = tmp_path / f"stand-{side}.bin"
    path.write_bytes(raw)
    return path


def _feet(tmp_path, **kw):
    return trial.load_trial([str(_trial("left", tmp_path, **kw)), str(_trial("right", tmp_path, **kw))])


# --- standing trial -------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [0.6, 1.0, 1.3])
def test_standing_fit_recovers_a_known_scale(tmp_path, scale):
    feet = _feet(tmp_path, body_mass_kg=81.0, k_n_ohm=DEFAULT_K_N_OHM * scale, seed=3)
    cals = fits.fit_standing(feet, 81.0)
    assert set(cals) == {"left", "right"}
    for cal in cals.values():
        for z in ZONES:
            k, beta = cal.channels[z]
            assert k == pytest.approx(DEFAULT_K_N_OHM * scale, rel=0.02)
            assert beta == 1.0
        assert abs(cal.checks["both_feet_sum_error_pct"]) < 2.0
        assert cal.method == "standing"


def test_standing_fit_with_bench_prior_recovers_per_channel_k(tmp_path):
    true_k = {"heel": 3.1e5, "arch": 5.2e5, "met1": 4.4e5, "met23": 2.7e5, "met5": 6.0e5}
    true_beta = {"heel": 1.1, "arch": 0.9, "met1": 1.0, "met23": 1.2, "met5": 1.05}
    # the bench saw each sensor alone with 1/20 of the zone load (a small sensor under a puck)
    prior = C.Calibration("left", {z: (true_k[z] / 20 ** 1, true_beta[z]) for z in ZONES}, "bench")
    feet = trial.load_trial([str(_trial("left", tmp_path, body_mass_kg=65.0, k_n_ohm=true_k, beta=true_beta))])
    cal = fits.fit_standing(feet, 65.0, {"left": prior})["left"]
    assert cal.method == "bench+standing"
    for z in ZONES:
        assert cal.channels[z][0] == pytest.approx(true_k[z], rel=0.03)
        assert cal.channels[z][1] == true_beta[z]
    assert "both_feet_sum_error_pct" not in cal.checks  # one foot only: nothing to check against


def test_wrong_relative_k_shows_in_the_steadiness_check(tmp_path):
    true_k = {"heel": 2.0e5, "arch": 4e5, "met1": 8e5, "met23": 8e5, "met5": 8e5}
    feet = trial.load_trial([str(_trial("left", tmp_path, k_n_ohm=true_k))])
    good = fits.fit_standing(feet, 72.0, {"left": C.Calibration("left", {z: (k, 1.0) for z, k in true_k.items()}, "bench")})
    bad = fits.fit_standing(feet, 72.0)
    assert bad["left"].checks["loaded_rms_pct"] > 2 * good["left"].checks["loaded_rms_pct"]


def test_phases_are_found_and_a_missing_phase_is_named(tmp_path):
    feet = _feet(tmp_path)
    ft = feet["left"]
    total = np.nansum(C.channel_forces(ft.volts, ft.zones, ft.supply_mv / 1e3, ft.r_fixed_ohm,
                                       C.default("left", ft.zones)), axis=1)
    ph = fits.detect_phases(total, ft.rate_hz)
    assert set(ph) == {"both", "loaded", "unloaded"}
    # TRIAL_PHASES as generated: both 0-11 s (steady from the start), left 14-24 s, right 27-37 s
    assert ph["both"][1] / ft.rate_hz <= 11.5
    assert 14.0 <= ph["loaded"][0] / ft.rate_hz and ph["loaded"][1] / ft.rate_hz <= 24.0
    assert 27.0 <= ph["unloaded"][0] / ft.rate_hz
    only_both = trial.load_trial([str(_trial("left", tmp_path, phases=(("both", 12.0, ""),)))])
    with pytest.raises(C.CalibrationError, match="single-foot phase"):
        fits.fit_standing(only_both, 72.0)


def test_check_mode_accepts_a_good_calibration_and_rejects_a_wrong_one(tmp_path):
    feet = _feet(tmp_path, k_n_ohm=DEFAULT_K_N_OHM * 1.2)
    good = fits.fit_standing(feet, 72.0)
    res = fits.check_standing(feet, 72.0, good)
    assert all(abs(v) < 2 for d in res.values() for v in d.values())
    wrong = {s: C.default(s, ZONES) for s in ("left", "right")}
    res = fits.check_standing(feet, 72.0, wrong)
    assert res["left"]["single_foot_error_pct"] == pytest.approx(100 * (1 / 1.2 - 1), abs=2)


# --- bench ----------------------------------------------------------------------------------


def test_bench_fit_recovers_k_and_beta(tmp_path):
    rows = ["# puck 9 mm, weights stacked on it", "zone,mass_kg,ohms"]
    for z, k, beta in (("heel", 2.0e4, 1.0), ("arch", 1.5e4, 0.85)):
        for m in (0.5, 1, 2, 5, 10):
            f = m * C.G_M_PER_S2
            r = 1 / (f / k) ** (1 / beta)
            rows.append(f"{z},{m},{r:.2f}")
    # a volts column goes through the divider of the pin map
    supply_mv, r_fixed = hardware.divider()
    rows2 = ["zone,force_n,volts"] + [
        f"met1,{f},{float(volts_from_force(f, supply_mv / 1e3, r_fixed, 3.0e4, 1.1)):.5f}" for f in (5, 10, 30, 60)]
    (tmp_path / "a.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "b.csv").write_text("\n".join(rows2) + "\n")
    cal = fits.bench_calibration(tmp_path / "a.csv", "left")
    assert cal.channels["heel"][0] == pytest.approx(2.0e4, rel=1e-3)
    assert cal.channels["arch"][1] == pytest.approx(0.85, rel=1e-3)
    cal2 = fits.bench_calibration(tmp_path / "b.csv", "right")
    assert cal2.channels["met1"][0] == pytest.approx(3.0e4, rel=1e-3)
    assert cal2.channels["met1"][1] == pytest.approx(1.1, rel=1e-3)


def test_bench_needs_two_loads(tmp_path):
    (tmp_path / "t.csv").write_text("zone,mass_kg,ohms\nheel,1,20000\n")
    with pytest.raises(C.CalibrationError, match="two different loads"):
        fits.bench_calibration(tmp_path / "t.csv", "left")


# --- the file -------------------------------------------------------------------------------


def test_file_round_trip(tmp_path):
    cal = C.Calibration("right", {"heel": (4.1e5, 1.0), "met1": (3.3e5, 1.07)}, "bench+standing",
                        "a0b1c2d3e4f5", "2026-11-22T02:00:00+00:00", 70.5, 1.25, {"heel": 3.0},
                        {"scale": 1.1}, "note")
    path = cal.save(tmp_path / "sub" / "cal.json")
    back = C.load(path)
    assert back.side == "right" and back.method == "bench+standing"
    assert back.channels == {"heel": (4.1e5, 1.0), "met1": (3.3e5, 1.07)}
    assert back.zero_mv == {"heel": 3.0} and back.body_mass_kg == 70.5 and back.residual_pct == 1.25
    d = json.loads(path.read_text())
    assert d["schema"] == "insole.calibration/1" and d["channels"]["heel"]["k_n_ohm"] == 4.1e5
    line = back.describe()
    assert "\n" not in line and "cal.json" in line and "right foot" in line and "70.5 kg" in line


@pytest.mark.parametrize("text, msg", [
    ("not json", "not JSON"),
    ('{"schema": "other/1"}', "schema"),
    ('{"schema": "insole.calibration/1", "side": "up", "channels": {}}', "side"),
    ('{"schema": "insole.calibration/1", "side": "left", "channels": {"toe": {"k_n_ohm": 1}}}', "unknown zone"),
    ('{"schema": "insole.calibration/1", "side": "left", "channels": {"heel": {"k_n_ohm": -1}}}', "k_n_ohm"),
])
def test_bad_files_are_named(tmp_path, text, msg):
    p = tmp_path / "c.json"
    p.write_text(text)
    with pytest.raises(InputFileError, match=msg):
        C.load(p)


# --- the commands ---------------------------------------------------------------------------


def test_calibrate_command_on_the_simulator_writes_files_analyse_then_uses(tmp_path):
    r = run_cli("calibrate", "sim://stand?mass=75&scale=1.25", "--body-mass-kg", "75", "--yes",
                "--out-dir", tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    out = r.stdout.decode()
    assert "wrote" in out and "both feet together carry body weight" in out
    left = C.load(tmp_path / "calibration-left.json")
    assert left.channels["heel"][0] == pytest.approx(DEFAULT_K_N_OHM * 1.25, rel=0.02)
    # a running capture made with the same sensors: analyse must use the file and read true forces
    run = tmp_path / "run-left.bin"
    run.write_bytes(_running_capture("left", k=DEFAULT_K_N_OHM * 1.25, body_mass_kg=75.0))
    plain = run_cli("analyse", run, "--json", "-")
    cal = run_cli("analyse", run, "--calibration", tmp_path / "calibration-left.json", "--json", "-")
    assert plain.returncode == 0, plain.stderr.decode()
    assert cal.returncode == 0, cal.stderr.decode()
    d0, d1 = json.loads(plain.stdout), json.loads(cal.stdout)
    assert "calibration-left.json" in d1["feet"]["left"]["quality"]["calibration"]
    assert "calibration-left.json" not in d0["feet"]["left"]["quality"]["calibration"]
    bw_true = 75.0 * C.G_M_PER_S2
    assert d1["body"]["body_weight_n"] == pytest.approx(bw_true, rel=0.05)
    assert d0["body"]["body_weight_n"] == pytest.approx(bw_true / 1.25, rel=0.05)


def test_calibrate_check_mode_exit_status(tmp_path):
    ok = run_cli("calibrate", "sim://stand?scale=1.0", "--body-mass-kg", "72", "--yes", "--out-dir", tmp_path)
    assert ok.returncode == 0, ok.stderr.decode()
    files = [str(tmp_path / f"calibration-{s}.json") for s in ("left", "right")]
    holds = run_cli("calibrate", "sim://stand?scale=1.0", "--body-mass-kg", "72", "--yes",
                    *sum((["--check", f] for f in files), []))
    assert holds.returncode == 0 and b"holds" in holds.stdout
    off = run_cli("calibrate", "sim://stand?scale=1.3", "--body-mass-kg", "72", "--yes",
                  *sum((["--check", f] for f in files), []))
    assert off.returncode == 1 and b"does NOT hold" in off.stdout


def test_calibrate_bench_command(tmp_path):
    rows = ["zone,mass_kg,ohms"] + [f"heel,{m},{1 / (m * 9.80665 / 2e4):.3f}" for m in (1, 2, 5)]
    (tmp_path / "b.csv").write_text("\n".join(rows) + "\n")
    r = run_cli("calibrate-bench", tmp_path / "b.csv", "--side", "left", "--out", tmp_path / "bench.json")
    assert r.returncode == 0, r.stderr.decode()
    assert C.load(tmp_path / "bench.json").method == "bench"


@pytest.mark.parametrize("args", [
    ["calibrate", "missing-file.bin", "--body-mass-kg", "70", "--yes"],
    ["calibrate", "sim://walk", "--body-mass-kg", "70", "--yes"],
    ["calibrate", "sim://stand", "--body-mass-kg", "70", "--yes", "--check", "nope.json"],
    ["calibrate-bench", "nope.csv", "--side", "left"],
])
def test_bad_input_exits_2_with_one_line(args):
    r = run_cli(*args)
    err = r.stderr.decode().strip()
    assert r.returncode == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err


def test_not_a_trial_exits_2_with_one_line(tmp_path):
    p = tmp_path / "still.bin"
    p.write_bytes(standing.synthetic_standing_trial("left", phases=(("both", 15.0, ""),)))
    r = run_cli("calibrate", p, "--body-mass-kg", "70", "--yes")
    err = r.stderr.decode().strip()
    assert r.returncode == 2 and len(err.splitlines()) == 1 and "single-foot phase" in err, err


def test_implausible_body_mass_is_a_usage_error():
    r = run_cli("calibrate", "sim://stand", "--body-mass-kg", "7", "--yes")
    assert r.returncode == 2 and b"plausible" in r.stderr


# --- helpers --------------------------------------------------------------------------------


def _running_capture(side: str, k: float, body_mass_kg: float, seconds: float = 30.0, rate_hz: int = 500) -> bytes:
    """A plain running capture: half-sine contacts whose stride-mean force is half body weight."""
    stride_s, contact_s = 0.72, 0.26
    bw = body_mass_kg * C.G_M_PER_S2
    peak = (bw / 2 * stride_s) / (contact_s * 2 / np.pi)
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    phase = np.mod(t - 0.3, stride_s)
    total = np.where(phase < contact_s, peak * np.sin(np.pi * phase / contact_s), 0.0)
    shares = np.array([0.45, 0.03, 0.17, 0.22, 0.13])
    supply_mv, r_fixed = hardware.divider()
    volts = volts_from_force(total[:, None] * shares[None, :], supply_mv / 1e3, r_fixed, k)
    units = np.clip(np.rint(volts / P.SAMPLE_UNIT_V), 0, 65535).astype(np.uint16)
    out = bytearray(P.frame(P.Info(side, ZONES, rate_hz, supply_mv, r_fixed, "a0b1c2d3e401", "test")))
    per = 20
    for seq, i in enumerate(range(0, len(t), per)):
        out += P.frame(P.Data(side, seq, i * 2000, 2000, units[i:i + per]))
    return bytes(out)


@pytest.mark.slow
@pytest.mark.live
def test_live_trial_over_a_serial_port_is_recorded_cued_and_fitted(tmp_path):
    """A device behind a pseudo-terminal streams a standing trial in real time."""
    import os
    import threading
    import time
    import tty

    phase_s = 4.5
    raw = standing.synthetic_standing_trial("left", 70.0, k_n_ohm=DEFAULT_K_N_OHM * 0.8, rate_hz=100,
                                     phases=fits.trial_phases(phase_s))
    seconds = 1 + 3 * phase_s + 2 * fits.TRANSITION_S + 1
    master, slave = os.openpty()
    tty.setraw(slave)
    port = os.ttyname(slave)
    stop = threading.Event()

    def device():
        step = max(1, int(len(raw) * 0.05 / seconds))
        t0 = time.monotonic()
        for i in range(0, len(raw), step):
            if stop.is_set():
                return
            os.write(master, raw[i:i + step])
            time.sleep(max(0.0, t0 + (i + step) / len(raw) * seconds - time.monotonic()))

    th = threading.Thread(target=device, daemon=True)
    th.start()
    try:
        r = run_cli("calibrate", f"serial://{port}", "--body-mass-kg", "70", "--yes", "--phase-s", phase_s,
                    "--out-dir", tmp_path, "--session", tmp_path / "trial", timeout=120)
    finally:
        stop.set()
        th.join(timeout=5)
        os.close(master)
        os.close(slave)
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode()
    assert "NOW" in out and "LEFT foot only" in out
    assert (tmp_path / "trial" / "session.json").is_file()
    cal = C.load(tmp_path / "calibration-left.json")
    assert cal.channels["heel"][0] == pytest.approx(DEFAULT_K_N_OHM * 0.8, rel=0.03)
