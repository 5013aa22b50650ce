"""The live window's data side: reader threads, per-foot ring buffers, the step-analysis thread.

One reader thread per source (the recorder's own worker, so ``--record`` writes exactly what
``insole record`` would) decodes each chunk as it arrives and pushes every DATA packet into its
foot's :class:`FootView`: a bounded ring of calibrated zone forces for drawing, plus the counts
of the status line. Every block also goes, through an unbounded queue, to one analysis thread
that feeds the :class:`~insole.live.steps.StepAnalysis`; so the drawing thread never waits on
the analysis, and the analysis never misses a block (nothing received is dropped: only the
oldest samples leave the display ring, after they have been recorded and analysed).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np

from insole import protocol as P
from insole.errors import InsoleError
from insole.io.recorder import Recorder, SourceWorker
from insole.io.sources import FileSource, SimSource, Source, open_source
from insole.live.pacing import PacedSource
from insole.live.steps import SampleBlock, StepAnalysis, StreamingSteps
from insole.model import calibration, hardware
from insole.model.calibration import Calibration
from insole.model.sensor import force_from_volts

log = logging.getLogger(__name__)

_WRAP = 1 << 32
#: seconds of each foot kept for drawing
RING_S = 10.0
#: a source that sent nothing for this long is shown as silent
SILENT_AFTER_S = 2.0


class FootView:
    """One foot as the window sees it. Written by a reader thread, read by the drawing thread,
    always under ``lock``."""

    def __init__(self, side: str, info: P.Info, assumed_info: bool, ring_s: float = RING_S) -> None:
        self.lock = threading.Lock()
        self.side = side
        self.info = info
        self.assumed_info = assumed_info
        self.zones = tuple(info.zones)
        self.period_s = 1.0 / info.rate_hz
        self.cap = int(round(ring_s / self.period_s))
        self.force = np.full((self.cap, len(self.zones)), np.nan)
        self.head = 0  # absolute index of the next sample slot
        self.arrivals: deque[tuple[int, float]] = deque()  # (head after a block, monotonic arrival)
        self.last_arrival = 0.0
        self.status: P.Status | None = None
        self.packets = 0
        self.packets_lost = 0
        self.samples_dropped = 0
        self.other_problems = 0  # duplicates, time reversals, format changes
        self.steps: deque[dict] = deque(maxlen=64)
        self.steps_total = 0
        self.flags: list[dict] = []
        self.flags_first_s: dict[tuple[str, str], float] = {}
        self.source_url = ""
        self.decode_errors = 0
        self.ended: str | None = None

    def write(self, idx: int, force_n: np.ndarray, arrival: float) -> None:
        """Put ``force_n`` at absolute sample index ``idx``; slots skipped over become NaN."""
        n = len(force_n)
        cap = self.cap
        if idx > self.head:
            gap = min(idx - self.head, cap)
            rows = (np.arange(idx - gap, idx)) % cap
            self.force[rows] = np.nan
        if n >= cap:
            force_n, idx, n = force_n[-cap:], idx + n - cap, cap
        rows = np.arange(idx, idx + n) % cap
        self.force[rows] = force_n
        self.head = max(self.head, idx + n)
        self.arrivals.append((self.head, arrival))
        self.last_arrival = arrival

    def recent(self, n: int) -> tuple[np.ndarray, int]:
        """(n, C) forces of the last ``n`` slots (NaN before the first sample) and the head."""
        out = np.full((n, len(self.zones)), np.nan)
        m = min(n, self.head, self.cap)
        if m:
            rows = np.arange(self.head - m, self.head) % self.cap
            out[n - m:] = self.force[rows]
        return out, self.head


class _SourceState:
    """Per-source decoding state: which foot it feeds, clock unwrapping, seq tracking."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.foot: FootView | None = None
        self.info: P.Info | None = None
        self.seq: int | None = None
        self.t_raw: int | None = None
        self.t_us = 0
        self.t_first_us: int | None = None
        self.next_idx: int | None = None
        self.k: np.ndarray | None = None
        self.beta: np.ndarray | None = None
        self.rejected = ""


class LiveFeed:
    """Reads one or two sources for the live window, optionally recording them.

    Args:
        urls: one or two source URLs (one per foot).
        record_dir: record into this new session directory while showing (``--record``).
        speed: replay speed for ``file://`` and ``sim://`` sources (1 = the device's pace).
        analysis: the step analysis to feed; default :class:`StreamingSteps` (the streaming core).
        calibrations: per side, volts → newtons (default sensor model otherwise).
        ring_s: seconds of each foot kept for drawing.
    """

    def __init__(self, urls: list[str], record_dir: str | Path | None = None, speed: float = 1.0,
                 analysis: StepAnalysis | None = None,
                 calibrations: dict[str, Calibration] | None = None, ring_s: float = RING_S) -> None:
        if not 1 <= len(urls) <= 2:
            raise InsoleError("give one or two sources (one per foot)")
        if not speed > 0:
            raise InsoleError(f"--speed must be above 0, not {speed}")
        self.urls = list(urls)
        self.record_dir = Path(record_dir) if record_dir else None
        self.speed = speed
        self.calibrations = dict(calibrations or {})
        self.analysis = analysis or StreamingSteps(calibrations=self.calibrations)
        self.ring_s = ring_s
        self.feet: dict[str, FootView] = {}
        self.feet_lock = threading.Lock()
        self.states = [_SourceState(u) for u in urls]
        self.stop = threading.Event()
        self._blocks: queue.Queue = queue.Queue()
        self._recorder: Recorder | None = None
        self._workers: list[SourceWorker] = []
        self._sources: list[Source] = []
        self._analysis_thread: threading.Thread | None = None
        self.analysis_errors = 0
        self.started_at = 0.0

    # --- sources ---------------------------------------------------------------------------

    def _make_source(self, url: str) -> Source:
        src = open_source(url)
        if isinstance(src, SimSource):
            src.params = dict(src.params, realtime="0")  # paced below, at --speed
            return PacedSource(src, self.speed)
        if isinstance(src, FileSource):
            src.realtime = False
            return PacedSource(src, self.speed)
        return src

    def start(self) -> LiveFeed:
        """Open the sources (and the session when recording) and start the threads.

        Raises:
            InsoleError: a source that cannot be opened, a session directory that exists.
        """
        sources = [self._make_source(u) for u in self.urls]
        self._analysis_thread = threading.Thread(target=self._analyse_loop, name="live-analysis",
                                                 daemon=True)
        self._analysis_thread.start()
        self.started_at = time.monotonic()
        try:
            if self.record_dir is not None:
                self._recorder = Recorder(self.urls, self.record_dir, sources=sources,
                                          on_chunk=self._chunk_handler)
                self._recorder.stop = self.stop
                self._recorder.start()
                self._workers = self._recorder.workers
            else:
                opened = []
                try:
                    for s in sources:
                        opened.append(s.open())
                except InsoleError:
                    for s in opened:
                        s.close()
                    raise
                self._sources = sources
                self._workers = [SourceWorker(i, s, None, self.stop, self._chunk_handler(i))
                                 for i, s in enumerate(sources)]
                for w in self._workers:
                    w.start()
        except BaseException:
            self.stop.set()
            self._analysis_thread.join(timeout=5)
            raise
        return self

    def close(self) -> None:
        """Stop reading, close the sources, finish the recording, stop the analysis thread.
        Idempotent; every thread it started has ended when it returns (or is reported)."""
        self.stop.set()
        if self._recorder is not None:
            self._recorder.close()
        else:
            for w in self._workers:
                w.join(timeout=5)
            for s in self._sources:
                s.close()
            self._sources = []
        if self._analysis_thread is not None:
            self._analysis_thread.join(timeout=10)
        for w in self._workers:
            if w.is_alive():
                log.warning("reader %s did not stop", w.name)

    def __enter__(self) -> LiveFeed:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def workers(self) -> list[SourceWorker]:
        return self._workers

    def source_state(self, url: str) -> tuple[bool, str | None]:
        """(reading, why it ended) of the source with this URL."""
        for w in self._workers:
            if w.source.url == url:
                return w.is_alive(), w.fault or w.ended
        return False, None

    def backlog(self) -> int:
        """Blocks waiting for the step analysis."""
        return self._blocks.qsize()

    def sources_ended(self) -> bool:
        return bool(self._workers) and not any(w.is_alive() for w in self._workers)

    # --- the reader threads' side ----------------------------------------------------------

    def _chunk_handler(self, index: int):
        st = self.states[index]
        worker_ref: list[SourceWorker] = []

        def on_chunk(host_time_s: float, data: bytes, packets: list) -> None:
            now = time.monotonic()
            for pkt in packets:
                self._packet(st, pkt, now)
            if st.foot is not None:
                if not worker_ref:
                    worker_ref.extend(w for w in self._workers if w.index == index)
                if worker_ref:
                    st.foot.decode_errors = worker_ref[0].decoder.error_count
        return on_chunk

    def _foot_for(self, st: _SourceState, side: str, info: P.Info | None, channels: int) -> FootView | None:
        if st.foot is not None:
            return st.foot
        if st.rejected:
            return None
        assumed = info is None
        if info is None:
            supply_mv, r_fixed = hardware.divider()
            zones = hardware.default_zones()
            if len(zones) != channels:
                zones = P.ZONES[:channels]
            info = P.Info(side, tuple(zones), 500, supply_mv, r_fixed, "000000000000", "unknown")
        with self.feet_lock:
            if side in self.feet:
                st.rejected = f"{st.url}: also the {side} foot; shown only once"
                log.warning(st.rejected)
                return None
            foot = FootView(side, info, assumed, self.ring_s)
            foot.source_url = st.url
            self.feet[side] = foot
        st.foot = foot
        cal = self.calibrations.get(side) or calibration.default(side, info.zones)
        st.k, st.beta = np.array([(cal.k(z), cal.beta(z)) for z in info.zones], dtype=float).T
        return foot

    def _packet(self, st: _SourceState, pkt, now: float) -> None:
        if isinstance(pkt, P.Info):
            if st.info is None:
                st.info = pkt
            return
        if isinstance(pkt, P.Status):
            if st.foot is not None:
                with st.foot.lock:
                    st.foot.status = pkt
            return
        if not isinstance(pkt, P.Data):
            return
        info = st.info if st.info is not None and len(st.info.zones) == pkt.channels else None
        if info is not None and info.rate_hz * pkt.period_us != 1_000_000:
            info = P.Info(info.side, info.zones, int(round(1e6 / pkt.period_us)), info.supply_mv,
                          info.r_fixed_ohm, info.device_id, info.firmware)
        foot = self._foot_for(st, pkt.side, info, pkt.channels)
        if foot is None:
            return
        if pkt.channels != len(foot.zones) or abs(pkt.period_us * 1e-6 - foot.period_s) > 1e-9:
            with foot.lock:
                foot.other_problems += 1
            return
        # seq: +1 per packet, wraps at 65536; a jump forward is transport loss
        lost = 0
        if st.seq is not None:
            gap = (pkt.seq - st.seq - 1) & 0xFFFF
            if gap >= 0x8000:
                with foot.lock:
                    foot.other_problems += 1
                return
            lost = gap
        st.seq = pkt.seq
        if st.t_raw is None:
            st.t_us = pkt.t0_us
            st.t_first_us = pkt.t0_us
        else:
            d = (pkt.t0_us - st.t_raw) % _WRAP
            if d >= _WRAP // 2:
                with foot.lock:
                    foot.other_problems += 1
                return
            st.t_us += d
        st.t_raw = pkt.t0_us
        idx = int(round((st.t_us - st.t_first_us) / pkt.period_us))
        dropped = idx - st.next_idx if st.next_idx is not None and lost == 0 and idx > st.next_idx else 0
        st.next_idx = idx + pkt.n_sets
        volts = pkt.samples.astype(float) * P.SAMPLE_UNIT_V
        f = foot.info
        force = force_from_volts(volts, f.supply_mv / 1000.0, f.r_fixed_ohm, st.k, st.beta)
        with foot.lock:
            foot.write(idx, force, now)
            foot.packets += 1
            foot.packets_lost += lost
            foot.samples_dropped += dropped
        self._blocks.put(SampleBlock(foot.side, foot.info, idx * foot.period_s, foot.period_s, volts, force))

    # --- the analysis thread ---------------------------------------------------------------

    def _analyse_loop(self) -> None:
        while True:
            if self.stop.is_set():
                return  # closing: what is left was recorded; analysing it would only delay
            try:
                block = self._blocks.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                new, flags = self.analysis.feed(block.side, block)
            except Exception:  # noqa: BLE001 - a failing analysis must not stop the window
                self.analysis_errors += 1
                log.exception("step analysis failed on a %s block", block.side)
                continue
            foot = self.feet.get(block.side)
            if foot is None:
                continue
            with foot.lock:
                foot.steps.extend(new)
                foot.steps_total += len(new)
                # a flag that rose stays shown (with its latest numbers): a later window that
                # does not raise it again does not take it back
                risen = {(f["code"], f["rule"]): f for f in foot.flags}
                for fl in flags:
                    risen[(fl["code"], fl["rule"])] = fl
                    foot.flags_first_s.setdefault((fl["code"], fl["rule"]), block.end_s)
                foot.flags = list(risen.values())
