"""Physiological model of running and walking gait as zone forces under one foot.

The model works in two layers, both vectorised over steps with numpy:

1. **Total vertical force per step** (what the whole insole sees), in body weights (BW):

   * running, rearfoot strike: an *impact transient* (an asymmetric raised-cosine bump rising
     over ``rise_s`` and falling over 20 ms) plus an *active peak* ``A·sin(π τ^γ)^1.8``
     over stance fraction ``τ``. This is the two-component decomposition of Clark, Ryan &
     Weyand 2017 (J Exp Biol 220:247, "A general relationship links gait mechanics and running
     ground reaction forces"): a fast impulse from the decelerating lower limb and a slow one
     from the rest of the body. The impact bump's height and rise time are solved so that the
     step's impact peak and VALR hit the scenario's targets.
   * running, midfoot or forefoot strike: the active peak only (no impact transient: Lieberman
     et al. 2010, Nature 463:531).
   * walking: the double hump ``A·(sin πτ + c·sin 3πτ)`` (weight acceptance and push-off peaks
     about 1.1 BW, mid-stance valley about 0.75 BW; Winter 1991, *The biomechanics and motor
     control of human gait*).

   Each step's amplitude ``A`` is solved so that its impulse equals body weight × step time
   (half its stride): over whole strides each foot carries half the body weight on average, the
   identity the analysis uses to estimate body weight when none is given.

2. **Zone partition**: each zone z has a smooth loading window ``g_z(τ)`` (heel first and gone
   by mid-stance for a rearfoot strike; metatarsals later and through push-off; the arch a small
   mid-stance bump, etc.), and zone force is ``F_z = F · c_z g_z / Σ c_j g_j``. The weights
   ``c_z`` are solved per step (a few multiplicative fixed-point iterations) so that each zone's
   share of stance impulse equals that step's target share. Zone forces therefore always sum
   exactly to the total force.

Per-step targets (cadence, contact time, impact, shares) follow the scenario's baseline, its
fatigue drift over the run, a left/right asymmetry, and truncated-normal step-to-step
variability. The ground truth of each step (contact, toe-off, VALR, impact peak, shares) is
computed from this noise-free continuous model with the exact definitions the analysis uses;
see :func:`step_truth`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from insole.analysis.metrics import MetricsConfig, impact_transient

G_M_S2 = 9.81
CONTACT_THRESHOLD_N = 20.0
METATARSAL = ("met1", "met23", "met5")
STRIKES = ("rearfoot", "midfoot", "forefoot")

# Loading windows (on, peak, off) in fractions of the model stance: an asymmetric raised cosine
# that is 0 before `on`, 1 at `peak` and 0 after `off`. Orders of loading follow in-shoe pressure
# studies (rearfoot: heel → lateral midfoot/met5 → met2-3 → met1 → hallux; forefoot: met5 and
# met2-3 first, heel later when it drops; Cavanagh & Lafortune 1980; De Cock et al. 2005).
_WINDOWS = {
    "rearfoot": {
        "heel": (-0.02, 0.07, 0.62),
        "arch": (0.04, 0.35, 0.75),
        "midfoot_lateral": (0.04, 0.33, 0.78),
        "met5": (0.07, 0.50, 1.02),
        "met23": (0.10, 0.62, 1.02),
        "met1": (0.13, 0.70, 1.02),
        "hallux": (0.35, 0.86, 1.02),
    },
    "midfoot": {
        "heel": (-0.02, 0.25, 0.62),
        "arch": (-0.02, 0.30, 0.72),
        "midfoot_lateral": (-0.02, 0.28, 0.75),
        "met5": (-0.02, 0.25, 1.02),
        "met23": (-0.02, 0.45, 1.02),
        "met1": (0.0, 0.60, 1.02),
        "hallux": (0.30, 0.84, 1.02),
    },
    "forefoot": {
        "heel": (0.10, 0.40, 0.72),
        "arch": (0.08, 0.40, 0.72),
        "midfoot_lateral": (0.05, 0.38, 0.75),
        "met5": (-0.02, 0.28, 1.02),
        "met23": (-0.02, 0.45, 1.02),
        "met1": (-0.01, 0.58, 1.02),
        "hallux": (0.30, 0.84, 1.02),
    },
    "walk": {
        "heel": (-0.02, 0.10, 0.60),
        "arch": (0.08, 0.40, 0.75),
        "midfoot_lateral": (0.05, 0.38, 0.80),
        "met5": (0.12, 0.60, 1.02),
        "met23": (0.16, 0.72, 1.02),
        "met1": (0.20, 0.78, 1.02),
        "hallux": (0.45, 0.88, 1.02),
    },
}
# Floor so the partition is defined everywhere; its weight is negligible (≤ 1e-5 of a zone).
_WINDOW_FLOOR = 1e-5
# Fixed shares for zones the default insole does not have (a custom board may): from the
# relative-load table of shod running cited in DESIGN.md, scaled to these zones.
_EXTRA_SHARES = {"hallux": 0.08, "midfoot_lateral": 0.06}

_ACTIVE_Q = 1.8  # exponent of the active peak sin(π τ^γ)^q: peak/mean ≈ 1.9, like measured GRFs
_ONSET_S = 0.040
_DEFAULT_FALL_S = 0.028
_IMPACT_RISE_POWER = 2.5
# Contact ripples: a damped oscillation of the shoe and soft tissue on the first ~60 ms of contact
# (decay time constant below), the frequency drawn per step in this range.
_RIPPLE_TAU_S = 0.050
_RIPPLE_HZ = (40.0, 70.0)
# The early bump: a short (6-10 ms) raised cosine centred 4-12 ms after contact.
_BUMP_WIDTH_S = (0.006, 0.010)
_BUMP_AT_S = (0.004, 0.012)


@dataclass(frozen=True)
class Variability:
    """Step-to-step coefficients of variation (σ/mean, truncated at ±2.5 σ).

    Stride-time CVs of 1–3 % are typical of trained runners (Nakayama et al. 2010, Gait Posture
    31:331; Meardon et al. 2011, Gait Posture 33:36); the others are project choices that give a
    per-step VALR CV of about 6 %. Truncation is what lets every step of a scenario stay on its
    side of a flag threshold.
    """

    step_time: float = 0.012
    contact: float = 0.02
    impact_peak: float = 0.04
    rise: float = 0.05
    met_share: float = 0.02
    arch_share: float = 0.06
    heel_split: float = 0.03
    walk_c: float = 0.05
    impact_fall: float = 0.10
    contact_bump: float = 0.20


@dataclass(frozen=True)
class GaitParams:
    """Parameters of the gait model (one runner, one run). Units are in the names.

    ``met_share`` and ``arch_share`` are stance-impulse shares in an insole with the five default
    zones (heel takes the rest); ``met_split`` divides the metatarsal share among met1, met23,
    met5. Drift values are relative changes reached at the end of the run, following a smoothstep
    from ``drift_start`` to ``drift_end`` (fractions of the run). ``asym`` values are relative
    differences of the right foot over the left (half applied to each, with opposite signs).
    """

    gait: str = "run"  # "run" or "walk"
    strike: str = "rearfoot"
    body_mass_kg: float = 70.0
    cadence_spm: float = 170.0  # steps per minute, both feet
    contact_ms: float = 250.0
    impact_peak_bw: float = 1.6  # rearfoot running: height of the impact transient (total force)
    valr_bw_per_s: float = 50.0  # rearfoot running: 20-80 % VALR of the template step
    # The impact transient unloads over this long, (1 - x)^2, while the active force rises: ~28 ms
    # (±10 % per step) offsets the active rise at the knee and leaves a shoulder that barely
    # dips (fukuchi2017 RBDS004: a shoulder of ~2.0-2.3 BW 40-50 ms after contact, a dip on
    # some steps, none on most).
    impact_fall_ms: float = 28.0
    # Real force on the first milliseconds of contact (RBDS004, data/README.md): a 50-100 N
    # bump (heights drawn per step, in BW, 0.07-0.14 BW at 70 kg) and damped ripples; 0 turns off.
    contact_bump_bw: float = 0.10
    contact_ripple_bw: float = 0.03
    active_peak_at: float = 0.45  # stance fraction of the active peak (running)
    walk_c: float = 0.30  # walking: depth of the mid-stance valley (sin 3πτ coefficient)
    walk_gamma: float = 0.8  # walking: time warp putting weight acceptance at ~20 % of stance
    met_share: float = 0.48
    met_split: tuple[float, float, float] = (0.30, 0.45, 0.25)
    arch_share: float = 0.02
    drift_start: float = 0.0
    drift_end: float = 1.0
    drift_cadence: float = 0.0
    drift_contact: float = 0.0
    drift_valr: float = 0.0
    drift_met: float = 0.0
    drift_arch: float = 0.0
    asym_contact: float = 0.02
    asym_valr: float = 0.03
    asym_met: float = 0.01
    variability: Variability = field(default_factory=Variability)

    def __post_init__(self) -> None:
        if self.gait not in ("run", "walk"):
            raise ValueError(f"gait must be 'run' or 'walk', not {self.gait!r}")
        if self.strike not in STRIKES:
            raise ValueError(f"strike must be one of {STRIKES}, not {self.strike!r}")

    @property
    def windows(self) -> dict[str, tuple[float, float, float]]:
        return _WINDOWS["walk" if self.gait == "walk" else self.strike]

    @property
    def has_impact(self) -> bool:
        return self.gait == "run" and self.strike == "rearfoot"


def _ramp(u: np.ndarray, p: GaitParams) -> np.ndarray:
    """Smoothstep 0 → 1 between drift_start and drift_end (fractions of the run)."""
    span = max(p.drift_end - p.drift_start, 1e-9)
    x = np.clip((np.asarray(u, float) - p.drift_start) / span, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _tnorm(rng: np.random.Generator, n: int, limit: float = 2.5) -> np.ndarray:
    """Standard normal draws truncated at ±limit (resampled, not clipped)."""
    z = rng.standard_normal(n)
    bad = np.abs(z) > limit
    while bad.any():
        z[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(z) > limit
    return z


def _window(tau: np.ndarray, on: float, peak: float, off: float) -> np.ndarray:
    """Asymmetric raised cosine: 0 before on, 1 at peak, 0 after off."""
    x = np.where(tau < peak, (tau - on) / (peak - on), (off - tau) / (off - peak))
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))


def _impact_shape(t_s: np.ndarray, rise_s, fall_s) -> np.ndarray:
    """The impact transient of a heel strike, 0 → 1 → 0: it rises as ``(t / r)^2.5`` (slowly
    while the shoe's heel compresses, steepest at the knee, as on the RBDS004 plate: under
    0.5 BW in the first 25 ms, then ~100 BW/s up to a sharp knee) and unloads as
    ``(1 - (t - r) / fall)^2``, already falling at the knee, so that it offsets the rising active
    force there: a shoulder that barely dips."""
    t = np.asarray(t_s, float)
    up = np.clip(t / rise_s, 0.0, 1.0) ** _IMPACT_RISE_POWER
    down = (1.0 - np.clip((t - rise_s) / fall_s, 0.0, 1.0)) ** 2
    return np.where(t <= 0.0, 0.0, np.where(t < rise_s, up, down))


def _onset(t_s: np.ndarray) -> np.ndarray:
    """Running heel strikes: the body's (active) force builds up over the first ``_ONSET_S`` of
    contact (smoothstep) while the heel pad and the shoe compress, the slow start of a real
    stance."""
    x = np.clip(np.asarray(t_s, float) / _ONSET_S, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _gamma(p: GaitParams) -> float:
    """Time warp τ → τ^γ: running puts the active peak at ``active_peak_at`` (sin(π τ^γ) peaks
    where τ^γ = 1/2); walking moves weight acceptance earlier than push-off."""
    if p.gait == "walk":
        return p.walk_gamma
    return float(np.log(0.5) / np.log(p.active_peak_at))


# --- total force of a step -------------------------------------------------------------------


@dataclass
class Steps:
    """Per-step model parameters of one foot (arrays of length n, true time in seconds)."""

    gait: str
    strike: str
    t_start_s: np.ndarray  # model contact start (force leaves 0)
    contact_s: np.ndarray  # model contact duration (force back to 0)
    impact_bw: np.ndarray  # impact bump height (0 without impact)
    rise_s: np.ndarray  # impact bump rise time
    active_bw: np.ndarray  # active peak amplitude (run) or double-hump amplitude (walk)
    gamma: np.ndarray
    walk_c: np.ndarray
    fall_s: np.ndarray | None = None  # impact unloading time (default 28 ms)
    bump_bw: np.ndarray | None = None  # early contact bump height (BW), width, centre
    bump_w_s: np.ndarray | None = None
    bump_at_s: np.ndarray | None = None
    ripple_bw: np.ndarray | None = None  # contact ripple amplitude (BW), frequency, phase
    ripple_hz: np.ndarray | None = None
    ripple_ph: np.ndarray | None = None
    weights: np.ndarray | None = None  # (n, Z) zone partition weights c_z
    zones: tuple[str, ...] = ()
    windows: tuple[tuple[float, float, float], ...] = ()
    u: np.ndarray | None = None  # fraction of the run at each step

    def __len__(self) -> int:
        return int(self.t_start_s.shape[0])

    def total_bw(self, i: np.ndarray, t_rel_s: np.ndarray) -> np.ndarray:
        """Total force (BW) of steps ``i`` at ``t_rel_s`` seconds after their model start."""
        tc = self.contact_s[i]
        tau = np.clip(t_rel_s / tc, 0.0, 1.0)
        inside = (t_rel_s > 0.0) & (t_rel_s < tc)
        if self.gait == "walk":
            w = tau ** self.gamma[i]
            f = self.active_bw[i] * (np.sin(np.pi * w) + self.walk_c[i] * np.sin(3 * np.pi * w))
        else:
            f = self.active_bw[i] * np.sin(np.pi * tau ** self.gamma[i]) ** _ACTIVE_Q
            if self.strike == "rearfoot":
                f = f * _onset(t_rel_s)
                r = self.rise_s[i]
                f = f + self.impact_bw[i] * _impact_shape(t_rel_s, r, self._fall(i))
        f = self._contact_extras(i, t_rel_s, tc, f)
        return np.where(inside, np.maximum(f, 0.0), 0.0)

    def _fall(self, i) -> np.ndarray | float:
        return _DEFAULT_FALL_S if self.fall_s is None else self.fall_s[i]

    def _contact_extras(self, i, t_rel_s: np.ndarray, tc, f: np.ndarray) -> np.ndarray:
        """``f`` with the early bump and the damped contact ripples (BW) added.

        The bump rises to its height, falls back to 60 % of it and holds there until the force
        of the stance overtakes it (a real plate's bump rides on the rising force: the force
        never goes back under the contact threshold after it). The ripple is the response of
        shoe and tissue to the load: its amplitude grows with the force up to 0.3 BW, so it
        cannot take the force back under the threshold either.
        """
        if self.bump_bw is not None:
            c, w, h = self.bump_at_s[i], self.bump_w_s[i], self.bump_bw[i]
            hold = 0.6 * h * _window(t_rel_s, c - w / 2, c, 10.0) * (t_rel_s < 0.3 * tc)
            f = np.maximum(f, hold) + 0.4 * h * _window(t_rel_s, c - w / 2, c, c + w / 2)
        if self.ripple_bw is not None:
            t = np.maximum(t_rel_s, 0.0)
            env = np.exp(-t / _RIPPLE_TAU_S) * np.clip(f / 0.3, 0.0, 1.0)
            f = f + self.ripple_bw[i] * env * np.sin(2 * np.pi * self.ripple_hz[i] * t
                                                      + self.ripple_ph[i])
        return f

    def partition(self, i: np.ndarray, t_rel_s: np.ndarray) -> np.ndarray:
        """Zone fractions (…, Z) of steps ``i`` at ``t_rel_s``; rows sum to 1."""
        tau = np.clip(t_rel_s / self.contact_s[i], 0.0, 1.0)
        g = np.stack([_window(tau, *w) + _WINDOW_FLOOR for w in self.windows], axis=-1)
        g *= self.weights[i]
        g /= g.sum(axis=-1, keepdims=True)
        return g


def _unit_shapes(steps: Steps, m: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Impact-bump and active-shape impulses (BW·s per unit amplitude) of each step."""
    n = len(steps)
    x = (np.arange(m) + 0.5) / m  # midpoint rule over the stance
    tc = steps.contact_s[:, None]
    t = x[None, :] * tc
    if steps.gait == "walk":
        w = x[None, :] ** steps.gamma[:, None]
        act = np.sin(np.pi * w) + steps.walk_c[:, None] * np.sin(3 * np.pi * w)
    else:
        act = np.sin(np.pi * x[None, :] ** steps.gamma[:, None]) ** _ACTIVE_Q
        if steps.strike == "rearfoot":
            act = act * _onset(t)
    imp = np.zeros((n, m))
    if steps.gait == "run" and steps.strike == "rearfoot":
        r = steps.rise_s[:, None]
        fall = _DEFAULT_FALL_S if steps.fall_s is None else steps.fall_s[:, None]
        imp = _impact_shape(t, r, fall)
    dt = steps.contact_s / m
    return act.sum(1) * dt, imp.sum(1) * dt, x


def _solve_amplitudes(steps: Steps, impulse_bw_s: np.ndarray) -> None:
    """Set each step's active amplitude so its impulse is ``impulse_bw_s``."""
    act_i, imp_i, _ = _unit_shapes(steps)
    steps.active_bw = (impulse_bw_s - steps.impact_bw * imp_i) / act_i


def _solve_weights(steps: Steps, targets: np.ndarray, m: int = 160, iters: int = 40) -> None:
    """Per-step partition weights so zone impulse shares over the stance equal ``targets``."""
    n = len(steps)
    x = (np.arange(m) + 0.5) / m
    idx = np.repeat(np.arange(n), m).reshape(n, m)
    f = steps.total_bw(idx, x[None, :] * steps.contact_s[:, None])  # (n, m)
    g = np.stack([_window(x, *w) + _WINDOW_FLOOR for w in steps.windows], axis=0)  # (Z, m)
    c = np.array(targets, dtype=float)
    fg = f[:, None, :] * g[None, :, :]  # (n, Z, m)
    for _ in range(iters):
        den = np.einsum("nz,zm->nm", c, g)
        shares = np.einsum("nz,nzm->nz", c, fg / den[:, None, :])
        shares /= shares.sum(1, keepdims=True)
        ratio = targets / shares
        c *= ratio
        c /= c.sum(1, keepdims=True)
        if np.max(np.abs(ratio - 1.0)) < 1e-5:
            break
    steps.weights = c


# --- the template step and impact calibration ------------------------------------------------


def _template(p: GaitParams, rise_s: float, impact_bw: float) -> Steps:
    step_s = 60.0 / p.cadence_spm
    st = Steps(gait=p.gait, strike=p.strike, t_start_s=np.zeros(1),
               contact_s=np.array([p.contact_ms / 1000.0]), impact_bw=np.array([impact_bw]),
               rise_s=np.array([rise_s]), active_bw=np.ones(1),
               gamma=np.array([_gamma(p)]), walk_c=np.array([p.walk_c]),
               fall_s=np.array([p.impact_fall_ms / 1000.0]))
    _solve_amplitudes(st, np.array([step_s]))
    return st


def _impact_metrics(p: GaitParams, rise_s: float, impact_bw: float) -> np.ndarray:
    st = _template(p, rise_s, impact_bw)
    m = step_truth(st, np.zeros(1, dtype=int), body_mass_kg=p.body_mass_kg, drift=0.0)
    return np.array([m["impact_peak_bw"][0], m["valr_bw_per_s"][0]])


@lru_cache(maxsize=64)
def calibrate_impact(p: GaitParams) -> tuple[float, float]:
    """(rise_s, impact_bw) of the bump giving the template step its target impact transient and
    VALR.

    Damped Newton iterations with a finite-difference Jacobian on (rise, bump), from a few
    starting points in turn until one converges (the transient can change from a shoulder to a
    peak between two guesses, which a single start does not always survive); cached per
    parameter set. Raises ValueError when none converges (a target the model cannot reach).
    """
    if not p.has_impact:
        return 0.03, 0.0
    target = np.array([p.impact_peak_bw, p.valr_bw_per_s])
    best, best_err = None, np.inf
    starts = [(0.6 * p.impact_peak_bw / (0.41 * p.valr_bw_per_s), 0.6 * p.impact_peak_bw)]
    starts += [(r, h * p.impact_peak_bw) for r in (0.05, 0.035, 0.025, 0.065)
               for h in (0.25, 0.5, 0.75)]
    for x0 in starts:
        x, err = _newton_impact(p, np.array(x0, float), target)
        e = float(np.max(np.abs(err / target)))
        if e < best_err:
            best, best_err = x, e
        if e < 1e-3:
            break
    if best is None or best_err > 0.01:
        raise ValueError(f"no impact transient of {p.impact_peak_bw} BW at {p.valr_bw_per_s} BW/s "
                         "for these gait parameters")
    return float(best[0]), float(best[1])


def _newton_impact(p: GaitParams, x: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    err = np.array([np.inf, np.inf])
    for _ in range(30):
        y = _impact_metrics(p, *x)
        if not np.all(np.isfinite(y)):
            x[1] *= 1.25  # no distinct impact transient yet: a taller bump
            continue
        err = y - target
        if abs(err[0]) < 1e-4 and abs(err[1]) < 1e-3:
            break
        jac = np.empty((2, 2))
        for k, h in enumerate((1e-4, 1e-3)):
            xh = x.copy()
            xh[k] += h
            jac[:, k] = (_impact_metrics(p, *xh) - y) / h
        try:
            dx = np.linalg.solve(jac, -err)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(dx)):
            break
        step = min(1.0, 0.3 * x[0] / max(abs(dx[0]), 1e-12), 0.3 / max(abs(dx[1]), 1e-12))
        x = x + step * dx
        x[0] = float(np.clip(x[0], 0.008, 0.08))
        x[1] = float(np.clip(x[1], 0.05, 3.0))
    return x, err


# --- step generation ------------------------------------------------------------------------


def step_sequence(p: GaitParams, duration_s: float, seed: int,
                  margin_s: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Initial-contact model times (true s) of alternating steps, and which foot (0 L, 1 R)."""
    rng = np.random.default_rng([seed, 0xC0DE])
    span = duration_s + 2 * margin_s
    n = int(span * p.cadence_spm * 1.1 / 60.0) + 16
    # Nominal step time along the run, then jitter (truncated normal).
    t_nom = np.arange(n) * 60.0 / p.cadence_spm - margin_s
    u = np.clip(t_nom / duration_s, 0.0, 1.0)
    cad = p.cadence_spm * (1 + p.drift_cadence * _ramp(u, p))
    d = 60.0 / cad * (1 + p.variability.step_time * _tnorm(rng, n))
    t = -margin_s + np.concatenate([[0.0], np.cumsum(d[:-1])])
    first = int(rng.integers(2))
    foot = (np.arange(n) + first) % 2
    keep = t < duration_s + margin_s
    return t[keep], foot[keep]


def _zone_targets(p: GaitParams, zones: tuple[str, ...], u: np.ndarray, side_sign: float,
                  rng: np.random.Generator) -> np.ndarray:
    n = u.shape[0]
    v = p.variability
    ramp = _ramp(u, p)
    met = p.met_share * (1 + p.drift_met * ramp) * (1 + side_sign * p.asym_met / 2)
    met = met * (1 + v.met_share * _tnorm(rng, n))
    arch = p.arch_share * (1 + p.drift_arch * ramp) * (1 + v.arch_share * _tnorm(rng, n))
    split = np.array(p.met_split) / sum(p.met_split)
    split = split[None, :] * (1 + v.heel_split * _tnorm(rng, 3 * n).reshape(n, 3))
    split /= split.sum(1, keepdims=True)
    share = {"arch": arch, "met1": met * split[:, 0], "met23": met * split[:, 1],
             "met5": met * split[:, 2]}
    for z, s in _EXTRA_SHARES.items():
        share[z] = np.full(n, s)
    share["heel"] = 1.0 - arch - met
    out = np.stack([share[z] for z in zones], axis=1)
    if np.any(out <= 0):
        raise ValueError("zone shares of the scenario leave nothing for some zone")
    return out / out.sum(1, keepdims=True)


def foot_steps(p: GaitParams, zones: tuple[str, ...], side: str, duration_s: float,
               seed: int) -> Steps:
    """All steps of one foot (including some before and after the capture), fully solved."""
    t_ic, foot = step_sequence(p, duration_s, seed)
    side_i = 0 if side == "left" else 1
    sign = -1.0 if side_i == 0 else 1.0
    rng = np.random.default_rng([seed, side_i, 0x57E9])
    mine = np.flatnonzero(foot == side_i)
    t0 = t_ic[mine]
    # Each foot's impulse over its stride is BW·stride/2 (its mean force is half the weight).
    nxt = np.append(t0[1:], t0[-1] + 2 * 60.0 / p.cadence_spm)
    stride = nxt - t0
    n = t0.shape[0]
    u = np.clip(t0 / duration_s, 0.0, 1.0)
    ramp = _ramp(u, p)
    v = p.variability
    tc = p.contact_ms / 1000.0 * (1 + p.drift_contact * ramp) * (1 + sign * p.asym_contact / 2)
    tc = tc * (1 + v.contact * _tnorm(rng, n))
    rise0, bump0 = calibrate_impact(p)
    # Loading rate scales ~ bump / rise: VALR drift and asymmetry act on the rise time.
    valr_scale = (1 + p.drift_valr * ramp) * (1 + sign * p.asym_valr / 2)
    rise = rise0 / valr_scale * (1 + v.rise * _tnorm(rng, n))
    bump = bump0 * (1 + v.impact_peak * _tnorm(rng, n))
    walk_c = p.walk_c * (1 + v.walk_c * _tnorm(rng, n))
    # drawn from their own generator, so that turning them off leaves every other draw alone
    xr = np.random.default_rng([seed, side_i, 0xB0B])
    fall = p.impact_fall_ms / 1000.0 * (1 + v.impact_fall * _tnorm(xr, n))
    extras = {}
    if p.contact_bump_bw > 0:
        extras.update(bump_bw=p.contact_bump_bw * (1 + v.contact_bump * _tnorm(xr, n)),
                      bump_w_s=xr.uniform(*_BUMP_WIDTH_S, n), bump_at_s=xr.uniform(*_BUMP_AT_S, n))
    if p.contact_ripple_bw > 0 and p.gait == "run":  # a walking heel lands too gently to ring
        extras.update(ripple_bw=p.contact_ripple_bw * xr.uniform(0.5, 1.5, n),
                      ripple_hz=xr.uniform(*_RIPPLE_HZ, n), ripple_ph=xr.uniform(0, 2 * np.pi, n))
    st = Steps(gait=p.gait, strike=p.strike, t_start_s=t0, contact_s=tc,
               impact_bw=bump if p.has_impact else np.zeros(n), rise_s=rise,
               active_bw=np.ones(n), gamma=np.full(n, _gamma(p)),
               walk_c=walk_c, fall_s=fall, zones=tuple(zones),
               windows=tuple(p.windows[z] for z in zones), u=u, **extras)
    _solve_amplitudes(st, stride / 2.0)
    _solve_weights(st, _zone_targets(p, tuple(zones), u, sign, rng))
    return st


def zone_forces_n(st: Steps, t_true_s: np.ndarray, body_mass_kg: float) -> np.ndarray:
    """Noise-free zone forces (n_samples, Z) in newtons at true times ``t_true_s``."""
    out = np.zeros((t_true_s.shape[0], len(st.zones)))
    block = 1 << 18
    if t_true_s.shape[0] > block:  # bound the temporaries on long runs
        for a in range(0, t_true_s.shape[0], block):
            out[a:a + block] = zone_forces_n(st, t_true_s[a:a + block], body_mass_kg)
        return out
    i = np.searchsorted(st.t_start_s, t_true_s, side="right") - 1
    ok = i >= 0
    i_c = np.where(ok, i, 0)
    t_rel = t_true_s - st.t_start_s[i_c]
    ok &= (t_rel > 0) & (t_rel < st.contact_s[i_c])
    k = np.flatnonzero(ok)
    if k.size:
        f = st.total_bw(i_c[k], t_rel[k]) * body_mass_kg * G_M_S2
        out[k] = f[:, None] * st.partition(i_c[k], t_rel[k])
    return out


# --- ground truth per step ------------------------------------------------------------------


def _bisect(st: Steps, i: np.ndarray, lo: np.ndarray, hi: np.ndarray, level: np.ndarray,
            rising: bool, iters: int = 40) -> np.ndarray:
    """Time (s after model start) where total force crosses ``level`` (BW) within [lo, hi]."""
    lo, hi = lo.astype(float).copy(), hi.astype(float).copy()
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        above = st.total_bw(i, mid) >= level
        if rising:
            hi = np.where(above, mid, hi)
            lo = np.where(above, lo, mid)
        else:
            lo = np.where(above, mid, lo)
            hi = np.where(above, hi, mid)
    return 0.5 * (lo + hi)


def step_truth(st: Steps, i: np.ndarray, body_mass_kg: float, drift: float,
               threshold_n: float = CONTACT_THRESHOLD_N) -> dict[str, np.ndarray]:
    """Truth metrics of steps ``i`` from the noise-free continuous model.

    Contact and toe-off are where total force crosses ``threshold_n`` (found by bisection to
    sub-microsecond precision). Stance is [contact, toe-off]. The impact transient is found on a
    20 kHz grid by the analysis's own definition (:func:`insole.analysis.metrics.impact_transient`:
    a peak or a shoulder of at least 0.8 BW in the first 30 % of stance), and VALR is the mean
    slope between the instants the (6 ms-smoothed) total force crosses 20 % and 80 % of it
    ("20-80"); a step without a transient gets the mean slope over 3–12 % of stance ("3-12pct").
    Durations are on the device clock, which runs ``1 + drift`` times as fast as true time.
    Zone impulse shares integrate each zone's force over the stance.
    """
    i = np.asarray(i, dtype=int)
    n = i.shape[0]
    bw = body_mass_kg * G_M_S2
    lvl = np.full(n, threshold_n / bw)
    tc = st.contact_s[i]
    ic = _bisect(st, i, np.zeros(n), 0.25 * tc, lvl, rising=True)
    to = _bisect(st, i, 0.75 * tc, tc, lvl, rising=False)
    dur = to - ic
    # The impact transient by the analysis's own definition (insole.analysis.metrics.
    # impact_transient: a peak or a shoulder at 0.8 BW or more in the first 30 % of stance, on
    # the force smoothed over 6 ms) on a 20 kHz grid from contact.
    dt = 5e-5
    cfg = MetricsConfig()
    win = np.maximum(3, (cfg.impact_window_frac * dur / dt).astype(int)) + 1
    m = int(win.max()) + int(round(cfg.impact_confirm_ms * 1e-3 / dt)) + 2
    tt = ic[:, None] + (np.arange(m) - 1)[None, :] * dt
    ii = np.repeat(i, m).reshape(n, m)
    f = st.total_bw(ii, tt)
    peak = np.full(n, np.nan)
    valr_2080 = np.full(n, np.nan)
    kinds: list[str | None] = [None] * n
    for r in range(n):
        tr = impact_transient(f[r], 1.0 / dt, int(win[r]), cfg.impact_min_bw, cfg)
        if tr is not None and tr.valr_per_s is not None:
            peak[r], valr_2080[r], kinds[r] = tr.value, tr.valr_per_s, str(tr.kind)
    has = ~np.isnan(peak)
    scale = 1.0 + drift  # device seconds per true second
    valr_2080 = valr_2080 / scale
    a, b = ic + 0.03 * dur, ic + 0.12 * dur
    valr_312 = (st.total_bw(i, b) - st.total_bw(i, a)) / (0.09 * dur * scale)
    valr = np.where(has, valr_2080, valr_312)
    # Peak force and zone impulses over the stance.
    m2 = 500
    x2 = (np.arange(m2) + 0.5) / m2
    tt2 = ic[:, None] + x2[None, :] * dur[:, None]
    ii2 = np.repeat(i, m2).reshape(n, m2)
    f2d = st.total_bw(ii2, tt2)
    peak_force = f2d.max(1)
    shares = None
    if st.weights is not None:
        zf = f2d[:, :, None] * st.partition(ii2, tt2)
        imp = zf.sum(1)
        shares = imp / imp.sum(1, keepdims=True)
    return {"ic_rel_s": ic, "to_rel_s": to, "contact_ms": dur * scale * 1000.0, "has_impact": has,
            "impact_transient": kinds,
            "impact_peak_bw": peak, "valr_bw_per_s": valr, "peak_force_bw": peak_force,
            "zone_impulse_share": shares}


def with_mass(p: GaitParams, body_mass_kg: float | None) -> GaitParams:
    return p if body_mass_kg is None else replace(p, body_mass_kg=float(body_mass_kg))
