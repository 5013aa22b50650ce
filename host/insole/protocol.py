"""The insole wire protocol, version 1 (``../shared/PROTOCOL.md``), sans-I/O.

Packets are small value objects (:class:`Data`, :class:`Status`, :class:`Info`, :class:`Reply`,
:class:`Command`). :func:`encode` turns one into bytes, :func:`decode` turns bytes back into one
(raising :class:`~insole.errors.ProtocolError` with a ``kind`` on anything malformed),
:func:`frame` wraps a packet for a serial link, and :class:`StreamDecoder` turns an arbitrary
byte stream into packets, resynchronising after damage and counting every kind of error.
Nothing here touches a port or a file.
"""

from __future__ import annotations

import struct
import zlib
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .errors import ProtocolError

VERSION = 1

DATA = 0x01
STATUS = 0x02
INFO = 0x03
REPLY = 0x04
CMD_START = 0x10
CMD_STOP = 0x11
CMD_SET_RATE = 0x12
CMD_GET_INFO = 0x13
CMD_IDENTIFY = 0x14
CMD_SET_SIDE = 0x15
COMMANDS = {
    CMD_START: "START",
    CMD_STOP: "STOP",
    CMD_SET_RATE: "SET_RATE",
    CMD_GET_INFO: "GET_INFO",
    CMD_IDENTIFY: "IDENTIFY",
    CMD_SET_SIDE: "SET_SIDE",
}
# Argument bytes each command carries.
COMMAND_ARG_BYTES = {CMD_START: 0, CMD_STOP: 0, CMD_SET_RATE: 2, CMD_GET_INFO: 0,
                     CMD_IDENTIFY: 0, CMD_SET_SIDE: 1}

REPLY_OK = 0
REPLY_UNKNOWN_COMMAND = 1
REPLY_BAD_LENGTH = 2
REPLY_OUT_OF_RANGE = 3
REPLY_BUSY = 4

SIDES = ("left", "right")
ZONES = ("heel", "arch", "met1", "met23", "met5", "hallux", "midfoot_lateral")
METATARSAL_ZONES = ("met1", "met23", "met5")

# One sample unit is 100 µV at the ADC pin.
SAMPLE_UNIT_V = 1e-4
RATE_MIN_HZ = 25
RATE_MAX_HZ = 1000

_DATA_HEADER = struct.Struct("<BBBBHIHB")  # version type flags C seq t0_us period_us N
DATA_HEADER_BYTES = _DATA_HEADER.size  # 13
# The same header as a numpy record, for reading many DATA headers at once.
DATA_HEADER_DTYPE = np.dtype([("version", "u1"), ("type", "u1"), ("flags", "u1"),
                              ("channels", "u1"), ("seq", "<u2"), ("t0_us", "<u4"),
                              ("period_us", "<u2"), ("sets", "u1")])
assert DATA_HEADER_DTYPE.itemsize == DATA_HEADER_BYTES
_STATUS = struct.Struct("<BBBBHIHHIBBB")  # 21 bytes
_FLAG_SIDE = 0x01
_FLAG_OVERRUN = 0x04
MAX_CHANNELS = 8
MAX_SETS = 255
# The longest frame a valid packet can make: DATA with 8 channels and 255 sets, plus CRC and
# COBS overhead (one code byte per 254 bytes, one more, and the delimiter).
MAX_FRAME_BYTES = DATA_HEADER_BYTES + 2 * MAX_CHANNELS * MAX_SETS + 4 + 20
# Feeds with more complete-frame bytes than this undo COBS for all frames at once.
_BULK_MIN_BYTES = 2048


@dataclass(eq=False)
class Data:
    """A batch of sample sets. ``samples`` has shape (N, C), dtype uint16, in 100 µV units."""

    side: str
    seq: int
    t0_us: int
    period_us: int
    samples: np.ndarray
    overrun: bool = False
    type = DATA

    @property
    def n_sets(self) -> int:
        return int(self.samples.shape[0])

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])


@dataclass(frozen=True)
class Status:
    side: str
    battery_pct: int
    battery_mv: int
    uptime_s: int
    rate_hz: int
    achieved_hz: int
    overruns: int
    fault_mask: int
    streaming: int
    cadence_spm: int
    type = STATUS


@dataclass(frozen=True)
class Info:
    side: str
    zones: tuple[str, ...]
    rate_hz: int
    supply_mv: int
    r_fixed_ohm: int
    device_id: str  # 12 hex digits
    firmware: str
    type = INFO


@dataclass(frozen=True)
class Reply:
    command: int
    code: int
    type = REPLY


@dataclass(frozen=True)
class Command:
    command: int
    args: tuple[int, ...] = field(default=())

    @property
    def type(self) -> int:
        return self.command


Packet = Data | Status | Info | Reply | Command


def _side_bit(side: str) -> int:
    if side not in SIDES:
        raise ValueError(f"side must be 'left' or 'right', not {side!r}")
    return SIDES.index(side)


def encode(pkt: Packet) -> bytes:
    """Encode one packet into its wire bytes (no framing)."""
    if isinstance(pkt, Data):
        s = np.ascontiguousarray(pkt.samples, dtype="<u2")
        if s.ndim != 2 or not 1 <= s.shape[1] <= MAX_CHANNELS or not 1 <= s.shape[0] <= MAX_SETS:
            raise ValueError(f"DATA needs 1-{MAX_SETS} sets of 1-{MAX_CHANNELS} channels, got {s.shape}")
        flags = _side_bit(pkt.side) | (_FLAG_OVERRUN if pkt.overrun else 0)
        head = _DATA_HEADER.pack(VERSION, DATA, flags, s.shape[1], pkt.seq & 0xFFFF,
                                 pkt.t0_us & 0xFFFFFFFF, pkt.period_us, s.shape[0])
        return head + s.tobytes()
    if isinstance(pkt, Status):
        return _STATUS.pack(VERSION, STATUS, _side_bit(pkt.side), pkt.battery_pct, pkt.battery_mv,
                            pkt.uptime_s, pkt.rate_hz, pkt.achieved_hz, pkt.overruns,
                            pkt.fault_mask, pkt.streaming, pkt.cadence_spm)
    if isinstance(pkt, Info):
        zone_ids = bytes(ZONES.index(z) for z in pkt.zones)
        fw = pkt.firmware.encode("ascii")
        return (bytes([VERSION, INFO, _side_bit(pkt.side), len(zone_ids)]) + zone_ids
                + struct.pack("<HHI", pkt.rate_hz, pkt.supply_mv, pkt.r_fixed_ohm)
                + bytes.fromhex(pkt.device_id) + bytes([len(fw)]) + fw)
    if isinstance(pkt, Reply):
        return bytes([VERSION, REPLY, pkt.command, pkt.code])
    if isinstance(pkt, Command):
        if pkt.command == CMD_SET_RATE and pkt.args:
            return bytes([VERSION, pkt.command]) + struct.pack("<H", pkt.args[0])
        return bytes([VERSION, pkt.command]) + bytes(pkt.args)
    raise TypeError(f"not a packet: {pkt!r}")


def decode(buf: bytes) -> Packet:
    """Decode one packet from its wire bytes.

    Raises:
        ProtocolError: with ``kind`` one of ``short``, ``unknown_version``, ``unknown_type``,
            ``bad_length``, ``bad_value``.
    """
    n = len(buf)
    if n < 2:
        raise ProtocolError("short", f"packet of {n} bytes is shorter than its 2-byte header")
    if buf[0] != VERSION:
        raise ProtocolError("unknown_version", f"protocol version {buf[0]} is not known (expected 1)")
    ptype = buf[1]
    if ptype == DATA:
        if n < DATA_HEADER_BYTES:
            raise ProtocolError("bad_length", f"DATA packet of {n} bytes is shorter than its header")
        _, _, flags, c, seq, t0, period, sets = _DATA_HEADER.unpack_from(buf)
        if not 1 <= c <= MAX_CHANNELS or sets < 1:
            raise ProtocolError("bad_value", f"DATA with {c} channels and {sets} sets")
        if n != DATA_HEADER_BYTES + 2 * c * sets:
            raise ProtocolError("bad_length",
                                f"DATA says {sets}x{c} samples but carries {n - DATA_HEADER_BYTES} bytes")
        samples = np.frombuffer(buf, dtype="<u2", offset=DATA_HEADER_BYTES).reshape(sets, c)
        return Data(SIDES[flags & 1], seq, t0, period, samples, bool(flags & _FLAG_OVERRUN))
    if ptype == STATUS:
        if n != _STATUS.size:
            raise ProtocolError("bad_length", f"STATUS of {n} bytes (expected {_STATUS.size})")
        f = _STATUS.unpack(buf)
        return Status(SIDES[f[2] & 1], *f[3:])
    if ptype == INFO:
        if n < 4 or n < 19 + buf[3]:
            raise ProtocolError("bad_length", f"INFO of {n} bytes is too short")
        c = buf[3]
        ids = buf[4:4 + c]
        if c < 1 or any(z >= len(ZONES) for z in ids):
            raise ProtocolError("bad_value", f"INFO lists unknown zone ids {list(ids)}")
        rate, supply, r_fixed = struct.unpack_from("<HHI", buf, 4 + c)
        dev = bytes(buf[12 + c:18 + c]).hex()
        ln = buf[18 + c]
        if n != 19 + c + ln:
            raise ProtocolError("bad_length", f"INFO of {n} bytes, expected {19 + c + ln}")
        fw = bytes(buf[19 + c:]).decode("ascii", "replace")
        return Info(SIDES[buf[2] & 1], tuple(ZONES[z] for z in ids), rate, supply, r_fixed, dev, fw)
    if ptype == REPLY:
        if n != 4:
            raise ProtocolError("bad_length", f"REPLY of {n} bytes (expected 4)")
        return Reply(buf[2], buf[3])
    if ptype in COMMANDS:
        want = 2 + COMMAND_ARG_BYTES[ptype]
        if n != want:
            raise ProtocolError("bad_length", f"{COMMANDS[ptype]} of {n} bytes (expected {want})")
        if ptype == CMD_SET_RATE:
            return Command(ptype, (struct.unpack_from("<H", buf, 2)[0],))
        return Command(ptype, tuple(buf[2:]))
    raise ProtocolError("unknown_type", f"packet type 0x{ptype:02x} is not known")


# --- serial framing -------------------------------------------------------------------------


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
    n = len(starts)
    pos = starts.astype(np.int64).copy()
    ends = ends.astype(np.int64)
    prev = np.zeros(n, np.int64)
    bad = np.zeros(n, bool)
    value = buf.copy()
    dropped = [ends]
    active = np.flatnonzero(pos < ends)
    first = True
    while len(active):
        p = pos[active]
        code = buf[p].astype(np.int64)
        if first:
            dropped.append(p)
        else:
            after_ff = prev[active] == 0xFF
            dropped.append(p[after_ff])
            value[p[~after_ff]] = 0
        prev[active] = code
        newp = p + code
        pos[active] = newp
        bad[active[newp > ends[active]]] = True
        active = active[newp < ends[active]]
        first = False
    drop = np.sort(np.concatenate(dropped))
    # a kept byte at p lands at p - (number of dropped bytes before p)
    out = np.delete(value, drop)
    return (out.tobytes(), starts - np.searchsorted(drop, starts), ends - np.searchsorted(drop, ends),
            bad)


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

    def feed_raw(self, data: bytes, out: list, as_bytes: bool = False) -> None:
        """Like :meth:`feed`, appending to ``out``; with ``as_bytes`` the packets stay raw bytes."""
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
            self._bulk(complete, out, as_bytes)
        else:
            for body in complete[:-1].split(b"\x00"):
                self._one(body, out, as_bytes)
        if len(buf) > MAX_FRAME_BYTES:
            self.errors["oversize"] += 1
            buf.clear()

    def _bulk(self, data: bytes, out: list, as_bytes: bool) -> None:
        """The same as calling :meth:`_one` on each frame, with COBS undone for all at once."""
        if not data:
            return
        arr = np.frombuffer(data, dtype=np.uint8)
        delim = np.flatnonzero(arr == 0)
        starts = np.concatenate(([0], delim[:-1] + 1))
        ends = delim
        raw, rstarts, rends, cobs_bad = _cobs_decode_many(arr, starts, ends)
        lens = ends - starts
        rs, re_ = rstarts.tolist(), rends.tolist()
        # frames that are plainly good (shape, COBS and CRC) are taken in one sweep; every
        # other frame goes through _take, in order, so that it is counted exactly as alone
        shape_ok = (lens > 0) & (lens <= MAX_FRAME_BYTES) & ~cobs_bad & (rends - rstarts >= 6)
        good = np.zeros(len(lens), bool)
        cand = np.flatnonzero(shape_ok)
        if len(cand):
            tail = np.frombuffer(raw, np.uint8)[rends[cand][:, None] - 4 + np.arange(4)]
            stored = tail.astype(np.uint32) @ np.array([1, 1 << 8, 1 << 16, 1 << 24], np.uint32)
            crc32 = zlib.crc32
            computed = np.fromiter((crc32(raw[rs[i]:re_[i] - 4]) for i in cand.tolist()),
                                   dtype=np.uint32, count=len(cand))
            good[cand] = computed == stored
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
        self._take(len(body), lambda: cobs_decode(body), out, as_bytes)


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
