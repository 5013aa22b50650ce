"""Order statistics of a growing set of numbers in bounded memory: counts on a fixed grid.

The flags and the activity a run is judged by are medians over every step so far. Keeping
every value would grow with the run; :class:`GridCounts` keeps how many values fell on each
point of a fixed grid instead, so its memory is bounded by the grid (and in practice by the
few blocks of it the values touch), and a median costs two short cumulative sums.

A grid whose resolution is the one the values are rounded to gives the exact median of the
rounded values: shares rounded to 5 decimals on a grid of 1e-5, times in ms rounded to 2
decimals on a grid of 0.01 ms. A logarithmic grid (for loading rates, whose unit, newtons or
body weights per second, is chosen when the median is read) gives it to a relative 1e-5.
"""

from __future__ import annotations

import math

import numpy as np

_BLOCK = 256  # grid points per block; a block is made when a value first falls in it


class GridCounts:
    """How many values fell on each point of a fixed grid (bounded memory).

    Args:
        per_unit: grid points per unit (linear grid): a value ``v`` counts at
            ``rint(v * per_unit)``, and the point ``c`` stands for ``c / per_unit``, exactly the
            float ``np.round(v, d)`` gives for ``per_unit = 10**d``.
        top: the largest value on the grid; larger ones count at the top (smaller than the
            bottom, at the bottom: 0, or ``log_from``).
        log_from: a logarithmic grid from this value up, ``per_unit`` points per unit of the
            natural log (relative resolution ``1 / per_unit``).
    """

    def __init__(self, per_unit: float, top: float, log_from: float | None = None) -> None:
        self.per_unit = float(per_unit)
        self._log0 = None if log_from is None else math.log(log_from)
        span = top if self._log0 is None else math.log(top) - self._log0
        self._top = int(math.ceil(span * self.per_unit))
        self._block_n = np.zeros(self._top // _BLOCK + 1, np.int64)
        self._blocks: dict[int, np.ndarray] = {}
        self.n = 0

    def codes(self, values: np.ndarray) -> np.ndarray:
        """The grid points of ``values`` (finite ones only: the caller drops NaN)."""
        v = np.asarray(values, float)
        if self._log0 is not None:
            with np.errstate(divide="ignore"):
                v = np.log(np.maximum(v, 1e-300)) - self._log0
        return np.clip(np.rint(v * self.per_unit), 0, self._top).astype(np.int64)

    def value(self, code: int) -> float:
        if self._log0 is None:
            return code / self.per_unit
        return math.exp(self._log0 + code / self.per_unit)

    def add(self, values: np.ndarray) -> None:
        """Count ``values`` (NaN must be left out by the caller)."""
        self.add_codes(self.codes(values))

    def add_codes(self, codes: np.ndarray) -> None:
        if not len(codes):
            return
        blk = codes // _BLOCK
        for b in np.unique(blk).tolist():
            counts = self._blocks.get(b)
            if counts is None:
                counts = self._blocks[b] = np.zeros(_BLOCK, np.int32)
            mine = codes[blk == b] - b * _BLOCK
            counts += np.bincount(mine, minlength=_BLOCK).astype(np.int32)
            self._block_n[b] += len(mine)
        self.n += len(codes)

    def clear(self) -> None:
        """Forget every value (the blocks stay made, zeroed)."""
        for b in np.flatnonzero(self._block_n).tolist():
            self._blocks[b][:] = 0
        self._block_n[:] = 0
        self.n = 0

    def kth(self, k: int) -> int:
        """The grid point of the ``k``-th smallest value (0-based)."""
        cum = np.cumsum(self._block_n)
        b = int(np.searchsorted(cum, k, side="right"))
        before = int(cum[b - 1]) if b else 0
        within = np.cumsum(self._blocks[b])
        return b * _BLOCK + int(np.searchsorted(within, k - before, side="right"))

    def count_below(self, code: float) -> int:
        """How many values lie on grid points below ``code`` (which may be fractional)."""
        c = int(math.ceil(code))  # points 0 .. c-1
        if c <= 0:
            return 0
        c = min(c, self._top + 1)
        b, r = divmod(c, _BLOCK)
        n = int(self._block_n[:b].sum())
        if r and b in self._blocks:
            n += int(self._blocks[b][:r].sum())
        return n

    def median_code(self, n: int | None = None) -> float | None:
        """The median's grid point (a half point between two) of all values, or of the ``n``
        smallest; None without values."""
        n = self.n if n is None else n
        if n <= 0:
            return None
        a, b = self.kth((n - 1) // 2), self.kth(n // 2)
        return (a + b) / 2

    def median(self, n: int | None = None) -> float | None:
        """The median of all values (or of the ``n`` smallest) as ``np.median`` gives it for
        the grid's values: the mean of the two middle ones for an even count."""
        n = self.n if n is None else n
        if n <= 0:
            return None
        a, b = self.kth((n - 1) // 2), self.kth(n // 2)
        va = self.value(a)
        return va if a == b else (va + self.value(b)) / 2

    @property
    def nbytes(self) -> int:
        return self._block_n.nbytes + sum(c.nbytes for c in self._blocks.values())
