"""End to end with the real firmware: the firmware under the MicroPython WebAssembly port, its
``bluetooth`` fake bridged to a bumble peripheral, beside a simulated insole reached by the
production ``ble://`` code through bleak (tests/support).

The firmware only streams to a bonded central (docs/security.md), so its foot is read here by a
plain bumble central that pairs first (tests/support/pairing.py; a fresh board's pairing window
is open). The production code's own pairing (``insole pair``) is tested with the bleak backend."""

from __future__ import annotations

import asyncio
import time

import firmware_loop
import pytest

from insole import protocol as P
from insole import sim
from insole.io import ble
from insole.io.sources import open_source
from tests.support.firmware_peripheral import FirmwarePeripheral
from tests.support.harness import virtual_ble
from tests.support.pairing import BumbleCentral
from tests.support.virtual_insole import ADDRESSES, VirtualInsole

pytestmark = pytest.mark.live  # starts processes, threads or ptys: make test-repeat

RATE_HZ = 200
LAPTOP = "C0:00:00:00:00:01"


def _need_node():
    try:
        firmware_loop.check_environment()
    except firmware_loop.FirmwareLoopError as e:
        pytest.skip(str(e))


def collect(src, until, limit_s: float = 20.0) -> list:
    """Packets from ``src`` until ``until(packets)`` holds (or fail after limit_s of silence)."""
    dec = P.PacketDecoder()
    got: list = []
    deadline = time.monotonic() + limit_s
    while not until(got):
        data = src.read(0.5)
        if data:
            got += dec.feed(data)
            deadline = time.monotonic() + limit_s
        assert time.monotonic() < deadline, f"stream went quiet; got {len(got)} packets"
    assert dec.error_count == 0, dec.errors
    return got


async def collect_central(central: BumbleCentral, until, limit_s: float = 20.0) -> list:
    """The packets the central receives from now on, until ``until(packets)`` holds."""
    start = len(central.stream)

    def packets():
        return [P.decode(v) for v in central.stream[start:]]

    await central.wait_until(lambda: until(packets()), limit_s)
    return packets()


async def command(central: BumbleCentral, cmd: P.Command) -> P.Reply:
    await central.write_control(P.encode(cmd))
    got = await collect_central(central, lambda g: any(isinstance(p, P.Reply) for p in g))
    return next(p for p in got if isinstance(p, P.Reply))


def test_firmware_and_simulator_side_by_side_over_ble(tmp_path):
    _need_node()
    with virtual_ble() as rt:
        wall_t0 = time.time() + 1.0
        foot = sim.simulate("easy-run", "left", 30.0, rate_hz=RATE_HZ, seed=2)
        fw = FirmwarePeripheral(rt.radio, foot, wall_t0=wall_t0)

        async def start():
            await fw.start()
            right = VirtualInsole(rt.radio, "right", duration_s=30.0, rate_hz=RATE_HZ,
                                  wall_t0=asyncio.get_running_loop().time() + 1.0)
            await right.start()
            laptop = BumbleCentral(rt.radio, LAPTOP, tmp_path / "keys.json")
            await laptop.start()
            return right, laptop

        right, laptop = rt.call(start(), 60)
        try:
            async def left_foot():
                await laptop.connect(ADDRESSES["left"])
                await laptop.pair()
                await fw.wait_until(lambda: fw.bonds == [LAPTOP])
                # the firmware's own GATT table and advertising, as a host sees them
                keys = dict(fw.table)
                assert {k for k, _, _ in keys[ble.SERVICE_UUID]} == {
                    ble.DATA_UUID, ble.STATUS_UUID, ble.INFO_UUID, ble.CONTROL_UUID}
                assert {"180a", "180f", "1814"} <= set(keys)
                assert laptop.connection.att_mtu == 247

                info = P.decode(await laptop.read(ble.INFO_UUID))
                assert isinstance(info, P.Info) and info.side == "left"
                assert info.firmware == "1.0.0" and info.rate_hz == RATE_HZ
                await laptop.subscribe(ble.DATA_UUID, ble.STATUS_UUID, ble.CONTROL_UUID)
                pk = await collect_central(laptop,
                                           lambda g: sum(isinstance(p, P.Data) for p in g) >= 8)
                data = [p for p in pk if isinstance(p, P.Data)]
                assert all(p.side == "left" and p.period_us == 1_000_000 // RATE_HZ for p in data)
                assert [p.seq for p in data] == list(range(data[0].seq, data[0].seq + len(data)))
                assert all(13 + 2 * p.channels * p.n_sets <= 247 - 3 for p in data)

                # STOP and START from the host, answered by the firmware itself
                assert (await command(laptop, P.Command(P.CMD_STOP))).code == P.REPLY_OK
                st = await collect_central(laptop, lambda g: any(
                    isinstance(p, P.Status) and not p.streaming for p in g))
                last_seq = max((p.seq for p in st if isinstance(p, P.Data)), default=data[-1].seq)
                quiet = await collect_central(
                    laptop, lambda g: sum(isinstance(p, P.Status) for p in g) >= 1)
                assert not any(isinstance(p, P.Data) for p in quiet)
                assert (await command(laptop, P.Command(P.CMD_START))).code == P.REPLY_OK
                resumed = await collect_central(laptop,
                                                lambda g: any(isinstance(p, P.Data) for p in g))
                first = next(p for p in resumed if isinstance(p, P.Data))
                assert first.seq == (last_seq + 1) & 0xFFFF
                assert (await command(laptop, P.Command(P.CMD_SET_RATE, (5,)))).code == \
                    P.REPLY_OUT_OF_RANGE
                assert fw.writes == 3  # STOP, START, SET_RATE reached the firmware

            rt.call(left_foot(), 90)

            # the simulated right foot streams to the production ble:// code at the same time
            right_src = open_source(f"ble://{ADDRESSES['right']}").open()
            try:
                rp = collect(right_src, lambda g: sum(isinstance(p, P.Data) for p in g) >= 8)
                # meanwhile the firmware keeps streaming to its bonded laptop
                rt.call(collect_central(laptop, lambda g: sum(isinstance(p, P.Data)
                                                              for p in g) >= 8), 30)
            finally:
                right_src.close()
            assert all(p.side == "right" for p in rp if isinstance(p, P.Data))
        finally:
            rt.call(laptop.disconnect(), 20)
            rt.call(fw.stop(), 20)
            rt.call(right.stop(), 20)
