"""A heel sensor lost mid-run, found from the samples (docs/analysis.md, "A dead heel sensor").

With the heel channel disconnected (a broken lead, a cracked FSR), the foot's contact is seen
only when the arch and the metatarsals load, about 60 ms after the real initial contact, and a
heel strike looks like a forefoot strike. The initial contact, the contact time, the strike
pattern and the loading rate of such a step cannot be known; the streaming core marks them lost
(``lost{}``) and keeps the rest.

:class:`HeelWatch` decides, sample by sample, where the heel is dead: a stretch of exactly 0 N
on the heel channel (0 V on the pin: no sample above the ADC's floor), after the heel has read
above 0 at least once in the recording, in which the other zones carried the foot's contact
force (the total over the threshold of contact, 20 N) for at least ``min_loaded_s`` in all. The
stretch counts from its first sample (the first sample after the heel's last good reading) to
the next sample above 0 (the sensor back), or the end. Why under load and not by time alone
like the firmware's fault bit (1 s of 0 V): a healthy heel reads 0 V through every swing and
every pause, up to 1.5 s in the real recordings of ``../shared/data``; under load, a healthy
heel reads 0 only from heel-off to toe-off (at most 0.49 s summed over one such stretch in
those recordings and the simulator's scenarios; a dead one collects a stance's worth, about
0.25 s of running, per step). A heel that never reads above 0 in the recording is not judged
here (a toe runner's heel may stay under the floor): it is reported as before
(``sensor_faults``, "reads 0 V throughout").

The answer for a sample is fixed by the samples, not by the blocks they come in: a sample in a
stretch still open and not yet long enough is *pending* until the heel reads again (not dead)
or the stretch reaches ``min_loaded_s`` (dead); the core holds a step whose contact is pending.
"""

from __future__ import annotations

import numpy as np

# the loaded time with the heel at 0 N that marks it dead (see the module docstring)
MIN_LOADED_S = 0.75

FINE, DEAD, PENDING = 0, 1, -1


class HeelWatch:
    """Where one foot's heel channel is dead, row by row (see the module docstring).

    Args:
        heel: the heel's channel index.
        threshold_n: the contact threshold (the foot carries load when the total is above it).
        rate_hz: the grid's sample rate.
        min_loaded_s: loaded time at 0 N that marks the heel dead.
    """

    def __init__(self, heel: int, threshold_n: float, rate_hz: float,
                 min_loaded_s: float = MIN_LOADED_S) -> None:
        self.heel = heel
        self.threshold_n = threshold_n
        self.min_rows = max(1, int(round(min_loaded_s * rate_hz)))
        self.alive = False  # the heel has read above 0 at least once
        self.run_start = -1  # first row of the open stretch at 0 N (-1: the heel reads now)
        self.run_loaded = 0  # loaded rows in it so far
        self.dead: list[list] = []  # [first row, end row or None while open]
        self.rows = 0
        self.longest_healthy_rows = 0  # the most loaded rows of a stretch that ended short
        self.first_dead_row: int | None = None  # for the report: where the heel was first lost
        self.stretches = 0  # dead stretches found

    def feed(self, row0: int, f0: np.ndarray, total: np.ndarray) -> None:
        """The next rows (``row0`` on): forces per channel (N, 0 where missing) and the total
        of the kept channels (NaN where no sample arrived)."""
        m = len(total)
        if row0 != self.rows:
            raise ValueError(f"rows from {row0}, expected {self.rows}")
        self.rows += m
        if not m:
            return
        valid = ~np.isnan(total)
        heel = f0[:, self.heel]
        reads = valid & (heel > 0)
        nz = np.flatnonzero(reads)
        if not self.alive:
            if not len(nz):
                return
            self.alive = True
            skip = int(nz[0])  # nothing before the heel's first reading is judged
        else:
            skip = 0
        zero = valid & ~reads
        with np.errstate(invalid="ignore"):
            loaded = zero & (total > self.threshold_n)
        cum = np.concatenate(([0], np.cumsum(loaded)))
        zrows = np.flatnonzero(zero)
        # the open stretch goes on to the first reading of this block (or through it)
        end0 = int(nz[0]) if len(nz) else m
        if skip == 0 and end0 > 0:
            if self.run_start < 0:
                j = np.searchsorted(zrows, 0)
                if j < len(zrows) and zrows[j] < end0:
                    self.run_start = row0 + int(zrows[j])
            if self.run_start >= 0:
                self._grow(int(cum[end0]))
        if not len(nz):
            return
        self._close(row0 + end0)
        # stretches between two readings of this block: only a long one matters
        if len(nz) > 1:
            lo, hi = nz[:-1] + 1, nz[1:]
            n_loaded = cum[hi] - cum[lo]
            self.longest_healthy_rows = max(self.longest_healthy_rows,
                                            int(np.where(n_loaded < self.min_rows, n_loaded, 0).max()))
            for i in np.flatnonzero(n_loaded >= self.min_rows).tolist():
                first = int(zrows[np.searchsorted(zrows, lo[i])])
                self._found(row0 + first, row0 + int(hi[i]))
        # the stretch after the last reading stays open
        last = int(nz[-1]) + 1
        j = np.searchsorted(zrows, last)
        if j < len(zrows):
            self.run_start = row0 + int(zrows[j])
            self._grow(int(cum[m] - cum[last]))

    def _grow(self, n_loaded: int) -> None:
        self.run_loaded += n_loaded
        if self.run_loaded >= self.min_rows and not (self.dead and self.dead[-1][1] is None):
            self._found(self.run_start, None)

    def _found(self, first: int, end: int | None) -> None:
        self.dead.append([first, end])
        self.stretches += 1
        if self.first_dead_row is None:
            self.first_dead_row = first

    def _close(self, row: int) -> None:
        if self.dead and self.dead[-1][1] is None:
            self.dead[-1][1] = row
        elif self.run_start >= 0:
            self.longest_healthy_rows = max(self.longest_healthy_rows, self.run_loaded)
        self.run_start = -1
        self.run_loaded = 0

    def status(self, row: int, final: bool = False) -> int:
        """:data:`DEAD`, :data:`FINE` or :data:`PENDING` (an open stretch not yet long
        enough; never once ``final``: the recording ended first) for a row already fed."""
        for first, end in self.dead:
            if first <= row and (end is None or row < end):
                return DEAD
        if 0 <= self.run_start <= row and not final:
            return PENDING
        return FINE

    def prune(self, before_row: int) -> None:
        """Forget dead stretches that end before ``before_row`` (no step there is undecided)."""
        if self.dead and self.dead[0][1] is not None and self.dead[0][1] <= before_row:
            self.dead = [d for d in self.dead if d[1] is None or d[1] > before_row]

    def onsets(self) -> list[int]:
        """First rows of the dead stretches still held (for the report)."""
        return [d[0] for d in self.dead]
