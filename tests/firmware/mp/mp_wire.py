# Under MicroPython: the firmware's wire module reproduces every packet and frame of
# ../shared/protocol/vectors.json (copied to /vectors.json) and decodes frames back.
import json
from binascii import hexlify, unhexlify

import mptest
import wire

V = json.load(open("/vectors.json"))
ZONES = ("heel", "arch", "met1", "met23", "met5", "hallux", "midfoot_lateral")
SIDE = {"left": 0, "right": 1}
TYPES = {"REPLY": wire.REPLY}


def hx(b, n=None):
    return hexlify(b if n is None else memoryview(b)[:n]).decode()


def encode(f):
    buf = bytearray(600)
    t = f["type"]
    if t == "DATA":
        n = wire.encode_data(buf, SIDE[f["side"]], f["overrun"], f["seq"], f["t0_us"],
                             f["period_us"], f["samples"])
    elif t == "STATUS":
        n = wire.encode_status(buf, SIDE[f["side"]], f["battery_pct"], f["battery_mv"],
                               f["uptime_s"], f["rate_hz"], f["achieved_hz"], f["overruns"],
                               f["fault_mask"], f["streaming"], f["cadence_spm"])
    elif t == "INFO":
        n = wire.encode_info(buf, SIDE[f["side"]], [ZONES.index(z) for z in f["zones"]],
                             f["rate_hz"], f["supply_mv"], f["r_fixed_ohm"],
                             unhexlify(f["device_id"]), f["firmware"])
    elif t == "REPLY":
        n = wire.encode_reply(buf, f["command"], f["code"])
    else:
        return None
    return buf, n


def test_every_device_packet_matches_its_vector():
    seen = 0
    for p in V["packets"]:
        got = encode(p["fields"])
        if got is None:
            continue
        buf, n = got
        assert hx(buf, n) == p["packet_hex"], p["name"]
        seen += 1
    assert seen >= 13, seen


def test_every_frame_matches_its_vector():
    out = bytearray(800)
    for p in V["packets"]:
        pkt = unhexlify(p["packet_hex"])
        n = wire.frame_into(pkt, len(pkt), out)
        assert n <= wire.frame_bytes_max(len(pkt))
        assert hx(out, n) == p["frame_hex"], p["name"]


def test_frames_decode_back_to_packets():
    out = bytearray(600)
    for p in V["packets"]:
        fr = unhexlify(p["frame_hex"])
        assert fr[-1] == 0
        m = wire.unframe_into(fr, len(fr) - 1, out)
        assert hx(out, m) == p["packet_hex"], p["name"]


def test_command_vectors_parse():
    for p in V["packets"]:
        f = p["fields"]
        if f["type"] != "COMMAND":
            continue
        pkt = unhexlify(p["packet_hex"])
        t, code, arg = wire.parse_command(pkt, len(pkt))
        assert t == f["command"] and code == wire.REPLY_OK, p["name"]
        if f["args"]:
            assert arg == f["args"][0], p["name"]


def test_damaged_stream_gives_the_good_packets_in_order():
    s = V["streams"][0]
    raw = unhexlify(s["stream_hex"])
    out = bytearray(600)
    good = []
    bad = 0
    for body in raw.split(b"\x00")[:-1]:
        if not body:
            continue
        m = wire.unframe_into(body, len(body), out)
        if m < 0:
            bad += 1
        else:
            good.append(hx(out, m))
    want = list(s["expect_packets_hex"])
    it = iter(good)
    for w in want:
        for g in it:
            if g == w:
                break
        else:
            raise AssertionError("missing " + w[:16])
    assert bad >= 2, bad


def test_long_packet_uses_0xff_blocks():
    pkt = bytearray(range(1, 256)) + bytearray(range(1, 256))
    out = bytearray(wire.frame_bytes_max(len(pkt)))
    n = wire.frame_into(pkt, len(pkt), out)
    back = bytearray(600)
    m = wire.unframe_into(out, n - 1, back)
    assert m == len(pkt) and bytes(back[:m]) == bytes(pkt)
    assert bytes(out[: n - 1]).find(b"\x00") == -1


def test_sets_for_mtu():
    assert wire.sets_for_mtu(247, 5) == 23
    assert wire.sets_for_mtu(185, 5) == 16
    assert wire.sets_for_mtu(64, 5) == 4
    assert wire.sets_for_mtu(247, 1) == 115
    try:
        wire.sets_for_mtu(23, 5)
    except ValueError:
        pass
    else:
        raise AssertionError("MTU 23 cannot carry a 5-channel set")


def test_uuid_little_endian():
    b = wire.uuid_le("fb620001-ed75-40c4-ab3f-ac4c69b6bad7")
    assert hx(b) == "d7bab6694cac3fabc44075ed010062fb"


mptest.run(globals())
