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
import warnings
from dataclasses import dataclass

import numpy as np

from insole.model import hardware
from insole.protocol import METATARSAL_ZONES

log = logging.getLogger(__name__)


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


VALR_2080 = "20-80"
"""20-80 % of the impact transient (a peak or a shoulder), interpolated crossings."""
VALR_STANCE = "3-12pct"
"""The fallback without an impact transient: the mean slope over 3-12 % of stance."""

STRIKES = ("unknown", "rearfoot", "midfoot", "forefoot")
VALR_METHODS = (None, VALR_2080, VALR_STANCE)
TRANSIENTS = (None, "peak", "shoulder")
# why a step lost a metric (the codes in the step table's lost_* columns; 0: not lost)
LOST_EVENT = ("", "initial contact fell into a gap", "toe-off fell into a gap",
              "samples missing during the stance")
LOST_STRIKE = ("", "initial contact fell into a gap",
               "samples missing in the first {strike_window_ms:g} ms of contact")
LOST_VALR = ("", "initial contact fell into a gap",
             "samples missing in the first {impact_window_frac:.0%} of stance, before an impact "
             "transient was seen",
             "no impact transient, and the 3-12 % fallback needs the toe-off, which fell into a gap")
# a heel sensor lost mid-run (analysis/heel.py): the same reason for the contact, strike and
# loading rate (codes LOST_HEEL into LOST_STRIKE and LOST_VALR), and for the whole-stance
# shares, peak and impulse, which are of a total without the heel (LOST_EVENT_HEEL)
HEEL_DEAD = ("the heel sensor reads 0 V while the foot is loaded (disconnected or broken, or the "
             "heel no longer touches down): the contact is seen late, from the other zones")
LOST_STRIKE = (*LOST_STRIKE, HEEL_DEAD)
LOST_VALR = (*LOST_VALR, HEEL_DEAD)
LOST_EVENT = (*LOST_EVENT, "the heel sensor reads 0 V while the foot is loaded (disconnected or "
              "broken, or the heel no longer touches down): a total without the heel")
LOST_HEEL = (len(LOST_STRIKE) - 1, len(LOST_VALR) - 1)
LOST_EVENT_HEEL = len(LOST_EVENT) - 1


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




def transients_batch(total: np.ndarray, start: np.ndarray, length: np.ndarray, window_n: np.ndarray,
                     rate_hz: float, min_force: np.ndarray, config: MetricsConfig | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`impact_transient` of many rises at once, on a padded matrix, with the same result
    bit for bit (``tests/test_loading_rate.py`` checks it): rise ``i`` is
    ``total[start[i]:start[i] + length[i]]`` (no NaN), searched over ``window_n[i]`` samples
    for a transient of at least ``min_force[i]``.

    Returns (index into the rise or -1, kind code into :data:`TRANSIENTS`, force, 20-80 %
    slope per second or NaN), one element per rise.
    """
    cfg = config or MetricsConfig()
    k = len(start)
    idx_out = np.full(k, -1, np.int64)
    kind_out = np.zeros(k, np.int8)
    val_out = np.full(k, np.nan)
    valr_out = np.full(k, np.nan)
    if not k:
        return idx_out, kind_out, val_out, valr_out
    width = max(1, int(round(cfg.impact_smooth_ms * 1e-3 * rate_hz)) | 1)
    confirm = max(2, int(round(cfg.impact_confirm_ms * 1e-3 * rate_hz)))
    length = np.asarray(length, np.int64)
    n = np.minimum(length, window_n + confirm)
    w = np.minimum(window_n, n - 1)
    ok = w >= 3
    cols = int(length.max())
    pos = np.arange(cols)
    raw = total[np.minimum(start[:, None] + np.minimum(pos[None, :], length[:, None] - 1), len(total) - 1)]
    # the moving average with the ends padded by the end values, as smooth() does
    if width > 1:
        h = width // 2
        xp = np.concatenate((np.repeat(raw[:, :1], h, axis=1), raw,
                             np.repeat(raw[:, -1:], h, axis=1)), axis=1)
        c = np.cumsum(np.concatenate((np.zeros((k, 1)), xp), axis=1), axis=1)
        x = (c[:, width:] - c[:, :-width]) / width
        x = np.where((length >= 2)[:, None], x, raw)
    else:
        x = raw
    rows = np.arange(k)
    # np.gradient over x[:n]: central inside, one-sided at both ends
    d = np.empty_like(x)
    d[:, 1:-1] = (x[:, 2:] - x[:, :-2]) / 2.0
    d[:, 0] = x[:, 1] - x[:, 0] if cols > 1 else 0.0
    last = np.maximum(n - 1, 1)
    d[rows, last] = x[rows, last] - x[rows, last - 1]
    d = d * rate_hz
    in_w = pos[None, :] < w[:, None]
    jm = np.where(in_w, d, -np.inf).argmax(axis=1)
    dmax = d[rows, jm]
    ok &= dmax > 0
    low = d <= cfg.impact_shoulder_slope_frac * dmax[:, None]
    knee = (pos[None, :] > jm[:, None]) & in_w & (x >= min_force[:, None]) & low
    ok &= knee.any(axis=1)
    k0 = knee.argmax(axis=1)
    end = np.minimum(n, k0 + confirm)
    # the low-slope stretch from the knee: [k0, stop)
    brk = (pos[None, :] >= k0[:, None]) & (~low | (pos[None, :] >= end[:, None]))
    stop = np.where(brk.any(axis=1), brk.argmax(axis=1), cols)
    stretch = (pos[None, :] >= k0[:, None]) & (pos[None, :] < stop[:, None])
    zero = stretch & (d <= 0.0)
    is_peak = zero.any(axis=1)
    j = zero.argmax(axis=1)
    jp = np.maximum(j - 1, 0)
    k_peak = np.where(x[rows, jp] > x[rows, j], jp, j)
    k_sh = np.where(stretch, d, np.inf).argmin(axis=1)
    kk = np.where(is_peak, k_peak, k_sh)
    sel = np.flatnonzero(ok)
    if not len(sel):
        return idx_out, kind_out, val_out, valr_out
    xs, kk = x[sel], kk[sel]
    r = np.arange(len(sel))
    v = xs[r, kk]
    rise = pos[None, :] <= kk[:, None]
    t = []
    for frac in (cfg.valr_low_frac, cfg.valr_high_frac):
        level = frac * v
        q = ((xs >= level[:, None]) & rise).argmax(axis=1)  # the transient itself is >= level
        qm = np.maximum(q - 1, 0)
        x0, x1 = xs[r, qm], xs[r, q]
        with np.errstate(invalid="ignore", divide="ignore"):
            t.append(np.where(q == 0, 0.0, (q - 1) + (level - x0) / (x1 - x0)))
    with np.errstate(invalid="ignore", divide="ignore"):
        valr = np.where(t[1] > t[0], (cfg.valr_high_frac - cfg.valr_low_frac) * v * rate_hz
                        / (t[1] - t[0]), np.nan)
    idx_out[sel] = kk
    kind_out[sel] = np.where(is_peak[sel], 1, 2)
    val_out[sel] = v
    valr_out[sel] = valr
    return idx_out, kind_out, val_out, valr_out


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
                total: np.ndarray | None = None,
                body_weight_n: float | np.ndarray = 700.0) -> StepMetrics:
        """Sets ``columns_`` (a dict of per-step arrays, one row per region); returns self.

        ``force_n[0]`` is grid row ``row0``; ``ic_idx``/``to_idx`` are fractional grid rows;
        ``force_n`` has NaN where no sample arrived. ``f0`` (force_n with 0 for NaN) and
        ``total`` (the sum over every channel, NaN where none has a sample) may be given when
        the caller has them. ``body_weight_n`` (one value, or one per step) only sets the
        impact transient's least force (``impact_min_bw``); every force stays in newtons.

        A step with missing samples keeps each metric whose own part of the step is intact
        (module docstring); the others are NaN (strike 0, "unknown") and the ``lost_event``,
        ``lost_strike`` and ``lost_valr`` columns say why (codes into :data:`LOST_EVENT`,
        :data:`LOST_STRIKE`, :data:`LOST_VALR`). Everything but the impact transient is
        computed for all steps at once.
        """
        cfg = self.config
        k = len(regions)
        n, c = force_n.shape
        zi = {z: i for i, z in enumerate(zones)}
        complete = np.ones(k, bool) if complete is None else np.asarray(complete, bool)
        cols: dict = {
            "peak_n": np.full(k, np.nan), "impact_n": np.full(k, np.nan),
            "valr_n_per_s": np.full(k, np.nan), "valr_method": np.zeros(k, np.int8),
            "transient": np.zeros(k, np.int8),
            "strike": np.zeros(k, np.int8), "first_zones": np.zeros(k, np.int64),
            "shares": np.full((k, c), np.nan), "impulse_n_s": np.full((k, c), np.nan),
            "met_share": np.full(k, np.nan),
            "ml_balance": np.full(k, np.nan), "strike_index": np.full(k, np.nan),
            "cop_length_frac": np.full((k, 3), np.nan), "cop_width_frac": np.full((k, 3), np.nan),
            "lost_event": np.zeros(k, np.int8), "lost_strike": np.zeros(k, np.int8),
            "lost_valr": np.zeros(k, np.int8)}
        self.columns_ = cols
        lp, wp = self._positions(tuple(zones))
        known = ~np.isnan(lp)
        self.has_cop_ = bool(known.any())
        if not k:
            return self
        a = regions[:, 0].astype(np.int64)
        b = regions[:, 1].astype(np.int64)
        if f0 is None:
            f0 = np.nan_to_num(force_n)
        if total is None:
            total = f0 @ np.ones(c)
            total[np.all(np.isnan(force_n), axis=1)] = np.nan
        # the intact parts of each step, by prefix counts of the missing samples
        missing = np.isnan(total)
        any_missing = bool(missing.any())
        miss_cum = np.concatenate(([0], np.cumsum(missing))) if any_missing \
            else np.zeros(n + 1, np.int64)

        def intact(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
            lo, hi = np.maximum(lo, 0), np.minimum(hi, n)
            return (hi > lo) & (miss_cum[hi] == miss_cum[np.minimum(lo, hi)])

        ic_seen = (a >= 1) & ~missing[np.maximum(a - 1, 0)]
        to_seen = (b < n) & ~missing[np.minimum(b, n - 1)]
        whole = complete | (ic_seen & to_seen & intact(a, b))
        cols["lost_event"][~whole] = np.where(~ic_seen, 1, np.where(~to_seen, 2, 3))[~whole]
        strike_n = max(3, int(round(cfg.strike_window_ms * 1e-3 / period_s)) + 1)
        strike_ok = ic_seen & intact(a - 1, a - 1 + strike_n)
        cols["lost_strike"][~strike_ok] = np.where(~ic_seen, 1, 2)[~strike_ok]
        # -- whole stance: zone impulses and shares, peak force, CoP path, balance
        sel = np.flatnonzero(whole)
        if len(sel):
            aw, bw_ = a[sel], b[sel]
            edges = np.column_stack([aw, bw_]).ravel()
            f0e = np.vstack([f0, np.zeros((1, c))]) if bw_.max() >= len(f0) else f0
            imp = np.add.reduceat(f0e, edges, axis=0)[::2]
            tot_imp = imp.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                shares = np.where(tot_imp[:, None] > 0, imp / tot_imp[:, None], 0.0)
            cols["shares"][sel] = shares
            cols["impulse_n_s"][sel] = imp * period_s
            # max over each [a, b): reduceat over the interleaved edges, every other segment
            t0 = np.append(np.nan_to_num(total) if any_missing else total, 0.0)
            cols["peak_n"][sel] = np.maximum.reduceat(t0, edges)[::2]
            if known.any():
                for key, posv in (("cop_length_frac", lp), ("cop_width_frac", wp)):
                    out = []
                    for q in (aw, (aw + bw_ - 1) // 2, bw_ - 1):
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
        # -- strike pattern and strike index: the first 80 ms from the sample before contact
        sel = np.flatnonzero(strike_ok)
        if len(sel):
            strike, first_code = self._strike_all(f0, zones, a[sel], period_s)
            cols["strike"][sel] = strike
            cols["first_zones"][sel] = first_code
            if known.any():
                m = max(2, int(round(0.010 / period_s)) + 1)
                idx = np.minimum(a[sel, None] + np.arange(m), b[sel, None] - 1)
                w = f0[idx][:, :, known]
                ws = w.sum(axis=2)
                with np.errstate(invalid="ignore", divide="ignore"):
                    ci = (w @ lp[known]) / ws
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)  # no zone loaded: NaN
                        cols["strike_index"][sel] = np.nanmean(np.where(ws > 0, ci, np.nan), axis=1)
        # -- impact transient and loading rate: the rise to the transient
        bwn = np.broadcast_to(np.asarray(body_weight_n, float), (k,))
        self._loading_rate(cols, total, a, b, row0, ic_idx, to_idx, ic_seen, to_seen,
                           1.0 / period_s, bwn)
        return self

    def _positions(self, zones: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Each zone's centre along and across the foot (NaN where unknown), made once."""
        cache = self.__dict__.setdefault("_positions_cache", {})
        if zones not in cache:
            pos = hardware.zone_positions()
            cache[zones] = (np.array([pos.get(z, (np.nan, np.nan))[0] for z in zones]),
                            np.array([pos.get(z, (np.nan, np.nan))[1] for z in zones]))
        return cache[zones]

    def _loading_rate(self, cols, total, a, b, row0, ic_idx, to_idx, ic_seen, to_seen,
                      rate_hz, bwn) -> None:
        """Impact transient (N, its kind), loading rate (N/s) and its method of every step.

        The transient is :func:`impact_transient` on the intact prefix of the rise (from the
        sample before contact over the first ``impact_window_frac`` of stance plus
        ``impact_confirm_ms``); it counts when the samples up to it and its confirmation
        stretch all arrived. Without one, the mean rate over 3-12 % of stance, which needs the
        toe-off. A step whose contact fell into a gap, or whose rise has a gap before a
        transient was seen, loses its loading rate (``lost_valr``).
        """
        cfg = self.config
        confirm = max(2, int(round(cfg.impact_confirm_ms * 1e-3 * rate_hz)))
        period_s = 1.0 / rate_hz
        k = len(a)
        window_n = np.maximum(3, (cfg.impact_window_frac * (b - a)).astype(np.int64)) + 1
        lo = a - 1
        hi = np.minimum(b, lo + window_n + confirm)
        # the intact prefix of each rise: from the sample before contact to the first gap
        seg_len = hi - lo
        usable = seg_len.copy()
        missing = np.isnan(total)
        if missing.any():
            cm = np.concatenate(([0], np.cumsum(missing)))
            has_gap = cm[np.maximum(hi, 0)] > cm[np.maximum(lo, 0)]
            gap_rows = np.flatnonzero(missing)
            i = np.flatnonzero(has_gap & ic_seen)
            usable[i] = gap_rows[np.searchsorted(gap_rows, lo[i])] - lo[i]
        todo = np.flatnonzero(ic_seen & (usable >= 3))
        found = transients_batch(total, lo[todo], usable[todo], np.minimum(window_n[todo], usable[todo]),
                                 rate_hz, cfg.impact_min_bw * bwn[todo], cfg)
        it_index = np.full(k, -1, np.int64)
        it_kind = np.zeros(k, np.int8)
        it_value = np.full(k, np.nan)
        it_valr = np.full(k, np.nan)
        it_index[todo], it_kind[todo], it_value[todo], it_valr[todo] = found
        # per step, in this order: contact in a gap; a transient whose samples all arrived;
        # a gap in the rise before one; no toe-off for the fallback; the 3-12 % fallback
        accept = ic_seen & (it_index >= 0) & ((usable == seg_len) | (it_index + confirm < usable)) \
            & (it_valr == it_valr)
        rest = ic_seen & ~accept
        gap = rest & (usable < seg_len)
        rest &= ~gap
        cols["lost_valr"][~ic_seen] = 1
        cols["lost_valr"][gap] = 2
        cols["lost_valr"][rest & ~to_seen] = 3
        cols["impact_n"][accept] = it_value[accept]
        cols["transient"][accept] = it_kind[accept]
        cols["valr_n_per_s"][accept] = it_valr[accept]
        cols["valr_method"][accept] = 1
        # no impact transient (forefoot and midfoot strikes): 3-12 % of stance, which needs
        # the stance's length (toe-off seen)
        for i in np.flatnonzero(rest & to_seen).tolist():
            cols["valr_n_per_s"][i] = self._valr_stance(total, int(a[i]), int(b[i]), row0,
                                                        ic_idx[i], to_idx[i], period_s)
            cols["valr_method"][i] = 2

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
