"""Firmware in the loop: the real firmware under MicroPython, fed a 2-minute simulated run,
writes a capture that decodes cleanly, at the configured rate, with the simulator's exact
readings, and that analyses to the same steps as the simulator's own capture."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from fwtest import ROOT

from insole import protocol
from insole.validation.score import match_steps

SECONDS = 120
SCENARIO = "easy-run"
SEED = 3


def _run_cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "insole.cli", *map(str, args)],
                          capture_output=True, timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="module")
def captures(tmp_path_factory):
    d = tmp_path_factory.mktemp("fil")
    fil, sim = d / "fil.bin", d / "sim.bin"
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "firmware_loop.py"), SCENARIO,
                        "--side", "left", "--duration-s", str(SECONDS), "--seed", str(SEED),
                        "--out", str(fil)], capture_output=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr.decode()
    r = _run_cli("sim", SCENARIO, "--side", "left", "--duration-s", SECONDS, "--seed", SEED,
                 "--out", sim)
    assert r.returncode == 0, r.stderr.decode()
    return fil, sim


def _decode(path):
    dec = protocol.StreamDecoder()
    pkts = dec.feed(path.read_bytes())
    dec.flush()
    return pkts, dec


def test_capture_decodes_without_errors_or_gaps(captures):
    pkts, dec = _decode(captures[0])
    assert dec.error_count == 0, dec.errors
    assert isinstance(pkts[0], protocol.Info), "INFO first on the serial stream"
    data = [p for p in pkts if isinstance(p, protocol.Data)]
    seqs = np.array([p.seq for p in data])
    assert (np.diff(seqs) % 65536 == 1).all(), "no seq gaps"
    assert not any(p.overrun for p in data)
    # Every sample set on the nominal grid: t0 steps by N * period, period 2000 us.
    t0 = np.array([p.t0_us for p in data], dtype=np.int64)
    n = np.array([p.n_sets for p in data])
    assert {p.period_us for p in data} == {2000}
    assert (np.diff(t0) % (1 << 32) == (n[:-1] * 2000)).all()
    total = int(n.sum())
    assert abs(total - SECONDS * 500) <= 500 * 0.01 * SECONDS  # the configured rate within 1 %


def test_rate_within_one_percent(captures):
    pkts, _ = _decode(captures[0])
    data = [p for p in pkts if isinstance(p, protocol.Data)]
    span_s = ((data[-1].t0_us - data[0].t0_us) % (1 << 32)) / 1e6
    sets = sum(p.n_sets for p in data[:-1])
    rate_hz = sets / span_s
    assert abs(rate_hz - 500) / 500 < 0.01, rate_hz
    status = [p for p in pkts if isinstance(p, protocol.Status)]
    assert len(status) >= SECONDS - 1
    achieved = np.array([s.achieved_hz for s in status[1:]])
    assert (np.abs(achieved - 500) <= 5).all(), achieved
    assert all(s.overruns == 0 and s.fault_mask == 0 and s.rate_hz == 500 for s in status)


def test_samples_are_the_simulators_readings(captures):
    from insole.sim import simulate
    foot = simulate(SCENARIO, "left", SECONDS, rate_hz=500, seed=SEED)
    pkts, _ = _decode(captures[0])
    got = np.concatenate([p.samples for p in pkts if isinstance(p, protocol.Data)])
    assert got.shape == foot.units.shape
    assert np.array_equal(got, foot.units)
    first = next(p for p in pkts if isinstance(p, protocol.Data))
    assert first.t0_us == int(foot.t_us[0]) & 0xFFFFFFFF, "the device clock starts where the sim's does"


def test_on_device_cadence_matches_the_model(captures):
    # The firmware's own step detector (STATUS cadence_spm) against the simulator's model cadence.
    fil = [p.cadence_spm for p in _decode(captures[0])[0] if isinstance(p, protocol.Status)]
    sim = [p.cadence_spm for p in _decode(captures[1])[0] if isinstance(p, protocol.Status)]
    n = min(len(fil), len(sim))
    diff = np.abs(np.array(fil[5:n], dtype=int) - np.array(sim[5:n], dtype=int))
    assert n > 100 and diff.max() <= 3, diff.max()


def _steps(path):
    r = _run_cli("analyse", path, "--json", "-")
    assert r.returncode == 0, r.stderr.decode()
    doc = json.loads(r.stdout)
    return [s["ic_s"] for s in doc["feet"]["left"]["steps"]]


def test_same_steps_as_the_simulators_capture(captures):
    fil_ic = _steps(captures[0])
    sim_ic = _steps(captures[1])
    assert len(sim_ic) > 100
    pairs = match_steps(fil_ic, sim_ic, 0.020)
    precision = len(pairs) / len(fil_ic)
    recall = len(pairs) / len(sim_ic)
    f1 = 2 * precision * recall / (precision + recall)
    assert f1 >= 0.99, (f1, len(fil_ic), len(sim_ic))


def test_ticks_us_wrap_during_a_run():
    # The fake ticks_us wraps at 2**30 (as on the ESP32) 5 s into this run: the stream must not
    # notice (the firmware's 32-bit clock accumulates ticks_diff).
    import firmware_loop

    from insole.sim import simulate
    foot = simulate(SCENARIO, "right", 12, rate_hz=1000, seed=SEED)
    buf = bytearray()
    firmware_loop.run_firmware(foot, buf.extend, start_us=(1 << 30) - 5_000_000)
    dec = protocol.StreamDecoder()
    pkts = dec.feed(bytes(buf))
    assert dec.error_count == 0
    assert pkts[0].side == "right" and pkts[0].rate_hz == 1000
    data = [p for p in pkts if isinstance(p, protocol.Data)]
    t0 = np.array([p.t0_us for p in data], dtype=np.int64)
    n = np.array([p.n_sets for p in data])
    assert {p.period_us for p in data} == {1000}
    assert (np.diff(t0) % (1 << 32) == n[:-1] * 1000).all()
    assert np.array_equal(np.concatenate([p.samples for p in data]), foot.units)


def test_disconnected_sensor_sets_its_fault_bit_and_streaming_goes_on():
    import firmware_loop

    from insole.sim import simulate
    foot = simulate(SCENARIO, "left", 10, seed=SEED, disconnect_sensor="met1", disconnect_at_s=4)
    bit = 1 << foot.info.zones.index("met1")
    buf = bytearray()
    firmware_loop.run_firmware(foot, buf.extend)
    pkts = protocol.StreamDecoder().feed(bytes(buf))
    masks = [p.fault_mask for p in pkts if isinstance(p, protocol.Status)]
    assert masks[:4] == [0, 0, 0, 0] and masks[5:] == [bit] * (len(masks) - 5), masks
    sets = sum(p.n_sets for p in pkts if isinstance(p, protocol.Data))
    assert sets == len(foot.units), "every sample set still streamed"
