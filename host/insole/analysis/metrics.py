"""Per-step metrics: contact time, loading rate, strike pattern, zone shares, centre of pressure.

Each metric needs only its own part of the step (DESIGN.md, Per-step metrics): the strike
pattern and strike index the first ``strike_window_ms`` (80 ms) from the sample before contact,
the loading rate the rise to the impact transient (or, without one, the first 12 % of a stance
whose toe-off was seen), peak force, zone shares, impulses and the centre-of-pressure path the
whole stance. A step with missing samples keeps every metric whose part is intact; the others
are ``None`` and ``lost`` says which and why.

The impact transient (:func:`impact_transient`) is what a biomechanist marks on a force-plate
curve: the first local maximum of the total force, or the first shoulder (the slope falling to a
small fraction of the rise's steepest slope without a dip), at a substantial force early in
stance. Ripples and 50-100 N bumps in the first milliseconds of contact never qualify.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from insole.model import hardware
from insole.protocol import METATARSAL_ZONES

log = logging.getLogger(__name__)

VALR_2080 = "20-80"
"""20-80 % of the impact transient (a peak or a shoulder), interpolated crossings."""
VALR_STANCE = "3-12pct"
"""The fallback without an impact transient: the mean slope over 3-12 % of stance."""


# --- per-step metrics -------------------------------------------------------------------------


@dataclass
class MetricsConfig:
    """Parameters of the per-step metrics (see DESIGN.md, Per-step metrics)."""

    impact_window_frac: float = 0.30  # the impact transient lies in the first 30 % of stance
    impact_min_bw: float = 0.8  # ...at a substantial force: ripples and 50-100 N bumps never count
    impact_shoulder_slope_frac: float = 0.30  # a shoulder: the slope falls to 30 % of the rise's
    impact_confirm_ms: float = 15.0  # a peak's dip is looked for this long after the knee
    impact_smooth_ms: float = 6.0  # moving average over the rise (ripples, sensor noise)
    valr_low_frac: float = 0.20  # VALR between 20 % and 80 % of the impact transient
    valr_high_frac: float = 0.80
    valr_fallback_start_frac: float = 0.03  # else over 3-12 % of stance
    valr_fallback_end_frac: float = 0.12
    onset_n: float = 10.0  # a zone has loaded when it carries 10 N
    strike_mixed_window_ms: float = 10.0  # zones loading within 10 ms of the first count together
    strike_window_ms: float = 80.0  # the strike pattern is read from the first 80 ms of contact


@dataclass
class ImpactTransient:
    """An impact transient found by :func:`impact_transient` (indices into the signal given)."""

    index: int
    kind: str  # "peak" (a local maximum, with a dip after it) or "shoulder" (no dip)
    value: float  # force at the transient, in the signal's unit
    valr_per_s: float | None  # 20-80 % slope up to it, signal unit per second
    t20: float  # interpolated crossing of 20 % (fractional index)
    t80: float


def smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average over ``width`` samples (odd), edges padded with the end values."""
    if width <= 1 or len(x) < 2:
        return np.asarray(x, float)
    h = width // 2
    xp = np.concatenate((np.full(h, x[0]), x, np.full(h, x[-1])))
    c = np.cumsum(np.concatenate(([0.0], xp)))
    return (c[width:] - c[:-width]) / width


def impact_transient(f: np.ndarray, rate_hz: float, window_n: int, min_force: float,
                     config: MetricsConfig | None = None, smoothed: bool = False
                     ) -> ImpactTransient | None:
    """The impact transient in the rise of one stance, or None.

    Args:
        f: total force from the sample before contact on (any unit; ``min_force`` in the same).
        rate_hz: sample rate of ``f``.
        window_n: the transient must lie in the first ``window_n`` samples (30 % of stance).
        min_force: a transient carries at least this force (0.8 BW by default).
        smoothed: ``f`` is already smooth (a noise-free model): no moving average.

    The steepest slope of the rise (smoothed over ``impact_smooth_ms``) is found in the window;
    after it, the first sample at ``min_force`` or more whose slope has fallen to
    ``impact_shoulder_slope_frac`` of the steepest is the knee. If the slope then reaches 0
    within ``impact_confirm_ms`` the transient is that local maximum (a peak); otherwise it is
    the point of least slope in that stretch (a shoulder). VALR is 60 % of the transient's force
    over the time between the 20 % and 80 % crossings (linear interpolation).
    """
    cfg = config or MetricsConfig()
    x = np.asarray(f, float)
    if not smoothed:
        width = max(1, int(round(cfg.impact_smooth_ms * 1e-3 * rate_hz)) | 1)
        x = smooth(x, width)
    confirm = max(2, int(round(cfg.impact_confirm_ms * 1e-3 * rate_hz)))
    n = min(len(x), window_n + confirm)
    w = min(window_n, n - 1)
    if w < 3 or np.isnan(x[:n]).any():
        return None
    d = np.gradient(x[:n]) * rate_hz
    jm = int(np.argmax(d[:w]))
    dmax = d[jm]
    if not dmax > 0:
        return None
    knee = np.flatnonzero((x[jm + 1:w] >= min_force) & (d[jm + 1:w] <= cfg.impact_shoulder_slope_frac * dmax))
    if not len(knee):
        return None
    k0 = jm + 1 + int(knee[0])
    end = min(n, k0 + confirm)
    run = d[k0:end] <= cfg.impact_shoulder_slope_frac * dmax
    stop = int(np.argmin(run)) if not run.all() else len(run)  # the low-slope stretch
    seg = d[k0:k0 + stop]
    zero = np.flatnonzero(seg <= 0.0)
    if len(zero):
        j = k0 + int(zero[0])
        k = j - 1 if x[j - 1] > x[j] else j
        kind = "peak"
    else:
        k = k0 + int(np.argmin(seg)) if len(seg) else k0
        kind = "shoulder"
    v = float(x[k])
    rise = x[:k + 1]
    t20 = _first_crossing(rise, cfg.valr_low_frac * v)
    t80 = _first_crossing(rise, cfg.valr_high_frac * v)
    valr = None
    if t20 is not None and t80 is not None and t80 > t20:
        valr = (cfg.valr_high_frac - cfg.valr_low_frac) * v * rate_hz / (t80 - t20)
    return ImpactTransient(k, kind, v, valr, t20 if t20 is not None else np.nan,
                           t80 if t80 is not None else np.nan)


class StepMetrics:
    """Per-step metrics of one foot (contact, loading rate, strike, zone shares, CoP)."""

    def __init__(self, config: MetricsConfig | None = None) -> None:
        self.config = config or MetricsConfig()

    def compute(self, force_n: np.ndarray, zones: tuple[str, ...], regions: np.ndarray,
                ic_s: np.ndarray, to_s: np.ndarray, period_s: float,
                body_weight_n: float, side: str, complete: np.ndarray | None = None) -> StepMetrics:
        """Sets ``steps_`` (list of dicts, JSON-ready); returns self.

        ``force_n`` has NaN where no sample arrived. A step that is not ``complete`` (missing
        samples inside it, or an event estimated across a gap) keeps each metric whose own part
        of the step is intact (module docstring); every metric it cannot have is ``None`` and is
        named in the step's ``lost`` (``{metric: reason}``). ``complete`` itself keeps its
        meaning (the whole step, both events seen).
        """
        cfg = self.config
        k = len(regions)
        n, c = force_n.shape
        zi = {z: i for i, z in enumerate(zones)}
        missing = np.all(np.isnan(force_n), axis=1) if n else np.zeros(0, bool)
        f0 = np.nan_to_num(force_n)
        total = f0.sum(axis=1)
        total[missing] = np.nan
        a = regions[:, 0].astype(np.int64) if k else np.zeros(0, np.int64)
        b = regions[:, 1].astype(np.int64) if k else np.zeros(0, np.int64)
        complete = np.ones(k, bool) if complete is None else np.asarray(complete, bool)
        bw = body_weight_n
        rate_hz = 1.0 / period_s
        # missing samples before index i: the intact parts of each step by prefix counts
        miss_cum = np.concatenate(([0], np.cumsum(missing)))

        def intact(lo: int, hi: int) -> bool:
            lo, hi = max(lo, 0), min(hi, n)
            return hi > lo and miss_cum[hi] == miss_cum[lo]

        # zone impulses and peaks over [a, b)
        cs = np.vstack([np.zeros((1, c)), np.cumsum(f0, axis=0)])
        imp = cs[b] - cs[a]
        tot_imp = imp.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            shares = np.where(tot_imp[:, None] > 0, imp / tot_imp[:, None], 0.0)
        peak = np.zeros(k)
        if k:  # max over each [a, b): reduceat over the interleaved edges, every other segment
            t0 = np.append(np.nan_to_num(total), 0.0)
            peak = np.maximum.reduceat(t0, np.column_stack([a, b]).ravel())[::2]
        # strike pattern from the zone that loads first (onsets within the first 80 ms)
        strike, first_zones = self._strike_all(f0, zones, a, period_s)
        strike_n = max(3, int(round(cfg.strike_window_ms * 1e-3 / period_s)) + 1)
        # centre of pressure along/across the foot from the zone positions
        pos = hardware.zone_positions()
        lp = np.array([pos.get(z, (np.nan, np.nan))[0] for z in zones])
        wp = np.array([pos.get(z, (np.nan, np.nan))[1] for z in zones])
        known = ~np.isnan(lp)
        cop = {}
        m_si = 0
        if known.any() and k:
            m_si = min(int(np.min(b - a)), max(2, int(round(0.010 / period_s)) + 1))
            idx = a[:, None] + np.arange(m_si)
            w = f0[idx][:, :, known]
            ws = w.sum(axis=2)
            with np.errstate(invalid="ignore", divide="ignore"):
                ci = (w @ lp[known]) / ws
            cop["strike_index"] = np.nanmean(np.where(ws > 0, ci, np.nan), axis=1) if m_si else None
            for key, posv in (("cop_length_frac", lp), ("cop_width_frac", wp)):
                cols = []
                for q in (a, (a + b - 1) // 2, b - 1):
                    ww = f0[q][:, known]
                    with np.errstate(invalid="ignore", divide="ignore"):
                        cols.append((ww @ posv[known]) / ww.sum(axis=1))
                cop[key] = np.round(np.stack(cols, axis=1), 4)
        ml = None
        if "met1" in zi and "met5" in zi:
            m1, m5 = imp[:, zi["met1"]], imp[:, zi["met5"]]
            with np.errstate(invalid="ignore", divide="ignore"):
                ml = np.where(m1 + m5 > 0, (m1 - m5) / (m1 + m5), np.nan)
        met_idx = [zi[z] for z in METATARSAL_ZONES if z in zi]
        met_share = shares[:, met_idx].sum(axis=1) if met_idx else None

        ic_r = np.round(ic_s, 5).tolist()
        to_r = np.round(to_s, 5).tolist()
        contact_r = np.round((to_s - ic_s) * 1e3, 2).tolist()
        stride_r = np.round(np.diff(ic_s) * 1e3, 2).tolist()
        swing_r = np.round((ic_s[1:] - to_s[:-1]) * 1e3, 2).tolist()
        peak_r = np.round(peak / bw, 4).tolist()
        shares_r = np.round(shares, 5).tolist()
        # stance impulse in body-weight seconds: sum of force samples × period / body weight
        imp_bw_s = np.round(imp * (period_s / bw), 6).tolist()
        tot_imp_bw_s = np.round(tot_imp * (period_s / bw), 6).tolist()
        steps = []
        for i in range(k):
            ai, bi = int(a[i]), int(b[i])
            st: dict = {"ic_s": ic_r[i], "to_s": to_r[i], "contact_ms": contact_r[i]}
            if i + 1 < k:
                st["stride_ms"] = stride_r[i]
                st["swing_ms"] = swing_r[i]
            st["complete"] = bool(complete[i])
            lost: dict[str, str] = {}
            ic_seen = ai >= 1 and not missing[ai - 1]
            to_seen = bi < n and not missing[bi]
            whole = bool(complete[i]) or (ic_seen and to_seen and intact(ai, bi))
            # -- whole stance: peak force, zone shares and impulses, CoP path, balance
            if whole:
                st["peak_force_bw"] = peak_r[i]
                st["zone_impulse_share"] = dict(zip(zones, shares_r[i]))
                st["impulse_bw_s"] = tot_imp_bw_s[i]
                st["zone_impulse_bw_s"] = dict(zip(zones, imp_bw_s[i]))
                if met_share is not None:
                    st["metatarsal_share"] = round(float(met_share[i]), 5)
                if ml is not None:
                    st["forefoot_ml_balance"] = None if np.isnan(ml[i]) else round(float(ml[i]), 4)
                if cop:
                    st["cop_length_frac"] = cop["cop_length_frac"][i].tolist()
                    st["cop_width_frac"] = cop["cop_width_frac"][i].tolist()
            else:
                why = ("initial contact fell into a gap" if not ic_seen else
                       "toe-off fell into a gap" if not to_seen else
                       "samples missing during the stance")
                st["peak_force_bw"] = None
                st["zone_impulse_share"] = st["impulse_bw_s"] = st["zone_impulse_bw_s"] = None
                for key in ("peak_force_bw", "zone_impulse_share", "impulse_bw_s", "zone_impulse_bw_s"):
                    lost[key] = why
                if met_share is not None:
                    st["metatarsal_share"] = None
                    lost["metatarsal_share"] = why
                if ml is not None:
                    st["forefoot_ml_balance"] = None
                    lost["forefoot_ml_balance"] = why
                if cop:
                    st["cop_length_frac"] = st["cop_width_frac"] = None
                    lost["cop_path"] = why
            # -- strike pattern and strike index: the first 80 ms from the sample before contact
            if ic_seen and intact(ai - 1, ai - 1 + strike_n):
                st["strike"] = strike[i]
                st["first_zones"] = first_zones[i]
                if cop:
                    si = cop["strike_index"][i]
                    st["strike_index"] = None if np.isnan(si) else round(float(si), 4)
            else:
                why = ("initial contact fell into a gap" if not ic_seen else
                       f"samples missing in the first {cfg.strike_window_ms:g} ms of contact")
                st["strike"] = None
                lost["strike"] = why
                if cop:
                    st["strike_index"] = None
                    lost["strike_index"] = why
            # -- impact transient and loading rate: the rise to the transient
            self._loading_rate(st, lost, total, ai, bi, ic_s[i], to_s[i], ic_seen, to_seen,
                               intact, rate_hz, bw)
            if lost:
                st["lost"] = lost
            steps.append(st)
        self.steps_ = steps
        return self

    def _loading_rate(self, st, lost, total, ai, bi, ic_s, to_s, ic_seen, to_seen, intact,
                      rate_hz, bw) -> None:
        """Sets ``impact_peak_bw``, ``impact_transient``, ``valr_bw_per_s``, ``valr_method``."""
        cfg = self.config
        st.update(impact_peak_bw=None, impact_transient=None, valr_bw_per_s=None, valr_method=None)
        if not ic_seen:
            lost["valr_bw_per_s"] = "initial contact fell into a gap"
            return
        stance_n = bi - ai
        window_n = max(3, int(cfg.impact_window_frac * stance_n)) + 1
        confirm = max(2, int(round(cfg.impact_confirm_ms * 1e-3 * rate_hz)))
        lo = ai - 1
        hi = min(bi, lo + window_n + confirm)
        # the intact prefix of the rise: a transient found in it is whole when the samples up
        # to it and its confirmation stretch are all there
        seg = total[lo:hi]
        gap = np.flatnonzero(np.isnan(seg))
        usable = int(gap[0]) if len(gap) else len(seg)
        it = impact_transient(seg[:usable], rate_hz, min(window_n, usable), cfg.impact_min_bw * bw,
                              cfg) if usable >= 3 else None
        if it is not None and (usable == len(seg) or it.index + confirm < usable) \
                and it.valr_per_s is not None:
            st["impact_peak_bw"] = round(it.value / bw, 4)
            st["impact_transient"] = it.kind
            st["valr_bw_per_s"] = round(it.valr_per_s / bw, 3)
            st["valr_method"] = VALR_2080
            return
        if usable < len(seg):
            lost["valr_bw_per_s"] = (f"samples missing in the first {cfg.impact_window_frac:.0%} "
                                     "of stance, before an impact transient was seen")
            return
        # no impact transient (forefoot and midfoot strikes): 3-12 % of stance, which needs the
        # stance's length (toe-off seen) and its first 12 % intact
        if not to_seen:
            lost["valr_bw_per_s"] = ("no impact transient, and the 3-12 % fallback needs the "
                                     "toe-off, which fell into a gap")
            return
        st["valr_bw_per_s"] = round(self._valr_stance(total, ai, bi, ic_s, to_s - ic_s,
                                                      1.0 / rate_hz, bw), 3)
        st["valr_method"] = VALR_STANCE

    def _strike_all(self, f0: np.ndarray, zones: tuple[str, ...], a: np.ndarray,
                    period_s: float) -> tuple[list[str], list[list[str]]]:
        """Foot-strike pattern of every step from the order in which the zones load.

        A zone's onset is where it first carries ``onset_n`` (interpolated), searched from the
        sample before contact over the next ``strike_window_ms``. Zones loading within
        ``strike_mixed_window_ms`` of the first count together: heel without metatarsals (or
        hallux) is a rearfoot strike, metatarsals without heel a forefoot strike, the arch first
        or heel and metatarsals together a midfoot strike.
        """
        cfg = self.config
        k = len(a)
        if not k:
            return [], []
        n = f0.shape[0]
        w = max(3, int(round(cfg.strike_window_ms * 1e-3 / period_s)) + 1)
        idx = np.clip((a - 1)[:, None] + np.arange(w), 0, n - 1)
        z = f0[idx]  # (k, w, C)
        above = z > cfg.onset_n
        has = above.any(axis=1)
        j = above.argmax(axis=1)  # (k, C)
        jm = np.maximum(j - 1, 0)
        kk = np.arange(k)[:, None]
        cc = np.arange(z.shape[2])[None, :]
        f_prev, f_at = z[kk, jm, cc], z[kk, j, cc]
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(j > 0, (cfg.onset_n - f_prev) / (f_at - f_prev), 0.0)
        onset = np.where(has, (jm + np.where(j > 0, frac, 0.0)) * period_s, np.inf)
        t_first = onset.min(axis=1)
        with np.errstate(invalid="ignore"):  # inf - inf where no zone loaded at all
            within = (onset - t_first[:, None]) <= cfg.strike_mixed_window_ms * 1e-3
        within &= has
        zi = {zz: i for i, zz in enumerate(zones)}
        heel = within[:, zi["heel"]] if "heel" in zi else np.zeros(k, bool)
        fore_idx = [zi[zz] for zz in (*METATARSAL_ZONES, "hallux") if zz in zi]
        met = within[:, fore_idx].any(axis=1) if fore_idx else np.zeros(k, bool)
        first = onset.argmin(axis=1)
        mid_idx = [zi[zz] for zz in ("arch", "midfoot_lateral") if zz in zi]
        mid_first = np.isin(first, mid_idx)
        anyhas = has.any(axis=1)
        strike = np.select([~anyhas, heel & ~met, met & ~heel & ~mid_first],
                           ["unknown", "rearfoot", "forefoot"], "midfoot").tolist()
        order = np.argsort(onset, axis=1, kind="stable")
        first_zones = [[zones[c] for c in order[i] if within[i, c]] for i in range(k)]
        return strike, first_zones

    def _valr_stance(self, total, a, b, ic_s, contact_s, period_s, bw) -> float:
        cfg = self.config
        t1 = ic_s + cfg.valr_fallback_start_frac * contact_s
        t2 = ic_s + cfg.valr_fallback_end_frac * contact_s
        idx = np.arange(a - 1, b + 1)
        f1 = np.interp(t1 / period_s, idx, total[a - 1:b + 1])
        f2 = np.interp(t2 / period_s, idx, total[a - 1:b + 1])
        return float((f2 - f1) / bw / (t2 - t1))


def _first_crossing(x: np.ndarray, level: float) -> float | None:
    """Fractional index where x first rises through level (linear interpolation)."""
    above = np.flatnonzero(x >= level)
    if not len(above):
        return None
    k = above[0]
    if k == 0:
        return 0.0
    x0, x1 = x[k - 1], x[k]
    return float(k - 1 + (level - x0) / (x1 - x0))
