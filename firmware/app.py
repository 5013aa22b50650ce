# The insole application: wires the sampler to the links, answers commands, sends STATUS once a
# second, watches faults, feeds the watchdog, blinks for IDENTIFY. Hardware comes in as
# arguments (see build(), which takes the board module); nothing here names a pin.
#
# Main-loop contract: poll() is called every millisecond or so. It never blocks on a link: a
# BLE notification that does not go out stays in the sampler's ring and is retried, and when the
# ring is full the sampler drops and counts (STATUS overruns, DATA overrun bit).
import sys

from sampler import Sampler
from steps import RUNNING_SPM, StepDetector
from wire import (CMD_FORGET_BONDS, CMD_GET_INFO, CMD_IDENTIFY, CMD_SET_RATE, CMD_SET_SIDE,
                  CMD_START, CMD_STOP, REPLY_OK, encode_info, encode_reply, encode_status, parse_command)

from micropython import const

_HOUSEKEEPING_MS = const(1000)
_BLINK_MS = const(100)
_SRC_SERIAL = const(0)
_SRC_BLE = const(1)
_LOG_MAX_BYTES = const(4096)

# LiPo open-circuit voltage (mV) -> charge (%), piecewise linear.
_LIPO_MV = (3300, 3600, 3700, 3750, 3800, 3900, 4000, 4100, 4200)
_LIPO_PCT = (0, 5, 15, 25, 40, 60, 75, 90, 100)


def battery_pct(mv):
    if mv <= _LIPO_MV[0]:
        return 0
    for i in range(1, len(_LIPO_MV)):
        if mv <= _LIPO_MV[i]:
            lo = _LIPO_MV[i - 1]
            p0 = _LIPO_PCT[i - 1]
            return p0 + (_LIPO_PCT[i] - p0) * (mv - lo) // (_LIPO_MV[i] - lo)
    return 100


class Log:
    # Bounded log file (the serial port may be carrying binary frames, so no print there).
    def __init__(self, path, echo):
        self._path = path
        self._echo = echo
        self.lines = 0

    def __call__(self, msg):
        self.lines += 1
        if self._echo:
            print(msg)
        try:
            import os
            if os.stat(self._path)[6] > _LOG_MAX_BYTES:
                os.rename(self._path, self._path + ".old")
        except OSError:
            pass
        try:
            with open(self._path, "a") as f:
                f.write(msg)
                f.write("\n")
        except OSError:
            pass

    def exception(self, e):
        self("error: %s: %s" % (type(e).__name__, e))
        if self._echo:
            sys.print_exception(e)


class App:
    def __init__(self, sampler, steps, settings, timer_start, timer_stop, ticks_ms, ticks_diff,
                 zone_ids, supply_mv, r_fixed_ohm, device_id, firmware, led=None,
                 battery_mv=None, ble=None, serial=None, wdt=None, log=None,
                 stream_on_boot=True, identify_ms=3000, pairing=None):
        self.sampler = sampler
        self.steps = steps
        self.settings = settings
        self._timer_start = timer_start
        self._timer_stop = timer_stop
        self._ticks_ms = ticks_ms
        self._ticks_diff = ticks_diff
        self.zone_ids = zone_ids
        self.supply_mv = supply_mv
        self.r_fixed_ohm = r_fixed_ohm
        self.device_id = device_id
        self.firmware = firmware
        self.led = led
        self._battery_mv = battery_mv
        self.ble = ble
        self.pairing = pairing
        self.serial = serial
        self.wdt = wdt
        self.log = log or (lambda msg: None)
        self._identify_ms = identify_ms
        self.streaming = stream_on_boot
        self._buf = bytearray(64)  # INFO, STATUS and REPLY packets are built here
        self._ble_events = -1
        self._serial_sent = False  # the oldest ready packet already went out on serial
        self._identify_left_ms = 0
        self._blink_ms = 0
        self._last_ms = 0
        self._house_ms = 0
        self._uptime_ms = 0
        self._last_taken = -1
        self.achieved_hz = 0
        self.battery_mv = 0
        self.battery_pct = 255
        self.restarts = 0
        self.replies = 0

    # --- lifecycle -------------------------------------------------------------------------

    def start(self):
        s = self.sampler
        s.side = self.settings.side
        s.configure(self.settings.rate_hz)
        self._last_ms = self._ticks_ms()
        if self.serial:
            self._send_serial(self._buf, self._info(self._buf))  # INFO first on a serial stream
        if self.ble:
            self.ble.set_info(bytes(memoryview(self._buf)[:self._info(self._buf)]))
        self._update_links()
        s.start()
        self._timer_start(s.rate_hz, s.tick)

    def recover(self):
        # The global exception handler's restart of the streaming path: stop the timer, throw
        # away the ring (its state is suspect), start again with the same settings.
        self._timer_stop()
        self.restarts += 1
        s = self.sampler
        s.error = None
        s.emit = False
        s.reset()
        s.configure(s.rate_hz)
        self._serial_sent = False
        self._update_links()
        s.start()
        self._timer_start(s.rate_hz, s.tick)

    # --- main loop ---------------------------------------------------------------------------

    def poll(self):
        s = self.sampler
        if s.error is not None:
            e = s.error
            s.error = None
            raise e
        if self.serial:
            self.serial.poll(self._on_serial_packet)
        now = self._ticks_ms()
        if self.pairing is not None:
            self.pairing.poll(now)  # the BOOT button, the window's end, saving new bonds
        ble = self.ble
        if ble:
            ble.service(now)  # drop an encrypted link that is not bonded
            if ble.events != self._ble_events:
                self._ble_events = ble.events
                self._update_links()
            while ble.commands:
                cmd = ble.commands.pop(0)
                self.handle_command(cmd, len(cmd), _SRC_BLE)
        self._drain()
        el = self._ticks_diff(now, self._last_ms)
        self._last_ms = now
        self._uptime_ms += el
        if self._identify_left_ms > 0:
            self._blink(el)
        self._house_ms += el
        if self._house_ms >= _HOUSEKEEPING_MS:
            self._house_ms -= _HOUSEKEEPING_MS
            if self._house_ms >= _HOUSEKEEPING_MS:
                self._house_ms = 0
            self.housekeeping()

    def _update_links(self):
        # Who takes DATA now, and the batch size their MTU allows.
        s = self.sampler
        ble = self.ble
        mtu = ble.mtu if ble is not None and ble.data_ready() else None
        ble_ok = mtu is not None
        s.set_mtu(mtu)
        if ble_ok or self.serial:
            s.request_close()  # the next packet is sized for the new MTU
        emit = self.streaming and (ble_ok or self.serial is not None)
        if not emit:
            s.emit = False
            s.discard_all()
            self._serial_sent = False
        else:
            s.emit = True

    def _drain(self):
        s = self.sampler
        ble = self.ble if self.ble is not None and self.ble.data_ready() else None
        serial = self.serial
        while s.ready():
            pkt = s.packet()
            if serial is not None and not self._serial_sent:
                serial.send(pkt, len(pkt))
                self._serial_sent = True
            if ble is not None and not ble.notify(ble.data_h, pkt):
                return  # link congested: keep the packet, try again on the next poll
            s.release()
            self._serial_sent = False

    def _send_serial(self, pkt, n):
        if self.serial is not None:
            self.serial.send(pkt, n)

    # --- once a second -----------------------------------------------------------------------

    def housekeeping(self):
        s = self.sampler
        alive = s.taken != self._last_taken
        self._last_taken = s.taken
        self.achieved_hz = s.achieved_hz if alive else 0
        if alive and self.wdt:
            self.wdt.feed()  # only while the sampler makes progress
        if self._battery_mv:
            mv = self._battery_mv()
            pct = battery_pct(mv)
            if self.ble and pct != self.battery_pct:
                self.ble.send_battery(pct)
            self.battery_mv = mv
            self.battery_pct = pct
        cadence = self.steps.cadence_spm()
        n = self._status(self._buf, cadence)
        if self.serial:
            self._send_serial(self._buf, n)
        if self.ble:
            self.ble.send_status(bytes(memoryview(self._buf)[:n]))
            self.ble.send_rsc(cadence, cadence >= RUNNING_SPM)

    def _status(self, buf, cadence):
        s = self.sampler
        return encode_status(buf, s.side, self.battery_pct, self.battery_mv,
                             self._uptime_ms // 1000, s.rate_hz, self.achieved_hz, s.overruns,
                             s.fault_mask(), self.streaming, cadence)

    def _info(self, buf):
        return encode_info(buf, self.sampler.side, self.zone_ids, self.sampler.rate_hz,
                           self.supply_mv, self.r_fixed_ohm, self.device_id, self.firmware)

    def _blink(self, el):
        led = self.led
        if led is None:
            return
        self._identify_left_ms -= el
        self._blink_ms += el
        if self._identify_left_ms <= 0:
            self._identify_left_ms = 0
            led.value(0)
        elif self._blink_ms >= _BLINK_MS:
            self._blink_ms = 0
            led.value(1 - led.value())

    # --- commands ----------------------------------------------------------------------------

    def _on_serial_packet(self, pkt, n):
        self.handle_command(pkt, n, _SRC_SERIAL)

    def handle_command(self, pkt, n, source):
        # Exactly one REPLY per command, on the link it came from; bad input changes nothing.
        t, code, arg = parse_command(pkt, n)
        if t is None:
            t = pkt[1] if n >= 2 else 0
        send_info = False
        if code == REPLY_OK:
            if t == CMD_START:
                self.streaming = True
                self._update_links()
            elif t == CMD_STOP:
                self.streaming = False
                self._update_links()
            elif t == CMD_SET_RATE:
                self._set_rate(arg)
            elif t == CMD_GET_INFO:
                send_info = True
            elif t == CMD_IDENTIFY:
                if self.led is not None:
                    self._identify_left_ms = self._identify_ms
                    self._blink_ms = _BLINK_MS
            elif t == CMD_SET_SIDE:
                self._set_side(arg)
            elif t == CMD_FORGET_BONDS and self.pairing is not None:
                # Over BLE only a bonded central gets here (CONTROL is write-encrypted); its
                # link stays up until it disconnects, and it must pair again after that.
                self.pairing.forget()
        buf = self._buf
        m = encode_reply(buf, t, code)
        self._reply(buf, m, source)
        if send_info:
            # Serial: the INFO packet follows the REPLY. BLE: the INFO characteristic is
            # refreshed for the host to read (CONTROL carries REPLYs only).
            m = self._info(buf)
            if source == _SRC_SERIAL:
                self._send_serial(buf, m)
            elif self.ble is not None:
                self.ble.set_info(bytes(memoryview(buf)[:m]))

    def _reply(self, buf, m, source):
        self.replies += 1
        if source == _SRC_SERIAL:
            self._send_serial(buf, m)
        elif self.ble is not None:
            self.ble.send_control(bytes(memoryview(buf)[:m]))

    def _set_rate(self, rate_hz):
        s = self.sampler
        if rate_hz != s.rate_hz:
            self._timer_stop()
            s.stop()  # the partial batch goes out at the old period
            s.configure(rate_hz)
            s.start()
            self._timer_start(rate_hz, s.tick)
        self.settings.rate_hz = rate_hz
        self.settings.save()
        self._info_changed()

    def _set_side(self, side):
        self.sampler.side = side
        self.settings.side = side
        self.settings.save()
        self._info_changed()
        if self.ble:
            self.ble.set_name(device_name(side))

    def _info_changed(self):
        if self.ble:
            m = self._info(self._buf)
            self.ble.set_info(bytes(memoryview(self._buf)[:m]))


def device_name(side):
    return "Insole-R" if side else "Insole-L"


def build(board, cfg=None):
    # Everything from the board module: its pins, ADCs, radio, serial port, timer and watchdog.
    if cfg is None:
        import config as cfg
    import pins
    from settings import Settings
    settings = Settings(board.SETTINGS_PATH)
    steps = StepDetector(settings.rate_hz)
    # A short reads 99.5 % of the supply, or the ADC's full scale if that comes first.
    full_uv = pins.SUPPLY_MV * 995
    if pins.ADC_FULL_SCALE_MV * 1000 < full_uv:
        full_uv = pins.ADC_FULL_SCALE_MV * 1000
    # a packet at least every cfg.BATCH_MS (docs/latency.md)
    sampler = Sampler(board.sensor_adcs(), board.ticks_us, board.ticks_diff, steps,
                      rate_hz=settings.rate_hz, full_scale_units=full_uv // 100,
                      batch_ms=cfg.BATCH_MS)
    serial = None
    if cfg.SERIAL_STREAM:
        from seriallink import SerialLink
        from wire import data_bytes
        serial = SerialLink(board.serial_port(cfg.SERIAL_BAUD),
                            data_bytes(sampler.channels, sampler.max_sets))
    ble = None
    pairing = None
    if cfg.BLE:
        from blelink import BleLink
        from bonds import Bonds, Pairing
        pairing = Pairing(Bonds(board.BONDS_PATH), board.ticks_ms, board.ticks_diff,
                          button=board.boot_button(), active_low=pins.BUTTON_ACTIVE_LOW)
        ble = BleLink(board.ble(), board.UUID, device_name(settings.side), "Open Insole",
                      pins.BOARD, cfg.FIRMWARE_VERSION, pins.BATTERY_ADC_GPIO is not None,
                      pairing)
    timer = board.sample_timer()
    return App(sampler, steps, settings, timer.start, timer.stop, board.ticks_ms,
               board.ticks_diff, pins.ZONE_IDS, pins.SUPPLY_MV, pins.R_FIXED_OHM,
               board.device_id(), cfg.FIRMWARE_VERSION, led=board.led(),
               battery_mv=board.battery_reader(), ble=ble, serial=serial,
               wdt=board.watchdog(cfg.WATCHDOG_MS), log=Log(board.LOG_PATH, not cfg.SERIAL_STREAM),
               stream_on_boot=cfg.STREAM_ON_BOOT, identify_ms=cfg.IDENTIFY_MS, pairing=pairing)


def run(board, cfg=None, max_errors=5, error_window_ms=60000):
    # The firmware's main loop with its global exception handler: an exception anywhere in the
    # streaming path is logged and the stream restarted; too many in a minute reset the board.
    app = build(board, cfg)
    app.start()
    errors = 0
    window_start = board.ticks_ms()
    while True:
        try:
            app.poll()
        except Exception as e:  # noqa: BLE001  logged, counted, then the stream restarts
            app.log.exception(e)
            now = board.ticks_ms()
            if board.ticks_diff(now, window_start) > error_window_ms:
                window_start = now
                errors = 0
            errors += 1
            if errors > max_errors:
                app.log("too many errors: reset")
                board.reset()
            app.recover()
        board.idle()
