# BLE peripheral: the insole service with its four characteristics (PROTOCOL.md "BLE"), plus
# Device Information, Battery (when the board measures its battery) and Running Speed and
# Cadence so a sports watch can use the insole as a footpod. The radio (a bluetooth.BLE) and the
# UUID class are passed in. IRQ contract: the handler only records state and queues command
# bytes; the main loop acts on them.
#
# Security (docs/security.md): LE Secure Connections, "just works" (the insole has no display or
# keys), bonding. CONTROL is write-encrypted and INFO/STATUS read-encrypted, which NimBLE
# enforces itself (ATT error 0x05/0x0F to an unencrypted central). NimBLE pairs on its own with
# anyone, so the firmware decides what a link may do:
# - _IRQ_SET_SECRET (NimBLE storing a new bond) returns False outside the pairing window: the
#   keys are not stored, and that connection is marked refused.
# - a link is *trusted* when it is encrypted and its key came from a stored bond (NimBLE looked
#   up our key for this peer with _IRQ_GET_SECRET, sec_type 1, on this connection) or from a
#   bond stored on this connection inside the window, and nothing was refused on it.
# - an encrypted link that is not trusted is disconnected by the main loop (service()): at once
#   when the window is closed, after ENC_GRACE_MS when it is open (the keys of a pairing in
#   progress may be stored just after encryption starts).
# - DATA, STATUS and REPLY (CONTROL) notify, and CONTROL writes are queued, only on a trusted
#   link (NimBLE sends a notification on any link: gatts_notify checks neither security nor
#   subscription). Device Information, Battery and RSC stay open, as watches expect.
from micropython import const

from wire import uuid_le

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_GATTS_WRITE = const(3)
_IRQ_MTU_EXCHANGED = const(21)
_IRQ_ENCRYPTION_UPDATE = const(28)
_IRQ_GET_SECRET = const(29)
_IRQ_SET_SECRET = const(30)
_IO_CAPABILITY_NO_INPUT_OUTPUT = const(3)
_OUR_SEC = const(1)  # NimBLE's BLE_STORE_OBJ_TYPE_OUR_SEC: our LTK, read back to encrypt

_FLAG_READ = const(0x0002)
_FLAG_WRITE_NO_RESPONSE = const(0x0004)
_FLAG_WRITE = const(0x0008)
_FLAG_NOTIFY = const(0x0010)
_FLAG_READ_ENCRYPTED = const(0x0200)
_FLAG_WRITE_ENCRYPTED = const(0x1000)

SERVICE_UUID = "fb620001-ed75-40c4-ab3f-ac4c69b6bad7"
_DATA_UUID = "fb620002-ed75-40c4-ab3f-ac4c69b6bad7"
_STATUS_UUID = "fb620003-ed75-40c4-ab3f-ac4c69b6bad7"
_INFO_UUID = "fb620004-ed75-40c4-ab3f-ac4c69b6bad7"
_CONTROL_UUID = "fb620005-ed75-40c4-ab3f-ac4c69b6bad7"

PREFERRED_MTU = const(247)
MIN_DATA_MTU = const(64)  # PROTOCOL.md: the device needs at least 64
_ADV_INTERVAL_US = const(100000)
_ADV_MAX = const(31)
_APPEARANCE_IN_SHOE = const(0x0441)  # Running Walking Sensor: In-Shoe
_COMMAND_QUEUE = const(8)
_RSC_RUNNING = const(0x04)  # RSC Measurement flags bit 2: 1 running, 0 walking
_RSC_FEATURE_WALK_RUN = const(0x0004)  # RSC Feature: walking/running status supported
_SENSOR_LOCATION_IN_SHOE = const(2)
ENC_GRACE_MS = const(2000)


def _ad(kind, payload):
    # One advertising structure: length (type + payload), type, payload.
    return bytes((len(payload) + 1, kind)) + payload


def advertising_payload(name, service_uuid):
    # Flags (LE general discoverable, no BR/EDR) 3 + 128-bit service 18 + name 10 = 31 bytes.
    return _ad(0x01, b"\x06") + _ad(0x07, uuid_le(service_uuid)) + _ad(0x09, name.encode())


def scan_response_payload(name, with_battery):
    # Name, appearance and the standard 16-bit services (a watch filters on 0x1814).
    uuids = b"\x14\x18\x0a\x18" + (b"\x0f\x18" if with_battery else b"")
    return (_ad(0x09, name.encode()) + _ad(0x19, bytes((_APPEARANCE_IN_SHOE & 0xFF,
                                                        _APPEARANCE_IN_SHOE >> 8)))
            + _ad(0x03, uuids))


class BleLink:
    def __init__(self, ble, uuid, name, manufacturer, model, firmware, with_battery, pairing):
        self._ble = ble
        self.pairing = pairing
        self.bonds = pairing.bonds
        self._name = name
        self._with_battery = with_battery
        self.conn = None
        self.mtu = 23
        self.commands = []  # bytes written to CONTROL, oldest first, bounded
        self.commands_dropped = 0
        self.notify_failures = 0
        self.too_long = 0  # notifications not sent because they exceed MTU - 3
        self.events = 0  # connects, disconnects, MTU and trust changes, for the main loop
        # This connection's security (reset on connect and disconnect).
        self.encrypted = False
        self.trusted = False
        self._from_bond = False  # NimBLE read our key for this peer from the bonds
        self._new_bond = False  # a bond was stored on this connection, inside the window
        self._refused = False  # a bond write or delete was refused on this connection
        self._bond_key = b""
        self._enc_ms = 0
        # Counters for STATUS-like diagnostics and the tests.
        self.refused_pairings = 0  # bond writes refused (outside the window)
        self.dropped_links = 0  # encrypted links disconnected as untrusted
        self.new_bonds = 0
        self.untrusted_writes = 0  # CONTROL writes ignored on an untrusted link
        ble.active(True)
        ble.config(gap_name=name, mtu=PREFERRED_MTU)
        ble.config(bond=True, le_secure=True, mitm=False, io=_IO_CAPABILITY_NO_INPUT_OUTPUT)
        ble.irq(self._irq)
        insole = (uuid(SERVICE_UUID), (
            (uuid(_DATA_UUID), _FLAG_NOTIFY),
            (uuid(_STATUS_UUID), _FLAG_READ | _FLAG_READ_ENCRYPTED | _FLAG_NOTIFY),
            (uuid(_INFO_UUID), _FLAG_READ | _FLAG_READ_ENCRYPTED),
            (uuid(_CONTROL_UUID), _FLAG_WRITE | _FLAG_WRITE_NO_RESPONSE | _FLAG_WRITE_ENCRYPTED
             | _FLAG_NOTIFY),
        ))
        dis = (uuid(0x180A), (
            (uuid(0x2A29), _FLAG_READ),
            (uuid(0x2A24), _FLAG_READ),
            (uuid(0x2A26), _FLAG_READ),
        ))
        rsc = (uuid(0x1814), (
            (uuid(0x2A53), _FLAG_NOTIFY),
            (uuid(0x2A54), _FLAG_READ),
            (uuid(0x2A5D), _FLAG_READ),
        ))
        services = [insole, dis, rsc]
        if with_battery:
            services.append((uuid(0x180F), ((uuid(0x2A19), _FLAG_READ | _FLAG_NOTIFY),)))
        handles = ble.gatts_register_services(services)
        self.data_h, self.status_h, self.info_h, self.control_h = handles[0]
        manuf_h, model_h, fw_h = handles[1]
        self.rsc_h, rsc_feature_h, location_h = handles[2]
        self.battery_h = handles[3][0] if with_battery else None
        ble.gatts_write(manuf_h, manufacturer.encode())
        ble.gatts_write(model_h, model.encode())
        ble.gatts_write(fw_h, firmware.encode())
        ble.gatts_write(rsc_feature_h, bytes((_RSC_FEATURE_WALK_RUN, 0)))
        ble.gatts_write(location_h, bytes((_SENSOR_LOCATION_IN_SHOE,)))
        self.advertise()

    def set_name(self, name):
        # Side changed: the new name shows from the next advertisement.
        self._name = name
        self._ble.config(gap_name=name)
        if self.conn is None:
            self.advertise()

    def advertise(self):
        adv = advertising_payload(self._name, SERVICE_UUID)
        resp = scan_response_payload(self._name, self._with_battery)
        if len(adv) > _ADV_MAX or len(resp) > _ADV_MAX:
            raise ValueError("advertising payload over 31 bytes")
        self._ble.gap_advertise(_ADV_INTERVAL_US, adv_data=adv, resp_data=resp)

    def _reset_security(self):
        self.encrypted = False
        self.trusted = False
        self._from_bond = False
        self._new_bond = False
        self._refused = False

    def _irq(self, event, data):
        if event == _IRQ_CENTRAL_CONNECT:
            self.conn = data[0]
            self.mtu = 23
            self._reset_security()
            self.events += 1
            try:
                self._ble.gattc_exchange_mtu(self.conn)  # ask for PREFERRED_MTU
            except OSError:
                pass  # the central may start the exchange itself
        elif event == _IRQ_CENTRAL_DISCONNECT:
            self.conn = None
            self.mtu = 23
            self._reset_security()
            self.events += 1
            self.commands = []
            self.advertise()
        elif event == _IRQ_ENCRYPTION_UPDATE:
            self.encrypted = bool(data[1])
            self._enc_ms = self.pairing.ticks_ms()
            self._judge()
            self.events += 1
        elif event == _IRQ_GET_SECRET:
            sec_type, index, key = data
            value = self.bonds.get(sec_type, index, None if key is None else bytes(key))
            if value is not None and key is not None and sec_type == _OUR_SEC \
                    and self.conn is not None:
                self._from_bond = True  # encrypting with a stored bond's key
            return value
        elif event == _IRQ_SET_SECRET:
            sec_type, key, value = data
            return self._set_secret(sec_type, bytes(key), None if value is None else bytes(value))
        elif event == _IRQ_GATTS_WRITE:
            if data[1] == self.control_h:
                if not self.trusted:
                    self.untrusted_writes += 1  # NimBLE let it through: encrypted, not bonded
                    return
                value = self._ble.gatts_read(self.control_h)
                if len(self.commands) < _COMMAND_QUEUE:
                    self.commands.append(value)
                else:
                    self.commands_dropped += 1
                    self.reply_busy(value)
        elif event == _IRQ_MTU_EXCHANGED:
            self.mtu = data[1]
            self.events += 1

    def _set_secret(self, sec_type, key, value):
        # NimBLE storing (or, value None, deleting) a bond. Outside the window nothing is
        # stored or deleted: a stranger spoofing a bonded address cannot erase that bond by
        # pairing again either.
        bonding = self._new_bond and key == self._bond_key  # the rest of this peer's keys
        if self._refused or (value is not None and self.conn is None) \
                or not (bonding or self.pairing.window_open()):
            self._refused = True
            self.refused_pairings += 1
            return False
        if not self.bonds.set(sec_type, key, value):
            self._refused = True
            return False
        if value is not None and self.conn is not None:
            self._new_bond = True
            self._bond_key = key
            if self.encrypted:
                self._judge()
                self.events += 1
        return True

    def _judge(self):
        was = self.trusted
        self.trusted = self.encrypted and not self._refused and (self._from_bond or self._new_bond)
        if self.trusted and not was and self._new_bond:
            self.new_bonds += 1
            self.pairing.close()  # one new bond per window

    def service(self, now_ms):
        # Main loop: disconnect an encrypted link that is not trusted (see the header).
        conn = self.conn
        if conn is None or not self.encrypted or self.trusted:
            return
        if self._refused or not self.pairing.window_open() \
                or self.pairing.ticks_diff(now_ms, self._enc_ms) >= ENC_GRACE_MS:
            self.dropped_links += 1
            self.encrypted = False
            try:
                self._ble.gap_disconnect(conn)
            except OSError:
                pass  # already gone: _IRQ_CENTRAL_DISCONNECT follows

    def data_ready(self):
        return self.conn is not None and self.trusted and self.mtu >= MIN_DATA_MTU

    def reply_busy(self, value):
        # Queue full: answer at once so that every command still gets exactly one REPLY.
        t = value[1] if len(value) > 1 else 0
        self.send_control(bytes((1, 0x04, t, 4)))

    def notify(self, handle, payload, open_=False):
        # One notification; False when the link is gone or its buffers are full (retry later),
        # or not trusted (open_: the standard services, sent on any link).
        conn = self.conn
        if conn is None or not (open_ or self.trusted):
            return False
        if len(payload) > self.mtu - 3:
            # e.g. the 21-byte STATUS while the MTU is still 23: the central reads it instead
            self.too_long += 1
            return False
        try:
            self._ble.gatts_notify(conn, handle, payload)
        except OSError:
            self.notify_failures += 1
            return False
        return True

    def send_control(self, reply):
        self._ble.gatts_write(self.control_h, reply)
        return self.notify(self.control_h, reply)

    def set_info(self, info):
        self._ble.gatts_write(self.info_h, info)

    def send_status(self, status):
        self._ble.gatts_write(self.status_h, status)
        self.notify(self.status_h, status)

    def send_battery(self, pct):
        if self.battery_h is not None:
            value = bytes((pct,))
            self._ble.gatts_write(self.battery_h, value)
            self.notify(self.battery_h, value, True)

    def send_rsc(self, cadence_spm, running):
        # RSC Measurement: flags u8, speed u16 (1/256 m/s, unknown: 0), cadence u8 (1/min).
        flags = _RSC_RUNNING if running else 0
        self.notify(self.rsc_h, bytes((flags, 0, 0, cadence_spm if cadence_spm < 255 else 255)),
                    True)
