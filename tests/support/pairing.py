"""A plain bumble central on the virtual radio that pairs and bonds with an insole.

It plays the runner's laptop (or a stranger's phone) below the production ``ble://`` code:
connect, pair (LE Secure Connections, just works, bonding) with its keys in a bumble
``JsonKeyStore`` file, encrypt again with those keys on a later connection, and use the insole
service (read, write CONTROL, collect DATA/STATUS/REPLY notifications). Everything runs on the
radio's loop (``RadioThread.call``). ATT refusals come back as :class:`bumble.att.ATT_Error`
(``error_code`` 0x05 Insufficient Authentication, 0x0F Insufficient Encryption).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bumble import hci
from bumble.core import UUID
from bumble.device import Connection, Peer
from bumble.keys import JsonKeyStore
from bumble.pairing import PairingConfig, PairingDelegate

from insole.io import ble
from tests.support.radio import VirtualRadio

PREFERRED_MTU = 247


class BumbleCentral:
    """One central device; ``keys_path`` is its JSON key store (a tmp file in tests)."""

    def __init__(self, radio: VirtualRadio, address: str, keys_path: Path,
                 name: str = "laptop") -> None:
        self.radio = radio
        self.address = address
        self.keys_path = Path(keys_path)
        self.device = radio.device(name, address)
        self.connection: Connection | None = None
        self.peer: Peer | None = None
        self.received: dict[str, list[bytes]] = {}
        self.stream: list[bytes] = []  # every notification, in arrival order
        self._got = asyncio.Event()

    async def start(self) -> None:
        dev = self.device
        dev.keystore = JsonKeyStore(namespace=None, filename=str(self.keys_path))
        dev.pairing_config_factory = lambda connection: PairingConfig(
            sc=True, mitm=False, bonding=True,
            delegate=PairingDelegate(
                io_capability=PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT))
        await dev.power_on()

    async def connect(self, address: str, timeout_s: float = 10.0) -> Peer:
        """Connect to the insole at ``address``, exchange the MTU, discover its GATT table."""
        self.connection = await asyncio.wait_for(
            self.device.connect(hci.Address(address, hci.Address.RANDOM_DEVICE_ADDRESS),
                                own_address_type=hci.OwnAddressType.RANDOM), timeout_s)
        self.peer = peer = Peer(self.connection)
        await peer.request_mtu(PREFERRED_MTU)
        await peer.discover_services()
        await peer.discover_characteristics()
        return peer

    async def pair(self) -> None:
        """Pair and bond (the keys land in this central's key store)."""
        assert self.connection is not None
        await self.connection.pair()

    async def encrypt(self) -> None:
        """Encrypt with the keys of an earlier bond (raises when the insole lacks them)."""
        assert self.connection is not None
        await self.connection.encrypt()

    @property
    def connected(self) -> bool:
        c = self.connection
        return c is not None and c.handle in self.device.connections

    async def disconnect(self) -> None:
        c = self.connection
        if c is not None and self.connected:
            await c.disconnect()
        self.connection = None
        self.peer = None

    def _char(self, uuid: str):
        assert self.peer is not None
        (c,) = self.peer.get_characteristics_by_uuid(UUID(uuid))
        return c

    async def read(self, uuid: str) -> bytes:
        assert self.peer is not None
        return bytes(await self.peer.read_value(self._char(uuid)))

    async def write_control(self, command: bytes) -> None:
        assert self.peer is not None
        await self.peer.write_value(self._char(ble.CONTROL_UUID), command, with_response=True)

    async def subscribe(self, *uuids: str) -> None:
        """Collect the notifications of these characteristics into ``received[uuid]``."""
        assert self.peer is not None
        for uuid in uuids:
            self.received.setdefault(uuid, [])

            def on_value(value, uuid=uuid):
                self.received[uuid].append(bytes(value))
                self.stream.append(bytes(value))
                self._got.set()

            await self.peer.subscribe(self._char(uuid), on_value)

    async def wait_until(self, predicate, timeout_s: float = 20.0) -> None:
        """Wait until ``predicate()`` holds, re-checked at each notification."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not predicate():
            self._got.clear()
            await asyncio.wait_for(self._got.wait(), max(0.0, deadline - loop.time()))

    async def wait_for(self, uuid: str, count: int = 1, timeout_s: float = 10.0) -> list[bytes]:
        """Wait until ``count`` notifications of ``uuid`` have arrived; returns them all."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(self.received.get(uuid, [])) < count:
            self._got.clear()
            await asyncio.wait_for(self._got.wait(), max(0.0, deadline - loop.time()))
        return self.received[uuid]
