# Under MicroPython: the firmware's BLE side against a `bluetooth` fake that enforces the
# radio's limits (31-byte advertising payloads, notifications <= ATT_MTU - 3, ENOMEM when the
# link's buffers are full): GATT table, advertising, MTU-sized DATA, stalls, commands over
# CONTROL, disconnect, re-advertising and a clean resume, battery and RSC cadence. The central
# pairs first (a fresh board has no bond: its pairing window is open); mp_security.py tests
# pairing and bonding themselves.
import os
from struct import unpack_from

import bluetooth
import machine
import mptest
import pins
import rig
import wire

GPIOS = pins.SENSOR_GPIOS
C = len(GPIOS)
SETTINGS = "/tmp/ble-settings.txt"
BONDS = "/tmp/ble-bonds.txt"
SVC = "fb620001-ed75-40c4-ab3f-ac4c69b6bad7"


def boot(**cfg):
    for path in (SETTINGS, BONDS):
        try:
            os.remove(path)
        except OSError:
            pass
    for g in GPIOS:
        machine.set_uv(g, 1000000)
    if pins.BATTERY_ADC_GPIO is not None:  # a 3.8 V battery behind the divider
        machine.set_uv(pins.BATTERY_ADC_GPIO, -(-3800 * 1000000 // pins.BATTERY_DIVIDER_X1000))
    clock = rig.Clock(0)
    cfg.setdefault("SERIAL_STREAM", False)
    a, port, radio = rig.make_app(clock, settings_path=SETTINGS, bonds_path=BONDS, **cfg)
    a.start()
    drv = rig.Driver(clock, a.poll, poll_every=5)
    return a, radio, drv


def table(radio):
    # {service key: {char key: (flags, handle)}}
    out = {}
    for svc, chars in radio.services:
        out[svc.key()] = {}
        for cu, flags, h in chars:
            out[svc.key()][cu.key()] = (flags, h)
    return out


def ad_fields(payload):
    out = {}
    i = 0
    while i < len(payload):
        n = payload[i]
        out[payload[i + 1]] = bytes(payload[i + 2:i + 1 + n])
        i += 1 + n
    assert i == len(payload)
    return out


def h(radio, svc, ch):
    return table(radio)[svc][ch][1]


def data_h(radio):
    return h(radio, SVC, "fb620002-ed75-40c4-ab3f-ac4c69b6bad7")


def control_h(radio):
    return h(radio, SVC, "fb620005-ed75-40c4-ab3f-ac4c69b6bad7")


def status_h(radio):
    return h(radio, SVC, "fb620003-ed75-40c4-ab3f-ac4c69b6bad7")


def info_h(radio):
    return h(radio, SVC, "fb620004-ed75-40c4-ab3f-ac4c69b6bad7")


def connect(radio, drv, mtu=247, security="pair"):
    # security: "pair" (a new bond), "encrypt" (a bonded central coming back) or None.
    radio.central_connect()
    assert radio.mtu_requests >= 1, "the device asks for a bigger MTU"
    radio.central_mtu(mtu)
    if security == "pair":
        assert radio.central_pair(), "the window of a fresh board is open"
    elif security == "encrypt":
        assert radio.central_encrypt()
    drv.run(5)


def data(radio):
    return [n[2] for n in radio.take_notifications(data_h(radio))]


def test_fake_enforces_the_radio_limits():
    radio = bluetooth.BLE()
    radio.active(True)
    radio.irq(lambda event, data: None)
    try:
        radio.gap_advertise(100000, adv_data=bytes(32))
    except OSError as e:
        assert e.errno == 22
    else:
        raise AssertionError("32-byte advertising accepted")
    ((hd,),) = radio.gatts_register_services(
        ((bluetooth.UUID(0x1234), ((bluetooth.UUID(0x2345), bluetooth.FLAG_NOTIFY),)),))
    radio.gap_advertise(100000, adv_data=bytes(31))
    radio.central_connect()
    try:
        radio.gatts_notify(radio.conn, hd, bytes(21))
    except ValueError:
        pass
    else:
        raise AssertionError("21-byte notification at MTU 23 accepted")


def test_gatt_table():
    a, radio, drv = boot()
    t = table(radio)
    ins = t[SVC]
    R, W, N, RE, WE = 0x02, 0x08, 0x10, 0x0200, 0x1000
    assert ins["fb620002-ed75-40c4-ab3f-ac4c69b6bad7"][0] == N
    assert ins["fb620003-ed75-40c4-ab3f-ac4c69b6bad7"][0] == R | RE | N
    assert ins["fb620004-ed75-40c4-ab3f-ac4c69b6bad7"][0] == R | RE
    assert ins["fb620005-ed75-40c4-ab3f-ac4c69b6bad7"][0] & (W | N | WE) == W | N | WE
    assert set(t["180a"]) == {"2a29", "2a24", "2a26"}
    assert t["180f"]["2a19"][0] == R | N
    assert t["1814"]["2a53"][0] == N and t["1814"]["2a54"][0] == R
    assert radio.central_read(t["1814"]["2a5d"][1]) == b"\x02", "sensor location: in shoe"
    assert radio.central_read(t["1814"]["2a54"][1]) == b"\x04\x00"
    assert radio.central_read(t["180a"]["2a26"][1]) == b"1.0.0"
    connect(radio, drv)
    info = radio.central_read(info_h(radio))
    assert info[1] == wire.INFO and info[3] == C


def test_no_battery_service_without_a_divider():
    import pins
    saved = pins.BATTERY_ADC_GPIO
    pins.BATTERY_ADC_GPIO = None
    try:
        a, radio, drv = boot()
        assert "180f" not in table(radio)
    finally:
        pins.BATTERY_ADC_GPIO = saved


def test_advertising_fits_and_names_the_side():
    a, radio, drv = boot()
    assert radio.advertising and len(radio.adv_data) <= 31 and len(radio.resp_data) <= 31
    f = ad_fields(radio.adv_data)
    assert f[0x01] == b"\x06"
    assert f[0x07] == wire.uuid_le(SVC)
    assert f[0x09] == b"Insole-L"
    r = ad_fields(radio.resp_data)
    assert b"\x14\x18" in r[0x03], "RSC 0x1814 listed for watches"
    assert radio.gap_name == "Insole-L"


def test_no_data_before_mtu_exchange_then_batches_fit_the_mtu():
    # MTU-sized packets (BATCH_MS 0), and time-closed packets (the configured 38 ms, and others) capped by the MTU
    for mtu, batch_ms in ((64, 0), (185, 0), (247, 0), (64, 38), (247, 38), (247, 20)):
        n_sets = min(wire.sets_for_mtu(mtu, C), wire.sets_for_time(500, batch_ms))
        a, radio, drv = boot(BATCH_MS=batch_ms)
        radio.central_connect()
        assert radio.central_pair()
        drv.run(1100)  # over a second at MTU 23: STATUS (21 bytes) cannot be notified either
        assert not data(radio), "MTU 23 cannot carry a sample set: wait for the exchange"
        assert a.restarts == 0 and a.ble.too_long >= 1
        assert len(radio.central_read(status_h(radio))) == 21, "STATUS stays readable"
        radio.central_mtu(mtu)
        drv.run(500)
        pk = data(radio)
        assert len(pk) >= 500 // n_sets - 2, (mtu, len(pk))
        for p in pk[1:]:
            assert len(p) <= mtu - 3 and p[12] == n_sets, (mtu, batch_ms, len(p), p[12])
        seqs = [unpack_from("<H", p, 4)[0] for p in pk]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def test_stalled_link_drops_and_says_so():
    a, radio, drv = boot()
    connect(radio, drv)
    drv.run(230)
    before = data(radio)
    radio.stalled = True
    drv.run(500)  # one second the radio cannot send
    assert radio.refused > 0
    radio.stalled = False
    drv.run(500)
    after = data(radio)
    s0 = unpack_from("<H", before[-1], 4)[0]
    seqs = [unpack_from("<H", p, 4)[0] for p in after]
    assert seqs[0] == s0 + 1 and seqs == list(range(seqs[0], seqs[0] + len(seqs))), "no seq gap"
    marked = [p for p in after if p[2] & 0x04]
    assert len(marked) == 1, "one packet carries the overrun bit"
    assert a.sampler.overruns > 200
    a.housekeeping()
    st = radio.central_read(status_h(radio))
    assert unpack_from("<I", st, 14)[0] == a.sampler.overruns


def test_commands_over_control_get_one_reply_each():
    a, radio, drv = boot()
    connect(radio, drv)
    c = control_h(radio)
    cases = ((b"\x01\x11", 0x11, 0), (b"\x01\x12\x00\x00", 0x12, 3), (b"\x01\x12\x01", 0x12, 2),
             (b"\x01\x7f", 0x7F, 1), (b"\x01\x10", 0x10, 0), (b"\x01\x13", 0x13, 0),
             (b"\x01\x14", 0x14, 0), (b"\x01\x15\x07", 0x15, 3), (b"\x01", 0, 2))
    for cmd, t, code in cases:
        radio.take_notifications(c)
        radio.central_write(c, cmd)
        drv.run(5)
        got = [n[2] for n in radio.take_notifications(c) if n[2][1] == wire.REPLY]
        assert got == [bytes((1, 4, t, code))], (cmd, got)


def test_full_command_queue_answers_busy():
    a, radio, drv = boot()
    connect(radio, drv)
    c = control_h(radio)
    radio.take_notifications(c)
    for _ in range(9):  # written faster than the main loop runs: 8 fit in the queue
        radio.central_write(c, b"\x01\x13")
    busy = [n[2] for n in radio.take_notifications(c)]
    assert busy == [b"\x01\x04\x13\x04"], busy
    drv.run(5)
    ok = [n[2] for n in radio.take_notifications(c)]
    assert ok == [b"\x01\x04\x13\x00"] * 8, ok


def test_stop_over_ble_stops_data():
    a, radio, drv = boot()
    connect(radio, drv)
    radio.central_write(control_h(radio), b"\x01\x11")
    drv.run(10)
    data(radio)
    drv.run(200)
    assert not data(radio)
    radio.central_write(control_h(radio), b"\x01\x10")
    drv.run(200)
    assert data(radio)


def test_disconnect_readvertises_and_resumes_cleanly():
    a, radio, drv = boot(BATCH_MS=0)  # MTU-sized packets: the new MTU shows in their size
    connect(radio, drv)
    drv.run(100)
    first = data(radio)
    radio.central_disconnect()
    assert radio.advertising, "advertising again after a disconnect"
    drv.run(300)
    assert a.sampler.overruns == 0, "nobody listening is not an overrun"
    connect(radio, drv, mtu=185, security="encrypt")
    drv.run(200)
    again = data(radio)
    n185 = wire.sets_for_mtu(185, C)
    assert again and all(p[12] == n185 for p in again[1:]), "new connection, new MTU"
    s_last = unpack_from("<H", first[-1], 4)[0]
    assert unpack_from("<H", again[0], 4)[0] > s_last
    assert not [p for p in again if p[2] & 0x04]


def test_set_side_renames_the_device():
    a, radio, drv = boot()
    connect(radio, drv)
    radio.central_write(control_h(radio), b"\x01\x15\x01")
    drv.run(5)
    radio.central_disconnect()
    assert ad_fields(radio.adv_data)[0x09] == b"Insole-R"
    assert radio.gatts_read(info_h(radio))[2] == 1


def test_battery_level_and_status():
    a, radio, drv = boot()
    connect(radio, drv)
    drv.run(1100)
    bat = h(radio, "180f", "2a19")
    assert radio.central_read(bat) == bytes((40,)), radio.central_read(bat)
    assert radio.take_notifications(bat)
    st = radio.central_read(status_h(radio))
    assert len(st) == 21 and st[3] == 40 and abs(unpack_from("<H", st, 4)[0] - 3800) <= 2
    assert radio.take_notifications(status_h(radio))


def _gait(step_hz, drv, seconds, rate=500):
    # Heel and forefoot loaded for 40 % of each stride, unloaded in swing.
    period = int(rate / step_hz)

    def row(i):
        on = (drv_i[0] % period) < period * 4 // 10
        for g in GPIOS:
            machine.set_uv(g, 1500000 if on else 0)
        drv_i[0] += 1

    drv_i = [0]
    drv.run(rate * seconds, row)


def test_rsc_cadence_running_and_walking():
    a, radio, drv = boot()
    connect(radio, drv)
    rsc = h(radio, "1814", "2a53")
    _gait(1.4, drv, 6)  # 1.4 strides/s = 168 steps/min
    m = [n[2] for n in radio.take_notifications(rsc)][-1]
    assert m[0] & 0x04, "running"
    assert 160 <= m[3] <= 176, m[3]
    st = radio.central_read(status_h(radio))
    assert 160 <= st[20] <= 176, st[20]
    _gait(0.9, drv, 8)  # 108 steps/min: walking
    m = [n[2] for n in radio.take_notifications(rsc)][-1]
    assert not m[0] & 0x04 and 100 <= m[3] <= 116, m


mptest.run(globals())
