# Fake of MicroPython's `bluetooth` module (NimBLE on the ESP32) for firmware tests. It behaves
# like the radio where the firmware could get it wrong: advertising and scan-response payloads
# over 31 bytes raise OSError(22) as NimBLE does; a notification longer than ATT_MTU - 3, or on
# a connection that does not exist, is refused; notifications fail with OSError(12) (ENOMEM,
# out of buffers) while the test stalls the link; advertising stops on connect; written
# characteristic values are truncated to their buffer (20 bytes unless set larger).
# Test-only methods start with "central_": they play the phone or watch.
#
# Security, as MicroPython's NimBLE binding does it:
# - config(bond=, le_secure=, mitm=, io=) are recorded (and read back with config("bond") ...).
# - a central's write to a characteristic flagged _FLAG_WRITE_ENCRYPTED (0x1000), or read of one
#   flagged _FLAG_READ_ENCRYPTED (0x0200), on an unencrypted link fails with an ATT error (raised
#   to the test as AttError, no _IRQ_GATTS_WRITE): Insufficient Encryption (0x0F) when the
#   peripheral holds a bond for that central (NimBLE looks the peer up in its store, here with
#   _IRQ_GET_SECRET sec_type 2), Insufficient Authentication (0x05) otherwise.
# - notifications: NimBLE's ble_gattc_notify_custom, behind MicroPython's
#   gatts_notify(conn, handle, data), sends on any link whatever its security, subscribed or not
#   (MicroPython's docs: "sent regardless of the subscription status"), so the fake sends them
#   too, and records in `plain` each notification of the insole's encrypted-flagged service that
#   went out on an unencrypted link. Keeping DATA, STATUS and REPLY off such links is the
#   firmware's job, and the tests assert the central got none.
# - central_pair() runs "just works" LE Secure Connections pairing with bonding as NimBLE's
#   security manager does on the peripheral: when the peripheral already holds a bond for the
#   central (repeat pairing) the old one is deleted first (_IRQ_SET_SECRET with value None),
#   then the new keys are stored (_IRQ_SET_SECRET, sec_type 1 "our" and 2 "peer", key = the
#   central's 7-byte ble_addr_t, value = an opaque blob), then _IRQ_ENCRYPTION_UPDATE. A False
#   from _IRQ_SET_SECRET does not fail the pairing (NimBLE only logs the store failure): the
#   link is encrypted all the same, with no bond kept on the peripheral.
# - central_encrypt() is a bonded central reconnecting: the peripheral looks its key up
#   (_IRQ_GET_SECRET sec_type 1); no key, or not the central's, and encryption fails
#   (_IRQ_ENCRYPTION_UPDATE with encrypted 0; HCI "PIN or key missing" to the central).
# - gap_disconnect(conn) ends the link at once (_IRQ_CENTRAL_DISCONNECT), counted in `kicks`.
FLAG_BROADCAST = 0x0001
FLAG_READ = 0x0002
FLAG_WRITE_NO_RESPONSE = 0x0004
FLAG_WRITE = 0x0008
FLAG_NOTIFY = 0x0010
FLAG_INDICATE = 0x0020
_FLAG_READ_ENCRYPTED = 0x0200
_FLAG_READ_AUTHENTICATED = 0x0400
_FLAG_WRITE_ENCRYPTED = 0x1000
_FLAG_WRITE_AUTHENTICATED = 0x2000
ATT_INSUFFICIENT_AUTHENTICATION = 0x05
ATT_INSUFFICIENT_ENCRYPTION = 0x0F

_IRQ_CENTRAL_CONNECT = 1
_IRQ_CENTRAL_DISCONNECT = 2
_IRQ_GATTS_WRITE = 3
_IRQ_MTU_EXCHANGED = 21
_IRQ_ENCRYPTION_UPDATE = 28
_IRQ_GET_SECRET = 29
_IRQ_SET_SECRET = 30
_OUR_SEC = 1
_PEER_SEC = 2
DEFAULT_CENTRAL = b"\x01\x02\x03\x04\x05\x06"


class AttError(Exception):
    # The ATT error response a central gets (code: 0x05, 0x0F, ...).
    def __init__(self, code):
        super().__init__("ATT error 0x%02x" % code)
        self.code = code

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
        self.bond = False
        self.le_secure = False
        self.mitm = False
        self.io = 3
        self.encrypted = False
        self.peer = None  # the connected central's 7-byte ble_addr_t (type, address)
        self.central_keys = {}  # central's own bond store: peer key -> the key blob it holds
        self.kicks = 0  # links the peripheral ended with gap_disconnect
        self.plain = []  # (handle, payload): notifications of encrypted-flagged chars, unencrypted link
        self._pairings = 0

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
            if names[0] in ("bond", "le_secure", "mitm", "io"):
                return getattr(self, names[0])
            raise ValueError("unknown config param")
        for k, v in kw.items():
            if k == "gap_name":
                self.gap_name = v
            elif k == "mtu":
                if not 23 <= v <= 517:
                    raise ValueError("mtu 23-517")
                self.preferred_mtu = v
            elif k in ("bond", "le_secure", "mitm"):
                setattr(self, k, bool(v))
            elif k == "io":
                if not 0 <= v <= 4:
                    raise ValueError("io capability 0-4")
                self.io = v
            elif k not in ("rxbuf", "addr_mode"):
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
        if not self.encrypted and self._flags[value_handle] & self._secure_flags():
            self.plain.append((value_handle, payload))
        self.notifications.append((conn_handle, value_handle, payload))

    def _secure_flags(self):
        return _FLAG_READ_ENCRYPTED | _FLAG_WRITE_ENCRYPTED | _FLAG_READ_AUTHENTICATED \
            | _FLAG_WRITE_AUTHENTICATED

    def gap_disconnect(self, conn_handle):
        if conn_handle != self.conn:
            return False
        self.kicks += 1
        self.central_disconnect()
        return True

    def gattc_exchange_mtu(self, conn_handle):
        if conn_handle != self.conn:
            raise OSError(128)
        self.mtu_requests += 1

    # --- the central's side (tests only) -----------------------------------------------------

    def central_connect(self, conn=64, addr=DEFAULT_CENTRAL, addr_type=0):
        if not self.advertising:
            raise AssertionError("central connect while the device is not advertising")
        self.advertising = False
        self.conn = conn
        self.mtu = 23
        self.encrypted = False
        self.peer = bytes((addr_type,)) + bytes(addr)
        self._handler(_IRQ_CENTRAL_CONNECT, (conn, addr_type, bytes(addr)))

    def central_mtu(self, central_mtu):
        # The exchange settles on the smaller of the two preferred MTUs.
        self.mtu = min(central_mtu, self.preferred_mtu)
        self._handler(_IRQ_MTU_EXCHANGED, (self.conn, self.mtu))

    def _att_security(self, need):
        # NimBLE's permission check for a characteristic that needs an encrypted link.
        if need and not self.encrypted:
            bonded = self._handler(_IRQ_GET_SECRET, (_PEER_SEC, 0, memoryview(self.peer)))
            raise AttError(ATT_INSUFFICIENT_ENCRYPTION if bonded is not None
                           else ATT_INSUFFICIENT_AUTHENTICATION)

    def central_write(self, handle, data):
        flags = self._flags.get(handle, 0)
        if not flags & (FLAG_WRITE | FLAG_WRITE_NO_RESPONSE):
            raise AssertionError("characteristic %d is not writable" % handle)
        self._att_security(flags & (_FLAG_WRITE_ENCRYPTED | _FLAG_WRITE_AUTHENTICATED))
        self._values[handle] = bytes(data)[: self._caps[handle]]
        self._handler(_IRQ_GATTS_WRITE, (self.conn, handle))

    def central_read(self, handle):
        flags = self._flags.get(handle, 0)
        if not flags & FLAG_READ:
            raise AssertionError("characteristic %d is not readable" % handle)
        self._att_security(flags & (_FLAG_READ_ENCRYPTED | _FLAG_READ_AUTHENTICATED))
        return self._values[handle]

    def central_pair(self, bond=True):
        # "Just works" LE Secure Connections pairing started by the connected central (see the
        # header). Returns True when the peripheral stored every key it was given.
        if self.conn is None:
            raise AssertionError("central_pair without a connection")
        if not self.le_secure or self.mitm or self.io != 3:
            raise AssertionError("the firmware must configure le_secure, no MITM, no I/O")
        peer = self.peer
        stored = True
        if bond and self.bond:
            if self._handler(_IRQ_GET_SECRET, (_PEER_SEC, 0, memoryview(peer))) is not None:
                for t in (_OUR_SEC, _PEER_SEC):  # repeat pairing: NimBLE drops the old bond
                    self._handler(_IRQ_SET_SECRET, (t, memoryview(peer), None))
            self._pairings += 1
            # An opaque key blob, unique per pairing, about the size of ble_store_value_sec.
            ltk = bytes((self._pairings & 0xFF, (self._pairings >> 8) & 0xFF)) + peer + bytes(71)
            self.central_keys[peer] = ltk
            for t in (_OUR_SEC, _PEER_SEC):
                if not self._handler(_IRQ_SET_SECRET, (t, memoryview(peer), memoryview(ltk))):
                    stored = False
        else:
            stored = False
        self.encrypted = True
        self._handler(_IRQ_ENCRYPTION_UPDATE, (self.conn, 1, 0, 1 if bond and self.bond else 0, 16))
        return stored

    def central_encrypt(self):
        # A bonded central reconnecting: encrypt with the key it holds. False when the
        # peripheral has no such bond (or another key for this address).
        if self.conn is None:
            raise AssertionError("central_encrypt without a connection")
        mine = self.central_keys.get(self.peer)
        theirs = self._handler(_IRQ_GET_SECRET, (_OUR_SEC, 0, memoryview(self.peer)))
        if mine is None or theirs is None or bytes(theirs) != mine:
            self._handler(_IRQ_ENCRYPTION_UPDATE, (self.conn, 0, 0, 0, 0))
            return False
        self.encrypted = True
        self._handler(_IRQ_ENCRYPTION_UPDATE, (self.conn, 1, 0, 1, 16))
        return True

    # The peer's security manager as another stack runs it (the bumble bridge,
    # tests/support/firmware_peripheral.py): its key store calls and the link's encryption,
    # forwarded to the firmware as NimBLE would make them.

    def smp_store(self, sec_type, key, value):
        # NimBLE's store write (value None: delete) -> _IRQ_SET_SECRET; True when kept.
        v = None if value is None else memoryview(bytes(value))
        return bool(self._handler(_IRQ_SET_SECRET, (sec_type, memoryview(bytes(key)), v)))

    def smp_lookup(self, sec_type, key):
        # NimBLE's store read -> _IRQ_GET_SECRET; the value (bytes) or None.
        v = self._handler(_IRQ_GET_SECRET, (sec_type, 0, memoryview(bytes(key))))
        return None if v is None else bytes(v)

    def smp_encryption(self, encrypted, bonded):
        if self.conn is None:
            return
        self.encrypted = bool(encrypted)
        self._handler(_IRQ_ENCRYPTION_UPDATE, (self.conn, 1 if encrypted else 0, 0,
                                               1 if bonded else 0, 16 if encrypted else 0))

    def central_disconnect(self):
        conn = self.conn
        self.conn = None
        self.mtu = 23
        self.encrypted = False
        peer = self.peer or b"\x00" + DEFAULT_CENTRAL
        self._handler(_IRQ_CENTRAL_DISCONNECT, (conn, peer[0], peer[1:]))

    def take_notifications(self, handle=None):
        got = [n for n in self.notifications if handle is None or n[1] == handle]
        self.notifications = [n for n in self.notifications if not (handle is None or n[1] == handle)]
        return got
