"""The fast decode paths (issue 8, speed) give exactly what the frame-by-frame paths give.

- cobs-python's C decoder and the numpy lock-step walk mark the same frames bad and decode the
  good ones to the same bytes (random and damaged frames);
- a chunk of good frames (StreamDecoder.feed_packed, FootAssembler.add_packed) builds the same
  grid, ledger and error counts as decoding every packet and adding it, with STATUS packets,
  loss and a device overrun in the stream, fed in chunks of many sizes;
- the CRC residue: a frame is good exactly when the CRC-32 over all its decoded bytes is
  0x2144DF1C.
"""

from __future__ import annotations

import random
import struct
import zlib

import numpy as np
import pytest

from insole import protocol as P
from insole.analysis.stream import FootAssembler, FootDecoder, _sample_bytes
from insole.errors import ProtocolError
from insole.protocol import framing as F

INFO = P.Info("left", ("heel", "arch", "met1", "met5", "hallux"), 500, 3300, 750, "a4cf12003f9a", "t")


def _stream(n_pkts: int, seed: int) -> list[bytes]:
    """Framed packets: INFO, DATA with near-zero samples (many COBS codes), a STATUS every 20,
    a lost packet and a device overrun."""
    rng = np.random.default_rng(seed)
    out = [P.frame(INFO)]
    t = 1_000_000
    for k in range(n_pkts):
        s = np.where(rng.random((23, 5)) < 0.6, 0, rng.integers(0, 33000, (23, 5))).astype(np.uint16)
        if k == 40:
            continue  # lost in transport
        if k == 70:
            t += 10 * 2000  # the device dropped 10 sample sets
        out.append(P.frame(P.Data("left", k & 0xFFFF, t & 0xFFFFFFFF, 2000, s)))
        t += 23 * 2000
        if k % 20 == 5:
            out.append(P.frame(P.Status("left", 1, 2, k, 500, 499, 0, 0, 1, 170)))
    return out


def _slow(frames: list[bytes]) -> tuple[dict, np.ndarray, dict]:
    """Every frame unframed, decoded and added one at a time."""
    asm = FootAssembler()
    errors: dict[str, int] = {}
    for fr in frames:
        try:
            asm.add(P.decode(F.unframe(fr[:-1])), 5.0)
        except ProtocolError as e:
            errors[e.kind] = errors.get(e.kind, 0) + 1
    fs = asm.finish(errors)
    return fs.quality, fs.volts, errors


@pytest.mark.parametrize("chunk", [1, 250, 5000, 1 << 20])
def test_packed_path_builds_what_packet_by_packet_builds(chunk):
    frames = _stream(200 if chunk > 1 else 100, seed=chunk)
    data = b"".join(frames)
    blocks = []
    dec2 = FootDecoder("left")
    for a in range(0, len(data), chunk):
        b = dec2.feed(data[a:a + chunk], 5.0)
        if b is not None:
            blocks.append(b.volts)
    last, q2 = dec2.finish()
    if last is not None:
        blocks.append(last.volts)
    volts = np.concatenate(blocks)
    q_slow, v_slow, _ = _slow(frames)
    assert q2 == q_slow
    assert list(q2) == list(q_slow)  # the ledger's keys in the same order (the document's bytes)
    np.testing.assert_array_equal(volts, v_slow)
    assert q_slow["packets_lost"] == 1 and q_slow["samples_dropped"] == 10
    assert q_slow["status_packets"] == (10 if chunk > 1 else 5)


def test_damaged_chunk_is_counted_as_frame_by_frame():
    frames = _stream(300, seed=3)
    rng = random.Random(4)
    for i in rng.sample(range(5, len(frames) - 5), 12):  # flip a byte (never to 0x00)
        fr = bytearray(frames[i])
        j = rng.randrange(len(fr) - 1)
        fr[j] = fr[j] ^ 0x5A or 1
        frames[i] = bytes(fr)
    frames.insert(100, b"\x00")  # an empty frame
    data = b"".join(frames)
    whole, one = P.StreamDecoder(), P.StreamDecoder()
    a = whole.feed_packed(data)
    b = []
    for fr in data.split(b"\x00")[:-1]:
        b += one.feed(fr + b"\x00")
    assert whole.errors == one.errors and sum(whole.errors.values()) >= 10
    assert a.packets() == [P.encode(p) for p in b]


def test_c_cobs_and_numpy_walk_agree():
    if F._cobs_c_decode is None:
        pytest.skip("cobs-python built without its C extension")
    rng = random.Random(5)
    for _ in range(80):
        frames = []
        for _ in range(rng.randint(1, 20)):
            if rng.random() < 0.6:
                pkt = bytes(rng.choice([0, 0, 1, 255, rng.randrange(256)]) for _ in range(rng.randint(0, 600)))
                frames.append(F.cobs_encode(pkt))
            else:  # arbitrary bytes: often a code past the end
                frames.append(bytes(rng.randrange(1, 256) for _ in range(rng.randint(0, 300))))
        data = b"\x00".join(frames) + b"\x00"
        arr = np.frombuffer(data, np.uint8)
        ends = np.flatnonzero(arr == 0)
        starts = np.concatenate(([0], ends[:-1] + 1))
        raw_n, s_n, e_n, bad_n = F._cobs_decode_many(arr, starts, ends)
        raw_c, s_c, e_c, bad_c = F._cobs_decode_frames(data, arr, starts, ends)
        np.testing.assert_array_equal(bad_n, bad_c)
        for i in np.flatnonzero(~bad_n):
            assert raw_n[s_n[i]:e_n[i]] == raw_c[s_c[i]:e_c[i]]
            assert raw_c[s_c[i]:e_c[i]] == F.cobs_decode(frames[i])


def test_crc_residue_decides_exactly_as_the_stored_crc():
    rng = random.Random(6)
    for _ in range(2000):
        pkt = bytes(rng.randrange(256) for _ in range(rng.randint(2, 80)))
        crc = zlib.crc32(pkt)
        stored = crc if rng.random() < 0.5 else rng.randrange(1 << 32)
        whole = pkt + struct.pack("<I", stored)
        assert (zlib.crc32(whole) == F._CRC_RESIDUE) == (stored == crc)


def test_sample_bytes_of_runs_and_odd_lengths():
    rng = random.Random(7)
    for t in range(300):
        pk = [bytes(rng.randrange(256) for _ in range(rng.choice([20, 20, 20, 17]) if t % 2 else 20))
              for _ in range(rng.randint(1, 30))]
        buf, st, en = b"", [], []
        for p in pk:
            buf += bytes(rng.choice([0, 0, 4, 9]))
            st.append(len(buf))
            buf += p
            en.append(len(buf))
        got = _sample_bytes(np.frombuffer(buf, np.uint8), np.array(st), np.array(en), 13)
        assert got == b"".join(p[13:] for p in pk)
