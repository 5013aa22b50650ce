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


STRIKES = ("unknown", "rearfoot", "midfoot", "forefoot")
VALR_METHODS = (None, "20-80", "3-12pct")


class StepMetrics:
    """Per-step metrics of one foot (contact, loading rate, strike, zone shares, CoP).

    Forces stay in newtons here: body weight is a whole-run figure (or given), so the
    conversion to BW happens where the document is written (:mod:`insole.analysis.core`).
    """

    def __init__(self, config: MetricsConfig | None = None) -> None:
        self.config = config or MetricsConfig()

    def compute(self, force_n: np.ndarray, zones: tuple[str, ...], regions: np.ndarray,
                ic_idx: np.ndarray, to_idx: np.ndarray, period_s: float, row0: int = 0,
                complete: np.ndarray | None = None, f0: np.ndarray | None = None,
                total: np.ndarray | None = None) -> StepMetrics:
        """Sets ``columns_`` (a dict of per-step arrays, one row per region); returns self.

        ``force_n[0]`` is grid row ``row0``; ``ic_idx``/``to_idx`` are fractional grid rows.
        ``f0`` (force_n with 0 for NaN) and ``total`` (the sum over every channel, NaN where
        none has a sample) may be given when the caller has them.
        A step that is not ``complete`` (missing samples inside it, or an event estimated
        across a gap) gets its timing only (NaN, strike "unknown"): its force metrics would be
        computed on holes. Everything but the impact peak is computed for all steps at once.
        """
        k = len(regions)
        c = force_n.shape[1]
        zi = {z: i for i, z in enumerate(zones)}
        complete = np.ones(k, bool) if complete is None else np.asarray(complete, bool)
        cols: dict = {
            "peak_n": np.full(k, np.nan), "impact_n": np.full(k, np.nan),
            "valr_n_per_s": np.full(k, np.nan), "valr_method": np.zeros(k, np.int8),
            "strike": np.zeros(k, np.int8), "first_zones": np.zeros(k, np.int64),
            "shares": np.full((k, c), np.nan), "impulse_n_s": np.full((k, c), np.nan),
            "met_share": np.full(k, np.nan),
            "ml_balance": np.full(k, np.nan), "strike_index": np.full(k, np.nan),
            "cop_length_frac": np.full((k, 3), np.nan), "cop_width_frac": np.full((k, 3), np.nan)}
        self.columns_ = cols
        sel = np.flatnonzero(complete)
        if not len(sel):
            return self
        a = regions[sel, 0].astype(np.int64)
        b = regions[sel, 1].astype(np.int64)
        if f0 is None:
            f0 = np.nan_to_num(force_n)
        if total is None:
            total = f0 @ np.ones(c)
            total[np.all(np.isnan(force_n), axis=1)] = np.nan
        # zone impulses and peaks over [a, b)
        edges = np.column_stack([a, b]).ravel()
        f0e = np.vstack([f0, np.zeros((1, c))]) if b[-1] >= len(f0) else f0
        imp = np.add.reduceat(f0e, edges, axis=0)[::2]
        tot_imp = imp.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            shares = np.where(tot_imp[:, None] > 0, imp / tot_imp[:, None], 0.0)
        cols["shares"][sel] = shares
        cols["impulse_n_s"][sel] = imp * period_s
        # max over each [a, b): reduceat over the interleaved edges, every other segment
        t0 = np.append(np.nan_to_num(total), 0.0)
        cols["peak_n"][sel] = np.maximum.reduceat(t0, edges)[::2]
        # strike pattern from the zone that loads first (onsets within the first 80 ms)
        strike, first_code = self._strike_all(f0, zones, a, period_s)
        cols["strike"][sel] = strike
        cols["first_zones"][sel] = first_code
        # centre of pressure along/across the foot from the zone positions
        pos = hardware.zone_positions()
        lp = np.array([pos.get(z, (np.nan, np.nan))[0] for z in zones])
        wp = np.array([pos.get(z, (np.nan, np.nan))[1] for z in zones])
        known = ~np.isnan(lp)
        self.has_cop_ = bool(known.any())
        if known.any():
            m = max(2, int(round(0.010 / period_s)) + 1)
            idx = np.minimum(a[:, None] + np.arange(m), b[:, None] - 1)
            w = f0[idx][:, :, known]
            ws = w.sum(axis=2)
            with np.errstate(invalid="ignore", divide="ignore"):
                ci = (w @ lp[known]) / ws
                cols["strike_index"][sel] = np.nanmean(np.where(ws > 0, ci, np.nan), axis=1)
            for key, posv in (("cop_length_frac", lp), ("cop_width_frac", wp)):
                out = []
                for q in (a, (a + b - 1) // 2, b - 1):
                    ww = f0[q][:, known]
                    with np.errstate(invalid="ignore", divide="ignore"):
                        out.append((ww @ posv[known]) / ww.sum(axis=1))
                cols[key][sel] = np.stack(out, axis=1)
        if "met1" in zi and "met5" in zi:
            m1, m5 = imp[:, zi["met1"]], imp[:, zi["met5"]]
            with np.errstate(invalid="ignore", divide="ignore"):
                cols["ml_balance"][sel] = np.where(m1 + m5 > 0, (m1 - m5) / (m1 + m5), np.nan)
        met_idx = [zi[z] for z in METATARSAL_ZONES if z in zi]
        if met_idx:
            cols["met_share"][sel] = shares[:, met_idx].sum(axis=1)
        # impact peak and loading rate, on the total force (N/s; BW/s where the document is made)
        imp_n, valr, method = self._impact_and_valr(total, a, b, row0, ic_idx[sel], to_idx[sel],
                                                    period_s)
        cols["impact_n"][sel] = imp_n
        cols["valr_n_per_s"][sel] = valr
        cols["valr_method"][sel] = method
        return self

    def _impact_and_valr(self, total, a, b, row0, ic_idx, to_idx, period_s):
        """Impact peak (N, NaN if none), loading rate (N/s) and its method (1: 20-80 % of the
        impact peak, 2: 3-12 % of stance) of every step at once.

        The impact peak is the first local maximum in the first 30 % of stance that stands out:
        the force dips by at least max(2 % of it, 10 N) before anything higher, within the first
        60 % of stance. VALR is the mean rate between where the rise first reaches 20 % and 80 %
        of it (interpolated); without one (or with a rise that goes back), the mean rate over
        3-12 % of stance. Done on a padded matrix of the steps' stances: candidate peaks are
        taken rank by rank (the first candidate of every step, then the second of those not
        settled, ...).
        """
        cfg = self.config
        k = len(a)
        imp = np.full(k, np.nan)
        valr = np.full(k, np.nan)
        method = np.full(k, 2, np.int8)
        if not k:
            return imp, valr, method
        n = b - a
        w = np.maximum(3, (cfg.impact_window_frac * n).astype(np.int64))
        xlen = np.minimum(w, n)  # the window searched for candidates
        hlen = np.minimum(n, np.maximum(w + 1, (0.6 * n).astype(np.int64)))  # the horizon
        width = int(hlen.max())
        pos = np.arange(width)
        idx = np.minimum(a[:, None] + pos, len(total) - 1)
        seg = np.where(pos < hlen[:, None], total[idx], -np.inf)
        inner = pos[1:-1]
        cand = np.zeros(seg.shape, bool)
        cand[:, 1:-1] = (seg[:, 1:-1] >= seg[:, :-2]) & (seg[:, 1:-1] > seg[:, 2:]) \
            & (inner[None, :] + 1 < xlen[:, None])
        cand[xlen < 3] = False
        rank = np.cumsum(cand, axis=1)
        peak = np.full(k, -1)
        open_ = cand.any(axis=1)
        r = 0
        while open_.any():
            r += 1
            rows = np.flatnonzero(open_)
            sel = cand[rows] & (rank[rows] == r)
            has = sel.any(axis=1)
            open_[rows[~has]] = False
            rows, sel = rows[has], sel[has]
            if not len(rows):
                break
            kk = sel.argmax(axis=1)
            s = seg[rows]
            v = s[np.arange(len(rows)), kk]
            after = pos[None, :] > kk[:, None]
            higher = (s > v[:, None]) & after
            first = np.where(higher.any(axis=1), higher.argmax(axis=1), hlen[rows])
            span = (pos[None, :] >= kk[:, None]) & (pos[None, :] < first[:, None])
            dip = v - np.where(span, s, np.inf).min(axis=1)
            ok = (first - kk > 1) & (dip >= np.maximum(cfg.impact_min_prominence_frac * v,
                                                         cfg.impact_min_prominence_n))
            peak[rows[ok]] = kk[ok]
            open_[rows[ok]] = False
        # VALR over 20-80 % of the impact peak, on the rise up to it
        got = np.flatnonzero(peak >= 0)
        if len(got):
            s = seg[got]
            kk = peak[got]
            v = s[np.arange(len(got)), kk]
            rise = pos[None, :] <= kk[:, None]
            t = []
            for frac in (cfg.valr_low_frac, cfg.valr_high_frac):
                level = frac * v
                at = (s >= level[:, None]) & rise
                i = at.argmax(axis=1)  # the peak itself is >= level: always found
                x0 = s[np.arange(len(got)), np.maximum(i - 1, 0)]
                x1 = s[np.arange(len(got)), i]
                with np.errstate(invalid="ignore", divide="ignore"):
                    t.append(np.where(i == 0, 0.0, (i - 1) + (level - x0) / (x1 - x0)))
            good = t[1] > t[0]
            g = got[good]
            imp[g] = v[good]
            valr[g] = (cfg.valr_high_frac - cfg.valr_low_frac) * v[good] / (
                (t[1][good] - t[0][good]) * period_s)
            method[g] = 1
        # the rest: mean rate of rise over 3-12 % of stance
        rest = np.flatnonzero(method == 2)
        for j in rest.tolist():
            valr[j] = self._valr_stance(total, int(a[j]), int(b[j]), row0, ic_idx[j], to_idx[j],
                                        period_s)
        return imp, valr, method

    def _strike_all(self, f0: np.ndarray, zones: tuple[str, ...], a: np.ndarray,
                    period_s: float) -> tuple[np.ndarray, np.ndarray]:
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
            return np.zeros(0, np.int8), np.zeros(0, np.int64)
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
                           [0, 1, 3], 2).astype(np.int8)
        order = np.argsort(onset, axis=1, kind="stable")
        # zone indices + 1 in onset order, 4 bits each, first zone in the lowest bits
        inw = np.take_along_axis(within, order, axis=1)
        code = np.zeros(k, np.int64)
        shift = np.zeros(k, np.int64)
        for j in range(order.shape[1]):
            put = inw[:, j]
            code[put] |= (order[put, j].astype(np.int64) + 1) << shift[put]
            shift[put] += 4
        return strike, code

    def _valr_stance(self, total, a, b, row0, ic_idx, to_idx, period_s) -> float:
        """Mean rate of rise over 3-12 % of stance (N/s); ``a``/``b`` local, events in rows."""
        cfg = self.config
        contact = to_idx - ic_idx
        t1 = ic_idx + cfg.valr_fallback_start_frac * contact
        t2 = ic_idx + cfg.valr_fallback_end_frac * contact
        idx = np.arange(a - 1 + row0, b + 1 + row0, dtype=float)
        f1 = np.interp(t1, idx, total[a - 1:b + 1])
        f2 = np.interp(t2, idx, total[a - 1:b + 1])
        return float((f2 - f1) / ((t2 - t1) * period_s))


def decode_zones(code: int, zones: tuple[str, ...]) -> list[str]:
    """The zone list a ``first_zones`` code stands for (see :meth:`StepMetrics._strike_all`)."""
    out = []
    while code:
        out.append(zones[(code & 0xF) - 1])
        code >>= 4
    return out
