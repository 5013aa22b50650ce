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
IDENTIFY, SET_SIDE (name and INFO change); anything else: unknown command / bad length.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from dataclasses import dataclass, field

from bumble import hci
from bumble.core import AdvertisingData
from bumble.gatt import Characteristic, CharacteristicValue, Service

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


class VirtualInsole:
    """One simulated foot as a BLE peripheral. Create and :meth:`start` on the radio's loop."""

    def __init__(self, radio: VirtualRadio, side: str, scenario: str = "easy-run",
                 duration_s: float = 60.0, seed: int = 1, speed: float = 1.0, rate_hz: int = 500,
                 drops_at_s: tuple[float, ...] = (), wall_t0: float | None = None,
                 firmware: str = sim.device.FIRMWARE, stream_on_boot: bool = True) -> None:
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

    # --- GATT -------------------------------------------------------------------------------

    def _services(self) -> list[Service]:
        self.data_char = Characteristic(DATA_UUID, _N, _READABLE, b"")
        self.status_char = Characteristic(STATUS_UUID, _R | _N, _READABLE,
                                          CharacteristicValue(read=lambda c: self.status_bytes))
        self.info_char = Characteristic(INFO_UUID, _R, _READABLE,
                                        CharacteristicValue(read=lambda c: self.info_bytes))
        self.control_char = Characteristic(
            CONTROL_UUID, _W | _WNR | _N, _READABLE | _WRITEABLE,
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
        self.device = dev = self.radio.device(self.name, self.address)
        dev.gatt_server.max_mtu = PREFERRED_MTU
        dev.add_services(self._services())
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

    async def _on_disconnection(self) -> None:
        if not self.finished.is_set():
            await self._advertise()

    def subscribed(self) -> bool:
        h = self.data_char.handle
        return any((subs.get(h) or b"\x00")[0] & 1
                   for subs in self.device.gatt_server.subscribers.values())

    # --- the stream ------------------------------------------------------------------------

    async def _stream(self) -> None:
        loop = asyncio.get_running_loop()
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
        await self.device.notify_subscribers(self.data_char, payload)
        self.sent_seqs.append(seq)

    async def _send_status(self, st: P.Status) -> None:
        self.status_bytes = P.encode(P.Status(st.side, st.battery_pct, st.battery_mv,
                                              st.uptime_s, self.rate_hz, st.achieved_hz,
                                              st.overruns, st.fault_mask, int(self.streaming),
                                              st.cadence_spm))
        await self.device.notify_subscribers(self.status_char, self.status_bytes)
        if st.battery_pct != 255:
            await self.device.notify_subscribers(self.battery_char, bytes((st.battery_pct,)))
        cad = min(255, st.cadence_spm)
        await self.device.notify_subscribers(self.rsc_char, bytes((0x04, 0, 0, cad)))

    async def _maybe_drop(self, t_dev: float) -> None:
        for d in self.drops:
            if d.done or t_dev < d.at_s:
                continue
            d.done = True
            conns = list(self.device.connections.values())
            if not conns:
                continue
            # let what was already handed to the link arrive, then lose the link as a
            # supervision timeout does
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
        asyncio.ensure_future(self.device.notify_subscribers(self.control_char, reply))

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
        # GET_INFO: the INFO characteristic already holds the current INFO
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

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
