"""Lossless, crash-safe recording of one or two sources into a session directory.

Every chunk a source delivers is appended, as received and with the host receive time, to that
source's ``.rec`` file (format in :mod:`insole.session`); the file is flushed at least once a
second, so SIGKILL loses at most the last second and leaves a readable session. Ctrl-C (SIGINT)
or SIGTERM close it cleanly. A serial port that goes away mid-run is opened again by the source
(:class:`insole.io.sources.SerialSource`, counted in the session's ``link`` ledger) and asked for
INFO again; one that does not come back ends that source as a counted fault; the other source
goes on, and nothing already received is lost.

After writing it, each worker feeds the chunk to the streaming analysis
(:class:`insole.analysis.FootPipeline`), so steps and flags come out as they happen (a
:class:`insole.analysis.document.LiveFeed` turns them into events). An error in the analysis
stops the analysis of that source (reported as ``analysis_fault``), never the recording.
"""

from __future__ import annotations

import ctypes
import datetime as _dt
import json
import logging
import os
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np

from insole import __version__
from insole import protocol as P
from insole.analysis.core import StepFile
from insole.analysis.document import FootPipeline
from insole.errors import InsoleError, SourceError
from insole.io.session import FRAMING_SERIAL, REC_MAGIC, SESSION_SCHEMA, encode_record
from insole.io.sources import Source, SourceClosed, open_source

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.5


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


class SourceWorker(threading.Thread):
    """Reads one source into its .rec file, then feeds each chunk to the streaming analysis
    (when it records) and to ``on_chunk`` (the live window)."""

    def __init__(self, index: int, source: Source, path: Path | None, stop: threading.Event,
                 on_chunk=None, live=None) -> None:
        super().__init__(name=f"rec-{index}", daemon=True)
        self.index = index
        self.source = source
        self.path = path  # None: read and decode only (the live window without --record)
        self.stop = stop
        self.live = live
        # the streaming analysis runs on what is recorded (the live window without --record has
        # its own drawing pipeline and reads only)
        # its step table is appended to files beside the .rec (source0.steps/: every step, none
        # of them kept in memory)
        self.pipeline: FootPipeline | None = (
            FootPipeline(path.name, source.framing, on_steps=self._on_steps,
                         config=getattr(live, "config", None),
                         step_table=lambda c: StepFile(c, path.with_suffix(".steps")))
            if path else None)
        # on_chunk(host_time_s, data, packets): every chunk, after it is written (live window)
        self.on_chunk = on_chunk
        # progress (packets, bad frames): the analysis's own frame decoder where there is one
        # and nobody needs the packets; else a decoder of its own (a BLE source gives one
        # packet per chunk)
        shared = self.pipeline.decoder.decoder if self.pipeline is not None else None
        self._own_decoder = shared is None or on_chunk is not None
        self.decoder = (shared if not self._own_decoder else
                        P.StreamDecoder() if source.framing == FRAMING_SERIAL else P.PacketDecoder())
        self.bytes = 0
        self.chunks = 0
        self.ended: str | None = None
        self.fault: str | None = None
        self.analysis_fault: str | None = None
        self.analysis_cpu_s = 0.0  # thread CPU time spent in the analysis
        # latency of each decided step (s): from the arrival of the chunk that carried its
        # toe-off sample, and from the arrival of the chunk that decided it, to its events
        # (the last 10 000 steps in a ring of fixed size, 160 kB)
        self.latency_s = LatencyRing(10_000)
        self._arrivals: deque[tuple[int, float]] = deque(maxlen=512)  # (grid rows, arrival)
        self._t_chunk = 0.0
        self._side_cache: str | None = None

    @property
    def side(self) -> str | None:
        p = self.pipeline
        if p is None:
            return self._side_cache
        if p.side:
            return p.side
        asm = p.decoder.assembler
        return asm.info.side if asm.info is not None else asm._side

    def _on_steps(self, core, first: int, stop: int) -> None:
        if self.live is not None:
            self.live.on_steps(core, first, stop)
        done = time.monotonic()
        for to_idx in core.table.column("to_idx", first, stop).tolist():
            row = int(to_idx) + 1  # the first sample after toe-off: below the threshold again
            t_arr = next((t for r, t in self._arrivals if r > row), self._t_chunk)
            self.latency_s.append((done - t_arr, done - self._t_chunk))

    def _analyse(self, data: bytes, host_time_s: float, t_arrival: float) -> None:
        if self.pipeline is None:
            return
        c0 = time.thread_time()
        self._t_chunk = t_arrival
        try:
            self.pipeline.feed(data, host_time_s)
        except Exception as e:  # noqa: BLE001 - the recording goes on without the analysis
            self.analysis_fault = f"{type(e).__name__}: {e}"
            log.warning("%s: live analysis stopped (%s); recording goes on",
                        self.source.url, self.analysis_fault)
            self._side_cache = self.side  # what is known of the side stays known
            self.pipeline = None
        else:
            self._arrivals.append((self.pipeline.decoder.assembler._row_next, t_arrival))
        self.analysis_cpu_s += time.thread_time() - c0

    def _progress(self, host_time_s: float, data: bytes) -> None:
        if not self._own_decoder:
            return
        packets = self.decoder.feed(data)
        if self._side_cache is None:
            for pkt in packets:
                if hasattr(pkt, "side"):
                    self._side_cache = pkt.side
                    break
        if self.on_chunk is not None:
            self.on_chunk(host_time_s, data, packets)

    def _ask_info(self) -> None:
        if self.source.live and self.source.framing == FRAMING_SERIAL:
            # opening a port discards what was waiting, INFO included: ask for it again (a BLE
            # source reads INFO itself when it connects)
            try:
                self.source.send(P.encode(P.Command(P.CMD_GET_INFO)))
            except (SourceClosed, SourceError) as e:
                log.warning("%s: could not ask for INFO (%s)", self.source.url, e)

    def run(self) -> None:
        last_flush = time.monotonic()
        self._ask_info()
        reconnects = getattr(self.source, "reconnects", 0)
        with (self.path.open("ab", buffering=1 << 16) if self.path else _NoFile()) as f:
            if f.tell() == 0:
                f.write(REC_MAGIC)
                f.flush()
            while not self.stop.is_set():
                try:
                    data = self.source.read(0.1)
                except SourceClosed as e:
                    self.ended = e.reason
                    if self.source.live:
                        self.fault = e.reason
                    break
                except Exception as e:  # noqa: BLE001 - keep what we have, report the fault
                    self.ended = self.fault = f"{type(e).__name__}: {e}"
                    break
                # a BLE source knows when each notification arrived; a port, when read returned
                now = getattr(self.source, "last_receive_time_s", None) or time.time()
                t_arrival = time.monotonic()
                if data:
                    f.write(encode_record(now, data))
                    self.bytes += len(data)
                    self.chunks += 1
                    self._analyse(data, now, t_arrival)
                    self._progress(now, data)
                if getattr(self.source, "reconnects", 0) != reconnects:  # the port is back
                    reconnects = self.source.reconnects
                    self._ask_info()
                mono = time.monotonic()
                if mono - last_flush >= FLUSH_INTERVAL_S:
                    f.flush()
                    last_flush = mono
            # stopped: what the source already received is kept (BLE: notifications queued)
            for data, t in getattr(self.source, "drain", list)():
                f.write(encode_record(t, data))
                self.bytes += len(data)
                self.chunks += 1
                self._analyse(data, t, time.monotonic())
                self._progress(t, data)
            f.flush()
        p = self.pipeline
        if p is not None and p.core is not None:
            p.core.table.close()


# glibc's mallopt parameter: blocks of at least this many bytes get mappings of their own
_M_MMAP_THRESHOLD = -3
RETURN_FREED_MIN_BYTES = 64 << 10


def return_freed_memory_promptly(min_bytes: int = RETURN_FREED_MIN_BYTES) -> bool:
    """For a long recording: have the C allocator give each block of ``min_bytes`` or more its
    own mapping, which goes back to the system when the block is freed.

    The live feed's flag evaluation makes temporary arrays that grow with the run (a few
    columns of every step, read from the step table and dropped after the evaluation:
    docs/analysis.md, Streaming, Memory). glibc serves a block from the heap once a block of
    that size has been freed (it raises its mapping threshold as large blocks are freed, up to
    32 MB), and a reader thread's heap keeps the high-water mark of those arrays in resident
    memory, about 2 MB an hour of recording (docs/validation.md). Setting the threshold
    (``mallopt(M_MMAP_THRESHOLD)``) fixes it. Process-wide, so it is the command's choice
    (``insole record``), not the library's; a no-op returning False where the C library has
    no ``mallopt`` (macOS, Windows, musl)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_THRESHOLD, int(min_bytes)))


class LatencyRing:
    """The last ``size`` (from toe-off arrival, from decision) latency pairs in seconds, in a
    preallocated array: its memory is fixed from the start. Iterates oldest first."""

    def __init__(self, size: int) -> None:
        self._a = np.zeros((size, 2))
        self._n = 0  # pairs appended so far

    def append(self, pair: tuple[float, float]) -> None:
        self._a[self._n % len(self._a)] = pair
        self._n += 1

    def __len__(self) -> int:
        return min(self._n, len(self._a))

    def __iter__(self):
        size = len(self._a)
        if self._n <= size:
            rows = self._a[:self._n]
        else:
            i = self._n % size
            rows = np.concatenate((self._a[i:], self._a[:i]))
        return iter([tuple(r) for r in rows.tolist()])


class _NoFile:
    """Stands in for the .rec file when a worker only reads (writes nothing)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def tell(self) -> int:
        return 1

    def write(self, data: bytes) -> None:
        pass

    def flush(self) -> None:
        pass


class Recorder:
    """Records sources into a session directory until stopped or every source has ended.

    :meth:`run` blocks; :meth:`request_stop` (safe from a signal handler or another thread) ends
    it within about a read timeout (0.1 s): the workers finish their last write, the sources are
    closed only after their worker has left ``read()``, and ``session.json`` is marked closed.
    The live window drives the same steps itself: :meth:`start`, then :meth:`close`.
    """

    #: how long close() waits for a worker to leave read() before closing its source anyway
    JOIN_TIMEOUT_S = 5.0

    def __init__(self, urls: list[str], out_dir: str | Path, duration_s: float | None = None,
                 sources: list[Source] | None = None, on_chunk=None, live=None) -> None:
        self.urls = urls
        self.live = live  # a LiveFeed (steps and flags as they happen), or None
        self.out = Path(out_dir)
        self.duration_s = duration_s
        self.stop = threading.Event()
        self.workers: list[SourceWorker] = []
        self._sources = sources  # already made (e.g. wrapped) sources; default: open_source(url)
        self._on_chunk = on_chunk  # on_chunk(index) -> the worker's callback (the live window)
        self._closed = False
        self._t0 = time.monotonic()

    def request_stop(self) -> None:
        """Ask :meth:`run` to stop and close the session (returns at once)."""
        self.stop.set()

    def _write_meta(self, closed: bool, extra: dict | None = None) -> None:
        meta = {"schema": SESSION_SCHEMA, "created": self._created, "recorder": f"insole {__version__}",
                "closed": closed,
                "sources": [{"url": w.source.url, "file": w.path.name, "framing": w.source.framing,
                             "side": w.side, "bytes": w.bytes, "ended": w.ended, "fault": w.fault,
                             **({"link": w.source.ledger()} if hasattr(w.source, "ledger") else {})}
                            for w in self.workers]}
        if extra:
            meta.update(extra)
        tmp = self.out / "session.json.tmp"
        tmp.write_text(json.dumps(meta, indent=1) + "\n")
        os.replace(tmp, self.out / "session.json")

    def start(self) -> None:
        """Open the sources and the session, start one reader thread per source."""
        sources = self._sources or [open_source(u) for u in self.urls]
        opened = []
        try:
            for s in sources:
                opened.append(s.open())
        except SourceError:
            for s in opened:
                s.close()
            raise
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            if (self.out / "session.json").exists():
                raise InsoleError(f"{self.out} already holds a session; choose a new --out")
        except OSError as e:
            for s in sources:
                s.close()
            raise InsoleError(f"cannot create {self.out}: {e.strerror}") from e
        except InsoleError:
            for s in sources:
                s.close()
            raise
        self._sources = sources
        self._created = _now_iso()
        self.workers = [SourceWorker(i, s, self.out / f"source{i}.rec", self.stop,
                                     self._on_chunk(i) if self._on_chunk else None, self.live)
                        for i, s in enumerate(sources)]
        self._write_meta(closed=False)
        self._t0 = time.monotonic()
        for w in self.workers:
            w.start()

    def close(self) -> None:
        """Stop the readers, close each source after its reader has left ``read()``, and mark
        the session closed. Idempotent."""
        self.stop.set()
        if self._closed or self._sources is None or not self.workers:
            return
        self._closed = True
        for w, s in zip(self.workers, self._sources):
            if w.ident is not None:
                w.join(timeout=self.JOIN_TIMEOUT_S)
            if w.is_alive():  # still inside read(): closing the port is what can end it
                log.warning("%s: reader did not stop within %.0f s; closing the port under it",
                            s.url, self.JOIN_TIMEOUT_S)
            s.close()
            if w.ident is not None:
                w.join(timeout=self.JOIN_TIMEOUT_S)
        self._write_meta(closed=True, extra={"ended": _now_iso(),
                                             "elapsed_s": round(time.monotonic() - self._t0, 3)})

    def refresh_meta(self) -> None:
        """Rewrite session.json with the current byte counts (still open)."""
        if self.workers and not self._closed:
            self._write_meta(closed=False)

    def run(self, progress=None) -> dict:
        """Record until :meth:`request_stop`, ``duration_s``, or every source has ended."""
        self.start()
        t0 = self._t0
        last_meta = t0
        try:
            while any(w.is_alive() for w in self.workers):
                if self.stop.wait(0.1):
                    break
                now = time.monotonic()
                if self.duration_s is not None and now - t0 >= self.duration_s:
                    break
                if now - last_meta >= 2.0:
                    self.refresh_meta()
                    last_meta = now
                    if progress:
                        progress(self.workers, now - t0)
        finally:
            self.close()
        return {"workers": self.workers, "elapsed_s": time.monotonic() - t0}
