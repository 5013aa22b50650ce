"""The three flags (heel-strike force, forefoot overload, arch collapse), with their sources.

The rules read a :class:`FlagState`: one foot's steps kept as running state as they are decided,
in memory that does not grow with the run (docs/analysis.md, "Flags as running state"). The
streaming core feeds it (:class:`insole.analysis.core.FootCore`), and the live feed and
``insole analyse`` read the same state, so there is one implementation of the rules:

- a median over every step is kept as counts on a fixed grid (:mod:`insole.analysis.grid`) at
  the resolution the document prints (shares 1e-5; loading rates to a relative 1e-5, in the
  unit the core gives, divided by body weight when the rules read it);
- the baseline window (the first ``baseline_s``, or ``baseline_min_steps`` steps) keeps its
  values until it ends, then only its median;
- the last ``baseline_s`` of steps is a ring;
- the drift rules' rolling median is a ring of ``rolling_steps`` values, and the longest run of
  it above the baseline is tracked as it grows (its median on a grid).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

import numpy as np

from insole.analysis.grid import GridCounts
from insole.analysis.metrics import STRIKES, VALR_2080, VALR_METHODS

log = logging.getLogger(__name__)


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


@dataclass
class FlagInput:
    """What the rules read of one foot's steps, as arrays (one element per step). A metric a
    damaged step lost is NaN (numbers) or None (strike, VALR method); each rule skips it."""

    ic_s: np.ndarray
    valr_bw_per_s: np.ndarray
    strike: np.ndarray  # of str ("unknown" or None where lost)
    metatarsal_share: np.ndarray | None  # None: no metatarsal sensors
    arch_share: np.ndarray | None  # None: no arch sensor
    valr_method: np.ndarray | None = None  # of str or None; None: all "20-80"

    @classmethod
    def from_steps(cls, steps: list[dict]) -> FlagInput:
        def num(v):
            return np.nan if v is None else v
        has_met = any("metatarsal_share" in s for s in steps)
        has_arch = any("arch" in (s.get("zone_impulse_share") or {}) for s in steps)
        return cls(np.array([s["ic_s"] for s in steps], float),
                   np.array([num(s.get("valr_bw_per_s")) for s in steps], float),
                   np.array([s.get("strike") or "unknown" for s in steps], dtype=object),
                   np.array([num(s.get("metatarsal_share")) for s in steps], float) if has_met else None,
                   np.array([num((s.get("zone_impulse_share") or {}).get("arch")) for s in steps], float)
                   if has_arch else None,
                   np.array([s.get("valr_method") for s in steps], dtype=object))

    def __len__(self) -> int:
        return len(self.ic_s)



# --- flags as running state -------------------------------------------------------------------

_REARFOOT = STRIKES.index("rearfoot")
_MID_FORE = (STRIKES.index("midfoot"), STRIKES.index("forefoot"))
_METHOD_2080 = VALR_METHODS.index(VALR_2080)
# the grids (grid.py): shares are rounded to 5 decimals; a rolling median of them is the mean of
# two, so a half point; a loading rate has no fixed unit here (N/s from the core, BW/s from
# step dicts), so its grid is logarithmic, 1e-5 relative, from 0.1 to 1e7 of its unit, and its
# median is rounded to the document's 0.001 BW/s (exact for a median of up to 100 BW/s that is
# one step's value)
_SHARE_PER_UNIT = 1e5
_ROLL_PER_UNIT = 2e5
_VALR_GRID = (1e5, 1e7, 1e-1, 4096)  # per unit of ln, top, bottom, points per block (4 %)


def _share_grid() -> GridCounts:
    return GridCounts(_SHARE_PER_UNIT, 1.0)


class _Span:
    """A median over a subset of steps (counts on a grid) and the times of its first and last
    step."""

    def __init__(self, grid: GridCounts) -> None:
        self.grid = grid
        self.t_first = self.t_last = None

    @property
    def n(self) -> int:
        return self.grid.n

    def add(self, t: np.ndarray, v: np.ndarray) -> None:
        if len(t):
            if self.t_first is None:
                self.t_first = float(t[0])
            self.t_last = float(t[-1])
            self.grid.add(v)


class _Baseline:
    """Where a series' baseline ends, from its step times as they come: the recording's first
    ``baseline_s``, extended to ``baseline_min_steps`` steps when those come later. Keeps the
    first ``baseline_min_steps + 1`` times and two counts."""

    def __init__(self, cfg: FlagConfig) -> None:
        self.cfg = cfg
        self.n = 0
        self._before = 0  # steps with t < baseline_s
        self._upto = 0  # steps with t <= baseline_s
        self._first: list[float] = []

    def add(self, t: np.ndarray) -> None:
        s = self.cfg.baseline_s
        self.n += len(t)
        self._before += int((t < s).sum())
        self._upto += int((t <= s).sum())
        need = self.cfg.baseline_min_steps + 1 - len(self._first)
        if need > 0:
            self._first.extend(t[:need].tolist())

    @property
    def fixed(self) -> bool:
        """No later step can move the end."""
        m = self.cfg.baseline_min_steps
        return self._before >= m or self.n > m

    def end(self) -> float | None:
        if not self.n:
            return None
        m = self.cfg.baseline_min_steps
        if self._before >= m:
            return float(self.cfg.baseline_s)
        return float(self._first[min(m, self.n - 1)])

    def after(self) -> int:
        """Steps after the end (step times increase)."""
        e = self.end()
        if e is None:
            return 0
        if self._before >= self.cfg.baseline_min_steps:
            return self.n - self._upto
        return self.n - sum(1 for x in self._first if x <= e)


class _Window:
    """The values of the steps inside the baseline window (kept until the window is fixed, then
    only those before its end) and of the last ``baseline_s`` (a ring)."""

    def __init__(self, cfg: FlagConfig) -> None:
        self.cfg = cfg
        self._head: list[tuple[float, float]] = []  # (t, value)
        self._done = False
        self._ring: deque[tuple[float, float]] = deque()

    def add(self, t: np.ndarray, v: np.ndarray, base: _Baseline) -> None:
        if not len(t):
            return
        new = list(zip(t.tolist(), v.tolist()))
        if not self._done:
            self._head.extend(new)
            if base.fixed:
                end = base.end()
                self._head = [p for p in self._head if p[0] < end]
                self._done = new[-1][0] >= end  # no later step falls before the end
        ring = self._ring
        ring.extend(new)
        cut = new[-1][0] - self.cfg.baseline_s
        while ring[0][0] <= cut:
            ring.popleft()

    def first(self, end: float) -> list[float]:
        """The values before ``end`` (the baseline's)."""
        return [v for t, v in self._head if t < end]

    def last(self) -> tuple[list[float], list[float]]:
        """(times, values) of the steps in the last ``baseline_s`` (t > the last t - baseline_s)."""
        return [p[0] for p in self._ring], [p[1] for p in self._ring]


def _median_sorted(s: list[float]) -> float:
    """``np.median`` of a sorted list (the same float: the mean of the middle two is (a+b)/2)."""
    h = len(s) // 2
    return s[h] if len(s) % 2 else (s[h - 1] + s[h]) / 2


class _Drift:
    """The drift rule of one share series: the longest run, after the baseline, of its rolling
    median (``rolling_steps`` steps) above baseline·(1 + rise) that lasts ``hold_s`` and
    ``hold_min_steps``; tracked as the series grows."""

    def __init__(self, cfg: FlagConfig, rise: float) -> None:
        self.cfg = cfg
        self.rise = rise
        self.base = _Baseline(cfg)
        self.window = _Window(cfg)
        self.base_value: float | None = None
        self._w = w = cfg.rolling_steps
        self._tail: deque[tuple[float, float]] = deque(maxlen=w - 1)  # the last w - 1 steps
        # the run in progress: [first window's end s, last window's end s, windows]; its
        # rolling medians' counts
        self._cur: list | None = None
        self._cur_grid = GridCounts(_ROLL_PER_UNIT, 1.0, block=2048)
        self.best: tuple | None = None  # (start s, end s, windows, median level)

    def add(self, t: np.ndarray, v: np.ndarray) -> None:
        if not len(t):
            return
        self.base.add(t)
        self.window.add(t, v, self.base)
        w = self._w
        tt = [p[0] for p in self._tail] + t.tolist()
        vv = [p[1] for p in self._tail] + v.tolist()
        self._tail.extend(zip(t.tolist(), v.tolist()))
        m = len(vv) - w + 1  # new windows
        if m <= 0:
            return
        if m <= 8:  # a step or a few (live)
            roll = [_median_sorted(sorted(vv[i:i + w])) for i in range(m)]
        else:
            roll = np.median(np.lib.stride_tricks.sliding_window_view(np.array(vv), w), axis=1).tolist()
        t_end = tt[w - 1:]
        cond = [False] * m
        if self.base.fixed:
            end = self.base.end()
            if tt[m - 1] >= end:  # a window lies wholly after the baseline
                if self.base_value is None:  # every step before the end has come
                    self.base_value = _median_sorted(sorted(self.window.first(end)))
                level = self.base_value * (1 + self.rise)
                cond = [tt[i] >= end and roll[i] > level for i in range(m)]
        self._runs(cond, roll, t_end)

    def _runs(self, cond: list[bool], roll: list[float], t_end: list[float]) -> None:
        i, m = 0, len(cond)
        while i < m:
            if not cond[i]:
                if self._cur is not None:
                    self._close()
                i += 1
                continue
            j = i
            while j < m and cond[j]:
                j += 1
            if self._cur is None:
                self._cur = [t_end[i], t_end[j - 1], j - i]
                self._cur_grid.clear()
            else:  # the run goes on from the last steps
                self._cur[1] = t_end[j - 1]
                self._cur[2] += j - i
            self._cur_grid.add_codes([round(x * _ROLL_PER_UNIT) for x in roll[i:j]])
            i = j

    def _qualifies(self, run: list) -> bool:
        dur = run[1] - run[0]
        return dur >= self.cfg.hold_s and run[2] >= self.cfg.hold_min_steps and \
            (self.best is None or dur > self.best[1] - self.best[0])

    def _close(self) -> None:
        if self._qualifies(self._cur):
            self.best = (*self._cur, self._cur_grid.median())
        self._cur = None

    def result(self) -> tuple | None:
        """(baseline, run_start_s, run_end_s, n_steps, median_level) of the longest run so far
        (the earliest of equal ones), or None."""
        best = self.best
        if self._cur is not None and self._qualifies(self._cur):
            best = (*self._cur, self._cur_grid.median())
        if best is None:
            return None
        return (self.base_value, *best)


def majority_method(counts: dict[int, int]) -> int | None:
    """The VALR method (code) most rearfoot steps got, 20-80 on a tie."""
    counts = {m: n for m, n in counts.items() if n}
    return max(counts, key=lambda m: (counts[m], m == _METHOD_2080)) if counts else None


class _Heel:
    """The rearfoot steps' loading rates, per VALR method (the rule uses one method)."""

    def __init__(self, cfg: FlagConfig) -> None:
        self.rearfoot = 0  # rearfoot steps (with or without a loading rate)
        self.spans = {m: _Span(GridCounts(*_VALR_GRID)) for m in range(1, len(VALR_METHODS))}
        self.windows = {m: _Window(cfg) for m in self.spans}



class FlagState:
    """One foot's steps as the flag rules read them, kept as running state (bounded memory).

    :meth:`add` the steps as they are decided (arrays, one element per step, in order); the
    rules (:class:`FlagRules`) read the state at any time. A metric a damaged step lost is NaN
    (numbers) or code 0 (strike "unknown", VALR method none): each rule skips it.

    Args:
        config: the thresholds and windows.
        has_met: the foot has metatarsal sensors (else forefoot_overload is not evaluated).
        has_arch: the foot has an arch sensor (else arch_collapse is not evaluated).
    """

    def __init__(self, config: FlagConfig | None = None, has_met: bool = True,
                 has_arch: bool = True) -> None:
        cfg = self.config = config or FlagConfig()
        self.has_met, self.has_arch = has_met, has_arch
        self.n = 0
        self.t_last: float | None = None
        self.base = _Baseline(cfg)  # of every step: the drift rules' time frame
        self.heel = _Heel(cfg)
        self.met_groups = {"rearfoot": _Span(_share_grid()), "midfoot/forefoot": _Span(_share_grid())}
        self.met_n = 0
        self.met_drift = _Drift(cfg, cfg.met_share_rise_frac)
        self.arch = _Span(_share_grid())
        self.arch_drift = _Drift(cfg, cfg.arch_share_rise_frac)

    def add(self, t_s: np.ndarray, valr: np.ndarray, valr_method: np.ndarray, strike: np.ndarray,
            met_share: np.ndarray | None = None, arch_share: np.ndarray | None = None) -> None:
        """The next steps: times (s from the recording's start), loading rates (any unit, the
        same for every step: :class:`FlagRules` divides by ``valr_per_bw``), the VALR method
        and strike codes (indices into ``metrics.VALR_METHODS`` and ``metrics.STRIKES``), the
        metatarsal and arch shares of stance impulse."""
        t_s = np.asarray(t_s, float)
        if not len(t_s):
            return
        self.n += len(t_s)
        self.t_last = float(t_s[-1])
        self.base.add(t_s)
        rf = strike == _REARFOOT
        h = self.heel
        h.rearfoot += int(rf.sum())
        for m, span in h.spans.items():
            sel = rf & (valr_method == m) & ~np.isnan(valr)
            if sel.any():
                span.add(t_s[sel], valr[sel])
            h.windows[m].add(t_s[sel], valr[sel], self.base)
        if self.has_met and met_share is not None:
            keep = ~np.isnan(met_share)
            tk, vk, sk = t_s[keep], met_share[keep], strike[keep]
            self.met_n += len(tk)
            self.met_groups["rearfoot"].add(tk[sk == _REARFOOT], vk[sk == _REARFOOT])
            mf = np.isin(sk, _MID_FORE)
            self.met_groups["midfoot/forefoot"].add(tk[mf], vk[mf])
            self.met_drift.add(tk, vk)
        if self.has_arch and arch_share is not None:
            keep = ~np.isnan(arch_share)
            self.arch.add(t_s[keep], arch_share[keep])
            self.arch_drift.add(t_s[keep], arch_share[keep])

    def add_input(self, steps: FlagInput) -> FlagState:
        """Every step of a :class:`FlagInput` (step dicts' values); returns self."""
        strike = np.array([STRIKES.index(s) if s in STRIKES else 0 for s in steps.strike.tolist()],
                          np.int8)
        # a loading rate without its method (a step dict from before the method was written):
        # the 20-80 one
        methods = steps.valr_method.tolist() if steps.valr_method is not None \
            else [None] * len(steps)
        codes = np.array([VALR_METHODS.index(m) if m in VALR_METHODS and m is not None
                          else _METHOD_2080 for m in methods], np.int8)
        self.add(steps.ic_s, np.asarray(steps.valr_bw_per_s, float), codes, strike,
                 steps.metatarsal_share, steps.arch_share)
        return self

    def valr_method(self) -> str | None:
        """The one VALR method a median over rearfoot steps uses: the one most of them got,
        20-80 on a tie (the methods disagree by a third on the same steps: DESIGN.md)."""
        m = majority_method(self.rearfoot_counts()[1])
        return None if m is None else VALR_METHODS[m]

    def drift_possible(self, duration_s: float | None) -> bool:
        # a 120 s recording has its 60 s baseline and 60 s more, even though its first step
        # lands a moment after 0 and its last toe-off a moment before the end
        cfg = self.config
        end = self.base.end()
        if end is None:
            return False
        duration_s = self.t_last if duration_s is None else duration_s
        return (duration_s - end >= cfg.hold_s - 1e-6) and \
            self.base.after() >= cfg.hold_min_steps + cfg.rolling_steps // 2

    # --- what the rules read (tests/flag_reference.py gives the same from arrays) ----------

    def rearfoot_counts(self) -> tuple[int, dict[int, int]]:
        """(rearfoot steps, {VALR method code: rearfoot steps with a loading rate by it})."""
        return self.heel.rearfoot, {m: s.n for m, s in self.heel.spans.items()}

    def rearfoot_valr(self, method: int) -> tuple[int, float, float, float]:
        """(steps, median loading rate, first and last step's time) of the rearfoot steps with
        a loading rate by ``method``."""
        s = self.heel.spans[method]
        return s.n, s.grid.median(), s.t_first, s.t_last

    def rearfoot_valr_ends(self, method: int) -> tuple[list[float], list[float], list[float]]:
        """Their loading rates before the baseline's end; the times and loading rates of those
        in the last ``baseline_s``."""
        w = self.heel.windows[method]
        return (w.first(self.base.end()), *w.last())

    def metatarsal_steps(self) -> int:
        """Steps that kept their metatarsal share."""
        return self.met_n

    def metatarsal_group(self, group: str) -> tuple[int, float | None, float, float]:
        """(steps, median share, first and last step's time) of a strike group's steps
        (``"rearfoot"`` or ``"midfoot/forefoot"``) that kept their metatarsal share."""
        s = self.met_groups[group]
        return s.n, s.grid.median(), s.t_first, s.t_last

    def metatarsal_rise(self) -> tuple | None:
        """The metatarsal share's longest sustained rise (:meth:`_Drift.result`)."""
        return self.met_drift.result()

    def arch_steps(self) -> tuple[int, float | None, float, float]:
        """(steps, median share, first and last step's time) of the steps that kept their arch
        share."""
        s = self.arch
        return s.n, s.grid.median(), s.t_first, s.t_last

    def arch_rise(self) -> tuple | None:
        """The arch share's longest sustained rise (:meth:`_Drift.result`)."""
        return self.arch_drift.result()

    def arch_last(self) -> list[float]:
        """The arch shares of the last ``baseline_s``."""
        return self.arch_drift.window.last()[1]

    @property
    def nbytes(self) -> int:
        """The grids' memory (the rest is a few hundred values at most)."""
        grids = [s.grid for s in (*self.heel.spans.values(), *self.met_groups.values(), self.arch)]
        grids += [self.met_drift._cur_grid, self.arch_drift._cur_grid]
        return sum(g.nbytes for g in grids)


# Walking keeps each foot down for more than half of its stride (double support); running less.
RUNNING_MAX_DUTY_FACTOR = 0.5


class ActivityState:
    """Running or walking, from one foot's steps as they come: the median stride and contact
    time (counts on a 0.01 ms grid, the document's rounding, up to 60 s) and the duty factor.
    The flags are evaluated for running only (their thresholds come from running studies)."""

    def __init__(self) -> None:
        self.stride = GridCounts(100, 60_000.0, block=2048)  # blocks of 20 ms
        self.contact = GridCounts(100, 60_000.0, block=2048)
        self._ic_last: float | None = None

    def add(self, ic_s: np.ndarray, to_s: np.ndarray) -> None:
        """The next steps' contact and toe-off (s; NaN: a contact that was not seen)."""
        if not len(ic_s):
            return
        contact = np.round((to_s - ic_s) * 1e3, 2)
        prev = np.concatenate(([self._ic_last], ic_s)) if self._ic_last is not None else ic_s
        stride = np.round(np.diff(prev) * 1e3, 2)
        self._ic_last = float(ic_s[-1])
        self.contact.add(contact[~np.isnan(contact)])
        self.stride.add(stride[~np.isnan(stride)])

    @property
    def nbytes(self) -> int:
        return self.stride.nbytes + self.contact.nbytes

    def result(self) -> tuple[float | None, float | None, float | None, str]:
        """(median stride ms, median contact ms, duty factor, activity): a stride that spans a
        gap or a missed step (over 1.5 x the median) is not one stride."""
        mid = self.stride.median_code()
        stride_med = self.stride.median(self.stride.count_below(1.5 * mid)) if mid is not None else None
        c = self.contact.median()
        contact = round(c, 3) if c is not None else None
        # duty factor: the share of a stride the foot is on the ground; running has a flight
        # phase (duty factor < 0.5, typically 0.3-0.4), walking has double support (about 0.6)
        duty = round(contact / stride_med, 3) if stride_med and contact else None
        activity = "unknown" if duty is None else \
            ("running" if duty < RUNNING_MAX_DUTY_FACTOR else "walking")
        return stride_med, contact, duty, activity


class FlagRules:
    """Evaluates the three flags for one foot (a :class:`FlagState`, or step dicts or a
    :class:`FlagInput`, made into one). The rules read the state through its methods
    (``rearfoot_counts`` ... ``arch_last``), which tests/flag_reference.py gives the batch way,
    from every step's values, to check the state against."""

    def __init__(self, config: FlagConfig | None = None) -> None:
        self.config = config or FlagConfig()

    def evaluate(self, steps: FlagState | list[dict] | FlagInput, side: str,
                 duration_s: float | None = None, valr_per_bw: float = 1.0) -> FlagRules:
        """Sets ``flags_``, ``notes_`` and ``evaluated_`` (which rule families could be
        evaluated: ``{"absolute": bool, "drift": bool}``); returns self.

        ``duration_s`` is the recording's length (step times count from its start): the drift
        rules need ``baseline_s`` of it for the baseline and ``hold_s`` more. Without it the last
        step's time stands in. ``valr_per_bw``: the loading rates' unit per BW/s (body weight
        in N for rates in N/s; 1 for BW/s).
        """
        cfg = self.config
        if isinstance(steps, (list, FlagInput)):
            if not isinstance(steps, FlagInput):
                steps = FlagInput.from_steps(steps)
            steps = FlagState(cfg, steps.metatarsal_share is not None,
                              steps.arch_share is not None).add_input(steps)
        st = steps
        self.flags_: list[dict] = []
        self.notes_: list[str] = []
        self.evaluated_ = {"absolute": False, "drift": False}
        if st.n < cfg.min_steps:
            self.notes_.append(f"{side}: only {st.n} clean steps (< {cfg.min_steps}): "
                               "no flags evaluated")
            return self
        drift_ok = st.drift_possible(duration_s)
        self.evaluated_ = {"absolute": True, "drift": bool(drift_ok)}
        if not drift_ok:
            self.notes_.append(f"{side}: trial too short for the drift rules (needs a "
                               f"{cfg.baseline_s:.0f} s baseline and {cfg.hold_s:.0f} s more); "
                               "absolute rules only")
        self._heel(st, side, drift_ok, valr_per_bw)
        self._forefoot(st, side, drift_ok)
        self._arch(st, side, drift_ok)
        return self

    def _flag(self, code, side, rule, value, threshold, unit, steps_n, span, message):
        v = float(value)
        sev = "alert" if rule == "absolute" and v > 1.25 * threshold else "warning"
        self.flags_.append({
            "code": code, "side": side, "severity": sev, "rule": rule,
            "value": round(v, 4), "threshold": threshold, "unit": unit, "steps": int(steps_n),
            "span_s": [round(float(span[0]), 3), round(float(span[1]), 3)],
            "message": f"{message} {_NOT_DIAGNOSIS}", "source": SOURCES[code]})

    def _drift_flag(self, code: str, side: str, rise_frac: float, r: tuple, what: str) -> None:
        """A drift-rule flag from a :meth:`_Drift.result`; ``what`` ends the message."""
        base, t0, t1, n, level = r
        pct = ".0f" if code == "forefoot_overload" else ".1f"
        self._flag(code, side, "drift", (level / base - 1) * 100, rise_frac * 100,
                   "% rise over baseline", n, (t0, t1),
                   f"Your {side} {'forefoot' if code == 'forefoot_overload' else 'arch'}'s share "
                   f"of each step rose from {base * 100:{pct}} % to {level * 100:{pct}} % and "
                   f"stayed there for {t1 - t0:.0f} s{what}")

    def _heel(self, st: FlagState, side: str, drift_ok: bool, valr_per_bw: float) -> None:
        cfg = self.config
        rearfoot, counts = st.rearfoot_counts()
        if rearfoot < cfg.min_steps:
            self.notes_.append(f"{side}: {rearfoot} rearfoot steps: heel_strike_force not "
                               "evaluated (it is about heel strikes)")
            return
        # one method per median: the methods disagree by a third on the same steps (DESIGN.md),
        # so the median is over the method most of the rearfoot steps got, preferring 20-80
        m = majority_method(counts)
        if m is None:
            self.notes_.append(f"{side}: no rearfoot step kept its loading rate: "
                               "heel_strike_force not evaluated")
            return
        method = VALR_METHODS[m]
        n, med, t0, t1 = st.rearfoot_valr(m)
        if n < cfg.min_steps:
            self.notes_.append(f"{side}: only {n} rearfoot steps with a {method} "
                               "loading rate: heel_strike_force not evaluated")
            return
        others = sum(v for k, v in counts.items() if k != m)
        if others:
            self.notes_.append(f"{side}: heel_strike_force: median over {n} rearfoot "
                               f"steps by the {method} method; {others} by another method left out")
        self.heel_valr_method_ = method
        med = round(med / valr_per_bw, 3)  # as the document gives a step's (and the grid's 1e-5)
        if med > cfg.valr_bw_per_s:
            self._flag("heel_strike_force", side, "absolute", med, cfg.valr_bw_per_s, "BW/s",
                       n, (t0, t1),
                       f"Your {side} heel strikes load fast: median loading rate {med:.0f} BW/s "
                       f"over {n} heel strikes (threshold {cfg.valr_bw_per_s:.0f}). "
                       "High loading rates are linked to plantar fasciitis, heel fat-pad pain and "
                       "stress fractures.")
        if drift_ok:
            first, last_t, last = st.rearfoot_valr_ends(m)
            if len(first) >= cfg.baseline_min_steps // 2 and len(last) >= cfg.baseline_min_steps // 2:
                rise = _median_sorted(sorted(last)) / _median_sorted(sorted(first)) - 1
                if rise > cfg.valr_rise_frac:
                    self._flag("heel_strike_force", side, "drift", rise * 100,
                               cfg.valr_rise_frac * 100, "% rise", len(last),
                               (last_t[0], last_t[-1]),
                               f"Your {side} heel-strike loading rate rose {rise * 100:.0f} % from "
                               "the start to the end of the run, a sign of fatigue.")

    def _forefoot(self, st: FlagState, side: str, drift_ok: bool) -> None:
        cfg = self.config
        if not st.has_met:
            self.notes_.append(f"{side}: no metatarsal sensors: forefoot_overload not evaluated")
            return
        # the steps that kept their whole-stance shares (a damaged step may have lost them)
        kept = st.metatarsal_steps()
        if kept < cfg.min_steps:
            self.notes_.append(f"{side}: only {kept} steps kept their zone shares: "
                               "forefoot_overload not evaluated")
            return
        for group, thr in (("rearfoot", cfg.met_share_rearfoot),
                           ("midfoot/forefoot", cfg.met_share_forefoot)):
            n, med, t0, t1 = st.metatarsal_group(group)
            if n < cfg.min_steps:
                continue
            if med > thr:
                self._flag("forefoot_overload", side, "absolute", med, thr, "share of stance impulse",
                           n, (t0, t1),
                           f"Your {side} forefoot carries {med * 100:.0f} % of each step on "
                           f"{group} strikes (usual up to {thr * 100:.0f} %). Forefoot overload is "
                           "linked to metatarsalgia and metatarsal stress fractures.")
        if drift_ok:
            r = st.metatarsal_rise()
            if r:
                self._drift_flag("forefoot_overload", side, cfg.met_share_rise_frac, r,
                                 ", a sign of fatigue shifting load onto the metatarsal heads.")

    def _arch(self, st: FlagState, side: str, drift_ok: bool) -> None:
        cfg = self.config
        if not st.has_arch:
            self.notes_.append(f"{side}: no arch sensor: arch_collapse not evaluated")
            return
        n, med, t0, t1 = st.arch_steps()
        if n < cfg.min_steps:
            self.notes_.append(f"{side}: only {n} steps kept their zone shares: "
                               "arch_collapse not evaluated")
            return
        if med > cfg.arch_share:
            self._flag("arch_collapse", side, "absolute", med, cfg.arch_share,
                       "share of stance impulse", st.n, (t0, t1),
                       f"Your {side} arch carries {med * 100:.1f} % of each step (a holding arch "
                       f"carries about 2 %, threshold {cfg.arch_share * 100:.0f} %): the arch "
                       "flattens onto the insole. This is linked to overpronation, arch and heel pain.")
        if drift_ok:
            r = st.arch_rise()
            if r and _median_sorted(sorted(st.arch_last())) > cfg.arch_share_end_min:
                self._drift_flag("arch_collapse", side, cfg.arch_share_rise_frac, r,
                                 ": the arch gives way as you tire.")
