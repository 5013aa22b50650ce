# The board: the one module that names pins and builds hardware objects (ADC, Pin, Timer, WDT,
# the BLE radio, the USB serial port). Pin numbers come from pins.py, generated from
# hardware/pinmap.json. Everything else in the firmware takes these objects as arguments.
import sys
import time

import bluetooth
import machine
import pins

UUID = bluetooth.UUID
SETTINGS_PATH = "/settings.txt"
LOG_PATH = "/log.txt"

ticks_us = time.ticks_us
ticks_ms = time.ticks_ms
ticks_diff = time.ticks_diff


def _adc(gpio):
    # ADC1 only (ADC2 is unusable while the radio runs); 11 dB: about 0.15-3.1 V, read
    # calibrated with read_uv().
    return machine.ADC(machine.Pin(gpio), atten=machine.ADC.ATTN_11DB)


def sensor_adcs():
    return [_adc(g) for g in pins.SENSOR_GPIOS]


def battery_reader():
    # A callable returning the battery voltage in mV, or None when the board has no divider.
    if pins.BATTERY_ADC_GPIO is None:
        return None
    adc = _adc(pins.BATTERY_ADC_GPIO)
    ratio_x1000 = pins.BATTERY_DIVIDER_X1000

    def read_mv():
        return adc.read_uv() * ratio_x1000 // 1000000

    return read_mv


def led():
    if pins.LED_GPIO is None:
        return None
    return machine.Pin(pins.LED_GPIO, machine.Pin.OUT, value=0)


class _SampleTimer:
    # Hardware timer 0, periodic at the sample rate; its callback runs scheduled (soft).
    def __init__(self):
        self._timer = machine.Timer(0)

    def start(self, rate_hz, callback):
        self._timer.init(mode=machine.Timer.PERIODIC, freq=rate_hz, callback=callback)

    def stop(self):
        self._timer.deinit()


def sample_timer():
    return _SampleTimer()


def watchdog(timeout_ms):
    return machine.WDT(timeout=timeout_ms)


def ble():
    return bluetooth.BLE()


def device_id():
    # 6 bytes for INFO: the chip's unique id (the factory base MAC on the ESP32).
    uid = machine.unique_id()
    return bytes(uid[:6]) + bytes(6 - len(uid[:6]))


class _UsbSerial:
    # The USB serial port (UART0 behind the board's USB bridge) as a binary packet port.
    # Ctrl-C is disabled so 0x03 in a frame does not interrupt the program.
    def __init__(self, baud):
        import micropython
        import select
        machine.UART(0, baud)
        micropython.kbd_intr(-1)
        self._out = sys.stdout.buffer
        self._in = sys.stdin.buffer
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)

    def write(self, buf):
        self._out.write(buf)

    def readinto(self, buf):
        n = 0
        cap = len(buf)
        while n < cap and self._poll.poll(0):
            b = self._in.read(1)
            if not b:
                break
            buf[n] = b[0]
            n += 1
        return n


def serial_port(baud):
    return _UsbSerial(baud)


def safe_mode():
    # BOOT button (GPIO0) held low at reset: leave the REPL alone, do not start the firmware.
    return machine.Pin(0, machine.Pin.IN, machine.Pin.PULL_UP).value() == 0


def idle():
    time.sleep_ms(1)


def reset():
    machine.reset()
