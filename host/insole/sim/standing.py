"""A synthetic standing calibration trial: raw captures for tests and ``sim://stand``."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import numpy as np

from insole import protocol as P
from insole.errors import SourceError
from insole.model import hardware
from insole.model.calibration import G_M_PER_S2
from insole.model.fits import TRANSITION_S, TRIAL_PHASES
from insole.model.sensor import (
    DEFAULT_K_N_OHM,
    volts_from_force,
    volts_to_units,
)

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


def stand_sources(url: str):
    from insole.io.session import Chunk, SourceData

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
