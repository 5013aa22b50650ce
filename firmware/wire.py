# Insole wire protocol v1 (../shared/PROTOCOL.md): packet layouts, command parsing, CRC and
# COBS framing. Pure code with no hardware: the device runs it under MicroPython and the host
# tests run the very same file under CPython. Encoders write into caller-owned buffers so the
# streaming path can reuse preallocated memory.
from binascii import crc32, unhexlify
from struct import pack_into, unpack_from

try:
    from micropython import const  # pyright: ignore[reportAssignmentType]
except ImportError:  # CPython: const() is the identity
    def const(x):
        return x

VERSION = const(1)
DATA = const(0x01)
STATUS = const(0x02)
INFO = const(0x03)
REPLY = const(0x04)
CMD_START = const(0x10)
CMD_STOP = const(0x11)
CMD_SET_RATE = const(0x12)
CMD_GET_INFO = const(0x13)
CMD_IDENTIFY = const(0x14)
CMD_SET_SIDE = const(0x15)
CMD_FORGET_BONDS = const(0x16)  # our extension (docs/ble.md): erase the BLE bonds, open pairing

REPLY_OK = const(0)
REPLY_UNKNOWN = const(1)
REPLY_BAD_LENGTH = const(2)
REPLY_OUT_OF_RANGE = const(3)
REPLY_BUSY = const(4)

RATE_MIN_HZ = const(25)
RATE_MAX_HZ = const(1000)
MAX_CHANNELS = const(8)
MAX_SETS = const(255)

FLAG_SIDE = const(0x01)
FLAG_OVERRUN = const(0x04)

# DATA header: version u8, type u8, flags u8, channels u8, seq u16, t0_us u32, period_us u16,
# N u8 = 13 bytes, then N*C little-endian u16 samples, sample-major.
DATA_HEADER_BYTES = const(13)
STATUS_BYTES = const(21)
REPLY_BYTES = const(4)
# ATT notification payload = ATT_MTU - 3 (opcode 1 byte + handle 2 bytes).
ATT_OVERHEAD = const(3)
# Frame = COBS(packet + crc32 LE) + 0x00: COBS adds one code byte per 254 bytes plus one.
CRC_BYTES = const(4)

# Argument bytes each command carries (index = type - 0x10).
_ARG_BYTES = (0, 0, 2, 0, 0, 1, 0)


def sets_for_mtu(mtu, channels):
    # Largest N with 13 + 2*C*N <= MTU - 3, capped at 255. MTU below 64 is not supported.
    n = (mtu - ATT_OVERHEAD - DATA_HEADER_BYTES) // (2 * channels)
    if n < 1:
        raise ValueError("MTU too small")
    return n if n < MAX_SETS else MAX_SETS


def sets_for_time(rate_hz, batch_ms):
    # Most sample sets one packet may hold so that it closes batch_ms after its first set (at
    # least 1, at most 255); 0 ms: no time limit (the MTU alone decides).
    if batch_ms <= 0:
        return MAX_SETS
    n = rate_hz * batch_ms // 1000
    if n < 1:
        return 1
    return n if n < MAX_SETS else MAX_SETS


def data_bytes(channels, n_sets):
    return DATA_HEADER_BYTES + 2 * channels * n_sets


def put_data_header(buf, flags, channels, seq, t0_lo, t0_hi, period_us, n_sets):
    # t0_us travels as two u16 halves so a 32-bit clock never becomes a heap-allocated long int.
    buf[0] = VERSION
    buf[1] = DATA
    buf[2] = flags
    buf[3] = channels
    buf[4] = seq & 0xFF
    buf[5] = (seq >> 8) & 0xFF
    buf[6] = t0_lo & 0xFF
    buf[7] = t0_lo >> 8
    buf[8] = t0_hi & 0xFF
    buf[9] = t0_hi >> 8
    buf[10] = period_us & 0xFF
    buf[11] = period_us >> 8
    buf[12] = n_sets


def encode_data(buf, side, overrun, seq, t0_us, period_us, rows):
    # Convenience encoder (allocates nothing itself; used by tests and tools, not the sampler).
    c = len(rows[0])
    n = len(rows)
    flags = (side & 1) | (FLAG_OVERRUN if overrun else 0)
    put_data_header(buf, flags, c, seq, t0_us & 0xFFFF, (t0_us >> 16) & 0xFFFF, period_us, n)
    o = DATA_HEADER_BYTES
    for row in rows:
        for v in row:
            buf[o] = v & 0xFF
            buf[o + 1] = (v >> 8) & 0xFF
            o += 2
    return o


def encode_status(buf, side, battery_pct, battery_mv, uptime_s, rate_hz, achieved_hz,
                  overruns, fault_mask, streaming, cadence_spm):
    # 21 bytes: see PROTOCOL.md STATUS. Values are clamped to their field widths.
    pack_into("<BBBBHIHHIBBB", buf, 0, VERSION, STATUS, side & 1, battery_pct & 0xFF,
              battery_mv & 0xFFFF, uptime_s & 0xFFFFFFFF, rate_hz, achieved_hz & 0xFFFF,
              overruns & 0xFFFFFFFF, fault_mask & 0xFF, 1 if streaming else 0,
              min(cadence_spm, 255))
    return STATUS_BYTES


def encode_info(buf, side, zone_ids, rate_hz, supply_mv, r_fixed_ohm, device_id, firmware):
    # device_id: 6 bytes; firmware: ASCII str. Returns the packet length.
    c = len(zone_ids)
    buf[0] = VERSION
    buf[1] = INFO
    buf[2] = side & 1
    buf[3] = c
    for i in range(c):
        buf[4 + i] = zone_ids[i]
    pack_into("<HHI", buf, 4 + c, rate_hz, supply_mv, r_fixed_ohm)
    for i in range(6):
        buf[12 + c + i] = device_id[i]
    fw = firmware.encode()
    buf[18 + c] = len(fw)
    for i in range(len(fw)):
        buf[19 + c + i] = fw[i]
    return 19 + c + len(fw)


def encode_reply(buf, command, code):
    buf[0] = VERSION
    buf[1] = REPLY
    buf[2] = command & 0xFF
    buf[3] = code
    return REPLY_BYTES


def parse_command(pkt, n):
    # Check a command packet of n bytes. Returns (type, code, arg): code is the REPLY code the
    # device must answer with if it is not REPLY_OK; type is None when the packet has no type
    # byte (bad length) or a protocol version we do not speak (unknown): the REPLY then names
    # type 0 or the packet's second byte.
    if n < 2:
        return None, REPLY_BAD_LENGTH, 0
    if pkt[0] != VERSION:
        return None, REPLY_UNKNOWN, 0
    t = pkt[1]
    if t < CMD_START or t > CMD_FORGET_BONDS:
        return t, REPLY_UNKNOWN, 0
    if n != 2 + _ARG_BYTES[t - CMD_START]:
        return t, REPLY_BAD_LENGTH, 0
    if t == CMD_SET_RATE:
        rate_hz = unpack_from("<H", pkt, 2)[0]
        if rate_hz < RATE_MIN_HZ or rate_hz > RATE_MAX_HZ:
            return t, REPLY_OUT_OF_RANGE, rate_hz
        return t, REPLY_OK, rate_hz
    if t == CMD_SET_SIDE:
        if pkt[2] > 1:
            return t, REPLY_OUT_OF_RANGE, pkt[2]
        return t, REPLY_OK, pkt[2]
    return t, REPLY_OK, 0


def frame_bytes_max(packet_len):
    # Upper bound of a frame's size for a packet of this length.
    raw = packet_len + CRC_BYTES
    return raw + raw // 254 + 2


# Measured (`make bench`): 0.3-0.85 ms for a 244-byte DATA packet in the wasm port, i.e.
# 15-35 us per sample set; runs in the main loop, never in the timer callback.
def frame_into(pkt, n, out):
    # Serial frame of the first n bytes of pkt into out: COBS(pkt + crc32 LE) + 0x00.
    # Returns the frame length. out must hold frame_bytes_max(n) bytes.
    crc = crc32(pkt if n == len(pkt) else memoryview(pkt)[:n])
    c0 = crc & 0xFF
    c1 = (crc >> 8) & 0xFF
    c2 = (crc >> 16) & 0xFF
    c3 = (crc >> 24) & 0xFF
    total = n + CRC_BYTES
    code_at = 0  # where the current block's code byte goes
    o = 1
    code = 1
    for i in range(total):
        if i < n:
            b = pkt[i]
        elif i == n:
            b = c0
        elif i == n + 1:
            b = c1
        elif i == n + 2:
            b = c2
        else:
            b = c3
        if b == 0:
            out[code_at] = code
            code_at = o
            o += 1
            code = 1
        else:
            out[o] = b
            o += 1
            code += 1
            if code == 0xFF:
                out[code_at] = code
                code_at = o
                o += 1
                code = 1
    out[code_at] = code
    out[o] = 0
    return o + 1


def unframe_into(body, n, out):
    # Decode a frame body of n bytes (without its 0x00) into out: returns the packet length,
    # or -1 for a COBS error, -2 for a frame too short to hold a byte and the CRC, -3 for a CRC
    # mismatch, -4 when the packet does not fit in out.
    i = 0
    o = 0
    cap = len(out)
    while i < n:
        code = body[i]
        end = i + code
        if code == 0 or end > n:
            return -1
        i += 1
        while i < end:
            if o >= cap:
                return -4
            out[o] = body[i]
            o += 1
            i += 1
        if code != 0xFF and i < n:
            if o >= cap:
                return -4
            out[o] = 0
            o += 1
    if o < 1 + CRC_BYTES:
        return -2
    m = o - CRC_BYTES
    got = out[m] | (out[m + 1] << 8) | (out[m + 2] << 16) | (out[m + 3] << 24)
    if crc32(memoryview(out)[:m]) != got:
        return -3
    return m


def uuid_le(text):
    # 128-bit UUID "xxxxxxxx-xxxx-..." to its 16 little-endian bytes, as BLE advertises it.
    raw = unhexlify(text.replace("-", ""))
    out = bytearray(16)
    for i in range(16):
        out[i] = raw[15 - i]
    return bytes(out)
