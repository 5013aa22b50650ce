"""The streaming analysis core: one foot's grid blocks in, steps with metrics and flags out.

:class:`FootCore` is the only analysis there is. Live recording feeds it the blocks a port's
chunks decode into; ``insole analyse`` feeds it a file's chunks. Blocks may have any size: the
steps, their metrics and the flags come out the same (``tests/test_streaming.py``).

How it stays incremental (docs/analysis.md, Streaming):

- The total force of the rows not yet decided is kept in a buffer. A step is decided once
  ``merge_gap_ms`` of seen, below-threshold samples follow its toe-off (no later sample can merge
  with it or bridge a gap into it): the detector runs on the buffer up to the latest such quiet
  stretch, the steps in it get their metrics, and the buffer keeps only the stretch's last
  sample. Every decision the detector makes is local to a step and its neighbours, so where the
  buffer is cut does not change it. A buffer with no quiet stretch for ``MAX_BUFFER_S`` (no
  stepping: standing, or a long gap) is cut there as if the recording ended and began again.
- Per-step results go into a :class:`StepTable` (columns of numbers, forces in newtons), and
  into the running state the flags and the activity are read from (:class:`FlagState`,
  :class:`ActivityState`: bounded memory); body weight, the summary and the JSON are made from
  the table.
- Body weight by the stride-average identity is a running sum: the total force (in integer
  millinewtons, so the sum does not depend on the blocks) and the count of samples seen, noted
  at each step's start; the estimate is twice the mean from the first step's start to the last.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from insole import protocol as P
from insole.analysis.flags import (
    ActivityState,
    FlagConfig,
    FlagRules,
    FlagState,
)
from insole.analysis.forces import ForceConverter, SwingTracker
from insole.analysis.heel import DEAD, PENDING, HeelWatch
from insole.analysis.metrics import (
    LOST_EVENT,
    LOST_EVENT_HEEL,
    LOST_HEEL,
    LOST_STRIKE,
    LOST_VALR,
    STRIKES,
    TRANSIENTS,
    VALR_METHODS,
    MetricsConfig,
    StepMetrics,
    decode_zones,
)
from insole.analysis.steps import ContactHistory, StepDetector
from insole.analysis.stream import Block
from insole.model.calibration import Calibration, default

log = logging.getLogger(__name__)

G_M_PER_S2 = 9.80665
# A buffer with no quiet stretch for this long is cut (see the module's docstring).
MAX_BUFFER_S = 10.0
# body weight for a foot's first impact transient, before one stride gives an estimate
DEFAULT_BODY_WEIGHT_N = 700.0
# Longer blocks are fed in pieces of this many rows (65 s at 500 Hz).
FEED_ROWS = 32768
# Blocks up to this many rows (a live chunk: a packet or a few) may wait for the next one when
# nothing in them can be decided (FootCore._can_wait, docs/analysis.md "Streaming").
WAIT_MAX_ROWS = 256


@dataclass
class AnalysisConfig:
    detector: dict = field(default_factory=dict)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    flags: FlagConfig = field(default_factory=FlagConfig)
    # the runner's weight when given (--body-mass-kg); else each step's impact transient uses
    # the stride-average estimate so far (docs/analysis.md, Streaming)
    body_weight_n: float | None = None


# the step table's columns: name -> (shape of one row's value, dtype); about 250 bytes a step
# with five zones
def _step_columns(channels: int) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    f8, i1 = np.dtype("<f8"), np.dtype("i1")
    shapes = {"ic_idx": (), "to_idx": (), "complete": (), "peak_n": (), "impact_n": (),
              "valr_n_per_s": (), "valr_method": (), "transient": (), "strike": (),
              "first_zones": (), "lost_event": (), "lost_strike": (), "lost_valr": (),
              "shares": (channels,), "impulse_n_s": (channels,), "met_share": (), "ml_balance": (),
              "strike_index": (), "cop_length_frac": (3,), "cop_width_frac": (3,)}
    dtypes = {"complete": np.dtype("?"), "valr_method": i1, "strike": i1, "first_zones": np.dtype("<i8"),
              "transient": i1, "lost_event": i1, "lost_strike": i1, "lost_valr": i1}
    return {name: (shape, dtypes.get(name, f8)) for name, shape in shapes.items()}


class StepTable:
    """Per-step results of one foot as growing numpy columns in RAM (about 250 bytes a step).

    The storage of the core's step table; :class:`StepFile` is the same on disk. Both take
    :meth:`append` (a dict of the new steps' columns) and give a column (``table[name]``, every
    step), a slice of one (:meth:`column`) and ``len``."""

    def __init__(self, channels: int) -> None:
        self.n = 0
        self._cap = 0
        self.cols: dict[str, np.ndarray] = {}
        self._spec = _step_columns(channels)

    def append(self, new: dict[str, np.ndarray]) -> None:
        k = len(new["ic_idx"])
        if not k:
            return
        if self.n + k > self._cap:
            cap = max(256, 2 * (self.n + k))
            for name, (shape, dtype) in self._spec.items():
                arr = np.zeros((cap, *shape), dtype)
                if name in self.cols:
                    arr[:self.n] = self.cols[name][:self.n]
                self.cols[name] = arr
            self._cap = cap
        for name in self._spec:
            self.cols[name][self.n:self.n + k] = new[name]
        self.n += k

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.cols:
            shape, dtype = self._spec[name]
            return np.zeros((0, *shape), dtype)
        return self.cols[name][:self.n]

    def column(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Steps ``start..stop-1`` of one column (a view)."""
        return self[name][start:stop]

    @property
    def ram_bytes(self) -> int:
        """Bytes this table holds in memory (its capacity)."""
        return sum(a.nbytes for a in self.cols.values())

    def close(self) -> None:
        pass

    def __len__(self) -> int:
        return self.n


class StepFile:
    """The step table appended to files as it grows: one raw little-endian file per column in
    ``directory`` (``<column>.col``) and ``columns.json`` naming each column's dtype and row
    shape. What it holds in memory is fixed: the steps not yet written, in a buffer of
    :data:`FLUSH_ROWS` rows (about 64 kB), written out when it is full, :data:`FLUSH_S` after the
    last write, and at :meth:`close` (one ``write`` per column: a crash loses at most those
    steps, which the session's ``.rec`` files still hold; a reader of the files sees whole
    steps, the row count being the shortest column's). A column is read back from the files
    and the buffer when asked for. ``insole record`` keeps its feet's tables this way in the
    session directory, so a long recording's memory does not grow with its steps
    (docs/analysis.md, Streaming)."""

    MANIFEST = "columns.json"
    FLUSH_ROWS = 256
    FLUSH_S = 5.0

    def __init__(self, channels: int, directory) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._spec = _step_columns(channels)
        self._row_bytes = {name: dtype.itemsize * int(np.prod(shape, dtype=np.int64))
                           for name, (shape, dtype) in self._spec.items()}
        manifest = {"schema": "insole.steps/1", "rows": "the shortest column's length / its row bytes",
                    "columns": {name: {"dtype": dtype.str, "shape": list(shape)}
                                for name, (shape, dtype) in self._spec.items()}}
        (self.dir / self.MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        self._fds: dict[str, int] = {}
        for name in self._spec:
            self._fds[name] = os.open(self.dir / f"{name}.col", os.O_RDWR | os.O_CREAT | os.O_TRUNC
                                      | os.O_APPEND | getattr(os, "O_BINARY", 0), 0o644)
        self._buf = {name: np.zeros((self.FLUSH_ROWS, *shape), dtype)
                     for name, (shape, dtype) in self._spec.items()}
        self._buf_n = 0  # rows in the buffer
        self._file_n = 0  # rows in the files
        self._flushed_at = time.monotonic()

    @property
    def n(self) -> int:
        return self._file_n + self._buf_n

    def append(self, new: dict[str, np.ndarray]) -> None:
        k = len(new["ic_idx"])
        if not k:
            return
        if not self._fds:
            raise ValueError(f"{self.dir}: the step table is closed")
        if self._buf_n + k > self.FLUSH_ROWS:
            self.flush()
        if k > self.FLUSH_ROWS:
            for name, (shape, dtype) in self._spec.items():
                data = np.ascontiguousarray(np.broadcast_to(np.asarray(new[name], dtype), (k, *shape)))
                os.write(self._fds[name], data.tobytes())
            self._file_n += k
            return
        for name, buf in self._buf.items():
            buf[self._buf_n:self._buf_n + k] = new[name]
        self._buf_n += k
        if self._buf_n == self.FLUSH_ROWS or time.monotonic() - self._flushed_at >= self.FLUSH_S:
            self.flush()

    def flush(self) -> None:
        """Write the buffered steps to the files."""
        if self._buf_n and self._fds:
            for name, buf in self._buf.items():
                os.write(self._fds[name], buf[:self._buf_n].tobytes())
            self._file_n += self._buf_n
            self._buf_n = 0
        self._flushed_at = time.monotonic()

    def column(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Steps ``start..stop-1`` of one column, read from its file and the buffer (a new
        array)."""
        shape, dtype = self._spec[name]
        stop = self.n if stop is None else min(stop, self.n)
        start = min(max(start, 0), stop)
        out = np.empty((stop - start, *shape), dtype)
        from_file = max(0, min(stop, self._file_n) - start)
        if from_file:
            view = memoryview(out[:from_file]).cast("B")
            offset = start * self._row_bytes[name]
            if self._fds and hasattr(os, "preadv"):
                got = os.preadv(self._fds[name], [view], offset)
            else:
                with open(self.dir / f"{name}.col", "rb", buffering=0) as f:
                    f.seek(offset)
                    got = f.readinto(view)
            if got != view.nbytes:
                raise OSError(f"{self.dir / name}.col: {got} of {view.nbytes} bytes")
        if stop > self._file_n:
            a = max(start, self._file_n) - self._file_n
            out[from_file:] = self._buf[name][a:stop - self._file_n]
        return out

    def __getitem__(self, name: str) -> np.ndarray:
        return self.column(name)

    @property
    def ram_bytes(self) -> int:
        """The buffer's bytes (fixed)."""
        return sum(b.nbytes for b in self._buf.values())

    def close(self) -> None:
        """Write what is buffered and close the column files (the table stays readable:
        :func:`read_step_file`)."""
        if not self._fds:
            return
        self.flush()
        fds, self._fds = self._fds, {}
        for fd in fds.values():
            os.close(fd)

    def __del__(self) -> None:
        if getattr(self, "_fds", None):
            self.close()

    def __len__(self) -> int:
        return self.n


def read_step_file(directory) -> dict[str, np.ndarray]:
    """A :class:`StepFile` directory's columns (every whole step), for tools and tests."""
    d = Path(directory)
    spec = json.loads((d / StepFile.MANIFEST).read_text())["columns"]
    raw = {name: (np.fromfile(d / f"{name}.col", np.dtype(c["dtype"])), tuple(c["shape"]))
           for name, c in spec.items()}
    rows = min(len(a) // max(1, int(np.prod(shape, dtype=np.int64))) for a, shape in raw.values())
    return {name: a[:rows * int(np.prod(shape, dtype=np.int64))].reshape(rows, *shape)
            for name, (a, shape) in raw.items()}


class FootCore:
    """One foot, incrementally: :meth:`feed` grid blocks, :meth:`finish` at the end.

    Args:
        info: the device's INFO (zones, divider) the grid is read with.
        period_us: the grid's sample period.
        calibration: k and β per zone (:class:`insole.model.calibration.Calibration`; the
            default sensor model, :func:`insole.model.calibration.default`, if None).
        config: detector, metrics and flag parameters.
        on_steps: called as ``on_steps(core, first, stop)`` when steps ``first..stop-1`` of
            :attr:`table` are decided (with their metrics).
        step_table: makes the storage of the step table from the number of zones:
            :class:`StepTable` (in memory, the default) or, e.g., ``lambda c: StepFile(c, dir)``
            (appended to files: ``insole record``).
    """

    def __init__(self, info: P.Info, period_us: int, calibration: Calibration | None = None,
                 config: AnalysisConfig | None = None, on_steps=None, step_table=None) -> None:
        self.config = config or AnalysisConfig()
        self.info = info
        self.zones = tuple(info.zones)
        self.period_us = period_us
        self.period_s = period_us * 1e-6
        self.rate_hz = 1e6 / period_us
        self.calibration = calibration or default(info.side, self.zones)
        self.converter = ForceConverter(self.calibration, info, self.rate_hz)
        # a lacing pre-load that reads in swing too: tracked per zone and removed (forces.py)
        self.swing = SwingTracker(self.rate_hz, self.zones)
        self.detector = StepDetector(**self.config.detector)
        self.metrics = StepMetrics(self.config.metrics)
        self.history = ContactHistory()
        self.table = (step_table or StepTable)(len(self.zones))
        self.on_steps = on_steps
        c = len(self.zones)
        self._f0 = np.zeros((0, c))
        self._total = self._total_all = np.zeros(0)
        self._row0 = 0  # grid row of the buffer's first sample
        self.rows = 0  # rows fed so far
        self.partial = 0
        self.rejected = 0
        self._sum_mn = 0  # total force (integer mN) and samples seen before the buffer
        self._seen = 0
        self._bw_first: tuple[int, int] | None = None
        self._bw_last: tuple[int, int] | None = None
        self._cums: tuple | None = None  # (row0, cumulative mN, cumulative samples) of _decide
        self._regions = 0
        self._quiet = max(1, int(np.ceil(self.detector.merge_gap_ms / (self.period_s * 1e3) - 1e-9)))
        self._max_rows = int(round(MAX_BUFFER_S / self.period_s))
        self.has_cop = False
        # a heel sensor lost mid-run (heel.py): steps are held until their contact is judged
        zi = {z: i for i, z in enumerate(self.zones)}
        self.heel = HeelWatch(zi["heel"], self.detector.threshold_n, self.rate_hz) \
            if "heel" in zi else None
        # the flags' and the activity's running state, fed as steps are appended
        self._has_met = any(z in zi for z in P.METATARSAL_ZONES)
        self._arch = zi.get("arch")
        self.flag_state = FlagState(self.config.flags, self._has_met, self._arch is not None)
        self.activity = ActivityState()
        self._pending: list[tuple] = []  # (columns, row judged, sums at the starts) per batch
        self._bw_frozen = False
        mc = self.config.metrics
        self._strike_rows = max(3, int(round(mc.strike_window_ms * 1e-3 / self.period_s)) + 1)
        self._confirm_rows = max(2, int(round(mc.impact_confirm_ms * 1e-3 * self.rate_hz)))
        # the cheap path: blocks in which nothing can be decided wait here, and what the rows
        # so far end with (a loud sample since the buffer's start? the quiet run at the end)
        self._waiting: list[Block] = []
        self._wait_rows = 0
        self._loud = False
        self._quiet_run = 0
        self._plain = False  # set by _note_buffer after the first block
        self._ones = np.ones(c)

    # --- in ---------------------------------------------------------------------------------

    def feed(self, block: Block) -> int:
        """Add the next block (rows ``block.row0 ...``, which must follow the last ones);
        returns the number of steps decided by it. A long block is taken in pieces of
        :data:`FEED_ROWS` rows (the answer is the same; the arrays in flight stay small)."""
        if block.row0 != self.rows:
            raise ValueError(f"block starts at row {block.row0}, expected {self.rows}")
        self.rows += block.rows
        if self._can_wait(block):
            self._waiting.append(block)
            self._wait_rows += block.rows
            return 0
        if self._waiting:  # the rows that waited go first, as one block with these
            block = _join([*self._waiting, block])
            self._waiting, self._wait_rows = [], 0
        if block.rows <= FEED_ROWS:
            decided = self._feed(block)
        else:
            decided = 0
            for a in range(0, block.rows, FEED_ROWS):
                faults = [(r, m) for r, m in block.device_faults
                          if block.row0 + a <= r < block.row0 + a + FEED_ROWS
                          or (a + FEED_ROWS >= block.rows and r >= block.row0 + block.rows)]
                decided += self._feed(block.rows_slice(a, a + FEED_ROWS, faults))
        self._note_buffer()
        return decided

    def _can_wait(self, block: Block) -> bool:
        """True when no step can be decided in ``block``, so that it may wait for the next one
        (the steps, metrics and flags are the same: only the blocks are cut elsewhere).

        A step is decided when ``merge_gap_ms`` of quiet samples follow a loud one. Its total
        force is read from the samples by the converter's table (as :meth:`_feed` would), which
        is the force the detector sees only while nothing else changes it: no channel left out,
        no saturated sample, no swing baseline removed or pending, no swing window ending in
        the rows, no device fault. Otherwise, and for any block longer than
        :data:`WAIT_MAX_ROWS` or a buffer near :data:`MAX_BUFFER_S`, the block goes through.
        """
        m = block.rows
        sw = self.swing
        if (not self._plain or m > WAIT_MAX_ROWS or block.device_faults or not m
                or sw._win_rows + self._wait_rows + m >= sw.w
                or len(self._total) + self._wait_rows + m >= self._max_rows):
            return False
        conv = self.converter
        units = block.units
        if int(units.max()) >= conv._sat_units:
            return False
        # the table holds finite newtons (a saturated value is 0, and ruled out above)
        quiet = block.valid & (conv._lut_flat.take(units + conv._lut_offset) @ self._ones
                               <= self.detector.threshold_n)
        need = self._quiet
        if quiet.all():
            if self._loud and self._quiet_run + m >= need:
                return False  # the quiet stretch after a contact is complete in it
            self._quiet_run += m
            return True
        loud_at = np.flatnonzero(~quiet)
        if self._loud and self._quiet_run + int(loud_at[0]) >= need:
            return False
        if len(loud_at) > 1 and int((np.diff(loud_at) - 1).max()) >= need:
            return False
        tail = m - 1 - int(loud_at[-1])
        if tail >= need:
            return False
        self._loud = True
        self._quiet_run = tail
        return True

    def _note_buffer(self) -> None:
        """What the buffer ends with, and whether the table's force is the detector's (no
        channel left out, no swing baseline removed or held), for :meth:`_can_wait`. Both
        change only in blocks that go through (a swing window's end, a saturated sample or a
        device fault never waits)."""
        sw = self.swing
        self._plain = not (sw._holding or sw.current.any() or self.converter.reasons)
        f = self._total
        with np.errstate(invalid="ignore"):
            loud = ~(f <= self.detector.threshold_n)
        at = np.flatnonzero(loud)
        self._loud = bool(len(at))
        self._quiet_run = len(f) - 1 - int(at[-1]) if len(at) else len(f)

    def _feed(self, block: Block) -> int:
        conv = self.converter
        _, total = conv.feed(block.row0, block.units, block.valid, block.device_faults,
                             want_force=False)
        self._append(self._watch(self.swing.feed(conv.f0, conv._bad, total, conv.total_all,
                                                 conv.shorted_from < 0)))
        return self._process(final=False) if len(self._total) else 0

    def _watch(self, pieces: list[tuple]) -> list[tuple]:
        """The rows going into the buffer, shown to the heel watch first."""
        if self.heel is not None:
            for f0, total, _ in pieces:
                self.heel.feed(self.heel.rows, f0, total)
        return pieces

    def _append(self, pieces: list[tuple]) -> None:
        """The buffer, then ``pieces`` (f0, total, total_all), joined once."""
        if len(self._total):
            pieces = [(self._f0, self._total, self._total_all), *pieces]
        if not pieces:
            return
        if len(pieces) == 1:
            self._f0, self._total, self._total_all = pieces[0]
            return
        f0s, totals, alls = zip(*pieces)
        self._f0 = np.concatenate(f0s)
        self._total = np.concatenate(totals)
        self._total_all = np.concatenate(alls)

    def finish(self) -> FootCore:
        """The end of the recording: steps cut by it are partial. Returns self."""
        if self._waiting:
            block = _join(self._waiting)
            self._waiting, self._wait_rows = [], 0
            self._feed(block)
        self._append(self._watch(self.swing.finish(self.converter.shorted_from < 0)))
        self._process(final=True)
        self._emit(final=True)
        return self

    def _process(self, final: bool) -> int:
        decided = 0
        while True:
            f = self._total
            n = len(f)
            if n == 0:
                return decided
            thr = self.detector.threshold_n
            forced = False
            if final:
                c, keep_from = n, n
            else:
                with np.errstate(invalid="ignore"):
                    quiet = f <= thr  # NaN compares False: a missing sample is not quiet
                idx = np.arange(n)
                last_loud = np.maximum.accumulate(np.where(quiet, -1, idx))
                ok = np.flatnonzero(idx - last_loud >= self._quiet)
                if len(ok) and ok[-1] >= 1:
                    c = int(ok[-1]) + 1  # [c - quiet, c) is seen and quiet
                    keep_from = c - 1
                elif n > self._max_rows:
                    c = keep_from = self._max_rows
                    forced = True
                else:
                    return decided
            decided += self._decide(c)
            self._trim(keep_from)
            if final or not forced:
                return decided

    def _decide(self, c: int) -> int:
        f = self._total[:c]
        with np.errstate(invalid="ignore"):
            if not (f > self.detector.threshold_n).any():
                return 0
        det = self.detector.detect(f, self.period_s, self._row0, self.history)
        self.partial += det.partial_
        self.rejected += det.rejected_
        k = len(det.regions_)
        if not k:
            return 0
        # body weight: running sums at each step's start
        valid = ~np.isnan(f)
        mn = np.where(valid, np.rint(np.where(valid, f, 0.0) * 1000.0), 0.0).astype(np.int64)
        a = det.regions_[:, 0]
        cum_mn = np.concatenate(([0], np.cumsum(mn)))
        cum_n = np.concatenate(([0], np.cumsum(valid)))
        self._cums = (self._row0, cum_mn, cum_n)  # _trim takes its sums from these
        s_at = self._sum_mn + cum_mn[a]
        n_at = self._seen + cum_n[a]
        if self._bw_first is None:
            self._bw_first = (int(s_at[0]), int(n_at[0]))
        self._regions += k
        met = self.metrics.compute(self._f0[:c], self.zones, det.regions_, det.ic_idx_,
                                   det.to_idx_, self.period_s, self._row0, det.complete_,
                                   self._f0[:c], self._total_all[:c],
                                   self._transient_bw_n(s_at, n_at))
        self.has_cop = self.has_cop or getattr(met, "has_cop_", False)
        cols = dict(met.columns_)
        cols.update(ic_idx=det.ic_idx_, to_idx=det.to_idx_, complete=det.complete_)
        # the row whose heel reading decides the step's contact: the end of the first 80 ms
        # from the sample before contact, or of the loading rate's rise, within the stance
        a, b = det.regions_[:, 0], det.regions_[:, 1]
        rise = np.maximum(3, (self.config.metrics.impact_window_frac * (b - a)).astype(np.int64)) \
            + 1 + self._confirm_rows
        judged = self._row0 + np.minimum(a - 2 + np.maximum(self._strike_rows, rise), b - 1)
        self._pending.append((cols, judged, s_at, n_at))
        return self._emit(final=False)

    def _emit(self, final: bool) -> int:
        """Append the decided steps whose contact the heel watch has judged to the table, in
        order (a step with a dead heel loses what needs the heel: :meth:`_lose_heel`); a step
        still pending holds the ones after it. Returns the number appended."""
        emitted = 0
        while self._pending:
            cols, judged, s_at, n_at = self._pending[0]
            k = len(judged)
            if self.heel is None:
                status = np.zeros(k, np.int8)
            else:
                status = np.array([self.heel.status(r, final) for r in judged.tolist()], np.int8)
            held = np.flatnonzero(status == PENDING)
            p = int(held[0]) if len(held) else k
            if p == 0:
                break
            part = cols if p == k else {name: v[:p] for name, v in cols.items()}
            dead = status[:p] == DEAD
            if dead.any():
                part = self._lose_heel(part, dead)
            # body weight by the stride-average identity: the sums stop at the first step that
            # lost its heel (the total force lacks the heel from there on)
            if not self._bw_frozen:
                clean = np.flatnonzero(~dead) if not dead.any() else \
                    np.arange(int(np.argmax(dead)))
                if len(clean):
                    i = int(clean[-1])
                    self._bw_last = (int(s_at[i]), int(n_at[i]))
                self._bw_frozen = bool(dead.any())
            first = len(self.table)
            self.table.append(part)
            self._note_steps(part)
            if self.on_steps is not None:
                self.on_steps(self, first, len(self.table))
            emitted += p
            if p < k:
                self._pending[0] = ({name: v[p:] for name, v in cols.items()}, judged[p:],
                                    s_at[p:], n_at[p:])
                break
            self._pending.pop(0)
        if self.heel is not None:
            low = min([self._row0] + [int(j[1][0]) for j in self._pending])
            self.heel.prune(low - 1)
        return emitted

    def _note_steps(self, cols: dict) -> None:
        """New steps into the flags' and the activity's running state, as :class:`FootSteps`
        gives them (times rounded to 10 µs, shares to 1e-5; a dead heel's late contact places
        the step in time but gives it no contact time or stride)."""
        ic_s, to_s = cols["ic_idx"] * self.period_s, cols["to_idx"] * self.period_s
        ic_lost = cols["lost_strike"] == LOST_HEEL[0]
        self.activity.add(np.where(ic_lost, np.nan, ic_s) if ic_lost.any() else ic_s, to_s)
        self.flag_state.add(np.round(ic_s, 5), cols["valr_n_per_s"], cols["valr_method"],
                            cols["strike"], np.round(cols["met_share"], 5) if self._has_met else None,
                            np.round(cols["shares"][:, self._arch], 5) if self._arch is not None else None)

    def _lose_heel(self, cols: dict, dead: np.ndarray) -> dict:
        """A dead heel: the steps' contact (so contact time), strike pattern, strike index,
        impact transient and loading rate are lost; so are the whole-stance shares, peak force,
        total impulse and CoP path, which are of a total without the heel. The other zones'
        impulses, the forefoot balance and the toe-off stay."""
        out = {name: np.array(v, copy=True) for name, v in cols.items()}
        out["lost_strike"][dead] = LOST_HEEL[0]
        out["strike"][dead] = 0
        out["first_zones"][dead] = 0
        out["strike_index"][dead] = np.nan
        out["lost_valr"][dead] = LOST_HEEL[1]
        out["valr_n_per_s"][dead] = np.nan
        out["valr_method"][dead] = 0
        out["impact_n"][dead] = np.nan
        out["transient"][dead] = 0
        whole = dead & (out["lost_event"] == 0)
        out["lost_event"][whole] = LOST_EVENT_HEEL
        for name in ("peak_n", "met_share"):
            out[name][whole] = np.nan
        for name in ("shares", "cop_length_frac", "cop_width_frac"):
            out[name][whole] = np.nan
        out["impulse_n_s"][whole, self.heel.heel] = np.nan
        return out

    def _transient_bw_n(self, s_at: np.ndarray, n_at: np.ndarray) -> np.ndarray:
        """Body weight for each new step's impact transient (its least force, 0.8 BW): the
        given one, else the stride-average estimate from the foot's first step to this one's
        start (decided by the samples, not by the blocks they came in); the first step of a
        foot, with no stride before it, uses 700 N."""
        if self.config.body_weight_n is not None:
            return np.full(len(s_at), float(self.config.body_weight_n))
        s0, n0 = self._bw_first
        dn = n_at - n0
        with np.errstate(invalid="ignore", divide="ignore"):
            est = np.where(dn > 0, 2.0 * (s_at - s0) / np.maximum(dn, 1) / 1000.0, np.nan)
        return np.where(np.isfinite(est) & (est > 0), est, DEFAULT_BODY_WEIGHT_N)

    def _trim(self, keep_from: int) -> None:
        cums, self._cums = self._cums, None
        if cums is not None and cums[0] == self._row0 and keep_from < len(cums[1]):
            # the running sums of the rows _decide has just summed
            self._sum_mn += int(cums[1][keep_from])
            self._seen += int(cums[2][keep_from])
        else:
            f = self._total[:keep_from]
            valid = ~np.isnan(f)
            self._sum_mn += int(np.rint(np.where(valid, f, 0.0) * 1000.0).astype(np.int64).sum())
            self._seen += int(valid.sum())
        self._total = self._total[keep_from:]
        self._f0 = self._f0[keep_from:]
        self._total_all = self._total_all[keep_from:]
        self._row0 += keep_from

    # --- out --------------------------------------------------------------------------------

    def body_weight_estimate_n(self) -> float | None:
        """Twice the mean total force from the first step's start to the last one's (needs
        three steps): the stride-average identity, so far."""
        if self._regions < 3 or self._bw_first is None or self._bw_last is None:
            return None  # (no step before a heel lost at the start: heel.py)
        ds = self._bw_last[0] - self._bw_first[0]
        dn = self._bw_last[1] - self._bw_first[1]
        return 2.0 * ds / dn / 1000.0 if dn > 0 else None

    def faults(self, device_fault_mask: int = 0) -> tuple[int, dict[str, str]]:
        mask, _, reasons = self.converter.faults(device_fault_mask)
        mask |= device_fault_mask
        if self.heel is not None and self.heel.first_dead_row is not None:
            mask |= 1 << self.heel.heel
            reasons.setdefault(self.heel.heel, heel_reason(self.heel.first_dead_row * self.period_s,
                                                           self.heel.stretches))
        why = {z: reasons.get(c, "the device set its fault bit (0 V or a short for a second)")
               for c, z in enumerate(self.zones) if mask & (1 << c)}
        return mask, why


def heel_reason(onset_s: float, stretches: int) -> str:
    """The ledger's reason for a heel lost mid-run (``sensor_fault_reasons``)."""
    more = f", {stretches} stretches in all" if stretches > 1 else ""
    return (f"reads 0 V while the foot is loaded from {onset_s:.2f} s on{more}: disconnected or "
            "broken, or the heel no longer touches down; the steps from then on lost their initial contact, contact time, strike and "
            "loading rate")


# --- per-step values as the document gives them ------------------------------------------


class TableSlice:
    """Steps ``start..stop-1`` of a core's step table, read the way :class:`FootSteps` reads a
    core: a live caller's newly decided steps (the table's last ones), without the rest."""

    def __init__(self, core: FootCore, start: int, stop: int) -> None:
        self._core, self._start, self._stop = core, start, stop
        self.table = self
        self.period_s, self.zones, self.config = core.period_s, core.zones, core.config
        self.has_cop = core.has_cop

    def __getitem__(self, name: str) -> np.ndarray:
        return self._core.table.column(name, self._start, self._stop)

    def __len__(self) -> int:
        return self._stop - self._start


class FootSteps:
    """One foot's step table in document units (BW, ms, rounded as the document rounds)."""

    def __init__(self, core: FootCore, bw_n: float) -> None:
        t = core.table
        ps = core.period_s
        self.zones = core.zones
        self.k = k = len(t)
        ic_s, to_s = t["ic_idx"] * ps, t["to_idx"] * ps
        # a dead heel (heel.py): the contact the other zones saw is late, so it is not given;
        # it still places the step in time (t_s; the flags' windows: FootCore._note_steps)
        self.ic_lost = t["lost_strike"] == LOST_HEEL[0]
        self.t_s = np.round(ic_s, 5)
        if self.ic_lost.any():
            ic_s = np.where(self.ic_lost, np.nan, ic_s)
        self.ic_s_raw, self.to_s_raw = ic_s, to_s
        self.ic_s = np.round(ic_s, 5)
        self.to_s = np.round(to_s, 5)
        self.contact_ms = np.round((to_s - ic_s) * 1e3, 2)
        self.stride_ms = np.round(np.diff(ic_s) * 1e3, 2)
        self.swing_ms = np.round((ic_s[1:] - to_s[:-1]) * 1e3, 2)
        self.complete = t["complete"].copy()
        self.peak_bw = np.round(t["peak_n"] / bw_n, 4)
        self.impact_bw = np.round(t["impact_n"] / bw_n, 4)
        self.valr_bw = np.round(t["valr_n_per_s"] / bw_n, 3)
        self.valr_method = t["valr_method"]
        self.transient = t["transient"]
        self.lost_event, self.lost_strike, self.lost_valr = t["lost_event"], t["lost_strike"], t["lost_valr"]
        mc = getattr(getattr(core, "config", None), "metrics", None) or MetricsConfig()
        self._why_strike = [w.format(strike_window_ms=mc.strike_window_ms) for w in LOST_STRIKE]
        self._why_valr = [w.format(impact_window_frac=mc.impact_window_frac) for w in LOST_VALR]
        self.strike = np.array(STRIKES, dtype=object)[t["strike"]] if k else np.zeros(0, object)
        self.first_zones = t["first_zones"]
        self.shares = np.round(t["shares"], 5)
        # stance impulse in body-weight seconds, per zone and in all
        self.impulse_bw_s = np.round(t["impulse_n_s"].sum(axis=1) / bw_n, 6)
        self.zone_impulse_bw_s = np.round(t["impulse_n_s"] / bw_n, 6)
        zi = {z: i for i, z in enumerate(self.zones)}
        self.has_met = any(z in zi for z in P.METATARSAL_ZONES)
        self.has_ml = "met1" in zi and "met5" in zi
        self.has_cop = core.has_cop
        self.met_share = np.round(t["met_share"], 5)
        self.ml = np.round(t["ml_balance"], 4)
        self.strike_index = np.round(t["strike_index"], 4)
        self.cop_len = np.round(t["cop_length_frac"], 4)
        self.cop_wid = np.round(t["cop_width_frac"], 4)
        self.step_ms: np.ndarray | None = None
        self.flight_ms: np.ndarray | None = None

    def dicts(self, start: int = 0, stop: int | None = None) -> list[dict]:
        """Steps ``start..stop-1`` as the document's step objects."""
        stop = self.k if stop is None else min(stop, self.k)
        sl = slice(start, stop)
        ic, to, ct = self.ic_s[sl].tolist(), self.to_s[sl].tolist(), self.contact_ms[sl].tolist()
        stride = self.stride_ms[start:stop].tolist()
        swing = self.swing_ms[start:stop].tolist()
        comp = self.complete[sl].tolist()
        peak, impact, valr = self.peak_bw[sl].tolist(), self.impact_bw[sl].tolist(), self.valr_bw[sl].tolist()
        vm, strike, fz = self.valr_method[sl].tolist(), self.strike[sl].tolist(), self.first_zones[sl].tolist()
        kind = self.transient[sl].tolist()
        l_ev, l_st, l_va = self.lost_event[sl].tolist(), self.lost_strike[sl].tolist(), self.lost_valr[sl].tolist()
        heel_code, heel_ev = LOST_HEEL[0], LOST_EVENT_HEEL
        shares = self.shares[sl].tolist()
        tot_imp, zimp = self.impulse_bw_s[sl].tolist(), self.zone_impulse_bw_s[sl].tolist()
        met, ml, si = self.met_share[sl].tolist(), self.ml[sl].tolist(), self.strike_index[sl].tolist()
        cl, cw = self.cop_len[sl].tolist(), self.cop_wid[sl].tolist()
        sm = self.step_ms[sl].tolist() if self.step_ms is not None else None
        fm = self.flight_ms[sl].tolist() if self.flight_ms is not None else None
        zones = self.zones
        has_met, has_ml, has_cop = self.has_met, self.has_ml, self.has_cop
        first_zones: dict[int, list[str]] = {}  # a code's zone list, made once per code
        last = self.k - start - 1  # the foot's last step has no stride after it
        # the next step's contact, also past the end of this slice (the document is written in
        # pieces of steps)
        ic_next = self.ic_s[start + 1:stop + 1].tolist()
        out = []
        for j in range(stop - start):
            if j < last:
                st: dict = {"ic_s": ic[j], "to_s": to[j], "contact_ms": ct[j],
                            "stride_ms": stride[j], "swing_ms": swing[j], "complete": comp[j]}
            else:
                st = {"ic_s": ic[j], "to_s": to[j], "contact_ms": ct[j], "complete": comp[j]}
            lost: dict[str, str] = {}
            if ic[j] != ic[j] or (j < last and ic_next[j] != ic_next[j]):
                # a contact the dead heel did not see: no time, so no contact, stride or swing
                why = self._why_strike[heel_code]
                for key in ("ic_s", "contact_ms", "stride_ms", "swing_ms"):
                    if key in st and st[key] != st[key]:
                        st[key] = None
                        lost[key] = why
            # whole stance: peak force, zone shares and impulses, balance, CoP path
            if l_ev[j] == heel_ev:
                # of a total without the heel: only the other zones' own impulses and the
                # forefoot balance stay
                why = LOST_EVENT[heel_ev]
                st.update(peak_force_bw=None, zone_impulse_share=None, impulse_bw_s=None,
                          zone_impulse_bw_s={z: (None if v != v else v) for z, v in zip(zones, zimp[j])})
                for key in ("peak_force_bw", "zone_impulse_share", "impulse_bw_s"):
                    lost[key] = why
                if has_met:
                    st["metatarsal_share"] = None
                    lost["metatarsal_share"] = why
                if has_ml:
                    v = ml[j]
                    st["forefoot_ml_balance"] = None if v != v else v
                if has_cop:
                    st["cop_length_frac"] = st["cop_width_frac"] = None
                    lost["cop_path"] = why
            elif not l_ev[j]:
                st["peak_force_bw"] = peak[j]
                st["zone_impulse_share"] = dict(zip(zones, shares[j]))
                st["impulse_bw_s"] = tot_imp[j]
                st["zone_impulse_bw_s"] = dict(zip(zones, zimp[j]))
                if has_met:
                    st["metatarsal_share"] = met[j]
                if has_ml:
                    v = ml[j]
                    st["forefoot_ml_balance"] = None if v != v else v
                if has_cop:
                    st["cop_length_frac"] = cl[j]
                    st["cop_width_frac"] = cw[j]
            else:
                why = LOST_EVENT[l_ev[j]]
                st.update(peak_force_bw=None, zone_impulse_share=None, impulse_bw_s=None,
                          zone_impulse_bw_s=None)
                for key in ("peak_force_bw", "zone_impulse_share", "impulse_bw_s", "zone_impulse_bw_s"):
                    lost[key] = why
                if self.has_met:
                    st["metatarsal_share"] = None
                    lost["metatarsal_share"] = why
                if self.has_ml:
                    st["forefoot_ml_balance"] = None
                    lost["forefoot_ml_balance"] = why
                if self.has_cop:
                    st["cop_length_frac"] = st["cop_width_frac"] = None
                    lost["cop_path"] = why
            # strike pattern and strike index: the first 80 ms of contact
            if not l_st[j]:
                st["strike"] = strike[j]
                code = fz[j]
                zl = first_zones.get(code)
                if zl is None:
                    zl = first_zones[code] = decode_zones(code, zones)
                st["first_zones"] = list(zl)
                if has_cop:
                    st["strike_index"] = None if si[j] != si[j] else si[j]
            else:
                why = self._why_strike[l_st[j]]
                st["strike"] = None
                lost["strike"] = why
                if self.has_cop:
                    st["strike_index"] = None
                    lost["strike_index"] = why
            # impact transient and loading rate: the rise to the transient
            st["impact_peak_bw"] = impact[j] if vm[j] == 1 else None
            st["impact_transient"] = TRANSIENTS[kind[j]]
            st["valr_bw_per_s"] = None if valr[j] != valr[j] else valr[j]
            st["valr_method"] = VALR_METHODS[vm[j]]
            if l_va[j]:
                lost["valr_bw_per_s"] = self._why_valr[l_va[j]]
            if lost:
                st["lost"] = lost
            if sm is not None and sm[j] == sm[j]:
                st["step_ms"] = sm[j]
                st["flight_ms"] = fm[j]
            out.append(st)
        return out


def _join(blocks: list[Block]) -> Block:
    """Consecutive blocks as one."""
    if len(blocks) == 1:
        return blocks[0]
    return Block(blocks[0].row0, np.concatenate([b.units for b in blocks]),
                 np.concatenate([b.valid for b in blocks]),
                 [f for b in blocks for f in b.device_faults])


def _med(values: np.ndarray) -> float | None:
    v = values[~np.isnan(values)] if values.dtype.kind == "f" else values
    return round(float(np.median(v)), 3) if len(v) else None


def foot_summary(fs: FootSteps, duration_s: float, core: FootCore) -> dict:
    """Per-foot summary: timing over every step, each force metric's median over the steps
    that have it (a damaged step keeps what is intact); the activity and the rearfoot loading
    rate's method from the core's running state, as the flags read them
    (:class:`insole.analysis.flags.ActivityState`, :meth:`FlagState.valr_method`)."""
    stride_med, contact, duty, activity = core.activity.result()
    cadence = 2 * 60000.0 / stride_med if stride_med else None
    strike = np.where(fs.lost_strike > 0, "lost", fs.strike.astype(str)) if fs.k else np.zeros(0, str)
    strikes = {s: int((strike == s).sum()) for s in ("rearfoot", "midfoot", "forefoot")}
    valr_method = core.flag_state.valr_method()
    code = VALR_METHODS.index(valr_method) if valr_method is not None else -1
    rear = (strike == "rearfoot") & (fs.valr_method == code) if fs.k else np.zeros(0, bool)
    with_shares = fs.lost_event == 0
    lost = steps_lost(fs)
    return {
        "activity": activity,
        "duty_factor": duty,
        "steps": fs.k,
        "steps_complete": int(fs.complete.sum()),
        "cadence_spm": round(cadence, 2) if cadence else None,
        "contact_ms_median": contact,
        "swing_ms_median": _med(fs.swing_ms),
        "stride_ms_median": round(stride_med, 2) if stride_med else None,
        "peak_force_bw_median": _med(fs.peak_bw),
        # one VALR method per median (the flag's): the methods disagree by a third
        "valr_bw_per_s_median_rearfoot": _med(fs.valr_bw[rear]),
        "valr_method_rearfoot": valr_method,
        "valr_bw_per_s_median": _med(fs.valr_bw),
        "strike_counts": strikes,
        "strike_index_median": _med(fs.strike_index) if fs.has_cop else None,
        "metatarsal_share_median": _med(fs.met_share) if fs.has_met else None,
        "zone_impulse_share_median": {z: round(float(np.median(fs.shares[with_shares, i])), 4)
                                      for i, z in enumerate(fs.zones)} if with_shares.any() else {},
        "forefoot_ml_balance_median": _med(fs.ml) if fs.has_ml else None,
        "duration_s": round(duration_s, 3),
        **({"steps_lost": lost} if lost else {}),
    }


def steps_lost(fs: FootSteps) -> dict:
    """How many steps lost each kind of metric, and why: ``{metric: {reason: steps}}``."""
    out: dict = {}
    for name, codes, reasons in (("ic_s", np.where(fs.ic_lost, fs.lost_strike, 0), fs._why_strike),
                                 ("strike", fs.lost_strike, fs._why_strike),
                                 ("valr_bw_per_s", fs.lost_valr, fs._why_valr),
                                 ("zone_impulse_share", fs.lost_event, LOST_EVENT)):
        if fs.k and codes.any():
            n = np.bincount(codes.astype(np.int64), minlength=len(reasons))
            out[name] = {reasons[c]: int(n[c]) for c in np.flatnonzero(n[1:]) + 1}
    return out


def live_update(core: FootCore, side: str, first: int, stop: int,
                bw_n: float) -> tuple[list[dict], list[dict]]:
    """What a live caller shows after the core decides steps ``first..stop-1``: those steps as
    the document's step objects (forces in BW of ``bw_n``) and the foot's flags now."""
    steps = FootSteps(TableSlice(core, first, stop), bw_n).dicts()
    flags, _, _ = foot_flags(core, side, core.rows * core.period_s, bw_n)
    return steps, flags


def foot_flags(core: FootCore, side: str, duration_s: float, bw_n: float) -> tuple[list[dict], list[str], dict]:
    """(flags, notes, evaluated) of one foot now: the flag rules on the core's running state
    (running only), loading rates in BW/s of ``bw_n``."""
    _, _, duty, activity = core.activity.result()
    if activity == "running":
        rules = FlagRules(core.config.flags).evaluate(core.flag_state, side, duration_s, bw_n)
        return rules.flags_, rules.notes_, rules.evaluated_
    note = (f"{side}: {activity} (duty factor {duty}): the flags' "
            "thresholds come from running studies, so no flags were evaluated")
    return [], [note], {"absolute": False, "drift": False}
