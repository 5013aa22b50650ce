"""Order statistics of a growing set of numbers in bounded memory: counts on a fixed grid.

The flags and the activity a run is judged by are medians over every step so far. Keeping
every value would grow with the run; :class:`GridCounts` keeps how many values fell on each
point of a fixed grid instead, so its memory is bounded by the grid (and in practice by the
few blocks of it the values touch), and a median costs two short cumulative sums.

A grid whose resolution is the one the values are rounded to gives the exact median of the
rounded values: shares rounded to 5 decimals on a grid of 1e-5, times in ms rounded to 2
decimals on a grid of 0.01 ms. A logarithmic grid (for loading rates, whose unit, newtons or
body weights per second, is chosen when the median is read) gives it to a relative 1/per_unit.
"""

from __future__ import annotations

import bisect
import math

import numpy as np

# grid points per block (the default); a block is made when a value first falls in it, so a
# block should span about a tenth of where the values fall: few blocks, each made early
_BLOCK = 1024
_PENDING = 1024  # codes added in bulk wait to be counted until this many (or a read)


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
        block: grid points per block of counts (4 bytes each), made when a value first falls
            in it.
    """

    def __init__(self, per_unit: float, top: float, log_from: float | None = None,
                 block: int = _BLOCK) -> None:
        self._B = block
        self.per_unit = float(per_unit)
        self._log0 = None if log_from is None else math.log(log_from)
        span = top if self._log0 is None else math.log(top) - self._log0
        self._top = int(math.ceil(span * self.per_unit))
        self._block_n = np.zeros(self._top // block + 1, np.int64)
        self._blocks: dict[int, np.ndarray] = {}
        self._ids: list[int] = []  # the blocks made, in order (a few dozen: sums run over them)
        self._ids_arr: np.ndarray | None = None
        self._memo: dict[int, int] = {}  # kth's answers since the last change
        self._pending: list[np.ndarray] = []  # codes not yet in the blocks (add_codes)
        self._pending_n = 0
        self.n = 0

    def _codes(self, v: np.ndarray) -> list[int]:
        """The grid points of ``v`` (finite or infinite; the caller drops NaN)."""
        top, per = self._top, self.per_unit
        if self._log0 is not None:
            # math.log for every value, one at a time: the same point whatever the batch
            # (numpy's vectorised log may differ from it in the last bit)
            log, log0, inf = math.log, self._log0, math.inf
            return [0 if x <= 0 else top if x == inf else min(max(round((log(x) - log0) * per), 0), top)
                    for x in v.tolist()]
        if len(v) <= 8:  # a step or a few (live): no array work; round() is numpy's rint
            return [min(max(round(x * per), 0), top) if math.isfinite(x) else (top if x > 0 else 0)
                    for x in v.tolist()]
        return np.clip(np.rint(v * per), 0, top).astype(np.int64).tolist()

    def value(self, code: int) -> float:
        if self._log0 is None:
            return code / self.per_unit
        return math.exp(self._log0 + code / self.per_unit)

    def add(self, values: np.ndarray) -> None:
        """Count ``values`` (NaN must be left out by the caller)."""
        if len(values):
            self.add_codes(self._codes(np.asarray(values, float)))

    def add_codes(self, codes) -> None:
        """Count grid points (a list or an array of ints)."""
        if not len(codes):
            return
        self._memo.clear()
        if len(codes) <= 8 and not self._pending:  # a step or a few (live): no array work
            for c in (codes.tolist() if isinstance(codes, np.ndarray) else codes):
                b, r = divmod(c, self._B)
                self._block(b)[r] += 1
                self._block_n[b] += 1
        else:
            # many at once (a file's steps): counted into the blocks when read, or when
            # _PENDING have gathered, in one pass (a pass costs a few µs per block it touches)
            self._pending.append(np.asarray(codes, np.int64))
            self._pending_n += len(codes)
            if self._pending_n >= _PENDING:
                self._fold()
        self.n += len(codes)

    def _fold(self) -> None:
        if not self._pending:
            return
        u, counts = np.unique(np.concatenate(self._pending), return_counts=True)
        self._pending, self._pending_n = [], 0
        blk = u // self._B
        cuts = [0, *(np.flatnonzero(np.diff(blk)) + 1).tolist(), len(u)]
        for a, z in zip(cuts[:-1], cuts[1:]):
            b = int(blk[a])
            self._block(b)[u[a:z] - b * self._B] += counts[a:z].astype(np.int32)
            self._block_n[b] += int(counts[a:z].sum())

    def _block(self, b: int) -> np.ndarray:
        counts = self._blocks.get(b)
        if counts is None:
            counts = self._blocks[b] = np.zeros(self._B, np.int32)
            bisect.insort(self._ids, b)
            self._ids_arr = None
        return counts

    def clear(self) -> None:
        """Forget every value (the blocks stay made, zeroed)."""
        self._pending, self._pending_n = [], 0
        for b in self._ids:
            self._blocks[b][:] = 0
        self._block_n[:] = 0
        self._memo.clear()
        self.n = 0

    def _made(self) -> np.ndarray:
        self._fold()
        if self._ids_arr is None:
            self._ids_arr = np.array(self._ids, np.int64)
        return self._ids_arr

    def kth(self, k: int) -> int:
        """The grid point of the ``k``-th smallest value (0-based)."""
        c = self._memo.get(k)
        if c is None:
            c = self._memo[k] = self._kth(k)
        return c

    def _kth(self, k: int) -> int:
        ids = self._made()
        cum = np.cumsum(self._block_n[ids])
        j = int(np.searchsorted(cum, k, side="right"))
        before = int(cum[j - 1]) if j else 0
        b = int(ids[j])
        within = np.cumsum(self._blocks[b])
        return b * self._B + int(np.searchsorted(within, k - before, side="right"))

    def count_below(self, code: float) -> int:
        """How many values lie on grid points below ``code`` (which may be fractional)."""
        c = int(math.ceil(code))  # points 0 .. c-1
        if c <= 0:
            return 0
        c = min(c, self._top + 1)
        b, r = divmod(c, self._B)
        ids = self._made()
        n = int(self._block_n[ids[ids < b]].sum())
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
        self._fold()
        return self._block_n.nbytes + sum(c.nbytes for c in self._blocks.values())
