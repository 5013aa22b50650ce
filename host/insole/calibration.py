"""Calibration files and the two ways to make them: a bench fit and a guided standing trial.

A calibration file (schema ``insole.calibration/1``, JSON) overrides the default sensor model of
PROTOCOL.md for one foot, per channel: ``F = k · G^β`` with ``G = 1/R_sensor``::

    {"schema": "insole.calibration/1", "side": "left", "device_id": "0a1b2c3d4e5f",
     "method": "standing" | "bench" | "bench+standing", "created": "2026-11-22T02:00:00+00:00",
     "body_mass_kg": 72.0,
     "channels": {"heel": {"k_n_ohm": 4.1e5, "beta": 1.0, "zero_mv": 0.0}, ...},
     "residual_pct": 1.3, "checks": {...}, "notes": "..."}

``zero_mv`` (optional) is the channel's reading with the foot off the ground: diagnostic only
(a pre-loaded sensor reads well above zero), the force model does not subtract it.

What each method can identify:

* **Bench** (``insole calibrate-bench TABLE.csv``): known weights on a puck over each sensor, with
  the sensor's resistance (multimeter) or pin voltage written down per weight. Several loads per
  channel give ``k`` and ``β`` per channel by a straight-line fit of ``log F = log k + β log G``.
  That ``k`` is in newtons *on the sensor*.
* **Standing trial** (``insole calibrate SOURCE``): the runner stands on both feet, then on the
  left, then on the right, with a known body mass. The single-foot phase says the sum of one
  foot's channels is body weight: one equation per foot, so it fixes one scale per foot (every
  channel's ``k`` times the same factor), not each channel's ``k`` and not ``β`` (kept from the
  prior: the bench file if given, else the default model). The both-feet phase is the check: the
  two feet's totals must add up to body weight. The scale turns newtons on small sensors into the
  load each zone carries, so a bench file plus a standing trial (``bench+standing``) is the full
  calibration.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np

from . import hardware
from . import protocol as P
from .errors import InputFileError, InsoleError, SourceError
from .sensor import DEFAULT_BETA, DEFAULT_K_N_OHM, volts_from_force, volts_to_units

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

SCHEMA = "insole.calibration/1"
METHODS = ("default", "standing", "bench", "bench+standing")
G_M_PER_S2 = 9.80665

# The guided standing trial: (phase, seconds, prompt).
TRIAL_PHASES = (
    ("both", 10.0, "Stand still on BOTH feet, weight even, looking ahead"),
    ("left", 10.0, "Lift the right foot: stand still on the LEFT foot only (a hand on a wall is fine)"),
    ("right", 10.0, "Now stand still on the RIGHT foot only"),
)
TRANSITION_S = 3.0


def trial_phases(phase_s: float = 10.0) -> tuple:
    """The guided trial's phases with ``phase_s`` seconds each."""
    return tuple((name, float(phase_s), prompt) for name, _, prompt in TRIAL_PHASES)

MIN_PHASE_S = 2.0
CHECK_TOLERANCE_PCT = 10.0


class CalibrationError(InsoleError):
    """A calibration file or trial that cannot give a calibration (says what to do instead)."""


# --- the file ---------------------------------------------------------------------------------


@dataclass
class Calibration:
    """One foot's calibration.

    Attributes:
        side: ``"left"`` or ``"right"``.
        channels: zone → ``(k_n_ohm, beta)``.
        method: one of :data:`METHODS`.
        zero_mv: zone → unloaded reading in mV (diagnostic, may be empty).
        path: the file it was loaded from, if any.
    """

    side: str
    channels: dict[str, tuple[float, float]]
    method: str = "standing"
    device_id: str = ""
    created: str = ""
    body_mass_kg: float | None = None
    residual_pct: float | None = None
    zero_mv: dict[str, float] = field(default_factory=dict)
    checks: dict = field(default_factory=dict)
    notes: str = ""
    path: str | None = None

    def k(self, zone: str) -> float:
        return self.channels.get(zone, (DEFAULT_K_N_OHM, DEFAULT_BETA))[0]

    def beta(self, zone: str) -> float:
        return self.channels.get(zone, (DEFAULT_K_N_OHM, DEFAULT_BETA))[1]

    def describe(self) -> str:
        """One line for reports: where it came from, how it was made, its range and residual."""
        ks = [k for k, _ in self.channels.values()]
        betas = sorted({round(b, 3) for _, b in self.channels.values()})
        what = {"standing": "standing trial", "bench": "bench weights",
                "bench+standing": "bench weights + standing trial",
                "default": "default sensor model"}.get(self.method, self.method)
        parts = [f"{self.side} foot, {what}"]
        if self.created:
            parts.append(self.created[:10])
        if self.body_mass_kg:
            parts.append(f"{self.body_mass_kg:g} kg")
        if self.device_id:
            parts.append(f"device {self.device_id}")
        if ks:
            krange = f"{min(ks):.3g}" if min(ks) == max(ks) else f"{min(ks):.3g}-{max(ks):.3g}"
            parts.append(f"k {krange} N·Ω, β {'/'.join(f'{b:g}' for b in betas)}")
        if self.residual_pct is not None:
            parts.append(f"residual {self.residual_pct:.1f} %")
        head = Path(self.path).name + ": " if self.path else ""
        return head + ", ".join(parts)

    def to_dict(self) -> dict:
        ch = {}
        for zone, (k, beta) in self.channels.items():
            ch[zone] = {"k_n_ohm": float(f"{k:.6g}"), "beta": float(f"{beta:.6g}")}
            if zone in self.zero_mv:
                ch[zone]["zero_mv"] = round(float(self.zero_mv[zone]), 1)
        d = {"schema": SCHEMA, "side": self.side, "device_id": self.device_id, "method": self.method,
             "created": self.created, "body_mass_kg": self.body_mass_kg, "channels": ch,
             "residual_pct": None if self.residual_pct is None else round(float(self.residual_pct), 2)}
        if self.checks:
            d["checks"] = self.checks
        if self.notes:
            d["notes"] = self.notes
        return d

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        except OSError as e:
            raise InputFileError(f"{path}: cannot write ({e.strerror})") from e
        self.path = str(path)
        return path


def load(path: str | Path) -> Calibration:
    """Read a calibration file.

    Raises:
        InputFileError: the file is missing, not JSON, not ``insole.calibration/1``, or has a
            channel without a positive ``k_n_ohm`` and ``beta``.
    """
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except OSError as e:
        raise InputFileError(f"{path}: cannot read calibration ({e.strerror})") from e
    except ValueError as e:
        raise InputFileError(f"{path}: not a calibration file (not JSON: {e})") from e
    if not isinstance(d, dict) or d.get("schema") != SCHEMA:
        got = d.get("schema") if isinstance(d, dict) else type(d).__name__
        raise InputFileError(f"{path}: schema {got!r}, expected {SCHEMA!r}")
    side = d.get("side")
    if side not in P.SIDES:
        raise InputFileError(f"{path}: side must be 'left' or 'right', not {side!r}")
    chans = d.get("channels")
    if not isinstance(chans, dict) or not chans:
        raise InputFileError(f"{path}: no channels")
    channels, zero = {}, {}
    for zone, c in chans.items():
        if zone not in P.ZONES:
            raise InputFileError(f"{path}: unknown zone {zone!r} (known: {', '.join(P.ZONES)})")
        try:
            k = float(c["k_n_ohm"])
            beta = float(c.get("beta", DEFAULT_BETA))
        except (KeyError, TypeError, ValueError):
            raise InputFileError(f"{path}: channel {zone!r} needs a number k_n_ohm") from None
        if not (k > 0 and math.isfinite(k) and 0.2 <= beta <= 5):
            raise InputFileError(f"{path}: channel {zone!r} has k_n_ohm {k} and beta {beta} "
                                 "(need k > 0 and 0.2 <= beta <= 5)")
        channels[zone] = (k, beta)
        if "zero_mv" in c:
            zero[zone] = float(c["zero_mv"])
    method = d.get("method", "standing")
    if method not in METHODS:
        raise InputFileError(f"{path}: method {method!r}, expected one of {', '.join(METHODS)}")
    bm = d.get("body_mass_kg")
    res = d.get("residual_pct")
    return Calibration(side, channels, method, str(d.get("device_id") or ""), str(d.get("created") or ""),
                       None if bm is None else float(bm), None if res is None else float(res),
                       zero, d.get("checks") or {}, str(d.get("notes") or ""), str(path))


def default(side: str, zones) -> Calibration:
    """The default sensor model for ``zones`` as a calibration."""
    return Calibration(side, {z: (DEFAULT_K_N_OHM, DEFAULT_BETA) for z in zones}, "default")


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


# --- the model --------------------------------------------------------------------------------


def conductance(volts, supply_v: float, r_fixed_ohm: float) -> np.ndarray:
    """Sensor conductance (S) from the pin voltage; NaN at or above 99.5 % of the supply."""
    v = np.asarray(volts, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.clip(v, 0.0, None) / (r_fixed_ohm * (supply_v - v))
    return np.where(v >= 0.995 * supply_v, np.nan, g)


def channel_forces(volts: np.ndarray, zones, supply_v: float, r_fixed_ohm: float,
                   cal: Calibration) -> np.ndarray:
    """(n, C) forces in N with ``cal``'s k and β per channel (default model where it has none)."""
    g = conductance(volts, supply_v, r_fixed_ohm)
    out = np.empty_like(g)
    for c, z in enumerate(zones):
        out[:, c] = cal.k(z) * g[:, c] ** cal.beta(z)
    return out


# --- the bench fit ----------------------------------------------------------------------------


def fit_power_law(force_n, conductance_s) -> tuple[float, float, float]:
    """Fit ``F = k · G^β`` by least squares on logs; returns (k, beta, rms residual in %).

    Raises CalibrationError with fewer than two distinct loads.
    """
    f = np.asarray(force_n, dtype=float)
    g = np.asarray(conductance_s, dtype=float)
    ok = (f > 0) & (g > 0) & np.isfinite(f) & np.isfinite(g)
    f, g = f[ok], g[ok]
    if len(np.unique(np.round(f, 6))) < 2:
        raise CalibrationError("need at least two different loads on a channel to fit k and beta")
    beta, logk = np.polyfit(np.log(g), np.log(f), 1)
    k = float(np.exp(logk))
    pred = k * g**beta
    rms = float(np.sqrt(np.mean(((pred - f) / f) ** 2)) * 100)
    return k, float(beta), rms


def read_bench_table(path: str | Path, supply_mv: float, r_fixed_ohm: float) -> dict[str, tuple[list, list]]:
    """Read a bench CSV into zone → (forces N, conductances S).

    Columns: ``zone``, one of ``mass_kg`` / ``force_n`` (the load on the puck, puck included),
    and one of ``ohms`` (sensor resistance, multimeter across its two outer pins) / ``volts``
    (pin voltage in the divider). Lines starting with ``#`` are comments.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise InputFileError(f"{path}: cannot read ({e.strerror})") from e
    rows = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    reader = csv.DictReader(rows)
    cols = set(reader.fieldnames or ())
    if "zone" not in cols or not cols & {"mass_kg", "force_n"} or not cols & {"ohms", "volts"}:
        raise InputFileError(f"{path}: a bench table needs columns zone, mass_kg or force_n, "
                             f"and ohms or volts (found: {', '.join(sorted(cols)) or 'none'})")
    out: dict[str, tuple[list, list]] = {}
    for i, r in enumerate(reader, start=2):
        zone = (r.get("zone") or "").strip()
        if zone not in P.ZONES:
            raise InputFileError(f"{path}: line {i}: unknown zone {zone!r} (known: {', '.join(P.ZONES)})")
        try:
            force = float(r["force_n"]) if r.get("force_n") else float(r["mass_kg"]) * G_M_PER_S2
            if r.get("ohms"):
                g = 1.0 / float(r["ohms"])
            else:
                v = float(r["volts"])
                g = float(conductance(v, supply_mv / 1000.0, r_fixed_ohm))
        except (TypeError, ValueError, ZeroDivisionError):
            raise InputFileError(f"{path}: line {i}: not a number in {dict(r)}") from None
        fs, gs = out.setdefault(zone, ([], []))
        fs.append(force)
        gs.append(g)
    if not out:
        raise InputFileError(f"{path}: no measurements")
    return out


def bench_calibration(path: str | Path, side: str, device_id: str = "",
                      supply_mv: float | None = None, r_fixed_ohm: float | None = None) -> Calibration:
    """Fit ``k`` and ``β`` per channel from a bench table (see :func:`read_bench_table`)."""
    s_mv, r_f = hardware.divider()
    table = read_bench_table(path, supply_mv or s_mv, r_fixed_ohm or r_f)
    channels, res = {}, {}
    for zone, (fs, gs) in table.items():
        try:
            k, beta, rms = fit_power_law(fs, gs)
        except CalibrationError as e:
            raise CalibrationError(f"{path}: zone {zone}: {e}") from None
        channels[zone] = (k, beta)
        res[zone] = round(rms, 2)
    worst = max(res.values())
    return Calibration(side, channels, "bench", device_id, _now(), None, worst,
                       checks={"fit_rms_pct": res},
                       notes="k in newtons on the sensor; run a standing trial with --bench to scale to zone loads")


# --- the standing trial -----------------------------------------------------------------------


@dataclass
class FootTrial:
    """One foot's standing-trial samples: pin volts (n, C) at ``rate_hz``."""

    side: str
    zones: tuple[str, ...]
    volts: np.ndarray
    rate_hz: float
    supply_mv: int
    r_fixed_ohm: int
    device_id: str = ""
    source: str = ""


def _moving_mean(x: np.ndarray, n: int) -> np.ndarray:
    n = max(1, int(n))
    x = np.where(np.isnan(x), 0.0, x)
    c = np.cumsum(np.concatenate(([0.0], x)))
    out = np.empty_like(x)
    half = n // 2
    idx = np.arange(len(x))
    lo = np.clip(idx - half, 0, len(x))
    hi = np.clip(idx + half + 1, 0, len(x))
    out[:] = (c[hi] - c[lo]) / (hi - lo)
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def detect_phases(total_n: np.ndarray, rate_hz: float, min_phase_s: float = MIN_PHASE_S) -> dict[str, tuple[int, int]]:
    """Find the steady phases of one foot's standing trial from its total force.

    Returns half-open sample ranges for ``loaded`` (standing on this foot alone), ``both``
    (standing on both feet: about half the loaded level) and ``unloaded`` (standing on the
    other foot), each the longest steady run of its level, trimmed by 0.5 s at each end.
    Only relative levels are used, so a prior calibration that is off by any factor still
    finds the phases. Missing phases are absent from the result.
    """
    n = len(total_n)
    win = int(round(0.25 * rate_hz))
    smooth = _moving_mean(total_n, win)
    # steady: the 1 s moving spread is small against the top level
    top = float(np.nanpercentile(smooth, 98)) if n else 0.0
    if not top > 0:
        return {}
    sq = _moving_mean((total_n - smooth) ** 2, int(rate_hz))
    drift = np.abs(np.gradient(_moving_mean(smooth, int(rate_hz)))) * rate_hz  # N/s
    steady = (np.sqrt(sq) < 0.08 * top) & (drift < 0.15 * top)
    rel = smooth / top
    classes = {"loaded": rel > 0.78, "both": (rel > 0.28) & (rel < 0.68), "unloaded": rel < 0.08}
    trim = int(round(0.5 * rate_hz))
    out = {}
    for name, m in classes.items():
        best = None
        for a, b in _runs(m & steady):
            a2, b2 = a + trim, b - trim
            if b2 - a2 >= min_phase_s * rate_hz and (best is None or b2 - a2 > best[1] - best[0]):
                best = (int(a2), int(b2))
        if best:
            out[name] = best
    return out


def fit_standing(feet: dict[str, FootTrial], body_mass_kg: float,
                 priors: dict[str, Calibration] | None = None,
                 min_phase_s: float = MIN_PHASE_S) -> dict[str, Calibration]:
    """Fit one scale per foot so that its single-foot phase carries body weight.

    Each channel keeps its prior's ``β`` and relative ``k`` (bench file, or the default model);
    ``k`` is multiplied by ``s = W / mean(total with prior)`` over the loaded phase. The checks
    written into each calibration: ``loaded_rms_pct`` (how steady the fitted total stays while
    sway shifts load between channels: large when channels' k are wrong relative to each
    other), ``both_phase_share_pct`` (this foot's share of body weight on both feet), and, with
    both feet, ``both_feet_sum_error_pct`` (the fitted feet's totals on both feet against body
    weight: the independent check, and ``residual_pct``).

    Raises:
        CalibrationError: a phase is missing or too short (says which and how to redo it).
    """
    if not body_mass_kg or not 20 <= body_mass_kg <= 250:
        raise CalibrationError(f"body mass {body_mass_kg} kg is not plausible (20-250 kg)")
    w = body_mass_kg * G_M_PER_S2
    priors = priors or {}
    out: dict[str, Calibration] = {}
    both_means = {}
    for side, ft in feet.items():
        prior = priors.get(side) or default(side, ft.zones)
        missing = [z for z in ft.zones if z not in prior.channels]
        if missing:
            log.warning("%s prior has no %s; default model used for them", side, ", ".join(missing))
        f = channel_forces(ft.volts, ft.zones, ft.supply_mv / 1000.0, ft.r_fixed_ohm, prior)
        total = np.nansum(f, axis=1)
        phases = detect_phases(total, ft.rate_hz, min_phase_s)
        if "loaded" not in phases or "both" not in phases:
            found = ", ".join(phases) or "none"
            raise CalibrationError(
                f"{side} foot ({ft.source or 'input'}): the trial needs a steady both-feet phase and a "
                f"steady single-foot phase of at least {min_phase_s:g} s each (found: {found}); "
                "stand still for the whole of each phase and redo the trial")
        a, b = phases["loaded"]
        loaded_mean = float(np.mean(total[a:b]))
        if not loaded_mean > 0:
            raise CalibrationError(f"{side} foot: all channels read zero while standing on it; check the wiring")
        s = w / loaded_mean
        channels = {z: (prior.k(z) * s, prior.beta(z)) for z in ft.zones}
        rms = float(np.sqrt(np.mean((s * total[a:b] / w - 1.0) ** 2)) * 100)
        a2, b2 = phases["both"]
        both_means[side] = s * float(np.mean(total[a2:b2]))
        zero = {}
        if "unloaded" in phases:
            u0, u1 = phases["unloaded"]
            zero = {z: float(np.nanmedian(ft.volts[u0:u1, c]) * 1000) for c, z in enumerate(ft.zones)}
        method = "bench+standing" if prior.method in ("bench", "bench+standing") else "standing"
        checks = {"scale": round(s, 4), "loaded_rms_pct": round(rms, 2),
                  "both_phase_share_pct": round(100 * both_means[side] / w, 1),
                  "phases_s": {k: [round(v[0] / ft.rate_hz, 2), round(v[1] / ft.rate_hz, 2)]
                               for k, v in phases.items()}}
        note = ("one scale per foot from the single-foot phase; per-channel k ratios and beta "
                + ("from the bench file" if method == "bench+standing" else "from the default model"))
        out[side] = Calibration(side, channels, method, ft.device_id, _now(), body_mass_kg, rms,
                                zero, checks, note)
    if len(both_means) == 2:
        err = 100 * (sum(both_means.values()) / w - 1.0)
        for cal in out.values():
            cal.checks["both_feet_sum_error_pct"] = round(err, 2)
            cal.residual_pct = abs(err)
    return out


def check_standing(feet: dict[str, FootTrial], body_mass_kg: float,
                   cals: dict[str, Calibration]) -> dict[str, dict]:
    """Check existing calibrations against a standing trial: per foot, the error of the
    single-foot total against body weight and, with both feet, of the both-feet sum (in %)."""
    w = body_mass_kg * G_M_PER_S2
    out, both = {}, {}
    for side, ft in feet.items():
        cal = cals.get(side)
        if cal is None:
            raise CalibrationError(f"no calibration given for the {side} foot")
        total = np.nansum(channel_forces(ft.volts, ft.zones, ft.supply_mv / 1000.0, ft.r_fixed_ohm, cal), axis=1)
        ph = detect_phases(total, ft.rate_hz)
        if "loaded" not in ph:
            raise CalibrationError(f"{side} foot: no steady single-foot phase found to check against")
        a, b = ph["loaded"]
        out[side] = {"single_foot_error_pct": round(100 * (float(np.mean(total[a:b])) / w - 1), 2)}
        if "both" in ph:
            a, b = ph["both"]
            both[side] = float(np.mean(total[a:b]))
    if len(both) == 2:
        err = round(100 * (sum(both.values()) / w - 1), 2)
        for d in out.values():
            d["both_feet_sum_error_pct"] = err
    return out


# --- a synthetic standing trial (tests, sim://stand) ------------------------------------------

# How a standing foot shares its load between zones (heel-heavy; arch almost unloaded).
STANDING_SHARES = {"heel": 0.55, "arch": 0.02, "midfoot_lateral": 0.08, "met1": 0.12, "met23": 0.14,
                   "met5": 0.07, "hallux": 0.04}


def synthetic_standing_trial(side: str, body_mass_kg: float = 72.0, zones=None,
                             k_n_ohm: dict | float | None = None, beta: dict | float = 1.0,
                             phases=TRIAL_PHASES, transition_s: float = TRANSITION_S,
                             rate_hz: int = 100, seed: int = 1, noise_mv: float = 1.5,
                             supply_mv: int | None = None, r_fixed_ohm: int | None = None,
                             left_share_both: float = 0.52, device_id: str | None = None) -> bytes:
    """A raw serial capture (INFO then DATA frames) of one foot in a standing trial.

    The body stands through ``phases`` with ramps of ``transition_s`` between them (and a quiet
    second before and after); postural sway moves load front-back and side to side. Forces go
    through the sensor model with the *true* ``k_n_ohm``/``beta`` (a number or zone → number) and
    the divider, plus noise, quantised as the firmware sends them.
    """
    rng = np.random.default_rng(seed + (0 if side == "left" else 1000))
    zones = tuple(zones or hardware.default_zones())
    d_mv, d_r = hardware.divider()
    supply_mv = supply_mv or d_mv
    r_fixed_ohm = r_fixed_ohm or d_r
    w = body_mass_kg * G_M_PER_S2
    # this foot's share of body weight in each phase
    share_of = {"both": left_share_both if side == "left" else 1 - left_share_both,
                "left": 1.0 if side == "left" else 0.0, "right": 1.0 if side == "right" else 0.0,
                "off": 0.0}
    knots_t, knots_v = [0.0], [share_of[phases[0][0]]]
    t = 1.0
    for i, (name, dur, _) in enumerate(phases):
        if i:
            t += transition_s
        knots_t += [t, t + dur]
        knots_v += [share_of[name]] * 2
        t += dur
    t_end = t + 1.0
    knots_t.append(t_end)
    knots_v.append(knots_v[-1])
    n = int(t_end * rate_hz)
    ts = np.arange(n) / rate_hz
    share = np.interp(ts, knots_t, knots_v)
    base = np.array([STANDING_SHARES.get(z, 0.05) for z in zones])
    base = base / base.sum()
    # sway: slow front-back and side-side shifts of the load between zones (sums unchanged)
    front = np.array([{"heel": -1.0, "arch": 0.0, "midfoot_lateral": 0.0}.get(z, 0.6) for z in zones])
    lateral = np.array([{"met5": 1.0, "midfoot_lateral": 1.0, "met1": -1.0, "hallux": -0.7,
                         "arch": -0.5}.get(z, 0.0) for z in zones])
    ap = 0.10 * np.sin(2 * np.pi * 0.23 * ts + rng.uniform(0, 6)) + 0.03 * rng.standard_normal(1)
    ml = 0.08 * np.sin(2 * np.pi * 0.37 * ts + rng.uniform(0, 6))
    weights = base[None, :] * (1 + ap[:, None] * front[None, :] + ml[:, None] * lateral[None, :])
    weights = np.clip(weights, 0, None)
    weights /= weights.sum(axis=1, keepdims=True)
    tremor = 1 + 0.01 * np.sin(2 * np.pi * 1.3 * ts)
    force = (w * share * tremor)[:, None] * weights
    k_default = DEFAULT_K_N_OHM if k_n_ohm is None else k_n_ohm
    volts = np.empty_like(force)
    for c, z in enumerate(zones):
        k = k_default[z] if isinstance(k_default, dict) else k_default
        b = beta[z] if isinstance(beta, dict) else beta
        volts[:, c] = volts_from_force(force[:, c], supply_mv / 1000.0, r_fixed_ohm, k, b)
    volts += rng.normal(0, noise_mv / 1000.0, volts.shape)
    units = volts_to_units(np.clip(volts, 0, None))
    period_us = int(round(1e6 / rate_hz))
    dev = device_id or ("a0b1c2d3e4" + ("01" if side == "left" else "02"))
    out = bytearray(P.frame(P.Info(side, zones, rate_hz, supply_mv, r_fixed_ohm, dev, "synthetic-stand")))
    per = 25
    for seq, i in enumerate(range(0, n, per)):
        chunk = units[i:i + per]
        out += P.frame(P.Data(side, seq, i * period_us, period_us, chunk))
    return bytes(out)


# --- inputs -----------------------------------------------------------------------------------


def _trial_from_stream(fs) -> FootTrial:
    v = np.asarray(fs.volts, dtype=float)
    keep = ~np.all(np.isnan(v), axis=1)
    zones, supply_mv, r_fixed = tuple(fs.zones), fs.info.supply_mv, fs.info.r_fixed_ohm
    if fs.quality.get("missing_info"):
        # The port was opened after the device sent INFO: take the divider and zones from the
        # pin map the firmware was built from (the default board), and say so.
        supply_mv, r_fixed = hardware.divider()
        default_zones = hardware.default_zones()
        if len(default_zones) == v.shape[1]:
            zones = default_zones
        log.warning("%s: no INFO packet; assuming the pin map's divider (%d mV, %d ohm) and zones %s",
                    fs.source, supply_mv, r_fixed, ", ".join(zones))
    return FootTrial(fs.side, zones, v[keep], fs.rate_hz, supply_mv, r_fixed,
                     fs.info.device_id, fs.source)


def _sim_stand_sources(url: str):
    from .session import Chunk, SourceData

    q = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
    try:
        mass = float(q.get("mass", 72.0))
        scale = float(q.get("scale", 1.0))
        seed = int(q.get("seed", 1))
        rate = int(q.get("rate", 100))
    except ValueError:
        raise SourceError(f"{url}: mass, scale, seed and rate must be numbers") from None
    out = []
    for side in q.get("sides", "left,right").split(","):
        if side not in P.SIDES:
            raise SourceError(f"{url}: sides must be left and/or right")
        raw = synthetic_standing_trial(side, mass, k_n_ohm=DEFAULT_K_N_OHM * scale, seed=seed, rate_hz=rate)
        out.append(SourceData(f"sim-stand-{side}", "serial", [Chunk(None, raw)], url=url))
    return out


def _record_live(urls: list[str], seconds: float, session_dir: Path, phases=TRIAL_PHASES,
                 out=sys.stdout) -> list:
    """Record the live sources into a session (the lead's recorder) while cueing each phase.

    This is the one place that touches ports; the session stays on disk as the raw trial.
    """
    import threading

    from .recorder import Recorder
    from .session import load_session

    rec = Recorder(urls, session_dir, seconds)
    result: dict = {}

    def _run() -> None:
        try:
            rec.run()
        except InsoleError as e:  # reported by the main thread
            result["error"] = e

    th = threading.Thread(target=_run, daemon=True)
    th.start()
    t0 = time.monotonic()
    t = 1.0
    for i, (name, dur, prompt) in enumerate(phases):
        if i:
            t += TRANSITION_S
        _sleep_until(t0 + t - (TRANSITION_S if i else 1.0), th)
        print(f"  get ready: {prompt.lower()}", file=out, flush=True)
        _sleep_until(t0 + t, th)
        print(f"  NOW ({dur:.0f} s): {prompt}", file=out, flush=True)
        t += dur
    _sleep_until(t0 + t, th)
    print("  done: relax.", file=out, flush=True)
    th.join()
    if "error" in result:
        raise result["error"]
    return load_session(session_dir)


def _sleep_until(t_mono: float, th) -> None:
    while time.monotonic() < t_mono and th.is_alive():
        time.sleep(0.05)


LIVE_SCHEMES = ("serial://", "ble://", "socket://", "rfc2217://", "/dev/")


def load_trial(inputs: list[str], live_seconds: float = 0.0,
               session_dir: Path | None = None, phases=TRIAL_PHASES) -> dict[str, FootTrial]:
    """Standing-trial samples per foot from captures, sessions, ``sim://stand`` or live ports
    (recorded for ``live_seconds`` into ``session_dir`` with cues)."""
    from .session import load_inputs
    from .stream import streams_from_sources

    srcs = []
    live = [u for u in inputs if u.startswith(LIVE_SCHEMES)]
    for url in inputs:
        if url in live:
            continue
        if url.startswith("sim://"):
            if not url.startswith("sim://stand"):
                raise SourceError(f"{url}: the calibration trial's simulator scenario is sim://stand")
            srcs += _sim_stand_sources(url)
        else:
            srcs += load_inputs([url])
    if live:
        if session_dir is None:
            raise SourceError("recording a live trial needs a session directory")
        srcs += _record_live(live, live_seconds, session_dir, phases)
    feet = streams_from_sources(srcs)
    return {side: _trial_from_stream(fs) for side, fs in feet.items()}


# --- the commands -----------------------------------------------------------------------------


def _positive_mass(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 20 <= v <= 250:
        raise argparse.ArgumentTypeError(f"{v:g} kg is not a plausible body mass (20-250)")
    return v


def _phase_seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 4 <= v <= 120:
        raise argparse.ArgumentTypeError(f"{v:g} s per phase: use 4-120 s (steady parts shorter "
                                         f"than {MIN_PHASE_S:g} s cannot be found)")
    return v


def _guide(inputs: list[str], assume_yes: bool, phases=TRIAL_PHASES, out=sys.stdout) -> float:
    """Print the trial's prompts; for live sources wait for Enter. Returns seconds to record."""
    live = any(u.startswith(LIVE_SCHEMES) for u in inputs)
    total = sum(d for _, d, _ in phases) + TRANSITION_S * (len(phases) - 1) + 4.0
    print("Standing calibration trial: shoes on, insoles in, laces as for running.", file=out)
    for i, (name, dur, prompt) in enumerate(phases, 1):
        print(f"  {i}. {prompt} ({dur:.0f} s)", file=out)
    if not live:
        print(f"Reading the recorded trial from {', '.join(inputs)}.", file=out)
        return 0.0
    if not assume_yes:
        try:
            input("Press Enter to start, then follow the cues... ")
        except EOFError:
            raise CalibrationError("no terminal to confirm on; pass --yes to start at once") from None
    return total


def _cmd_calibrate(args) -> int:
    if len(args.sources) > 2:
        raise CalibrationError("give one source per foot (at most two)")
    phases = trial_phases(args.phase_s)
    seconds = _guide(args.sources, args.yes, phases)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    session = Path(args.session) if args.session else Path(args.out_dir) / f"stand-trial-{stamp}"
    feet = load_trial(args.sources, seconds, session, phases)
    if seconds:
        print(f"the raw trial is in {session} (calibrate again from it: insole calibrate {session} ...)")
    if args.check:
        cals = {c.side: c for c in map(load, args.check)}
        res = check_standing(feet, args.body_mass_kg, cals)
        worst = 0.0
        for side, d in res.items():
            print(f"{side}: " + ", ".join(f"{k.replace('_', ' ')} {v:+.1f} %" for k, v in d.items()))
            worst = max([worst] + [abs(v) for v in d.values()])
        ok = worst <= args.tolerance_pct
        print(f"calibration {'holds' if ok else 'does NOT hold'}: worst error {worst:.1f} % "
              f"(tolerance {args.tolerance_pct:g} %)")
        return 0 if ok else 1
    priors = {}
    for p in args.bench or []:
        cal = load(p)
        priors[cal.side] = cal
    cals = fit_standing(feet, args.body_mass_kg, priors)
    written = []
    for side, cal in cals.items():
        if args.out and len(cals) == 1:
            path = Path(args.out)
        else:
            path = Path(args.out_dir) / f"calibration-{side}.json"
        cal.save(path)
        written.append(path)
        ch = cal.checks
        print(f"{side}: scale {ch['scale']:.3f} x prior, k "
              + ", ".join(f"{z} {k:.3g}" for z, (k, _) in cal.channels.items())
              + f" N·Ω; steady within {ch['loaded_rms_pct']:.1f} % on one foot, "
              f"{ch['both_phase_share_pct']:.0f} % of body weight on both feet")
    any_cal = next(iter(cals.values()))
    if "both_feet_sum_error_pct" in any_cal.checks:
        print(f"check: both feet together carry body weight within {any_cal.checks['both_feet_sum_error_pct']:+.1f} %")
    else:
        print("check: only one foot given, so the both-feet sum could not be checked")
    for p in written:
        print(f"wrote {p}")
    return 0


def _cmd_bench(args) -> int:
    cal = bench_calibration(args.table, args.side, args.device_id or "", args.supply_mv, args.r_fixed_ohm)
    out = Path(args.out or f"bench-{args.side}.json")
    cal.save(out)
    for zone, (k, beta) in cal.channels.items():
        print(f"{zone}: k {k:.4g} N·Ω, β {beta:.3f}, fit within {cal.checks['fit_rms_pct'][zone]:.1f} % rms")
    print(f"wrote {out}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "calibrate", help="guided standing trial: fit or check the force calibration",
        description="Fit one force scale per foot from a standing trial (both feet, then left, then "
                    "right) with a known body mass, and write calibration-<side>.json; or --check "
                    "existing calibration files against the trial.")
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="one per foot: a capture or session (file://), serial://PORT, or sim://stand")
    p.add_argument("--body-mass-kg", type=_positive_mass, required=True, metavar="KG")
    p.add_argument("--bench", action="append", metavar="FILE",
                   help="bench calibration of a foot (keeps its per-channel k ratios and beta)")
    p.add_argument("--check", action="append", metavar="FILE",
                   help="check these calibration files instead of fitting (exit 1 if off)")
    p.add_argument("--tolerance-pct", type=float, default=CHECK_TOLERANCE_PCT)
    p.add_argument("--out-dir", default=".", help="where calibration-<side>.json go (default: here)")
    p.add_argument("--out", help="file name when calibrating one foot")
    p.add_argument("--phase-s", type=_phase_seconds, default=10.0, metavar="S",
                   help="seconds of each phase of a live trial (default 10, at least 4)")
    p.add_argument("--session", metavar="DIR",
                   help="where a live trial is recorded (default: OUT_DIR/stand-trial-<time>)")
    p.add_argument("-y", "--yes", action="store_true", help="start at once, no confirmation")
    p.set_defaults(func=_cmd_calibrate)

    b = subparsers.add_parser(
        "calibrate-bench", help="fit k and beta per channel from known weights on the bench",
        description="Fit F = k*G^beta per channel from a CSV of zone, mass_kg (or force_n), "
                    "ohms (or volts); see hardware/README.md, 'Bench calibration'.")
    b.add_argument("table", metavar="TABLE.csv")
    b.add_argument("--side", choices=P.SIDES, required=True)
    b.add_argument("--device-id", default="")
    b.add_argument("--supply-mv", type=float, help="divider supply for a volts column (default: pinmap.json)")
    b.add_argument("--r-fixed-ohm", type=float, help="divider resistor for a volts column (default: pinmap.json)")
    b.add_argument("--out", help="output file (default bench-<side>.json)")
    b.set_defaults(func=_cmd_bench)
