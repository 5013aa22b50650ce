# Under MicroPython: BLE pairing, bonding and the pairing window (docs/security.md), against the
# `bluetooth` fake that enforces the encryption flags as NimBLE does (ATT 0x05/0x0F to an
# unencrypted central) and plays the central's side of pairing and of a bonded reconnection.
# The BOOT button is the fake machine.Pin; time is the fake clock (no sleeps).
import gc
import os

import bluetooth
import machine
import mptest
import pins
import rig
import wire

GPIOS = pins.SENSOR_GPIOS
SETTINGS = "/tmp/sec-settings.txt"
BONDS = "/tmp/sec-bonds.txt"
SVC = "fb620001-ed75-40c4-ab3f-ac4c69b6bad7"
RATE_HZ = 50  # a slow rate: a minute of fake clock is 3000 timer ticks
BUTTON = pins.BUTTON_GPIO
A = b"\xaa\x00\x00\x00\x00\x01"  # central addresses (the runner's laptop, others)
B = b"\xbb\x00\x00\x00\x00\x02"
STOP = b"\x01\x11"
START = b"\x01\x10"
FORGET = b"\x01\x16"


def wipe():
    for path in (SETTINGS, BONDS, BONDS + ".new"):
        try:
            os.remove(path)
        except OSError:
            pass


def boot(keys=None, **cfg):
    # A board; keys: the central keys of a previous radio (a reboot keeps the laptops' bonds).
    machine.release(BUTTON)
    for g in GPIOS:
        machine.set_uv(g, 1000000)
    with open(SETTINGS, "w") as f:
        f.write("side=0\nrate_hz=%d\n" % RATE_HZ)
    clock = rig.Clock(0)
    cfg.setdefault("SERIAL_STREAM", False)
    a, port, radio = rig.make_app(clock, settings_path=SETTINGS, bonds_path=BONDS, **cfg)
    if keys:
        radio.central_keys.update(keys)
    a.start()
    drv = rig.Driver(clock, a.poll, poll_every=1)
    return a, radio, drv, port


def handles(radio):
    out = {}
    for svc, chars in radio.services:
        for cu, flags, h in chars:
            out[cu.key()] = h
    return out


def h(radio, name):
    keys = {"data": "fb620002-ed75-40c4-ab3f-ac4c69b6bad7",
            "status": "fb620003-ed75-40c4-ab3f-ac4c69b6bad7",
            "info": "fb620004-ed75-40c4-ab3f-ac4c69b6bad7",
            "control": "fb620005-ed75-40c4-ab3f-ac4c69b6bad7"}
    return handles(radio)[keys.get(name, name)]


def seconds(drv, s):
    drv.run(int(s * RATE_HZ))


def connect(radio, drv, addr, security=None):
    radio.central_connect(addr=addr)
    radio.central_mtu(247)
    ok = True
    if security == "pair":
        ok = radio.central_pair()
    elif security == "encrypt":
        ok = radio.central_encrypt()
    drv.run(3)
    return ok


def insole_notes(radio):
    # Notifications of the insole service's DATA, STATUS and CONTROL the central received.
    mine = (h(radio, "data"), h(radio, "status"), h(radio, "control"))
    return [n for n in radio.take_notifications() if n[1] in mine]


def att_error(fn, *args):
    try:
        fn(*args)
    except bluetooth.AttError as e:
        return e.code
    return None


def bonded_board():
    # A board whose owner (central A) paired on first use, then disconnected.
    wipe()
    a, radio, drv, port = boot()
    assert a.pairing.window_open(), "no bond yet: the window is open"
    assert connect(radio, drv, A, "pair")
    assert a.ble.trusted and not a.pairing.window_open(), "one bond closes the window"
    radio.central_disconnect()
    drv.run(3)
    radio.take_notifications()  # what the owner got (DATA at 50 Hz is a packet a set): not a test's
    return a, radio, drv, port


def press(drv, held_s):
    machine.set_level(BUTTON, 0)  # GPIO0 low: pressed
    seconds(drv, held_s)
    machine.release(BUTTON)
    drv.run(2)


def test_security_settings_and_flags():
    wipe()
    a, radio, drv, port = boot()
    assert radio.config("bond") and radio.config("le_secure")
    assert not radio.config("mitm") and radio.config("io") == 3, "just works: no display, no keys"
    flags = {}
    for svc, chars in radio.services:
        for cu, fl, hd in chars:
            flags[cu.key()] = fl
    assert flags["fb620005-ed75-40c4-ab3f-ac4c69b6bad7"] & 0x1000, "CONTROL write-encrypted"
    assert flags["fb620003-ed75-40c4-ab3f-ac4c69b6bad7"] & 0x0200, "STATUS read-encrypted"
    assert flags["fb620004-ed75-40c4-ab3f-ac4c69b6bad7"] & 0x0200, "INFO read-encrypted"
    for std in ("2a29", "2a24", "2a26", "2a53", "2a54", "2a5d", "2a19"):
        if std in flags:
            assert not flags[std] & 0x3600, std + " stays open"


def test_bonded_central_records_and_commands():
    a, radio, drv, port = bonded_board()
    assert connect(radio, drv, A, "encrypt"), "the bonded laptop encrypts with its stored key"
    assert a.ble.trusted
    seconds(drv, 2)
    got = insole_notes(radio)
    assert [n for n in got if n[1] == h(radio, "data")], "DATA flows to the bonded central"
    assert [n for n in got if n[1] == h(radio, "status")], "STATUS too"
    assert radio.central_read(h(radio, "info"))[1] == wire.INFO
    radio.central_write(h(radio, "control"), STOP)
    drv.run(3)
    replies = [n[2] for n in radio.take_notifications(h(radio, "control"))]
    assert replies == [b"\x01\x04\x11\x00"] and not a.streaming
    radio.central_write(h(radio, "control"), START)
    seconds(drv, 1)
    assert a.streaming and radio.take_notifications(h(radio, "data"))
    assert radio.plain == [], "nothing of the insole service went out unencrypted"


def test_unbonded_central_is_refused_writes_and_gets_no_data():
    a, radio, drv, port = bonded_board()
    connect(radio, drv, B)  # a stranger's phone: connects, does not pair
    seconds(drv, 2)
    assert insole_notes(radio) == [], "no DATA, STATUS or REPLY on an unencrypted link"
    assert att_error(radio.central_write, h(radio, "control"), STOP) == 0x05
    assert att_error(radio.central_read, h(radio, "info")) == 0x05
    assert att_error(radio.central_read, h(radio, "status")) == 0x05
    seconds(drv, 1)
    assert a.streaming and a.ble.commands_dropped == 0 and a.replies == 0, "STOP never arrived"
    radio.central_disconnect()
    # The owner's laptop before it encrypts: its bond is known, so Insufficient Encryption.
    connect(radio, drv, A)
    assert att_error(radio.central_write, h(radio, "control"), STOP) == 0x0F
    assert radio.plain == [] and a.streaming


def test_standard_services_stay_readable_without_pairing():
    a, radio, drv, port = bonded_board()
    connect(radio, drv, B)
    t = handles(radio)
    assert radio.central_read(t["2a29"]) == b"Open Insole"
    assert radio.central_read(t["2a26"]) == b"1.0.0"
    assert radio.central_read(t["2a5d"]) == b"\x02" and radio.central_read(t["2a54"]) == b"\x04\x00"
    seconds(drv, 2)
    assert radio.take_notifications(t["2a53"]), "RSC measurements notify without pairing"
    if "2a19" in t:
        assert len(radio.central_read(t["2a19"])) == 1


def test_pairing_outside_the_window_is_refused_and_nothing_stored():
    a, radio, drv, port = bonded_board()
    with open(BONDS) as f:
        before = f.read()
    assert a.pairing.bonds.count() == 1 and not a.pairing.window_open()
    connect(radio, drv, B)
    assert not radio.central_pair(), "the board refuses to store the stranger's keys"
    # Encrypted (NimBLE pairs on its own) but not trusted: a write in that instant is ignored.
    radio.central_write(h(radio, "control"), STOP)
    drv.run(3)
    assert radio.conn is None and radio.kicks == 1, "the untrusted encrypted link is dropped"
    assert a.streaming and a.ble.untrusted_writes == 1 and a.ble.refused_pairings >= 1
    assert insole_notes(radio) == [] and radio.plain == []
    assert a.pairing.bonds.addresses() == ["01:00:00:00:00:aa"]
    with open(BONDS) as f:
        assert f.read() == before, "no bond stored or changed"
    # A stranger spoofing the owner's address cannot replace (nor delete) the owner's bond.
    owner_key = radio.central_keys[b"\x00" + A]
    connect(radio, drv, A)
    assert not radio.central_pair()
    drv.run(3)
    assert radio.conn is None and radio.kicks == 2
    radio.central_keys[b"\x00" + A] = owner_key
    assert connect(radio, drv, A, "encrypt") and a.ble.trusted, "the owner's bond survived"


def test_window_opens_after_a_3_s_press_and_closes_after_60_s():
    a, radio, drv, port = bonded_board()
    press(drv, 2.5)
    assert not a.pairing.window_open(), "2.5 s is not a long press"
    press(drv, 3.2)
    assert a.pairing.window_open(), "held 3 s: the window opens"
    seconds(drv, 55)
    assert a.pairing.window_open()
    seconds(drv, 5)
    assert not a.pairing.window_open(), "60 s later it is closed"
    connect(radio, drv, B)
    assert not radio.central_pair() and a.pairing.bonds.count() == 1
    drv.run(3)
    assert radio.conn is None


def test_window_closes_after_one_new_bond():
    a, radio, drv, port = bonded_board()
    press(drv, 3.2)
    assert connect(radio, drv, B, "pair") and a.ble.trusted
    assert not a.pairing.window_open(), "one new bond per window"
    seconds(drv, 1)
    assert radio.take_notifications(h(radio, "data"))
    radio.central_disconnect()
    connect(radio, drv, b"\xcc\x00\x00\x00\x00\x03")
    assert not radio.central_pair()
    drv.run(3)
    assert a.pairing.bonds.count() == 2 and radio.conn is None


def test_bonds_survive_a_reboot():
    a, radio, drv, port = bonded_board()
    drv.run(3)  # the main loop saved the new bond
    keys = dict(radio.central_keys)
    a2, radio2, drv2, port2 = boot(keys)  # the same filesystem, a new app
    assert a2.pairing.bonds.addresses() == ["01:00:00:00:00:aa"]
    assert not a2.pairing.window_open(), "a board with a bond boots with its window closed"
    assert connect(radio2, drv2, A, "encrypt") and a2.ble.trusted
    seconds(drv2, 1)
    assert radio2.take_notifications(h(radio2, "data"))
    radio2.central_disconnect()
    connect(radio2, drv2, B)
    assert not radio2.central_pair()


def test_bond_limit_replaces_the_oldest():
    a, radio, drv, port = bonded_board()
    addrs = [A] + [bytes((0x10 + i, 0, 0, 0, 0, i)) for i in range(4)]
    for addr in addrs[1:]:
        press(drv, 3.2)
        assert connect(radio, drv, addr, "pair")
        radio.central_disconnect()
        drv.run(2)
    bonds = a.pairing.bonds
    assert bonds.count() == 4 and bonds.evicted == 1
    assert "01:00:00:00:00:aa" not in bonds.addresses(), "the oldest bond (A) was replaced"
    assert not connect(radio, drv, A, "encrypt"), "A must pair again"
    radio.central_disconnect()
    assert connect(radio, drv, addrs[1], "encrypt") and a.ble.trusted
    radio.central_disconnect()
    drv.run(2)
    with open(BONDS) as f:
        assert len(f.read().split("\n")) == 4 * 2 + 1, "4 peers x 2 keys in the file"


def test_forget_bonds_over_ble_clears_them_and_opens_the_window():
    a, radio, drv, port = bonded_board()
    assert connect(radio, drv, A, "encrypt")
    radio.take_notifications()
    radio.central_write(h(radio, "control"), FORGET)
    drv.run(3)
    assert [n[2] for n in radio.take_notifications(h(radio, "control"))] == [b"\x01\x04\x16\x00"]
    assert a.pairing.bonds.count() == 0 and a.pairing.window_open()
    with open(BONDS) as f:
        assert f.read() == ""
    radio.central_disconnect()
    assert not connect(radio, drv, A, "encrypt"), "the old bond is gone"
    radio.central_disconnect()
    assert connect(radio, drv, B, "pair") and a.ble.trusted


def test_forget_bonds_over_serial():
    wipe()
    a, radio, drv, port = boot(SERIAL_STREAM=True)
    assert connect(radio, drv, A, "pair")
    radio.central_disconnect()
    drv.run(3)
    port.take()
    fr = bytearray(wire.frame_bytes_max(2))
    n = wire.frame_into(FORGET, 2, fr)
    port.inbox.extend(fr[:n])
    drv.run(3)
    out = bytes(port.take())
    fr = bytearray(wire.frame_bytes_max(4))
    n = wire.frame_into(b"\x01\x04\x16\x00", 4, fr)
    assert bytes(fr[:n]) in out, "REPLY FORGET_BONDS OK on the serial port"
    assert a.pairing.bonds.count() == 0 and a.pairing.window_open()


def test_window_stays_shut_while_bonds_exist_and_a_reset_button_hold_opens_it_once():
    a, radio, drv, port = bonded_board()
    press(drv, 20)  # held a long time: one opening, from 3 s into the press
    assert a.pairing.openings == 1 and a.pairing.window_open()
    seconds(drv, 44)
    assert not a.pairing.window_open(), "60 s after it opened, not after the release"


def test_encrypted_link_without_a_bond_is_dropped_after_the_grace_inside_the_window():
    # Paired without bonding (no keys distributed) while the window is open: never trusted.
    wipe()
    a, radio, drv, port = boot()
    connect(radio, drv, A)
    assert not radio.central_pair(bond=False)
    seconds(drv, 1)
    assert radio.conn is not None and not a.ble.trusted and insole_notes(radio) == []
    seconds(drv, 1.5)
    assert radio.conn is None and radio.kicks == 1 and a.pairing.bonds.count() == 0


def test_security_checks_allocate_nothing():
    a, radio, drv, port = bonded_board()
    assert connect(radio, drv, A, "encrypt")
    ble = a.ble
    pairing = a.pairing
    for i in range(10):
        pairing.poll(i)
        ble.service(i)
    gc.collect()
    before = gc.mem_alloc()
    for i in range(2000):
        pairing.poll(i)
        ble.service(i)
        ble.data_ready()
    assert gc.mem_alloc() == before, "the per-poll checks allocated"


mptest.run(globals())
