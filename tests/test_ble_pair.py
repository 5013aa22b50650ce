"""Pairing, bonding and encrypted commands through the virtual radio (issue 13): the production
``ble://`` code and `insole pair`/`unpair` on bleak, bleak on the bumble backend, the virtual
insole with bumble's SMP and the attribute permissions of docs/ble.md. Other computers are other
bumble hosts on the same radio (``OtherHost``: an event loop of their own; or a process)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
from bleak import BleakClient
from bleak.exc import BleakError
from helpers import ROOT

from insole import protocol as P
from insole.cli import main as cli_main
from insole.io import ble
from insole.io.sources import SourceClosed, open_source
from tests.support import BACKEND
from tests.support.bumble_backend import HCI_ENV, KEYSTORE_ENV
from tests.support.harness import OtherHost, pair_feet, start_feet, virtual_ble
from tests.support.virtual_insole import VirtualInsole

pytestmark = pytest.mark.live  # starts processes, threads or ptys: make test-repeat

STOP = P.encode(P.Command(P.CMD_STOP))


@pytest.fixture
def radio():
    with virtual_ble() as rt:
        yield rt


def data_packets(src, n: int, limit: int = 400) -> list[P.Data]:
    """The next ``n`` DATA packets a source delivers (reads at most ``limit`` times)."""
    out: list[P.Data] = []
    for _ in range(limit):
        raw = src.read(1.0)
        if raw and raw[1] == P.DATA:
            out.append(P.decode(raw))
            if len(out) == n:
                return out
    raise AssertionError(f"only {len(out)} DATA packets of {n}")


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


class Stranger:
    """bleak calls a stranger's computer makes, run on its own host (an :class:`OtherHost`)."""

    def __init__(self, host: OtherHost, address: str) -> None:
        self.host = host
        self.address = address
        self.client: BleakClient | None = None
        self.data: list[bytes] = []

    async def _connect(self) -> None:
        dev = (await ble.scan(address=self.address))[0].device
        self.client = BleakClient(dev, backend=ble.backend_classes()[1])
        await self.client.connect()

    def connect(self) -> None:
        self.host.run(self._connect())

    def call(self, what: str, *args):
        return self.host.run(getattr(self.client, what)(*args))

    def disconnect(self) -> None:
        if self.client is not None and self.client.is_connected:
            self.host.run(self.client.disconnect())


def test_a_stranger_cannot_stop_a_bonded_recording_nor_read_the_stream(radio, capsys):
    # The firmware serves one central at a time (it stops advertising when one connects), so a
    # stranger meets a recording insole only in a gap of its link. To test the GATT security on
    # its own, this insole lets a second central in beside the recording one.
    feet = start_feet(radio, duration_s=60.0, left={"max_centrals": 2})
    left = feet["left"]
    pair_feet({"left": left})
    src = open_source("ble://Insole-L").open()
    try:
        first = data_packets(src, 10)
        with OtherHost() as other:
            s = Stranger(other, left.address)
            s.connect()
            try:
                # the standard services stay open, as watches expect
                assert s.call("read_gatt_char", ble.BATTERY_LEVEL_UUID)[0] <= 100
                assert s.call("read_gatt_char", ble.FIRMWARE_REVISION_UUID) == b"sim-0.1.0"
                # the insole's own: refused, as BlueZ reports an ATT error through bleak
                with pytest.raises(BleakError, match=r"ATT error: 0x0f \(Insufficient Encryption"):
                    s.call("read_gatt_char", ble.INFO_UUID)
                with pytest.raises(BleakError, match="Insufficient Encryption"):
                    s.call("read_gatt_char", ble.STATUS_UUID)
                with pytest.raises(BleakError, match="Insufficient Encryption"):
                    s.call("write_gatt_char", ble.CONTROL_UUID, STOP, True)
                # subscribing is a CCCD write (open), but nothing comes on an unencrypted link
                s.call("start_notify", ble.DATA_UUID, lambda c, d: s.data.append(bytes(d)))
                s.call("start_notify", ble.CONTROL_UUID, lambda c, d: s.data.append(bytes(d)))
                # outside the pairing window (it closed with the first bond) pairing fails
                assert not left.window_open
                with pytest.raises(BleakError, match="AuthenticationFailed"):
                    s.call("pair")
                assert left.pairings_refused == 1
                # the bonded host records on, without a gap, while the stranger listens
                more = data_packets(src, 40)
                assert not s.data
            finally:
                s.disconnect()
        seqs = [p.seq for p in first + more]
        assert seqs == list(range(seqs[0], seqs[0] + 50))
        assert left.streaming and all(P.decode(r).command != P.CMD_STOP for r in left.replies)
        # and the bonded host's own commands are obeyed
        assert src.command(P.Command(P.CMD_IDENTIFY)).code == P.REPLY_OK
        assert left.identify_count == 1
    finally:
        src.close()
    assert left.bonds and len(left.bonds) == 1

    # the stranger's `insole command ... stop` and `insole record`, as a person types them on
    # another computer: one line each, exit 2, no timeout
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{ble.BACKEND_ENV: BACKEND,
                                                    HCI_ENV: radio.radio.hci_spec})
    env.pop(KEYSTORE_ENV, None)
    r = subprocess.run([sys.executable, "-m", "insole.cli", "command", "ble://Insole-L", "stop"],
                       env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip() == f"insole command: error: {ble.NOT_PAIRED}"
    assert left.streaming


def test_the_pairing_window_opens_with_boot_and_closes_after_a_bond_or_its_time(radio, capsys):
    feet = start_feet(radio, duration_s=60.0, left={"window_s": 30.0})
    left = feet["left"]
    url = f"ble://{left.address}"
    # a new insole (no bond yet) is open: the first host pairs; the window then closes
    assert left.window_open and left.bonds == []
    assert cli_main(["pair", url]) == 0
    assert "paired" in capsys.readouterr().out
    assert not left.window_open and len(left.bonds) == 1
    assert cli_main(["pair", url]) == 0  # the same host again: nothing to do
    assert "already takes commands from this computer" in capsys.readouterr().out

    with OtherHost() as b, OtherHost() as c:
        # outside the window: refused, with what to do
        with pytest.raises(ble.BleError) as e:
            b.run(ble._pair(url, 5.0))
        assert str(e.value) == ble.WINDOW_CLOSED
        assert "press BOOT for 3 s, then run insole pair within 60 s" in ble.WINDOW_CLOSED
        # a short press does nothing; 3 s opens it; one new bond closes it at once
        left.press_boot(held_s=1.0)
        with pytest.raises(ble.BleError, match="pairing window is closed"):
            b.run(ble._pair(url, 5.0))
        left.press_boot()
        assert left.window_open
        assert not b.run(ble._pair(url, 5.0)).already
        assert not left.window_open and len(left.bonds) == 2
        with pytest.raises(ble.BleError, match="pairing window is closed"):
            c.run(ble._pair(url, 5.0))
        # the window also closes by itself after window_s (60 s on the device; short here)
        left.window_s = 0.2
        left.press_boot()
        radio.call(asyncio.wait_for(left.window_closed.wait(), 10.0))
        assert not left.window_open
        with pytest.raises(ble.BleError, match="pairing window is closed"):
            c.run(ble._pair(url, 5.0))
        assert left.pairings_refused == 4 and len(left.bonds) == 2


def test_four_bonds_at_most_the_oldest_replaced(radio, capsys):
    left = start_feet(radio, duration_s=60.0)["left"]
    url = f"ble://{left.address}"
    assert cli_main(["pair", url]) == 0  # this process's host: the first and oldest bond
    first = left.bonds[0]
    hosts = [OtherHost() for _ in range(4)]
    try:
        for h in hosts:
            h.__enter__()
            left.press_boot()
            assert not h.run(ble._pair(url, 5.0)).already
        assert len(left.bonds) == 4 and first not in left.bonds
    finally:
        for h in hosts:
            h.__exit__(None, None, None)
    # the replaced host still holds its key; the insole no longer does: refused, one line
    capsys.readouterr()
    assert cli_main(["info", url]) == 2
    assert one_line(capsys).endswith(ble.NOT_PAIRED)


def test_bonds_survive_a_reboot_of_the_insole(radio, tmp_path, capsys):
    keys = tmp_path / "insole-flash.json"

    async def boot() -> VirtualInsole:
        v = VirtualInsole(radio.radio, "left", duration_s=60.0, keystore_path=str(keys))
        await v.start()
        return v

    v = radio.call(boot())
    try:
        assert cli_main(["pair", f"ble://{v.address}"]) == 0
        bonds = v.bonds
        assert len(bonds) == 1 and bonds[0] in json.loads(keys.read_text())[v.address]
    finally:
        radio.call(v.power_off())
    v = radio.call(boot())  # the same insole, switched on again
    try:
        assert v.bonds == bonds and not v.window_open
        ble._SEEN.clear()
        src = open_source(f"ble://{v.address}").open()  # encrypted with the stored key
        try:
            assert len(data_packets(src, 5)) == 5
            assert src.command(P.Command(P.CMD_GET_INFO)).code == P.REPLY_OK
        finally:
            src.close()
        with OtherHost() as b, pytest.raises(ble.BleError, match="pairing window is closed"):
            b.run(ble._pair(f"ble://{v.address}", 5.0))
    finally:
        radio.call(v.power_off())


def test_unpair_then_record_is_refused_and_forget_on_device_reopens_the_window(
        radio, tmp_path, capsys):
    feet = start_feet(radio, duration_s=60.0)
    pair_feet(feet)
    left, right = feet["left"], feet["right"]
    # this computer forgets the left insole: its recordings are refused, one line, no timeout
    assert cli_main(["unpair", "ble://Insole-L"]) == 0
    assert "no longer has a bond" in capsys.readouterr().out
    assert len(left.bonds) == 1  # the insole still lists it until told otherwise
    assert cli_main(["record", "ble://Insole-L", "--out", str(tmp_path / "s"),
                     "--duration-s", "1"]) == 2
    assert one_line(capsys) == f"insole record: error: {ble.NOT_PAIRED}"
    # the right insole erases its bonds (FORGET_BONDS over the bonded link), then the host's
    assert cli_main(["unpair", "ble://Insole-R", "--forget-on-device"]) == 0
    assert right.bonds == [] and right.window_open
    assert P.decode(right.replies[-1]) == P.Reply(P.CMD_FORGET_BONDS, P.REPLY_OK)
    assert cli_main(["info", "ble://Insole-R"]) == 2
    assert one_line(capsys).endswith(ble.NOT_PAIRED)
    # with no bond left it pairs again at once; `insole command ... forget-bonds` does the same
    assert cli_main(["pair", "ble://Insole-R"]) == 0 and len(right.bonds) == 1
    assert cli_main(["command", "ble://Insole-R", "forget-bonds"]) == 0
    assert "FORGET_BONDS ok" in capsys.readouterr().out
    assert right.bonds == [] and right.window_open


def test_a_recording_the_insole_stops_accepting_ends_with_the_reason(radio):
    # the insole forgets its bonds during a recording (FORGET_BONDS from the serial port, say);
    # the link then drops: the source must not retry for ever, it ends saying why
    feet = start_feet(radio, duration_s=60.0)
    left = feet["left"]
    pair_feet({"left": left})
    src = open_source("ble://Insole-L").open()
    try:
        data_packets(src, 5)
        radio.call(left.forget_bonds())
        radio.call(left.drop_link())
        with pytest.raises(SourceClosed, match="not paired with this laptop"):
            for _ in range(400):
                src.read(1.0)
        assert src.disconnects == 1 and src.reconnects == 0
    finally:
        src.close()
