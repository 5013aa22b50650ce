"""A virtual insole on the virtual radio, fed by the simulator: fast, and with ground truth.

It serves the GATT table of PROTOCOL.md ("BLE"): the insole service (DATA notify, STATUS
read/notify, INFO read, CONTROL write/notify), Device Information, Battery and Running Speed and
Cadence; it advertises its name and the insole service UUID (scan response: name, appearance,
the 16-bit services), as the firmware does.

Timing: the simulated foot's packets go out when the wall clock reaches their true time divided
by ``speed`` (``speed=8``: a 2-minute run in 15 s). Like the firmware, the device keeps sampling
while no central listens: DATA packets made then are counted (``seq`` advances) and lost, so a
dropped link leaves a gap in ``seq`` on the host. ``sent_seqs`` lists every DATA packet handed to
the link, ``unsent_seqs`` every one made while nobody was subscribed; ``link_down`` the device
times (s since the first sample) of each interval with no subscribed central.

Commands on CONTROL get exactly one REPLY each: START, STOP, SET_RATE (25-1000 Hz, re-simulated
at the new rate from the current device time), GET_INFO (INFO characteristic refreshed),
IDENTIFY, SET_SIDE (name and INFO change), FORGET_BONDS (docs/ble.md); anything else: unknown
command / bad length.

Security, as docs/ble.md and the firmware do it (issue 13), with bumble's own SMP: LE Secure
Connections, "just works" (no input, no output), bonding. A new bond is accepted only while the
pairing window is open: while the insole has no bond at all, or for ``window_s`` (60 s, a
parameter so tests need not wait a minute) after :meth:`press_boot` (the BOOT button held 3 s);
the window closes as soon as one new bond is stored. At most ``bond_limit`` (4) bonds; a fifth
replaces the oldest. CONTROL is write-encrypted, INFO and STATUS read-encrypted (bumble's
attribute permissions answer an unencrypted access with ATT Insufficient Encryption, 0x0F);
DATA, STATUS and REPLY are notified only to a bonded central on an encrypted link; Device
Information, Battery and RSC stay open. The bonds live in a bumble keystore: in memory, or in
the JSON file ``keystore_path`` (namespace: the insole's address), so a "reboot" (a new
VirtualInsole on the same file) keeps them, as the firmware keeps them in flash.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from dataclasses import dataclass, field

from bumble import hci
from bumble.core import AdvertisingData
from bumble.device import Connection
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.keys import JsonKeyStore, KeyStore, MemoryKeyStore, PairingKeys
from bumble.pairing import PairingConfig, PairingDelegate

from insole import protocol as P
from insole import sim
from tests.support.radio import VirtualRadio

log = logging.getLogger(__name__)

SERVICE_UUID = "fb620001-ed75-40c4-ab3f-ac4c69b6bad7"
DATA_UUID = "fb620002-ed75-40c4-ab3f-ac4c69b6bad7"
STATUS_UUID = "fb620003-ed75-40c4-ab3f-ac4c69b6bad7"
INFO_UUID = "fb620004-ed75-40c4-ab3f-ac4c69b6bad7"
CONTROL_UUID = "fb620005-ed75-40c4-ab3f-ac4c69b6bad7"
PREFERRED_MTU = 247  # what the firmware asks for (PROTOCOL.md)
ADV_INTERVAL_MS = 20.0  # short, so tests reconnect quickly (the firmware uses 100 ms)
APPEARANCE_IN_SHOE = 0x0441
# random static addresses (two top bits set): bumble's virtual link routes LE data by the
# random address, so the peripherals advertise with it
ADDRESSES = {"left": "E4:CF:12:00:3F:9A", "right": "E4:CF:12:00:3F:9B"}

_R = Characteristic.Properties.READ
_N = Characteristic.Properties.NOTIFY
_W = Characteristic.Properties.WRITE
_WNR = Characteristic.Properties.WRITE_WITHOUT_RESPONSE
_READABLE = Characteristic.READABLE
_WRITEABLE = Characteristic.WRITEABLE
_READ_ENC = Characteristic.READ_REQUIRES_ENCRYPTION
_WRITE_ENC = Characteristic.WRITE_REQUIRES_ENCRYPTION

PAIRING_WINDOW_S = 60.0  # the contract's window after a BOOT press (docs/ble.md)
BOOT_HOLD_S = 3.0  # how long BOOT must be held to open it
BOND_LIMIT = 4  # stored bonds; a new one beyond this replaces the oldest


def _ad(kind: int, payload: bytes) -> bytes:
    return bytes((len(payload) + 1, kind)) + payload


def advertising_data(name: str) -> bytes:
    uuid_le = bytes(reversed(bytes.fromhex(SERVICE_UUID.replace("-", ""))))
    return (_ad(AdvertisingData.FLAGS, b"\x06")
            + _ad(AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS, uuid_le)
            + _ad(AdvertisingData.COMPLETE_LOCAL_NAME, name.encode()))


def scan_response_data(name: str) -> bytes:
    return (_ad(AdvertisingData.COMPLETE_LOCAL_NAME, name.encode())
            + _ad(AdvertisingData.APPEARANCE, struct.pack("<H", APPEARANCE_IN_SHOE))
            + _ad(AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                  struct.pack("<HHH", 0x1814, 0x180A, 0x180F)))


@dataclass
class Drop:
    """Drop the link at device time ``at_s`` (s since the first sample)."""

    at_s: float
    done: bool = field(default=False)


class _WindowDelegate(PairingDelegate):
    """Just works (no input, no output); a pairing request is accepted only inside the window."""

    def __init__(self, insole: VirtualInsole) -> None:
        super().__init__(io_capability=PairingDelegate.NO_OUTPUT_NO_INPUT)
        self.insole = insole

    async def accept(self) -> bool:
        ok = self.insole.window_open
        if not ok:
            self.insole.pairings_refused += 1
        return ok


class VirtualInsole:
    """One simulated foot as a BLE peripheral. Create and :meth:`start` on the radio's loop."""

    def __init__(self, radio: VirtualRadio, side: str, scenario: str = "easy-run",
                 duration_s: float = 60.0, seed: int = 1, speed: float = 1.0, rate_hz: int = 500,
                 drops_at_s: tuple[float, ...] = (), wall_t0: float | None = None,
                 firmware: str = sim.device.FIRMWARE, stream_on_boot: bool = True,
                 keystore_path: str | None = None, window_s: float = PAIRING_WINDOW_S,
                 bond_limit: int = BOND_LIMIT, max_centrals: int = 1,
                 hold: bool = False) -> None:
        self.radio = radio
        self.side = side
        self.scenario = scenario
        self.duration_s = duration_s
        self.seed = seed
        self.speed = speed
        self.rate_hz = rate_hz
        self.drops = [Drop(t) for t in sorted(drops_at_s)]
        self.wall_t0 = wall_t0
        self.firmware = firmware
        self.streaming = stream_on_boot
        self.name = "Insole-L" if side == "left" else "Insole-R"
        self.address = ADDRESSES[side]
        self.foot = sim.simulate(scenario, side, duration_s, rate_hz=rate_hz, seed=seed)
        self.info_bytes = P.encode(self.foot.info)
        self.status_bytes = b""
        self.control_bytes = b""
        self.sent_seqs: list[int] = []
        self.unsent_seqs: list[int] = []
        self.replies: list[bytes] = []
        self.link_down: list[list[float]] = []  # [device s when down, device s when up]
        self.identify_count = 0
        self.connections = 0
        self.finished = asyncio.Event()
        self._seq = 0
        self._packets = [(t, p) for t, p in self.foot.packets() if not isinstance(p, P.Info)]
        self._i = 0
        self._t_dev_s = 0.0
        self._task: asyncio.Task | None = None
        self.device = None
        self._aloop: asyncio.AbstractEventLoop | None = None
        # hold: advertise and pair, but make no packets until release() (tests that pair first)
        self._go = asyncio.Event()
        if not hold:
            self._go.set()
        # security
        self.keystore_path = keystore_path
        self.window_s = window_s
        self.bond_limit = bond_limit
        # the firmware serves one central and advertises only while it has none; 2 lets a
        # second central in beside a recording (tests of the GATT security on its own)
        self.max_centrals = max_centrals
        self.keystore: KeyStore = (JsonKeyStore(self.address, keystore_path) if keystore_path
                                   else MemoryKeyStore())
        self._bonds: list[str] = []  # peer identity addresses, oldest first (the keystore's order)
        self._window_until: float | None = None  # loop time the BOOT window closes
        self._window_timer: asyncio.TimerHandle | None = None
        self.window_closed = asyncio.Event()  # set when a BOOT window closes (timeout or bond)
        self.pairings_refused = 0

    # --- GATT -------------------------------------------------------------------------------

    def _services(self) -> list[Service]:
        self.data_char = Characteristic(DATA_UUID, _N, _READABLE, b"")
        self.status_char = Characteristic(STATUS_UUID, _R | _N, _READABLE | _READ_ENC,
                                          CharacteristicValue(read=lambda c: self.status_bytes))
        self.info_char = Characteristic(INFO_UUID, _R, _READABLE | _READ_ENC,
                                        CharacteristicValue(read=lambda c: self.info_bytes))
        self.control_char = Characteristic(
            CONTROL_UUID, _W | _WNR | _N, _READABLE | _WRITEABLE | _WRITE_ENC,
            CharacteristicValue(read=lambda c: self.control_bytes, write=self._on_control))
        self.battery_char = Characteristic("2A19", _R | _N, _READABLE, bytes((95,)))
        self.rsc_char = Characteristic("2A53", _N, _READABLE, b"")
        return [
            Service(SERVICE_UUID, [self.data_char, self.status_char, self.info_char,
                                   self.control_char]),
            Service("180A", [Characteristic("2A29", _R, _READABLE, b"Open Insole"),
                             Characteristic("2A24", _R, _READABLE, b"virtual"),
                             Characteristic("2A26", _R, _READABLE, self.firmware.encode())]),
            Service("180F", [self.battery_char]),
            Service("1814", [self.rsc_char,
                             Characteristic("2A54", _R, _READABLE, struct.pack("<H", 0x0004)),
                             Characteristic("2A5D", _R, _READABLE, bytes((2,)))]),
        ]

    async def start(self) -> None:
        self._aloop = asyncio.get_running_loop()
        self.device = dev = self.radio.device(self.name, self.address)
        dev.gatt_server.max_mtu = PREFERRED_MTU
        dev.add_services(self._services())
        dev.keystore = self.keystore
        dev.pairing_config_factory = lambda connection: PairingConfig(
            sc=True, mitm=False, bonding=True, delegate=_WindowDelegate(self))
        self._bonds = [name for name, _ in await self.keystore.get_all()]
        dev.on(dev.EVENT_CONNECTION, self._on_connection)
        await dev.power_on()
        await self._advertise()
        loop = asyncio.get_running_loop()
        if self.wall_t0 is None:
            self.wall_t0 = loop.time()
        self._task = asyncio.create_task(self._stream(), name=f"virtual-{self.side}")

    async def _advertise(self) -> None:
        await self.device.start_advertising(
            own_address_type=hci.OwnAddressType.RANDOM,
            advertising_data=advertising_data(self.name),
            scan_response_data=scan_response_data(self.name),
            advertising_interval_min=ADV_INTERVAL_MS, advertising_interval_max=ADV_INTERVAL_MS)

    def _on_connection(self, connection) -> None:
        self.connections += 1
        connection.on(connection.EVENT_DISCONNECTION,
                      lambda reason: asyncio.ensure_future(self._on_disconnection()))
        connection.on(connection.EVENT_PAIRING,
                      lambda keys: asyncio.ensure_future(self._on_bond(connection, keys)))
        if len(self.device.connections) < self.max_centrals:
            asyncio.ensure_future(self._on_disconnection())

    async def _on_disconnection(self) -> None:
        if not self.finished.is_set() and not self.device.is_advertising:
            await self._advertise()

    # --- pairing, bonds, the window -----------------------------------------------------

    @property
    def bonds(self) -> list[str]:
        """The bonded centrals' identity addresses, oldest first."""
        return list(self._bonds)

    @property
    def window_open(self) -> bool:
        """New bonds are accepted: no bond yet, or within ``window_s`` of a BOOT press."""
        if not self._bonds:
            return True
        return self._window_until is not None and self._aloop.time() < self._window_until

    def press_boot(self, held_s: float = BOOT_HOLD_S) -> None:
        """The BOOT button held for ``held_s``: 3 s or more opens the pairing window for
        ``window_s``. Thread-safe (runs on the radio's loop)."""
        if held_s < BOOT_HOLD_S:
            return
        # open at once (window_open is true when this returns); the timer is set on the loop,
        # and anything the caller then queues onto the loop runs after it
        self._window_until = self._aloop.time() + self.window_s
        self._aloop.call_soon_threadsafe(self._open_window)

    def _open_window(self) -> None:
        loop = self._aloop
        self.window_closed.clear()
        self._window_until = loop.time() + self.window_s
        if self._window_timer is not None:
            self._window_timer.cancel()
        self._window_timer = loop.call_later(self.window_s, self._close_window)

    def _close_window(self) -> None:
        self._window_until = None
        if self._window_timer is not None:
            self._window_timer.cancel()
            self._window_timer = None
        self.window_closed.set()

    async def _on_bond(self, connection: Connection, keys: PairingKeys) -> None:
        # bumble's SMP has stored the keys under the central's identity address; keep the
        # keystore's order oldest first (a renewed bond becomes the newest) and within the limit
        addr = str(connection.peer_address)
        if addr in self._bonds:
            self._bonds.remove(addr)
            await self.keystore.delete(addr)
            await self.keystore.update(addr, keys)
        self._bonds.append(addr)
        while len(self._bonds) > self.bond_limit:
            oldest = self._bonds.pop(0)
            if await self.keystore.get(oldest) is not None:
                await self.keystore.delete(oldest)
        self._close_window()

    async def forget_bonds(self) -> None:
        """FORGET_BONDS: erase every bond; with none left the window is open."""
        self._bonds.clear()
        await self.keystore.delete_all()
        self._close_window()

    def _trusted(self, connection: Connection) -> bool:
        """An encrypted link of a bonded central: the only one DATA, STATUS and REPLY go to."""
        return connection.is_encrypted and str(connection.peer_address) in self._bonds

    def _trusted_subscribers(self, char: Characteristic) -> list[Connection]:
        out = []
        for bearer, subs in self.device.gatt_server.subscribers.items():
            conn = bearer if isinstance(bearer, Connection) else bearer.connection
            if (subs.get(char.handle) or b"\x00")[0] & 1 and self._trusted(conn):
                out.append(conn)
        return out

    async def _notify_trusted(self, char: Characteristic, value: bytes) -> None:
        for conn in self._trusted_subscribers(char):
            await self.device.notify_subscriber(conn, char, value)

    def subscribed(self) -> bool:
        """A bonded central on an encrypted link is subscribed to DATA."""
        return bool(self._trusted_subscribers(self.data_char))

    # --- the stream ------------------------------------------------------------------------

    def release(self, wall_t0: float) -> None:
        """Start a held insole's run at loop time ``wall_t0`` (call on the radio's loop)."""
        self.wall_t0 = wall_t0
        self._go.set()

    async def _stream(self) -> None:
        loop = asyncio.get_running_loop()
        await self._go.wait()
        try:
            while self._i < len(self._packets):
                t_dev, pkt = self._packets[self._i]
                due = self.wall_t0 + self.foot.true_time_s(t_dev) / self.speed
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
                self._i += 1
                self._t_dev_s = t_dev
                await self._maybe_drop(t_dev)
                if isinstance(pkt, P.Data):
                    await self._send_data(pkt, t_dev)
                elif isinstance(pkt, P.Status):
                    await self._send_status(pkt)
        finally:
            self.finished.set()
            self._note_link(self._t_dev_s, False)

    def _note_link(self, t_dev: float, up: bool) -> None:
        # device-time intervals with no subscribed central
        if not up and (not self.link_down or self.link_down[-1][1] is not None):
            self.link_down.append([t_dev, None])
        elif up and self.link_down and self.link_down[-1][1] is None:
            self.link_down[-1][1] = t_dev

    async def _send_data(self, pkt: P.Data, t_dev: float) -> None:
        if not self.streaming:
            return
        seq = self._seq & 0xFFFF
        self._seq += 1
        if not self.subscribed():
            self._note_link(t_dev, False)
            self.unsent_seqs.append(seq)
            return
        self._note_link(t_dev, True)
        payload = P.encode(P.Data(pkt.side, seq, pkt.t0_us, pkt.period_us, pkt.samples,
                                  pkt.overrun))
        await self._notify_trusted(self.data_char, payload)
        self.sent_seqs.append(seq)

    async def _send_status(self, st: P.Status) -> None:
        self.status_bytes = P.encode(P.Status(st.side, st.battery_pct, st.battery_mv,
                                              st.uptime_s, self.rate_hz, st.achieved_hz,
                                              st.overruns, st.fault_mask, int(self.streaming),
                                              st.cadence_spm))
        await self._notify_trusted(self.status_char, self.status_bytes)
        if st.battery_pct != 255:
            await self.device.notify_subscribers(self.battery_char, bytes((st.battery_pct,)))
        cad = min(255, st.cadence_spm)
        await self.device.notify_subscribers(self.rsc_char, bytes((0x04, 0, 0, cad)))

    async def _maybe_drop(self, t_dev: float) -> None:
        for d in self.drops:
            if d.done or t_dev < d.at_s:
                continue
            d.done = True
            await self.drop_link(t_dev)

    async def drop_link(self, t_dev: float | None = None) -> None:
        """Lose every link now, as a supervision timeout does (``drops_at_s`` calls it)."""
        if t_dev is None:
            t_dev = self._t_dev_s
        conns = list(self.device.connections.values())
        if conns:
            # let what was already handed to the link arrive (the controller has completed
            # every queued packet), then lose the link
            for c in conns:
                try:
                    await asyncio.wait_for(c.drain(), 5.0)
                except (ValueError, asyncio.TimeoutError):  # gone already, or stuck: drop now
                    pass
            await asyncio.sleep(0.05)
            self._note_link(t_dev, False)
            for c in conns:
                await c.disconnect(hci.HCI_CONNECTION_TIMEOUT_ERROR)

    # --- commands --------------------------------------------------------------------------

    def _on_control(self, connection, value: bytes) -> None:
        value = bytes(value)
        t = value[1] if len(value) >= 2 else 0
        code = self._command(value)
        reply = P.encode(P.Reply(t, code))
        self.replies.append(reply)
        self.control_bytes = reply
        forget = code == P.REPLY_OK and t == P.CMD_FORGET_BONDS

        async def answer() -> None:
            # FORGET_BONDS: the REPLY goes to the links trusted when the command came, after the
            # bonds are gone (a host that has the REPLY finds them erased)
            to = self._trusted_subscribers(self.control_char)
            if forget:
                await self.forget_bonds()
            for conn in to:
                await self.device.notify_subscriber(conn, self.control_char, reply)

        asyncio.ensure_future(answer())

    def _command(self, value: bytes) -> int:
        if len(value) < 2 or value[0] != P.VERSION:
            return P.REPLY_UNKNOWN_COMMAND
        t = value[1]
        if t not in P.COMMAND_ARG_BYTES:
            return P.REPLY_UNKNOWN_COMMAND
        if len(value) != 2 + P.COMMAND_ARG_BYTES[t]:
            return P.REPLY_BAD_LENGTH
        if t == P.CMD_START:
            self.streaming = True
        elif t == P.CMD_STOP:
            self.streaming = False
        elif t == P.CMD_SET_RATE:
            rate = int.from_bytes(value[2:4], "little")
            if not P.RATE_MIN_HZ <= rate <= P.RATE_MAX_HZ:
                return P.REPLY_OUT_OF_RANGE
            self._set_rate(rate)
        elif t == P.CMD_IDENTIFY:
            self.identify_count += 1
        elif t == P.CMD_SET_SIDE:
            if value[2] not in (0, 1):
                return P.REPLY_OUT_OF_RANGE
            self.side = P.SIDES[value[2]]
            self.info_bytes = P.encode(P.Info(self.side, *self._info_rest()))
        # GET_INFO: the INFO characteristic already holds the current INFO; FORGET_BONDS: done
        # after its REPLY (_on_control)
        return P.REPLY_OK

    def _info_rest(self) -> tuple:
        i = P.decode(self.info_bytes)
        return i.zones, i.rate_hz, i.supply_mv, i.r_fixed_ohm, i.device_id, i.firmware

    def _set_rate(self, rate_hz: int) -> None:
        # the device's clock runs on; the model is sampled at the new rate from now on
        if rate_hz == self.rate_hz:
            return
        self.rate_hz = rate_hz
        self.foot = sim.simulate(self.scenario, self.side, self.duration_s, rate_hz=rate_hz,
                                 seed=self.seed)
        packets = [(t, p) for t, p in self.foot.packets() if not isinstance(p, P.Info)]
        self._i = next((k for k, (t, _) in enumerate(packets) if t > self._t_dev_s), len(packets))
        self._packets = packets
        self.info_bytes = P.encode(self.foot.info)

    async def power_off(self) -> None:
        """Switch the insole off: stop streaming, drop every link, leave the radio. A new
        VirtualInsole on the same ``keystore_path`` is the same insole rebooted."""
        self.finished.set()  # no re-advertising on the disconnections below
        await self.stop()
        dev = self.device
        if dev is None:
            return
        if dev.is_advertising:
            await dev.stop_advertising()
        for c in list(dev.connections.values()):
            try:
                await c.disconnect(hci.HCI_REMOTE_DEVICE_TERMINATED_CONNECTION_DUE_TO_POWER_OFF_ERROR)
            except (hci.HCI_Error, asyncio.TimeoutError) as e:
                log.debug("%s: disconnect on power off: %s", self.name, e)
        self.radio.remove(self.address)
        if self._window_timer is not None:
            self._window_timer.cancel()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
