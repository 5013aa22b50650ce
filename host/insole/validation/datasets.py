"""Real recordings (``../shared/data``) turned into insole captures plus ground truth.

Two public datasets are the reality check for the analysis (see ``docs/validation.md``):

* **gaitpdb** -- PhysioNet's *Gait in Parkinson's Disease* (Goldberger et al. 2000; Yogev et al.
  2005, Hausdorff et al. 2007, Frenkel-Toledo et al. 2005): eight in-shoe force sensors per foot,
  walking, 100 Hz. Five of the eight sensors become the insole's zones (heel = 1, arch = 5,
  met1 = 7, met5 = 6, hallux = 8); the truth is the contact of the sum of *all eight*.
* **fukuchi2017** -- Fukuchi, Fukuchi & Duarte 2017 (PeerJ 5:e3298): an instrumented treadmill,
  running at 2.5 m/s, one vertical-force channel for both feet at 300 Hz. The plate's force is
  low-passed (zero-phase, 50 Hz) before anything else; steps are assigned to feet, each instant's
  force is spread over the zones around the centre of pressure (COP) in the foot's own frame, and
  the result is resampled to 500 Hz.

The converters are pure: :func:`gaitpdb_feet` and :func:`fukuchi_feet` take arrays and return
:class:`ConvertedFoot` objects and truth dicts; :func:`capture_packets` turns a foot into the
packet sequence a device would send (INFO, DATA batches sized for an ATT MTU of 247, a STATUS
every second of device time) and :func:`capture_bytes` frames them as a raw serial capture.
Only :func:`load_gaitpdb`, :func:`load_fukuchi`, :func:`convert` and the CLI touch files.

Contact truth (both datasets, :func:`contacts`): a contact is a run of force above 20 N; runs
separated by less than 30 ms below 20 N are one contact (a one-sample dip is not a toe-off); a
contact must reach 50 N (hysteresis: noise that only grazes 20 N is not a step) and last at least
100 ms. Initial contact and toe-off are the 20 N crossings, linearly interpolated between samples.
Only whole steps count: a contact already under way at the first sample, or still under way at the
last, is not a truth step, and detections there are neither hits nor false alarms
(``scored_from_s``/``scored_to_s`` in the truth file).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from insole import protocol
from insole.errors import InputFileError, InsoleError
from insole.model import hardware
from insole.model.sensor import volts_from_force, volts_to_units
from insole.sim.device import batch_size

log = logging.getLogger(__name__)

TRUTH_SCHEMA = "insole.truth/1"
CONTACT_THRESHOLD_N = 20.0
CONTACT_HIGH_N = 50.0
MERGE_GAP_S = 0.030
MIN_CONTACT_S = 0.100
ATT_MTU = 247
FIRMWARE = "convert-1"

GAITPDB_RATE_HZ = 100
# Zone -> gaitpdb sensor number (1-8); our reading of format.txt's positions.
GAITPDB_ZONE_SENSORS = {"heel": 1, "arch": 5, "met1": 7, "met5": 6, "hallux": 8}
GAITPDB_CITATION = (
    "PhysioNet gaitpdb 1.0.0: Goldberger et al. 2000 (PhysioNet); Yogev et al. 2005 (Ga), "
    "Hausdorff et al. 2007 (Ju), Frenkel-Toledo et al. 2005 (Si). ODC-By 1.0.")

FUKUCHI_RATE_HZ = 300
FUKUCHI_OUT_RATE_HZ = 500
FUKUCHI_BELT_SPEED_M_S = 2.5
FUKUCHI_ZONES = ("heel", "arch", "met1", "met23", "met5")
FUKUCHI_CITATION = (
    "Fukuchi, Fukuchi & Duarte 2017, A public dataset of running biomechanics and the effects of "
    "running speed on lower extremity kinematics and kinetics, PeerJ 5:e3298. CC BY 4.0.")
# Each step is placed on the foot by one landmark: the force-weighted mean COP over the part of
# stance above 20 % of the step's peak force sits at 0.80 of foot length, between the metatarsal
# heads (0.68-0.74 in hardware/zones.json), which carry most of a running stance, and the hallux
# (0.92) that takes the push-off; it puts the forefoot runner's first contact on the metatarsal
# heads (0.75). The strike classification depends on this constant, which the plate cannot give:
# with the analysis's strike rule, values from about 0.77 to 0.97 reproduce the metadata for both
# runners (at 0.75 half of RBDS002's steps turn rearfoot), so it is in effect calibrated on these
# two trials (docs/validation.md).
ANCHOR_COP_FRAC = 0.80
ANCHOR_FORCE_FRAC = 0.20
# Zero-phase low-pass of the plate's vertical force before anything else: a 2nd-order Butterworth
# run forwards and backwards (4th order, no lag) at 50 Hz removes the plate's sample-to-sample
# noise (+-30 N spikes in flight) that would otherwise make 20 N crossings in the air.
PLATE_LOWPASS_HZ = 50.0
COP_LOWPASS_HZ = 30.0
# A COP measured under less than this fraction of the step's peak force is mostly plate noise;
# the nearest reliable value is held instead.
COP_RELIABLE_FRAC = 0.10
FOOT_WIDTH_FRAC = 0.37  # foot width / foot length, a typical adult ratio
DEFAULT_FOOT_LENGTH_MM = 265.0
# Gaussian spatial kernel around each zone centre, as fractions of foot length and width.
KERNEL_SIGMA_LENGTH_FRAC = 0.10
KERNEL_SIGMA_WIDTH_FRAC = 0.25


# --- contact truth ------------------------------------------------------------------------------


def _crossing_s(f: np.ndarray, i0: int, i1: int, level: float, rate_hz: float) -> float:
    """Time (s) where the line from sample i0 to i1 crosses ``level``."""
    a, b = float(f[i0]), float(f[i1])
    frac = 0.5 if b == a else (level - a) / (b - a)
    return float((i0 + min(max(frac, 0.0), 1.0) * (i1 - i0)) / rate_hz)


def contacts(force_n, rate_hz: float, threshold_n: float = CONTACT_THRESHOLD_N,
             high_n: float = CONTACT_HIGH_N, merge_gap_s: float = MERGE_GAP_S,
             min_contact_s: float = MIN_CONTACT_S) -> dict:
    """Whole contacts of a force signal, by the truth definition in the module docstring.

    Args:
        force_n: 1-D force (N) sampled at ``rate_hz``; sample 0 is time 0.
    Returns:
        ``{"steps": [(ic_s, to_s, i_start, i_stop), ...], "scored_from_s": s, "scored_to_s": s}``
        where ``i_start:i_stop`` is the half-open range of samples above the threshold.
    """
    f = np.asarray(force_n, dtype=float)
    n = len(f)
    above = f > threshold_n
    edges = np.diff(np.r_[0, above.astype(np.int8), 0])
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    merge = max(1, int(round(merge_gap_s * rate_hz)))
    runs: list[list[int]] = []
    for s, e in zip(starts, stops, strict=True):
        if runs and s - runs[-1][1] < merge:
            runs[-1][1] = e
        else:
            runs.append([int(s), int(e)])
    steps = []
    scored_from = 0.0
    scored_to = (n - 1) / rate_hz
    for s, e in runs:
        if s == 0:  # already in contact at the first sample: a partial step
            scored_from = e / rate_hz
            continue
        if e == n:  # still in contact at the last sample
            scored_to = (s - 1) / rate_hz
            continue
        if f[s:e].max() <= high_n or (e - s) / rate_hz < min_contact_s:
            continue
        ic = _crossing_s(f, s - 1, s, threshold_n, rate_hz)
        to = _crossing_s(f, e - 1, e, threshold_n, rate_hz)
        steps.append((ic, to, s, e))
    return {"steps": steps, "scored_from_s": scored_from, "scored_to_s": scored_to}


def _zone_shares(zone_forces: np.ndarray, zones, rate_hz: float, ic_s: float, to_s: float) -> dict:
    i0 = int(math.floor(ic_s * rate_hz))
    i1 = int(math.ceil(to_s * rate_hz)) + 1
    imp = np.clip(zone_forces[i0:i1], 0, None).sum(axis=0)
    tot = float(imp.sum())
    return {z: (round(float(v) / tot, 4) if tot > 0 else 0.0) for z, v in zip(zones, imp, strict=True)}


# --- captures -----------------------------------------------------------------------------------


@dataclass
class ConvertedFoot:
    """One foot of a converted recording: what its insole would have measured.

    ``forces_n`` has shape (samples, channels), channel order as ``zones``; sample 0 is at device
    time ``t0_us`` and is time 0 of the truth file's ``ic_s``/``to_s``.
    """

    side: str
    zones: tuple[str, ...]
    rate_hz: int
    forces_n: np.ndarray
    t0_us: int
    truth_steps: list[dict] = field(default_factory=list)
    scored_from_s: float = 0.0
    scored_to_s: float = 0.0

    def truth(self) -> dict:
        return {"zones": list(self.zones), "steps": self.truth_steps,
                "scored_from_s": round(self.scored_from_s, 6), "scored_to_s": round(self.scored_to_s, 6),
                "device": {"first_t0_us": self.t0_us & 0xFFFFFFFF}}


def sets_per_packet(channels: int, rate_hz: float = 500, mtu: int = ATT_MTU) -> int:
    """Sample sets per DATA packet as the firmware batches them: 13 + 2·C·N ≤ MTU − 3, and
    at most 38 ms of sets (``insole.sim.device.batch_size``)."""
    return max(1, batch_size(channels, int(round(rate_hz)), mtu))


def capture_packets(foot: ConvertedFoot, device_id: str | None = None) -> list[protocol.Packet]:
    """The packets the foot's device would send: INFO, DATA batches, a STATUS each second."""
    supply_mv, r_fixed = hardware.divider()
    units = volts_to_units(volts_from_force(foot.forces_n, supply_mv / 1000.0, r_fixed))
    n, c = units.shape
    period_us = int(round(1e6 / foot.rate_hz))
    dev = device_id or ("0a1b2c3d4e0" + ("1" if foot.side == "right" else "0"))
    out: list[protocol.Packet] = [protocol.Info(foot.side, tuple(foot.zones), foot.rate_hz, supply_mv,
                                                r_fixed, dev, FIRMWARE)]
    per = sets_per_packet(c, foot.rate_hz)
    next_status_s = 1
    for seq, i in enumerate(range(0, n, per)):
        # Sample i is taken at exactly i / rate s after sample 0 (rounded to the µs clock).
        t0 = foot.t0_us + int(round(i * 1e6 / foot.rate_hz))
        out.append(protocol.Data(foot.side, seq & 0xFFFF, t0 & 0xFFFFFFFF, period_us,
                                 np.ascontiguousarray(units[i:i + per])))
        end_s = min(i + per, n) / foot.rate_hz
        while end_s >= next_status_s:
            out.append(protocol.Status(foot.side, 255, 0, next_status_s, foot.rate_hz, foot.rate_hz,
                                       0, 0, 1, 0))
            next_status_s += 1
    return out


def capture_bytes(foot: ConvertedFoot) -> bytes:
    """A raw serial capture of the foot: every packet framed as on the USB link."""
    return b"".join(protocol.frame(p) for p in capture_packets(foot))


def _truth_doc(scenario: str, rate_hz: int, duration_s: float, body_mass_kg: float | None,
               feet: list[ConvertedFoot], source: str, notes: dict) -> dict:
    return {
        "schema": TRUTH_SCHEMA,
        "scenario": scenario,
        "seed": None,
        "rate_hz": rate_hz,
        "duration_s": round(duration_s, 4),
        "body_mass_kg": body_mass_kg,
        "contact_threshold_n": CONTACT_THRESHOLD_N,
        "feet": {f.side: f.truth() for f in feet},
        "expected_flags": [],
        "absent_flags": [],
        "source": source,
        "truth_definition": (
            f"contact: force above {CONTACT_THRESHOLD_N:g} N, gaps under {MERGE_GAP_S * 1e3:g} ms merged, "
            f"reaching {CONTACT_HIGH_N:g} N, lasting {MIN_CONTACT_S * 1e3:g} ms or more; ic/to are the "
            "interpolated crossings; whole steps only"),
        **notes,
    }


# --- gaitpdb ------------------------------------------------------------------------------------


def gaitpdb_feet(table: np.ndarray, t0_us: tuple[int, int] = (1_000_000, 7_654_321)) -> list[ConvertedFoot]:
    """Convert a gaitpdb record (19 columns, as in the file) into two insole feet with truth.

    Zone forces are the five mapped sensors; truth contacts come from the sum of all eight.
    """
    a = np.asarray(table, dtype=float)
    if a.ndim != 2 or a.shape[1] < 17 or a.shape[0] < 2 * GAITPDB_RATE_HZ:
        raise InputFileError(f"a gaitpdb record has 19 columns and minutes of rows, got shape {a.shape}")
    dt = np.diff(a[:, 0])
    if np.abs(dt - 1.0 / GAITPDB_RATE_HZ).max() > 1e-3:
        raise InputFileError("gaitpdb time column is not a uniform 100 Hz")
    zones = tuple(GAITPDB_ZONE_SENSORS)
    feet = []
    for k, side in enumerate(protocol.SIDES):
        first = 1 + 8 * k  # column of sensor 1 of this foot
        sensors = np.clip(a[:, first:first + 8], 0, None)
        zf = np.stack([sensors[:, GAITPDB_ZONE_SENSORS[z] - 1] for z in zones], axis=1)
        c = contacts(sensors.sum(axis=1), GAITPDB_RATE_HZ)
        steps = [{"ic_s": round(ic, 5), "to_s": round(to, 5), "contact_ms": round((to - ic) * 1e3, 2),
                  "strike": None, "zone_impulse_share": _zone_shares(zf, zones, GAITPDB_RATE_HZ, ic, to)}
                 for ic, to, _, _ in c["steps"]]
        feet.append(ConvertedFoot(side, zones, GAITPDB_RATE_HZ, zf, t0_us[k], steps,
                                  c["scored_from_s"], c["scored_to_s"]))
    return feet


def _loadtxt(path: Path, skiprows: int = 0) -> np.ndarray:
    """``np.loadtxt`` of a numeric table; an empty one is a ValueError, not a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "input contained no data": checked below
        table = np.loadtxt(path, skiprows=skiprows, ndmin=2)
    if table.size == 0:
        raise ValueError("no rows of numbers")
    if not np.isfinite(table).all():
        raise ValueError("a value that is not a finite number")
    return table


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())[:200]


def load_gaitpdb(path: str | Path) -> tuple[np.ndarray, float | None]:
    """Read a gaitpdb record and its subject's weight (kg, None if unknown) from demographics.txt."""
    path = Path(path)
    try:
        table = _loadtxt(path)
    except (OSError, ValueError) as e:
        raise InputFileError(f"{path}: not a gaitpdb record ({_one_line(e)})") from e
    if table.shape[1] != 19:
        raise InputFileError(f"{path}: a gaitpdb record has 19 tab-separated columns, not {table.shape[1]}")
    mass = None
    demo = path.parent / "demographics.txt"
    subject = path.stem.split("_")[0]
    if demo.is_file():
        with demo.open(newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                if row.get("ID") == subject:
                    try:
                        w = float(row.get("Weight") or "nan")
                    except ValueError:
                        w = math.nan
                    mass = None if math.isnan(w) else w
                    break
    return table, mass


def convert_gaitpdb(path: str | Path) -> tuple[list[ConvertedFoot], dict]:
    table, mass = load_gaitpdb(path)
    feet = gaitpdb_feet(table)
    duration = (table.shape[0] - 1) / GAITPDB_RATE_HZ
    truth = _truth_doc(f"gaitpdb:{Path(path).stem}", GAITPDB_RATE_HZ, duration, mass, feet,
                       GAITPDB_CITATION,
                       {"zone_sensors": GAITPDB_ZONE_SENSORS,
                        "truth_signal": "sum of all eight sensors of the foot"})
    return feet, truth


# --- fukuchi2017 --------------------------------------------------------------------------------


def foot_length_mm_from_shoe(us_size: float | None, gender: str | None = "M") -> float:
    """Foot length from a US shoe size by the Brannock rule: (size + 22)/3 in (men), + 21 (women)."""
    if us_size is None or not math.isfinite(us_size) or not 3 <= us_size <= 18:
        return DEFAULT_FOOT_LENGTH_MM
    base = 21.0 if (gender or "M").upper().startswith("F") else 22.0
    return (us_size + base) / 3.0 * 25.4


def _zone_weights(length_frac: np.ndarray, width_frac: np.ndarray, zones) -> np.ndarray:
    """Share of the force on each zone for COP positions (fractions of foot length and width).

    Along the foot, a Gaussian kernel (sigma = 0.10 L) around the heel, the arch and the line of
    the metatarsal heads (their mean length position); the metatarsal share is split among the
    metatarsal zones by a Gaussian across the width (sigma = 0.25 W) around the COP. Other zones
    (hallux, midfoot_lateral) take their own 2-D kernel. Shares sum to 1.
    """
    pos = hardware.zone_positions()
    mets = [z for z in zones if z in protocol.METATARSAL_ZONES]
    met_len = float(np.mean([pos[z][0] for z in mets])) if mets else 0.0

    def along(c: float) -> np.ndarray:
        return np.exp(-0.5 * ((length_frac - c) / KERNEL_SIGMA_LENGTH_FRAC) ** 2)

    def across(c: float) -> np.ndarray:
        return np.exp(-0.5 * ((width_frac - c) / KERNEL_SIGMA_WIDTH_FRAC) ** 2)

    met_across = sum(across(pos[z][1]) for z in mets) if mets else None
    cols = []
    for z in zones:
        if z in mets:
            cols.append(along(met_len) * across(pos[z][1]) / met_across)
        elif z in ("heel", "arch"):
            cols.append(along(pos[z][0]))
        else:
            cols.append(along(pos[z][0]) * across(pos[z][1]))
    w = np.stack(cols, axis=1)
    s = w.sum(axis=1, keepdims=True)
    return w / np.where(s > 0, s, 1.0)


def lowpass(x, cutoff_hz: float, rate_hz: float) -> np.ndarray:
    """Zero-phase low-pass: a 2nd-order Butterworth biquad run forwards then backwards."""
    w0 = 2 * math.pi * cutoff_hz / rate_hz
    alpha = math.sin(w0) / math.sqrt(2.0)
    cw = math.cos(w0)
    a0 = 1 + alpha
    b0, b1, b2 = (1 - cw) / 2 / a0, (1 - cw) / a0, (1 - cw) / 2 / a0
    a1, a2 = -2 * cw / a0, (1 - alpha) / a0

    def one_pass(v: list) -> list:
        out = []
        x1 = x2 = y1 = y2 = v[0]
        for xi in v:
            yi = b0 * xi + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2
            x2, x1, y2, y1 = x1, xi, y1, yi
            out.append(yi)
        return out

    v = np.asarray(x, dtype=float)
    pad = min(len(v) - 1, int(3 * rate_hz / cutoff_hz))
    ext = np.r_[2 * v[0] - v[pad:0:-1], v, 2 * v[-1] - v[-2:-pad - 2:-1]]  # odd reflection
    y = one_pass(one_pass(ext.tolist())[::-1])[::-1]
    return np.asarray(y[pad:pad + len(v)])


def _hold_reliable(x: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Replace unreliable samples by the nearest reliable one."""
    idx = np.flatnonzero(ok)
    if not len(idx):
        return x
    pos = np.clip(np.searchsorted(idx, np.arange(len(x))), 0, len(idx) - 1)
    prev = idx[np.clip(pos - 1, 0, len(idx) - 1)]
    nxt = idx[pos]
    near = np.where(np.abs(np.arange(len(x)) - prev) <= np.abs(nxt - np.arange(len(x))), prev, nxt)
    return np.where(ok, x, x[near])


def fukuchi_feet(table: np.ndarray, strike: dict[str, str | None] | None = None,
                 foot_length_mm: float = DEFAULT_FOOT_LENGTH_MM,
                 belt_speed_m_s: float = FUKUCHI_BELT_SPEED_M_S,
                 out_rate_hz: int = FUKUCHI_OUT_RATE_HZ, zones=FUKUCHI_ZONES,
                 t0_us: tuple[int, int] = (2_000_000, 5_123_457)) -> tuple[list[ConvertedFoot], dict]:
    """Convert a fukuchi2017 treadmill trial (columns Time Fx Fy Fz COPx COPy COPz Ty) into feet.

    Returns the two feet (truth steps included) and a dict of conversion notes (axes found, which
    foot each step went to, strike indices). See the module docstring and docs/validation.md.
    """
    a = np.asarray(table, dtype=float)
    if a.ndim != 2 or a.shape[1] < 7 or a.shape[0] < FUKUCHI_RATE_HZ:
        raise InputFileError(f"a fukuchi2017 forces file has 8 columns, got shape {a.shape}")
    rate = FUKUCHI_RATE_HZ
    fy = lowpass(a[:, 2], PLATE_LOWPASS_HZ, rate)
    # The plate's COP jumps by +-150 mm from sample to sample at low and moderate force; filter
    # it as force-weighted moments (COP·F and F low-passed, then divided), which keeps the
    # well-measured high-force samples and ignores the near-zero-force ones.
    f_raw = np.clip(a[:, 2], 0, None)
    f_lp = lowpass(f_raw, COP_LOWPASS_HZ, rate)
    f_lp = np.where(f_lp > 1.0, f_lp, np.nan)
    with np.errstate(invalid="ignore"):
        copx = lowpass(a[:, 4] * f_raw, COP_LOWPASS_HZ, rate) / f_lp
        copz = lowpass(a[:, 6] * f_raw, COP_LOWPASS_HZ, rate) / f_lp
    n = len(fy)
    c = contacts(fy, rate)
    steps = c["steps"]
    if len(steps) < 4:
        raise InputFileError(f"only {len(steps)} contacts above {CONTACT_THRESHOLD_N:g} N: not a running trial")

    # Anterior-posterior axis and sign: the belt carries the stance foot backwards, so the lab COP
    # moves towards posterior during each contact; COPx does that (COPz is the medio-lateral
    # spread of the two feet). Anterior is the direction COPx moves away from.
    slopes = []
    for _, _, s, e in steps:
        mid = slice(s + (e - s) // 4, e - (e - s) // 4)
        t = np.arange(mid.start, mid.stop) / rate
        slopes.append(np.polyfit(t, copx[mid], 1)[0])
    ap_sign = -1.0 if np.median(slopes) > 0 else 1.0  # +1: +x is anterior
    belt_mm_s = belt_speed_m_s * 1000.0

    # Which foot: running steps alternate, so within each run of regularly spaced contacts (no
    # interval over 1.5x the median, i.e. no missed contact) the sides alternate, and the
    # medio-lateral COP (ISB lab axes: +z to the runner's right) picks the phase by majority.
    ml = np.array([np.average(np.nan_to_num(copz[s:e], nan=float(np.nanmedian(copz[s:e]))),
                              weights=np.clip(fy[s:e], 1, None)) for _, _, s, e in steps])
    ml_mid = float(np.median(ml))
    ics = np.array([st[0] for st in steps])
    breaks = np.flatnonzero(np.diff(ics) > 1.5 * np.median(np.diff(ics))) + 1
    sides: list[str] = []
    agree = 0
    for seg in np.split(np.arange(len(steps)), breaks):
        votes = (ml[seg] > ml_mid) == (np.arange(len(seg)) % 2 == 0)  # "even steps are right"
        even_right = votes.mean() >= 0.5
        agree += int(votes.sum() if even_right else len(seg) - votes.sum())
        sides += ["right" if (j % 2 == 0) == even_right else "left" for j in range(len(seg))]
    ml_agree = agree / len(steps)

    L = float(foot_length_mm)
    W = FOOT_WIDTH_FRAC * L
    forces = {s: np.zeros((n, len(zones))) for s in protocol.SIDES}
    strike_index: dict[str, list] = {s: [] for s in protocol.SIDES}
    truth_steps: dict[str, list] = {s: [] for s in protocol.SIDES}
    for k, (ic, to, s, e) in enumerate(steps):
        side = sides[k]
        # The contact plus one sample either side (the samples just below 20 N that its
        # interpolated edges need); outside contacts the foot carries nothing.
        idx = np.arange(s - 1, e + 1)
        f = np.clip(fy[idx], 0, None)
        peak = float(f.max())
        ok = f >= COP_RELIABLE_FRAC * peak
        # COP relative to the foot: add back the distance the belt carried the foot since contact.
        rel_mm = ap_sign * copx[idx] + belt_mm_s * (idx - s) / rate
        rel_mm = _hold_reliable(rel_mm, ok)
        hi = f >= ANCHOR_FORCE_FRAC * peak
        anchor_mm = float(np.average(rel_mm[hi], weights=f[hi]))
        length_frac = (rel_mm - anchor_mm) / L + ANCHOR_COP_FRAC
        lateral = 1.0 if side == "right" else -1.0
        width_frac = 0.5 + lateral * (_hold_reliable(copz[idx], ok) - ml[k]) / W
        forces[side][idx] = f[:, None] * _zone_weights(length_frac, width_frac, zones)
        strike_index[side].append(round(float(length_frac[int(np.argmax(ok))]), 3))
        truth_steps[side].append((ic, to))

    # Resample every zone to the output rate (linear, which keeps the 20 N crossings in place).
    t_in = np.arange(n) / rate
    n_out = int(math.floor(t_in[-1] * out_rate_hz)) + 1
    t_out = np.arange(n_out) / out_rate_hz
    feet = []
    for k, side in enumerate(protocol.SIDES):
        zf = np.stack([np.interp(t_out, t_in, forces[side][:, j]) for j in range(len(zones))], axis=1)
        st = strike.get(side) if strike else None
        tsteps = [{"ic_s": round(ic, 5), "to_s": round(to, 5), "contact_ms": round((to - ic) * 1e3, 2),
                   "strike": st, "zone_impulse_share": _zone_shares(zf, zones, out_rate_hz, ic, to)}
                  for ic, to in truth_steps[side]]
        feet.append(ConvertedFoot(side, tuple(zones), out_rate_hz, zf, t0_us[k], tsteps,
                                  c["scored_from_s"], c["scored_to_s"]))
    notes = {
        "ap_axis": "COPx" if ap_sign > 0 else "-COPx",
        "ml_axis": "COPz (+ = right)",
        "ml_agrees_with_alternation": round(ml_agree, 3),
        "foot_length_mm": round(L, 1),
        "belt_speed_m_s": belt_speed_m_s,
        "anchor_cop_frac": ANCHOR_COP_FRAC,
        "plate_lowpass_hz": PLATE_LOWPASS_HZ,
        "cop_lowpass_hz": COP_LOWPASS_HZ,
        "strike_index": strike_index,
        "resampled_hz": out_rate_hz,
    }
    return feet, notes


def load_fukuchi(path: str | Path) -> tuple[np.ndarray, dict]:
    """Read a RBDS*run*forces.txt trial and its runner's row of RBDSinfo.txt (beside it)."""
    path = Path(path)
    try:
        with path.open() as fh:
            header = fh.readline().split()
        table = _loadtxt(path, skiprows=1)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise InputFileError(f"{path}: not a fukuchi2017 forces file ({_one_line(e)})") from e
    if header[:7] != ["Time", "Fx", "Fy", "Fz", "COPx", "COPy", "COPz"]:
        raise InputFileError(f"{path}: expected the header 'Time Fx Fy Fz COPx COPy COPz Ty'")
    info: dict = {}
    stem = path.name
    subject = stem[4:7] if stem.startswith("RBDS") else ""
    speed = stem.split("runT")[1][:2] if "runT" in stem else "25"
    info_path = path.parent / "RBDSinfo.txt"
    if info_path.is_file() and subject.isdigit():
        with info_path.open(newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                if row.get("Subject") == str(int(subject)):
                    info = row
                    break
    info = dict(info)
    info["_speed"] = speed
    return table, info


def _num(x) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def convert_fukuchi(path: str | Path) -> tuple[list[ConvertedFoot], dict]:
    table, info = load_fukuchi(path)
    speed = info.get("_speed", "25")
    strike = {}
    for side, col in (("right", f"RFSI{speed}"), ("left", f"LFSI{speed}")):
        v = (info.get(col) or "").strip().lower()
        strike[side] = v if v in ("rearfoot", "midfoot", "forefoot") else None
    L = foot_length_mm_from_shoe(_num(info.get("ShoeSize")), info.get("Gender"))
    feet, notes = fukuchi_feet(table, strike, foot_length_mm=L,
                               belt_speed_m_s=int(speed) / 10.0 if speed.isdigit() else FUKUCHI_BELT_SPEED_M_S)
    duration = (table.shape[0] - 1) / FUKUCHI_RATE_HZ
    truth = _truth_doc(f"fukuchi2017:{Path(path).stem}", FUKUCHI_OUT_RATE_HZ, duration,
                       _num(info.get("Mass")), feet, FUKUCHI_CITATION,
                       {"truth_signal": "treadmill force plate Fy at 300 Hz", "conversion": notes,
                        "strike_source": f"RBDSinfo RFSI{speed}/LFSI{speed}"})
    return feet, truth


# --- files ---------------------------------------------------------------------------------------

CONVERTERS = {"gaitpdb": convert_gaitpdb, "fukuchi": convert_fukuchi}


def convert(kind: str, input_path: str | Path, out_dir: str | Path,
            truth_path: str | Path | None = None) -> dict:
    """Convert one recording: writes OUT/left.bin, OUT/right.bin and the truth JSON; returns it."""
    if kind not in CONVERTERS:
        raise InsoleError(f"unknown dataset {kind!r}; known: {', '.join(CONVERTERS)}")
    src = Path(input_path)
    if not src.is_file():
        raise InputFileError(f"{src}: no such file")
    feet, truth = CONVERTERS[kind](src)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for foot in feet:
            (out / f"{foot.side}.bin").write_bytes(capture_bytes(foot))
        tp = Path(truth_path) if truth_path else out / "truth.json"
        tp.write_text(json.dumps(truth, indent=1) + "\n")
    except OSError as e:
        raise InsoleError(f"cannot write the capture: {e}") from e
    return truth




