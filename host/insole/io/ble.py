"""The ``ble://`` source: insoles over Bluetooth Low Energy, on bleak.

==============================  ==================================================================
``ble://``                      every insole advertising the insole service (both feet): expanded
                                by :func:`expand_urls` into one URL per insole found
``ble://Insole-L``              the insole of that name
``ble://E4:CF:12:00:3F:9A``     the insole at that address (Linux and Windows: its MAC; macOS:
                                the CoreBluetooth UUID bleak reports)
==============================  ==================================================================

How it works (docs/ble.md has the reasons):

- One asyncio event loop in one background thread serves every BLE source of the process (bleak's
  advice: one loop; concurrent connects fail on BlueZ, so the feet connect one after the other:
  :meth:`BleSource.open` returns only once its foot is connected and subscribed).
- Scanning filters on the insole service UUID; the ``BLEDevice`` found is handed to the client.
- Connecting goes through bleak-retry-connector's ``establish_connection`` (its retries and
  backoff for transient failures). The notification callbacks only enqueue ``(bytes, host receive
  time)``; decoding happens elsewhere (the recorder stores one notification per record, framing
  ``packets``).
- On connect the INFO characteristic is read and queued first, then DATA, STATUS and CONTROL
  (REPLY) are subscribed, and STATUS is read.
- A link that drops unasked reconnects by itself (rescan by address, ``establish_connection``,
  backoff 0.5 s doubling to 5 s) until the source is closed; the ledger counts disconnects,
  reconnects and seconds disconnected. Packets the device sent while the link was down are a gap
  in ``seq``, never filled.
- The bleak backend is bleak's default for the platform, unless ``INSOLE_BLEAK_BACKEND`` names
  another as ``module:ScannerClass,module:ClientClass`` (the tests' bumble backend); nothing else
  differs between tests and production.
- Security (issue 13): the insole accepts commands and sends its stream only to a bonded host on
  an encrypted link. :func:`pair_insole` bonds (bleak's ``pair()``, inside the insole's pairing
  window) and checks that CONTROL now answers; :func:`unpair_insole` removes the bond (bleak's
  ``unpair()``), optionally after FORGET_BONDS. The operating system keeps the bond and encrypts
  the link when it connects; when the insole refuses a source (ATT Insufficient
  Encryption/Authentication, or a failed pairing) the source raises :class:`NotPairedError`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import logging
import os
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import asdict, dataclass, field
from typing import Any

from insole import protocol as P
from insole.errors import ProtocolError, SourceError
from insole.io.session import FRAMING_PACKETS
from insole.io.sources import Source, SourceClosed

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

SERVICE_UUID = "fb620001-ed75-40c4-ab3f-ac4c69b6bad7"
DATA_UUID = "fb620002-ed75-40c4-ab3f-ac4c69b6bad7"
STATUS_UUID = "fb620003-ed75-40c4-ab3f-ac4c69b6bad7"
INFO_UUID = "fb620004-ed75-40c4-ab3f-ac4c69b6bad7"
CONTROL_UUID = "fb620005-ed75-40c4-ab3f-ac4c69b6bad7"
FIRMWARE_REVISION_UUID = "00002a26-0000-1000-8000-00805f9b34fb"
BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"
NAMES = {"left": "Insole-L", "right": "Insole-R"}
BACKEND_ENV = "INSOLE_BLEAK_BACKEND"

SCAN_TIMEOUT_S = 5.0  # a device advertising every 100 ms is seen within a fraction of this
CONNECT_ATTEMPTS = 3  # per establish_connection call (bleak-retry-connector backs off between)
COMMAND_TIMEOUT_S = 3.0
OPEN_TIMEOUT_S = 90.0  # scan + establish_connection's own retries, with margin
RECONNECT_BACKOFF_S = (0.5, 5.0)  # first wait after a failed reconnect, and the cap
MIN_DATA_MTU = 64  # PROTOCOL.md: a DATA packet must fit one notification
_SEEN_MAX_AGE_S = 30.0

_MAC = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$")
_CB_UUID = re.compile(r"^[0-9A-Fa-f]{8}-([0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}$")


class BleError(SourceError):
    """Bluetooth cannot be used, or no insole answers (one line that says what to do)."""


NOT_PAIRED = "not paired with this laptop: press BOOT for 3 s and run insole pair"
WINDOW_CLOSED = ("the insole's pairing window is closed: press BOOT for 3 s, then run insole pair "
                 "within 60 s")


class NotPairedError(BleError):
    """The insole refuses this host: no bond, or a bond the insole no longer has."""

    def __init__(self, message: str = NOT_PAIRED) -> None:
        super().__init__(message)


# How each backend words a refusal for want of a bond: BlueZ (through bleak's BleakDBusError:
# "Operation failed with ATT error: 0x0f (Insufficient Encryption)", AuthenticationFailed or
# AuthenticationRejected from Device1.Pair), WinRT ("Protocol Error 0x05: Insufficient
# Authentication"), CoreBluetooth (CBATTError "Encryption is insufficient.", "Authentication is
# insufficient.").
_REFUSALS = ("insufficient encryption", "insufficient authentication", "att error: 0x05",
             "att error: 0x0f", "authenticationfailed", "authenticationrejected",
             "authentication failed", "encryption is insufficient",
             "authentication is insufficient", "pin or key missing")


def is_refusal(e: BaseException | None) -> bool:
    """Whether a backend error (or one it was raised from) means "not bonded with this host"."""
    seen = 0
    while e is not None and seen < 8:
        if isinstance(e, NotPairedError):
            return True
        text = f"{type(e).__name__}: {e}".lower()
        if any(r in text for r in _REFUSALS):
            return True
        e = e.__cause__ or e.__context__
        seen += 1
    return False


# --- backend -------------------------------------------------------------------------------------


def backend_classes() -> tuple[type | None, type | None]:
    """The (scanner, client) backend classes ``INSOLE_BLEAK_BACKEND`` names, or (None, None).

    The variable holds ``module:ScannerClass,module:ClientClass``; unset means bleak's default
    backend for the platform (BlueZ, CoreBluetooth, WinRT, Android).
    """
    spec = os.environ.get(BACKEND_ENV, "").strip()
    if not spec:
        return None, None
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) != 2 or not all(":" in p for p in parts):
        raise BleError(f"{BACKEND_ENV}={spec!r}: expected module:ScannerClass,module:ClientClass")
    out = []
    for p in parts:
        mod, _, cls = p.partition(":")
        try:
            out.append(getattr(importlib.import_module(mod), cls))
        except (ImportError, AttributeError) as e:
            raise BleError(f"{BACKEND_ENV}: cannot load {p} ({e})") from e
    return out[0], out[1]


def _backend_kw(which: int) -> dict:
    cls = backend_classes()[which]
    return {} if cls is None else {"backend": cls}


def explain(e: BaseException) -> str:
    """One line saying what went wrong with Bluetooth and what to do about it."""
    text = f"{type(e).__name__}: {e}".lower()
    if isinstance(e, BleError):
        return str(e)
    if "no bluetooth adapters" in text or "adapter" in text and "not found" in text:
        return "no Bluetooth adapter found: plug one in or enable it (Linux: bluetoothctl list)"
    if "notready" in text or "not ready" in text or "powered off" in text or "is off" in text \
            or "poweredoff" in text:
        return "Bluetooth is off: turn it on (Linux: bluetoothctl power on) and try again"
    if "accessdenied" in text or "not authorized" in text or "permission" in text \
            or "unauthorized" in text:
        return ("no permission to use Bluetooth: on Linux join the bluetooth group (or run "
                "bluetoothd's policy allows you); on macOS allow your terminal under Privacy & "
                "Security > Bluetooth")
    if isinstance(e, (FileNotFoundError, ConnectionRefusedError)) or "dbus" in text \
            or "system_bus_socket" in text:
        return ("cannot reach the Bluetooth service (BlueZ over D-Bus): is bluetoothd running "
                "(systemctl status bluetooth) and is there an adapter?")
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return f"Bluetooth error: {first}"


# --- the event loop thread -----------------------------------------------------------------------


class _LoopThread:
    """One asyncio loop in a daemon thread for every BLE object of the process."""

    _lock = threading.Lock()
    _instance: _LoopThread | None = None

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="insole-ble", daemon=True)
        self.tasks: set[asyncio.Task] = set()  # background tasks, kept referenced
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    @classmethod
    def get(cls) -> _LoopThread:
        with cls._lock:
            if cls._instance is None:
                cls._instance = _LoopThread()
            return cls._instance

    def run(self, coro: Coroutine[Any, Any, Any], timeout_s: float) -> Any:
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout_s)
        except concurrent.futures.TimeoutError as e:
            fut.cancel()
            raise BleError(f"Bluetooth did not answer within {timeout_s:g} s") from e

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task:
        """Start a background task (call on the loop's thread)."""
        task = self.loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task


def run_ble(coro: Coroutine[Any, Any, Any], timeout_s: float = OPEN_TIMEOUT_S) -> Any:
    """Run a coroutine on the BLE loop thread and return its result (for tools and tests)."""
    return _LoopThread.get().run(coro, timeout_s)


# --- scanning ------------------------------------------------------------------------------------


@dataclass
class FoundInsole:
    """An insole seen advertising the insole service."""

    name: str | None
    address: str
    rssi_dbm: int | None
    side: str | None
    service_uuids: list[str]
    battery_pct: int | None = None
    firmware: str | None = None
    seen_at_s: float = field(default=0.0, repr=False)
    device: Any = field(default=None, repr=False, compare=False)  # bleak's BLEDevice

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("device")
        d.pop("seen_at_s")
        return d


_SEEN: dict[str, FoundInsole] = {}  # address (upper case) -> last sighting


def side_from_name(name: str | None) -> str | None:
    for side, n in NAMES.items():
        if name == n:
            return side
    return None


def is_address(target: str) -> bool:
    return bool(_MAC.match(target) or _CB_UUID.match(target))


async def scan(name: str | None = None, address: str | None = None,
               timeout_s: float = SCAN_TIMEOUT_S) -> list[FoundInsole]:
    """Insoles advertising the insole service, strongest first.

    Stops early when the one asked for (by name or address) is seen, or, with neither, when a
    left and a right insole have both been seen. Raises :class:`BleError` when Bluetooth cannot
    be used (no adapter, switched off, no permission).
    """
    from bleak import BleakScanner

    found: dict[str, FoundInsole] = {}
    done = asyncio.Event()
    want_addr = address.upper() if address else None

    def on_adv(device, adv) -> None:
        if SERVICE_UUID not in [u.lower() for u in adv.service_uuids]:
            return
        nm = adv.local_name or device.name
        f = FoundInsole(nm, device.address, adv.rssi, side_from_name(nm),
                        list(adv.service_uuids), seen_at_s=time.monotonic(), device=device)
        found[device.address.upper()] = f
        _SEEN[device.address.upper()] = f
        if (want_addr and device.address.upper() == want_addr) or (name and nm == name):
            done.set()
        elif not want_addr and not name and {x.side for x in found.values()} >= {"left", "right"}:
            done.set()

    try:
        scanner = BleakScanner(on_adv, service_uuids=[SERVICE_UUID], **_backend_kw(0))
        async with scanner:
            try:
                await asyncio.wait_for(done.wait(), timeout_s)
            except asyncio.TimeoutError:
                pass
    except BleError:
        raise
    except Exception as e:  # noqa: BLE001 - every backend failure becomes one line
        raise BleError(explain(e)) from e
    out = list(found.values())
    if name:
        out = [f for f in out if f.name == name]
    if want_addr:
        out = [f for f in out if f.address.upper() == want_addr]
    return sorted(out, key=lambda f: -(f.rssi_dbm if f.rssi_dbm is not None else -999))


async def read_details(found: FoundInsole) -> FoundInsole:
    """Connect briefly and read the battery level and firmware revision (None when absent)."""
    from bleak import BleakClient
    from bleak.exc import BleakError

    client = BleakClient(found.device, timeout=10.0, **_backend_kw(1))
    try:
        await client.connect()
    except (BleakError, asyncio.TimeoutError, OSError) as e:
        log.info("%s: could not connect to read details (%s)", found.address, e)
        return found
    try:
        for uuid, attr in ((FIRMWARE_REVISION_UUID, "firmware"), (BATTERY_LEVEL_UUID, "battery")):
            if client.services.get_characteristic(uuid) is None:
                continue
            try:
                v = bytes(await client.read_gatt_char(uuid))
            except (BleakError, asyncio.TimeoutError) as e:
                log.info("%s: reading %s failed (%s)", found.address, attr, e)
                continue
            if attr == "firmware":
                found.firmware = v.decode(errors="replace")
            elif v:
                found.battery_pct = v[0]
    finally:
        await client.disconnect()
    return found


def scan_insoles(timeout_s: float = SCAN_TIMEOUT_S, details: bool = True) -> list[FoundInsole]:
    """Blocking scan for ``insole scan``: every insole, with battery and firmware if ``details``
    (read by connecting to each in turn)."""

    async def go() -> list[FoundInsole]:
        found = await scan(timeout_s=timeout_s)
        if details:
            for f in found:
                await read_details(f)
        return found

    return run_ble(go(), timeout_s + 30.0 * 2 + 10.0)


def expand_urls(urls: list[str], timeout_s: float = SCAN_TIMEOUT_S) -> list[str]:
    """Replace a bare ``ble://`` by one ``ble://ADDRESS`` per insole advertising (left first).

    Other URLs pass through unchanged. Raises :class:`BleError` when none is found, or when two
    insoles claim the same side (then the user must name them).
    """
    out: list[str] = []
    for url in urls:
        if _target(url) != "":
            out.append(url)
            continue
        found = run_ble(scan(timeout_s=timeout_s), timeout_s + 15.0)
        if not found:
            raise BleError("no insole is advertising: switch them on, bring them close, and make "
                           "sure no phone or computer is connected to them")
        by_side: dict[str | None, list[FoundInsole]] = {}
        for f in found:
            by_side.setdefault(f.side, []).append(f)
        for side, fs in by_side.items():
            if side is not None and len(fs) > 1:
                raise BleError(f"{len(fs)} {side} insoles are advertising "
                               f"({', '.join(x.address for x in fs)}): name the one to use, "
                               "ble://ADDRESS")
        order = {"left": 0, "right": 1, None: 2}
        out += [f"ble://{f.address}" for f in sorted(found, key=lambda f: order[f.side])]
    return out


def _target(url: str) -> str | None:
    """What a ble:// URL names ("" for every insole), or None if it is not a ble:// URL."""
    if not url.lower().startswith("ble:"):
        return None
    return url[4:].lstrip("/").split("?")[0].rstrip("/")


# --- decoding one notification per record ---------------------------------------------------------




# --- the source ----------------------------------------------------------------------------------


def source_from_url(url: str) -> BleSource:
    """The (not yet open) source for a ``ble://`` URL; ``ble://`` alone needs :func:`expand_urls`."""
    target = _target(url)
    if not target:
        raise BleError(f"{url}: say which insole (ble://Insole-L, ble://ADDRESS), or record "
                       "both feet with `insole record ble://`")
    if is_address(target):
        return BleSource(url, address=target)
    return BleSource(url, name=target)


class BleSource(Source):
    """One insole over BLE. :meth:`read` returns one notification (one packet) per call."""

    framing = FRAMING_PACKETS
    live = True

    def __init__(self, url: str, name: str | None = None, address: str | None = None) -> None:
        super().__init__(url)
        self.name = name
        self.address = address
        self.label = name or address or url
        self.mtu: int | None = None
        self.last_receive_time_s: float | None = None
        self.disconnects = 0
        self.reconnects = 0
        self.link_events: list[list[float | None]] = []  # [host time down, host time up]
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._replies: deque = deque(maxlen=64)
        self._reply_cv = threading.Condition()
        self._lt: _LoopThread | None = None
        self._client = None
        self._device = None
        self._closing = False
        self._reconnecting: asyncio.Task | None = None
        self._closed_reason: str | None = None

    # --- life cycle ------------------------------------------------------------------------

    def open(self) -> BleSource:
        self._lt = _LoopThread.get()
        self._lt.run(self._open(), OPEN_TIMEOUT_S)
        return self

    async def _find(self, timeout_s: float) -> Any:
        key = (self.address or "").upper()
        seen = _SEEN.get(key) if key else next(
            (f for f in _SEEN.values() if f.name == self.name), None)
        if seen is not None and time.monotonic() - seen.seen_at_s < _SEEN_MAX_AGE_S:
            return seen.device
        found = await scan(name=self.name, address=self.address, timeout_s=timeout_s)
        if not found:
            what = f"named {self.name}" if self.name else f"at {self.address}"
            raise BleError(f"no insole {what} is advertising: switch it on, bring it close, and "
                           "make sure no phone or other computer is connected to it (an insole "
                           "advertises only while unconnected)")
        return found[0].device

    async def _open(self) -> None:
        device = await self._find(SCAN_TIMEOUT_S)
        await self._connect(device)

    async def _connect(self, device) -> None:
        from bleak import BleakClient
        from bleak_retry_connector import establish_connection

        self._device = device
        try:
            client = await establish_connection(
                BleakClient, device, self.label, disconnected_callback=self._on_disconnect,
                max_attempts=CONNECT_ATTEMPTS, **_backend_kw(1))
        except BleError:
            raise
        except Exception as e:  # noqa: BLE001 - one line, with what to do
            if is_refusal(e):
                raise NotPairedError() from e
            raise BleError(f"{self.label}: cannot connect ({explain(e)}); is it connected to "
                           "another phone or computer?") from e
        try:
            self.mtu = client.mtu_size
            if self.mtu < MIN_DATA_MTU:
                log.warning("%s: ATT MTU %d (the insole needs at least %d; some backends "
                            "report 23 whatever was negotiated)", self.label, self.mtu, MIN_DATA_MTU)
            info = bytes(await client.read_gatt_char(INFO_UUID))
            if info:
                self._enqueue(info)
            await client.start_notify(DATA_UUID, self._on_notify)
            await client.start_notify(STATUS_UUID, self._on_notify)
            await client.start_notify(CONTROL_UUID, self._on_control)
            status = bytes(await client.read_gatt_char(STATUS_UUID))
            if status:
                self._enqueue(status)
        except Exception as e:  # noqa: BLE001
            await client.disconnect()
            if is_refusal(e):  # INFO is read-encrypted: the first thing a stranger is refused
                raise NotPairedError() from e
            raise BleError(f"{self.label}: connected but could not subscribe ({explain(e)})") from e
        if not client.is_connected:
            raise BleError(f"{self.label}: the link dropped while subscribing")
        self._client = client
        if self.link_events and self.link_events[-1][1] is None:
            self.link_events[-1][1] = time.time()
            self.reconnects += 1
        log.info("%s: connected (%s, MTU %s)", self.label, client.address, self.mtu)

    def _on_disconnect(self, client) -> None:
        # bleak calls this on the loop thread for a disconnection we did not ask for
        if self._closing or client is not self._client:
            return
        self._client = None
        self.disconnects += 1
        self.link_events.append([time.time(), None])
        log.warning("%s: link lost; reconnecting", self.label)
        self._reconnecting = self._lt.spawn(self._reconnect())

    async def _reconnect(self) -> None:
        wait_s, cap_s = RECONNECT_BACKOFF_S
        while not self._closing:
            try:
                _SEEN.pop((self._device.address if self._device else "").upper(), None)
                device = await self._find(SCAN_TIMEOUT_S)
                await self._connect(device)
                log.warning("%s: reconnected", self.label)
                return
            except NotPairedError as e:
                # the insole no longer knows this host (its bonds were erased or replaced): no
                # retry can help; end the source with the reason
                log.warning("%s: %s", self.label, e)
                self._q.put((None, str(e)))
                return
            except BleError as e:
                log.info("%s: reconnect failed (%s); next try in %.1f s", self.label, e, wait_s)
            await asyncio.sleep(wait_s)
            wait_s = min(cap_s, wait_s * 2)

    def close(self) -> None:
        if self._lt is None or self._closing:
            return
        self._closing = True
        try:
            self._lt.run(self._close(), 15.0)
        except BleError as e:
            log.warning("%s: %s while disconnecting", self.label, e)
        if self.link_events and self.link_events[-1][1] is None:
            self.link_events[-1][1] = time.time()
        self._q.put((None, "closed"))

    async def _close(self) -> None:
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            await client.disconnect()

    # --- data ------------------------------------------------------------------------------

    def _enqueue(self, data: bytes) -> None:
        self._q.put((bytes(data), time.time()))

    def _on_notify(self, characteristic, data: bytearray) -> None:
        self._q.put((bytes(data), time.time()))

    def _on_control(self, characteristic, data: bytearray) -> None:
        now = time.time()
        b = bytes(data)
        self._q.put((b, now))
        with self._reply_cv:
            self._replies.append(b)
            self._reply_cv.notify_all()

    def read(self, timeout_s: float = 0.1) -> bytes:
        """The next notification as received (one packet), ``b""`` if none came in time."""
        if self._closed_reason is not None:
            raise SourceClosed(self._closed_reason)
        try:
            data, t = self._q.get(timeout=timeout_s)
        except queue.Empty:
            return b""
        if data is None:
            self._closed_reason = f"{self.label}: {t}"
            raise SourceClosed(self._closed_reason)
        self.last_receive_time_s = t
        return data

    def drain(self) -> list[tuple[bytes, float]]:
        """Everything received and not yet read, with host receive times, without waiting."""
        out = []
        while True:
            try:
                data, t = self._q.get_nowait()
            except queue.Empty:
                return out
            if data is None:
                self._q.put((None, t))  # keep the end-of-source mark for read()
                return out
            out.append((data, t))

    @property
    def connected(self) -> bool:
        return self._client is not None

    def ledger(self) -> dict:
        """Link counters for the session's data-quality ledger."""
        now = time.time()
        down_s = sum((up if up is not None else now) - down for down, up in self.link_events)
        return {"transport": "ble", "name": self.name, "address":
                getattr(self._device, "address", self.address), "mtu": self.mtu,
                "disconnects": self.disconnects, "reconnects": self.reconnects,
                "disconnected_s": round(down_s, 3),
                "link_events": [[round(a, 3), round(b, 3) if b is not None else None]
                                for a, b in self.link_events]}

    # --- commands --------------------------------------------------------------------------

    def send(self, packet: bytes) -> None:
        """Write one unframed command packet (``protocol.encode(Command(...))``) to CONTROL."""
        client = self._client
        if client is None:
            raise BleError(f"{self.label}: not connected (the link is down; reconnecting)")
        from bleak.exc import BleakError

        async def write() -> None:
            await client.write_gatt_char(CONTROL_UUID, packet, response=True)

        try:
            self._lt.run(write(), COMMAND_TIMEOUT_S * 2)
        except BleakError as e:
            if is_refusal(e):  # CONTROL is write-encrypted
                raise NotPairedError() from e
            raise BleError(f"{self.label}: command not sent ({explain(e)})") from e

    def wait_reply(self, command: int, timeout_s: float = COMMAND_TIMEOUT_S,
                   after: int = 0) -> P.Reply:
        """The first REPLY to ``command`` among those received after the first ``after``."""
        deadline = time.monotonic() + timeout_s
        with self._reply_cv:
            while True:
                for raw in list(self._replies)[after:]:
                    try:
                        r = P.decode(raw)
                    except ProtocolError:
                        continue
                    if isinstance(r, P.Reply) and r.command == command:
                        self._replies.remove(raw)
                        return r
                left = deadline - time.monotonic()
                if left <= 0:
                    name = P.COMMANDS.get(command, f"0x{command:02x}")
                    raise BleError(f"{self.label}: no REPLY to {name} within {timeout_s:g} s")
                self._reply_cv.wait(left)

    def command(self, cmd: P.Command, timeout_s: float = COMMAND_TIMEOUT_S) -> P.Reply:
        """Send a command and wait for its REPLY. After an accepted GET_INFO, SET_RATE or
        SET_SIDE the INFO characteristic is read again and queued, so a recording has it."""
        with self._reply_cv:
            self._replies.clear()
        self.send(P.encode(cmd))
        reply = self.wait_reply(cmd.command, timeout_s)
        if reply.code == P.REPLY_OK and cmd.command in (P.CMD_GET_INFO, P.CMD_SET_RATE,
                                                         P.CMD_SET_SIDE):
            client = self._client
            if client is not None:
                async def reread() -> bytes:
                    return bytes(await client.read_gatt_char(INFO_UUID))

                info = self._lt.run(reread(), COMMAND_TIMEOUT_S * 2)
                if info:
                    self._enqueue(info)
        return reply


# --- pairing ---------------------------------------------------------------------------------------


@dataclass
class PairResult:
    """What :func:`pair_insole` did: ``already`` when the insole already accepted this host."""

    url: str
    address: str
    already: bool


async def _find_device(url: str, timeout_s: float) -> Any:
    target = _target(url)
    if not target:
        raise BleError(f"{url}: say which insole (ble://Insole-L, ble://ADDRESS)")
    src = source_from_url(url)
    return await src._find(timeout_s)


async def _command_on(client, cmd: P.Command, timeout_s: float = COMMAND_TIMEOUT_S) -> P.Reply:
    """Write one command to CONTROL on a connected client and wait for its REPLY."""
    loop = asyncio.get_running_loop()
    got: asyncio.Future = loop.create_future()

    def on_reply(_char, data: bytearray) -> None:
        try:
            r = P.decode(bytes(data))
        except ProtocolError:
            return
        if isinstance(r, P.Reply) and r.command == cmd.command and not got.done():
            got.set_result(r)

    await client.start_notify(CONTROL_UUID, on_reply)
    try:
        await client.write_gatt_char(CONTROL_UUID, P.encode(cmd), response=True)
        try:
            return await asyncio.wait_for(got, timeout_s)
        except asyncio.TimeoutError:
            name = P.COMMANDS.get(cmd.command, hex(cmd.command))
            raise BleError(f"no REPLY to {name} within {timeout_s:g} s") from None
    finally:
        if client.is_connected:
            try:
                await client.stop_notify(CONTROL_UUID)
            except Exception as e:  # noqa: BLE001 - the link may be going away
                log.debug("stop_notify: %s", e)


async def _accepts_commands(client) -> bool:
    """Whether CONTROL takes a GET_INFO from this host (False: refused for want of a bond)."""
    from bleak.exc import BleakError

    try:
        reply = await _command_on(client, P.Command(P.CMD_GET_INFO))
    except BleakError as e:
        if is_refusal(e):
            return False
        raise
    return reply.code == P.REPLY_OK


async def _connect_client(device, label: str):
    from bleak import BleakClient
    from bleak_retry_connector import establish_connection

    try:
        return await establish_connection(BleakClient, device, label,
                                          max_attempts=CONNECT_ATTEMPTS, **_backend_kw(1))
    except Exception as e:  # noqa: BLE001 - one line, with what to do
        raise BleError(f"{label}: cannot connect ({explain(e)}); is it connected to another "
                       "phone or computer?") from e


async def _pair(url: str, timeout_s: float) -> PairResult:
    from bleak.exc import BleakError

    device = await _find_device(url, timeout_s)
    client = await _connect_client(device, url)
    try:
        if await _accepts_commands(client):
            return PairResult(url, device.address, already=True)
        try:
            await client.pair()
        except NotImplementedError:
            # CoreBluetooth has no pairing call: macOS pairs on the first protected access,
            # which the check below makes (the system may ask to confirm)
            pass
        except BleakError as e:
            if is_refusal(e):
                raise BleError(WINDOW_CLOSED) from e
            raise BleError(f"{url}: pairing failed ({explain(e)})") from e
        if not client.is_connected:
            raise BleError(WINDOW_CLOSED)  # the insole dropped the link instead of bonding
        if not await _accepts_commands(client):
            raise BleError(f"{url}: paired, but the insole still refuses this laptop (it may have "
                           f"forgotten an older bond): run insole unpair {url}, then press BOOT "
                           "for 3 s and run insole pair within 60 s")
        return PairResult(url, device.address, already=False)
    finally:
        if client.is_connected:
            await client.disconnect()


async def _unpair(url: str, forget_on_device: bool, timeout_s: float) -> str:
    from bleak import BleakClient
    from bleak.exc import BleakError

    target = _target(url) or ""
    try:
        device = await _find_device(url, timeout_s)
    except BleError:
        if forget_on_device or not is_address(target):
            raise
        device = target  # an insole out of range: the host's bond can still be removed
    if forget_on_device:
        client = await _connect_client(device, url)
        try:
            try:
                reply = await _command_on(client, P.Command(P.CMD_FORGET_BONDS))
            except BleakError as e:
                if is_refusal(e):
                    raise NotPairedError() from e
                raise BleError(f"{url}: FORGET_BONDS not sent ({explain(e)})") from e
            if reply.code != P.REPLY_OK:
                raise BleError(f"{url}: the insole refused FORGET_BONDS (code {reply.code}; "
                               "update the firmware)")
        finally:
            if client.is_connected:
                await client.disconnect()
    client = BleakClient(device, **_backend_kw(1))
    try:
        await client.unpair()
    except NotImplementedError as e:
        raise BleError("macOS keeps bonds itself and bleak cannot remove them: forget the insole "
                       "under System Settings > Bluetooth") from e
    except BleakError as e:
        raise BleError(f"{url}: unpair failed ({explain(e)})") from e
    return getattr(device, "address", str(device))


def pair_insole(url: str, timeout_s: float = SCAN_TIMEOUT_S) -> PairResult:
    """Bond with the insole at ``url`` (it must be inside its pairing window) and check that it
    now takes commands from this host. Raises :class:`BleError` with ``WINDOW_CLOSED`` when the
    insole refuses to pair."""
    return run_ble(_pair(url, timeout_s), OPEN_TIMEOUT_S)


def unpair_insole(url: str, forget_on_device: bool = False,
                  timeout_s: float = SCAN_TIMEOUT_S) -> str:
    """Remove this host's bond with the insole (bleak's ``unpair()``); with
    ``forget_on_device``, first send FORGET_BONDS over the bonded link. Returns the address."""
    return run_ble(_unpair(url, forget_on_device, timeout_s), OPEN_TIMEOUT_S)
