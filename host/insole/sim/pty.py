"""Stream simulated insoles through pseudo-terminals, paced in real time by device time.

Each foot gets its own pty (``os.openpty``) whose slave side is put in raw mode with echo off
(without raw mode the line discipline rewrites CR/LF and echoes bytes back). Any serial program,
including the host's pyserial sources, can open the slave path. A frame is written when the
device would send it: when the last sample in it has been taken, mapped from the foot's device
clock to the common true time. A pty blocks the writer instead of dropping bytes, so the writer
paces itself; if nobody reads and the pty buffer fills, whole frames are dropped (as a UART with
no reader would lose them) rather than stalling the other foot. Closing the master side at the
end is what a reader sees as "unplugged".

A port can also be unplugged and plugged back mid-run (``replugs``): the pty is closed (a
reader's next read fails as on a pulled USB cable), the device keeps sampling and its frames
for the gap go nowhere, then a new pty opens. Its ``/dev/pts/N`` differs, so such a port is
given to the reader as a symbolic link that is removed while unplugged and made again to the
new pty, as udev's ``/dev/serial/by-id/...`` links behave for a real USB serial adapter.

Like the firmware, the simulated device answers every command written to the port with exactly
one REPLY: GET_INFO (REPLY, then INFO: opening a port discards the INFO sent at the start, so a
host asks again), START and STOP (DATA pauses; STATUS goes on with ``streaming`` 0), IDENTIFY,
SET_SIDE (ok for its own side, busy for the other), SET_RATE (ok for its own rate, 3 out of range,
4 busy for another rate: a simulated run's rate is fixed by ``--rate-hz``), 1 for an unknown
command and 2 for a bad length.
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
from collections import Counter
from dataclasses import dataclass, field, replace

from insole import protocol as P
from insole.sim.device import SimFoot

log = logging.getLogger(__name__)

# How long the writer waits for a reader to drain the rest of a partially written frame.
_PARTIAL_WAIT_S = 2.0
_DRAIN_WAIT_S = 2.0


def _open_raw() -> tuple[int, int]:
    master, slave = os.openpty()
    tty.setraw(slave)
    attrs = termios.tcgetattr(slave)
    attrs[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    os.set_blocking(master, False)
    return master, slave


def _link(target: str, link: str) -> None:
    tmp = f"{link}.new"
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    os.symlink(target, tmp)
    os.replace(tmp, link)


@dataclass
class Pty:
    """One pseudo-terminal: ``path`` for the reader, ``master`` for the simulator.

    ``path`` is the pty's own ``/dev/pts/N``, or a symbolic link to it when the port was opened
    with ``link`` (needed to unplug and plug it back: see :meth:`unplug`, :meth:`plug`).
    """

    master: int
    slave: int
    path: str
    link: str | None = None
    frames_sent: int = 0
    frames_dropped: int = 0
    frames_unplugged: int = 0  # frames the device sent while the port was unplugged
    bytes_sent: int = 0
    replugs: int = 0
    #: wait for the reader instead of dropping a frame when the buffer is full (a run fed as
    #: fast as the reader takes it, bench/live_memory.py); default: drop, as a UART would
    wait_for_reader: bool = False
    _closed: bool = field(default=False, repr=False)
    _unplugged: bool = field(default=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def open(cls, link: str | None = None) -> Pty:
        master, slave = _open_raw()
        if link is not None:
            _link(os.ttyname(slave), link)
        return cls(master, slave, link or os.ttyname(slave), link)

    @property
    def unplugged(self) -> bool:
        return self._unplugged

    def unplug(self) -> None:
        """The cable is pulled: the link goes, the pty closes (a reader's read fails)."""
        if self.link is None:
            raise ValueError("only a port opened with a link can be plugged back")
        with self._lock:
            if self._unplugged or self._closed:
                return
            self._unplugged = True
            try:
                os.unlink(self.link)
            except FileNotFoundError:
                pass
            for fd in (self.master, self.slave):
                try:
                    os.close(fd)
                except OSError:
                    pass

    def plug(self) -> None:
        """The cable is back: a new pty behind the same link."""
        with self._lock:
            if not self._unplugged or self._closed:
                return
            self.master, self.slave = _open_raw()
            _link(os.ttyname(self.slave), self.link)
            self._unplugged = False
            self.replugs += 1

    def write_frame(self, data: bytes, stop: threading.Event) -> bool:
        """Write one whole frame, or drop it if the pty buffer is full; returns True if sent."""
        with self._lock:  # frames from the stream and from command replies never interleave
            if self._unplugged:
                self.frames_unplugged += 1
                return False
            return self._write_frame(data, stop)

    def _write_frame(self, data: bytes, stop: threading.Event) -> bool:
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
            if written == 0 and not self.wait_for_reader:
                self.frames_dropped += 1  # nobody reads and the buffer is full
                return False
            if written == 0:
                if stop.is_set():
                    return False
                select.select([], [self.master], [], 0.05)
                continue
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
        if self._unplugged:
            return 0
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
        with self._lock:
            self._closed = True
            if self.link is not None:
                try:
                    os.unlink(self.link)
                except FileNotFoundError:
                    pass
            if self._unplugged:
                return
            for fd in (self.master, self.slave):
                try:
                    os.close(fd)
                except OSError:
                    pass


class Device:
    """The simulated device's command handler and state (one per foot)."""

    def __init__(self, foot: SimFoot, port: Pty, replugs: list[tuple[float, float]] | None = None,
                 log_delivered: bool = False) -> None:
        self.foot = foot
        self.port = port
        self.streaming = True
        self.commands = 0
        #: (device time s, gap s): unplug the port then, plug it back after the gap
        self.replugs = sorted(replugs or [])
        #: sample sets in DATA frames written whole: undamaged, and after a garbage burst (which
        #: may or may not have cost the frame); with ``log_delivered``, their (t0_us, n_sets)
        self.sets_sent = 0
        self.sets_after_garbage = 0
        self.delivered: list[tuple[int, int, str]] | None = [] if log_delivered else None
        #: frames written, by what the transport did to them (sent, corrupt, garbage)
        self.fates: Counter[str] = Counter()
        self._decoder = P.StreamDecoder()

    def reply_code(self, pkt: bytes) -> tuple[int, int, bool]:
        """(command type, REPLY code, send INFO after the REPLY?) for one received packet."""
        t = pkt[1] if len(pkt) >= 2 else 0
        if len(pkt) < 2 or pkt[0] != P.VERSION or t not in P.COMMANDS:
            return t, P.REPLY_UNKNOWN_COMMAND, False
        if len(pkt) != 2 + P.COMMAND_ARG_BYTES[t]:
            return t, P.REPLY_BAD_LENGTH, False
        if t == P.CMD_START:
            self.streaming = True
        elif t == P.CMD_STOP:
            self.streaming = False
        elif t == P.CMD_GET_INFO:
            return t, P.REPLY_OK, True
        elif t == P.CMD_SET_RATE:
            rate = int.from_bytes(pkt[2:4], "little")
            if not P.RATE_MIN_HZ <= rate <= P.RATE_MAX_HZ:
                return t, P.REPLY_OUT_OF_RANGE, False
            if rate != self.foot.rate_hz:
                return t, P.REPLY_BUSY, False
        elif t == P.CMD_SET_SIDE:
            if pkt[2] > 1:
                return t, P.REPLY_OUT_OF_RANGE, False
            if P.SIDES[pkt[2]] != self.foot.side:
                return t, P.REPLY_BUSY, False
        elif t == P.CMD_FORGET_BONDS:
            pass  # the simulated device keeps no BLE bonds; over a cable it always accepts
        return t, P.REPLY_OK, False

    def feed(self, data: bytes, stop: threading.Event) -> None:
        """Bytes the host wrote to the port: answer each command in them."""
        out: list = []
        self._decoder.feed_raw(data, out, as_bytes=True)
        for pkt in out:
            self.commands += 1
            t, code, info = self.reply_code(pkt)
            self.port.write_frame(P.frame(P.Reply(t, code)), stop)
            if info:
                self.port.write_frame(P.frame(self.foot.info), stop)


def _listen(dev: Device, stop: threading.Event) -> None:
    while not stop.is_set():
        port = dev.port
        if port.unplugged:
            stop.wait(0.05)
            continue
        fd = port.master
        try:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            data = os.read(fd, 4096)
        except BlockingIOError:
            continue
        except (OSError, ValueError):
            if port.unplugged or port.master != fd:
                continue  # unplugged (and maybe back) under us: listen to the new pty
            return  # the port is closed
        if data:
            dev.feed(data, stop)


def _pump(dev: Device, t0_wall: float, speed: float, stop: threading.Event) -> None:
    foot, port = dev.foot, dev.port
    replugs = list(dev.replugs)
    back_at = None
    try:
        for t_dev, fr, pkt, fate in foot.frames_with_fate():
            due = t0_wall + foot.true_time_s(t_dev) / speed
            wait = due - time.monotonic()
            if wait > 0 and stop.wait(wait):
                break
            if stop.is_set():
                break
            if back_at is not None and t_dev >= back_at:
                port.plug()
                back_at = None
            if replugs and t_dev >= replugs[0][0]:
                at, gap = replugs.pop(0)
                port.unplug()
                back_at = at + gap
            if not dev.streaming:
                if isinstance(pkt, P.Data):
                    continue  # stopped: no DATA (its seq numbers are skipped)
                if isinstance(pkt, P.Status):
                    fr = P.frame(replace(pkt, streaming=0))
            written = port.write_frame(fr, stop)
            if written:
                dev.fates[fate] += 1
            if written and isinstance(pkt, P.Data) and fate != "corrupt":
                if fate == "sent":
                    dev.sets_sent += pkt.n_sets
                else:
                    dev.sets_after_garbage += pkt.n_sets
                if dev.delivered is not None:
                    dev.delivered.append((pkt.t0_us, pkt.n_sets, fate))
        if back_at is not None:
            port.plug()
    except Exception:  # a dead writer must not leave the other foot and the CLI hanging
        log.exception("%s: simulator writer failed", foot.side)
        stop.set()


def stream(feet: dict[str, SimFoot], ports: dict[str, Pty], stop: threading.Event,
           speed: float = 1.0, devices: dict[str, Device] | None = None) -> None:
    """Write every foot's frames to its pty in real time (``speed`` × faster) until done or
    ``stop`` is set. Returns when all writers have finished; the ports stay open.

    ``devices``: the :class:`Device` of each foot, made by the caller to unplug its port mid-run
    (``replugs``) or to count what it delivered; default: plain ones."""
    t0 = time.monotonic()
    devices = devices or {s: Device(feet[s], ports[s]) for s in feet}
    threads = [threading.Thread(target=_pump, args=(devices[s], t0, speed, stop),
                                name=f"sim-{s}", daemon=True) for s in feet]
    listeners = [threading.Thread(target=_listen, args=(devices[s], stop), name=f"sim-{s}-cmd",
                                  daemon=True) for s in feet]
    for t in threads + listeners:
        t.start()
    try:
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(0.2)
    finally:
        stop.set()
        for t in threads + listeners:
            t.join(2.0)
