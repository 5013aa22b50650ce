"""End to end with the real firmware: the firmware under the MicroPython WebAssembly port, its
``bluetooth`` fake bridged to a bumble peripheral, beside a simulated insole, both paired with
``insole pair``'s code and then reached by the production ``ble://`` code through bleak
(tests/support). The firmware streams only to a bonded host (docs/security.md); a fresh board has
no bond, so its pairing window is open. The firmware's own pairing rules, and a stranger refused,
are in tests/test_ble_firmware_pairing.py."""

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
from tests.support.virtual_insole import VirtualInsole

pytestmark = pytest.mark.live  # starts processes, threads or ptys: make test-repeat

RATE_HZ = 200


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


def test_firmware_and_simulator_side_by_side_over_ble():
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
            return right

        right = rt.call(start(), 60)
        try:
            urls = ble.expand_urls(["ble://"])
            assert len(urls) == 2
            for u in urls:
                ble.pair_insole(u)
            assert len(fw.bonds) == 1  # the firmware stored this laptop's bond
            srcs = [open_source(u).open() for u in urls]  # one after the other
            try:
                left_src, right_src = srcs
                # the firmware's own GATT table and advertising, as a host sees them
                keys = dict(fw.table)
                assert {k for k, _, _ in keys[ble.SERVICE_UUID]} == {
                    ble.DATA_UUID, ble.STATUS_UUID, ble.INFO_UUID, ble.CONTROL_UUID}
                assert {"180a", "180f", "1814"} <= set(keys)
                assert left_src.mtu == 247

                pk = collect(left_src, lambda g: sum(isinstance(p, P.Data) for p in g) >= 8)
                info = pk[0]
                assert isinstance(info, P.Info) and info.side == "left"
                assert info.firmware == "1.0.0" and info.rate_hz == RATE_HZ
                data = [p for p in pk if isinstance(p, P.Data)]
                assert all(p.side == "left" and p.period_us == 1_000_000 // RATE_HZ for p in data)
                assert [p.seq for p in data] == list(range(data[0].seq, data[0].seq + len(data)))
                assert all(13 + 2 * p.channels * p.n_sets <= 247 - 3 for p in data)
                # the simulated right foot streams at the same time
                rp = collect(right_src, lambda g: sum(isinstance(p, P.Data) for p in g) >= 8)
                assert all(p.side == "right" for p in rp if isinstance(p, P.Data))

                # STOP and START from the host, answered by the firmware itself
                assert left_src.command(P.Command(P.CMD_STOP)).code == P.REPLY_OK
                st = collect(left_src, lambda g: any(isinstance(p, P.Status) and not p.streaming
                                                     for p in g))
                last_seq = max((p.seq for p in st if isinstance(p, P.Data)),
                               default=data[-1].seq)
                quiet = collect(left_src, lambda g: sum(isinstance(p, P.Status) for p in g) >= 1)
                assert not any(isinstance(p, P.Data) for p in quiet)
                assert left_src.command(P.Command(P.CMD_START)).code == P.REPLY_OK
                resumed = collect(left_src, lambda g: any(isinstance(p, P.Data) for p in g))
                first = next(p for p in resumed if isinstance(p, P.Data))
                assert first.seq == (last_seq + 1) & 0xFFFF
                assert left_src.command(P.Command(P.CMD_SET_RATE, (5,))).code == \
                    P.REPLY_OUT_OF_RANGE
                # pairing's GET_INFO check, STOP, START, SET_RATE reached the firmware
                assert fw.writes == 4
            finally:
                for s in srcs:
                    s.close()
        finally:
            rt.call(fw.stop(), 20)
            rt.call(right.stop(), 20)
