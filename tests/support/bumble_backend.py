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

Pairing (issue 13) plays BlueZ: ``pair()`` runs bumble's SMP as initiator (LE Secure
Connections, bonding, no input/output, so "just works" against the insole) and is a no-op on an
already encrypted link; ``unpair()`` forgets the peer's keys and disconnects, as BlueZ's
RemoveDevice does. The bonds are the host's, kept in a bumble ``JsonKeyStore`` in the file
``INSOLE_BUMBLE_KEYSTORE`` names (BlueZ keeps them under /var/lib/bluetooth), so ``insole pair`` in
one process and ``insole record`` in the next share them; the file also keeps the host's address
(its namespace; a real adapter's address does not change either), since the insole knows its
bonded centrals by address. Unset: a fresh address and an in-memory keystore per process. On
connecting to a peer it holds keys for, the client encrypts the link with the stored LTK before
anything else, as BlueZ does. ATT errors and pairing failures surface as BlueZ's do through
bleak: ``BleakDBusError('org.bluez.Error.Failed', ['Operation failed with ATT error: 0x0f'])``
(bleak appends "(Insufficient Encryption)"), and ``org.bluez.Error.AuthenticationFailed`` for a
refused pairing. Unlike BlueZ, an ATT security error does not start pairing by itself: pairing is
only ever ``insole pair``'s explicit call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid as _uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
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
from bleak.exc import BleakDBusError, BleakDeviceNotFoundError, BleakError
from bumble import att, core, hci
from bumble.device import Connection, Device, Peer
from bumble.gatt import Characteristic
from bumble.keys import JsonKeyStore, KeyStore, MemoryKeyStore
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.transport import open_transport

log = logging.getLogger(__name__)

HCI_ENV = "INSOLE_BUMBLE_HCI"
KEYSTORE_ENV = "INSOLE_BUMBLE_KEYSTORE"  # the host's bond database (a JSON file); unset: memory
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

    def __init__(self, transport, device: Device, keystore: KeyStore) -> None:
        self.transport = transport
        self.device = device
        self.keystore = keystore
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
        address, keystore = _keystore()
        device = Device.with_hci("insole-host", address, transport.source, transport.sink)
        device.keystore = keystore
        device.pairing_config_factory = _pairing_config
        await device.power_on()
        h = _HOSTS[loop] = _Host(transport, device, keystore)
        return h


def _pairing_config(connection: Connection) -> PairingConfig:
    # what BlueZ asks for with a NoInputNoOutput agent: Secure Connections and bonding; the
    # host's identity is its static random address (kept in the keystore file)
    return PairingConfig(sc=True, mitm=False, bonding=True,
                         delegate=PairingDelegate(PairingDelegate.NO_OUTPUT_NO_INPUT),
                         identity_address_type=PairingConfig.AddressType.RANDOM)


def _keystore() -> tuple[hci.Address, KeyStore]:
    """The host's address and bond database: from ``INSOLE_BUMBLE_KEYSTORE`` (created with a new
    static address when missing), else a fresh address and memory."""
    path = os.environ.get(KEYSTORE_ENV, "").strip()
    if not path:
        return hci.Address.generate_static_address(), MemoryKeyStore()
    p = Path(path)
    try:
        db = json.loads(p.read_text()) if p.exists() else {}
    except (OSError, ValueError) as e:
        raise BleakError(f"{KEYSTORE_ENV}={path}: not a readable keystore ({e})") from e
    names = [n for n in db if n != JsonKeyStore.DEFAULT_NAMESPACE]
    if names:
        name = names[0]
    else:
        name = str(hci.Address.generate_static_address())
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps({name: {}}, indent=1))
    address = hci.Address(name.split("/")[0], hci.Address.RANDOM_DEVICE_ADDRESS)
    return address, JsonKeyStore(name, str(p))


def _cancelled_here() -> bool:
    """Whether the running task itself is being cancelled (else a CancelledError came from bumble
    cancelling a pending request because the link went down)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _security_error(e: BaseException) -> BleakError | None:
    """An ATT error as BlueZ reports one through bleak (None if ``e`` is not an ATT error)."""
    if isinstance(e, att.ATT_Error):
        return BleakDBusError("org.bluez.Error.Failed",
                              [f"Operation failed with ATT error: 0x{e.error_code:02x}"])
    return None


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
        self._host: _Host | None = None

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
        self._host = h
        conn.on(conn.EVENT_DISCONNECTION, self._on_disconnection)
        await self._encrypt_if_bonded()
        if self._conn is None:
            raise BleakError(f"{self.address}: disconnected while encrypting")
        try:
            self._peer = peer = Peer(conn)
            self._mtu = await peer.request_mtu(REQUESTED_MTU)
            self.services = await self._discover(peer)
        except asyncio.CancelledError:
            if _cancelled_here():
                raise
            raise BleakError(f"{self.address}: disconnected during service discovery") from None
        except (core.BaseBumbleError, hci.HCI_Error, asyncio.TimeoutError) as e:
            await self.disconnect()
            raise BleakError(f"{self.address}: GATT discovery failed: {e}") from e
        if self._conn is None:
            raise BleakError(f"{self.address}: disconnected during service discovery")
        if pair:  # BleakClient(..., pair=True): pair right after connecting
            await self.pair()

    async def _encrypt_if_bonded(self) -> None:
        # BlueZ raises the link's security with a stored LTK as soon as it connects; a peer that
        # no longer has the bond rejects it (PIN or Key Missing) and the link stays unencrypted:
        # its protected characteristics then answer Insufficient Encryption
        conn, h = self._conn, self._host
        if conn is None or h is None or await h.keystore.get(str(conn.peer_address)) is None:
            return
        try:
            await conn.encrypt()
        except asyncio.CancelledError:
            if _cancelled_here():
                raise
            log.info("%s: disconnected while encrypting", self.address)
        except (core.BaseBumbleError, hci.HCI_Error) as e:
            log.info("%s: encrypting with the stored key failed (%s)", self.address, e)

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
        """Pair and bond (bumble SMP, initiator); nothing to do on an encrypted link."""
        conn = self._conn
        if conn is None:
            raise BleakError("Not connected")
        if conn.is_encrypted:
            log.debug("%s: already paired", self.address)
            return
        try:
            await conn.pair()
        except asyncio.CancelledError:
            if _cancelled_here():
                raise
            raise BleakError(f"{self.address}: disconnected while pairing") from None
        except (core.BaseBumbleError, hci.HCI_Error, asyncio.TimeoutError) as e:
            # what BlueZ answers Device1.Pair when the peer refuses (SMP Pairing Failed)
            raise BleakDBusError("org.bluez.Error.AuthenticationFailed",
                                 [f"Authentication Failed ({e})"]) from e
        if not conn.is_encrypted:
            raise BleakDBusError("org.bluez.Error.AuthenticationFailed",
                                 ["Authentication Failed (the link is not encrypted)"])

    async def unpair(self) -> None:
        """Forget the peer's keys and disconnect (BlueZ's Adapter1.RemoveDevice)."""
        h = await _host()
        conn = self._conn
        names = {self.address.upper()}
        if conn is not None:
            names.add(str(conn.peer_address).split("/")[0].upper())
        for name, _ in await h.keystore.get_all():
            if name.split("/")[0].upper() in names:
                await h.keystore.delete(name)
        await self.disconnect()

    def _need_peer(self) -> Peer:
        if self._peer is None:
            raise BleakError("Not connected")
        return self._peer

    async def _gatt(self, what: str, op: Callable[[Peer], Awaitable[Any]]) -> Any:
        """One GATT operation, its failures as bleak reports them: an ATT error as BlueZ words
        it, a link lost meanwhile as a BleakError (bumble cancels the pending request on a
        disconnection; only a cancellation of the caller's own task stays a cancellation)."""
        try:
            return await op(self._need_peer())
        except asyncio.CancelledError:
            if _cancelled_here():
                raise
            raise BleakError(f"{what}: disconnected") from None
        except (core.BaseBumbleError, hci.HCI_Error) as e:
            raise _security_error(e) or BleakError(f"{what}: {e}") from e

    async def read_gatt_char(self, characteristic: BleakGATTCharacteristic, *,
                             use_cached: bool = False, **kwargs: Any) -> bytearray:
        return bytearray(await self._gatt(
            f"read {characteristic.uuid}",
            lambda p: p.gatt_client.read_value(characteristic.handle)))

    async def read_gatt_descriptor(self, descriptor: BleakGATTDescriptor, *,
                                   use_cached: bool = False, **kwargs: Any) -> bytearray:
        return bytearray(await self._gatt(
            f"read descriptor {descriptor.uuid}",
            lambda p: p.gatt_client.read_value(descriptor.handle)))

    async def write_gatt_char(self, characteristic: BleakGATTCharacteristic, data,
                              response: bool) -> None:
        await self._gatt(f"write {characteristic.uuid}", lambda p: p.gatt_client.write_value(
            characteristic.handle, bytes(data), with_response=response))

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data) -> None:
        await self._gatt(f"write descriptor {descriptor.uuid}", lambda p: p.gatt_client.write_value(
            descriptor.handle, bytes(data), with_response=True))

    async def start_notify(self, characteristic: BleakGATTCharacteristic,
                           callback: NotifyCallback, **kwargs: Any) -> None:
        def on_value(value: bytes) -> None:
            callback(bytearray(value))

        characteristic.obj.insole_callback = on_value  # kept for stop_notify
        await self._gatt(f"subscribe {characteristic.uuid}",
                         lambda p: p.gatt_client.subscribe(characteristic.obj, on_value))

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        cb = getattr(characteristic.obj, "insole_callback", None)
        await self._gatt(f"unsubscribe {characteristic.uuid}",
                         lambda p: p.gatt_client.unsubscribe(characteristic.obj, cb))
