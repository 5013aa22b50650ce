"""Stream simulated insoles through pseudo-terminals, paced in real time by device time.

Each foot gets its own pty (``os.openpty``) whose slave side is put in raw mode with echo off
(without raw mode the line discipline rewrites CR/LF and echoes bytes back). Any serial program,
including the host's pyserial sources, can open the slave path. A frame is written when the
device would send it: when the last sample in it has been taken, mapped from the foot's device
clock to the common true time. A pty blocks the writer instead of dropping bytes, so the writer
paces itself; if nobody reads and the pty buffer fills, whole frames are dropped (as a UART with
no reader would lose them) rather than stalling the other foot. Closing the master side at the
end is what a reader sees as "unplugged".
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import select
import termios
import threading
import time
import tty
from dataclasses import dataclass, field

from .device import SimFoot

log = logging.getLogger(__name__)

# How long the writer waits for a reader to drain the rest of a partially written frame.
_PARTIAL_WAIT_S = 2.0
_DRAIN_WAIT_S = 2.0


@dataclass
class Pty:
    """One pseudo-terminal: ``path`` for the reader, ``master`` for the simulator."""

    master: int
    slave: int
    path: str
    frames_sent: int = 0
    frames_dropped: int = 0
    bytes_sent: int = 0
    _closed: bool = field(default=False, repr=False)

    @classmethod
    def open(cls) -> Pty:
        master, slave = os.openpty()
        tty.setraw(slave)
        attrs = termios.tcgetattr(slave)
        attrs[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        os.set_blocking(master, False)
        return cls(master, slave, os.ttyname(slave))

    def write_frame(self, data: bytes, stop: threading.Event) -> bool:
        """Write one whole frame, or drop it if the pty buffer is full; returns True if sent."""
        view = memoryview(data)
        written = 0
        deadline = None
        while written < len(view):
            try:
                written += os.write(self.master, view[written:])
                continue
            except BlockingIOError:
                pass
            except OSError as e:
                if e.errno in (errno.EIO, errno.EBADF):
                    return False
                raise
            if written == 0:
                self.frames_dropped += 1  # nobody reads and the buffer is full
                return False
            # Finish a frame already started, so the stream stays framed.
            deadline = deadline or time.monotonic() + _PARTIAL_WAIT_S
            if stop.is_set() or time.monotonic() > deadline:
                return False
            select.select([], [self.master], [], 0.05)
        self.frames_sent += 1
        self.bytes_sent += len(data)
        return True

    def unread_bytes(self) -> int:
        """Bytes written but not yet read at the slave side."""
        try:
            buf = fcntl.ioctl(self.slave, termios.FIONREAD, b"\0\0\0\0")
        except OSError:
            return 0
        return int.from_bytes(buf, "little")

    def close(self, drain_s: float = _DRAIN_WAIT_S) -> None:
        """Let a reader take what is buffered (up to ``drain_s``), then close: "unplugged"."""
        if self._closed:
            return
        end = time.monotonic() + drain_s
        while self.unread_bytes() and time.monotonic() < end:
            time.sleep(0.02)
        self._closed = True
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


def _pump(foot: SimFoot, port: Pty, t0_wall: float, speed: float, stop: threading.Event) -> None:
    try:
        for t_dev, fr in foot.frames():
            due = t0_wall + foot.true_time_s(t_dev) / speed
            wait = due - time.monotonic()
            if wait > 0 and stop.wait(wait):
                break
            if stop.is_set():
                break
            port.write_frame(fr, stop)
    except Exception:  # a dead writer must not leave the other foot and the CLI hanging
        log.exception("%s: simulator writer failed", foot.side)
        stop.set()


def stream(feet: dict[str, SimFoot], ports: dict[str, Pty], stop: threading.Event,
           speed: float = 1.0) -> None:
    """Write every foot's frames to its pty in real time (``speed`` × faster) until done or
    ``stop`` is set. Returns when all writers have finished; the ports stay open."""
    t0 = time.monotonic()
    threads = [threading.Thread(target=_pump, args=(feet[s], ports[s], t0, speed, stop),
                                name=f"sim-{s}", daemon=True) for s in feet]
    for t in threads:
        t.start()
    try:
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join(2.0)
