"""Fits that make a calibration: the bench fit (per channel k and β) and the standing trial (one
scale per foot), with the trial's phase detection and its check. See :mod:`insole.model.calibration`
for the file and what each method can identify."""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from insole import protocol as P
from insole.errors import InputFileError
from insole.model import hardware
from insole.model.calibration import (
    G_M_PER_S2,
    Calibration,
    CalibrationError,
    _now,
    channel_forces,
    conductance,
    default,
)

log = logging.getLogger(__name__)


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
    except UnicodeDecodeError as e:
        raise InputFileError(f"{path}: not a text table ({e.reason} at byte {e.start})") from e
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
        except (TypeError, ValueError, ZeroDivisionError, KeyError):
            raise InputFileError(f"{path}: line {i}: not a number in {dict(r)}"[:300]) from None
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
