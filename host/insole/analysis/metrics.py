"""Per-step metrics: contact time, loading rate, strike pattern, zone shares, centre of pressure."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from insole.model import hardware
from insole.protocol import METATARSAL_ZONES

log = logging.getLogger(__name__)


# --- per-step metrics -------------------------------------------------------------------------


@dataclass
class MetricsConfig:
    """Parameters of the per-step metrics (see DESIGN.md, Per-step metrics)."""

    impact_window_frac: float = 0.30  # impact peak searched in the first 30 % of stance
    impact_min_prominence_frac: float = 0.02  # of the candidate's value
    impact_min_prominence_n: float = 10.0
    valr_low_frac: float = 0.20  # VALR between 20 % and 80 % of the impact peak
    valr_high_frac: float = 0.80
    valr_fallback_start_frac: float = 0.03  # else over 3-12 % of stance
    valr_fallback_end_frac: float = 0.12
    onset_n: float = 10.0  # a zone has loaded when it carries 10 N
    strike_mixed_window_ms: float = 10.0  # zones loading within 10 ms of the first count together


class StepMetrics:
    """Per-step metrics of one foot (contact, loading rate, strike, zone shares, CoP)."""

    def __init__(self, config: MetricsConfig | None = None) -> None:
        self.config = config or MetricsConfig()

    def compute(self, force_n: np.ndarray, zones: tuple[str, ...], regions: np.ndarray,
                ic_s: np.ndarray, to_s: np.ndarray, period_s: float,
                body_weight_n: float, side: str, complete: np.ndarray | None = None) -> StepMetrics:
        """Sets ``steps_`` (list of dicts, JSON-ready); returns self.

        A step that is not ``complete`` (missing samples inside it, or an event estimated
        across a gap) gets its timing only: its force metrics would be computed on holes.
        Everything but the impact peak is computed for all steps at once.
        """
        k = len(regions)
        n, c = force_n.shape
        zi = {z: i for i, z in enumerate(zones)}
        f0 = np.nan_to_num(force_n)
        total = f0.sum(axis=1)
        total[np.all(np.isnan(force_n), axis=1)] = np.nan
        a = regions[:, 0].astype(np.int64) if k else np.zeros(0, np.int64)
        b = regions[:, 1].astype(np.int64) if k else np.zeros(0, np.int64)
        complete = np.ones(k, bool) if complete is None else np.asarray(complete, bool)
        bw = body_weight_n
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
        # centre of pressure along/across the foot from the zone positions
        pos = hardware.zone_positions()
        lp = np.array([pos.get(z, (np.nan, np.nan))[0] for z in zones])
        wp = np.array([pos.get(z, (np.nan, np.nan))[1] for z in zones])
        known = ~np.isnan(lp)
        cop = {}
        if known.any() and k:
            m = min(int(np.min(b - a)), max(2, int(round(0.010 / period_s)) + 1))
            idx = a[:, None] + np.arange(m)
            w = f0[idx][:, :, known]
            ws = w.sum(axis=2)
            with np.errstate(invalid="ignore", divide="ignore"):
                ci = (w @ lp[known]) / ws
            cop["strike_index"] = np.nanmean(np.where(ws > 0, ci, np.nan), axis=1) if m else None
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
            st: dict = {"ic_s": ic_r[i], "to_s": to_r[i], "contact_ms": contact_r[i]}
            if i + 1 < k:
                st["stride_ms"] = stride_r[i]
                st["swing_ms"] = swing_r[i]
            if not complete[i]:
                st.update(complete=False, peak_force_bw=None, impact_peak_bw=None,
                          valr_bw_per_s=None, valr_method=None, strike=None,
                          zone_impulse_share=None, impulse_bw_s=None, zone_impulse_bw_s=None)
                steps.append(st)
                continue
            st["complete"] = True
            st["peak_force_bw"] = peak_r[i]
            # impact peak and loading rate, on the total force in BW
            seg = total[a[i]:b[i]]
            ip = self._impact_peak(seg)
            valr = self._valr_2080(seg, ip, period_s, bw) if ip is not None else None
            if valr is not None:
                st["impact_peak_bw"] = round(float(seg[ip]) / bw, 4)
                st["valr_bw_per_s"] = round(valr, 3)
                st["valr_method"] = "20-80"
            else:
                st["impact_peak_bw"] = None
                st["valr_bw_per_s"] = round(self._valr_stance(total, a[i], b[i], ic_s[i],
                                                              to_s[i] - ic_s[i], period_s, bw), 3)
                st["valr_method"] = "3-12pct"
            st["strike"] = strike[i]
            st["first_zones"] = first_zones[i]
            st["zone_impulse_share"] = dict(zip(zones, shares_r[i]))
            st["impulse_bw_s"] = tot_imp_bw_s[i]
            st["zone_impulse_bw_s"] = dict(zip(zones, imp_bw_s[i]))
            if met_share is not None:
                st["metatarsal_share"] = round(float(met_share[i]), 5)
            if ml is not None:
                st["forefoot_ml_balance"] = None if np.isnan(ml[i]) else round(float(ml[i]), 4)
            if cop:
                si = cop["strike_index"][i]
                st["strike_index"] = None if np.isnan(si) else round(float(si), 4)
                st["cop_length_frac"] = cop["cop_length_frac"][i].tolist()
                st["cop_width_frac"] = cop["cop_width_frac"][i].tolist()
            steps.append(st)
        self.steps_ = steps
        return self

    def _strike_all(self, f0: np.ndarray, zones: tuple[str, ...], a: np.ndarray,
                    period_s: float) -> tuple[list[str], list[list[str]]]:
        """Foot-strike pattern of every step from the order in which the zones load.

        A zone's onset is where it first carries ``onset_n`` (interpolated), searched from the
        sample before contact over the next 80 ms. Zones loading within
        ``strike_mixed_window_ms`` of the first count together: heel without metatarsals (or
        hallux) is a rearfoot strike, metatarsals without heel a forefoot strike, the arch first
        or heel and metatarsals together a midfoot strike.
        """
        cfg = self.config
        k = len(a)
        if not k:
            return [], []
        n = f0.shape[0]
        w = max(3, int(round(0.080 / period_s)) + 1)
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

    def _impact_peak(self, seg: np.ndarray) -> int | None:
        cfg = self.config
        n = len(seg)
        w = max(3, int(cfg.impact_window_frac * n))
        x = seg[:w]
        if len(x) < 3:
            return None
        cand = np.flatnonzero((x[1:-1] >= x[:-2]) & (x[1:-1] > x[2:])) + 1
        horizon = seg[: max(w + 1, int(0.6 * n))]
        for k in cand:
            v = seg[k]
            after = horizon[k:]
            higher = np.flatnonzero(after > v)
            j = higher[0] if len(higher) else len(after)
            if j <= 1:
                continue
            dip = v - np.min(after[:j])
            if dip >= max(cfg.impact_min_prominence_frac * v, cfg.impact_min_prominence_n):
                return int(k)
        return None

    def _valr_2080(self, seg, imp, period_s, bw) -> float | None:
        cfg = self.config
        v = seg[imp]
        rise = seg[: imp + 1]
        t_lo = _first_crossing(rise, cfg.valr_low_frac * v)
        t_hi = _first_crossing(rise, cfg.valr_high_frac * v)
        if t_lo is None or t_hi is None or t_hi <= t_lo:
            return None
        return (cfg.valr_high_frac - cfg.valr_low_frac) * v / bw / ((t_hi - t_lo) * period_s)

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
