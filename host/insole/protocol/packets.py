"""Packets of the insole wire protocol, version 1 (``../shared/PROTOCOL.md``): values and bytes.

Packets are small value objects (:class:`Data`, :class:`Status`, :class:`Info`, :class:`Reply`,
:class:`Command`). :func:`encode` turns one into bytes, :func:`decode` turns bytes back into one
(raising :class:`~insole.errors.ProtocolError` with a ``kind`` on anything malformed),
:func:`frame` wraps a packet for a serial link, and :class:`StreamDecoder` turns an arbitrary
byte stream into packets, resynchronising after damage and counting every kind of error.
Nothing here touches a port or a file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from insole.errors import ProtocolError

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
# our extension of PROTOCOL.md (issue 13, docs/ble.md): erase every stored bond, open the pairing
# window; over BLE accepted only on an encrypted link (CONTROL is write-encrypted)
CMD_FORGET_BONDS = 0x16
COMMANDS = {
    CMD_START: "START",
    CMD_STOP: "STOP",
    CMD_SET_RATE: "SET_RATE",
    CMD_GET_INFO: "GET_INFO",
    CMD_IDENTIFY: "IDENTIFY",
    CMD_SET_SIDE: "SET_SIDE",
    CMD_FORGET_BONDS: "FORGET_BONDS",
}
# Argument bytes each command carries.
COMMAND_ARG_BYTES = {CMD_START: 0, CMD_STOP: 0, CMD_SET_RATE: 2, CMD_GET_INFO: 0,
                     CMD_IDENTIFY: 0, CMD_SET_SIDE: 1, CMD_FORGET_BONDS: 0}

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
