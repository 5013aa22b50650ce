# Fake of the ESP32 `machine` module for running the firmware under the MicroPython
# WebAssembly port. Only the edge is fake: pins, ADC, timer, watchdog, UART, reset. It enforces
# the limits of the real part that the firmware must respect (ADC1 pins only, timer rates).
# The test or the firmware-in-the-loop driver sets pin voltages with set_uv() and fires timers.
from array import array

# ADC1 pads per chip; the chip is the one the generated pins.py was made for.
_ADC1 = {"esp32": (32, 33, 34, 35, 36, 37, 38, 39), "esp32s3": (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)}
try:
    from pins import CHIP as _CHIP
except ImportError:
    _CHIP = "esp32"
ADC1_GPIOS = _ADC1[_CHIP]
_uv = array("i", [0] * 49)  # voltage at each GPIO, microvolts
_failing = -1  # GPIO whose ADC read raises OSError (a test's injected hardware fault)


def fail_reads(gpio):
    global _failing
    _failing = gpio


def set_uv(gpio, uv):
    _uv[gpio] = uv


def get_uv(gpio):
    return _uv[gpio]


def set_level(gpio, level):
    # What an input pin reads from now on (a button: 0 pressed, 1 released, with a pull-up).
    Pin.levels[gpio] = 1 if level else 0


def release(gpio):
    # Back to what the pin reads by itself (its pull).
    Pin.levels.pop(gpio, None)


class Pin:
    IN = 1
    OUT = 3
    PULL_UP = 2
    PULL_DOWN = 1
    toggles = {}  # gpio -> number of output level changes (the LED's blinks)
    levels = {}  # gpio -> input level a test wants read

    def __init__(self, id, mode=-1, pull=-1, value=None):
        if not 0 <= id <= 48:
            raise ValueError("invalid pin")
        self.id = id
        self.mode = mode
        self.pull = pull
        self._v = value if value is not None else Pin.levels.get(id, 1 if pull == Pin.PULL_UP else 0)
        Pin.toggles.setdefault(id, 0)

    def value(self, v=None):
        if v is None:
            if self.mode == Pin.IN:
                return Pin.levels.get(self.id, 1 if self.pull == Pin.PULL_UP else self._v)
            return self._v
        v = 1 if v else 0
        if v != self._v:
            Pin.toggles[self.id] = Pin.toggles.get(self.id, 0) + 1
        self._v = v

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


class Signal:
    def __init__(self, pin, invert=False):
        self._pin = pin
        self._invert = bool(invert)

    def value(self, v=None):
        if v is None:
            return self._pin.value() ^ self._invert
        self._pin.value((1 if v else 0) ^ self._invert)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


class ADC:
    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3
    WIDTH_12BIT = 3

    def __init__(self, pin, atten=None):
        gpio = pin.id if isinstance(pin, Pin) else pin
        if gpio not in ADC1_GPIOS:
            # The real ESP32 accepts ADC2 pads but cannot read them while the radio is on.
            raise ValueError("GPIO%d is not an ADC1 pin" % gpio)
        self._gpio = gpio
        self.atten = atten

    def read_uv(self):
        if self._gpio == _failing:
            raise OSError(5)
        return _uv[self._gpio]

    def read_u16(self):
        v = _uv[self._gpio] * 65535 // 3300000
        return 65535 if v > 65535 else v


class Timer:
    PERIODIC = 1
    ONE_SHOT = 0
    active = {}  # id -> Timer running

    def __init__(self, id=-1):
        if not -1 <= id <= 3:
            raise ValueError("timer id 0-3")
        self.id = id
        self.freq = 0
        self.callback = None

    def init(self, mode=1, freq=-1, period=-1, callback=None):
        if freq is not None and freq > 0:
            if freq > 40000:
                raise ValueError("freq too high")
            self.freq = freq
        elif period is not None and period > 0:
            self.freq = 1000 // period
        else:
            raise ValueError("need freq or period")
        self.mode = mode
        self.callback = callback
        Timer.active[self.id] = self

    def deinit(self):
        if Timer.active.get(self.id) is self:
            del Timer.active[self.id]
        self.callback = None

    def fire(self):
        if self.callback is not None:
            self.callback(self)


class WDT:
    instances = []

    def __init__(self, id=0, timeout=5000):
        if timeout < 1:
            raise ValueError("timeout")
        self.timeout = timeout
        self.feeds = 0
        WDT.instances.append(self)

    def feed(self):
        self.feeds += 1


class UART:
    def __init__(self, id, baudrate=115200, **kw):
        self.id = id
        self.baudrate = baudrate


class ResetRequested(Exception):
    pass


resets = 0


def reset():
    global resets
    resets += 1
    raise ResetRequested()


_unique_id = b"\xa4\xcf\x12\x00\x3f\x9a"


def set_unique_id(uid):
    global _unique_id
    _unique_id = bytes(uid)


def unique_id():
    return _unique_id


def idle():
    pass
