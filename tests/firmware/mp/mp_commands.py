# Under MicroPython: the whole firmware (board.py on the fake machine, app.py) over its serial
# port: INFO first, every command answered by exactly one REPLY with the right code, bad input
# changing nothing, SET_SIDE and SET_RATE surviving a reboot, faults, watchdog, recovery.
import os
from struct import unpack_from

import machine
import mptest
import pins
import rig
import wire

GPIOS = pins.SENSOR_GPIOS
C = len(GPIOS)
SETTINGS = "/tmp/cmd-settings.txt"


def fresh(**cfg):
    try:
        os.remove(SETTINGS)
    except OSError:
        pass
    return boot(**cfg)


def boot(**cfg):
    for g in GPIOS:
        machine.set_uv(g, 1200000)
    if pins.BATTERY_ADC_GPIO is not None:  # divider tap: a 3.9 V battery
        machine.set_uv(pins.BATTERY_ADC_GPIO, -(-3900 * 1000000 // pins.BATTERY_DIVIDER_X1000))
    clock = rig.Clock(123456)
    cfg.setdefault("BLE", False)
    a, port, radio = rig.make_app(clock, settings_path=SETTINGS, **cfg)
    a.start()
    drv = rig.Driver(clock, a.poll, poll_every=5)
    return a, port, drv


def packets(port):
    # Decode every frame the firmware wrote since the last call.
    raw = port.take()
    out = []
    buf = bytearray(600)
    start = 0
    for i in range(len(raw)):
        if raw[i] == 0:
            m = wire.unframe_into(memoryview(raw)[start:i], i - start, buf)
            assert m > 0, "firmware wrote a bad frame"
            out.append(bytes(buf[:m]))
            start = i + 1
    assert start == len(raw), "trailing partial frame"
    return out


def send(port, pkt):
    fr = bytearray(wire.frame_bytes_max(len(pkt)))
    n = wire.frame_into(pkt, len(pkt), fr)
    port.inbox.extend(fr[:n])


def command(a, port, drv, pkt, sets=10):
    # Send one command, run the sampler a little, return (replies, other packets).
    packets(port)
    send(port, pkt)
    drv.run(sets)
    a.poll()
    got = packets(port)
    return [p for p in got if p[1] == wire.REPLY], [p for p in got if p[1] != wire.REPLY]


def one_reply(a, port, drv, pkt, want_type, want_code):
    replies, other = command(a, port, drv, pkt)
    assert len(replies) == 1, (pkt, replies)
    assert replies[0] == bytes((1, 4, want_type, want_code)), (pkt, replies[0])
    return other


def data_of(pkts):
    return [p for p in pkts if p[1] == wire.DATA]


def test_info_is_first_on_the_serial_stream():
    a, port, drv = fresh()
    drv.run(50)
    got = packets(port)
    assert got[0][1] == wire.INFO, got[0]
    info = got[0]
    c = info[3]
    assert c == C and bytes(info[4:4 + c]) == bytes(pins.ZONE_IDS)
    rate, supply, r_fixed = unpack_from("<HHI", info, 4 + c)
    assert rate == 500 and supply == 3300
    assert bytes(info[12 + c:18 + c]) == machine.unique_id()
    assert data_of(got), "streams on boot"
    assert port.baud == 921600


def test_start_and_stop():
    a, port, drv = fresh()
    drv.run(50)
    one_reply(a, port, drv, b"\x01\x11", 0x11, 0)
    drv.run(100)
    a.poll()
    assert not data_of(packets(port)), "no DATA after STOP"
    one_reply(a, port, drv, b"\x01\x10", 0x10, 0)
    drv.run(100)
    assert data_of(packets(port)), "DATA again after START"


def test_set_rate_ok_and_out_of_range():
    a, port, drv = fresh()
    one_reply(a, port, drv, b"\x01\x12\xe8\x03", 0x12, 0)  # 1000 Hz
    assert machine.Timer.active[0].freq == 1000
    drv.run(100)
    periods = [unpack_from("<H", p, 10)[0] for p in data_of(packets(port))]
    assert periods and periods[-1] == 1000, periods
    for bad in (24, 1001, 0, 65535):
        one_reply(a, port, drv, bytes((1, 0x12, bad & 0xFF, bad >> 8)), 0x12, 3)
        assert a.sampler.rate_hz == 1000 and machine.Timer.active[0].freq == 1000
    one_reply(a, port, drv, b"\x01\x12\x19\x00", 0x12, 0)  # 25 Hz, the lower bound
    assert a.sampler.rate_hz == 25


def test_bad_length_changes_nothing():
    a, port, drv = fresh()
    one_reply(a, port, drv, b"\x01\x12\x90", 0x12, 2)
    one_reply(a, port, drv, b"\x01\x12\x90\x01\x00", 0x12, 2)
    assert a.sampler.rate_hz == 500
    one_reply(a, port, drv, b"\x01\x15", 0x15, 2)
    one_reply(a, port, drv, b"\x01\x11\x00", 0x11, 2)
    assert a.streaming
    one_reply(a, port, drv, b"\x01\x10\x00", 0x10, 2)
    one_reply(a, port, drv, b"\x01\x13\x00", 0x13, 2)
    one_reply(a, port, drv, b"\x01\x14\x01", 0x14, 2)
    one_reply(a, port, drv, b"\x01", 0, 2)


def test_unknown_commands():
    a, port, drv = fresh()
    one_reply(a, port, drv, b"\x01\x7f", 0x7F, 1)
    one_reply(a, port, drv, b"\x01\x01", 0x01, 1)  # a DATA packet sent to the device
    one_reply(a, port, drv, b"\x01\x17", 0x17, 1)
    one_reply(a, port, drv, b"\x01\x16\x00", 0x16, 2)  # FORGET_BONDS takes no argument
    one_reply(a, port, drv, b"\x02\x10", 0x10, 1)  # a protocol version we do not speak
    assert a.streaming and a.sampler.rate_hz == 500


def test_damaged_frames_get_no_reply_and_do_not_stop_the_stream():
    a, port, drv = fresh()
    drv.run(20)
    packets(port)
    port.inbox.extend(b"\x05\x01\x10\x99\x99\x00")  # CRC wrong
    port.inbox.extend(b"\x00\x00garbage without a delimiter" * 4 + b"\x00")
    drv.run(50)
    got = packets(port)
    assert not [p for p in got if p[1] == wire.REPLY]
    assert data_of(got)
    assert a.serial.bad_frames >= 2
    one_reply(a, port, drv, b"\x01\x13", 0x13, 0)


def test_get_info():
    a, port, drv = fresh()
    other = one_reply(a, port, drv, b"\x01\x13", 0x13, 0)
    infos = [p for p in other if p[1] == wire.INFO]
    assert len(infos) == 1 and infos[0][3] == C


def test_identify_blinks_the_led():
    a, port, drv = fresh()
    led = pins.LED_GPIO
    before = machine.Pin.toggles.get(led, 0)
    one_reply(a, port, drv, b"\x01\x14", 0x14, 0)
    drv.run(500 * 2)  # 2 s
    mid = machine.Pin.toggles[led] - before
    assert mid >= 10, mid
    drv.run(500 * 2)
    end = machine.Pin.toggles[led]
    drv.run(500)
    assert machine.Pin.toggles[led] == end, "blinking stops after a few seconds"


def test_set_side_persists_across_reboot():
    a, port, drv = fresh()
    one_reply(a, port, drv, b"\x01\x15\x02", 0x15, 3)
    assert a.sampler.side == 0
    one_reply(a, port, drv, b"\x01\x15\x01", 0x15, 0)
    one_reply(a, port, drv, b"\x01\x12\xc8\x00", 0x12, 0)  # 200 Hz
    drv.run(100)
    d = data_of(packets(port))
    assert d and d[-1][2] & 1, "DATA says right"
    a2, port2, drv2 = boot()  # reboot: same flash, new RAM
    drv2.run(10)
    info = packets(port2)[0]
    assert info[1] == wire.INFO and info[2] & 1, "INFO after reboot says right"
    assert unpack_from("<H", info, 4 + info[3])[0] == 200
    one_reply(a2, port2, drv2, b"\x01\x15\x00", 0x15, 0)
    a3, port3, drv3 = boot()
    assert a3.sampler.side == 0


def test_status_every_second():
    a, port, drv = fresh()
    drv.run(500 * 3)
    st = [p for p in packets(port) if p[1] == wire.STATUS]
    assert 2 <= len(st) <= 4, len(st)
    f = unpack_from("<BBBBHIHHIBBB", st[-1])
    # flags, battery_pct, battery_mv, uptime, rate, achieved, overruns, fault, streaming, cad
    assert abs(f[4] - 3900) <= 2 and f[3] == 60, f
    assert f[6] == 500 and f[7] == 500 and f[8] == 0 and f[9] == 0 and f[10] == 1, f
    assert f[5] >= 2


def test_fault_bit_set_and_stream_goes_on():
    a, port, drv = fresh()
    machine.set_uv(GPIOS[2], 0)  # channel 2 disconnected
    machine.set_uv(GPIOS[3], 3300000)  # channel 3 shorted to the supply
    drv.run(500 * 2 + 10)
    got = packets(port)
    st = [p for p in got if p[1] == wire.STATUS]
    assert st[-1][18] == 0b01100, st[-1][18]
    assert data_of(got)[-1][1] == wire.DATA


def test_watchdog_fed_only_while_sampling():
    a, port, drv = fresh()
    wdt = machine.WDT.instances[-1]
    assert wdt.timeout == 5000
    drv.run(500 * 3)
    fed = wdt.feeds
    assert fed >= 2
    # the sampler's timer dies: the loop keeps running but must stop feeding the dog
    for _ in range(3000):
        drv.clock.advance(2000)
        a.poll()
    assert wdt.feeds == fed, "fed although no sample set was taken"


def test_exception_in_sampling_is_logged_and_stream_restarted():
    a, port, drv = fresh()
    drv.run(105)  # a quarter of a 20-set packet filled

    class Broken:
        def read_uv(self):
            raise OSError(5)

    good = a.sampler._reads[1]
    a.sampler._reads[1] = Broken().read_uv
    drv.poll = lambda: None
    drv.run(3)
    try:
        a.poll()
    except OSError:
        pass
    else:
        raise AssertionError("the failure must reach the main loop")
    a.sampler._reads[1] = good
    partial = a.sampler._fill
    assert partial > 0, "a partial batch was being filled when it failed"
    a.recover()
    assert a.sampler.overruns == 3 + partial, "failed and discarded sets count as dropped"
    drv.poll = a.poll
    packets(port)
    drv.run(100)
    d = data_of(packets(port))
    assert d, "streaming again"
    assert a.restarts == 1
    # the restarted stream starts a fresh batch: full packets only, on the period grid
    t0s = [unpack_from("<I", p, 6)[0] for p in d]
    ns = [p[12] for p in d]
    assert all(b - a_ == n * 2000 for a_, b, n in zip(t0s, t0s[1:], ns)), (t0s, ns)
    assert ns[0] == min(wire.sets_for_mtu(247, C), wire.sets_for_time(500, rig.Config.BATCH_MS)), ns
    assert d[0][2] & 0x04, "the first packet after the restart says sets were dropped"


def test_run_loop_catches_logs_and_resets_after_repeated_errors():
    import app as app_mod
    import board
    clock = rig.Clock(0)
    for g in GPIOS:
        machine.set_uv(g, 1000000)
    board.ticks_us = clock.ticks_us
    board.ticks_ms = clock.ticks_ms
    board.SETTINGS_PATH = SETTINGS
    board.LOG_PATH = "/tmp/run-log.txt"
    port = rig.FakeSerial()
    board.serial_port = lambda baud: port
    state = {"n": 0}

    def idle():
        # each pass of the main loop: 2 ms pass and the timer fires; every 50th pass an ADC read
        # fails inside the sampler (as an I2C/ADC driver error would)
        state["n"] += 1
        if state["n"] > 5000:
            raise AssertionError("the run loop never reset the board")
        clock.advance(2000)
        machine.fail_reads(GPIOS[0] if state["n"] % 50 == 0 else -1)
        machine.Timer.active[0].fire()
        machine.fail_reads(-1)

    board.idle = idle
    resets = machine.resets
    try:
        app_mod.run(board, rig.Config(BLE=False), max_errors=3, error_window_ms=60000)
    except machine.ResetRequested:
        pass
    assert machine.resets == resets + 1
    with open("/tmp/run-log.txt") as f:
        log = f.read()
    assert log.count("error") >= 3, log


class _Stop(Exception):
    pass


def _patch_board_for_boot(clock, port, passes):
    import board
    board.ticks_us = clock.ticks_us
    board.ticks_ms = clock.ticks_ms
    board.SETTINGS_PATH = SETTINGS
    board.LOG_PATH = "/tmp/boot-log.txt"
    board.serial_port = lambda baud: port
    state = {"n": 0}

    def idle():
        state["n"] += 1
        if state["n"] > passes:
            raise _Stop()
        clock.advance(2000)
        machine.Timer.active[0].fire()

    board.idle = idle
    return board


def test_main_py_boots_the_firmware_and_safe_mode_skips_it():
    import sys
    for g in GPIOS:
        machine.set_uv(g, 1000000)
    clock = rig.Clock(0)
    port = rig.FakeSerial()
    _patch_board_for_boot(clock, port, 1500)
    machine.Timer.active.clear()
    machine.Pin.levels[0] = 1  # BOOT not pressed
    sys.modules.pop("main", None)
    try:
        import main  # noqa: F401  the file MicroPython runs at boot
    except _Stop:
        pass
    got = packets(port)
    assert got[0][1] == wire.INFO and data_of(got) and [p for p in got if p[1] == wire.STATUS]
    # BOOT pressed within the first second: no timer, no stream, the REPL stays free
    machine.Timer.active.clear()
    machine.Pin.levels[0] = 0
    sys.modules.pop("main", None)
    try:
        import main  # noqa: F401,F811
    finally:
        machine.Pin.levels[0] = 1
    assert not machine.Timer.active and not port.take()


mptest.run(globals())
