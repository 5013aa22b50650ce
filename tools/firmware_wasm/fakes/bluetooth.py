# Fake of MicroPython's `bluetooth` module (NimBLE on the ESP32) for firmware tests. It behaves
# like the radio where the firmware could get it wrong: advertising and scan-response payloads
# over 31 bytes raise OSError(22) as NimBLE does; a notification longer than ATT_MTU - 3, or on
# a connection that does not exist, is refused; notifications fail with OSError(12) (ENOMEM,
# out of buffers) while the test stalls the link; advertising stops on connect; written
# characteristic values are truncated to their buffer (20 bytes unless set larger).
# Test-only methods start with "central_": they play the phone or watch.
FLAG_BROADCAST = 0x0001
FLAG_READ = 0x0002
FLAG_WRITE_NO_RESPONSE = 0x0004
FLAG_WRITE = 0x0008
FLAG_NOTIFY = 0x0010
FLAG_INDICATE = 0x0020

_IRQ_CENTRAL_CONNECT = 1
_IRQ_CENTRAL_DISCONNECT = 2
_IRQ_GATTS_WRITE = 3
_IRQ_MTU_EXCHANGED = 21

_HEX = "0123456789abcdef"


class UUID:
    def __init__(self, value):
        if isinstance(value, int):
            if not 0 <= value <= 0xFFFF:
                raise ValueError("invalid UUID")
            self._key = "%04x" % value
        elif isinstance(value, str):
            s = value.lower()
            if len(s) != 36 or s[8] != "-" or s[13] != "-" or s[18] != "-" or s[23] != "-":
                raise ValueError("invalid UUID")
            for ch in s.replace("-", ""):
                if ch not in _HEX:
                    raise ValueError("invalid UUID")
            self._key = s
        else:
            raise TypeError("UUID from int or str")

    def __eq__(self, other):
        return isinstance(other, UUID) and other._key == self._key

    def __hash__(self):
        return hash(self._key)

    def __repr__(self):
        return "UUID(%s)" % self._key

    def key(self):
        return self._key


class BLE:
    def __init__(self):
        self._active = False
        self._handler = None
        self.gap_name = "MPY ESP32"
        self.preferred_mtu = 23
        self.advertising = False
        self.adv_data = None
        self.resp_data = None
        self.adv_count = 0
        self.services = None  # [(uuid, [(uuid, flags, handle), ...]), ...]
        self._values = {}
        self._caps = {}
        self._flags = {}
        self.conn = None
        self.mtu = 23
        self.mtu_requests = 0
        self.notifications = []  # (conn, handle, bytes)
        self.stalled = False
        self.refused = 0

    def active(self, value=None):
        if value is None:
            return self._active
        self._active = bool(value)
        return self._active

    def config(self, *names, **kw):
        if names:
            if names[0] == "mac":
                return (0, b"\xa4\xcf\x12\x00\x3f\x9a")
            if names[0] == "gap_name":
                return self.gap_name
            if names[0] == "mtu":
                return self.preferred_mtu
            raise ValueError("unknown config param")
        for k, v in kw.items():
            if k == "gap_name":
                self.gap_name = v
            elif k == "mtu":
                if not 23 <= v <= 517:
                    raise ValueError("mtu 23-517")
                self.preferred_mtu = v
            elif k not in ("rxbuf", "addr_mode", "io", "mitm", "le_secure", "bond"):
                raise ValueError("unknown config param")

    def irq(self, handler):
        self._handler = handler

    def _need_active(self):
        if not self._active:
            raise OSError(19)  # ENODEV: radio not active

    def gap_advertise(self, interval_us, adv_data=None, *, resp_data=None, connectable=True):
        self._need_active()
        if interval_us is None:
            self.advertising = False
            return
        for payload in (adv_data, resp_data):
            if payload is not None and len(payload) > 31:
                raise OSError(22)
        if adv_data is not None:
            self.adv_data = bytes(adv_data)
        if resp_data is not None:
            self.resp_data = bytes(resp_data)
        self.advertising = True
        self.adv_count += 1

    def gatts_register_services(self, services):
        self._need_active()
        if self.conn is not None:
            raise OSError(16)  # EBUSY
        handle = 1
        out = []
        self.services = []
        for svc in services:
            svc_uuid, chars = svc[0], svc[1]
            if not isinstance(svc_uuid, UUID):
                raise TypeError("service UUID must be a bluetooth.UUID")
            handle += 1
            hs = []
            listed = []
            for ch in chars:
                cu, flags = ch[0], ch[1]
                if not isinstance(cu, UUID):
                    raise TypeError("characteristic UUID must be a bluetooth.UUID")
                handle += 1  # declaration
                vh = handle
                handle += 1
                self._values[vh] = b""
                self._caps[vh] = 20
                self._flags[vh] = flags
                if flags & (FLAG_NOTIFY | FLAG_INDICATE):
                    handle += 1  # CCCD
                hs.append(vh)
                listed.append((cu, flags, vh))
            out.append(tuple(hs))
            self.services.append((svc_uuid, listed))
        return tuple(out)

    def gatts_read(self, handle):
        if handle not in self._values:
            raise OSError(22)
        return self._values[handle]

    def gatts_write(self, handle, data, send_update=False):
        if handle not in self._values:
            raise OSError(22)
        data = bytes(data)
        # A local write grows the value buffer (MicroPython docs).
        if len(data) > self._caps[handle]:
            self._caps[handle] = len(data)
        self._values[handle] = data

    def gatts_set_buffer(self, handle, length, append=False):
        self._caps[handle] = length

    def gatts_notify(self, conn_handle, value_handle, data=None):
        if conn_handle != self.conn:
            raise OSError(128)  # ENOTCONN
        if value_handle not in self._flags or not self._flags[value_handle] & FLAG_NOTIFY:
            raise OSError(22)
        payload = self._values[value_handle] if data is None else bytes(data)
        if len(payload) > self.mtu - 3:
            raise ValueError("notification of %d bytes over ATT_MTU-3 = %d" % (len(payload), self.mtu - 3))
        if self.stalled:
            self.refused += 1
            raise OSError(12)  # ENOMEM: no buffers until the link drains
        self.notifications.append((conn_handle, value_handle, payload))

    def gattc_exchange_mtu(self, conn_handle):
        if conn_handle != self.conn:
            raise OSError(128)
        self.mtu_requests += 1

    # --- the central's side (tests only) -----------------------------------------------------

    def central_connect(self, conn=64):
        if not self.advertising:
            raise AssertionError("central connect while the device is not advertising")
        self.advertising = False
        self.conn = conn
        self.mtu = 23
        self._handler(_IRQ_CENTRAL_CONNECT, (conn, 0, b"\x01\x02\x03\x04\x05\x06"))

    def central_mtu(self, central_mtu):
        # The exchange settles on the smaller of the two preferred MTUs.
        self.mtu = min(central_mtu, self.preferred_mtu)
        self._handler(_IRQ_MTU_EXCHANGED, (self.conn, self.mtu))

    def central_write(self, handle, data):
        flags = self._flags.get(handle, 0)
        if not flags & (FLAG_WRITE | FLAG_WRITE_NO_RESPONSE):
            raise AssertionError("characteristic %d is not writable" % handle)
        self._values[handle] = bytes(data)[: self._caps[handle]]
        self._handler(_IRQ_GATTS_WRITE, (self.conn, handle))

    def central_read(self, handle):
        if not self._flags.get(handle, 0) & FLAG_READ:
            raise AssertionError("characteristic %d is not readable" % handle)
        return self._values[handle]

    def central_disconnect(self):
        conn = self.conn
        self.conn = None
        self.mtu = 23
        self._handler(_IRQ_CENTRAL_DISCONNECT, (conn, 0, b"\x01\x02\x03\x04\x05\x06"))

    def take_notifications(self, handle=None):
        got = [n for n in self.notifications if handle is None or n[1] == handle]
        self.notifications = [n for n in self.notifications if not (handle is None or n[1] == handle)]
        return got
