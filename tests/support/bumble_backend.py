"""A bleak backend on a bumble host: the production ``ble://`` code runs through bleak's public
API against the virtual radio of :mod:`tests.support.radio`, with no Bluetooth adapter.

Chosen by the production code (:func:`insole.ble.backend_classes`) through

    INSOLE_BLEAK_BACKEND=tests.support.bumble_backend:BumbleScanner,tests.support.bumble_backend:BumbleClient
    INSOLE_BUMBLE_HCI=tcp-client:127.0.0.1:PORT      (the virtual radio's port)

Structure follows bleak's own backends (``bleak/backends/*/scanner.py`` and ``client.py``): the
scanner fills ``seen_devices`` through ``create_or_update_device`` and calls
``call_detection_callbacks``; the client connects, exchanges the MTU, discovers the GATT table
into a ``BleakGATTServiceCollection`` and sets ``self.services``, and calls the disconnected
callback only on a disconnection it did not ask for.

One bumble host (one virtual controller) serves every scanner and client of a process and event
loop, as one adapter serves every bleak object on a real machine.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid as _uuid
from collections.abc import Callable
from typing import Any

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import (
    AdvertisementData,
    AdvertisementDataCallback,
    BaseBleakScanner,
)
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError
from bumble import core, hci
from bumble.device import Connection, Device, Peer
from bumble.gatt import Characteristic
from bumble.transport import open_transport

log = logging.getLogger(__name__)

HCI_ENV = "INSOLE_BUMBLE_HCI"
REQUESTED_MTU = 517  # what BlueZ and most phones ask for; the insole settles on its 247
_BASE_UUID_TAIL = "-0000-1000-8000-00805f9b34fb"

_PROPERTY_NAMES = (
    (Characteristic.Properties.BROADCAST, "broadcast"),
    (Characteristic.Properties.READ, "read"),
    (Characteristic.Properties.WRITE_WITHOUT_RESPONSE, "write-without-response"),
    (Characteristic.Properties.WRITE, "write"),
    (Characteristic.Properties.NOTIFY, "notify"),
    (Characteristic.Properties.INDICATE, "indicate"),
    (Characteristic.Properties.AUTHENTICATED_SIGNED_WRITES, "authenticated-signed-writes"),
    (Characteristic.Properties.EXTENDED_PROPERTIES, "extended-properties"),
)


def uuid_str(u: core.UUID) -> str:
    """A bumble UUID as bleak spells UUIDs: 128-bit, lower case."""
    return str(_uuid.UUID(bytes=bytes(reversed(u.uuid_128_bytes))))


def _uuid16_str(value: int) -> str:
    return f"0000{value:04x}{_BASE_UUID_TAIL}"


class _Host:
    """The process's bumble host for one event loop: one transport, one device, powered on."""

    def __init__(self, transport, device: Device) -> None:
        self.transport = transport
        self.device = device
        self.scanners = 0
        self.addresses: dict[str, hci.Address] = {}  # "AA:BB:..." -> typed address seen


_HOSTS: dict[asyncio.AbstractEventLoop, _Host] = {}
_HOST_LOCKS: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}


async def _host() -> _Host:
    loop = asyncio.get_running_loop()
    lock = _HOST_LOCKS.setdefault(loop, asyncio.Lock())
    async with lock:
        if loop in _HOSTS:
            return _HOSTS[loop]
        spec = os.environ.get(HCI_ENV)
        if not spec:
            raise BleakError(f"no virtual radio: set {HCI_ENV}=tcp-client:127.0.0.1:PORT")
        try:
            transport = await open_transport(spec)
        except (OSError, core.BaseBumbleError) as e:
            raise BleakError(f"cannot reach the virtual radio at {spec}: {e}") from e
        device = Device.with_hci("insole-host", hci.Address.generate_static_address(),
                                 transport.source, transport.sink)
        await device.power_on()
        h = _HOSTS[loop] = _Host(transport, device)
        return h


async def close_host() -> None:
    """Close this loop's bumble host (its links end as if the adapter were unplugged)."""
    h = _HOSTS.pop(asyncio.get_running_loop(), None)
    if h is not None:
        await h.transport.close()


def _parse_advertisement(adv) -> tuple[str | None, list[str], dict[int, bytes], dict[str, bytes],
                                       int | None]:
    name = None
    uuids: list[str] = []
    manufacturer: dict[int, bytes] = {}
    service_data: dict[str, bytes] = {}
    tx_power = None
    for ad_type, data in adv.data.ad_structures:
        t = int(ad_type)
        if t in (0x08, 0x09):  # shortened / complete local name
            name = data.decode(errors="replace")
        elif t in (0x02, 0x03):  # 16-bit service UUIDs
            uuids += [_uuid16_str(int.from_bytes(data[i:i + 2], "little"))
                      for i in range(0, len(data) - 1, 2)]
        elif t in (0x06, 0x07):  # 128-bit service UUIDs, little-endian on air
            uuids += [str(_uuid.UUID(bytes=bytes(reversed(data[i:i + 16]))))
                      for i in range(0, len(data) - 15, 16)]
        elif t == 0xFF and len(data) >= 2:
            manufacturer[int.from_bytes(data[:2], "little")] = bytes(data[2:])
        elif t == 0x16 and len(data) >= 2:
            service_data[_uuid16_str(int.from_bytes(data[:2], "little"))] = bytes(data[2:])
        elif t == 0x0A and data:
            tx_power = int.from_bytes(data[:1], "little", signed=True)
    return name, list(dict.fromkeys(uuids)), manufacturer, service_data, tx_power


class BumbleScanner(BaseBleakScanner):
    """bleak scanner backend: active scanning on the bumble host."""

    def __init__(self, detection_callback: AdvertisementDataCallback | None,
                 service_uuids: list[str] | None, scanning_mode: str = "active",
                 **kwargs: Any) -> None:
        super().__init__(detection_callback, service_uuids)
        self._active = scanning_mode != "passive"
        self._h: _Host | None = None

    async def start(self) -> None:
        self.seen_devices = {}
        self._h = h = await _host()
        h.device.on(h.device.EVENT_ADVERTISEMENT, self._on_advertisement)
        h.scanners += 1
        if h.scanners == 1:
            await h.device.start_scanning(active=self._active, filter_duplicates=False)

    async def stop(self) -> None:
        h = self._h
        if h is None:
            return
        self._h = None
        h.device.remove_listener(h.device.EVENT_ADVERTISEMENT, self._on_advertisement)
        h.scanners -= 1
        if h.scanners == 0 and h.device.scanning:
            await h.device.stop_scanning()

    def _on_advertisement(self, adv) -> None:
        name, uuids, manufacturer, service_data, tx_power = _parse_advertisement(adv)
        if not self.is_allowed_uuid(uuids):
            return
        address = adv.address.to_string(False)
        if self._h is not None:
            self._h.addresses[address] = adv.address
        data = AdvertisementData(local_name=name, manufacturer_data=manufacturer,
                                 service_data=service_data, service_uuids=uuids,
                                 tx_power=tx_power, rssi=adv.rssi, platform_data=(adv,))
        device = self.create_or_update_device(address, address, name, adv.address, data)
        self.call_detection_callbacks(device, data)


class BumbleClient(BaseBleakClient):
    """bleak client backend: a GATT client over a bumble LE connection."""

    def __init__(self, address_or_ble_device: BLEDevice | str, *,
                 disconnected_callback: Callable[[], None] | None = None, timeout: float = 10.0,
                 services: set[str] | None = None, **kwargs: Any) -> None:
        super().__init__(address_or_ble_device, disconnected_callback=disconnected_callback,
                         timeout=timeout)
        self._typed: hci.Address | None = None
        self._name = self.address
        if isinstance(address_or_ble_device, BLEDevice):
            if isinstance(address_or_ble_device.details, hci.Address):
                self._typed = address_or_ble_device.details
            self._name = address_or_ble_device.name or self.address
        self._service_filter = services
        self._conn: Connection | None = None
        self._peer: Peer | None = None
        self._mtu = 23
        self._closing = False

    @property
    def name(self) -> str:
        return self._name

    @property
    def mtu_size(self) -> int:
        return self._mtu

    @property
    def is_connected(self) -> bool:
        return self._conn is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        if pair:
            raise BleakError("pairing is not supported by the bumble test backend")
        h = await _host()
        target = self._typed or h.addresses.get(self.address.upper())
        if target is None:
            raise BleakDeviceNotFoundError(self.address, f"device {self.address} not found")
        self._closing = False
        try:
            conn = await h.device.connect(target, timeout=self._timeout)
        except core.TimeoutError as e:
            raise asyncio.TimeoutError(f"connecting to {self.address} timed out") from e
        except (core.BaseBumbleError, hci.HCI_Error) as e:
            raise BleakError(f"connecting to {self.address} failed: {e}") from e
        self._conn = conn
        conn.on(conn.EVENT_DISCONNECTION, self._on_disconnection)
        try:
            self._peer = peer = Peer(conn)
            self._mtu = await peer.request_mtu(REQUESTED_MTU)
            self.services = await self._discover(peer)
        except (core.BaseBumbleError, hci.HCI_Error, asyncio.TimeoutError) as e:
            await self.disconnect()
            raise BleakError(f"{self.address}: GATT discovery failed: {e}") from e
        if self._conn is None:
            raise BleakError(f"{self.address}: disconnected during service discovery")

    async def _discover(self, peer: Peer) -> BleakGATTServiceCollection:
        out = BleakGATTServiceCollection()
        for s in await peer.discover_services():
            su = uuid_str(s.uuid)
            if self._service_filter and su not in self._service_filter:
                continue
            bs = BleakGATTService(s, s.handle, su)
            out.add_service(bs)
            for c in await s.discover_characteristics():
                props = [n for flag, n in _PROPERTY_NAMES if c.properties & flag]
                bc = BleakGATTCharacteristic(c, c.handle, uuid_str(c.uuid), props,
                                             lambda: self._mtu - 3, bs)
                out.add_characteristic(bc)
                for d in await c.discover_descriptors():
                    out.add_descriptor(BleakGATTDescriptor(d, d.handle, uuid_str(d.type), bc))
        return out

    def _on_disconnection(self, reason: int) -> None:
        self._conn = None
        self._peer = None
        if not self._closing and self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self) -> None:
        conn = self._conn
        if conn is None:
            return
        self._closing = True
        try:
            await conn.disconnect()
        except (core.BaseBumbleError, hci.HCI_Error) as e:
            log.debug("%s: disconnect: %s", self.address, e)
        self._conn = None
        self._peer = None

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise BleakError("pairing is not supported by the bumble test backend")

    async def unpair(self) -> None:
        raise BleakError("pairing is not supported by the bumble test backend")

    def _need_peer(self) -> Peer:
        if self._peer is None:
            raise BleakError("Not connected")
        return self._peer

    async def read_gatt_char(self, characteristic: BleakGATTCharacteristic, *,
                             use_cached: bool = False, **kwargs: Any) -> bytearray:
        try:
            return bytearray(await self._need_peer().gatt_client.read_value(characteristic.handle))
        except (core.BaseBumbleError, hci.HCI_Error) as e:
            raise BleakError(f"read {characteristic.uuid}: {e}") from e

    async def read_gatt_descriptor(self, descriptor: BleakGATTDescriptor, *,
                                   use_cached: bool = False, **kwargs: Any) -> bytearray:
        try:
            return bytearray(await self._need_peer().gatt_client.read_value(descriptor.handle))
        except (core.BaseBumbleError, hci.HCI_Error) as e:
            raise BleakError(f"read descriptor {descriptor.uuid}: {e}") from e

    async def write_gatt_char(self, characteristic: BleakGATTCharacteristic, data,
                              response: bool) -> None:
        try:
            await self._need_peer().gatt_client.write_value(characteristic.handle, bytes(data),
                                                            with_response=response)
        except (core.BaseBumbleError, hci.HCI_Error) as e:
            raise BleakError(f"write {characteristic.uuid}: {e}") from e

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data) -> None:
        try:
            await self._need_peer().gatt_client.write_value(descriptor.handle, bytes(data),
                                                            with_response=True)
        except (core.BaseBumbleError, hci.HCI_Error) as e:
            raise BleakError(f"write descriptor {descriptor.uuid}: {e}") from e

    async def start_notify(self, characteristic: BleakGATTCharacteristic,
                           callback: NotifyCallback, **kwargs: Any) -> None:
        def on_value(value: bytes) -> None:
            callback(bytearray(value))

        characteristic.obj.insole_callback = on_value  # kept for stop_notify
        try:
            await self._need_peer().gatt_client.subscribe(characteristic.obj, on_value)
        except (core.BaseBumbleError, hci.HCI_Error) as e:
            raise BleakError(f"subscribe {characteristic.uuid}: {e}") from e

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        cb = getattr(characteristic.obj, "insole_callback", None)
        try:
            await self._need_peer().gatt_client.unsubscribe(characteristic.obj, cb)
        except (core.BaseBumbleError, hci.HCI_Error) as e:
            raise BleakError(f"unsubscribe {characteristic.uuid}: {e}") from e
