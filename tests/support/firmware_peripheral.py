"""The real firmware as a BLE peripheral on the virtual radio.

The firmware (``firmware/``, unchanged) runs under the MicroPython WebAssembly port on Node
(:mod:`insole.firmware_loop`'s runner), on the fakes of ``machine`` and ``bluetooth``
(``tools/firmware_wasm/fakes``): the fake ADC replays a simulated foot row by row, paced to the
wall clock. A driver inside MicroPython reports what the firmware does to its radio as text
lines on stdout, and plays the central's side of the fake (connect, MTU, writes, disconnect) on
lines read from stdin. Here those lines are bridged to a bumble device on the virtual radio:

    firmware -> bridge   "@@ S svc=char:flags:handle,...;..."   the GATT table it registered
                         "@@ A ADV_HEX RESP_HEX"                 it (re)started advertising
                         "@@ V HANDLE HEX"                       it wrote a characteristic value
                         "@@ N HANDLE HEX"                       it sent a notification
                         "@@ K ID HEX|-|1|0"                     answer to a key store request
                         "@@ X"                                  it dropped the link (gap_disconnect)
                         "@@ B ADDR,ADDR|-"                      its bonded peers changed
                         "@@ O 1|0"                              its pairing window opened/closed
                         "@@ U"                                  the BOOT button was released
    bridge -> firmware   "C ADDR_HEX TYPE" | "M MTU" | "W HANDLE HEX" | "D"
                                                                 a central connected, exchanged
                                                                 the MTU, wrote, disconnected
                         "K ID SET TYPE KEY_HEX VALUE_HEX|-"     bumble's key store writes ...
                         "K ID GET TYPE KEY_HEX"                 ... and reads
                         "E ENCRYPTED BONDED"                    the link's encryption changed
                         "P HELD_MS"                             BOOT held for HELD_MS

The bumble device serves the firmware's own table (its UUIDs, properties and values, its
encryption flags as bumble's READ_/WRITE_REQUIRES_ENCRYPTION permissions), advertises the
firmware's own payloads, and forwards its notifications in order, so a host sees what a phone
would see from a board.

Pairing: bumble runs the security manager (LE Secure Connections, just works, bonding: what the
firmware configures NimBLE for), and the firmware stays the source of truth for bonds: the
bumble device's key store is :class:`_FirmwareKeyStore`, whose writes and reads become the
fake's ``_IRQ_SET_SECRET`` / ``_IRQ_GET_SECRET`` (sec_type 2 and 1, the key the peer's 7-byte
address as NimBLE's ``ble_addr_t``, the value bumble's keys as JSON), and each encryption change
becomes ``_IRQ_ENCRYPTION_UPDATE``. As with NimBLE, a write the firmware refuses (pairing outside
its window) does not fail the pairing: the link is encrypted, the firmware does not trust it and
drops it ("@@ X"). (Unlike NimBLE, bumble encrypts before it stores the keys; the firmware
accepts either order inside its window, see firmware/blelink.py.)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import tempfile
from pathlib import Path

import firmware_loop
import numpy as np
from bumble import hci
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.keys import KeyStore, PairingKeys
from bumble.pairing import PairingConfig, PairingDelegate

from tests.support.radio import VirtualRadio
from tests.support.virtual_insole import ADDRESSES, PREFERRED_MTU

log = logging.getLogger(__name__)

_DRIVER = r"""
import sys, machine, rig, pins
from binascii import hexlify, unhexlify
CH = __CH__
ROWS = __ROWS__
COLS = __COLS__
RATE = __RATE__
units = bytearray(ROWS * CH * 2)
with open("/units.bin", "rb") as f:
    f.readinto(units)
with open("/tmp/settings.txt", "w") as f:
    f.write("side=__SIDE__\nrate_hz=__RATE__\n")
if pins.BATTERY_ADC_GPIO is not None:
    machine.set_uv(pins.BATTERY_ADC_GPIO, 2050000)
machine.set_unique_id(__UID__)
clock = rig.Clock(0)
app, port, radio = rig.make_app(clock, BLE=True, SERIAL_STREAM=False)
t_pre = (__FIRST_US__ - 1000000 // RATE) & 0xFFFFFFFF
app.sampler._slot_lo = t_pre & 0xFFFF
app.sampler._slot_hi = t_pre >> 16
app.start()
out = sys.stdout
gpios = pins.SENSOR_GPIOS
row = 0
drv = rig.Driver(clock, app.poll, poll_every=5)
inbuf = bytearray()
last = {}
adv_seen = [-1]
table_sent = [False]
kicks_seen = [0]
bonds_seen = [None]
window_seen = [None]
press_until = [-1]
CHUNK = __CHUNK__

def emit(s):
    out.write("@@ " + s + "\n")

def hx(b):
    return hexlify(b).decode() if b else "-"

def feed_serial(hex_bytes):
    inbuf.extend(unhexlify(hex_bytes))

def host_events():
    global inbuf
    while True:
        i = inbuf.find(b"\n")
        if i < 0:
            return
        line = bytes(inbuf[:i]).decode().split()
        inbuf = inbuf[i + 1:]
        if not line:
            continue
        if line[0] == "C":
            radio.central_connect(addr=unhexlify(line[1]), addr_type=int(line[2]))
        elif line[0] == "K":
            rid, op, t, key = line[1], line[2], int(line[3]), unhexlify(line[4])
            if op == "SET":
                val = None if line[5] == "-" else unhexlify(line[5])
                emit("K %s %d" % (rid, 1 if radio.smp_store(t, key, val) else 0))
            else:
                emit("K %s %s" % (rid, hx(radio.smp_lookup(t, key))))
        elif line[0] == "E":
            radio.smp_encryption(int(line[1]), int(line[2]))
        elif line[0] == "P":
            machine.set_level(pins.BUTTON_GPIO, 0)
            press_until[0] = clock.ms + int(line[1])
        elif line[0] == "M":
            radio.central_mtu(int(line[1]))
        elif line[0] == "W":
            radio.central_write(int(line[1]), unhexlify(line[2]) if line[2] != "-" else b"")
        elif line[0] == "D":
            if radio.conn is not None:
                radio.central_disconnect()
        app.poll()

def publish():
    if not table_sent[0] and radio.services is not None:
        table_sent[0] = True
        parts = []
        for svc, chars in radio.services:
            parts.append(svc.key() + "=" + ",".join("%s:%d:%d" % (c.key(), fl, h) for c, fl, h in chars))
        emit("S " + ";".join(parts))
    for h in radio._values:
        v = radio._values[h]
        if last.get(h) != v:
            last[h] = v
            emit("V %d %s" % (h, hx(v)))
    if radio.adv_count != adv_seen[0]:
        adv_seen[0] = radio.adv_count
        emit("A %s %s" % (hx(radio.adv_data), hx(radio.resp_data)))
    for conn, h, p in radio.take_notifications():
        emit("N %d %s" % (h, hx(p)))
    if radio.kicks != kicks_seen[0]:
        kicks_seen[0] = radio.kicks
        emit("X")
    b = ",".join(hexlify(k).decode() for k in app.pairing.bonds.keys()) or "-"
    if b != bonds_seen[0]:
        bonds_seen[0] = b
        emit("B " + b)
    w = 1 if app.pairing.window_open() else 0
    if w != window_seen[0]:
        window_seen[0] = w
        emit("O %d" % w)

def button():
    if press_until[0] >= 0 and clock.ms >= press_until[0]:
        app.poll()  # the main loop sees the button still held at the end of the press
        machine.release(pins.BUTTON_GPIO)
        press_until[0] = -1
        emit("U")

def set_row(i):
    o = (row + i) * CH
    for c in range(len(gpios)):
        k = 2 * (o + COLS[c])
        machine.set_uv(gpios[c], (units[k] | (units[k + 1] << 8)) * 100)

def drive_chunk():
    global row
    host_events()
    if row >= ROWS:
        publish()
        return -1
    n = min(CHUNK, ROWS - row)
    drv.run(n, set_row)
    row += n
    button()
    publish()
    return (row * 1000) // RATE
"""


def _uuid(key: str) -> str:
    return key.upper() if len(key) == 4 else key


# NimBLE's store types (MicroPython passes them to _IRQ_GET_SECRET/_IRQ_SET_SECRET).
_OUR_SEC = 1
_PEER_SEC = 2
_KEY_TIMEOUT_S = 10.0
# Bluetooth Core: ATT permissions the firmware's MicroPython flags ask for.
_FLAG_READ_ENCRYPTED = 0x0200
_FLAG_WRITE_ENCRYPTED = 0x1000


def address_key(address: hci.Address) -> bytes:
    """A bumble address as NimBLE's 7-byte ``ble_addr_t``: type (0 public, 1 random), LE bytes."""
    return bytes((0 if address.is_public else 1,)) + bytes(address.address_bytes)


def key_name(key: bytes) -> str:
    """The 7-byte key back to bumble's key store name (``str(hci.Address)``)."""
    text = ":".join(f"{b:02X}" for b in reversed(key[1:7]))
    return text + "/P" if key[0] == 0 else text


def _name_key(name: str) -> bytes:
    public = name.endswith("/P")
    raw = bytes.fromhex(name.split("/")[0].replace(":", ""))
    return bytes((0 if public else 1,)) + raw[::-1]


class _FirmwareKeyStore(KeyStore):
    """The bumble peripheral's key store, kept by the firmware (see the module's docstring)."""

    def __init__(self, fw: FirmwarePeripheral) -> None:
        self.fw = fw

    async def update(self, name: str, keys: PairingKeys) -> None:
        blob = json.dumps(keys.to_dict()).encode()
        for t in (_OUR_SEC, _PEER_SEC):
            stored = await self.fw._key_request("SET", t, _name_key(name), blob)
            if stored != "1":
                log.info("firmware %s refused the keys of %s", self.fw.side, name)
                return  # as NimBLE: the pairing itself is not failed

    async def get(self, name: str) -> PairingKeys | None:
        value = await self.fw._key_request("GET", _OUR_SEC, _name_key(name))
        if value == "-":
            return None
        return PairingKeys.from_dict(json.loads(bytes.fromhex(value)))

    async def delete(self, name: str) -> None:
        for t in (_OUR_SEC, _PEER_SEC):
            await self.fw._key_request("SET", t, _name_key(name), None)

    async def get_all(self) -> list[tuple[str, PairingKeys]]:
        out = []
        for name in self.fw.bonds:
            keys = await self.get(name)
            if keys is not None:
                out.append((name, keys))
        return out


class FirmwarePeripheral:
    """The firmware under MicroPython, fed a simulated foot, as a peripheral on the radio.

    Create and :meth:`start` on the radio's loop; :meth:`stop` ends the node process.
    ``foot`` is a ``SimFoot`` (its readings, side and rate); the firmware paces itself to the
    wall clock (``wall_t0``: the epoch time of the simulation's true time 0, shared by both feet).
    """

    def __init__(self, radio: VirtualRadio, foot, wall_t0: float, speed: float = 1.0,
                 firmware_dir: Path = firmware_loop.FIRMWARE_DIR) -> None:
        self.radio = radio
        self.foot = foot
        self.side = foot.side
        self.wall_t0 = wall_t0
        self.speed = speed
        self.firmware_dir = firmware_dir
        self.values: dict[int, bytes] = {}
        self.table: list[tuple[str, list[tuple[str, int, int]]]] = []
        self.adv: tuple[bytes, bytes] | None = None
        self.notifications = 0
        self.writes = 0
        self.finished = asyncio.Event()
        self.device = None
        self._chars: dict[int, Characteristic] = {}
        self._ready = asyncio.Event()
        self._proc: asyncio.subprocess.Process | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="insole-fwble-")
        self._reader: asyncio.Task | None = None
        self._stderr: Path | None = None
        self._bond_keys: list[bytes] = []
        self._window: bool | None = None
        self._changed = asyncio.Event()
        self._released = asyncio.Event()
        self._key_ids = itertools.count(1)
        self._key_waits: dict[str, asyncio.Future] = {}
        self.dropped_links = 0  # links the firmware ended as untrusted

    @property
    def bonds(self) -> list[str]:
        """The firmware's bonded peers, as bumble names them (``str(hci.Address)``)."""
        return [key_name(k) for k in self._bond_keys]

    @property
    def window_open(self) -> bool:
        """The firmware's pairing window, as it last reported it."""
        return bool(self._window)

    async def press_boot(self, held_s: float = 3.0, timeout_s: float = 30.0) -> None:
        """Hold the board's BOOT button for ``held_s`` (device time, paced to the wall clock),
        as a runner would; returns once the firmware has seen it released (held 3 s or more,
        its pairing window is then open)."""
        self._released.clear()
        self._send(f"P {round(held_s * 1000)}")
        await asyncio.wait_for(self._released.wait(), held_s / self.speed + timeout_s)

    async def _key_request(self, op: str, sec_type: int, key: bytes,
                           value: bytes | None = b"") -> str:
        rid = str(next(self._key_ids))
        fut = asyncio.get_running_loop().create_future()
        self._key_waits[rid] = fut
        tail = "" if op == "GET" else " " + (value.hex() if value else "-")
        self._send(f"K {rid} {op} {sec_type} {key.hex()}{tail}")
        try:
            return await asyncio.wait_for(fut, _KEY_TIMEOUT_S)
        finally:
            self._key_waits.pop(rid, None)

    def _script(self) -> tuple[Path, dict[str, Path]]:
        foot = self.foot
        units = np.ascontiguousarray(foot.units, dtype="<u2")
        rows, chans = units.shape
        board = firmware_loop._board_zones(self.firmware_dir)
        cols = [list(foot.info.zones).index(z) for z in board]
        rate = int(foot.info.rate_hz)
        uid = b"\xa4\xcf\x12\x00\x3f\x9a" if self.side == "left" else b"\xa4\xcf\x12\x00\x3f\x9b"
        src = (_DRIVER.replace("__CH__", str(chans)).replace("__ROWS__", str(rows))
               .replace("__COLS__", repr(tuple(cols))).replace("__RATE__", str(rate))
               .replace("__SIDE__", "1" if self.side == "right" else "0")
               .replace("__UID__", repr(uid)).replace("__CHUNK__", str(max(1, rate // 20)))
               .replace("__FIRST_US__", str(int(foot.t_us[0]) & 0xFFFFFFFF)))
        tmp = Path(self._tmp.name)
        (tmp / "driver.py").write_text(src)
        (tmp / "units.bin").write_bytes(units.tobytes())
        return tmp / "driver.py", {"/units.bin": tmp / "units.bin"}

    async def start(self, timeout_s: float = 30.0) -> None:
        firmware_loop.check_environment()
        script, files = self._script()
        heap_mb = 16 + (self.foot.units.nbytes >> 20) * 2
        cmd = firmware_loop.micropython_command(
            script, self.firmware_dir, files, heap_mb, drive=True, realtime=True,
            speed=self.speed, pacing=firmware_loop._pacing(self.foot, self.wall_t0), stdin=True)
        self._stderr = Path(self._tmp.name) / "stderr.txt"
        with open(self._stderr, "wb") as err:
            self._proc = await asyncio.create_subprocess_exec(
                *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err,
                cwd=firmware_loop.ROOT)
        self._reader = asyncio.create_task(self._read_loop(), name=f"firmware-{self.side}")
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except asyncio.TimeoutError:
            await self.stop()
            raise firmware_loop.FirmwareLoopError(
                f"the firmware did not register its GATT table within {timeout_s:g} s: "
                f"{self.stderr()[-1000:]}") from None
        self.device = dev = self.radio.device(self._name(), ADDRESSES[self.side])
        dev.gatt_server.max_mtu = PREFERRED_MTU
        # What the firmware sets NimBLE to: LE Secure Connections, no MITM (no display or
        # keys: just works), bonding; the keys kept by the firmware.
        dev.keystore = _FirmwareKeyStore(self)
        dev.pairing_config_factory = lambda connection: PairingConfig(
            sc=True, mitm=False, bonding=True,
            delegate=PairingDelegate(
                io_capability=PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT))
        dev.add_services(self._services())
        dev.on(dev.EVENT_CONNECTION, self._on_connection)
        await dev.power_on()
        await self._advertise()

    def stderr(self) -> str:
        try:
            return self._stderr.read_text(errors="replace") if self._stderr else ""
        except OSError:
            return ""

    def _name(self) -> str:
        adv = self.adv[0] if self.adv else b""
        i = 0
        while i + 1 < len(adv):
            n = adv[i]
            if adv[i + 1] == 0x09:
                return adv[i + 2:i + 1 + n].decode()
            i += 1 + n
        return "Insole"

    def _services(self) -> list[Service]:
        out = []
        for svc, chars in self.table:
            cs = []
            for key, flags, handle in chars:
                perms = (Characteristic.READABLE
                         | (Characteristic.READ_REQUIRES_ENCRYPTION
                            if flags & _FLAG_READ_ENCRYPTED else 0)
                         | (Characteristic.WRITEABLE if flags & 0x0C else 0)
                         | (Characteristic.WRITE_REQUIRES_ENCRYPTION
                            if flags & _FLAG_WRITE_ENCRYPTED else 0))
                c = Characteristic(_uuid(key), Characteristic.Properties(flags & 0xFF), perms,
                                   CharacteristicValue(read=lambda conn, h=handle: self.values.get(h, b""),
                                                       write=lambda conn, v, h=handle: self._write(h, v)))
                self._chars[handle] = c
                cs.append(c)
            out.append(Service(_uuid(svc), cs))
        return out

    def _send(self, line: str) -> None:
        if self._proc is not None and self._proc.stdin is not None \
                and self._proc.returncode is None:
            self._proc.stdin.write(line.encode() + b"\n")

    def _write(self, handle: int, value: bytes) -> None:
        self.writes += 1
        self._send(f"W {handle} {bytes(value).hex() or '-'}")

    def _on_connection(self, connection) -> None:
        a = connection.peer_address
        self._send(f"C {bytes(a.address_bytes).hex()} {0 if a.is_public else 1}")
        connection.on(connection.EVENT_CONNECTION_ATT_MTU_UPDATE,
                      lambda: self._send(f"M {connection.att_mtu}"))
        connection.on(connection.EVENT_CONNECTION_ENCRYPTION_CHANGE,
                      lambda: self._send(f"E {1 if connection.is_encrypted else 0} 1"))
        connection.on(connection.EVENT_CONNECTION_ENCRYPTION_FAILURE,
                      lambda error: self._send("E 0 0"))
        connection.on(connection.EVENT_DISCONNECTION, lambda reason: self._on_disconnection())

    def _on_disconnection(self) -> None:
        self._send("D")
        asyncio.ensure_future(self._advertise())

    async def _advertise(self) -> None:
        if self.device is None or self.adv is None or self.finished.is_set():
            return
        if self.device.connections:
            return
        await self.device.start_advertising(
            own_address_type=hci.OwnAddressType.RANDOM, advertising_data=self.adv[0],
            scan_response_data=self.adv[1], advertising_interval_min=20.0,
            advertising_interval_max=20.0)

    async def _read_loop(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            while True:
                line = await self._proc.stdout.readline()
                if not line:
                    break
                if not line.startswith(b"@@ "):
                    log.info("firmware %s: %s", self.side, line.decode(errors="replace").rstrip())
                    continue
                await self._handle(line[3:].decode().split())
        finally:
            self.finished.set()

    async def _handle(self, f: list[str]) -> None:
        def val(s: str) -> bytes:
            return b"" if s == "-" else bytes.fromhex(s)

        kind = f[0]
        if kind == "S":
            for part in f[1].split(";"):
                svc, _, chars = part.partition("=")
                self.table.append((svc, [(k, int(fl), int(h)) for k, fl, h in
                                         (c.split(":") for c in chars.split(","))]))
        elif kind == "V":
            self.values[int(f[1])] = val(f[2])
        elif kind == "A":
            self.adv = (val(f[1]), val(f[2]))
            if self.table:
                self._ready.set()
            await self._advertise()
        elif kind == "N":
            c = self._chars.get(int(f[1]))
            if c is not None and self.device is not None:
                self.notifications += 1
                await self.device.notify_subscribers(c, val(f[2]))
        elif kind == "K":
            fut = self._key_waits.get(f[1])
            if fut is not None and not fut.done():
                fut.set_result(f[2])
        elif kind == "X":
            self.dropped_links += 1
            asyncio.ensure_future(self._drop_links())
        elif kind == "B":
            self._bond_keys = [] if f[1] == "-" else [bytes.fromhex(k) for k in f[1].split(",")]
        elif kind == "O":
            self._window = f[1] == "1"
        elif kind == "U":
            self._released.set()
        if kind in "XBOU":
            self._changed.set()

    async def _drop_links(self) -> None:
        # The firmware ended the link (gap_disconnect): end the bumble connection too.
        if self.device is None:
            return
        for c in list(self.device.connections.values()):
            try:
                await c.disconnect()
            except Exception as e:  # noqa: BLE001 - already going: nothing left to end
                log.debug("firmware %s: disconnect: %s", self.side, e)

    async def wait_until(self, predicate, timeout_s: float = 10.0) -> None:
        """Wait until ``predicate()`` holds, re-checked at each change of the firmware's links,
        bonds or pairing window (TimeoutError after timeout_s)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not predicate():
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), max(0.0, deadline - loop.time()))

    async def stop(self) -> None:
        p = self._proc
        if p is not None and p.returncode is None:
            p.kill()
            await p.wait()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        self.finished.set()
        self._tmp.cleanup()
