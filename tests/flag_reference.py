"""The flag rules as they were before they became running state (issue 8): a batch over every
step's values in arrays with exact medians. The tests compare :class:`insole.analysis.flags.
FlagState` with it: equal on shares rounded to 5 decimals, loading rates within 1e-5 relative."""

from __future__ import annotations

import numpy as np

from insole.analysis.arrays import runs
from insole.analysis.flags import _NOT_DIAGNOSIS, SOURCES, FlagConfig, FlagInput


def _methods(steps: FlagInput) -> np.ndarray:
    if steps.valr_method is None:
        return np.full(len(steps), "20-80", dtype=object)
    return steps.valr_method


def rearfoot_valr_methods(steps: list[dict] | FlagInput) -> dict[str, int]:
    """How many rearfoot steps with a loading rate got each VALR method."""
    if not isinstance(steps, FlagInput):
        steps = FlagInput.from_steps(steps)
    sel = (steps.strike == "rearfoot") & ~np.isnan(steps.valr_bw_per_s)
    methods = _methods(steps)[sel].tolist()
    return {m: methods.count(m) for m in set(methods)}


def rearfoot_valr_method(steps: list[dict] | FlagInput) -> str | None:
    """The one VALR method a median over rearfoot steps uses: the one most of them got,
    20-80 on a tie (the methods disagree by a third on the same steps: DESIGN.md)."""
    counts = rearfoot_valr_methods(steps)
    return max(counts, key=lambda m: (counts[m], m == "20-80")) if counts else None


class ReferenceRules:
    """The batch rules (every step's values in arrays, exact medians): the reference."""

    def __init__(self, config: FlagConfig | None = None) -> None:
        self.config = config or FlagConfig()

    def evaluate(self, steps: list[dict] | FlagInput, side: str,
                 duration_s: float | None = None) -> ReferenceRules:
        """Sets ``flags_``, ``notes_`` and ``evaluated_`` (which rule families could be
        evaluated: ``{"absolute": bool, "drift": bool}``); returns self.

        ``duration_s`` is the recording's length (step times count from its start): the drift
        rules need ``baseline_s`` of it for the baseline and ``hold_s`` more. Without it the last
        step's time stands in.
        """
        cfg = self.config
        self.flags_: list[dict] = []
        self.notes_: list[str] = []
        self.evaluated_ = {"absolute": False, "drift": False}
        if len(steps) < cfg.min_steps:
            self.notes_.append(f"{side}: only {len(steps)} clean steps (< {cfg.min_steps}): "
                               "no flags evaluated")
            return self
        if not isinstance(steps, FlagInput):
            steps = FlagInput.from_steps(steps)
        t = steps.ic_s
        drift_ok = self._drift_possible(t, t[-1] if duration_s is None else duration_s)
        self.evaluated_ = {"absolute": True, "drift": bool(drift_ok)}
        if not drift_ok:
            self.notes_.append(f"{side}: trial too short for the drift rules (needs a "
                               f"{cfg.baseline_s:.0f} s baseline and {cfg.hold_s:.0f} s more); "
                               "absolute rules only")
        self._heel(steps, t, side, drift_ok)
        self._forefoot(steps, t, side, drift_ok)
        self._arch(steps, t, side, drift_ok)
        return self

    def _drift_possible(self, t: np.ndarray, duration_s: float) -> bool:
        # a 120 s recording has its 60 s baseline and 60 s more, even though its first step
        # lands a moment after 0 and its last toe-off a moment before the end
        cfg = self.config
        base_end = self._baseline_end(t)
        return (duration_s - base_end >= cfg.hold_s - 1e-6) and \
            ((t > base_end).sum() >= cfg.hold_min_steps + cfg.rolling_steps // 2)

    def _baseline_end(self, t: np.ndarray) -> float:
        # the recording's first baseline_s (step times count from its start), extended to
        # baseline_min_steps steps when those come later
        cfg = self.config
        end = cfg.baseline_s
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

    def _sustained_rise(self, values: np.ndarray, t: np.ndarray, rise: float, name: str = ""):
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
        for a, b in runs((roll > base * (1 + rise)) & after):
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
        rf = steps.strike == "rearfoot"
        if rf.sum() < cfg.min_steps:
            self.notes_.append(f"{side}: {int(rf.sum())} rearfoot steps: heel_strike_force not "
                               "evaluated (it is about heel strikes)")
            return
        # one method per median: the methods disagree by a third on the same steps (DESIGN.md),
        # so the median is over the method most of the rearfoot steps got, preferring 20-80
        counts = rearfoot_valr_methods(steps)
        if not counts:
            self.notes_.append(f"{side}: no rearfoot step kept its loading rate: "
                               "heel_strike_force not evaluated")
            return
        method = rearfoot_valr_method(steps)
        sel = rf & (_methods(steps) == method) & ~np.isnan(steps.valr_bw_per_s)
        if sel.sum() < cfg.min_steps:
            self.notes_.append(f"{side}: only {int(sel.sum())} rearfoot steps with a {method} "
                               "loading rate: heel_strike_force not evaluated")
            return
        others = sum(v for m, v in counts.items() if m != method)
        if others:
            self.notes_.append(f"{side}: heel_strike_force: median over {int(sel.sum())} rearfoot "
                               f"steps by the {method} method; {others} by another method left out")
        self.heel_valr_method_ = method
        rf = sel
        valr = steps.valr_bw_per_s[rf]
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
        if steps.metatarsal_share is None:
            self.notes_.append(f"{side}: no metatarsal sensors: forefoot_overload not evaluated")
            return
        # the steps that kept their whole-stance shares (a damaged step may have lost them)
        keep = ~np.isnan(steps.metatarsal_share)
        if keep.sum() < cfg.min_steps:
            self.notes_.append(f"{side}: only {int(keep.sum())} steps kept their zone shares: "
                               "forefoot_overload not evaluated")
            return
        share = steps.metatarsal_share[keep]
        strike = steps.strike[keep]
        t = t[keep]
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
            r = self._sustained_rise(share, t, cfg.met_share_rise_frac, "metatarsal_share")
            if r:
                self._drift_flag("forefoot_overload", side, cfg.met_share_rise_frac, r,
                                 ", a sign of fatigue shifting load onto the metatarsal heads.")

    def _arch(self, steps, t, side, drift_ok):
        cfg = self.config
        if steps.arch_share is None:
            self.notes_.append(f"{side}: no arch sensor: arch_collapse not evaluated")
            return
        keep = ~np.isnan(steps.arch_share)
        if keep.sum() < cfg.min_steps:
            self.notes_.append(f"{side}: only {int(keep.sum())} steps kept their zone shares: "
                               "arch_collapse not evaluated")
            return
        t = t[keep]
        share = steps.arch_share[keep]
        med = float(np.median(share))
        if med > cfg.arch_share:
            self._flag("arch_collapse", side, "absolute", med, cfg.arch_share,
                       "share of stance impulse", len(steps), (t[0], t[-1]),
                       f"Your {side} arch carries {med * 100:.1f} % of each step (a holding arch "
                       f"carries about 2 %, threshold {cfg.arch_share * 100:.0f} %): the arch "
                       "flattens onto the insole. This is linked to overpronation, arch and heel pain.")
        if drift_ok:
            r = self._sustained_rise(share, t, cfg.arch_share_rise_frac, "arch_share")
            last = share[t > t[-1] - cfg.baseline_s]
            if r and np.median(last) > cfg.arch_share_end_min:
                self._drift_flag("arch_collapse", side, cfg.arch_share_rise_frac, r,
                                 ": the arch gives way as you tire.")


