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
    bridge -> firmware   "C" | "M MTU" | "W HANDLE HEX" | "D"   a central connected, exchanged
                                                                 the MTU, wrote, disconnected

The bumble device serves the firmware's own table (its UUIDs, properties and values), advertises
the firmware's own payloads, and forwards its notifications in order, so a host sees what a
phone would see from a board.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path

import firmware_loop
import numpy as np
from bumble import hci
from bumble.gatt import Characteristic, CharacteristicValue, Service

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
            radio.central_connect()
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
    publish()
    return (row * 1000) // RATE
"""


def _uuid(key: str) -> str:
    return key.upper() if len(key) == 4 else key


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
                         | (Characteristic.WRITEABLE if flags & 0x0C else 0))
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
        self._send("C")
        connection.on(connection.EVENT_CONNECTION_ATT_MTU_UPDATE,
                      lambda: self._send(f"M {connection.att_mtu}"))
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

    async def stop(self) -> None:
        p = self._proc
        if p is not None and p.returncode is None:
            p.kill()
            await p.wait()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        self.finished.set()
        self._tmp.cleanup()
