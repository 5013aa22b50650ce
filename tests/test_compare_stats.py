"""The interval method of `insole compare`: block length, circular block bootstrap, difference."""

from __future__ import annotations

import numpy as np
import pytest

from insole.compare import stats


def ar1(phi: float, n: int, rng: np.random.Generator) -> np.ndarray:
    e = rng.standard_normal(n + 100)
    x = np.empty_like(e)
    x[0] = e[0]
    for i in range(1, len(e)):
        x[i] = phi * x[i - 1] + e[i]
    return x[100:]


def test_block_length_follows_the_dependence():
    rng = np.random.default_rng(5)
    iid = [stats.block_length(rng.standard_normal(250)) for _ in range(20)]
    strong = [stats.block_length(ar1(0.8, 250, rng)) for _ in range(20)]
    assert np.median(iid) == 1  # independent steps: the ordinary bootstrap
    assert np.median(strong) >= 8
    assert max(strong) <= np.ceil(3 * np.sqrt(250))  # the cap
    assert stats.block_length(np.full(100, 2.5)) == 1  # constant
    assert stats.block_length(np.arange(5.0)) == 1  # too short to tell


def test_blocks_are_consecutive_steps_wrapping_around():
    # with one block as long as the series every resample is a rotation of it: same median
    x = np.random.default_rng(1).standard_normal(101)
    reps = stats.bootstrap(x, "median", 200, np.random.default_rng(2), block=101)
    assert np.allclose(reps, np.median(x))
    # with blocks of 1 the resamples differ
    reps1 = stats.bootstrap(x, "median", 200, np.random.default_rng(2), block=1)
    assert reps1.std() > 0


def test_median_of_even_and_odd_lengths_matches_numpy():
    rng = np.random.default_rng(3)
    for n in (40, 41):
        x = rng.standard_normal(n)
        reps = stats.bootstrap(x, "median", 50, np.random.default_rng(4), block=1)
        idx = np.random.default_rng(4).integers(0, n, size=(50, n), dtype=np.int32)
        assert np.allclose(reps, np.median(x[idx], axis=1))


def test_seeded():
    x = np.random.default_rng(0).standard_normal(200)
    y = x + 0.3
    d1 = stats.compare(x, y, rng=np.random.default_rng(9))
    d2 = stats.compare(x, y, rng=np.random.default_rng(9))
    d3 = stats.compare(x, y, rng=np.random.default_rng(10))
    assert d1.ci == d2.ci
    assert d1.ci != d3.ci


def test_difference_and_changed():
    rng = np.random.default_rng(11)
    a = rng.normal(50.0, 3.0, 250)
    b = rng.normal(45.0, 3.0, 250)
    d = stats.compare(a, b, rng=np.random.default_rng(0))
    assert d.changed and d.ci[1] < 0
    assert d.ci[0] < -5.0 < d.ci[1]
    assert d.diff == pytest.approx(np.median(b) - np.median(a))
    same = stats.compare(a, a.copy(), rng=np.random.default_rng(0))
    assert not same.changed and same.ci[0] <= 0.0 <= same.ci[1]


def test_nan_dropped_and_too_few_values():
    a = np.r_[np.full(10, np.nan), np.arange(30.0)]
    d = stats.compare(a, np.arange(30.0) + 100)
    assert d.n_a == 30 and d.changed
    few = stats.compare(np.arange(10.0), np.arange(30.0))
    assert few.ci is None and not few.changed and few.n_a == 10
    empty = stats.compare(np.zeros(0), np.arange(30.0))
    assert empty.a is None and empty.diff is None and empty.ci is None


def test_share_of_steps_by_the_mean():
    a = np.r_[np.ones(180), np.zeros(20)]  # 90 % rearfoot
    b = np.r_[np.ones(40), np.zeros(160)]  # 20 %
    d = stats.compare(a, b, "mean", rng=np.random.default_rng(0))
    assert d.a == pytest.approx(0.9) and d.b == pytest.approx(0.2)
    assert d.changed and d.ci[0] < -0.7 < d.ci[1]


def test_block_bootstrap_holds_coverage_where_the_ordinary_one_does_not():
    """Strongly dependent steps (AR(1), φ = 0.7): the ordinary bootstrap's 95 % interval of
    a difference of medians misses 0 far more often than the block bootstrap's."""
    rng = np.random.default_rng(21)
    miss = {"block": 0, "iid": 0}
    reps = 60
    for _ in range(reps):
        a, b = ar1(0.7, 250, rng), ar1(0.7, 250, rng)
        for kind in miss:
            g = np.random.default_rng(rng.integers(2**32))
            ba = stats.block_length(a) if kind == "block" else 1
            bb = stats.block_length(b) if kind == "block" else 1
            ra = stats.bootstrap(a, "median", 400, g, ba)
            rb = stats.bootstrap(b, "median", 400, g, bb)
            lo, hi = stats.percentile_interval(rb - ra)
            miss[kind] += not lo <= 0.0 <= hi
    assert miss["block"] <= 0.15 * reps
    assert miss["iid"] >= 2 * miss["block"] + 3
