"""Replay at the pace the device sampled: a source wrapper for ``file://`` and ``sim://``.

A capture file (or the in-process simulator with ``realtime=0``) delivers its bytes as fast as
they can be read. :class:`PacedSource` holds each frame back until the wall clock reaches its
device time (divided by ``speed``), so the live window sees the stream as a runner's device
would have sent it: ``speed=1`` real time, ``speed=10`` ten times faster. It only moves bytes:
frames are released whole and unchanged, damaged ones included (the decoder downstream counts
them); it reads a DATA frame's header only to learn its time.
"""

from __future__ import annotations

import struct
import time

from insole import protocol as P
from insole.errors import ProtocolError
from insole.io.sources import Source

_WRAP = 1 << 32
_T0 = struct.Struct("<I")


class PacedSource(Source):
    """Wraps a non-live source and releases its frames at ``speed`` × the device's pace.

    Args:
        inner: the source to pace (opened and closed through this wrapper).
        speed: replay speed, > 0 (1 = real time).
    """

    def __init__(self, inner: Source, speed: float = 1.0) -> None:
        super().__init__(inner.url)
        if not speed > 0:
            raise ValueError("speed must be > 0")
        self.inner = inner
        self.speed = float(speed)
        self.live = inner.live
        self.framing = inner.framing
        self._buf = bytearray()
        self._ready = bytearray()
        self._t_first_us: int | None = None
        self._t_raw: int | None = None
        self._t_us = 0
        self._wall0: float | None = None
        self._ended: Exception | None = None
        self._head_t: float | None = None  # device time of the frame at the head of _buf

    def open(self) -> PacedSource:
        self.inner.open()
        return self

    def close(self) -> None:
        self.inner.close()

    def write(self, data: bytes) -> None:
        self.inner.write(data)

    def _frame_time_s(self, frame: bytes) -> float:
        """Device time (s since the first DATA) of a DATA frame's last sample; -1 for any other
        frame (released at once)."""
        try:
            pkt = P.unframe(frame)
        except ProtocolError:
            return -1.0
        if len(pkt) < P.DATA_HEADER_BYTES or pkt[1] != P.DATA:
            return -1.0
        t0 = _T0.unpack_from(pkt, 6)[0]
        period, n = struct.unpack_from("<HB", pkt, 10)
        if self._t_raw is None:
            self._t_us = t0
            self._t_first_us = t0
        else:
            d = (t0 - self._t_raw) % _WRAP
            if d >= _WRAP // 2:  # time ran backwards: release at once, the assembler counts it
                return -1.0
            self._t_us += d
        self._t_raw = t0
        return (self._t_us + (n - 1) * period - self._t_first_us) * 1e-6

    def read(self, timeout_s: float = 0.1) -> bytes:
        """Every frame whose time has come, waiting at most ``timeout_s``; ``b""`` if none."""
        deadline = time.monotonic() + timeout_s
        while True:
            end = self._buf.find(b"\x00")
            if end < 0:
                if self._ready:
                    break
                if self._ended is not None:
                    raise self._ended
                try:
                    self._buf += self.inner.read(timeout_s)
                except Exception as e:  # SourceClosed and the like: deliver what is left first
                    self._ended = e
                    if self._buf:
                        self._ready += self._buf
                        self._buf.clear()
                        break
                    raise
                continue
            if self._head_t is None:
                self._head_t = self._frame_time_s(bytes(self._buf[:end])) if end > 0 else -1.0
            t = self._head_t
            if t >= 0:
                now = time.monotonic()
                if self._wall0 is None:
                    self._wall0 = now - t / self.speed
                wait = self._wall0 + t / self.speed - now
                if wait > 0:
                    if self._ready or now >= deadline:
                        break
                    time.sleep(min(wait, deadline - now))
                    continue
            self._ready += self._buf[:end + 1]
            del self._buf[:end + 1]
            self._head_t = None
        out = bytes(self._ready)
        self._ready.clear()
        return out
