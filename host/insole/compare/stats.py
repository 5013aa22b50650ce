"""Confidence intervals for the difference between two runs that respect step-to-step dependence.

Consecutive steps of one run are not independent: pace changes, fatigue and the runner's own
slow fluctuations (stride intervals of runners are long-range correlated: Jordan, Challis &
Newell 2006, Gait Posture 24:120) make neighbouring steps alike. Resampling single steps as if they
were independent then gives intervals that are too narrow. So each run's step series is
resampled in blocks of consecutive steps:

- **Circular block bootstrap** (Politis & Romano 1992): a resample of a series of ``n`` steps is
  ``ceil(n / b)`` blocks of ``b`` consecutive steps, each starting at a uniformly drawn step and
  wrapping around the end (so every step is drawn equally often), cut to ``n`` steps.
- **Block length from the data**: the automatic rule of Politis & White 2004 (Econometric
  Reviews 23:53) with its correction by Patton, Politis & White 2009 (Econometric Reviews
  28:372): ``b = (2 G² / D · n)^(1/3)`` with ``D = 4/3 σ⁴`` for the circular bootstrap, where
  ``σ²`` (the long-run variance) and ``G`` (its first moment ``Σ |k| γ_k``) are estimated from
  the autocovariances ``γ_k`` with the flat-top lag window of Politis & Romano 1995 up to lag
  ``M = 2 m̂``; ``m̂`` is the smallest lag after which ``K_N = max(5, ⌈log10 n⌉)`` consecutive
  autocorrelations stay inside ``±2 √(log10 n / n)``. Independent steps give ``b = 1`` (the
  ordinary bootstrap); ``b`` is capped at ``min(3 √n, n / 3)``. The rule assumes a stationary
  series, so it is applied to the series minus its least-squares quadratic trend over the run:
  the slow fatigue drift of a run (DESIGN.md's drift rules) is not step-to-step dependence,
  and left in it makes the autocorrelations look long and the blocks needlessly long (with a
  drift as large as the step-to-step scatter, 99 % coverage instead of 96 %; on the
  simulator's runs 97.3 % instead of 96.9 %: docs/analysis.md). The resampling itself uses the
  series as it is.
- **Interval**: A and B are resampled independently (they are different runs), the statistic
  (median, or mean for a share of steps) is taken on every resample, and the 95 % interval of
  the difference B − A is the 2.5th to 97.5th percentile of the resampled differences
  (percentile interval). A metric has ``changed`` when that interval excludes 0.

Everything here is numpy only and seeded: the same data and seed give the same interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

N_BOOT = 2000
CONF_LEVEL = 0.95
MIN_STEPS = 20
"""Fewer values than this in either run: no interval (flags use the same floor)."""
_BATCH_VALUES = 4_000_000  # resampled values per batch: bounds memory on long runs (~32 MB)


def _median_rows(x: np.ndarray, axis: int = 1) -> np.ndarray:
    """Row medians of a 2-D array by partial sort (np.median's NaN handling costs 10x here;
    the values are NaN-free by construction)."""
    n = x.shape[axis]
    k = n // 2
    if n % 2:
        return np.partition(x, k, axis=axis)[:, k]
    part = np.partition(x, (k - 1, k), axis=axis)
    return 0.5 * (part[:, k - 1] + part[:, k])


_STATISTICS = {"median": _median_rows, "mean": np.mean}


def block_length(x: np.ndarray, detrend_degree: int | None = 2) -> int:
    """Circular-block-bootstrap block length (steps) for the series ``x`` (Politis & White 2004
    with the 2009 correction), rounded up to a whole number of steps, at least 1.

    Args:
        x: the values of consecutive steps, in step order (1-D, no NaN).
        detrend_degree: the degree of the least-squares polynomial over the step index removed
            before the autocovariances are estimated (2: the run's slow drift); None keeps the
            series as it is.

    Returns:
        The block length in steps; 1 for fewer than 8 values or a constant series.
    """
    x = np.asarray(x, dtype=float)
    n = x.shape[0]
    if n < 8:
        return 1
    if detrend_degree is not None and n > 4 * (detrend_degree + 1):
        t = np.linspace(-1.0, 1.0, n)
        x = x - np.polynomial.polynomial.polyval(
            t, np.polynomial.polynomial.polyfit(t, x, detrend_degree))
    xc = x - x.mean()
    gamma0 = float(xc @ xc) / n
    if not gamma0 > 1e-12 * max(1.0, float(np.max(np.abs(x)))) ** 2:
        return 1
    k_n = max(5, math.ceil(math.log10(n)))
    m_max = math.ceil(math.sqrt(n)) + k_n
    b_max = math.ceil(min(3.0 * math.sqrt(n), n / 3.0))
    lags = min(m_max + k_n, n - 1)
    # autocovariances γ_0..γ_lags by FFT (biased, divided by n, as in the paper)
    nfft = 1 << (2 * n - 1).bit_length()
    f = np.fft.rfft(xc, nfft)
    gamma = np.fft.irfft(f * np.conj(f), nfft)[: lags + 1] / n
    rho = gamma[1:] / gamma[0]  # rho[k - 1] is lag k
    band = 2.0 * math.sqrt(math.log10(n) / n)
    inside = np.abs(rho) < band
    m_hat = m_max
    for m in range(0, m_max + 1):
        run = inside[m:m + k_n]
        if len(run) == k_n and run.all():
            m_hat = m
            break
    big_m = min(2 * m_hat, m_max, lags)
    if big_m == 0:
        return 1
    k = np.arange(1, big_m + 1)
    s = k / big_m
    lam = np.where(s <= 0.5, 1.0, 2.0 * (1.0 - s))  # flat-top lag window
    g = 2.0 * float(np.sum(lam * k * gamma[1:big_m + 1]))
    sigma2 = gamma[0] + 2.0 * float(np.sum(lam * gamma[1:big_m + 1]))
    if sigma2 <= 0.0 or g == 0.0:
        return 1
    d_cb = 4.0 / 3.0 * sigma2 ** 2
    b = (2.0 * g * g / d_cb * n) ** (1.0 / 3.0)
    return int(min(max(1, math.ceil(b)), b_max))


def bootstrap(x: np.ndarray, statistic: str = "median", n_boot: int = N_BOOT,
              rng: np.random.Generator | None = None, block: int | None = None) -> np.ndarray:
    """``n_boot`` circular-block-bootstrap replicates of ``statistic`` over the series ``x``.

    Args:
        x: consecutive steps' values (1-D, no NaN, at least one value).
        statistic: ``"median"`` or ``"mean"``.
        n_boot: number of resamples.
        rng: the random generator (seeded by the caller).
        block: block length in steps; default :func:`block_length` of ``x``.

    Returns:
        Array of ``n_boot`` replicate values.
    """
    x = np.asarray(x, dtype=float)
    n = x.shape[0]
    if n == 0:
        raise ValueError("no values to resample")
    if statistic not in _STATISTICS:
        raise ValueError(f"statistic must be one of {sorted(_STATISTICS)}, not {statistic!r}")
    func = _STATISTICS[statistic]
    rng = rng if rng is not None else np.random.default_rng(0)
    b = block_length(x) if block is None else max(1, min(int(block), n))
    n_blocks = -(-n // b)
    out = np.empty(n_boot)
    per = max(1, _BATCH_VALUES // (n_blocks * b))
    offs = np.arange(b, dtype=np.int32)
    for lo in range(0, n_boot, per):
        m = min(per, n_boot - lo)
        starts = rng.integers(0, n, size=(m, n_blocks), dtype=np.int32)
        if b == 1:
            idx = starts
        else:  # consecutive steps from each start, wrapping around the end of the run
            idx = (starts[:, :, None] + offs).reshape(m, n_blocks * b)[:, :n]
            idx[idx >= n] -= n
        out[lo:lo + m] = func(x[idx], axis=1)
    return out


@dataclass(frozen=True)
class Difference:
    """B − A of a statistic with its percentile bootstrap interval.

    ``a``, ``b``: the statistic of each run; ``diff``: ``b - a``; ``ci``: (lo, hi) or None when
    either run has fewer than ``MIN_STEPS`` values; ``changed``: the interval excludes 0;
    ``n_a``, ``n_b``: values used; ``block_a``, ``block_b``: block lengths (steps);
    ``reps_a``, ``reps_b``: the bootstrap replicates (None without an interval).
    """

    a: float | None
    b: float | None
    diff: float | None
    ci: tuple[float, float] | None
    changed: bool
    n_a: int
    n_b: int
    block_a: int | None = None
    block_b: int | None = None
    reps_a: np.ndarray | None = None
    reps_b: np.ndarray | None = None


def percentile_interval(reps: np.ndarray, conf: float = CONF_LEVEL) -> tuple[float, float]:
    """The central ``conf`` percentile interval of bootstrap replicates."""
    alpha = (1.0 - conf) / 2.0
    lo, hi = np.quantile(reps, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def excludes_zero(ci: tuple[float, float] | None) -> bool:
    return ci is not None and (ci[0] > 0.0 or ci[1] < 0.0)


def compare(a: np.ndarray, b: np.ndarray, statistic: str = "median", n_boot: int = N_BOOT,
            rng: np.random.Generator | None = None, conf: float = CONF_LEVEL,
            min_steps: int = MIN_STEPS, detrend_degree: int | None = 2) -> Difference:
    """Difference of ``statistic`` between run B and run A with a block-bootstrap interval.

    Args:
        a, b: each run's values in step order; NaN values are dropped.
        statistic: ``"median"`` or ``"mean"`` (the mean of a 0/1 series is a share of steps).
        n_boot: resamples per run.
        rng: seeded generator; both runs draw from it (A first).
        conf: interval level (0.95).
        min_steps: fewer values than this in either run gives no interval.
        detrend_degree: see :func:`block_length`.

    Returns:
        A :class:`Difference`.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    a = a[~np.isnan(a)]
    b = b[~np.isnan(b)]
    func = np.median if statistic == "median" else np.mean
    va = float(func(a)) if len(a) else None
    vb = float(func(b)) if len(b) else None
    diff = vb - va if va is not None and vb is not None else None
    if len(a) < min_steps or len(b) < min_steps:
        return Difference(va, vb, diff, None, False, len(a), len(b))
    rng = rng if rng is not None else np.random.default_rng(0)
    block_a, block_b = block_length(a, detrend_degree), block_length(b, detrend_degree)
    reps_a = bootstrap(a, statistic, n_boot, rng, block_a)
    reps_b = bootstrap(b, statistic, n_boot, rng, block_b)
    ci = percentile_interval(reps_b - reps_a, conf)
    return Difference(va, vb, diff, ci, excludes_zero(ci), len(a), len(b), block_a, block_b,
                      reps_a, reps_b)
