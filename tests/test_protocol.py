"""The wire protocol against the golden vectors, and property tests of the stream decoder."""

from __future__ import annotations

import json
import random
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from insole import protocol as P
from insole.errors import ProtocolError


def _vectors(shared):
    return json.loads((shared / "protocol" / "vectors.json").read_text())


def build(f: dict) -> P.Packet:
    t = f["type"]
    if t == "DATA":
        return P.Data(f["side"], f["seq"], f["t0_us"], f["period_us"],
                      np.array(f["samples"], dtype=np.uint16), f["overrun"])
    if t == "STATUS":
        return P.Status(**{k: v for k, v in f.items() if k != "type"})
    if t == "INFO":
        return P.Info(f["side"], tuple(f["zones"]), f["rate_hz"], f["supply_mv"],
                      f["r_fixed_ohm"], f["device_id"], f["firmware"])
    if t == "REPLY":
        return P.Reply(f["command"], f["code"])
    if t == "COMMAND":
        return P.Command(f["command"], tuple(f["args"]))
    raise AssertionError(t)


def fields_of(pkt: P.Packet) -> dict:
    """The vector-file view of a decoded packet."""
    if isinstance(pkt, P.Data):
        return {"type": "DATA", "side": pkt.side, "seq": pkt.seq, "t0_us": pkt.t0_us,
                "period_us": pkt.period_us, "overrun": pkt.overrun, "channels": pkt.channels,
                "samples": pkt.samples.tolist()}
    if isinstance(pkt, P.Status):
        d = dict(pkt.__dict__)
        return {"type": "STATUS", **d}
    if isinstance(pkt, P.Info):
        return {"type": "INFO", "side": pkt.side, "zones": list(pkt.zones), "rate_hz": pkt.rate_hz,
                "supply_mv": pkt.supply_mv, "r_fixed_ohm": pkt.r_fixed_ohm,
                "device_id": pkt.device_id, "firmware": pkt.firmware}
    if isinstance(pkt, P.Reply):
        return {"type": "REPLY", "command": pkt.command, "code": pkt.code}
    return {"type": "COMMAND", "command": pkt.command, "args": list(pkt.args)}


def test_every_vector_encodes_byte_for_byte(shared):
    vec = _vectors(shared)
    assert len(vec["packets"]) >= 19
    for v in vec["packets"]:
        pkt = build(v["fields"])
        assert P.encode(pkt).hex() == v["packet_hex"], v["name"]
        assert P.frame(pkt).hex() == v["frame_hex"], v["name"]


def test_every_vector_decodes_to_its_fields(shared):
    for v in _vectors(shared)["packets"]:
        pkt = P.decode(bytes.fromhex(v["packet_hex"]))
        want = dict(v["fields"])
        got = fields_of(pkt)
        for k, val in want.items():
            assert got[k] == val, (v["name"], k)
        # and through the framing
        dec = P.StreamDecoder()
        (again,) = dec.feed(bytes.fromhex(v["frame_hex"]))
        assert P.encode(again).hex() == v["packet_hex"]
        assert dec.error_count == 0


def test_damaged_stream_recovers_exactly_the_good_packets(shared):
    s = _vectors(shared)["streams"][0]
    raw = bytes.fromhex(s["stream_hex"])
    for chunk in (len(raw), 1, 7, 64):  # whole, byte by byte, and odd chunkings
        dec = P.StreamDecoder()
        out = []
        for i in range(0, len(raw), chunk):
            out += dec.feed(raw[i:i + chunk])
        dec.flush()
        assert [P.encode(p).hex() for p in out] == s["expect_packets_hex"]
        assert dec.error_count >= s["expect_at_least_errors"]
        # every kind named in the vector's note is counted separately
        for kind in ("garbage", "crc", "empty_frame", "unknown_version", "unknown_type", "bad_length"):
            assert dec.errors[kind] >= 1, kind


def test_decode_rejects_malformed_packets_by_kind():
    cases = {
        b"": "short",
        b"\x02\x01": "unknown_version",
        b"\x01\x7f": "unknown_type",
        b"\x01\x01\x00\x05": "bad_length",
        bytes([1, 2]) + bytes(10): "bad_length",
        bytes([1, 4, 0x12]): "bad_length",
        bytes([1, 0x12, 1]): "bad_length",
    }
    for raw, kind in cases.items():
        with pytest.raises(ProtocolError) as ei:
            P.decode(raw)
        assert ei.value.kind == kind, raw


def test_cobs_254_run_boundaries():
    for n in (253, 254, 255, 508, 509):
        data = bytes(range(1, 256))[:254] * 3
        data = data[:n]
        enc = P.cobs_encode(data)
        assert b"\x00" not in enc
        assert P.cobs_decode(enc) == data
        with_zero = data + b"\x00" + data
        assert P.cobs_decode(P.cobs_encode(with_zero)) == with_zero


sides = st.sampled_from(P.SIDES)


@st.composite
def data_packets(draw):
    c = draw(st.integers(1, 8))
    n = draw(st.integers(1, 30))
    samples = draw(st.lists(st.integers(0, 65535), min_size=c * n, max_size=c * n))
    return P.Data(draw(sides), draw(st.integers(0, 65535)), draw(st.integers(0, 2**32 - 1)),
                  draw(st.integers(1, 65535)), np.array(samples, dtype=np.uint16).reshape(n, c),
                  draw(st.booleans()))


@st.composite
def other_packets(draw):
    kind = draw(st.integers(0, 3))
    if kind == 0:
        u8, u16 = st.integers(0, 255), st.integers(0, 65535)
        return P.Status(draw(sides), draw(u8), draw(u16), draw(st.integers(0, 2**32 - 1)),
                        draw(u16), draw(u16), draw(st.integers(0, 2**32 - 1)), draw(u8),
                        draw(st.integers(0, 1)), draw(u8))
    if kind == 1:
        zones = draw(st.lists(st.sampled_from(P.ZONES), min_size=1, max_size=8))
        fw = draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-", max_size=40))
        return P.Info(draw(sides), tuple(zones), draw(st.integers(0, 65535)),
                      draw(st.integers(0, 65535)), draw(st.integers(0, 2**32 - 1)),
                      draw(st.binary(min_size=6, max_size=6)).hex(), fw)
    if kind == 2:
        return P.Reply(draw(st.integers(0, 255)), draw(st.integers(0, 4)))
    cmd = draw(st.sampled_from(sorted(P.COMMANDS)))
    args = ()
    if cmd == P.CMD_SET_RATE:
        args = (draw(st.integers(0, 65535)),)
    elif cmd == P.CMD_SET_SIDE:
        args = (draw(st.integers(0, 255)),)
    return P.Command(cmd, args)


packets = st.one_of(data_packets(), other_packets())


@settings(max_examples=300, deadline=None)
@given(packets)
def test_random_packets_round_trip(pkt):
    raw = P.encode(pkt)
    back = P.decode(raw)
    assert P.encode(back) == raw
    (framed,) = P.StreamDecoder().feed(P.frame(pkt))
    assert P.encode(framed) == raw


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(data):
    dec = P.StreamDecoder()
    for pkt in dec.feed(data):
        P.encode(pkt)  # whatever came out is a well-formed packet
    dec.flush()


@settings(max_examples=200, deadline=None)
@given(st.lists(packets, min_size=1, max_size=8), st.randoms(use_true_random=False),
       st.integers(1, 20))
def test_mutated_streams_never_yield_a_packet_with_a_wrong_crc(pkts, rnd, n_mut):
    good = {P.encode(p) for p in pkts}
    stream = bytearray(b"".join(P.frame(p) for p in pkts))
    for _ in range(n_mut):
        if not stream:  # everything deleted: nothing left to mutate
            break
        op = rnd.randrange(3)
        i = rnd.randrange(len(stream))
        if op == 0:
            stream[i] ^= 1 << rnd.randrange(8)
        elif op == 1:
            del stream[i]
        else:
            stream.insert(i, rnd.randrange(256))
    dec = P.StreamDecoder()
    out = dec.feed(bytes(stream))
    dec.flush()
    for pkt in out:
        raw = P.encode(pkt)
        # a packet that comes out is one that went in (CRC-32 misses a random corruption
        # with probability 2^-32) -- never a damaged one
        assert raw in good


def test_crc_mismatch_is_counted_not_yielded():
    pkt = P.encode(P.Reply(0x12, 0))
    body = pkt + struct.pack("<I", zlib.crc32(pkt) ^ 1)
    dec = P.StreamDecoder()
    assert dec.feed(P.cobs_encode(body) + b"\x00" + P.frame(pkt)) != []
    assert dec.errors["garbage"] + dec.errors["crc"] == 1


def test_oversize_garbage_without_delimiter_is_bounded():
    dec = P.StreamDecoder()
    rnd = random.Random(1)
    junk = bytes(rnd.randrange(1, 256) for _ in range(3 * P.MAX_FRAME_BYTES))
    assert dec.feed(junk) == []
    assert dec.errors["oversize"] >= 1
    assert len(dec._buf) <= P.MAX_FRAME_BYTES
    (pkt,) = dec.feed(b"\x00" + P.frame(P.Reply(1, 0)))
    assert isinstance(pkt, P.Reply)


@settings(max_examples=150, deadline=None)
@given(st.lists(packets, min_size=1, max_size=40), st.randoms(use_true_random=False),
       st.integers(0, 30))
def test_bulk_path_equals_frame_by_frame(pkts, rnd, n_mut):
    """Large feeds undo COBS for all frames at once; the result must equal one frame at a time."""
    stream = bytearray(b"".join(P.frame(p) for p in pkts))
    for _ in range(n_mut):
        i = rnd.randrange(len(stream))
        stream[i] = rnd.choice([0, 0xFF, rnd.randrange(256)])
    whole = P.StreamDecoder()
    whole._bulk(bytes(stream[: stream.rfind(0) + 1]) if 0 in stream else b"", bulk := [], False)
    single = P.StreamDecoder()
    one = []
    if 0 in stream:
        for body in bytes(stream[: stream.rfind(0)]).split(b"\x00"):
            single._one(body, one, False)
    assert [P.encode(p) for p in bulk] == [P.encode(p) for p in one]
    assert whole.errors == single.errors
    assert whole.packets == single.packets
    # and the raw-bytes flavour the capture loader uses
    raw_bulk, raw_one = P.StreamDecoder(), P.StreamDecoder()
    rb, ro = [], []
    if 0 in stream:
        raw_bulk._bulk(bytes(stream[: stream.rfind(0) + 1]), rb, True)
        for body in bytes(stream[: stream.rfind(0)]).split(b"\x00"):
            raw_one._one(body, ro, True)
    assert rb == ro and raw_bulk.errors == raw_one.errors and raw_bulk.packets == raw_one.packets
