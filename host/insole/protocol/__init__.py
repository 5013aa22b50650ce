"""The insole wire protocol, version 1 (``../shared/PROTOCOL.md``), sans-I/O.

Two layers, each its own module:

- :mod:`insole.protocol.packets`: packets as small value objects (:class:`Data`,
  :class:`Status`, :class:`Info`, :class:`Reply`, :class:`Command`); :func:`encode` turns one
  into bytes, :func:`decode` turns bytes back into one (raising
  :class:`~insole.errors.ProtocolError` with a ``kind`` on anything malformed).
- :mod:`insole.protocol.framing`: :func:`frame` wraps a packet for a serial link;
  :class:`StreamDecoder` turns an arbitrary byte stream into packets, resynchronising after
  damage and counting every kind of error.

Nothing here touches a port or a file. ``from insole import protocol as P`` gives both layers.
"""

from insole.protocol.framing import (
    ERROR_KINDS,
    PacketDecoder,
    StreamDecoder,
    cobs_decode,
    cobs_encode,
    frame,
    unframe,
)
from insole.protocol.packets import (
    CMD_FORGET_BONDS,
    CMD_GET_INFO,
    CMD_IDENTIFY,
    CMD_SET_RATE,
    CMD_SET_SIDE,
    CMD_START,
    CMD_STOP,
    COMMAND_ARG_BYTES,
    COMMANDS,
    DATA,
    DATA_HEADER_BYTES,
    DATA_HEADER_DTYPE,
    INFO,
    MAX_CHANNELS,
    MAX_FRAME_BYTES,
    MAX_SETS,
    METATARSAL_ZONES,
    RATE_MAX_HZ,
    RATE_MIN_HZ,
    REPLY,
    REPLY_BAD_LENGTH,
    REPLY_BUSY,
    REPLY_OK,
    REPLY_OUT_OF_RANGE,
    REPLY_UNKNOWN_COMMAND,
    SAMPLE_UNIT_V,
    SIDES,
    STATUS,
    VERSION,
    ZONES,
    Command,
    Data,
    Info,
    Packet,
    Reply,
    Status,
    decode,
    encode,
)

__all__ = [
    "CMD_FORGET_BONDS", "CMD_GET_INFO", "CMD_IDENTIFY", "CMD_SET_RATE", "CMD_SET_SIDE", "CMD_START", "CMD_STOP",
    "COMMAND_ARG_BYTES", "COMMANDS", "DATA", "DATA_HEADER_BYTES", "DATA_HEADER_DTYPE", "ERROR_KINDS",
    "INFO", "MAX_CHANNELS", "MAX_FRAME_BYTES", "MAX_SETS", "METATARSAL_ZONES", "RATE_MAX_HZ",
    "RATE_MIN_HZ", "REPLY", "REPLY_BAD_LENGTH", "REPLY_BUSY", "REPLY_OK", "REPLY_OUT_OF_RANGE",
    "REPLY_UNKNOWN_COMMAND", "SAMPLE_UNIT_V", "SIDES", "STATUS", "VERSION", "ZONES", "Command",
    "Data", "Info", "Packet", "PacketDecoder", "Reply", "Status", "StreamDecoder", "cobs_decode", "cobs_encode",
    "decode", "encode", "frame", "unframe",
]
