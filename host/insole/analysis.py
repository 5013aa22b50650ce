"""Gait analysis: calibration, step segmentation, per-step metrics and the three flags.

Definitions follow ``DESIGN.md`` (Analysis). The pieces are small classes in gaitmap form: the
constructor stores parameters, one action method does the work on data it does not mutate,
results land in trailing-underscore attributes, and the method returns ``self``.

- :class:`Calibration` volts → newtons per channel (divider + sensor model, per-channel k and β).
- :class:`StepDetector` initial contact / toe-off from the foot's total force.
- :class:`StepMetrics` contact time, loading rate, strike pattern, zone shares, ... per step.
- :class:`FlagRules` heel-strike force, forefoot overload, arch collapse, with their sources.
- :func:`analyse` runs all of it for one or two feet and returns the ``insole.analysis/1`` dict.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from . import hardware
from .protocol import METATARSAL_ZONES
from .sensor import DEFAULT_BETA, DEFAULT_K_N_OHM, FAULT_FRACTION, force_from_volts
from .stream import FootStream

log = logging.getLogger(__name__)

G_M_PER_S2 = 9.80665
# Walking keeps each foot down for more than half of its stride (double support); running less.
RUNNING_MAX_DUTY_FACTOR = 0.5
SCHEMA = "insole.analysis/1"


# --- calibration ------------------------------------------------------------------------------


class Calibration:
    """Pin voltages → force in newtons for each channel of one foot.

    Args:
        channels: optional ``{zone: (k_n_ohm, beta)}`` overriding the default sensor model
            (``k = 4.0e5 N·Ω``, ``β = 1``) per zone.
        name: how the report names this calibration (file name, or ``"default sensor model"``).
    """

    def __init__(self, channels: dict[str, tuple[float, float]] | None = None,
                 name: str = "default sensor model (k=4.0e5 N·Ω, β=1)") -> None:
        self.channels = dict(channels or {})
        self.name = name

    def apply(self, stream: FootStream) -> Calibration:
        """Sets ``force_n_`` (n, C), ``fault_mask_``, ``shorted_mask_`` (channels to leave out of
        the total), ``fault_reasons_`` and ``saturated_samples_``; returns self."""
        info = stream.info
        supply_v = info.supply_mv / 1000.0
        v = stream.volts
        k, beta = np.array([self.channels.get(z, (DEFAULT_K_N_OHM, DEFAULT_BETA))
                            for z in info.zones], dtype=float).T
        force = force_from_volts(v, supply_v, info.r_fixed_ohm, k, beta)
        self.saturated_samples_ = int(np.count_nonzero(v >= FAULT_FRACTION * supply_v))
        self.fault_mask_, self.shorted_mask_, self.fault_reasons_ = _fault_mask(
            v, supply_v, stream.rate_hz)
        self.force_n_ = force
        return self


def _fault_mask(v: np.ndarray, supply_v: float, rate_hz: float) -> tuple[int, int, dict[int, str]]:
    """Channels that look broken: (all faults, shorted ones) as bit masks, and a reason each.

    A channel that never leaves 0 V is disconnected, or never loaded (a healthy arch can stay
    under the original ESP32 ADC's 150 mV floor all run): reported, and it adds nothing to the
    total anyway. A channel at or above 99.5 % of the supply for a second or more is shorted:
    reported and left out of the total force.
    """
    n_sec = max(1, int(round(rate_hz)))
    mask, shorted, reasons = 0, 0, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a channel with no sample at all
        top = np.nanmax(v, axis=0) if len(v) else np.zeros(v.shape[1])
    shorted_any = np.any(v >= FAULT_FRACTION * supply_v, axis=0)
    for c in range(v.shape[1]):
        col = v[:, c]
        if top[c] <= 0.0:
            mask |= 1 << c
            reasons[c] = ("reads 0 V throughout: disconnected, or never loaded above the ADC's "
                          "floor")
            continue
        if shorted_any[c] and _longest_run((col >= FAULT_FRACTION * supply_v).view(np.int8)) >= n_sec:
            mask |= 1 << c
            shorted |= 1 << c
            reasons[c] = "at or above 99.5 % of the supply for a second or more: shorted"
    return mask, shorted, reasons


def _longest_run(x: np.ndarray) -> int:
    r = _runs(x.astype(bool))
    return int((r[:, 1] - r[:, 0]).max()) if len(r) else 0


# --- steps ------------------------------------------------------------------------------------


class StepDetector:
    """Initial contact and toe-off from the total force of one foot.

    Contact is where the total force is above ``threshold_n`` (20 N, force-plate practice;
    Blades et al. 2023); crossing times are interpolated linearly between samples. Dips below the
    threshold shorter than ``merge_gap_ms`` are noise and merged; contacts shorter than
    ``min_contact_ms`` or longer than ``max_contact_ms`` (standing) or whose peak stays below
    ``min_peak_n`` are not steps. Contacts cut by the ends of the recording are not whole steps
    and are counted in ``partial_``.

    Missing samples (NaN, from lost packets) are never filled. A contact that continues across
    a gap is one contact. When the crossing itself fell into a gap, its time is estimated (from
    the step's other event and the median contact time, bounded by the gap's edges) and the step
    is marked incomplete: it counts as a step, but its metrics and the flags do not use it.
    """

    def __init__(self, threshold_n: float = 20.0, merge_gap_ms: float = 40.0,
                 min_contact_ms: float = 100.0, max_contact_ms: float = 2000.0,
                 min_peak_n: float = 60.0) -> None:
        self.threshold_n = threshold_n
        self.merge_gap_ms = merge_gap_ms
        self.min_contact_ms = min_contact_ms
        self.max_contact_ms = max_contact_ms
        self.min_peak_n = min_peak_n

    def detect(self, total_n: np.ndarray, period_s: float) -> StepDetector:
        """Sets ``regions_`` (k, 2) half-open sample ranges, ``ic_s_``, ``to_s_``,
        ``complete_`` (no missing sample in the step, both events observed),
        ``ic_estimated_`` and ``to_estimated_``; returns self."""
        f = total_n
        thr = self.threshold_n
        n = len(f)
        valid = ~np.isnan(f)
        above = valid & (np.where(valid, f, -np.inf) > thr)
        # a gap with contact on both sides is inside one contact
        for g0, g1 in _runs(~valid):
            if g0 > 0 and g1 < n and above[g0 - 1] and above[g1]:
                above[g0:g1] = True
        starts, ends = _runs(above).T if above.any() else (np.zeros(0, int), np.zeros(0, int))
        # merge short dips below threshold (noise), only where the dip was actually seen
        if len(starts) > 1:
            gap = starts[1:] - ends[:-1]
            nan_cum = np.concatenate(([0], np.cumsum(~valid)))
            seen = (nan_cum[starts[1:]] - nan_cum[ends[:-1]]) == 0
            merge = (gap * period_s * 1e3 < self.merge_gap_ms) & seen
            starts = starts[np.concatenate(([True], ~merge))]
            ends = ends[np.concatenate((~merge, [True]))]
        dur_ms = (ends - starts) * period_s * 1e3
        ok = (dur_ms >= self.min_contact_ms) & (dur_ms <= self.max_contact_ms)
        peak_ok = np.array([np.nanmax(f[a:b]) >= self.min_peak_n for a, b in zip(starts, ends)],
                           dtype=bool)
        # the edges: the sample before a start and the sample at an end must be seen below the
        # threshold, or be the far edge of a gap that began below it
        nan_runs = _runs(~valid)

        def gap_around(k: int) -> tuple[int, int]:
            j = int(np.searchsorted(nan_runs[:, 0], k, side="right")) - 1
            return int(nan_runs[j, 0]), int(nan_runs[j, 1])

        whole = (starts > 0) & (ends < n)
        ic_lo = np.full(len(starts), np.nan)
        to_hi = np.full(len(starts), np.nan)
        ic_obs = np.zeros(len(starts), bool)
        to_obs = np.zeros(len(starts), bool)
        for i in np.flatnonzero(ok & peak_ok & whole):
            s, e = starts[i], ends[i]
            if valid[s - 1]:
                ic_obs[i] = True
            else:
                g = gap_around(s - 1)[0]
                if g == 0:
                    whole[i] = False
                ic_lo[i] = g - 1  # last sample seen below threshold
            if valid[e]:
                to_obs[i] = True
            else:
                g = gap_around(e)[1]
                if g >= n:
                    whole[i] = False
                to_hi[i] = g  # first sample seen below threshold again
        good = ok & peak_ok & whole
        self.partial_ = int((ok & peak_ok & ~whole).sum())
        self.rejected_ = int((~(ok & peak_ok)).sum())
        starts, ends = starts[good], ends[good]
        ic_obs, to_obs, ic_lo, to_hi = ic_obs[good], to_obs[good], ic_lo[good], to_hi[good]
        ic = np.full(len(starts), np.nan)
        to = np.full(len(starts), np.nan)
        si, ei = starts[ic_obs], ends[to_obs]
        f0, f1 = f[si - 1], f[si]
        ic[ic_obs] = (si - 1) + (thr - f0) / (f1 - f0)
        g0, g1 = f[ei - 1], f[ei]
        to[to_obs] = (ei - 1) + (g0 - thr) / (g0 - g1)
        both = ic_obs & to_obs
        med_contact = float(np.median(to[both] - ic[both])) if both.any() else None
        for i in np.flatnonzero(~ic_obs):
            lo, hi = ic_lo[i], starts[i]
            est = to[i] - med_contact if (to_obs[i] and med_contact) else 0.5 * (lo + hi)
            ic[i] = min(max(est, lo), hi)
        for i in np.flatnonzero(~to_obs):
            lo, hi = ends[i] - 1, to_hi[i]
            est = ic[i] + med_contact if med_contact else 0.5 * (lo + hi)
            to[i] = min(max(est, lo), hi)
        nan_cum = np.concatenate(([0], np.cumsum(~valid)))
        self.complete_ = both & ((nan_cum[ends] - nan_cum[starts]) == 0)
        self.ic_estimated_ = ~ic_obs
        self.to_estimated_ = ~to_obs
        self.regions_ = np.stack([starts, ends], axis=1) if len(starts) else np.zeros((0, 2), int)
        self.ic_s_ = ic * period_s
        self.to_s_ = to * period_s
        return self


def _runs(mask: np.ndarray) -> np.ndarray:
    """(k, 2) half-open [start, end) index ranges where ``mask`` is True."""
    d = np.diff(np.concatenate(([0], mask.view(np.int8) if mask.dtype == bool else mask, [0])))
    return np.stack([np.flatnonzero(d == 1), np.flatnonzero(d == -1)], axis=1)


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


# --- flags ------------------------------------------------------------------------------------


@dataclass
class FlagConfig:
    """Flag thresholds; every default cites its source (DESIGN.md, Flags)."""

    valr_bw_per_s: float = 66.0
    """Median VALR of rearfoot steps. Davis et al. 2016, BJSM: odds ratio 2.72 for injury."""
    valr_rise_frac: float = 0.20
    """VALR rising 20 % from the first to the last part of the run (DESIGN.md)."""
    met_share_rearfoot: float = 0.60
    """1.15 x the 51.6 % under the metatarsal heads in shod running (Hennig-group table)."""
    met_share_forefoot: float = 0.75
    """Midfoot and forefoot strikes load the forefoot more (Wei et al. 2020); project default."""
    met_share_rise_frac: float = 0.10
    """Weist et al. 2004: +9 % metatarsal impulse after exhausting running."""
    arch_share: float = 0.05
    """A normal arch carries ~2 % of stance impulse (Hennig-group table)."""
    arch_share_rise_frac: float = 0.20
    """Weist et al. 2004: +17 % medial-midfoot impulse with fatigue; Fourchet et al. 2015: +7 %."""
    arch_share_end_min: float = 0.03
    min_steps: int = 20
    """Flags never fire on fewer clean steps than this."""
    baseline_s: float = 60.0
    baseline_min_steps: int = 30
    hold_s: float = 60.0
    hold_min_steps: int = 30
    rolling_steps: int = 30


SOURCES = {
    "heel_strike_force": "Davis IS et al. 2016, Br J Sports Med 50:887 (VALR > 66 BW/s, OR 2.72)",
    "forefoot_overload": "Hennig-group relative-load table (51.6 % under metatarsal heads, shod); "
                         "Wei et al. 2020 J Exerc Sci Fit; Weist et al. 2004 (fatigue +9 %)",
    "arch_collapse": "Hennig-group relative-load table (medial arch ~2 %); Weist et al. 2004 "
                     "(+17 % with fatigue); Fourchet et al. 2015 (+7 %)",
}
_NOT_DIAGNOSIS = "This is a pattern in your running, not a diagnosis: see a clinician if you have pain."


class FlagRules:
    """Evaluates the three flags for one foot's steps (list of step dicts)."""

    def __init__(self, config: FlagConfig | None = None) -> None:
        self.config = config or FlagConfig()

    def evaluate(self, steps: list[dict], side: str) -> FlagRules:
        """Sets ``flags_`` and ``notes_``; returns self."""
        cfg = self.config
        self.flags_: list[dict] = []
        self.notes_: list[str] = []
        if len(steps) < cfg.min_steps:
            self.notes_.append(f"{side}: only {len(steps)} clean steps (< {cfg.min_steps}): "
                               "no flags evaluated")
            return self
        t = np.array([s["ic_s"] for s in steps])
        drift_ok = self._drift_possible(t)
        if not drift_ok:
            self.notes_.append(f"{side}: trial too short for the drift rules (needs a "
                               f"{cfg.baseline_s:.0f} s baseline and {cfg.hold_s:.0f} s more); "
                               "absolute rules only")
        self._heel(steps, t, side, drift_ok)
        self._forefoot(steps, t, side, drift_ok)
        self._arch(steps, t, side, drift_ok)
        return self

    def _drift_possible(self, t: np.ndarray) -> bool:
        cfg = self.config
        base_end = self._baseline_end(t)
        return (t[-1] - base_end >= cfg.hold_s) and ((t > base_end).sum() >= cfg.hold_min_steps + cfg.rolling_steps // 2)

    def _baseline_end(self, t: np.ndarray) -> float:
        cfg = self.config
        end = t[0] + cfg.baseline_s
        if (t < end).sum() < cfg.baseline_min_steps:
            end = t[min(cfg.baseline_min_steps, len(t) - 1)]
        return float(end)

    def _flag(self, code, side, rule, value, threshold, unit, steps_n, span, message):
        v = float(value)
        sev = "alert" if rule == "absolute" and v > 1.25 * threshold else "warning"
        self.flags_.append({
            "code": code, "side": side, "severity": sev, "rule": rule,
            "value": round(v, 4), "threshold": threshold, "unit": unit, "steps": int(steps_n),
            "span_s": [round(float(span[0]), 3), round(float(span[1]), 3)],
            "message": f"{message} {_NOT_DIAGNOSIS}", "source": SOURCES[code]})

    def _sustained_rise(self, values: np.ndarray, t: np.ndarray, rise: float):
        """The longest run, after the baseline, of the rolling median above baseline·(1+rise)
        that lasts ``hold_s`` and ``hold_min_steps``.

        Returns (baseline, run_start_s, run_end_s, n_steps, median_level) or None.
        """
        cfg = self.config
        base_end = self._baseline_end(t)
        base = float(np.median(values[t < base_end]))
        w = cfg.rolling_steps
        if len(values) < w:
            return None
        roll = np.median(np.lib.stride_tricks.sliding_window_view(values, w), axis=1)
        t_roll = t[w - 1:]  # a trailing window of w steps ends at this step
        after = t[: len(roll)] >= base_end  # the whole window lies after the baseline
        best = None
        for a, b in _runs((roll > base * (1 + rise)) & after):
            dur = t_roll[b - 1] - t_roll[a]
            if dur >= cfg.hold_s and b - a >= cfg.hold_min_steps and (best is None or dur > best[2]):
                best = (a, b, dur)
        if best is None:
            return None
        a, b, _ = best
        return base, t_roll[a], t_roll[b - 1], b - a, float(np.median(roll[a:b]))

    def _drift_flag(self, code: str, side: str, rise_frac: float, r: tuple, what: str) -> None:
        """A drift-rule flag from a :meth:`_sustained_rise` result; ``what`` ends the message."""
        base, t0, t1, n, level = r
        pct = ".0f" if code == "forefoot_overload" else ".1f"
        self._flag(code, side, "drift", (level / base - 1) * 100, rise_frac * 100,
                   "% rise over baseline", n, (t0, t1),
                   f"Your {side} {'forefoot' if code == 'forefoot_overload' else 'arch'}'s share "
                   f"of each step rose from {base * 100:{pct}} % to {level * 100:{pct}} % and "
                   f"stayed there for {t1 - t0:.0f} s{what}")

    def _heel(self, steps, t, side, drift_ok):
        cfg = self.config
        rf = np.array([s["strike"] == "rearfoot" for s in steps])
        if rf.sum() < cfg.min_steps:
            self.notes_.append(f"{side}: {int(rf.sum())} rearfoot steps: heel_strike_force not "
                               "evaluated (it is about heel strikes)")
            return
        valr = np.array([s["valr_bw_per_s"] for s in steps])[rf]
        tr = t[rf]
        med = float(np.median(valr))
        if med > cfg.valr_bw_per_s:
            self._flag("heel_strike_force", side, "absolute", med, cfg.valr_bw_per_s, "BW/s",
                       rf.sum(), (tr[0], tr[-1]),
                       f"Your {side} heel strikes load fast: median loading rate {med:.0f} BW/s "
                       f"over {int(rf.sum())} heel strikes (threshold {cfg.valr_bw_per_s:.0f}). "
                       "High loading rates are linked to plantar fasciitis, heel fat-pad pain and "
                       "stress fractures.")
        if drift_ok:
            base_end = self._baseline_end(t)
            first = valr[tr < base_end]
            last = valr[tr > tr[-1] - cfg.baseline_s]
            if len(first) >= cfg.baseline_min_steps // 2 and len(last) >= cfg.baseline_min_steps // 2:
                rise = float(np.median(last) / np.median(first) - 1)
                if rise > cfg.valr_rise_frac:
                    self._flag("heel_strike_force", side, "drift", rise * 100,
                               cfg.valr_rise_frac * 100, "% rise", len(last),
                               (tr[tr > tr[-1] - cfg.baseline_s][0], tr[-1]),
                               f"Your {side} heel-strike loading rate rose {rise * 100:.0f} % from "
                               "the start to the end of the run, a sign of fatigue.")

    def _forefoot(self, steps, t, side, drift_ok):
        cfg = self.config
        if "metatarsal_share" not in steps[0]:
            self.notes_.append(f"{side}: no metatarsal sensors: forefoot_overload not evaluated")
            return
        share = np.array([s["metatarsal_share"] for s in steps])
        strike = np.array([s["strike"] for s in steps])
        for group, thr in (("rearfoot", cfg.met_share_rearfoot),
                           ("midfoot/forefoot", cfg.met_share_forefoot)):
            sel = strike == "rearfoot" if group == "rearfoot" else np.isin(strike, ["midfoot", "forefoot"])
            if sel.sum() < cfg.min_steps:
                continue
            med = float(np.median(share[sel]))
            if med > thr:
                self._flag("forefoot_overload", side, "absolute", med, thr, "share of stance impulse",
                           sel.sum(), (t[sel][0], t[sel][-1]),
                           f"Your {side} forefoot carries {med * 100:.0f} % of each step on "
                           f"{group} strikes (usual up to {thr * 100:.0f} %). Forefoot overload is "
                           "linked to metatarsalgia and metatarsal stress fractures.")
        if drift_ok:
            r = self._sustained_rise(share, t, cfg.met_share_rise_frac)
            if r:
                self._drift_flag("forefoot_overload", side, cfg.met_share_rise_frac, r,
                                 ", a sign of fatigue shifting load onto the metatarsal heads.")

    def _arch(self, steps, t, side, drift_ok):
        cfg = self.config
        if "arch" not in steps[0]["zone_impulse_share"]:
            self.notes_.append(f"{side}: no arch sensor: arch_collapse not evaluated")
            return
        share = np.array([s["zone_impulse_share"]["arch"] for s in steps])
        med = float(np.median(share))
        if med > cfg.arch_share:
            self._flag("arch_collapse", side, "absolute", med, cfg.arch_share,
                       "share of stance impulse", len(steps), (t[0], t[-1]),
                       f"Your {side} arch carries {med * 100:.1f} % of each step (a holding arch "
                       f"carries about 2 %, threshold {cfg.arch_share * 100:.0f} %): the arch "
                       "flattens onto the insole. This is linked to overpronation, arch and heel pain.")
        if drift_ok:
            r = self._sustained_rise(share, t, cfg.arch_share_rise_frac)
            last = share[t > t[-1] - cfg.baseline_s]
            if r and np.median(last) > cfg.arch_share_end_min:
                self._drift_flag("arch_collapse", side, cfg.arch_share_rise_frac, r,
                                 ": the arch gives way as you tire.")


# --- whole analysis ---------------------------------------------------------------------------


@dataclass
class AnalysisConfig:
    detector: dict = field(default_factory=dict)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    flags: FlagConfig = field(default_factory=FlagConfig)


def total_force(force_n: np.ndarray, fault_mask: int = 0) -> np.ndarray:
    """Sum of the zones' forces; faulted channels left out; NaN where no sample arrived."""
    keep = [c for c in range(force_n.shape[1]) if not fault_mask & (1 << c)]
    f = force_n[:, keep] if keep else force_n
    missing = np.all(np.isnan(f), axis=1)
    total = np.nansum(f, axis=1)
    total[missing] = np.nan
    return total


def analyse(feet: dict[str, FootStream], body_mass_kg: float | None = None,
            calibrations: dict[str, Calibration] | None = None,
            config: AnalysisConfig | None = None) -> dict:
    """Analyse one or two feet; returns the ``insole.analysis/1`` document (a dict)."""
    config = config or AnalysisConfig()
    calibrations = calibrations or {}

    def first_pass(side: str):
        fs = feet[side]
        cal = (calibrations.get(side) or Calibration()).apply(fs)
        total = total_force(cal.force_n_, cal.shorted_mask_)
        det = StepDetector(**config.detector).detect(total, fs.period_us * 1e-6)
        return fs, cal, total, det

    # the feet are independent until body weight; numpy releases the GIL for most of this
    with ThreadPoolExecutor(max_workers=max(1, min(len(feet), os.cpu_count() or 1))) as ex:
        pre = dict(zip(feet, ex.map(first_pass, feet)))
    # body weight: given, or the stride-average identity (one foot's mean force over whole
    # strides is half the body weight)
    estimates = {}
    for side, (fs, cal, total, det) in pre.items():
        r = det.regions_
        if len(r) >= 3:
            seg = total[r[0, 0]:r[-1, 0]]
            estimates[side] = 2.0 * float(np.nanmean(seg))
    bw_est = float(np.mean(list(estimates.values()))) if estimates else None
    if body_mass_kg is not None:
        bw = body_mass_kg * G_M_PER_S2
        bw_source = "given"
    elif bw_est:
        bw = bw_est
        bw_source = "stride-average identity"
    else:
        bw = 700.0
        bw_source = "assumed 700 N (too few strides to estimate)"
    doc: dict = {"schema": SCHEMA, "feet": {}, "flags": [], "notes": []}
    for side, (fs, cal, total, det) in pre.items():
        met = StepMetrics(config.metrics).compute(cal.force_n_, fs.zones, det.regions_, det.ic_s_,
                                                  det.to_s_, fs.period_us * 1e-6, bw, side,
                                                  det.complete_)
        steps = met.steps_
        clean = [st for st in steps if st["complete"]]
        summary = _summary(steps, clean, fs)
        if summary["activity"] == "running":
            rules = FlagRules(config.flags).evaluate(clean, side)
            doc["flags"].extend(rules.flags_)
            doc["notes"].extend(rules.notes_)
        else:
            doc["notes"].append(f"{side}: {summary['activity']} (duty factor "
                                f"{summary['duty_factor']}): the flags' thresholds come from "
                                "running studies, so no flags were evaluated")
        q = dict(fs.quality)
        q["sensor_fault_mask"] = cal.fault_mask_ | q.get("device_fault_mask", 0)
        q["sensor_faults"] = [z for c, z in enumerate(fs.zones) if q["sensor_fault_mask"] & (1 << c)]
        q["sensor_fault_reasons"] = {
            z: cal.fault_reasons_.get(c, "the device set its fault bit (0 V or a short for a second)")
            for c, z in enumerate(fs.zones) if q["sensor_fault_mask"] & (1 << c)}
        q["saturated_samples"] = cal.saturated_samples_
        q["partial_steps_skipped"] = det.partial_
        q["calibration"] = cal.name
        doc["feet"][side] = {"steps": steps, "summary": summary,
                             "quality": q,
                             "device": {"first_sample_t0_us": int(fs.t0_us) & 0xFFFFFFFF,
                                        "device_id": fs.info.device_id, "firmware": fs.info.firmware,
                                        "zones": list(fs.zones), "rate_hz": fs.rate_hz,
                                        "supply_mv": fs.info.supply_mv,
                                        "r_fixed_ohm": fs.info.r_fixed_ohm, "source": fs.source}}
    doc["body"] = {"body_weight_n": round(bw, 2), "source": bw_source,
                   "stride_average_estimate_n": round(bw_est, 2) if bw_est else None}
    if body_mass_kg is not None:
        doc["body"]["body_mass_kg"] = body_mass_kg
        if bw_est:
            doc["body"]["force_coverage"] = round(bw_est / bw, 3)
    doc["summary"] = _run_summary(doc["feet"])
    doc["summary"].update(_between_feet(doc["feet"], doc["notes"]))
    doc["config"] = {"detector": vars(StepDetector(**config.detector)),
                     "metrics": asdict(config.metrics), "flags": asdict(config.flags)}
    return doc


def _med(steps, key, pred=None):
    vals = [s[key] for s in steps if s.get(key) is not None and (pred is None or pred(s))]
    return round(float(np.median(vals)), 3) if vals else None


def _summary(all_steps: list[dict], steps: list[dict], fs: FootStream) -> dict:
    """Per-foot summary: timing over every step, force metrics over complete steps."""
    strides = [s["stride_ms"] for s in all_steps if "stride_ms" in s]
    # a stride that spans a gap or a missed step is not one stride
    if strides:
        med = float(np.median(strides))
        strides = [x for x in strides if x < 1.5 * med]
    cadence = 2 * 60000.0 / float(np.median(strides)) if strides else None
    strikes = {k: sum(1 for s in steps if s["strike"] == k) for k in ("rearfoot", "midfoot", "forefoot")}
    zones = steps[0]["zone_impulse_share"].keys() if steps else []
    # duty factor: the share of a stride the foot is on the ground; running has a flight phase
    # (duty factor < 0.5, typically 0.3-0.4), walking has double support (about 0.6)
    contact = _med(all_steps, "contact_ms")
    duty = round(contact / float(np.median(strides)), 3) if strides and contact else None
    activity = "unknown" if duty is None else ("running" if duty < RUNNING_MAX_DUTY_FACTOR else "walking")
    return {
        "activity": activity,
        "duty_factor": duty,
        "steps": len(all_steps),
        "steps_complete": len(steps),
        "cadence_spm": round(cadence, 2) if cadence else None,
        "contact_ms_median": contact,
        "swing_ms_median": _med(all_steps, "swing_ms"),
        "stride_ms_median": round(float(np.median(strides)), 2) if strides else None,
        "peak_force_bw_median": _med(steps, "peak_force_bw"),
        "valr_bw_per_s_median_rearfoot": _med(steps, "valr_bw_per_s", lambda s: s["strike"] == "rearfoot"),
        "valr_bw_per_s_median": _med(steps, "valr_bw_per_s"),
        "strike_counts": strikes,
        "strike_index_median": _med(steps, "strike_index"),
        "metatarsal_share_median": _med(steps, "metatarsal_share"),
        "zone_impulse_share_median": {z: round(float(np.median([s["zone_impulse_share"][z] for s in steps])), 4)
                                      for z in zones},
        "forefoot_ml_balance_median": _med(steps, "forefoot_ml_balance"),
        "duration_s": round(fs.quality["duration_s"], 3),
    }


def _between_feet(feet: dict, notes: list[str]) -> dict:
    """Step time and flight time between the feet, on one time base.

    Each foot has its own clock. A recorded session carries host receive times, from which each
    foot's device clock is mapped onto the host clock (offset and drift by minimum-delay
    filtering, ``quality.clock_*``). On that common base every step gets ``step_ms`` (its
    initial contact to the other foot's next one) and ``flight_ms`` (its toe-off to the other
    foot's next contact; negative: double support, as in walking). A raw capture has no host
    times, so its feet share no time base and these are left out, with a note.
    """
    if not ("left" in feet and "right" in feet):
        return {}
    qs = [feet[s]["quality"] for s in ("left", "right")]
    if any(q.get("clock_drift_ppm") is None for q in qs):
        notes.append("left/right step and flight times need a common time base: record both "
                     "feet into one session (raw captures carry no host receive times)")
        return {}
    events = []
    for side in ("left", "right"):
        q = feet[side]["quality"]
        scale, offset = 1.0 + q["clock_drift_ppm"] * 1e-6, q["clock_offset_s"]
        for st in feet[side]["steps"]:
            events.append((st["ic_s"] * scale + offset, st["to_s"] * scale + offset, side, st))
    events.sort(key=lambda e: e[0])
    for k, (ic, to, side, st) in enumerate(events):
        nxt = next((e for e in events[k + 1:] if e[2] != side), None)
        if nxt is None or nxt[0] - ic > 1.5:  # no contralateral contact near: a gap or a stop
            continue
        st["step_ms"] = round((nxt[0] - ic) * 1e3, 2)
        st["flight_ms"] = round((nxt[0] - to) * 1e3, 2)
    out = {"time_base": "host clock: each foot's device clock mapped by its estimated offset and "
                        "drift (residual " + ", ".join(f"{s} {feet[s]['quality']['clock_residual_ms']:.1f} ms"
                                                       for s in ("left", "right")) + ")"}
    for side in ("left", "right"):
        steps = feet[side]["steps"]
        feet[side]["summary"]["step_ms_median"] = _med(steps, "step_ms")
        feet[side]["summary"]["flight_ms_median"] = _med(steps, "flight_ms")
    left, right = feet["left"]["summary"]["step_ms_median"], feet["right"]["summary"]["step_ms_median"]
    if left and right:
        out["step_time_symmetry_index_pct"] = round(200.0 * (left - right) / (left + right), 2)
    return out


def _run_summary(feet: dict) -> dict:
    out: dict = {}
    cad = [f["summary"]["cadence_spm"] for f in feet.values() if f["summary"]["cadence_spm"]]
    if cad:
        out["cadence_spm"] = round(float(np.mean(cad)), 2)
    if "left" in feet and "right" in feet:
        sym = {}
        for key in ("contact_ms_median", "peak_force_bw_median", "valr_bw_per_s_median",
                    "metatarsal_share_median"):
            left, right = feet["left"]["summary"].get(key), feet["right"]["summary"].get(key)
            if left is not None and right is not None and (left + right) != 0:
                sym[key.replace("_median", "")] = round(200.0 * (left - right) / (left + right), 2)
        out["symmetry_index_pct"] = sym
        out["symmetry_note"] = "100·(L−R)/mean(L,R); within ±10 % is usually read as symmetric"
    return out
