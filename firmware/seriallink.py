# The packet stream on a serial port (PROTOCOL.md "Serial framing"): every packet out as one
# COBS frame with its CRC-32, and command frames in, decoded as they arrive. The port is passed
# in: any object with write(buf) and a non-blocking readinto(buf) -> count or None.
from wire import frame_bytes_max, frame_into, unframe_into

from micropython import const

_RX_FRAME_MAX = const(64)  # a command frame is at most 10 bytes; longer is noise
_RX_CHUNK = const(64)


class SerialLink:
    def __init__(self, port, max_packet_bytes):
        self._port = port
        self._out = bytearray(frame_bytes_max(max_packet_bytes))
        self._out_mv = memoryview(self._out)
        self._rx = bytearray(_RX_FRAME_MAX)
        self._rx_n = 0
        self._rx_overflow = False
        self._chunk = bytearray(_RX_CHUNK)
        self._pkt = bytearray(_RX_FRAME_MAX)
        self.frames_out = 0
        self.bad_frames = 0  # frames in that failed COBS/CRC or were too long: no REPLY possible

    def send(self, pkt, n):
        m = frame_into(pkt, n, self._out)
        self._port.write(self._out_mv[:m])
        self.frames_out += 1

    def poll(self, on_packet):
        # Read what is waiting; call on_packet(buf, n) for each good frame. Returns frames seen.
        got = self._port.readinto(self._chunk)
        if not got:
            return 0
        seen = 0
        rx = self._rx
        for i in range(got):
            b = self._chunk[i]
            if b == 0:
                n = self._rx_n
                self._rx_n = 0
                if self._rx_overflow or n == 0:
                    self._rx_overflow = False
                    if n:
                        self.bad_frames += 1
                    continue
                m = unframe_into(rx, n, self._pkt)
                if m < 0:
                    self.bad_frames += 1
                    continue
                seen += 1
                on_packet(self._pkt, m)
            elif self._rx_n < _RX_FRAME_MAX:
                rx[self._rx_n] = b
                self._rx_n += 1
            else:
                self._rx_overflow = True
        return seen
