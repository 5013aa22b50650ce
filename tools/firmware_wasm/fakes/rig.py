# Scaffolding for firmware tests and the firmware-in-the-loop runner (never deployed): a fake
# clock that wraps at 2**30 like the ESP32's ticks_us, a fake USB serial port, and a builder
# that runs the real board.py/app.py on the fake machine and bluetooth modules.
import bluetooth
import machine

_MASK = (1 << 30) - 1


class Clock:
    def __init__(self, start_us=0):
        self.us = start_us & _MASK
        self.ms = (start_us // 1000) & _MASK
        self._rem = start_us % 1000

    def advance(self, dt_us):
        self.us = (self.us + dt_us) & _MASK
        r = self._rem + dt_us
        self.ms = (self.ms + r // 1000) & _MASK
        self._rem = r % 1000

    def ticks_us(self):
        return self.us

    def ticks_ms(self):
        return self.ms


class FakeSerial:
    def __init__(self):
        self.out = bytearray()
        self.inbox = bytearray()
        self.baud = None

    def write(self, buf):
        self.out.extend(buf)

    def readinto(self, buf):
        n = min(len(buf), len(self.inbox))
        for i in range(n):
            buf[i] = self.inbox[i]
        self.inbox = self.inbox[n:]
        return n

    def take(self):
        out = self.out
        self.out = bytearray()
        return out


class Config:
    FIRMWARE_VERSION = "1.0.0"
    SERIAL_STREAM = True
    SERIAL_BAUD = 921600
    BATCH_MS = 38
    BLE = True
    STREAM_ON_BOOT = True
    WATCHDOG_MS = 5000
    IDENTIFY_MS = 3000

    def __init__(self, **kw):
        for k in kw:
            setattr(self, k, kw[k])


def make_app(clock, settings_path="/tmp/settings.txt", bonds_path="/tmp/bonds.txt", **cfg):
    # The real board module with its clock and ports swapped for fakes at the edge.
    import app
    import board
    board.ticks_us = clock.ticks_us
    board.ticks_ms = clock.ticks_ms
    board.SETTINGS_PATH = settings_path
    board.BONDS_PATH = bonds_path
    board.LOG_PATH = "/tmp/log.txt"
    port = FakeSerial()

    def serial_port(baud):
        port.baud = baud
        return port

    board.serial_port = serial_port
    radio = bluetooth.BLE()
    board.ble = lambda: radio
    a = app.build(board, Config(**cfg))
    return a, port, radio


def sample_timer():
    return machine.Timer.active.get(0)


class Driver:
    # Fires the sample timer at its configured rate, advancing the clock between fires.
    def __init__(self, clock, poll, poll_every=10):
        self.clock = clock
        self.poll = poll
        self.poll_every = poll_every
        self._acc = 0
        self._k = 0

    def period_us(self):
        t = sample_timer()
        f = t.freq
        self._acc += 1000000 % f
        extra = 0
        if self._acc >= f:
            self._acc -= f
            extra = 1
        return 1000000 // f + extra

    def run(self, n_sets, set_row=None, jitter=None):
        for i in range(n_sets):
            t = sample_timer()
            dt = self.period_us()
            if jitter is not None:
                dt += jitter(i)
            self.clock.advance(dt)
            if set_row is not None:
                set_row(i)
            t.fire()
            self._k += 1
            if self._k >= self.poll_every:
                self._k = 0
                self.poll()
