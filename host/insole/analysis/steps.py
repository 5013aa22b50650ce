"""Step segmentation: initial contact and toe-off from one foot's total force."""

from __future__ import annotations

import logging
from collections import deque

import numpy as np

from insole.analysis.arrays import runs

log = logging.getLogger(__name__)


# --- steps ------------------------------------------------------------------------------------


class ContactHistory:
    """The contact times (in samples) of the last ``size`` steps whose both events were seen:
    the online stand-in for the run's median contact time when an event fell into a gap."""

    def __init__(self, size: int = 255) -> None:
        self.values: deque[float] = deque(maxlen=size)

    def median(self) -> float | None:
        return float(np.median(self.values)) if self.values else None


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
    The median contact time is that of the steps before it (:class:`ContactHistory`), so a
    stream gives the same answer whatever blocks it arrives in.
    """

    def __init__(self, threshold_n: float = 20.0, merge_gap_ms: float = 40.0,
                 min_contact_ms: float = 100.0, max_contact_ms: float = 2000.0,
                 min_peak_n: float = 60.0) -> None:
        self.threshold_n = threshold_n
        self.merge_gap_ms = merge_gap_ms
        self.min_contact_ms = min_contact_ms
        self.max_contact_ms = max_contact_ms
        self.min_peak_n = min_peak_n

    def detect(self, total_n: np.ndarray, period_s: float, row0: int = 0,
               history: ContactHistory | None = None) -> StepDetector:
        """Sets ``regions_`` (k, 2) half-open sample ranges of ``total_n``, ``ic_s_``, ``to_s_``
        (seconds from row 0 of the foot's grid, ``total_n[0]`` being row ``row0``), ``ic_idx_``
        and ``to_idx_`` (the same in fractional rows), ``complete_`` (no missing sample in the
        step, both events observed), ``ic_estimated_`` and ``to_estimated_``; returns self.
        ``history`` carries the contact times of earlier steps (a fresh one if not given)."""
        f = total_n
        thr = self.threshold_n
        n = len(f)
        valid = ~np.isnan(f)
        all_valid = bool(valid.all())
        above = (f > thr) if all_valid else valid & (np.where(valid, f, -np.inf) > thr)
        # runs of missing samples (none, the usual case)
        nan_runs = np.zeros((0, 2), np.int64) if all_valid else runs(~valid)
        # a gap with contact on both sides is inside one contact
        for g0, g1 in nan_runs.tolist():
            if g0 > 0 and g1 < n and above[g0 - 1] and above[g1]:
                above[g0:g1] = True
        starts, ends = runs(above).T if above.any() else (np.zeros(0, int), np.zeros(0, int))
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
        if len(starts):
            fm = np.append(np.where(valid, f, -np.inf), -np.inf)
            peak_ok = np.maximum.reduceat(fm, np.column_stack([starts, ends]).ravel())[::2] \
                >= self.min_peak_n
        else:
            peak_ok = np.zeros(0, bool)
        # the edges: the sample before a start and the sample at an end must be seen below the
        # threshold, or be the far edge of a gap that began below it

        def gap_around(k: int) -> tuple[int, int]:
            j = int(np.searchsorted(nan_runs[:, 0], k, side="right")) - 1
            return int(nan_runs[j, 0]), int(nan_runs[j, 1])

        whole = (starts > 0) & (ends < n)
        ic_lo = np.full(len(starts), np.nan)
        to_hi = np.full(len(starts), np.nan)
        ic_obs = np.zeros(len(starts), bool)
        to_obs = np.zeros(len(starts), bool)
        cand = np.flatnonzero(ok & peak_ok & whole)
        seen_before = valid[starts[cand] - 1]  # whole: 0 < start and end < n
        seen_after = valid[ends[cand]]
        ic_obs[cand[seen_before]] = True
        to_obs[cand[seen_after]] = True
        # a crossing that fell into a gap (rare): bounded by the gap, one step at a time
        for i in cand[~(seen_before & seen_after)].tolist():
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
        # rows as whole numbers first, then the fraction: the same value whatever row0 is
        ic[ic_obs] = (si - 1 + row0).astype(float) + (thr - f0) / (f1 - f0)
        g0, g1 = f[ei - 1], f[ei]
        to[to_obs] = (ei - 1 + row0).astype(float) + (g0 - thr) / (g0 - g1)
        both = ic_obs & to_obs
        hist = history if history is not None else ContactHistory()
        # contact times go into the history in step order; a step with an event in a gap
        # (rare) is estimated from the steps before it
        contact = (to - ic).tolist()
        done = 0
        for i in np.flatnonzero(~both).tolist():
            hist.values.extend(contact[done:i])
            done = i + 1
            med = hist.median()
            if not ic_obs[i]:
                lo, hi = ic_lo[i] + row0, starts[i] + row0
                est = to[i] - med if (to_obs[i] and med) else 0.5 * (lo + hi)
                ic[i] = min(max(est, lo), hi)
            if not to_obs[i]:
                lo, hi = ends[i] - 1 + row0, to_hi[i] + row0
                est = ic[i] + med if med else 0.5 * (lo + hi)
                to[i] = min(max(est, lo), hi)
        hist.values.extend(contact[done:])
        nan_cum = np.concatenate(([0], np.cumsum(~valid)))
        self.complete_ = both & ((nan_cum[ends] - nan_cum[starts]) == 0)
        self.ic_estimated_ = ~ic_obs
        self.to_estimated_ = ~to_obs
        self.regions_ = np.stack([starts, ends], axis=1) if len(starts) else np.zeros((0, 2), int)
        self.ic_idx_ = ic
        self.to_idx_ = to
        self.ic_s_ = ic * period_s
        self.to_s_ = to * period_s
        return self
