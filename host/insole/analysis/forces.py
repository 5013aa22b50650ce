"""Pin voltages to newtons per channel, the channel faults, and the foot's total force.

:class:`ForceConverter` works block by block (the streaming core feeds it) with a
:class:`insole.model.calibration.Calibration` (the only calibration class); :class:`ChannelForces`
is the whole-stream form (CSV export, figures). Every judgement
that used to look at the whole run has an online form here (docs/analysis.md, Streaming):

- *shorted*: a channel saturated (at the ADC's clip, or at 99.5 % of the supply, whichever is
  lower) for a second without a break is shorted from the sample where that second is complete;
  the device's fault bit (STATUS) on a channel that has reached saturation before it makes it
  shorted from that STATUS on. A shorted channel is left out of the total from then on.
- *disconnected*: a channel whose highest reading so far is 0 V (reported at the end).
- *saturated samples*: a running count.
"""

from __future__ import annotations

import bisect
import logging
import warnings

import numpy as np

from insole import protocol as P
from insole.analysis.stream import Block, FootStream
from insole.model import hardware
from insole.model.calibration import Calibration, default
from insole.model.sensor import force_from_volts, saturation_v

log = logging.getLogger(__name__)

SHORTED_REASON = ("pinned at {sat_v:.2f} V or above (the ADC's clip) for a second or more: "
                  "shorted; left out of the total force")
DEVICE_SHORT_REASON = ("the device reports a fault and the channel reaches the ADC's clip: shorted "
                       "(intermittently)")
DISCONNECTED_REASON = "reads 0 V throughout: disconnected, or never loaded above the ADC's floor"


class ChannelForces:
    """A whole foot stream's forces at once (CSV export, figures): the streaming core's
    :class:`ForceConverter` fed the stream as one block, then the whole-stream swing baseline.

    Args:
        calibration: k and β per zone (:class:`insole.model.calibration.Calibration`); the
            default sensor model (:func:`insole.model.calibration.default`) if None.
    """

    def __init__(self, calibration: Calibration | None = None) -> None:
        self.calibration = calibration

    def compute(self, stream: FootStream) -> ChannelForces:
        """Sets ``force_n_`` (n, C), ``total_n_``, ``fault_mask_``, ``shorted_mask_``,
        ``fault_reasons_``, ``saturated_samples_`` and ``swing_baseline_n_``; records the
        swing baseline in ``stream.quality``. Returns self."""
        cal = self.calibration or default(stream.info.side, stream.info.zones)
        conv = ForceConverter(cal, stream.info, stream.rate_hz)
        b = Block.from_volts(0, stream.volts)
        self.force_n_, self.total_n_ = conv.feed(0, b.units, b.valid)
        self.fault_mask_, self.shorted_mask_, self.fault_reasons_ = conv.faults(
            int(stream.quality.get("device_fault_mask", 0) or 0))
        self.saturated_samples_ = conv.saturated_samples
        # a lacing pre-load reads in swing too: track each zone's swing baseline and remove it;
        # the ledger carries it per zone (stream.quality, which the document copies). This is
        # the whole-stream form (CSV export, figures); the streaming core's is in core.py.
        sb = SwingBaseline().fit(self.force_n_, stream.rate_hz, stream.info.zones)
        if sb.baseline_n_ is not None:
            self.force_n_ = sb.subtract(self.force_n_)
            keep = [c for c in range(self.force_n_.shape[1]) if not self.shorted_mask_ & (1 << c)]
            f = self.force_n_[:, keep] if keep else self.force_n_
            self.total_n_ = np.where(np.all(np.isnan(f), axis=1), np.nan, np.nansum(f, axis=1))
        self.swing_baseline_n_ = sb.baseline_median_n_
        stream.quality["swing_baseline_n"] = sb.report_
        return self


def _column_max(a: np.ndarray) -> np.ndarray:
    """``a.max(axis=0)`` of an (m, C) array by halving: each pass runs along contiguous rows
    (thirty times faster than a reduction across the rows for C = 5)."""
    while len(a) > 32:
        h = len(a) // 2
        b = np.maximum(a[:h], a[h:2 * h])
        if len(a) % 2:
            b[0] = np.maximum(b[0], a[-1])
        a = b
    return a.max(axis=0)


class ForceConverter:
    """One foot's volts → newtons, block by block, with the channel-fault state (online).

    Args:
        cal: k and β per zone (the default sensor model for a zone it does not name).
        info: the device's INFO (zones, supply, divider).
        rate_hz: the grid's sample rate.
    """

    def __init__(self, cal: Calibration, info: P.Info, rate_hz: float) -> None:
        self.name = cal.describe()
        self.supply_v = info.supply_mv / 1000.0
        self.r_fixed_ohm = info.r_fixed_ohm
        self.k, self.beta = np.array([(cal.k(z), cal.beta(z)) for z in info.zones],
                                     dtype=float).T
        self.sat_v = saturation_v(self.supply_v, hardware.adc_full_scale_mv() / 1000.0)
        c = len(info.zones)
        self.c = c
        self.n_sec = max(1, int(round(rate_hz)))
        self.saturated_samples = 0
        self.top_v = np.full(c, -np.inf)
        self.run = np.zeros(c, np.int64)  # saturated samples in a row at the end so far
        self.first_sat_row = np.full(c, -1, np.int64)
        self.shorted_from = np.full(c, -1, np.int64)  # row from which a channel is left out
        self.reasons: dict[int, str] = {}
        # F = k·G^β with G from the divider (insole.model.sensor.force_from_volts) for every
        # possible sample value; a saturated reading is a fault, not a force (0 here, and bad)
        v = np.arange(1 << 16) * P.SAMPLE_UNIT_V
        lut = np.stack([force_from_volts(v, self.supply_v, self.r_fixed_ohm, k, b,
                                         saturated_v=self.sat_v)
                        for k, b in zip(self.k, self.beta)])
        self._sat_units = int(np.argmax(np.isnan(lut[0]))) if np.isnan(lut[0]).any() else 1 << 16
        self._lut_flat = np.nan_to_num(lut, nan=0.0).ravel()
        self._lut_offset = np.arange(c, dtype=np.int64) << 16  # channel j's table starts here

    def _short(self, ch: int, row: int, reason: str) -> None:
        if self.shorted_from[ch] < 0:
            self.shorted_from[ch] = row
            self.reasons[ch] = reason

    def feed(self, row0: int, units: np.ndarray, valid: np.ndarray,
             device_faults: list[tuple[int, int]] = (),
             want_force: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
        """Newtons per channel (NaN where saturated or missing; None unless ``want_force``) and
        the total (NaN where no kept channel has a sample) of the rows ``row0 ...`` (samples
        in wire units, ``valid`` where they arrived). Sets ``f0`` (newtons, 0 where NaN) and
        ``total_all`` (every channel) for the metrics."""
        m, c = units.shape
        # newtons by table: one entry per possible sample value and channel (a flat take)
        f0 = self._lut_flat.take(units + self._lut_offset)
        missing = ~valid
        # rows where nothing arrived hold 0 (Block): the highest reading is the arrived ones'
        top = _column_max(units) if m else None
        any_sat = top >= self._sat_units if m else np.zeros(c, bool)
        saturated = None
        if any_sat.any():
            saturated = (units >= self._sat_units) & valid[:, None]
            any_sat = saturated.any(axis=0)
        bad = saturated | missing[:, None] if any_sat.any() else None
        if missing.any():
            f0[missing] = 0.0
        if bad is None:  # the usual case: nothing saturated
            n_bad = np.where(missing, c, 0)
            bad = np.broadcast_to(missing[:, None], (m, c))
        else:
            n_bad = np.count_nonzero(bad, axis=1)
        self.f0, self._bad, self._n_bad = f0, bad, n_bad
        if m and valid.any():
            self.top_v = np.fmax(self.top_v, top * P.SAMPLE_UNIT_V)
        for ch in np.flatnonzero(any_sat):
            col = saturated[:, ch]
            self.saturated_samples += int(col.sum())
            if self.first_sat_row[ch] < 0:
                self.first_sat_row[ch] = row0 + int(np.argmax(col))
            # length of the saturated run ending at each sample, the run before carried in
            idx = np.arange(m)
            last_off = np.maximum.accumulate(np.where(col, -1, idx))
            runlen = np.where(last_off < 0, self.run[ch] + idx + 1, idx - last_off)
            if self.shorted_from[ch] < 0:
                hit = np.flatnonzero(runlen >= self.n_sec)
                if len(hit):
                    self._short(ch, row0 + int(hit[0]), SHORTED_REASON.format(sat_v=self.sat_v))
            self.run[ch] = runlen[-1]
        self.run[~any_sat] = 0
        for row, mask in device_faults:
            for ch in range(self.c):
                if mask & (1 << ch) and 0 <= self.first_sat_row[ch] <= row:
                    self._short(ch, row, DEVICE_SHORT_REASON)
        total = self._total(row0)
        if not want_force:
            return None, total
        force = f0.copy()
        force[bad] = np.nan
        return force, total

    def _total(self, row0: int) -> np.ndarray:
        """The total over the channels not left out; sets ``total_all`` (every channel)."""
        c = self.c
        f0, nan, n_nan = self.f0, self._bad, self._n_bad.copy()
        total_all = f0 @ np.ones(c)  # a matrix-vector product: much faster than sum(axis=1)
        total_all[n_nan == c] = np.nan
        self.total_all = total_all
        sf = self.shorted_from
        left_out = np.flatnonzero((sf >= 0) & (sf < row0 + f0.shape[0]))
        if not len(left_out) or len(left_out) == c:  # never leave every channel out
            return total_all
        total = total_all.copy()
        kept = np.full(f0.shape[0], c)
        for ch in left_out:
            r = max(0, int(sf[ch]) - row0)
            total[r:] -= f0[r:, ch]
            n_nan[r:] -= nan[r:, ch]
            kept[r:] -= 1
        total[n_nan == kept] = np.nan
        return total

    def faults(self, device_fault_mask: int = 0) -> tuple[int, int, dict[int, str]]:
        """(all faults, shorted) as bit masks and a reason per channel, as of now."""
        mask = shorted = 0
        reasons: dict[int, str] = {}
        for ch in range(self.c):
            if self.shorted_from[ch] >= 0:
                mask |= 1 << ch
                shorted |= 1 << ch
                reasons[ch] = self.reasons[ch]
            elif self.top_v[ch] <= 0.0:
                mask |= 1 << ch
                reasons[ch] = DISCONNECTED_REASON
        return mask, shorted, reasons


class SwingBaseline:
    """Per-zone force that stays on in swing (a pre-load from tight lacing), tracked and removed.

    A foot in running or walking leaves the ground at least once in every ``window_s`` (2 s, over
    a stride at any cadence above 60 strides/min). In each window the swing is where the
    foot's total force is least; each zone's highest reading there (over the window's samples
    within 5 % of its force range of that least total and 100 ms or more from any sample that is
    not; then the most of it and its two neighbouring windows: a zone whose pre-load sits at the
    ADC's floor flickers between 0 and the floor with the noise, now and then, and the flicker
    must go too) is its baseline for the window,
    provided the window has a
    swing at all (its least total is under ``swing_max_frac`` of its largest: standing has
    none and keeps the neighbouring windows' baseline). The baseline is interpolated between
    window centres, so it follows a lacing that loosens, and subtracted from the zones whose
    median baseline is over ``min_baseline_n`` (2 N: sensor noise and the ADC floor leave the
    others untouched), and only when the swing itself is loaded: the median of the windows'
    least total at ``min_swing_total_n`` (10 N, half the contact threshold) or more. A swing
    that reads ~0 in total (the usual case, and every recording in ../shared/data) is left
    exactly as it is. Forces stay ≥ 0 and missing samples stay missing.
    """

    def __init__(self, window_s: float = 2.0, swing_max_frac: float = 0.3,
                 swing_band_frac: float = 0.05, edge_ms: float = 100.0,
                 min_baseline_n: float = 2.0, min_swing_total_n: float = 10.0) -> None:
        self.edge_ms = edge_ms
        self.min_swing_total_n = min_swing_total_n
        self.window_s = window_s
        self.swing_band_frac = swing_band_frac
        self.swing_max_frac = swing_max_frac
        self.min_baseline_n = min_baseline_n

    def fit(self, force_n: np.ndarray, rate_hz: float, zones: tuple[str, ...]) -> SwingBaseline:
        """Sets ``baseline_n_`` (n, C) or None, ``baseline_median_n_`` (C,), ``applied_`` (C,)
        and ``report_`` (for the quality ledger); returns self."""
        n, c = force_n.shape
        w = max(2, int(round(self.window_s * rate_hz)))
        nw = n // w
        self.baseline_n_ = None
        self.swing_total_n_ = 0.0
        self.baseline_median_n_ = np.zeros(c)
        self.applied_ = np.zeros(c, bool)
        if nw >= 1:
            f = force_n[: nw * w].reshape(nw, w, c)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-missing windows
                tot = np.where(np.all(np.isnan(f), axis=2), np.nan, np.nansum(f, axis=2))
                lo, hi = np.nanmin(tot, axis=1), np.nanmax(tot, axis=1)
                near = tot <= (lo + self.swing_band_frac * (hi - lo))[:, None]
                # away from the stance's edges: eroded by edge_ms on either side
                e = max(1, int(round(self.edge_ms * 1e-3 * rate_hz)))
                cs = np.concatenate(([0], np.cumsum(~near.ravel())))
                idx = np.arange(near.size)
                bad = cs[np.minimum(idx + e + 1, near.size)] - cs[np.maximum(idx - e, 0)]
                near = (bad == 0).reshape(near.shape)
                base = np.nanmax(np.where(near[:, :, None], f, np.nan), axis=1)  # (nw, C)
            swing = np.isfinite(lo) & (lo < self.swing_max_frac * hi)
            if swing.any():
                base = base[swing]
                # a rare flicker need not fall in every window: the most of three neighbours
                pad = np.vstack([base[:1], base, base[-1:]])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # a channel all NaN (shorted)
                    base = np.nanmax(np.stack([pad[:-2], pad[1:-1], pad[2:]]), axis=0)
                    med = np.nanmedian(base, axis=0)
                centre = (np.flatnonzero(swing) + 0.5) * w
                self.baseline_median_n_ = np.nan_to_num(med)
                self.swing_total_n_ = float(np.median(lo[swing]))
                # only a swing that is really loaded: a foot whose swing reads ~0 in total (the
                # usual case) is left exactly as it is, toe-off tails and all
                self.applied_ = (self.baseline_median_n_ > self.min_baseline_n) & \
                    (self.swing_total_n_ >= self.min_swing_total_n)
                if self.applied_.any():
                    grid = np.arange(n)
                    self.baseline_n_ = np.stack(
                        [np.interp(grid, centre, np.nan_to_num(base[:, j])) if self.applied_[j]
                         else np.zeros(n) for j in range(c)], axis=1)
        self.report_ = {
            "window_s": self.window_s,
            "swing_total_n": round(self.swing_total_n_, 1),
            "median_n": {z: round(float(v), 1) for z, v in zip(zones, self.baseline_median_n_)},
            "subtracted": [z for z, a in zip(zones, self.applied_) if a]}
        return self

    def subtract(self, force_n: np.ndarray) -> np.ndarray:
        """``force_n`` less the fitted baseline (≥ 0; NaN stays NaN); unchanged if none."""
        if self.baseline_n_ is None:
            return force_n
        return np.maximum(force_n - self.baseline_n_, 0.0)  # NaN propagates through maximum


class ValueCounts:
    """A multiset of floats as counts of each distinct value, with its exact median: memory
    grows with the number of distinct values, not with the number added."""

    __slots__ = ("counts", "keys", "n")

    def __init__(self) -> None:
        self.counts: dict[float, int] = {}
        self.keys: list[float] = []  # the distinct values, sorted
        self.n = 0

    def add(self, v: float) -> None:
        c = self.counts.get(v)
        if c is None:
            bisect.insort(self.keys, v)
            self.counts[v] = 1
        else:
            self.counts[v] = c + 1
        self.n += 1

    def nth(self, i: int) -> float:
        """The ``i``-th smallest value (0-based)."""
        seen = 0
        counts = self.counts
        for k in self.keys:
            seen += counts[k]
            if seen > i:
                return k
        raise IndexError(i)

    def median(self) -> float:
        """The median (the mean of the two middle values for an even count); 0 when empty."""
        n = self.n
        if not n:
            return 0.0
        if n % 2:
            return self.nth(n // 2)
        return 0.5 * (self.nth(n // 2 - 1) + self.nth(n // 2))

    def __len__(self) -> int:
        return self.n


class SwingTracker:
    """:class:`SwingBaseline` online, for the streaming core: window by window, causal.

    The rows are cut into windows of ``window_s`` (2 s) by grid row. When a window is complete
    its swing (least total, ``swing_band_frac`` band, eroded by ``edge_ms`` inside the window)
    gives each zone's baseline for it, as in :class:`SwingBaseline`. The first window's rows
    are held until it is complete. After that, a foot with nothing to remove (the usual case)
    passes its rows on as they arrive; a foot with a pre-load holds each window until it is
    complete (its steps come 2 s late live) and corrects it with the most of its own and the
    two previous swing windows' baselines (the batch form takes the neighbours on both sides
    and interpolates). Whether a zone is corrected is decided as the
    batch form decides it, on the windows seen so far: its median baseline over ``min_baseline_n``
    and the median least total of the swing windows at ``min_swing_total_n`` or more. Windows
    are cut by row number and each uses only its own samples, so the result does not depend on
    the blocks the rows came in. ``report_`` is the batch form's ledger entry, from all windows.
    """

    def __init__(self, rate_hz: float, zones: tuple[str, ...], params: SwingBaseline | None = None) -> None:
        self.p = params or SwingBaseline()
        self.zones = zones
        self.c = len(zones)
        self.w = max(2, int(round(self.p.window_s * rate_hz)))
        self.edge = max(1, int(round(self.p.edge_ms * 1e-3 * rate_hz)))
        self._win: list[np.ndarray] = []  # f0 of the current window's rows so far (NaN: missing)
        self._wint: list[np.ndarray] = []  # their totals over every channel
        self._win_rows = 0
        self._held: list[tuple] = []  # the first window's converted pieces, until it is complete
        self._first_done = False
        self._holding = True  # the first window is held until it is complete
        self.bases: list[list[float]] = []  # the last three swing windows: each zone's baseline (N)
        self.n_windows = 0  # swing windows so far
        # per zone, the swing windows' baselines (the most of each and the two before), and their
        # least totals, as counts of each value: the exact running medians over every window in
        # memory that does not grow with the run (a zone's baseline is one of its channel's 65536
        # force values, and in practice a handful of them recur; so do the least totals)
        self._sorted: list[ValueCounts] = [ValueCounts() for _ in zones]
        self._los = ValueCounts()
        self.current = np.zeros(self.c)  # the baseline the next rows get (0 where not applied)

    def _measure(self, f: np.ndarray, tot: np.ndarray) -> list[tuple[np.ndarray | None, float]]:
        """Windows (k, rows, C) of force (NaN: missing) and their totals over every channel
        (k, rows; NaN where no channel has a sample) → per window (each zone's highest force
        in its swing, or None without a swing; its least total)."""
        p = self.p
        k, rows, _ = f.shape
        # least and most total, missing samples left out (NaN for an all-missing window)
        lo, hi = np.fmin.reduce(tot, axis=1), np.fmax.reduce(tot, axis=1)
        swing = np.isfinite(lo) & (lo < p.swing_max_frac * hi)
        with np.errstate(invalid="ignore"):
            near = tot <= (lo + p.swing_band_frac * (hi - lo))[:, None]
        # away from the stance's edges: eroded by edge_ms on either side, inside the window
        cs = np.concatenate((np.zeros((k, 1), np.int64), np.cumsum(~near, axis=1)), axis=1)
        idx = np.arange(rows)
        bad = cs[:, np.minimum(idx + self.edge + 1, rows)] - cs[:, np.maximum(idx - self.edge, 0)]
        near = bad == 0
        # the most over the swing's samples, missing ones left out (fmax skips NaN; NaN if none),
        # zone by zone along contiguous rows (a reduction across the rows of (k, rows, C) is
        # eight times slower)
        g = np.ascontiguousarray(f.transpose(0, 2, 1))
        np.copyto(g, np.nan, where=~near[:, None, :])
        base = np.fmax.reduce(g, axis=2).tolist()
        return [(base[i] if swing[i] else None, float(lo[i])) for i in range(k)]

    def _window_done(self, measure: tuple[list[float] | None, float]) -> None:
        base, lo = measure
        if base is None:
            return  # no swing in it (standing, or no data): the baseline stays
        self.bases.append(base)
        del self.bases[:-3]
        self.n_windows += 1
        # a zone at the ADC's floor flickers between 0 and the floor: the most of three windows
        # (NaN, a shorted channel, left out; it does not count in the medians either)
        now = []
        for j, vals in enumerate(zip(*self.bases)):
            seen = [v for v in vals if v == v]
            if seen:
                v = max(seen)
                self._sorted[j].add(v)
                now.append(v)
            else:
                now.append(0.0)
        self._los.add(lo)
        # as _applied(), in plain Python (five numbers, once a window)
        swing_ok = self._median(self._los) >= self.p.min_swing_total_n
        self.current = np.array([v if swing_ok and self._median(s) > self.p.min_baseline_n else 0.0
                                 for v, s in zip(now, self._sorted)])

    @staticmethod
    def _median(v: ValueCounts) -> float:
        return v.median()

    def _medians(self) -> np.ndarray:
        return np.array([self._median(v) for v in self._sorted])

    def _applied(self) -> np.ndarray:
        if not self.n_windows:
            return np.zeros(self.c, bool)
        return (self._medians() > self.p.min_baseline_n) & \
            (self._median(self._los) >= self.p.min_swing_total_n)

    def _correct(self, f0, total, total_all, kept: np.ndarray):
        """The rows less ``current`` (>= 0); missing rows stay missing."""
        if not self.current.any():
            return f0, total, total_all
        g = np.maximum(f0 - self.current, 0.0)
        delta = f0 - g
        total_all = total_all - delta.sum(axis=1)
        total = total - delta[:, kept].sum(axis=1)
        return g, total, total_all

    def feed(self, f0, missing, total, total_all, kept: np.ndarray) -> list[tuple]:
        """One converted piece (f0 with 0 for missing; ``missing`` per channel); returns the
        pieces ready for the detector (corrected), in order."""
        m = len(f0)
        fw = f0  # NaN where missing (f0 is never written to: a copy only when needed)
        if missing.any():
            fw = f0.copy()
            fw[missing] = np.nan
        # the windows this piece completes, measured together
        rows0 = self._win_rows
        full = (rows0 + m) // self.w
        measures = []
        if full:
            upto = full * self.w - rows0
            measures = self._measure(
                np.concatenate([*self._win, fw[:upto]]).reshape(full, self.w, self.c),
                np.concatenate([*self._wint, total_all[:upto]]).reshape(full, self.w))
            self._win = [fw[upto:]] if upto < m else []
            self._wint = [total_all[upto:]] if upto < m else []
        else:
            self._win.append(fw)
            self._wint.append(total_all)
        out = []
        a = 0
        done = 0
        rows = rows0
        plain = -1  # rows [plain, a) pass on uncorrected (nothing to remove): one piece for all
        while a < m:
            take = min(m - a, self.w - rows)
            if not self._holding and not self.current.any():
                plain = a if plain < 0 else plain
            else:
                if plain >= 0:  # the plain rows before these go first
                    out.append((f0[plain:a], total[plain:a], total_all[plain:a]))
                    plain = -1
                piece = (f0[a:a + take], total[a:a + take], total_all[a:a + take])
                if self._holding:
                    self._held.append(piece)
                else:
                    out.append(self._correct(*piece, kept))
            rows += take
            if rows == self.w:
                self._window_done(measures[done])
                done += 1
                rows = 0
                self._first_done = True
                if self._held:
                    if plain >= 0:
                        out.append((f0[plain:a + take], total[plain:a + take],
                                    total_all[plain:a + take]))
                        plain = -1
                    out.extend(self._correct(*h, kept) for h in self._held)
                self._held = []
                # a foot with a pre-load waits for each window's own swing (2 s late); the
                # usual foot (nothing to remove) passes its rows on as they come
                self._holding = bool(self.current.any())
            a += take
        if plain >= 0:
            out.append((f0[plain:m], total[plain:m], total_all[plain:m]))
        self._win_rows = rows
        return out

    def finish(self, kept: np.ndarray) -> list[tuple]:
        """The end: a first window never completed is released (with the baseline of its
        rows so far)."""
        if not self._held:
            return []
        if self._win_rows >= 2:
            self._window_done(self._measure(np.concatenate(self._win)[None],
                                            np.concatenate(self._wint)[None])[0])
        self._first_done = True
        self._holding = False
        out = [self._correct(*h, kept) for h in self._held]
        self._held = []
        return out

    @property
    def report_(self) -> dict:
        med = self._medians()
        swing_total = self._median(self._los)
        applied = self._applied()
        return {"window_s": self.p.window_s, "swing_total_n": round(swing_total, 1),
                "median_n": {z: round(float(v), 1) for z, v in zip(self.zones, med)},
                "subtracted": [z for z, a in zip(self.zones, applied) if a]}
