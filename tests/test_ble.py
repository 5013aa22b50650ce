"""``ble://`` through a virtual radio: the production code on bleak, bleak on a bumble backend,
two simulated insoles as bumble peripherals (tests/support). No Bluetooth adapter is needed."""

from __future__ import annotations

import json
import threading

import pytest

from insole import protocol as P
from insole.analysis import analyse
from insole.analysis.stream import streams_from_sources
from insole.cli import main as cli_main
from insole.io import ble
from insole.io.recorder import Recorder
from insole.io.session import load_inputs
from insole.io.sources import open_source
from insole.sim import truth_document
from insole.validation.score import _alignment_s, score
from tests.support.harness import pair_feet, start_feet, virtual_ble, wait_finished

pytestmark = pytest.mark.live  # starts processes, threads or ptys: make test-repeat

SIDES = ("left", "right")


@pytest.fixture
def radio():
    with virtual_ble() as rt:
        yield rt


def test_scan_finds_both_insoles_by_service_with_names(radio, capsys):
    feet = start_feet(radio)
    found = ble.run_ble(ble.scan(), 20)
    assert sorted((f.name, f.side, f.address) for f in found) == sorted(
        (feet[s].name, s, feet[s].address) for s in SIDES)
    assert all(ble.SERVICE_UUID in f.service_uuids for f in found)
    # by name and by address, as the URLs use them
    assert [f.address for f in ble.run_ble(ble.scan(name="Insole-R"), 20)] == [feet["right"].address]
    assert [f.name for f in ble.run_ble(ble.scan(address=feet["left"].address), 20)] == ["Insole-L"]
    # the command a person types: battery and firmware read over a short connection each
    assert cli_main(["scan", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"Insole-L", "Insole-R"}
    assert rows["Insole-L"]["firmware"] == feet["left"].firmware
    assert rows["Insole-L"]["side"] == "left" and 0 <= rows["Insole-L"]["battery_pct"] <= 100
    assert ble.expand_urls(["ble://"]) == [f"ble://{feet[s].address}" for s in SIDES]


def test_gatt_table_has_the_protocol_layout(radio):
    start_feet(radio)
    from bleak import BleakClient

    async def table():
        backend = ble.backend_classes()[1]
        dev = (await ble.scan(name="Insole-L"))[0].device
        async with BleakClient(dev, backend=backend) as c:
            await c.pair()  # INFO is read-encrypted
            layout = {s.uuid: {ch.uuid: sorted(ch.properties) for ch in s.characteristics}
                      for s in c.services}
            reads = {u: bytes(await c.read_gatt_char(u)) for u in (
                ble.INFO_UUID, "00002a29-0000-1000-8000-00805f9b34fb", ble.FIRMWARE_REVISION_UUID,
                ble.BATTERY_LEVEL_UUID, "00002a54-0000-1000-8000-00805f9b34fb",
                "00002a5d-0000-1000-8000-00805f9b34fb")}
            return layout, reads, c.mtu_size

    layout, reads, mtu = ble.run_ble(table(), 30)
    u16 = "0000{:04x}-0000-1000-8000-00805f9b34fb".format
    assert layout[ble.SERVICE_UUID] == {
        ble.DATA_UUID: ["notify"], ble.STATUS_UUID: ["notify", "read"], ble.INFO_UUID: ["read"],
        ble.CONTROL_UUID: ["notify", "write", "write-without-response"]}
    assert set(layout[u16(0x180A)]) == {u16(0x2A29), u16(0x2A24), u16(0x2A26)}
    assert layout[u16(0x180F)] == {u16(0x2A19): ["notify", "read"]}
    assert layout[u16(0x1814)] == {u16(0x2A53): ["notify"], u16(0x2A54): ["read"],
                                   u16(0x2A5D): ["read"]}
    info = P.decode(reads[ble.INFO_UUID])
    assert isinstance(info, P.Info) and info.side == "left" and info.rate_hz == 500
    assert reads[u16(0x2A5D)] == b"\x02"  # sensor location: in shoe
    assert mtu == 247  # the insole's preferred MTU: a full DATA packet fits one notification


def test_set_rate_stop_start_from_the_host(radio):
    feet = start_feet(radio, speed=4.0, duration_s=60.0)
    pair_feet({"left": feet["left"]})
    src = open_source("ble://Insole-L").open()
    try:
        def data_after(pred, limit=2000):
            dec = P.PacketDecoder()
            for _ in range(limit):
                for p in dec.feed(src.read(1.0) or b"\x00"):
                    if pred(p):
                        return p
            raise AssertionError("no matching packet")

        first = data_after(lambda p: isinstance(p, P.Info))
        assert first.side == "left"
        assert data_after(lambda p: isinstance(p, P.Data)).period_us == 2000
        assert src.command(P.Command(P.CMD_SET_RATE, (250,))).code == P.REPLY_OK
        assert data_after(lambda p: isinstance(p, P.Info)).rate_hz == 250  # INFO re-read
        assert data_after(lambda p: isinstance(p, P.Data) and p.period_us == 4000)
        assert src.command(P.Command(P.CMD_SET_RATE, (5000,))).code == P.REPLY_OUT_OF_RANGE
        assert src.command(P.Command(P.CMD_STOP)).code == P.REPLY_OK
        # once STATUS says stopped, no DATA follows until START
        data_after(lambda p: isinstance(p, P.Status) and not p.streaming)
        sent_before = len(feet["left"].sent_seqs)
        stopped_at = feet["left"].sent_seqs[-1] + 1
        data_after(lambda p: isinstance(p, P.Status) and not p.streaming)
        assert len(feet["left"].sent_seqs) == sent_before
        assert src.command(P.Command(P.CMD_START)).code == P.REPLY_OK
        # the stream resumes where it stopped: no packet was made while stopped
        assert data_after(lambda p: isinstance(p, P.Data) and p.seq >= stopped_at).seq == stopped_at
        assert src.command(P.Command(P.CMD_IDENTIFY)).code == P.REPLY_OK
        assert feet["left"].identify_count == 1
        # a malformed command still gets its one REPLY
        src.send(bytes((1, P.CMD_SET_RATE, 1)))
        assert src.wait_reply(P.CMD_SET_RATE).code == P.REPLY_BAD_LENGTH
    finally:
        src.close()


def test_two_drops_in_two_minutes_leave_gaps_that_match_and_lose_nothing_received(radio, tmp_path):
    speed = 8.0  # a 2-minute run in 15 s of wall time
    duration_s = 120.0
    # paired first (each reconnect then encrypts with the stored key); the runs start after
    feet = start_feet(radio, speed=speed, duration_s=duration_s, paired=True,
                      left={"drops_at_s": (30.0, 60.0), "scenario": "heel-striker"},
                      right={"drops_at_s": (45.0, 75.0), "scenario": "heel-striker"})
    out = tmp_path / "session"
    rec = Recorder(ble.expand_urls(["ble://"]), out)

    def stop_when_done():
        try:
            wait_finished(radio, feet, 60)
            # a REPLY arrives after every notification sent before it on the same link
            for w in rec.workers:
                w.source.command(P.Command(P.CMD_IDENTIFY))
        finally:
            rec.stop.set()

    stopper = threading.Thread(target=stop_when_done, daemon=True)
    stopper.start()
    try:
        res = rec.run()
    finally:
        rec.stop.set()
        stopper.join(70)
    assert [w.fault for w in res["workers"]] == [None, None]
    meta = json.loads((out / "session.json").read_text())
    assert meta["closed"] and [s["framing"] for s in meta["sources"]] == ["packets", "packets"]

    sources = load_inputs([out])
    streams = streams_from_sources(sources)
    for side in SIDES:
        v, fs, src = feet[side], streams[side], sources[SIDES.index(side)]
        got = [P.decode(c.data).seq for c in src.chunks if c.data[1] == P.DATA]
        # every packet handed to the link arrived and was recorded, in order, once
        assert got == v.sent_seqs
        # the gaps are exactly the packets made while the link was down
        assert fs.quality["packets_lost"] == len([s for s in v.unsent_seqs if got[0] < s < got[-1]])
        assert fs.quality["decode_errors"] == 0
        lg = src.link
        assert lg["disconnects"] == 2 and lg["reconnects"] == 2
        assert fs.quality["link_reconnects"] == 2
        # the gaps match the time the device had no central: its own record, in device time
        downs = [d for d in v.link_down if any(x.at_s <= d[0] < x.at_s + 1 for x in v.drops)]
        assert len(downs) == 2
        gap_s = sum(b - a for a, b in downs)
        samples_missing = fs.quality["samples_missing"] / fs.rate_hz
        assert samples_missing == pytest.approx(gap_s, abs=2 * 23 / 500 + 0.01)
        # the host's ledger: both drops, both reconnects, the time without a link (host clock;
        # compared with nothing here, since the virtual insole runs 8x faster than real time)
        assert lg["disconnected_s"] > 0 and len(lg["link_events"]) == 2
        assert fs.quality["link_disconnected_s"] == lg["disconnected_s"]

    # the analysis scores F1 >= 0.99 over the connected time
    doc = analyse(streams)
    truth = truth_document({s: feet[s].foot for s in SIDES})
    for side in SIDES:
        tf, af = truth["feet"][side], doc["feet"][side]
        shift = _alignment_s(af, tf)
        downs = feet[side].link_down
        pad_s = 1.5  # a step cut by a gap is not a step to find

        def connected(t_s, downs=downs):
            return all(not (a - pad_s <= t_s <= (b if b is not None else 1e9) + pad_s)
                       for a, b in downs)

        tf["steps"] = [s for s in tf["steps"] if connected(s["ic_s"])]
        af["steps"] = [s for s in af["steps"] if connected(s["ic_s"] + shift)]
    result = score(doc, truth, criteria={"f1_min": 0.99})
    assert result["ok"]["f1_min"], {s: result["feet"][s]["f1"] for s in SIDES}


def test_info_command_and_a_missing_insole(radio, capsys, monkeypatch):
    monkeypatch.setattr(ble, "SCAN_TIMEOUT_S", 1.0)  # how long to look for the missing one
    pair_feet({"right": start_feet(radio)["right"]})
    assert cli_main(["info", "ble://Insole-R", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["info"]["side"] == "right" and doc["info"]["firmware"] == "sim-0.1.0"
    assert doc["link"]["mtu"] == 247
    # no such insole: one line that says what to do, exit 2
    assert cli_main(["info", "ble://Insole-X", "--timeout-s", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no insole named Insole-X is advertising" in err[0]


def test_backend_variable_errors_are_one_line(monkeypatch, capsys):
    monkeypatch.setenv(ble.BACKEND_ENV, "nosuchmodule:Scanner,nosuchmodule:Client")
    assert cli_main(["scan"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ble.BACKEND_ENV in err[0]
    assert cli_main(["record", "ble://", "--out", "/nonexistent/x"]) == 2


def test_explain_says_what_to_do():
    assert "adapter" in ble.explain(Exception("No Bluetooth adapters found."))
    assert "turn it on" in ble.explain(Exception("[org.bluez.Error.NotReady] Resource Not Ready"))
    assert "permission" in ble.explain(Exception("org.freedesktop.DBus.Error.AccessDenied"))
    assert "bluetoothd" in ble.explain(FileNotFoundError(2, "No such file", "/run/dbus/system_bus_socket"))
