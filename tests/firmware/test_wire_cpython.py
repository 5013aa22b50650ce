"""The firmware's wire module is pure: under CPython too it reproduces every golden vector and
agrees with the host's reference implementation (insole.protocol)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from insole import protocol

ROOT = Path(__file__).resolve().parent.parent.parent
ZONES = protocol.ZONES


@pytest.fixture(scope="module")
def wire():
    spec = importlib.util.spec_from_file_location("fw_wire", ROOT / "firmware" / "wire.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def vectors(shared):
    return json.loads((shared / "protocol" / "vectors.json").read_text())


def _encode(wire, f):
    buf = bytearray(600)
    side = 1 if f.get("side") == "right" else 0
    t = f["type"]
    if t == "DATA":
        n = wire.encode_data(buf, side, f["overrun"], f["seq"], f["t0_us"], f["period_us"], f["samples"])
    elif t == "STATUS":
        n = wire.encode_status(buf, side, f["battery_pct"], f["battery_mv"], f["uptime_s"], f["rate_hz"],
                               f["achieved_hz"], f["overruns"], f["fault_mask"], f["streaming"],
                               f["cadence_spm"])
    elif t == "INFO":
        n = wire.encode_info(buf, side, [ZONES.index(z) for z in f["zones"]], f["rate_hz"],
                             f["supply_mv"], f["r_fixed_ohm"], bytes.fromhex(f["device_id"]), f["firmware"])
    elif t == "REPLY":
        n = wire.encode_reply(buf, f["command"], f["code"])
    else:
        return None
    return bytes(buf[:n])


def test_packets_and_frames_match_vectors(wire, vectors):
    n_pk = 0
    for p in vectors["packets"]:
        pkt = bytes.fromhex(p["packet_hex"])
        got = _encode(wire, p["fields"])
        if got is not None:
            assert got.hex() == p["packet_hex"], p["name"]
            n_pk += 1
        out = bytearray(wire.frame_bytes_max(len(pkt)))
        n = wire.frame_into(pkt, len(pkt), out)
        assert bytes(out[:n]) == bytes.fromhex(p["frame_hex"]) == protocol.frame(pkt), p["name"]
        back = bytearray(600)
        m = wire.unframe_into(out, n - 1, back)
        assert bytes(back[:m]) == pkt
    assert n_pk == 13


def test_frame_agrees_with_host_for_random_packets(wire):
    import random
    rng = random.Random(3)
    for n in (2, 13, 253, 254, 255, 508, 509, 700):
        pkt = bytes(rng.choice((0, 0, 1, 255, rng.randrange(256))) for _ in range(n))
        out = bytearray(wire.frame_bytes_max(n))
        m = wire.frame_into(pkt, n, out)
        assert bytes(out[:m]) == protocol.frame(pkt), n
        back = bytearray(n + 8)
        assert wire.unframe_into(out, m - 1, back) == n


def test_unframe_rejects_damage(wire):
    fr = bytearray(protocol.frame(bytes.fromhex("0112f401")))
    out = bytearray(64)
    fr[2] ^= 0x40
    assert wire.unframe_into(fr, len(fr) - 1, out) == -3  # CRC
    assert wire.unframe_into(b"\x09\x01", 2, out) == -1  # COBS block past the end
    assert wire.unframe_into(b"\x02\x01", 2, out) == -2  # too short for packet + CRC


@pytest.mark.parametrize("pkt,want", [
    ("0110", (0x10, 0, 0)), ("0111", (0x11, 0, 0)), ("0112f401", (0x12, 0, 500)),
    ("01121800", (0x12, 3, 24)), ("0112e903", (0x12, 3, 1001)), ("011219", (0x12, 2, 0)),
    ("0113", (0x13, 0, 0)), ("0114", (0x14, 0, 0)), ("011501", (0x15, 0, 1)),
    ("011502", (0x15, 3, 2)), ("0115", (0x15, 2, 0)), ("011000", (0x10, 2, 0)),
    ("017f", (0x7F, 1, 0)), ("0101", (0x01, 1, 0)), ("0210", (None, 1, 0)), ("01", (None, 2, 0)),
])
def test_parse_command(wire, pkt, want):
    b = bytes.fromhex(pkt)
    assert wire.parse_command(b, len(b)) == want
