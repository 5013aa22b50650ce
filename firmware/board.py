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
BONDS_PATH = "/bonds.txt"
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
    # machine.Signal hides the polarity: LED_ACTIVE_LOW boards light the LED with a 0.
    if pins.LED_GPIO is None:
        return None
    pin = machine.Pin(pins.LED_GPIO, machine.Pin.OUT)
    sig = machine.Signal(pin, invert=pins.LED_ACTIVE_LOW)
    sig.value(0)
    return sig


class _SampleTimer:
    # Hardware timer 0, periodic at the sample rate; its callback runs scheduled (soft).
    def __init__(self):
        self._timer = machine.Timer(0)

    def start(self, rate_hz, callback):
        self._timer.init(mode=machine.Timer.PERIODIC, freq=rate_hz, callback=callback)

    def stop(self):
        self._timer.deinit()


def boot_button():
    # The BOOT button (GPIO0 on the ESP32 boards: pulled up, reads 0 while pressed), read by the
    # main loop: held 3 s it opens the BLE pairing window. None on a board without one.
    if pins.BUTTON_GPIO is None:
        return None
    return machine.Pin(pins.BUTTON_GPIO, machine.Pin.IN, machine.Pin.PULL_UP)


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
        try:
            machine.UART(0, baud)  # the REPL's UART, behind the board's USB bridge
        except (OSError, ValueError):
            pass  # keep the boot baud rate; the host must then open the port at that rate
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


def safe_mode(window_ms=1000):
    # BOOT button (GPIO0) pressed during the first second after reset: leave the REPL alone and
    # do not start the firmware. (Held *at* reset, GPIO0 low selects the ROM bootloader instead.)
    button = boot_button()
    if button is None:
        return False
    pressed = 0 if pins.BUTTON_ACTIVE_LOW else 1
    start = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), start) < window_ms:
        if button.value() == pressed:
            return True
        time.sleep_ms(10)
    return False


def idle():
    time.sleep_ms(1)


def reset():
    machine.reset()
