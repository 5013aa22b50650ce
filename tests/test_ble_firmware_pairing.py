"""Pairing and bonding with the real firmware, through the virtual radio: the firmware under the
MicroPython WebAssembly port behind the bumble bridge (tests/support/firmware_peripheral.py),
plain bumble centrals (tests/support/pairing.py) as the runner's laptop and a stranger's phone.
bumble runs the security manager on both sides; the firmware keeps the bonds and decides."""

from __future__ import annotations

import asyncio
import time

import firmware_loop
import pytest
from bumble.att import ATT_Error

from insole import sim
from insole.io import ble
from tests.support.firmware_peripheral import FirmwarePeripheral
from tests.support.pairing import BumbleCentral
from tests.support.radio import RadioThread
from tests.support.virtual_insole import ADDRESSES

pytestmark = pytest.mark.live  # starts processes, threads or ptys: make test-repeat

RATE_HZ = 100
OWNER = "C0:00:00:00:00:01"
PHONE = "C0:00:00:00:00:02"
STRANGER = "C0:00:00:00:00:66"
RSC_MEASUREMENT = "2A53"
MANUFACTURER = "2A29"
STOP, START, FORGET = b"\x01\x11", b"\x01\x10", b"\x01\x16"


def _need_node():
    try:
        firmware_loop.check_environment()
    except firmware_loop.FirmwareLoopError as e:
        pytest.skip(str(e))


def run_with_firmware(body, duration_s: float = 40.0) -> None:
    """Start the firmware (a fresh board: no bond) on a virtual radio, run ``body(radio, fw)``
    on the radio's loop, and stop everything on every path."""
    _need_node()
    with RadioThread() as rt:
        async def go():
            foot = sim.simulate("easy-run", "left", duration_s, rate_hz=RATE_HZ, seed=3)
            fw = FirmwarePeripheral(rt.radio, foot, wall_t0=time.time() + 0.5)
            await fw.start()
            try:
                await body(rt.radio, fw)
            finally:
                await fw.stop()

        rt.call(go(), 120)


async def _central(radio, address, path, name) -> BumbleCentral:
    c = BumbleCentral(radio, address, path, name)
    await c.start()
    return c


def test_owner_bonds_on_first_use_and_a_stranger_cannot_stop_or_read(tmp_path):
    async def body(radio, fw):
        assert fw.window_open and fw.bonds == [], "a fresh board pairs with its first host"
        owner = await _central(radio, OWNER, tmp_path / "owner.json", "owner")
        await owner.connect(ADDRESSES["left"])
        await owner.pair()
        await fw.wait_until(lambda: fw.bonds == [OWNER] and not fw.window_open)
        await owner.subscribe(ble.DATA_UUID, ble.STATUS_UUID, ble.CONTROL_UUID)
        assert len(await owner.wait_for(ble.DATA_UUID, 5)) >= 5, "the bonded laptop records"
        assert (await owner.read(ble.INFO_UUID))[1] == 0x03
        await owner.write_control(STOP)
        assert await owner.wait_for(ble.CONTROL_UUID, 1) == [b"\x01\x04\x11\x00"]
        await owner.write_control(START)
        await owner.wait_for(ble.CONTROL_UUID, 2)
        await owner.disconnect()

        stranger = await _central(radio, STRANGER, tmp_path / "stranger.json", "stranger")
        await stranger.connect(ADDRESSES["left"])
        assert await stranger.read(MANUFACTURER) == b"Open Insole", "standard services stay open"
        with pytest.raises(ATT_Error) as refused:
            await stranger.write_control(STOP)
        assert refused.value.error_code == 0x0F  # Insufficient Encryption
        with pytest.raises(ATT_Error):
            await stranger.read(ble.INFO_UUID)
        await stranger.subscribe(ble.DATA_UUID, ble.STATUS_UUID, ble.CONTROL_UUID, RSC_MEASUREMENT)
        await stranger.wait_for(RSC_MEASUREMENT, 2)  # two seconds of the watch's cadence ...
        assert not stranger.received[ble.DATA_UUID], "... and not one DATA packet"
        assert not stranger.received[ble.STATUS_UUID] and not stranger.received[ble.CONTROL_UUID]

        # Pairing outside the window: bumble completes the SMP exchange (as NimBLE would), the
        # firmware keeps no key and drops the link.
        try:
            await asyncio.wait_for(stranger.pair(), 10)
        except Exception:  # noqa: BLE001 - the link may go before the central's pairing ends
            pass
        await fw.wait_until(lambda: fw.dropped_links == 1)
        assert fw.bonds == [OWNER]
        assert not stranger.received[ble.DATA_UUID]
        await stranger.disconnect()

        # The owner's laptop comes back with its stored keys: no pairing, straight to data.
        await owner.connect(ADDRESSES["left"])
        await owner.encrypt()
        before = len(owner.received[ble.DATA_UUID])
        await owner.subscribe(ble.DATA_UUID)
        await owner.wait_for(ble.DATA_UUID, before + 5)
        await owner.disconnect()

    run_with_firmware(body)


def test_boot_press_opens_the_window_for_one_more_bond_then_forget_bonds(tmp_path):
    async def body(radio, fw):
        owner = await _central(radio, OWNER, tmp_path / "owner.json", "owner")
        await owner.connect(ADDRESSES["left"])
        await owner.pair()
        await fw.wait_until(lambda: fw.bonds == [OWNER] and not fw.window_open)
        await owner.disconnect()

        await fw.press_boot(1.0)
        assert not fw.window_open, "a short press does not open the window"
        await fw.press_boot(3.2)
        await fw.wait_until(lambda: fw.window_open)
        phone = await _central(radio, PHONE, tmp_path / "phone.json", "phone")
        await phone.connect(ADDRESSES["left"])
        await phone.pair()
        await fw.wait_until(lambda: fw.bonds == [OWNER, PHONE] and not fw.window_open)
        await phone.subscribe(ble.DATA_UUID, ble.CONTROL_UUID)
        await phone.wait_for(ble.DATA_UUID, 3)
        await phone.write_control(FORGET)
        assert await phone.wait_for(ble.CONTROL_UUID, 1) == [b"\x01\x04\x16\x00"]
        await fw.wait_until(lambda: fw.bonds == [] and fw.window_open)
        await phone.disconnect()

    run_with_firmware(body)
