"""The flags as running state (issue 8: per-step cost and memory that do not grow with the run):
:class:`FlagState` fed step by step, or in pieces of any size, gives the flags the batch rules
over every step give (tests/flag_reference.py), and its memory stays flat over a long run."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from flag_reference import BatchSteps

from insole.analysis.flags import (
    ActivityState,
    FlagConfig,
    FlagInput,
    FlagRules,
    FlagState,
)
from insole.analysis.grid import GridCounts


def _series(seed: int, n: int):
    """A run with drifts, noise, mixed strikes, lost values and two VALR methods, rounded as the
    document rounds (shares 5 decimals, loading rates 3)."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    t = np.round(np.cumsum(rng.uniform(0.30, 0.40, n)) + rng.uniform(0, 2), 5)
    strike = rng.choice(["rearfoot", "midfoot", "forefoot", "unknown"], n, p=[0.6, 0.25, 0.1, 0.05])
    valr = np.round(rng.normal(60 + 25 * (i > n * rng.uniform(0.4, 0.8)), 8, n), 3)
    method = rng.choice(np.array(["20-80", "3-12pct"], dtype=object), n, p=[0.7, 0.3])
    rise = rng.uniform(0, 0.4)
    met = np.round(0.45 * (1 + rise * (i > n * rng.uniform(0.3, 0.7))) + rng.normal(0, 0.02, n), 5)
    arch = np.round(np.abs(0.025 * (1 + rng.uniform(0, 1) * i / n) + rng.normal(0, 0.004, n)), 5)
    for arr in (valr, met, arch):
        arr[rng.random(n) < 0.03] = np.nan  # steps that lost the metric
    method[np.isnan(valr)] = None
    return FlagInput(t, valr, strike.astype(object), met, arch, method)


def _prefix(fi: FlagInput, k: int) -> FlagInput:
    return FlagInput(fi.ic_s[:k], fi.valr_bw_per_s[:k], fi.strike[:k], fi.metatarsal_share[:k],
                     fi.arch_share[:k], fi.valr_method[:k])


def _assert_same(got: FlagRules, want: FlagRules):
    assert got.notes_ == want.notes_
    assert got.evaluated_ == want.evaluated_
    assert len(got.flags_) == len(want.flags_), (got.flags_, want.flags_)
    for g, w in zip(got.flags_, want.flags_):
        if g["code"] == "heel_strike_force" and g["rule"] == "absolute":
            # a loading rate's median is kept on a logarithmic grid (1e-5 relative), rounded to 0.001
            assert g["value"] == pytest.approx(w["value"], abs=1.01e-3)
            g, w = dict(g, value=0, message=""), dict(w, value=0, message="")
        assert g == w


@pytest.mark.parametrize("seed", range(6))
def test_running_state_gives_the_batch_rules_flags_at_every_point(seed):
    fi = _series(seed, 900)
    n = len(fi)
    rng = np.random.default_rng(100 + seed)
    state = FlagState(FlagConfig(), True, True)
    k, seen = 0, set()
    while k < n:
        step = int(rng.choice([1, 2, 7, 40]))
        piece = FlagInput(*(a[k:k + step] for a in (fi.ic_s, fi.valr_bw_per_s, fi.strike,
                                                    fi.metatarsal_share, fi.arch_share, fi.valr_method)))
        state.add_input(piece)
        k = min(n, k + step)
        duration_s = float(fi.ic_s[k - 1]) + 0.4
        got = FlagRules().evaluate(state, "left", duration_s)
        want = FlagRules().evaluate(BatchSteps(_prefix(fi, k)), "left", duration_s)
        _assert_same(got, want)
        seen.update(f["code"] + "/" + f["rule"] for f in got.flags_)
    # the comparison covered flags that fired (test_every_rule_fires_and_matches: every rule)
    assert any(f.endswith("/drift") for f in seen), seen


def test_every_rule_fires_and_matches():
    """Runs made to fire each rule: heel absolute and drift, forefoot absolute and drift, arch
    absolute and drift."""
    n = 900
    i = np.arange(n)
    t = np.round(i * 0.35 + 0.2, 5)
    rng = np.random.default_rng(3)
    valr = np.round(np.where(i > 300, 90.0, 60.0) + rng.normal(0, 3, n), 3)
    met = np.round(np.where(i > 400, 0.66, 0.50) + rng.normal(0, 0.01, n), 5)
    arch = np.round(0.03 * (1 + 1.5 * i / n) + rng.normal(0, 0.002, n), 5)
    fi = FlagInput(t, valr, np.array(["rearfoot"] * n, dtype=object), met, arch,
                   np.array(["20-80"] * n, dtype=object))
    got = FlagRules().evaluate(FlagState().add_input(fi), "left", t[-1] + 0.4)
    want = FlagRules().evaluate(BatchSteps(fi), "left", t[-1] + 0.4)
    _assert_same(got, want)
    assert {(f["code"], f["rule"]) for f in got.flags_} == {
        (c, r) for c in ("heel_strike_force", "forefoot_overload", "arch_collapse")
        for r in ("absolute", "drift")}


def test_too_few_steps_and_short_runs_say_why():
    fi = _series(1, 15)
    got = FlagRules().evaluate(FlagState().add_input(fi), "right")
    assert got.flags_ == [] and "only 15 clean steps" in got.notes_[0]
    fi = _series(2, 200)  # about 70 s: no drift rules
    got = FlagRules().evaluate(FlagState().add_input(fi), "right", 71.0)
    want = FlagRules().evaluate(BatchSteps(fi), "right", 71.0)
    _assert_same(got, want)
    assert got.evaluated_ == {"absolute": True, "drift": False}


def _long_run(n: int) -> FlagInput:
    """A long run whose values stay in their range after the first part (a drift once, then
    noise): the memory test's."""
    rng = np.random.default_rng(7)
    i = np.arange(n)
    t = np.round(np.cumsum(rng.uniform(0.30, 0.40, n)), 5)
    later = i > 1000
    valr = np.round(rng.normal(np.where(later, 80, 60), 8, n), 3)
    met = np.round(np.where(later, 0.55, 0.45) + rng.normal(0, 0.02, n), 5)
    arch = np.round(np.where(later, 0.04, 0.025) + rng.normal(0, 0.004, n), 5)
    strike = rng.choice(np.array(["rearfoot", "midfoot"], dtype=object), n, p=[0.7, 0.3])
    method = rng.choice(np.array(["20-80", "3-12pct"], dtype=object), n, p=[0.7, 0.3])
    return FlagInput(t, valr, strike, met, arch, method)


def _kept(state: FlagState) -> int:
    """The values the state keeps outside its grids (baseline heads, rings, rolling tails)."""
    windows = [*state.heel.windows.values(), state.met_drift.window, state.arch_drift.window]
    return sum(len(w._head) + len(w._ring) for w in windows) + \
        len(state.met_drift._tail) + len(state.arch_drift._tail)


def test_memory_does_not_grow_with_the_run():
    """40,000 steps (about 10 hours of one foot at 70 steps a minute) after a warm-up of 4000:
    the values kept outside the grids stay within a minute of steps, the grids make a block
    (4-8 kB) only for a value further out in a tail than any before (fewer and fewer), and in all
    the state grows by under 6 bytes a step, where keeping the values would take 56 (seven series
    of 8 bytes)."""
    fi = _long_run(44_000)
    state = FlagState()
    state.add_input(_prefix(fi, 4000))
    grids, kept = [state.nbytes], [_kept(state)]  # (nbytes counts what waits in bulk, too)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for a in range(4000, len(fi), 500):
            b = a + 500
            state.add_input(FlagInput(*(x[a:b] for x in (fi.ic_s, fi.valr_bw_per_s, fi.strike,
                                                          fi.metatarsal_share, fi.arch_share,
                                                          fi.valr_method))))
            FlagRules().evaluate(state, "left")
            grids.append(state.nbytes)
            kept.append(_kept(state))
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert state.n == len(fi)
    assert max(kept) < 6 * 200, max(kept)  # 6 windows of at most 60 s of steps (0.3 s each)
    half = len(grids) // 2
    assert grids[-1] - grids[half] < (grids[half] - grids[0]) + 16 * 1024, grids
    assert grown < 40_000 * 6, grown


def test_activity_state_is_the_batch_activity():
    rng = np.random.default_rng(4)
    n = 3000
    ic = np.cumsum(rng.uniform(0.68, 0.74, n))
    ic[rng.random(n) < 0.01] += 3.0  # gaps: strides over 1.5 x the median are not strides
    ic = np.sort(ic)
    to = ic + rng.uniform(0.2, 0.26, n)
    ic_lost = ic.copy()
    ic_lost[rng.random(n) < 0.02] = np.nan  # contacts a dead heel did not see
    act = ActivityState()
    for a in range(0, n, 13):
        act.add(ic_lost[a:a + 13], to[a:a + 13])
    stride = np.round(np.diff(ic_lost) * 1e3, 2)
    stride = stride[~np.isnan(stride)]
    stride = stride[stride < 1.5 * np.median(stride)]
    contact = np.round((to - ic_lost) * 1e3, 2)
    want_contact = round(float(np.median(contact[~np.isnan(contact)])), 3)
    stride_med, contact_ms, duty, activity = act.result()
    assert stride_med == float(np.median(stride))
    assert contact_ms == want_contact
    assert duty == round(want_contact / stride_med, 3) and activity == "running"


def test_grid_counts_medians():
    rng = np.random.default_rng(6)
    for n in (1, 2, 3, 10, 999, 5000):
        v = np.round(rng.normal(0.4, 0.1, n).clip(0, 1), 5)
        g = GridCounts(1e5, 1.0)
        for a in range(0, n, 97):
            g.add(v[a:a + 97])
        assert g.median() == float(np.median(v)) and g.n == n
        lim = float(np.median(v)) * 1.1
        assert g.count_below(lim * 1e5) == int((v < lim).sum())
        g.clear()
        assert g.n == 0 and g.median() is None
    # a logarithmic grid: 1e-5 relative
    v = rng.lognormal(np.log(50_000), 0.3, 2001)
    g = GridCounts(1e5, 1e8, log_from=1e-3)
    g.add(v)
    assert g.median() == pytest.approx(float(np.median(v)), rel=1e-5)
    # out of range: counted at the ends
    g = GridCounts(100, 10.0)
    g.add(np.array([-1.0, 5.0, 50.0]))
    assert (g.kth(0), g.kth(1), g.kth(2)) == (0, 500, 1000)


def test_grid_counts_take_infinities_at_the_ends():
    for g in (GridCounts(100, 10.0), GridCounts(1e5, 1e7, log_from=0.1)):
        g.add(np.array([np.inf, -np.inf, 0.0, 5.0]))  # a step or a few
        g.add(np.array([np.inf] * 5 + [-np.inf] * 5))  # many at once
        assert g.n == 14 and g.kth(0) == 0 and g.kth(13) == g._top
