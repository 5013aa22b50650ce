# BLE peripheral: the insole service with its four characteristics (PROTOCOL.md "BLE"), plus
# Device Information, Battery (when the board measures its battery) and Running Speed and
# Cadence so a sports watch can use the insole as a footpod. The radio (a bluetooth.BLE) and the
# UUID class are passed in. IRQ contract: the handler only records state and queues command
# bytes; the main loop acts on them.
from micropython import const

from wire import uuid_le

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_GATTS_WRITE = const(3)
_IRQ_MTU_EXCHANGED = const(21)

_FLAG_READ = const(0x0002)
_FLAG_WRITE_NO_RESPONSE = const(0x0004)
_FLAG_WRITE = const(0x0008)
_FLAG_NOTIFY = const(0x0010)

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
    def __init__(self, ble, uuid, name, manufacturer, model, firmware, with_battery):
        self._ble = ble
        self._name = name
        self._with_battery = with_battery
        self.conn = None
        self.mtu = 23
        self.commands = []  # bytes written to CONTROL, oldest first, bounded
        self.commands_dropped = 0
        self.notify_failures = 0
        self.too_long = 0  # notifications not sent because they exceed MTU - 3
        self.events = 0  # connects + disconnects + MTU changes, for the main loop to notice
        ble.active(True)
        ble.config(gap_name=name, mtu=PREFERRED_MTU)
        ble.irq(self._irq)
        insole = (uuid(SERVICE_UUID), (
            (uuid(_DATA_UUID), _FLAG_NOTIFY),
            (uuid(_STATUS_UUID), _FLAG_READ | _FLAG_NOTIFY),
            (uuid(_INFO_UUID), _FLAG_READ),
            (uuid(_CONTROL_UUID), _FLAG_WRITE | _FLAG_WRITE_NO_RESPONSE | _FLAG_NOTIFY),
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

    def _irq(self, event, data):
        if event == _IRQ_CENTRAL_CONNECT:
            self.conn = data[0]
            self.mtu = 23
            self.events += 1
            try:
                self._ble.gattc_exchange_mtu(self.conn)  # ask for PREFERRED_MTU
            except OSError:
                pass  # the central may start the exchange itself
        elif event == _IRQ_CENTRAL_DISCONNECT:
            self.conn = None
            self.mtu = 23
            self.events += 1
            self.commands = []
            self.advertise()
        elif event == _IRQ_GATTS_WRITE:
            if data[1] == self.control_h:
                value = self._ble.gatts_read(self.control_h)
                if len(self.commands) < _COMMAND_QUEUE:
                    self.commands.append(value)
                else:
                    self.commands_dropped += 1
                    self.reply_busy(value)
        elif event == _IRQ_MTU_EXCHANGED:
            self.mtu = data[1]
            self.events += 1

    def data_ready(self):
        return self.conn is not None and self.mtu >= MIN_DATA_MTU

    def reply_busy(self, value):
        # Queue full: answer at once so that every command still gets exactly one REPLY.
        t = value[1] if len(value) > 1 else 0
        self.send_control(bytes((1, 0x04, t, 4)))

    def notify(self, handle, payload):
        # One notification; False when the link is gone or its buffers are full (retry later).
        conn = self.conn
        if conn is None:
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
            self.notify(self.battery_h, value)

    def send_rsc(self, cadence_spm, running):
        # RSC Measurement: flags u8, speed u16 (1/256 m/s, unknown: 0), cadence u8 (1/min).
        flags = _RSC_RUNNING if running else 0
        self.notify(self.rsc_h, bytes((flags, 0, 0, cadence_spm if cadence_spm < 255 else 255)))
