"""A virtual BLE radio: one bumble ``LocalLink`` shared by in-process peripherals and by hosts
in other threads or processes that attach over HCI on TCP.

Each TCP client (a host: bumble's ``tcp-client:127.0.0.1:PORT`` transport, used by the bleak
backend in :mod:`tests.support.bumble_backend`) gets a fresh virtual controller of its own on
the link, so hosts come and go (``insole scan`` then ``insole record``) without inheriting one
another's state. When a host's socket closes, its links are terminated towards the peripherals
(reason: connection timeout, what a real peripheral sees when the central vanishes), and the
peripherals advertise again.

The server listens on 127.0.0.1 only. The link has no connection-interval timing, no loss and a
fixed RSSI (TESTING.md): it is for function, never for throughput or latency claims.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Coroutine
from typing import Any

from bumble import hci, ll
from bumble.controller import Controller
from bumble.device import Device
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink, PacketParser

log = logging.getLogger(__name__)

LOCALHOST = "127.0.0.1"


class _HostPort(asyncio.Protocol):
    """One attached host: H4 packets in from the socket to its controller, and back out."""

    def __init__(self, radio: VirtualRadio) -> None:
        self.radio = radio
        self.transport: asyncio.Transport | None = None
        self.controller: Controller | None = None
        self.parser: PacketParser | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.radio.host_count += 1
        self.controller = Controller(f"host{self.radio.host_count}", link=self.radio.link)
        self.controller.host = self  # controller -> host packets come to on_packet
        self.parser = PacketParser(self.controller)
        self.radio.hosts.add(self)

    def on_packet(self, packet: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(packet)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except Exception as e:  # noqa: BLE001 - a broken host stream ends that host only
            log.warning("virtual radio: bad HCI stream from a host (%s); dropping it", e)
            self.transport.close()

    def connection_lost(self, exc) -> None:
        self.radio.hosts.discard(self)
        c = self.controller
        if c is None:
            return
        for conn in list(c.le_connections.values()):
            # the central vanished: the peripheral's supervision timeout ends the link
            conn.send_ll_control_pdu(ll.TerminateInd(hci.HCI_CONNECTION_TIMEOUT_ERROR))
        c.le_connections.clear()
        c.host = None
        self.radio.link.remove_controller(c)
        self.controller = None


class VirtualRadio:
    """The shared link. Create it inside a running event loop."""

    def __init__(self) -> None:
        self.link = LocalLink()
        self.controllers: dict[str, Controller] = {}  # in-process devices by address
        self.hosts: set[_HostPort] = set()
        self.host_count = 0
        self._server: asyncio.AbstractServer | None = None
        self.port: int | None = None

    async def serve(self, port: int = 0) -> int:
        """Accept hosts over HCI on TCP at 127.0.0.1:port (0: any free port); returns the port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _HostPort(self), LOCALHOST, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    @property
    def hci_spec(self) -> str:
        """The bumble transport spec a host uses to attach: ``tcp-client:127.0.0.1:PORT``."""
        return f"tcp-client:{LOCALHOST}:{self.port}"

    def device(self, name: str, address: str) -> Device:
        """A bumble device (host + controller) on the link, for a peripheral in this loop."""
        controller = Controller(f"dev-{name}", link=self.link)
        self.controllers[address.upper()] = controller  # for remove() ("power off")
        return Device(name=name, address=hci.Address(address, hci.Address.RANDOM_DEVICE_ADDRESS),
                      host=Host(controller, AsyncPipeSink(controller)))

    def remove(self, address: str) -> None:
        """Take the in-process device at ``address`` off the link, as if switched off."""
        c = self.controllers.pop(address.upper(), None)
        if c is not None:
            self.link.remove_controller(c)

    async def close(self) -> None:
        for h in list(self.hosts):
            if h.transport is not None:
                h.transport.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


class RadioThread:
    """The virtual radio and its peripherals on an event loop in a background thread (tests).

    Use as a context manager; :meth:`call` runs a coroutine on the radio's loop and returns its
    result. Leaving the context closes every host link and stops the thread.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="virtual-radio", daemon=True)
        self.radio: VirtualRadio | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Coroutine[Any, Any, Any], timeout_s: float = 30.0) -> Any:
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout_s)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise

    def __enter__(self) -> RadioThread:
        self._thread.start()

        async def make() -> VirtualRadio:
            r = VirtualRadio()
            await r.serve()
            return r

        self.radio = self.call(make())
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.radio is not None:
                self.call(self.radio.close(), timeout_s=10)
        finally:
            async def cancel_all() -> None:
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

            try:
                self.call(cancel_all(), timeout_s=10)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self._thread.join(10)
                self.loop.close()
