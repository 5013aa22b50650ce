"""One foot's calibration (the file and the per-channel force model); the fits that make one are in
:mod:`insole.model.fits`, the commands in :mod:`insole.cli.calibrate`.

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

import json
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from insole import protocol as P
from insole.errors import InputFileError, InsoleError
from insole.model.sensor import (
    DEFAULT_BETA,
    DEFAULT_K_N_OHM,
)

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

SCHEMA = "insole.calibration/1"
METHODS = ("default", "standing", "bench", "bench+standing")
G_M_PER_S2 = 9.80665
# how a report names the default sensor model (PROTOCOL.md) when no file is given
DEFAULT_NAME = "default sensor model (k=4.0e5 N·Ω, β=1)"






class CalibrationError(InsoleError):
    """A calibration file or trial that cannot give a calibration (says what to do instead)."""


# --- the file ---------------------------------------------------------------------------------


@dataclass
class Calibration:
    """One foot's calibration: the file, and what the analysis converts volts to newtons with
    (:class:`insole.analysis.forces.ForceConverter` takes one; :func:`default` is the default
    sensor model).

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
        """One line for reports: where it came from, how it was made, its range and residual
        (the default sensor model, not from a file, is :data:`DEFAULT_NAME`)."""
        if self.method == "default" and not self.path:
            return DEFAULT_NAME
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
    except ValueError as e:  # UnicodeDecodeError included
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
        if not isinstance(c, dict):
            raise InputFileError(f"{path}: channel {zone!r} must be an object with k_n_ohm and beta")
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
            zero[zone] = _number(path, f"channel {zone!r} zero_mv", c["zero_mv"])
    method = d.get("method", "standing")
    if method not in METHODS:
        raise InputFileError(f"{path}: method {method!r}, expected one of {', '.join(METHODS)}")
    bm = d.get("body_mass_kg")
    res = d.get("residual_pct")
    checks = d.get("checks") or {}
    if not isinstance(checks, dict):
        raise InputFileError(f"{path}: 'checks' must be an object")
    return Calibration(side, channels, method, str(d.get("device_id") or ""), str(d.get("created") or ""),
                       None if bm is None else _number(path, "body_mass_kg", bm),
                       None if res is None else _number(path, "residual_pct", res),
                       zero, checks, str(d.get("notes") or ""), str(path))


def _number(path: Path, what: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise InputFileError(f"{path}: {what} must be a number, not {json.dumps(v)[:40]}")
    return float(v)


def default(side: str, zones) -> Calibration:
    """The default sensor model for ``zones`` as a calibration (what the analysis uses for a
    foot without a calibration file)."""
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








# --- the standing trial -----------------------------------------------------------------------














# --- a synthetic standing trial (tests, sim://stand) ------------------------------------------





# --- inputs -----------------------------------------------------------------------------------














# --- the commands -----------------------------------------------------------------------------












