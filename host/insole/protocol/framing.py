"""Serial framing (COBS + CRC-32, zero-delimited) and the sans-I/O :class:`StreamDecoder`.

:func:`frame` wraps a packet for a serial link; :class:`StreamDecoder` turns an arbitrary byte
stream into packets, resynchronising after damage and counting every kind of error. Nothing here
touches a port or a file.
"""

from __future__ import annotations

import struct
import zlib
from collections import Counter

import numpy as np

from insole.errors import ProtocolError
from insole.protocol.packets import MAX_FRAME_BYTES, Packet, decode, encode

try:  # cobs-python's C decoder: its install builds it where a C compiler is (pure Python if not)
    from cobs.cobs._cobs_ext import DecodeError as _CobsError
    from cobs.cobs._cobs_ext import decode as _cobs_c_decode
except ImportError:  # without the extension numpy undoes COBS for a chunk's frames at once
    _cobs_c_decode = None


def cobs_encode(data: bytes) -> bytes:
    """Consistent-overhead byte stuffing: the result contains no zero byte."""
    out = bytearray()
    for piece in bytes(data).split(b"\x00"):
        while len(piece) >= 254:
            out.append(0xFF)
            out += piece[:254]
            piece = piece[254:]
        out.append(len(piece) + 1)
        out += piece
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Undo :func:`cobs_encode`; raises ProtocolError(kind='cobs') on a malformed block."""
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        end = i + code
        if code == 0 or end > n:
            raise ProtocolError("cobs", "COBS block runs past the end of the frame")
        out += data[i + 1:end]
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


def frame(packet: bytes | Packet) -> bytes:
    """Frame a packet for a serial link: COBS(packet ‖ crc32 LE) ‖ 0x00."""
    if not isinstance(packet, (bytes, bytearray, memoryview)):
        packet = encode(packet)
    packet = bytes(packet)
    return cobs_encode(packet + struct.pack("<I", zlib.crc32(packet))) + b"\x00"


def unframe(body: bytes) -> bytes:
    """Check and strip one frame body (without its 0x00): returns the packet bytes."""
    return _check_crc(cobs_decode(body))


def _raise_cobs() -> bytes:
    raise ProtocolError("cobs", "COBS block runs past the end of the frame")


def _check_crc(raw: bytes) -> bytes:
    if len(raw) < 6:
        raise ProtocolError("short_frame", f"frame of {len(raw)} bytes cannot hold a packet and CRC")
    pkt = raw[:-4]
    if zlib.crc32(pkt) != struct.unpack_from("<I", raw, len(raw) - 4)[0]:
        raise ProtocolError("crc", "CRC mismatch")
    return pkt


def _cobs_decode_many(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray):
    """Undo COBS on many frames at once: ``buf[starts[i]:ends[i]]`` is frame i's body, and
    ``buf[ends[i]]`` its 0x00 delimiter.

    Walks every frame's chain of code bytes in lock-step (one numpy pass per block, not per
    byte). A code byte becomes the zero it stands for, unless it is a frame's first code or
    follows a 0xFF code, in which case it is dropped, like the delimiters. Returns the decoded
    bytes, each frame's [start, end) in them, and a mask of frames whose chain ran past their end.
    """
    bad = np.zeros(len(starts), bool)
    ends = ends.astype(np.int64)
    value = buf.copy()
    keep = np.ones(len(buf), bool)
    keep[ends] = False  # the delimiters
    live = starts < ends
    fid = np.flatnonzero(live)  # the frames still walking, and where each one is
    p = starts[live].astype(np.int64)
    e = ends[live]
    keep[p] = False  # a frame's first code stands for no zero
    code = buf[p]
    while len(p):
        newp = p + code
        over = newp > e
        if over.any():
            bad[fid[over]] = True
        alive = newp < e
        prev_ff = code[alive] == 0xFF
        p, e, fid = newp[alive], e[alive], fid[alive]
        code = buf[p]
        if prev_ff.any():  # a code after 0xFF stands for no zero either
            keep[p[prev_ff]] = False
            value[p[~prev_ff]] = 0
        else:
            value[p] = 0
    # a kept byte at p lands at p - (number of dropped bytes before p)
    out = value[keep]
    dropped_before = np.concatenate(([0], np.cumsum(~keep, dtype=np.int32)))
    return (out.tobytes(), starts - dropped_before[starts], ends - dropped_before[ends], bad)


def _cobs_decode_body(body: bytes) -> bytes:
    """:func:`cobs_decode` of a frame body (no zero byte in it), in C where it is built."""
    if _cobs_c_decode is None:
        return cobs_decode(body)
    try:
        return _cobs_c_decode(body)
    except _CobsError:
        raise ProtocolError("cobs", "COBS block runs past the end of the frame") from None


def _cobs_decode_frames(data: bytes, arr: np.ndarray, starts: np.ndarray, ends: np.ndarray):
    """:func:`_cobs_decode_many`'s answer for zero-delimited ``data`` (``arr`` its bytes):
    frame by frame with cobs-python's C decoder when it is built (the same rules as
    :func:`cobs_decode`: a code past the frame's end is bad; about 20 times faster than the
    numpy walk, whose time grows with the code bytes, three in four bytes of a swing's
    near-zero samples), else with :func:`_cobs_decode_many`."""
    if _cobs_c_decode is None:
        return _cobs_decode_many(arr, starts, ends)
    bodies = data[:-1].split(b"\x00")
    try:
        dec = [_cobs_c_decode(b) for b in bodies]
        bad = np.zeros(len(bodies), bool)
    except _CobsError:  # a damaged frame in the chunk: frame by frame, each one marked
        dec, bad_l = [], []
        for b in bodies:
            try:
                dec.append(_cobs_c_decode(b))
                bad_l.append(False)
            except _CobsError:
                dec.append(b"")
                bad_l.append(True)
        bad = np.array(bad_l, bool)
    lens = np.fromiter(map(len, dec), np.int64, len(dec))
    rends = np.cumsum(lens)
    return b"".join(dec), rends - lens, rends, bad


# zlib.crc32 of any packet followed by its own CRC-32 (little-endian): a frame is good exactly
# when the CRC over all its decoded bytes is this (the CRC is a bijection of its last 4 bytes)
_CRC_RESIDUE = 0x2144DF1C


class Packed:
    """Packets of one feed as spans of one buffer: packet i is ``buf[starts[i]:ends[i]]``."""

    __slots__ = ("buf", "starts", "ends")

    def __init__(self, buf: bytes, starts: np.ndarray, ends: np.ndarray) -> None:
        self.buf, self.starts, self.ends = buf, starts, ends

    def __len__(self) -> int:
        return len(self.starts)

    def packets(self) -> list[bytes]:
        buf = self.buf
        return [buf[a:b] for a, b in zip(self.starts.tolist(), self.ends.tolist())]

    @classmethod
    def of(cls, pkts: list[bytes]) -> Packed:
        lens = np.fromiter(map(len, pkts), np.int64, len(pkts))
        ends = np.cumsum(lens)
        return cls(b"".join(pkts), ends - lens, ends)


# Feeds with more complete-frame bytes than this undo COBS for all frames at once.
_BULK_MIN_BYTES = 2048

ERROR_KINDS = ("garbage", "empty_frame", "oversize", "cobs", "short_frame", "crc", "short",
               "unknown_version", "unknown_type", "bad_length", "bad_value")


class StreamDecoder:
    """Sans-I/O decoder for a framed serial byte stream.

    ``feed(data)`` returns the packets completed by ``data``. Bad frames are skipped and counted
    in ``errors`` by kind (see :data:`ERROR_KINDS`); the decoder never raises on input. Bytes
    before the first delimiter are counted as ``garbage`` unless they decode as a whole frame
    (a capture may start exactly on a frame boundary).
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.errors: Counter[str] = Counter()
        self.packets = 0
        self.bytes_in = 0

    def feed(self, data: bytes) -> list[Packet]:
        out: list[Packet] = []
        self.feed_raw(data, out)
        return out

    def feed_packed(self, data: bytes) -> Packed | None:
        """Like :meth:`feed` with the packets left undecoded, as spans of one buffer (None if
        ``data`` completed none). A chunk of good frames (the usual case) is never cut into
        one object per packet."""
        out: list = []
        self.feed_raw(data, out, as_bytes=True, packed=True)
        if not out:
            return None
        if len(out) == 1 and isinstance(out[0], Packed):
            return out[0]
        return Packed.of(out)

    def feed_raw(self, data: bytes, out: list, as_bytes: bool = False, packed: bool = False) -> None:
        """Like :meth:`feed`, appending to ``out``; with ``as_bytes`` the packets stay raw bytes
        (and with ``packed`` a chunk of good frames is appended as one :class:`Packed`)."""
        self.bytes_in += len(data)
        buf = self._buf
        buf += data
        if b"\x00" not in data:
            if len(buf) > MAX_FRAME_BYTES:
                self.errors["oversize"] += 1
                buf.clear()
            return
        whole = bytes(buf)
        last = whole.rfind(b"\x00")
        buf[:] = whole[last + 1:]
        complete = whole[:last + 1]
        if len(complete) >= _BULK_MIN_BYTES:
            if not (as_bytes and self._all_good(complete, out, packed)):
                self._bulk(complete, out, as_bytes)
        else:
            for body in complete[:-1].split(b"\x00"):
                self._one(body, out, as_bytes)
        if len(buf) > MAX_FRAME_BYTES:
            self.errors["oversize"] += 1
            buf.clear()

    def _all_good(self, data: bytes, out: list, packed: bool) -> bool:
        """Every frame of ``data`` good (its length, COBS and CRC), the usual case: its packets
        appended (as one :class:`Packed` if ``packed``) and True; else False, nothing done.
        The C COBS decoder only; a CRC over each whole decoded frame (:data:`_CRC_RESIDUE`)."""
        if _cobs_c_decode is None:
            return False
        bodies = data[:-1].split(b"\x00")
        k = len(bodies)
        blen = np.fromiter(map(len, bodies), np.int64, k)
        if not ((blen > 0).all() and (blen <= MAX_FRAME_BYTES).all()):
            return False
        try:
            dec = [_cobs_c_decode(b) for b in bodies]
        except _CobsError:
            return False
        dlen = np.fromiter(map(len, dec), np.int64, k)
        crc = np.fromiter(map(zlib.crc32, dec), np.uint32, k)
        if not ((dlen >= 6).all() and (crc == _CRC_RESIDUE).all()):
            return False
        if packed:
            ends = np.cumsum(dlen)
            out.append(Packed(b"".join(dec), ends - dlen, ends - 4))
        else:
            out.extend([d[:-4] for d in dec])
        self.packets += k
        return True

    def _bulk(self, data: bytes, out: list, as_bytes: bool) -> None:
        """The same as calling :meth:`_one` on each frame, with COBS undone for all at once."""
        if not data:
            return
        arr = np.frombuffer(data, dtype=np.uint8)
        delim = np.flatnonzero(arr == 0)
        starts = np.concatenate(([0], delim[:-1] + 1))
        ends = delim
        raw, rstarts, rends, cobs_bad = _cobs_decode_frames(data, arr, starts, ends)
        lens = ends - starts
        rs, re_ = rstarts.tolist(), rends.tolist()
        # frames that are plainly good (shape, COBS and CRC) are taken in one sweep; every
        # other frame goes through _take, in order, so that it is counted exactly as alone
        shape_ok = (lens > 0) & (lens <= MAX_FRAME_BYTES) & ~cobs_bad & (rends - rstarts >= 6)
        good = np.zeros(len(lens), bool)
        cand = np.flatnonzero(shape_ok)
        pkts: list[bytes] = []
        if len(cand):
            tail = np.frombuffer(raw, np.uint8)[rends[cand][:, None] - 4 + np.arange(4)]
            stored = tail.astype(np.uint32) @ np.array([1, 1 << 8, 1 << 16, 1 << 24], np.uint32)
            pkts = [raw[a:b] for a, b in zip(rstarts[cand].tolist(), (rends[cand] - 4).tolist())]
            computed = np.fromiter(map(zlib.crc32, pkts), dtype=np.uint32, count=len(cand))
            good[cand] = computed == stored
            if as_bytes and len(cand) == len(lens) and good.all():
                out.extend(pkts)  # every frame good: the usual case, no loop
                self.packets += len(pkts)
                return
        n_before = self.packets
        good_before = np.concatenate(([0], np.cumsum(good)))
        lens_l, bad_l, good_l = lens.tolist(), cobs_bad.tolist(), good.tolist()
        for i, n in enumerate(lens_l):
            if good_l[i]:
                pkt = raw[rs[i]:re_[i] - 4]
                if as_bytes:
                    out.append(pkt)
                    continue
                try:
                    out.append(decode(pkt))
                except ProtocolError as e:
                    self.packets = n_before + int(good_before[i])
                    first = self.packets == 0 and not any(self.errors.values())
                    self.errors["garbage" if first else e.kind] += 1
                    good[i] = False
                    good_before[i + 1:] -= 1
                continue
            self.packets = n_before + int(good_before[i])
            if bad_l[i]:
                self._take(n, _raise_cobs, out, as_bytes)
            else:
                self._take(n, lambda i=i: raw[rs[i]:re_[i]], out, as_bytes)
        self.packets = n_before + int(good.sum())

    def _one(self, body: bytes, out: list, as_bytes: bool) -> None:
        self._take(len(body), lambda: _cobs_decode_body(body), out, as_bytes)


    def _take(self, body_len: int, unstuff, out: list, as_bytes: bool) -> None:
        """Count or accept one frame whose body (without 0x00) is ``body_len`` bytes long;
        ``unstuff()`` returns its COBS-decoded bytes or raises ProtocolError."""
        if body_len == 0:
            self.errors["empty_frame"] += 1
            return
        if body_len > MAX_FRAME_BYTES:
            self.errors["oversize"] += 1
            return
        try:
            pkt = _check_crc(unstuff())
            out.append(pkt if as_bytes else decode(pkt))
        except ProtocolError as e:
            # A bad first chunk of a stream joined mid-frame is garbage, not a damaged frame.
            kind = "garbage" if self.packets == 0 and not any(self.errors.values()) else e.kind
            self.errors[kind] += 1
            return
        self.packets += 1

    def flush(self) -> int:
        """End of stream: count a trailing partial frame as ``truncated``; returns bytes dropped."""
        n = len(self._buf)
        if n:
            self.errors["truncated"] += 1
            self._buf.clear()
        return n

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


class PacketDecoder:
    """Decoder for packet framing (one packet per chunk), with :class:`StreamDecoder`'s
    counters (``packets``, ``errors``, ``error_count``), for progress lines."""

    def __init__(self) -> None:
        self.packets = 0
        self.errors: dict[str, int] = {}

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def feed(self, data: bytes) -> list[Packet]:
        try:
            pkt = decode(bytes(data))
        except ProtocolError as e:
            self.errors[e.kind] = self.errors.get(e.kind, 0) + 1
            return []
        self.packets += 1
        return [pkt]
