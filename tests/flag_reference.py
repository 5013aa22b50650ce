"""The flag rules' inputs the batch way, as they were before they became running state (issue
8): every step's values in arrays, exact medians, the drift rules' rolling medians and runs over
the whole series. :class:`BatchSteps` answers what :class:`insole.analysis.flags.FlagRules` asks
of a :class:`~insole.analysis.flags.FlagState`, so the tests can give the same rules both and
compare: equal on shares rounded to 5 decimals, loading rates within the grid's resolution."""

from __future__ import annotations

import numpy as np

from insole.analysis.arrays import runs
from insole.analysis.flags import FlagConfig, FlagInput
from insole.analysis.metrics import VALR_METHODS


class BatchSteps:
    """One foot's steps (a :class:`FlagInput`) read the batch way."""

    def __init__(self, steps: FlagInput, config: FlagConfig | None = None) -> None:
        self.cfg = cfg = config or FlagConfig()
        self.s = steps
        self.n = len(steps)
        self.t = steps.ic_s
        self.has_met = steps.metatarsal_share is not None
        self.has_arch = steps.arch_share is not None
        methods = steps.valr_method if steps.valr_method is not None \
            else np.full(self.n, "20-80", dtype=object)
        # a loading rate without its method: the 20-80 one (as FlagState.add_input)
        self.methods = np.array([VALR_METHODS.index(m) if m in VALR_METHODS and m is not None else 1
                                 for m in methods.tolist()], int)
        self.rf = steps.strike == "rearfoot"
        self.cfg = cfg

    def _baseline_end(self, t: np.ndarray) -> float:
        cfg = self.cfg
        end = cfg.baseline_s
        if (t < end).sum() < cfg.baseline_min_steps:
            end = t[min(cfg.baseline_min_steps, len(t) - 1)]
        return float(end)

    def drift_possible(self, duration_s: float | None) -> bool:
        cfg, t = self.cfg, self.t
        duration_s = t[-1] if duration_s is None else duration_s
        base_end = self._baseline_end(t)
        return (duration_s - base_end >= cfg.hold_s - 1e-6) and \
            ((t > base_end).sum() >= cfg.hold_min_steps + cfg.rolling_steps // 2)

    def _sustained_rise(self, values: np.ndarray, t: np.ndarray, rise: float):
        cfg = self.cfg
        base_end = self._baseline_end(t)
        base = float(np.median(values[t < base_end]))
        w = cfg.rolling_steps
        if len(values) < w:
            return None
        roll = np.median(np.lib.stride_tricks.sliding_window_view(values, w), axis=1)
        t_roll = t[w - 1:]
        after = t[: len(roll)] >= base_end
        best = None
        for a, b in runs((roll > base * (1 + rise)) & after):
            dur = t_roll[b - 1] - t_roll[a]
            if dur >= cfg.hold_s and b - a >= cfg.hold_min_steps and (best is None or dur > best[2]):
                best = (a, b, dur)
        if best is None:
            return None
        a, b, _ = best
        return base, t_roll[a], t_roll[b - 1], b - a, float(np.median(roll[a:b]))

    def _valr_sel(self, m: int) -> np.ndarray:
        return self.rf & (self.methods == m) & ~np.isnan(self.s.valr_bw_per_s)

    def rearfoot_counts(self):
        return int(self.rf.sum()), {m: int(self._valr_sel(m).sum()) for m in (1, 2)}

    def rearfoot_valr(self, m):
        sel = self._valr_sel(m)
        tr = self.t[sel]
        return int(sel.sum()), float(np.median(self.s.valr_bw_per_s[sel])), tr[0], tr[-1]

    def rearfoot_valr_ends(self, m):
        sel = self._valr_sel(m)
        v, tr = self.s.valr_bw_per_s[sel], self.t[sel]
        last = tr > tr[-1] - self.cfg.baseline_s
        return v[tr < self._baseline_end(self.t)].tolist(), tr[last].tolist(), v[last].tolist()

    def _met(self):
        keep = ~np.isnan(self.s.metatarsal_share)
        return self.s.metatarsal_share[keep], self.s.strike[keep], self.t[keep]

    def metatarsal_steps(self):
        return len(self._met()[0])

    def metatarsal_group(self, group):
        share, strike, t = self._met()
        sel = strike == "rearfoot" if group == "rearfoot" else np.isin(strike, ["midfoot", "forefoot"])
        if not sel.any():
            return 0, None, None, None
        return int(sel.sum()), float(np.median(share[sel])), t[sel][0], t[sel][-1]

    def metatarsal_rise(self):
        share, _, t = self._met()
        return self._sustained_rise(share, t, self.cfg.met_share_rise_frac)

    def _arch(self):
        keep = ~np.isnan(self.s.arch_share)
        return self.s.arch_share[keep], self.t[keep]

    def arch_steps(self):
        share, t = self._arch()
        if not len(share):
            return 0, None, None, None
        return len(share), float(np.median(share)), t[0], t[-1]

    def arch_rise(self):
        share, t = self._arch()
        return self._sustained_rise(share, t, self.cfg.arch_share_rise_frac)

    def arch_last(self):
        share, t = self._arch()
        return share[t > t[-1] - self.cfg.baseline_s].tolist()
