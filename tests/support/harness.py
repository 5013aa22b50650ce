"""Put the production ``ble://`` code on the virtual radio for the length of a ``with`` block."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

from insole.io import ble
from tests.support import BACKEND
from tests.support.bumble_backend import HCI_ENV, KEYSTORE_ENV, close_host
from tests.support.radio import RadioThread
from tests.support.virtual_insole import VirtualInsole

SIDES = ("left", "right")


@contextmanager
def virtual_ble() -> Iterator[RadioThread]:
    """A virtual radio in a background thread, with ``INSOLE_BLEAK_BACKEND`` and
    ``INSOLE_BUMBLE_HCI`` pointing the production code at it; everything is undone on exit
    (the BLE loop's bumble host is closed, the sightings cache emptied, the variables restored).
    ``INSOLE_BUMBLE_KEYSTORE`` is cleared: this process's host keeps its bonds in memory."""
    saved = {k: os.environ.get(k) for k in (ble.BACKEND_ENV, HCI_ENV, KEYSTORE_ENV)}
    os.environ.pop(KEYSTORE_ENV, None)
    with RadioThread() as rt:
        os.environ[ble.BACKEND_ENV] = BACKEND
        os.environ[HCI_ENV] = rt.radio.hci_spec
        try:
            yield rt
        finally:
            try:
                ble.run_ble(close_host(), 10.0)
            finally:
                ble._SEEN.clear()
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v


def start_feet(rt: RadioThread, speed: float = 1.0, duration_s: float = 30.0,
               paired: bool = False, **per_side) -> dict[str, VirtualInsole]:
    """A simulated left and right insole on the radio, sharing true time 0 (0.5 s from now);
    ``left={...}``/``right={...}`` pass options to each :class:`VirtualInsole`. ``paired``:
    this process's host pairs with both first, and their runs start only then (a run timed in
    device time, with drops, then does not depend on how long pairing took)."""
    async def make():
        t0 = asyncio.get_running_loop().time() + 0.5
        feet = {}
        for s in SIDES:
            v = VirtualInsole(rt.radio, s, duration_s=duration_s, speed=speed, wall_t0=t0,
                              hold=paired, **per_side.get(s, {}))
            await v.start()
            feet[s] = v
        return feet

    feet = rt.call(make())
    if paired:
        pair_feet(feet)

        async def release() -> None:
            t0 = asyncio.get_running_loop().time() + 0.5
            for v in feet.values():
                v.release(t0)

        rt.call(release())
    return feet


def pair_feet(feet: dict[str, VirtualInsole]) -> None:
    """Bond this process's host with each foot, as ``insole pair`` does (a new insole, with no
    bond yet, is inside its pairing window)."""
    for v in feet.values():
        res = ble.pair_insole(f"ble://{v.address}")
        assert not res.already and res.address == v.address


def wait_finished(rt: RadioThread, feet: dict, timeout_s: float) -> None:
    """Block until every foot has streamed its whole run."""
    async def done():
        await asyncio.gather(*(f.finished.wait() for f in feet.values()))

    rt.call(done(), timeout_s)


class OtherHost:
    """Another computer on the virtual radio: an event loop of its own in a thread, hence a bumble
    host of its own (a new address, bonds in memory), for the bleak calls run on it with
    :meth:`run`. Use as a context manager inside :func:`virtual_ble`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="other-host",
                                        daemon=True)

    def run(self, coro: Coroutine[Any, Any, Any], timeout_s: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def __enter__(self) -> OtherHost:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.run(close_host(), 10.0)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()
