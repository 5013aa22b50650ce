"""The simulated insole device: samples the gait model the way the firmware does and packs it.

Per foot: its own 32-bit microsecond clock (random start so that wraps happen, a drift of up to
±50 ppm against true time), INFO first, DATA packets cut as the firmware cuts them (38 ms of
sets, or the MTU if fewer), STATUS once a second of device time, every packet framed for a serial link (``protocol.frame``). Faults
(frame loss, corrupt bytes, device overruns, a disconnected sensor, noise, clock drift) are
applied on demand; the ground truth always stays the model's.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from insole import protocol
from insole.errors import InsoleError
from insole.model import hardware, sensor
from insole.sim import gait
from insole.sim.scenarios import SCENARIOS, Scenario

log = logging.getLogger(__name__)

FIRMWARE = "sim-0.1.0"
TRUTH_SCHEMA = "insole.truth/1"
ATT_MTU = 247
# The firmware's BATCH_MS (firmware/config.py): a DATA packet closes after 38 ms of sample sets
# (20 at 500 Hz) or when it fills the MTU, if sooner (docs/latency.md)
BATCH_MS = 38
MAX_DURATION_S = 4 * 3600.0
# The ESP32's ADC: 12 bits over 0 to its full scale at 11 dB attenuation (3.1 V for the default
# board's chip in hardware/pinmap.json). read_uv calibrates the raw code; the simulator keeps the
# 12-bit step (~0.76 mV) as the quantisation before the wire's 100 µV units, and saturates at
# full scale as the real pin does.
ADC_BITS = 12
DEFAULT_NOISE_MV = 2.0
DEFAULT_OVERRUN_MS = 100.0
MAX_DRIFT_PPM = 50.0
# The firmware marks a channel as faulty after it has read exactly 0 V for this long.
FAULT_DETECT_S = 2.0

# The FSR's own behaviour, on by default (docs/simulator.md, "Sensor realism"): readings lag the
# force's direction (hysteresis: a loading sensor reads low, an unloading one high, by up to
# this fraction of the force), its sensitivity creeps up under repeated load over a long run
# (gain 1 + creep·ln(1 + t / 60 s), per zone 0.7-1.3 times this), and the original ESP32's ADC
# reads 0 below the lower end of its accurate range (150 mV at 11 dB, hardware/pinmap.json).
DEFAULT_HYSTERESIS_PCT = 4.0
HYSTERESIS_RATE_N_PER_S = 2000.0  # |dF/dt| at which the hysteresis is 76 % developed (tanh 1)
DEFAULT_CREEP_PCT = 2.0
CREEP_TIME_S = 60.0

# A burst of garbage is up to this many random bytes between two frames (an ESP32's ROM boot
# log read at the wrong baud rate, a noisy cable): it can cost the frame that follows it.
DEFAULT_GARBAGE_BYTES = 64

FAULT_OPTIONS = ("loss_pct", "corrupt_pct", "garbage_pct", "garbage_bytes", "overrun_at", "overrun_ms", "disconnect_sensor",
                 "disconnect_at_s", "noise_mv", "drift_ppm", "clock_start_us", "adc_floor_mv",
                 "hysteresis_pct", "creep_pct", "preload_n")


class SimulatorError(InsoleError):
    """A simulator request that cannot be met (unknown scenario, rate or duration out of range)."""


def adc_full_scale_v() -> float:
    """Full-scale voltage of the default board's ADC (hardware/pinmap.json), in volts."""
    return hardware.adc_full_scale_mv() / 1000.0


def frame_many(packets: list[bytes]) -> list[bytes]:
    """``[protocol.frame(p) for p in packets]``, vectorised over all packets at once.

    Every packet the device sends with an ATT MTU of 247 is at most 244 bytes, so COBS never
    needs a 0xFF block: in ``code ‖ packet ‖ crc ‖ 0x00`` each zero byte (and the leading code)
    becomes the distance to the next zero. The tests check it equals ``protocol.frame``.
    """
    if not packets:
        return []
    if max(len(p) for p in packets) + 4 >= 254:
        return [protocol.frame(p) for p in packets]
    raws = [p + zlib.crc32(p).to_bytes(4, "little") for p in packets]
    lens = np.fromiter((len(r) for r in raws), np.int64, len(raws))
    src = np.frombuffer(b"".join(raws), np.uint8)
    starts = np.concatenate(([0], np.cumsum(lens + 2)[:-1]))  # where each frame's code byte goes
    out = np.zeros(int((lens + 2).sum()), np.uint8)
    src_starts = np.concatenate(([0], np.cumsum(lens)[:-1]))
    out[np.arange(src.shape[0]) + np.repeat(starts + 1 - src_starts, lens)] = src
    delim = starts + lens + 1
    z = np.flatnonzero(out == 0)  # code placeholders, zero data bytes, delimiters (in order)
    is_delim = np.zeros(out.shape[0], bool)
    is_delim[delim] = True
    k = np.flatnonzero(~is_delim[z])
    out[z[k]] = z[k + 1] - z[k]
    blob = out.tobytes()
    ends = starts + lens + 2
    return [blob[a:b] for a, b in zip(starts.tolist(), ends.tolist())]


def batch_size(channels: int, rate_hz: int = 500, mtu: int = ATT_MTU, batch_ms: int | None = None) -> int:
    """Sample sets per DATA packet as the firmware cuts them (``firmware/sampler.py``): the most
    that fit one BLE notification (13 + 2·C·N ≤ MTU − 3), or ``batch_ms`` of sets if fewer
    (``rate_hz · batch_ms / 1000``, at least 1; 0 ms: the MTU alone; default :data:`BATCH_MS`)."""
    n = min(protocol.MAX_SETS, (mtu - 3 - protocol.DATA_HEADER_BYTES) // (2 * channels))
    if batch_ms is None:
        batch_ms = BATCH_MS
    if batch_ms > 0:
        n = min(n, max(1, rate_hz * batch_ms // 1000))
    return n


@dataclass(frozen=True)
class Faults:
    """Faults to inject (all off by default except a little sensor noise and clock drift).

    Attributes:
        loss_pct: percentage of frames dropped in transport (never the first INFO).
        corrupt_pct: percentage of frames with one byte changed (never the first INFO).
        garbage_pct: percentage of frames preceded by a burst of random bytes (1 to
            ``garbage_bytes`` of them; zero bytes included, so the burst can swallow the
            start of the frame after it).
        garbage_bytes: the longest burst, in bytes (default 64).
        overrun_at: device times (s since the first sample) where the device drops sample sets.
        overrun_ms: how long each overrun lasts (sets dropped = overrun_ms · rate).
        disconnect_sensor: a zone whose channel reads 0 V from ``disconnect_at_s`` on.
        disconnect_at_s: default: half the duration.
        noise_mv: RMS sensor/ADC noise added to each reading, in mV.
        drift_ppm: device clock rate error (+ = fast); default: random in ±50 ppm.
        clock_start_us: device clock at the first sample; default: random in [0, 2^32).
        adc_floor_mv: readings below this read 0 (default: the board's ADC, 150 mV on the
            original ESP32; 0 turns it off).
        hysteresis_pct: FSR hysteresis, % of the force (default 4; 0 off).
        creep_pct: FSR sensitivity creep per e-fold of run time over 60 s (default 2; 0 off).
        preload_n: a lacing pre-load on every zone (0.5-1.5 times this per zone), also in
            swing (default 0).
    """

    loss_pct: float = 0.0
    corrupt_pct: float = 0.0
    garbage_pct: float = 0.0
    garbage_bytes: int = DEFAULT_GARBAGE_BYTES
    overrun_at: tuple[float, ...] = ()
    overrun_ms: float = DEFAULT_OVERRUN_MS
    disconnect_sensor: str | None = None
    disconnect_at_s: float | None = None
    noise_mv: float = DEFAULT_NOISE_MV
    drift_ppm: float | None = None
    clock_start_us: int | None = None
    adc_floor_mv: float | None = None
    hysteresis_pct: float = DEFAULT_HYSTERESIS_PCT
    creep_pct: float = DEFAULT_CREEP_PCT
    preload_n: float = 0.0

    def describe(self) -> dict:
        return {"loss_pct": self.loss_pct, "corrupt_pct": self.corrupt_pct,
                "garbage_pct": self.garbage_pct, "garbage_bytes": self.garbage_bytes,
                "overrun_at_s": list(self.overrun_at), "overrun_ms": self.overrun_ms,
                "disconnect_sensor": self.disconnect_sensor,
                "disconnect_at_s": self.disconnect_at_s, "noise_mv": self.noise_mv,
                "adc_floor_mv": self.adc_floor_mv, "hysteresis_pct": self.hysteresis_pct,
                "creep_pct": self.creep_pct, "preload_n": self.preload_n}


def _faults(kw: dict, duration_s: float, zones: tuple[str, ...]) -> Faults:
    unknown = sorted(set(kw) - set(FAULT_OPTIONS))
    if unknown:
        raise SimulatorError(f"unknown fault option(s) {', '.join(unknown)}; known: "
                             f"{', '.join(FAULT_OPTIONS)}")
    kw = {k: v for k, v in kw.items() if v is not None}
    ov = kw.get("overrun_at", ())
    if isinstance(ov, (int, float)):
        ov = (float(ov),)
    kw["overrun_at"] = tuple(float(x) for x in ov)
    for name in ("loss_pct", "corrupt_pct", "garbage_pct"):
        v = float(kw.get(name, 0.0))
        if not 0.0 <= v <= 100.0:
            raise SimulatorError(f"{name.replace('_', '-')} must be 0-100, got {v:g}")
        kw[name] = v
    for t in kw["overrun_at"]:
        if not 0.0 <= t < duration_s:
            raise SimulatorError(f"overrun-at {t:g} s is outside the run (0-{duration_s:g} s)")
    gb = float(kw.get("garbage_bytes", DEFAULT_GARBAGE_BYTES))
    if gb != int(gb) or not 1 <= gb <= 65536:
        raise SimulatorError(f"garbage-bytes must be a whole number 1-65536, got {gb:g}")
    kw["garbage_bytes"] = int(gb)
    if float(kw.get("noise_mv", 0.0)) < 0 or float(kw.get("overrun_ms", 1.0)) <= 0:
        raise SimulatorError("noise-mv must be ≥ 0 and overrun-ms > 0")
    for name, top in (("adc_floor_mv", 1000.0), ("hysteresis_pct", 50.0), ("creep_pct", 50.0),
                      ("preload_n", 500.0)):
        if name in kw:
            v = float(kw[name])
            if not 0.0 <= v <= top:
                raise SimulatorError(f"{name.replace('_', '-')} must be 0-{top:g}, got {v:g}")
            kw[name] = v
    if kw.get("adc_floor_mv") is None:
        kw["adc_floor_mv"] = float(hardware.adc_accurate_range_mv()[0])
    z = kw.get("disconnect_sensor")
    if z is not None and z not in zones:
        raise SimulatorError(f"disconnect-sensor {z!r} is not a zone of this insole "
                             f"({', '.join(zones)})")
    if z is not None and "disconnect_at_s" not in kw:
        kw["disconnect_at_s"] = duration_s / 2
    return Faults(**kw)


@dataclass(eq=False)
class SimFoot:
    """One simulated insole's capture.

    Attributes:
        info: the INFO packet the device sends first.
        units: (n, C) uint16, the sample sets the device actually took, in 100 µV units.
        t_us: (n,) int64, device time of each sample set, unwrapped (``t_us & 0xFFFFFFFF`` is
            what goes on the wire).
        forces_n: (n, C) noise-free zone forces at those instants, in newtons.
        truth: this foot's ground truth (``{"zones": [...], "steps": [...], ...}``).
    """

    scenario: str
    side: str
    seed: int
    rate_hz: int
    duration_s: float
    body_mass_kg: float
    info: protocol.Info
    units: np.ndarray
    t_us: np.ndarray
    forces_n: np.ndarray
    truth: dict
    faults: Faults
    drift_ppm: float
    start_true_s: float
    cadence_at: object = field(repr=False, default=None)
    scenario_def: Scenario | None = field(repr=False, default=None)
    _dropped_at_us: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.int64))

    @property
    def period_us(self) -> int:
        return int(round(1e6 / self.rate_hz))

    @property
    def batch(self) -> int:
        return batch_size(len(self.info.zones), self.rate_hz)

    def true_time_s(self, device_time_s: float) -> float:
        """True (model) time of a device time given in seconds since the first sample."""
        return self.start_true_s + device_time_s / (1.0 + self.drift_ppm * 1e-6)

    def packets(self) -> Iterator[tuple[float, protocol.Packet]]:
        """(device time s since the first sample, packet) in send order, without transport faults."""
        period = self.period_us
        t_first = int(self.t_us[0]) if self.t_us.size else 0
        rel_us = self.t_us - t_first
        n = rel_us.shape[0]
        # Runs of consecutive sample sets: an overrun splits them; each run is cut into batches.
        breaks = np.flatnonzero(np.diff(rel_us) != period) + 1
        starts, overrun = [], []
        for r, (a, b) in enumerate(zip(np.r_[0, breaks], np.r_[breaks, n])):
            s = list(range(int(a), int(b), self.batch))
            starts += s
            overrun += [r > 0] + [False] * (len(s) - 1)
        starts_a = np.array(starts, dtype=np.int64)
        ends_a = np.r_[starts_a[1:], n]
        data_t = rel_us[ends_a - 1] / 1e6
        n_status = int(math.floor(self.duration_s + 1e-9))
        status_t = np.arange(1, n_status + 1, dtype=float)
        times = np.r_[data_t, status_t]
        kind = np.r_[np.zeros(len(starts_a), int), np.ones(n_status, int)]
        order = np.lexsort((kind, times))
        yield 0.0, self.info
        # STATUS k (at k s): sets taken in [k-1, k) s, sets dropped since the start before k s.
        edges = np.arange(n_status + 1, dtype=np.int64) * 1_000_000
        taken_per_s = np.diff(np.searchsorted(rel_us, edges, side="left"))
        overruns_at = np.searchsorted(np.sort(self._dropped_at_us - t_first), edges, side="left")
        fault_mask_bit = 0
        if self.faults.disconnect_sensor is not None:
            fault_mask_bit = 1 << self.info.zones.index(self.faults.disconnect_sensor)
        side = self.side
        units = self.units
        for j in order:
            if kind[j] == 0:
                a, b = int(starts_a[j]), int(ends_a[j])
                yield float(times[j]), protocol.Data(side, j & 0xFFFF, int(self.t_us[a]) & 0xFFFFFFFF,
                                                     period, units[a:b], bool(overrun[j]))
            else:
                k = int(j - len(starts_a)) + 1  # seconds since the first sample
                taken = int(taken_per_s[k - 1])
                overruns = int(overruns_at[k])
                mask = 0
                if fault_mask_bit and k >= self.faults.disconnect_at_s + FAULT_DETECT_S:
                    mask = fault_mask_bit
                uptime = (t_first + k * 1_000_000) // 1_000_000
                battery_mv = int(4150 - 0.1 * k)  # a LiPo slowly discharging (~400 mV in 66 min)
                battery_pct = int(np.clip(round((battery_mv - 3300) / 9.0), 0, 100))
                cad = int(np.clip(round(self.cadence_at(self.true_time_s(k))), 0, 255))
                yield float(k), protocol.Status(side, battery_pct, battery_mv, int(uptime),
                                                self.rate_hz, taken, overruns, mask, 1, cad)

    def frames(self) -> Iterator[tuple[float, bytes]]:
        """(device time s since the first sample, framed bytes) in send order, faults applied.

        A frame is sent when its last sample has been taken. The same foot always yields the
        same frames (fault decisions come from the seed).
        """
        for t, fr, _ in self.frames_with_packets():
            yield t, fr

    def frames_with_packets(self) -> Iterator[tuple[float, bytes, protocol.Packet]]:
        """Like :meth:`frames`, with the packet each frame carries (before any damage)."""
        for t, fr, pkt, _ in self.frames_with_fate():
            yield t, fr, pkt

    def frames_with_fate(self) -> Iterator[tuple[float, bytes, protocol.Packet, str]]:
        """Like :meth:`frames_with_packets`, with what the transport did to each packet.

        The fate is ``"sent"`` (the frame as framed), ``"corrupt"`` (one byte changed) or
        ``"garbage"`` (a burst of random bytes went before it: the bytes yielded are the burst and
        the frame; the frame may or may not survive it). Lost frames are not yielded. The fates
        let a test count which sample sets a host can have received, and so that it invented none.
        """
        side_i = protocol.SIDES.index(self.side)
        rng = np.random.default_rng([self.seed, side_i, 0xFA17])
        # a stream of its own, so that turning garbage on leaves every other fault decision as it was
        junk_rng = np.random.default_rng([self.seed, side_i, 0x6A4BA6E])
        p_loss = self.faults.loss_pct / 100.0
        p_bad = self.faults.corrupt_pct / 100.0
        p_junk = self.faults.garbage_pct / 100.0
        first = True
        it = self.packets()
        while True:
            chunk = list(itertools.islice(it, 2048))
            if not chunk:
                return
            framed = frame_many([protocol.encode(p) for _, p in chunk])
            junk = junk_rng.random(len(chunk)) < p_junk if p_junk else None
            for k, ((t, pkt), fr) in enumerate(zip(chunk, framed)):
                lost, bad, pos, val = rng.random(), rng.random(), rng.random(), rng.integers(1, 256)
                if first:
                    first = False
                    yield t, fr, pkt, "sent"
                    continue
                if lost < p_loss:
                    continue
                fate = "sent"
                if bad < p_bad:
                    # Change one byte before the delimiter, never into 0x00, so the damage stays
                    # inside this one frame (exactly one decoder error per corrupted frame).
                    i = int(pos * (len(fr) - 1))
                    b = fr[i] ^ int(val)
                    if b == 0:
                        b = fr[i] ^ 0xFF if fr[i] != 0xFF else 0x01
                    fr = fr[:i] + bytes([b]) + fr[i + 1:]
                    fate = "corrupt"
                if junk is not None and junk[k]:
                    n = int(junk_rng.integers(1, self.faults.garbage_bytes + 1))
                    fr = junk_rng.integers(0, 256, n, dtype=np.uint8).tobytes() + fr
                    fate = "garbage" if fate == "sent" else fate
                yield t, fr, pkt, fate


def simulate(scenario: str | Scenario, side: str, duration_s: float, rate_hz: int = 500, seed: int = 1,
             body_mass_kg: float | None = None, **faults) -> SimFoot:
    """Simulate one insole for ``duration_s`` seconds of device time.

    Args:
        scenario: a key of :data:`insole.sim.SCENARIOS`, or a :class:`Scenario` of your own
            (e.g. ``Scenario("mid", "...", GaitParams(strike="midfoot"))``).
        side: ``"left"`` or ``"right"``.
        duration_s: length of the capture (device clock), 0 < duration ≤ 4 h.
        rate_hz: sample rate, 25–1000 Hz (a packet holds 38 ms of sets, at most the MTU's).
        seed: every random choice (steps, variability, clocks, noise, faults) follows from it;
            the two feet of one seed belong to the same run.
        body_mass_kg: overrides the scenario's runner.
        **faults: see :class:`Faults` (``loss_pct``, ``corrupt_pct``, ``garbage_pct``,
            ``garbage_bytes``, ``overrun_at``,
            ``overrun_ms``, ``disconnect_sensor``, ``disconnect_at_s``, ``noise_mv``,
            ``drift_ppm``, ``clock_start_us``).

    Returns:
        The :class:`SimFoot`.

    Raises:
        SimulatorError: unknown scenario, side or fault; rate or duration out of range.
    """
    sc = get_scenario(scenario)
    if side not in protocol.SIDES:
        raise SimulatorError(f"side must be left or right, not {side!r}")
    check_rate(rate_hz)
    duration_s = check_duration(duration_s)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SimulatorError(f"seed must be a whole number ≥ 0, got {seed!r}")
    if body_mass_kg is not None and not 20.0 <= float(body_mass_kg) <= 250.0:
        raise SimulatorError(f"body mass {body_mass_kg} kg is not plausible (20-250 kg)")
    zones = hardware.default_zones()
    supply_mv, r_fixed = hardware.divider()
    f = _faults(dict(faults), duration_s, zones)
    p = gait.with_mass(sc.gait, body_mass_kg)
    side_i = protocol.SIDES.index(side)

    rng = np.random.default_rng([seed, side_i, 0xDE71CE])
    # Always drawn, so that overriding one choice leaves the others (and the truth) unchanged.
    drift_ppm = float(rng.uniform(-MAX_DRIFT_PPM, MAX_DRIFT_PPM))
    if f.drift_ppm is not None:
        drift_ppm = float(f.drift_ppm)
    clock0 = int(rng.integers(0, 2**32))
    if f.clock_start_us is not None:
        clock0 = int(f.clock_start_us)
    start_true_s = float(rng.uniform(0.0, 0.25))
    device_id = rng.integers(0, 256, 6).astype(np.uint8).tobytes().hex()
    noise_rng = np.random.default_rng([seed, side_i, 0x40153])

    # Which sample sets the device takes: all, except those an overrun drops.
    period_us = int(round(1e6 / rate_hz))
    n_total = int(round(duration_s * 1e6 / period_us))
    k = np.arange(n_total, dtype=np.int64)
    keep = np.ones(n_total, bool)
    n_drop = max(1, int(round(f.overrun_ms / 1000.0 * rate_hz)))
    for t in f.overrun_at:
        a = int(round(t * 1e6 / period_us))
        keep[max(a, 1):a + n_drop] = False  # the first set is always taken
    dropped = k[~keep]
    k = k[keep]
    t_us = clock0 + k * period_us
    t_true = start_true_s + k * period_us * 1e-6 / (1.0 + drift_ppm * 1e-6)

    steps = gait.foot_steps(p, zones, side, duration_s, seed)
    forces = gait.zone_forces_n(steps, t_true, p.body_mass_kg)
    # the sensors' own spread (creep, pre-load per zone) belongs to the insole, not to the run:
    # drawn per side only, so two seeds are the same insole on two runs
    sensed = fsr_response(forces, t_true - start_true_s, f, np.random.default_rng([side_i, 0xF5E]))
    volts = sensor.volts_from_force(sensed, supply_mv / 1000.0, r_fixed)
    if f.noise_mv > 0:
        volts = volts + noise_rng.normal(0.0, f.noise_mv / 1000.0, volts.shape)
    lsb = adc_full_scale_v() / (2**ADC_BITS - 1)
    volts = np.clip(np.rint(volts / lsb), 0, 2**ADC_BITS - 1) * lsb
    if f.adc_floor_mv:
        volts[volts < f.adc_floor_mv / 1000.0] = 0.0  # the original ESP32 reads 0 below ~150 mV
    units = sensor.volts_to_units(volts)
    if f.disconnect_sensor is not None:
        c = zones.index(f.disconnect_sensor)
        units[k * period_us >= f.disconnect_at_s * 1e6, c] = 0

    info = protocol.Info(side, tuple(zones), int(rate_hz), supply_mv, r_fixed, device_id, FIRMWARE)
    truth = _foot_truth(steps, p, zones, start_true_s, drift_ppm, (n_total - 1) * period_us * 1e-6)
    truth["device"] = {"device_id": device_id, "first_t0_us": clock0 & 0xFFFFFFFF,
                       "clock_drift_ppm": round(drift_ppm, 3),
                       "first_sample_true_s": round(start_true_s, 6)}

    def cadence_at(t_true_s: float) -> float:
        u = np.clip(t_true_s / duration_s, 0.0, 1.0)
        return float(p.cadence_spm * (1 + p.drift_cadence * gait._ramp(u, p)))

    return SimFoot(scenario=sc.name, scenario_def=sc, side=side, seed=int(seed), rate_hz=int(rate_hz),
                   duration_s=float(duration_s), body_mass_kg=float(p.body_mass_kg), info=info,
                   units=units, t_us=t_us, forces_n=forces, truth=truth, faults=f,
                   drift_ppm=drift_ppm, start_true_s=start_true_s, cadence_at=cadence_at,
                   _dropped_at_us=clock0 + dropped * period_us)


def fsr_response(force_n: np.ndarray, t_s: np.ndarray, faults: Faults,
                 rng: np.random.Generator) -> np.ndarray:
    """The force each FSR reports for the true zone forces ``force_n`` (n, C) at times ``t_s``.

    Lacing pre-load (``preload_n``, 0.5-1.5 times it per zone, drawn from ``rng``) adds to the
    force all the time, swing included. Hysteresis scales the force by ``1 - h·tanh(Ḟ / 2 kN/s)``:
    a loading sensor reads low, an unloading one high. Creep scales it by
    ``1 + c·ln(1 + t / 60 s)`` with c 0.7-1.3 times ``creep_pct`` per zone (from ``rng``): +3 % after
    3 minutes at the default, +8 % after an hour.
    """
    f = np.asarray(force_n, float)
    c = f.shape[1]
    pre = faults.preload_n * rng.uniform(0.5, 1.5, c)
    creep = faults.creep_pct / 100.0 * rng.uniform(0.7, 1.3, c)
    out = f + pre[None, :] if faults.preload_n else f.copy()
    if faults.hysteresis_pct and len(t_s) > 1:
        rate = np.gradient(f, t_s, axis=0)
        out *= 1.0 - faults.hysteresis_pct / 100.0 * np.tanh(rate / HYSTERESIS_RATE_N_PER_S)
    if faults.creep_pct:
        out *= 1.0 + creep[None, :] * np.log1p(np.maximum(t_s, 0.0) / CREEP_TIME_S)[:, None]
    return out


def _foot_truth(steps: gait.Steps, p: gait.GaitParams, zones: tuple[str, ...],
                start_true_s: float, drift_ppm: float, last_sample_s: float) -> dict:
    """Truth of the whole steps inside the capture, times on this foot's device clock."""
    drift = drift_ppm * 1e-6
    # In blocks of steps, to bound memory on long runs.
    parts = [gait.step_truth(steps, np.arange(a, min(a + 256, len(steps))), p.body_mass_kg, drift)
             for a in range(0, len(steps), 256)]
    m = {k: (np.concatenate([q[k] for q in parts]) if parts[0][k] is not None else None)
         for k in parts[0]}
    ic = (steps.t_start_s + m["ic_rel_s"] - start_true_s) * (1 + drift)
    to = (steps.t_start_s + m["to_rel_s"] - start_true_s) * (1 + drift)
    inside = np.flatnonzero((ic >= 0.0) & (to <= last_sample_s))
    strike = "rearfoot" if p.gait == "walk" else p.strike
    out = []
    for j in inside:
        has = bool(m["has_impact"][j])
        sh = m["zone_impulse_share"][j]
        out.append({
            "ic_s": round(float(ic[j]), 6),
            "to_s": round(float(to[j]), 6),
            "contact_ms": round(float(m["contact_ms"][j]), 3),
            "strike": strike,
            "valr_bw_per_s": round(float(m["valr_bw_per_s"][j]), 4),
            "valr_method": "20-80" if has else "3-12pct",
            "impact_peak_bw": round(float(m["impact_peak_bw"][j]), 5) if has else None,
            "impact_transient": m["impact_transient"][j],
            "peak_force_bw": round(float(m["peak_force_bw"][j]), 5),
            "zone_impulse_share": {z: round(float(s), 6) for z, s in zip(zones, sh)},
        })
    return {"zones": list(zones), "steps": out}


def get_scenario(name: str | Scenario) -> Scenario:
    if isinstance(name, Scenario):
        return name
    try:
        return SCENARIOS[name]
    except KeyError:
        raise SimulatorError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None


def check_rate(rate_hz) -> int:
    try:
        r = int(rate_hz)
    except (TypeError, ValueError):
        raise SimulatorError(f"rate must be an integer in Hz, got {rate_hz!r}") from None
    if r != rate_hz and not (isinstance(rate_hz, str) and str(r) == rate_hz.strip()):
        raise SimulatorError(f"rate must be an integer in Hz, got {rate_hz!r}")
    if not protocol.RATE_MIN_HZ <= r <= protocol.RATE_MAX_HZ:
        raise SimulatorError(f"rate {r} Hz is out of range ({protocol.RATE_MIN_HZ}-"
                             f"{protocol.RATE_MAX_HZ} Hz)")
    return r


def check_duration(duration_s) -> float:
    try:
        d = float(duration_s)
    except (TypeError, ValueError):
        raise SimulatorError(f"duration must be a number of seconds, got {duration_s!r}") from None
    if not math.isfinite(d) or not 0.0 < d <= MAX_DURATION_S:
        raise SimulatorError(f"duration {duration_s} s is out of range (0-{MAX_DURATION_S:g} s]")
    return d


def truth_document(feet: dict[str, SimFoot], **extra) -> dict:
    """The full ground-truth JSON document (schema ``insole.truth/1``) of one simulated run."""
    if not feet:
        raise SimulatorError("no feet to describe")
    any_foot = next(iter(feet.values()))
    sc = any_foot.scenario_def or get_scenario(any_foot.scenario)
    sides = [s for s in protocol.SIDES if s in feet]
    doc = {
        "schema": TRUTH_SCHEMA,
        "scenario": sc.name,
        "seed": any_foot.seed,
        "rate_hz": any_foot.rate_hz,
        "duration_s": any_foot.duration_s,
        "body_mass_kg": any_foot.body_mass_kg,
        "contact_threshold_n": gait.CONTACT_THRESHOLD_N,
        "feet": {s: feet[s].truth for s in sides},
        "expected_flags": [{"code": c, "side": s} for s in sides for c in sc.expected],
        "absent_flags": list(sc.absent),
        "faults": any_foot.faults.describe(),
    }
    doc.update(extra)
    return doc


def write_truth(path, doc: dict) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=1) + "\n")
    except OSError as e:
        raise SimulatorError(f"{path}: cannot write the truth file ({e.strerror})") from e


def capture_bytes(foot: SimFoot) -> bytes:
    return b"".join(fr for _, fr in foot.frames())


def write_capture(path, foot: SimFoot) -> int:
    """Write the raw serial byte stream of ``foot`` (every frame as sent) to ``path``; returns bytes."""
    path = Path(path)
    data = capture_bytes(foot)
    try:
        path.write_bytes(data)
    except OSError as e:
        raise SimulatorError(f"{path}: cannot write the capture ({e.strerror})") from e
    log.info("wrote %s: %d bytes, %d sample sets", path, len(data), foot.units.shape[0])
    return len(data)
