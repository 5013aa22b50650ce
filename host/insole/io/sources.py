"""Sources chosen by URL, the way pyserial chooses ports.

==================================  ===========================================================
``serial:///dev/ttyUSB0``           a serial port, opened with ``serial.serial_for_url``
                                    (``?reconnect_s=S``: how long a port that went away is
                                    tried again before it counts as unplugged; default 5, 0 off)
``/dev/ttyUSB0``, ``COM3``          the same, without the scheme
``socket://host:port``, ``loop://``, pyserial's own URL handlers, passed through as they are
``spy://...``, ``rfc2217://...``
``file://capture.bin``              a raw serial capture, replayed (``?realtime=1`` paces it)
``sim://SCENARIO?side=left&seed=3`` the simulator in-process (``duration_s``, ``rate_hz``,
                                    ``realtime=0`` for as fast as possible, fault options)
==================================  ===========================================================

A source only moves bytes: :meth:`Source.read` returns the next chunk exactly as it arrived
(``b""`` on a quiet timeout) and raises :class:`SourceClosed` when the far end is gone (a port
unplugged, a file or simulation at its end). Decoding is the decoder's job.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from insole.errors import SourceError
from insole.io.session import FRAMING_SERIAL

log = logging.getLogger(__name__)

BAUD = 921600
WRITE_TIMEOUT_S = 1.0
# A USB serial adapter pulled and plugged back re-enumerates in 1-3 s; a port that went away is
# opened again for this long before the source ends (``?reconnect_s=`` on a serial:// URL).
RECONNECT_S = 5.0
RECONNECT_POLL_S = 0.1
#: URL beginnings of sources that are a live device (they take commands; an end is an unplug)
LIVE_SCHEMES = ("serial://", "ble://", "socket://", "rfc2217://", "/dev/")
_PYSERIAL_SCHEMES = {"socket", "loop", "spy", "rfc2217", "hwgrep", "alt", "cp2110"}


class SourceClosed(Exception):
    """The source has ended: port unplugged, end of file, end of simulation."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Source:
    """Base class: a byte source with a URL."""

    framing = FRAMING_SERIAL
    #: True when the bytes come from a real port (so an end is an unplug, not an end of file)
    live = True

    def __init__(self, url: str) -> None:
        self.url = url

    def open(self) -> Source:
        return self

    def read(self, timeout_s: float = 0.1) -> bytes:
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        raise SourceError(f"{self.url}: this source does not accept commands")

    def send(self, packet: bytes) -> None:
        """Send one encoded packet (a command) to the device, framed as this link needs.

        Serial links frame it (COBS + CRC, :func:`insole.protocol.frame`); a packet link (BLE)
        writes it as it is.
        """
        from insole import protocol as P

        self.write(P.frame(packet) if self.framing == FRAMING_SERIAL else packet)

    def close(self) -> None:
        pass

    def __enter__(self) -> Source:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()


class SerialSource(Source):
    """A serial port (or any pyserial URL).

    A port that fails under a read (the cable pulled, the pty closed) is opened again by the
    same name for up to ``reconnect_s`` seconds; while it is away :meth:`read` returns ``b""``
    and :attr:`connected` is False. :meth:`ledger` counts disconnects, reconnects and the
    seconds disconnected (the recorder writes it into the session, the analysis reports it);
    what the device sent while the port was away is a gap, never filled. A port not back in
    time ends the source (:class:`SourceClosed`).
    """

    def __init__(self, url: str, port: str, reconnect_s: float = RECONNECT_S) -> None:
        super().__init__(url)
        self.port = port
        self.reconnect_s = reconnect_s
        self._ser = None
        self.disconnects = 0
        self.reconnects = 0
        self._down_since: float | None = None
        self._down_reason = ""
        self._down_total_s = 0.0

    @property
    def connected(self) -> bool:
        return self._down_since is None

    def ledger(self) -> dict:
        down_s = self._down_total_s
        if self._down_since is not None:
            down_s += time.monotonic() - self._down_since
        return {"disconnects": self.disconnects, "reconnects": self.reconnects,
                "disconnected_s": round(down_s, 3)}

    def _open_port(self):
        import serial

        # write_timeout: a port nobody drains (or a dead USB link) must not block a command
        return serial.serial_for_url(self.port, baudrate=BAUD, timeout=0.1,
                                     write_timeout=WRITE_TIMEOUT_S)

    def open(self) -> SerialSource:
        import serial

        try:
            self._ser = self._open_port()
        except (serial.SerialException, ValueError, OSError) as e:
            raise SourceError(f"cannot open {self.port}: {_short(e)}") from e
        return self

    def _lost(self, e: Exception) -> bytes:
        """The port failed under us: close it and try it again (or end, without reconnect_s)."""
        reason = f"{self.port} closed ({_short(e)})"
        ser, self._ser = self._ser, None
        try:
            ser.close()
        except Exception:  # noqa: BLE001 - a port that just failed may fail closing too
            pass
        if self.reconnect_s <= 0 or not self.live:
            raise SourceClosed(reason) from e
        self.disconnects += 1
        self._down_since = time.monotonic()
        self._down_reason = reason
        log.warning("%s; opening it again for up to %g s", reason, self.reconnect_s)
        return b""

    def _reopen(self, timeout_s: float) -> bytes:
        import serial

        end = time.monotonic() + max(timeout_s, 0.0)
        while True:
            try:
                self._ser = self._open_port()
            except (serial.SerialException, ValueError, OSError):
                now = time.monotonic()
                if now - self._down_since >= self.reconnect_s:
                    self._down_total_s += now - self._down_since
                    self._down_since = None
                    raise SourceClosed(f"{self._down_reason}; not back within "
                                       f"{self.reconnect_s:g} s") from None
                if now >= end:
                    return b""
                time.sleep(min(RECONNECT_POLL_S, end - now))
                continue
            self._down_total_s += time.monotonic() - self._down_since
            self._down_since = None
            self.reconnects += 1
            log.warning("%s: open again after %d disconnect(s)", self.port, self.disconnects)
            return b""

    def read(self, timeout_s: float = 0.1) -> bytes:
        import serial

        if self._down_since is not None:
            return self._reopen(timeout_s)
        ser = self._ser
        if ser is None:
            raise SourceError(f"{self.url}: not open")
        try:
            if ser.timeout != timeout_s:  # a property set: a round trip on rfc2217://, so only on change
                ser.timeout = timeout_s
            # return as soon as anything is there (the live analysis wants each frame when it
            # comes), waiting up to the timeout for the first byte only
            waiting = ser.in_waiting
            if waiting:
                return ser.read(waiting)
            first = ser.read(1)
            return first + ser.read(ser.in_waiting) if first else first
        except (serial.SerialException, OSError) as e:
            return self._lost(e)

    def write(self, data: bytes) -> None:
        import serial

        if self._down_since is not None:
            raise SourceError(f"{self.port}: the port is away (reconnecting)")
        if self._ser is None:
            raise SourceError(f"{self.url}: not open")
        try:
            self._ser.write(data)
        except serial.SerialTimeoutException as e:
            raise SourceError(f"{self.port}: write timed out after {WRITE_TIMEOUT_S:g} s "
                              "(is the device reading its port?)") from e
        except (serial.SerialException, OSError) as e:
            raise SourceClosed(f"{self.port} closed ({_short(e)})") from e

    def close(self) -> None:
        if self._ser is not None:
            try:
                self._ser.close()
            except OSError:
                pass
            self._ser = None


class FileSource(Source):
    """A raw serial capture replayed in chunks, optionally at its recorded pace."""

    live = False

    def __init__(self, url: str, path: str, realtime: bool = False, chunk: int = 4096) -> None:
        super().__init__(url)
        self.path = Path(path)
        self.realtime = realtime
        self.chunk = chunk
        self._f = None
        self._bytes_per_s = 20_000.0  # pacing for realtime replay; about one foot at 500 Hz

    def open(self) -> FileSource:
        try:
            self._f = self.path.open("rb")
        except OSError as e:
            raise SourceError(f"cannot open {self.path}: {e.strerror}") from e
        return self

    def read(self, timeout_s: float = 0.1) -> bytes:
        data = self._f.read(self.chunk)
        if not data:
            raise SourceClosed(f"end of {self.path}")
        if self.realtime:
            time.sleep(len(data) / self._bytes_per_s)
        return data

    def close(self) -> None:
        if self._f:
            self._f.close()
            self._f = None


class SimSource(Source):
    """The simulator in-process, one foot, delivering framed bytes in device-time order."""

    live = False

    def __init__(self, url: str, scenario: str, params: dict[str, str]) -> None:
        super().__init__(url)
        self.scenario = scenario
        self.params = params
        self._it = None
        self._t_start = None

    def open(self) -> SimSource:
        from insole import sim

        p = dict(self.params)
        try:
            side = p.pop("side", "left")
            duration_s = float(p.pop("duration_s", 60))
            rate_hz = int(p.pop("rate_hz", 500))
            seed = int(p.pop("seed", 1))
            self.realtime = p.pop("realtime", "1") not in ("0", "false", "no")
            mass = p.pop("body_mass_kg", None)
            faults = {}
            for k, v in p.items():
                if k not in sim.FAULT_OPTIONS:
                    known = ", ".join(("side", "duration_s", "rate_hz", "seed", "realtime",
                                       "body_mass_kg", *sim.FAULT_OPTIONS))
                    raise SourceError(f"{self.url}: unknown parameter {k!r}; known: {known}")
                if k == "disconnect_sensor":
                    faults[k] = v
                elif k == "overrun_at":
                    faults[k] = [float(x) for x in v.split(",")]
                else:
                    faults[k] = float(v)
        except ValueError as e:
            raise SourceError(f"{self.url}: bad parameter ({e})") from e
        foot = sim.simulate(self.scenario, side, duration_s, rate_hz=rate_hz, seed=seed,
                            body_mass_kg=float(mass) if mass else None, **faults)
        self._it = iter(foot.frames())
        self._t_start = time.monotonic()
        self._t_first = None
        return self

    def read(self, timeout_s: float = 0.1) -> bytes:
        out = bytearray()
        deadline = time.monotonic() + timeout_s
        for t_dev, frame in self._it:
            if self._t_first is None:
                self._t_first = t_dev
            if self.realtime:
                wait = (t_dev - self._t_first) - (time.monotonic() - self._t_start)
                if wait > 0:
                    time.sleep(wait)
            out += frame
            if len(out) >= 4096 or (self.realtime and time.monotonic() >= deadline):
                return bytes(out)
        if out:
            return bytes(out)
        raise SourceClosed("end of simulation")


def _short(e: Exception) -> str:
    s = str(e).strip() or type(e).__name__
    return s.splitlines()[0]


def open_source(url: str) -> Source:
    """Make (not yet open) the source a URL names. Raises SourceError for an unknown scheme."""
    if "://" not in url:
        if url.startswith("/dev/") or url.upper().startswith("COM"):
            return SerialSource(url, url)
        if Path(url).is_file():
            return FileSource(url, url)
        raise SourceError(f"{url!r} is not a source URL: use serial:///dev/ttyUSB0, "
                          "file://capture.bin or sim://easy-run?side=left")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if scheme == "serial":
        port = (parts.netloc + parts.path) or ""
        if not port:
            raise SourceError(f"{url}: no port given (serial:///dev/ttyUSB0)")
        unknown = sorted(set(query) - {"reconnect_s"})
        if unknown:
            raise SourceError(f"{url}: unknown parameter(s) {', '.join(unknown)}; known: reconnect_s")
        try:
            reconnect_s = float(query.get("reconnect_s", RECONNECT_S))
        except ValueError:
            raise SourceError(f"{url}: reconnect_s must be a number of seconds") from None
        if not 0.0 <= reconnect_s <= 86400.0:
            raise SourceError(f"{url}: reconnect_s must be 0-86400 s, got {reconnect_s:g}")
        return SerialSource(url, port, reconnect_s)
    if scheme in _PYSERIAL_SCHEMES:
        return SerialSource(url, url)
    if scheme == "file":
        path = parts.netloc + parts.path
        return FileSource(url, path, realtime=query.get("realtime", "0") in ("1", "true", "yes"))
    if scheme == "sim":
        scenario = parts.netloc or parts.path.strip("/")
        if not scenario:
            raise SourceError(f"{url}: no scenario given (sim://easy-run?side=left)")
        return SimSource(url, scenario, query)
    if scheme == "ble":
        from insole.io.ble import source_from_url

        return source_from_url(url)
    raise SourceError(f"{url}: unknown scheme {scheme!r} (serial, ble, file, sim, socket, loop, spy)")
