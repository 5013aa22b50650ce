"""The simulator speaks the exact wire protocol with the firmware's timing, applies faults at the
requested rates, writes a truth that agrees with its own samples, and runs as `insole sim`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import serial

from insole import protocol
from insole.analysis.metrics import impact_transient
from insole.model import hardware, sensor
from insole.sim import (
    SCENARIOS,
    SimulatorError,
    batch_size,
    capture_bytes,
    simulate,
    truth_document,
)
from insole.sim.device import ADC_BITS, adc_full_scale_v, frame_many

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `insole ARGS...` as a user would (own helper: tests/firmware has its own conftest)."""
    return subprocess.run([sys.executable, "-m", "insole.cli", *map(str, args)],
                          capture_output=True, timeout=timeout, cwd=ROOT)


def decode(foot, **kw):
    d = protocol.StreamDecoder()
    pkts = d.feed(capture_bytes(foot))
    d.flush()
    return d, pkts


@pytest.fixture(scope="module")
def easy_left():
    return simulate("easy-run", "left", 60.0, seed=3)


def test_batch_size_fills_one_ble_notification():
    # MTU-sized (batch_ms 0): the most sets one BLE notification carries
    assert batch_size(5, batch_ms=0) == 23
    assert batch_size(8, batch_ms=0) == 14
    assert batch_size(1, batch_ms=0) == 115
    for c in range(1, 9):
        n = batch_size(c, batch_ms=0)
        assert 13 + 2 * c * n <= 247 - 3 < 13 + 2 * c * (n + 1)


def test_batch_size_closes_after_20_ms_as_the_firmware():
    # as firmware/sampler.py with config.BATCH_MS = 38: 38 ms of sets, capped by the MTU
    assert batch_size(5) == batch_size(5, 500) == 19
    assert batch_size(5, 1000) == 23 and batch_size(5, 250) == 9  # 1000 Hz: the MTU's 23
    assert batch_size(5, 25) == 1  # one set is 40 ms, more than 38: every set is a packet
    assert batch_size(5, 500, mtu=64) == 4
    assert batch_size(1, 1000) == 38
    assert batch_size(5, 500, batch_ms=20) == 10


def test_capture_decodes_with_firmware_timing(easy_left):
    foot = easy_left
    d, pkts = decode(foot)
    assert d.error_count == 0 and d.packets == len(pkts)
    info = pkts[0]
    assert isinstance(info, protocol.Info)
    assert info.side == "left" and info.zones == hardware.default_zones() and info.rate_hz == 500
    assert (info.supply_mv, info.r_fixed_ohm) == hardware.divider()
    assert info.firmware.startswith("sim-") and len(info.device_id) == 12
    data = [p for p in pkts if isinstance(p, protocol.Data)]
    assert all(p.side == "left" and p.period_us == 2000 and not p.overrun for p in data)
    assert [p.n_sets for p in data[:-1]] == [19] * (len(data) - 1)
    seq = np.array([p.seq for p in data])
    assert seq[0] == 0 and np.all(np.diff(seq) == 1)
    t0 = np.array([p.t0_us for p in data], dtype=np.int64)
    assert np.all(np.diff(t0) % 2**32 == 19 * 2000)
    samples = np.concatenate([p.samples for p in data])
    assert np.array_equal(samples, foot.units)
    assert samples.shape == (30000, 5)
    assert np.array_equal(foot.t_us[::19] & 0xFFFFFFFF, t0)
    status = [p for p in pkts if isinstance(p, protocol.Status)]
    assert len(status) == 60
    assert [s.achieved_hz for s in status] == [500] * 60
    assert all(s.streaming == 1 and s.overruns == 0 and s.fault_mask == 0 for s in status)
    assert all(160 <= s.cadence_spm <= 180 for s in status)
    assert np.all(np.diff([s.uptime_s for s in status]) == 1)
    # STATUS goes out about once a second, between the DATA packets of that second
    kinds = [type(p).__name__ for p in pkts]
    first_status = kinds.index("Status")
    assert 500 / 19 - 2 < first_status < 500 / 19 + 3


def test_frames_are_sent_when_their_last_sample_is_taken(easy_left):
    times = [t for t, _ in easy_left.frames()]
    assert times[0] == 0.0 and times == sorted(times)
    assert times[1] == pytest.approx(18 * 0.002)  # the 19th set of the first packet


def test_device_clock_wraps_and_t_us_is_unwrapped():
    foot = simulate("walk", "right", 8.0, clock_start_us=2**32 - 3_000_000)
    assert foot.t_us[0] == 2**32 - 3_000_000 and foot.t_us[-1] > 2**32
    assert np.all(np.diff(foot.t_us) == 2000)
    _, pkts = decode(foot)
    t0 = np.array([p.t0_us for p in pkts if isinstance(p, protocol.Data)], dtype=np.int64)
    assert np.any(np.diff(t0) < 0)  # the wire wraps
    assert np.all(np.diff(t0) % 2**32 == 38000)
    assert pkts[0].side == "right"


def test_framing_fast_path_equals_protocol_frame():
    rng = np.random.default_rng(0)
    pkts = [bytes(rng.integers(0, 3 if i % 2 else 256, n).astype(np.uint8))
            for n in range(2, 250) for i in range(6)]
    pkts += [b"\0" * 249, b"\x01" * 249, b"\0", b"\x01\x02"]
    assert frame_many(pkts) == [protocol.frame(p) for p in pkts]


def test_units_are_the_sensor_model_of_the_forces():
    # an ideal sensor: no noise, no FSR hysteresis or creep, no ADC floor
    foot = simulate("heel-striker", "left", 5.0, noise_mv=0, hysteresis_pct=0, creep_pct=0,
                    adc_floor_mv=0)
    supply_mv, r_fixed = hardware.divider()
    v = sensor.volts_from_force(foot.forces_n, supply_mv / 1000, r_fixed)
    lsb = adc_full_scale_v() / (2**ADC_BITS - 1)
    expect = sensor.volts_to_units(np.rint(v / lsb) * lsb)
    assert foot.units.dtype == np.uint16 and np.array_equal(foot.units, expect)
    back = sensor.force_from_volts(sensor.units_to_volts(foot.units), supply_mv / 1000, r_fixed)
    loaded = foot.forces_n > 50
    assert np.allclose(back[loaded], foot.forces_n[loaded], rtol=0.01)


def test_the_real_sensor_by_default():
    """The original ESP32's ADC reads 0 below 150 mV; hysteresis reads loading low and unloading
    high; creep raises the sensitivity over a run; a pre-load stays on in swing."""
    ideal = {"noise_mv": 0, "hysteresis_pct": 0, "creep_pct": 0, "adc_floor_mv": 0}
    real = simulate("easy-run", "left", 60.0)
    u = real.units.astype(int)
    assert np.all((u == 0) | (u >= 1500)) and np.any(u == 0) and np.any(u > 1500)
    assert real.faults.adc_floor_mv == 150.0
    flat = simulate("easy-run", "left", 60.0, **ideal)
    assert np.any((flat.units > 0) & (flat.units < 1500))
    # hysteresis: at equal true force the rising edge reads less than the falling one
    hyst = simulate("easy-run", "left", 60.0, **{**ideal, "hysteresis_pct": 4.0})
    heel = hyst.forces_n[:, 0]
    rising = np.gradient(heel) > 0
    ratio = hyst.units[:, 0].astype(float) / np.maximum(flat.units[:, 0], 1)
    band = (heel > 300) & (heel < 600)
    assert np.median(ratio[band & rising]) < 0.99 < 1.0 < np.median(ratio[band & ~rising])
    # creep: the same force reads higher at the end than at the start
    creep = simulate("easy-run", "left", 600.0, **{**ideal, "creep_pct": 2.0})
    ref = simulate("easy-run", "left", 600.0, **ideal)
    n = len(ref.units)
    gain = [np.median(creep.units[a:b][ref.units[a:b] > 5000] / ref.units[a:b][ref.units[a:b] > 5000])
            for a, b in ((0, n // 20), (n - n // 20, n))]
    assert gain[0] < 1.01 < 1.02 < gain[1] < 1.08
    # lacing pre-load: swing no longer reads 0 where the pre-load is above the floor
    pre = simulate("easy-run", "left", 10.0, **{**ideal, "preload_n": 40.0})
    swing = pre.forces_n.sum(1) == 0
    assert swing.any() and np.all(pre.units[swing].min(0) > 0)
    with pytest.raises(SimulatorError, match="preload-n"):
        simulate("easy-run", "left", 10.0, preload_n=-1)


def test_noise_is_a_few_mv():
    quiet = simulate("easy-run", "left", 5.0, noise_mv=0)
    noisy = simulate("easy-run", "left", 5.0, noise_mv=3)
    d = (noisy.units.astype(float) - quiet.units) * 0.1  # mV
    loaded = quiet.forces_n > 100
    assert 2.5 < d[loaded].std() < 3.5


def test_each_foot_carries_half_the_body_weight_on_average():
    for name in ("easy-run", "walk", "forefoot-runner"):
        foot = simulate(name, "left", 30.0)
        bw = foot.body_mass_kg * 9.81
        assert foot.forces_n.sum(1).mean() == pytest.approx(bw / 2, rel=0.03)


def test_truth_document_schema(easy_left):
    right = simulate("easy-run", "right", 60.0, seed=3)
    doc = truth_document({"left": easy_left, "right": right})
    doc = json.loads(json.dumps(doc))  # JSON-clean
    assert doc["schema"] == "insole.truth/1" and doc["scenario"] == "easy-run"
    assert (doc["seed"], doc["rate_hz"], doc["duration_s"]) == (3, 500, 60.0)
    assert doc["body_mass_kg"] == 70.0 and doc["contact_threshold_n"] == 20.0
    assert doc["expected_flags"] == []
    assert sorted(doc["absent_flags"]) == ["arch_collapse", "forefoot_overload", "heel_strike_force"]
    for side in ("left", "right"):
        foot = doc["feet"][side]
        assert foot["zones"] == list(hardware.default_zones())
        steps = foot["steps"]
        assert len(steps) > 70
        ic = np.array([s["ic_s"] for s in steps])
        to = np.array([s["to_s"] for s in steps])
        assert ic[0] >= 0 and to[-1] <= 60.0 and np.all(ic < to) and np.all(to[:-1] < ic[1:])
        for s in steps:
            assert set(s) == {"ic_s", "to_s", "contact_ms", "strike", "valr_bw_per_s", "valr_method",
                              "impact_peak_bw", "impact_transient", "peak_force_bw",
                              "zone_impulse_share"}
            assert s["contact_ms"] == pytest.approx((s["to_s"] - s["ic_s"]) * 1000, abs=0.01)
            assert sum(s["zone_impulse_share"].values()) == pytest.approx(1, abs=1e-5)
    hs = truth_document({"right": simulate("heel-striker", "right", 10.0)})
    assert hs["expected_flags"] == [{"code": "heel_strike_force", "side": "right"}]
    assert list(hs["feet"]) == ["right"]


def test_truth_agrees_with_the_foots_own_samples():
    """Contacts, VALR and shares recomputed from noise-free 1000 Hz samples match the truth."""
    for name in ("heel-striker", "forefoot-runner"):
        foot = simulate(name, "left", 20.0, rate_hz=1000, noise_mv=0, drift_ppm=45)
        bw = foot.body_mass_kg * 9.81
        t = (foot.t_us - foot.t_us[0]) / 1e6
        total = foot.forces_n.sum(1)
        for s in foot.truth["steps"]:
            k = int(np.searchsorted(t, s["ic_s"]))
            assert total[k - 1] < 20.0 <= total[k] + 1e-9
            k = int(np.searchsorted(t, s["to_s"]))
            assert total[k - 1] >= 20.0 - 1e-9 > total[k]
            a, b = np.searchsorted(t, [s["ic_s"], s["to_s"]])
            shares = foot.forces_n[a:b].sum(0) / foot.forces_n[a:b].sum()
            got = dict(zip(foot.info.zones, shares))
            for z, v in s["zone_impulse_share"].items():
                assert got[z] == pytest.approx(v, abs=0.004)
            seg = total[a - 1:b + 1] / bw
            tt = t[a - 1:b + 1]
            dur = s["to_s"] - s["ic_s"]
            if s["valr_method"] == "20-80":
                # the analysis's definition on the foot's own 1000 Hz samples (6 ms smoothing)
                peak = s["impact_peak_bw"]
                it = impact_transient(seg, 1000.0, int(0.3 * dur * 1000) + 1, 0.8)
                assert it is not None and it.kind == s["impact_transient"]
                assert it.value == pytest.approx(peak, abs=0.03)
                assert it.valr_per_s == pytest.approx(s["valr_bw_per_s"], rel=0.03)
            else:
                f1, f2 = np.interp([s["ic_s"] + 0.03 * dur, s["ic_s"] + 0.12 * dur], tt, seg)
                assert (f2 - f1) / (0.09 * dur) == pytest.approx(s["valr_bw_per_s"], rel=0.01)
            assert seg.max() == pytest.approx(s["peak_force_bw"], abs=0.01)


def test_left_and_right_alternate_on_one_true_time_base():
    feet = {s: simulate("easy-run", s, 30.0, seed=4) for s in ("left", "right")}
    ev = []
    for s, f in feet.items():
        for st in f.truth["steps"]:
            ev.append((f.true_time_s(st["ic_s"]), s))
    ev.sort()
    sides = [s for _, s in ev]
    assert all(a != b for a, b in zip(sides, sides[1:]))


def test_loss_drops_frames_at_the_requested_rate():
    foot = simulate("easy-run", "left", 300.0, rate_hz=250, loss_pct=10)
    d, pkts = decode(foot)
    assert d.error_count == 0 and isinstance(pkts[0], protocol.Info)
    seq = np.array([p.seq for p in pkts if isinstance(p, protocol.Data)])
    sent = int(np.sum(np.diff(seq) % 65536)) + 1
    lost = sent - len(seq)
    assert 0.085 < lost / sent < 0.115
    assert len([p for p in pkts if isinstance(p, protocol.Status)]) < 295


def test_corrupt_damages_frames_at_the_requested_rate():
    foot = simulate("easy-run", "right", 300.0, rate_hz=250, corrupt_pct=5)
    frames = list(foot.frames())
    d = protocol.StreamDecoder()
    pkts = d.feed(b"".join(f for _, f in frames))
    assert isinstance(pkts[0], protocol.Info)
    assert d.error_count + len(pkts) == len(frames)  # one decoder error per damaged frame
    assert 0.04 < d.error_count / len(frames) < 0.06


def test_overrun_shows_as_a_t0_jump_with_the_overrun_bit():
    foot = simulate("easy-run", "left", 20.0, overrun_at=[10.0], overrun_ms=100)
    assert foot.units.shape[0] == 10000 - 50
    d, pkts = decode(foot)
    assert d.error_count == 0
    data = [p for p in pkts if isinstance(p, protocol.Data)]
    assert np.all(np.diff([p.seq for p in data]) == 1)
    flagged = [i for i, p in enumerate(data) if p.overrun]
    assert len(flagged) == 1
    i = flagged[0]
    gap = (data[i].t0_us - data[i - 1].t0_us) % 2**32 - data[i - 1].n_sets * 2000
    assert gap == 50 * 2000
    assert data[i - 1].n_sets < 23  # the batch before the overrun goes out short
    st = [p for p in pkts if isinstance(p, protocol.Status)]
    assert [s.overruns for s in st[9:12]] == [0, 50, 50]
    assert st[10].achieved_hz == 450 and st[9].achieved_hz == 500


def test_disconnected_sensor_reads_zero_and_is_reported():
    foot = simulate("easy-run", "left", 12.0, disconnect_sensor="met1", disconnect_at_s=4.0)
    c = foot.info.zones.index("met1")
    t = (foot.t_us - foot.t_us[0]) / 1e6
    assert np.all(foot.units[t >= 4.0, c] == 0)
    assert foot.units[t < 4.0, c].max() > 1000
    _, pkts = decode(foot)
    masks = [p.fault_mask for p in pkts if isinstance(p, protocol.Status)]
    assert masks[:4] == [0] * 4 and masks[-1] == 1 << c
    assert foot.truth == simulate("easy-run", "left", 12.0).truth  # truth stays the model's


def test_rate_changes_period_and_batch_keeps_38_ms():
    foot = simulate("walk", "left", 10.0, rate_hz=100)
    _, pkts = decode(foot)
    data = [p for p in pkts if isinstance(p, protocol.Data)]
    assert data[0].period_us == 10000 and data[0].n_sets == 3  # 38 ms of 10 ms sets
    assert pkts[0].rate_hz == 100 and foot.units.shape[0] == 1000
    assert {p.achieved_hz for p in pkts if isinstance(p, protocol.Status)} == {100}


def test_same_seed_same_bytes_other_seed_other_run():
    a = capture_bytes(simulate("walk", "left", 5.0, seed=7, loss_pct=5))
    assert a == capture_bytes(simulate("walk", "left", 5.0, seed=7, loss_pct=5))
    assert a != capture_bytes(simulate("walk", "left", 5.0, seed=8, loss_pct=5))


@pytest.mark.parametrize("kw", [
    {"scenario": "marathon"}, {"rate_hz": 10}, {"rate_hz": 2000}, {"duration_s": 0},
    {"duration_s": -3}, {"side": "middle"}, {"loss_pct": 150}, {"disconnect_sensor": "toe"},
    {"overrun_at": [99.0]}, {"bogus_fault": 1}, {"seed": -1}, {"seed": 1.5},
])
def test_bad_requests_raise_simulator_error(kw):
    args = {"scenario": "easy-run", "side": "left", "duration_s": 10.0} | kw
    with pytest.raises(SimulatorError):
        simulate(**args)


def test_scenarios_are_registered():
    assert set(SCENARIOS) >= {"easy-run", "heel-striker", "forefoot-overload", "arch-collapse",
                              "forefoot-runner", "walk"}


# --- the command line -------------------------------------------------------------------------


def test_cli_out_both_sides_and_truth(tmp_path):
    r = run_cli("sim", "forefoot-overload", "--duration-s", "20", "--seed", "2", "--out",
                tmp_path / "cap", "--truth", tmp_path / "truth.json", "--loss-pct", "2")
    assert r.returncode == 0, r.stderr
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert set(truth["feet"]) == {"left", "right"}
    assert truth["expected_flags"] == [{"code": "forefoot_overload", "side": "left"},
                                       {"code": "forefoot_overload", "side": "right"}]
    for side in ("left", "right"):
        d = protocol.StreamDecoder()
        pkts = d.feed((tmp_path / "cap" / f"{side}.bin").read_bytes())
        assert d.error_count == 0 and pkts[0].side == side


def test_cli_out_one_side_is_the_capture_file(tmp_path):
    r = run_cli("sim", "walk", "--side", "right", "--duration-s", "5", "--rate-hz", "200",
                "--out", tmp_path / "r.bin")
    assert r.returncode == 0, r.stderr
    d = protocol.StreamDecoder()
    pkts = d.feed((tmp_path / "r.bin").read_bytes())
    assert d.error_count == 0 and pkts[0].side == "right" and pkts[0].rate_hz == 200


@pytest.mark.parametrize("args", [
    ["nope", "--out", "x"],
    ["walk", "--rate-hz", "24", "--out", "x"],
    ["walk", "--rate-hz", "1001", "--out", "x"],
    ["walk", "--rate-hz", "fast", "--out", "x"],
    ["walk", "--duration-s", "0", "--out", "x"],
    ["walk", "--duration-s", "soon", "--out", "x"],
    ["walk", "--side", "middle", "--out", "x"],
    ["walk", "--seed", "-4", "--out", "x"],
    ["walk", "--loss-pct", "lots", "--out", "x"],
    ["walk"],
])
def test_cli_bad_input_is_one_line_and_exit_2(args, tmp_path):
    r = run_cli("sim", *args)
    assert r.returncode == 2
    err = r.stderr.decode().strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and err.startswith("insole sim: error:")
    assert not (ROOT / "x").exists()


def _start_pty_sim(*args):
    return subprocess.Popen([sys.executable, "-m", "insole.cli", "sim", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)


def _finish(proc):
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=10)  # reaps it and closes the pipes


def _read_ports(proc, n):
    ports = {}
    for _ in range(n):
        side, path = proc.stdout.readline().decode().split()
        ports[side] = path
    return ports


@pytest.mark.live
def test_pty_streams_decodable_frames_in_real_time(tmp_path):
    truth = tmp_path / "t.json"
    proc = _start_pty_sim("easy-run", "--pty", "--duration-s", "3", "--truth", truth)
    try:
        ports = _read_ports(proc, 2)
        assert set(ports) == {"left", "right"} and all(p.startswith("/dev/") for p in ports.values())
        assert json.loads(truth.read_text())["schema"] == "insole.truth/1"
        conns = {s: serial.Serial(p, timeout=1) for s, p in ports.items()}
        decs = {s: protocol.StreamDecoder() for s in ports}
        got = {s: [] for s in ports}
        t_start = time.monotonic()
        closed = set()
        while len(closed) < 2 and time.monotonic() - t_start < 15:
            for s, c in conns.items():
                if s in closed:
                    continue
                try:
                    got[s] += decs[s].feed(c.read(c.in_waiting or 1))
                except serial.SerialException:
                    closed.add(s)  # the simulator closed its end: unplugged
        elapsed = time.monotonic() - t_start
        for c in conns.values():
            c.close()
        assert proc.wait(10) == 0
    finally:
        _finish(proc)
    assert closed == {"left", "right"}
    assert 2.0 < elapsed < 10  # paced by device time, not as fast as possible
    for s in ports:
        assert decs[s].error_count == 0
        data = [p for p in got[s] if isinstance(p, protocol.Data)]
        assert len(data) > 40 and all(p.side == s for p in data)
        assert np.all(np.diff([p.seq for p in data]) == 1)


@pytest.mark.live
def test_pty_stops_on_sigterm():
    proc = _start_pty_sim("walk", "--pty", "--side", "left", "--duration-s", "600")
    try:
        ports = _read_ports(proc, 1)
        with serial.Serial(ports["left"], timeout=1) as c:
            d = protocol.StreamDecoder()
            pkts = []
            t_end = time.monotonic() + 5
            while not any(isinstance(p, protocol.Data) for p in pkts) and time.monotonic() < t_end:
                pkts += d.feed(c.read(64))
            assert d.error_count == 0 and pkts
            os.kill(proc.pid, signal.SIGTERM)
            assert proc.wait(10) == 0
    finally:
        _finish(proc)


@pytest.mark.live
def test_pty_device_answers_commands_like_the_firmware():
    proc = _start_pty_sim("easy-run", "--pty", "--side", "left", "--duration-s", "60", "--rate-hz", "200")
    try:
        port = _read_ports(proc, 1)["left"]
        with serial.Serial(port, timeout=0.2) as c:
            d = protocol.StreamDecoder()

            def command(raw: bytes, wait_s: float = 0.6) -> list:
                c.write(protocol.frame(raw))
                got: list = []
                t_end = time.monotonic() + wait_s
                while time.monotonic() < t_end:
                    got += d.feed(c.read(4096))
                return got

            got = command(protocol.encode(protocol.Command(protocol.CMD_GET_INFO)))
            replies = [p for p in got if isinstance(p, protocol.Reply)]
            assert replies == [protocol.Reply(protocol.CMD_GET_INFO, protocol.REPLY_OK)]
            k = got.index(replies[0])
            infos = [p for p in got[k:] if isinstance(p, protocol.Info)]
            assert infos and infos[0].side == "left" and infos[0].rate_hz == 200
            got = command(protocol.encode(protocol.Command(protocol.CMD_STOP)), wait_s=2.5)
            k = [i for i, p in enumerate(got) if isinstance(p, protocol.Reply)][0]
            after = got[k + 1:]
            assert not any(isinstance(p, protocol.Data) for p in after)
            assert [p.streaming for p in after if isinstance(p, protocol.Status)][-1] == 0
            got = command(protocol.encode(protocol.Command(protocol.CMD_START)))
            assert protocol.Reply(protocol.CMD_START, 0) in got
            assert any(isinstance(p, protocol.Data) for p in got)
            codes = {}
            for raw in (bytes([1, protocol.CMD_SET_RATE]) + (5000).to_bytes(2, "little"),
                        bytes([1, protocol.CMD_SET_RATE]) + (500).to_bytes(2, "little"),
                        bytes([1, protocol.CMD_SET_SIDE, 1]), bytes([1, protocol.CMD_SET_SIDE, 0]),
                        bytes([1, protocol.CMD_IDENTIFY, 7]), bytes([1, 0x2F])):
                rep = [p for p in command(raw, 0.3) if isinstance(p, protocol.Reply)]
                assert len(rep) == 1
                codes[raw] = rep[0].code
            assert list(codes.values()) == [protocol.REPLY_OUT_OF_RANGE, protocol.REPLY_BUSY,
                                            protocol.REPLY_BUSY, protocol.REPLY_OK,
                                            protocol.REPLY_BAD_LENGTH, protocol.REPLY_UNKNOWN_COMMAND]
            assert d.error_count == 0
    finally:
        _finish(proc)
