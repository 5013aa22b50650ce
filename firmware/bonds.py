# BLE bonds and the pairing window (docs/security.md). MicroPython's NimBLE binding keeps no
# keys itself: it asks the application through _IRQ_GET_SECRET / _IRQ_SET_SECRET, so this
# module is the bond database. Keys are NimBLE's: sec_type 1 (our keys for a peer) and 2 (the
# peer's keys), each under the peer's 7-byte ble_addr_t (type, 6 address bytes); values are
# NimBLE's opaque ble_store_value_sec blobs.
#
# Bonds: at most LIMIT peers, oldest first; a new peer beyond that replaces the oldest. Kept in
# one short text file, written to a temporary name then renamed (as settings.py does), so a power
# cut mid-write leaves the old bonds, never a half-written file. The file is written from the
# main loop (save() when dirty), never from the radio's IRQ handler.
#
# Pairing window: new bonds only while it is open: for WINDOW_MS after the BOOT button was held
# HOLD_MS, or while there is no bond at all. It closes WINDOW_MS after opening, or as soon as
# one new bond is stored (close()).
from binascii import hexlify, unhexlify

import os

from micropython import const

LIMIT = const(4)
HOLD_MS = const(3000)
WINDOW_MS = const(60000)
OUR_SEC = const(1)
PEER_SEC = const(2)
KEY_BYTES = const(7)  # ble_addr_t: type u8 + 6 address bytes
VALUE_MAX = const(512)  # NimBLE's ble_store_value_sec is ~80 bytes; room for other stacks' blobs


class Bonds:
    def __init__(self, path="/bonds.txt", limit=LIMIT):
        self._path = path
        self.limit = limit
        self._peers = []  # [key, our_value, peer_value], oldest first
        self.dirty = False
        self.evicted = 0
        self.bad_lines = 0  # lines of the file that could not be read back (ignored)
        self.load()

    def count(self):
        return len(self._peers)

    def _find(self, key):
        for p in self._peers:
            if p[0] == key:
                return p
        return None

    def has(self, key):
        return self._find(key) is not None

    def keys(self):
        # The bonded peers' 7-byte keys (address type, address little-endian), oldest first.
        return [p[0] for p in self._peers]

    def addresses(self):
        # The bonded peers' addresses as "aa:bb:cc:dd:ee:ff" (most significant byte first).
        out = []
        for a in self.keys():
            out.append(":".join("%02x" % a[i] for i in range(KEY_BYTES - 1, 0, -1)))
        return out

    def get(self, sec_type, index, key):
        # NimBLE's read: the value for (sec_type, key), or with key None the index'th stored
        # value of that sec_type. None when there is none.
        if sec_type != OUR_SEC and sec_type != PEER_SEC:
            return None
        if key is None:
            n = 0
            for p in self._peers:
                v = p[sec_type]
                if v is not None:
                    if n == index:
                        return v
                    n += 1
            return None
        p = self._find(key)
        return None if p is None else p[sec_type]

    def set(self, sec_type, key, value):
        # NimBLE's write (value bytes) or delete (value None). key and value are copies (the
        # IRQ's memoryviews die with the IRQ). Returns False for a value we cannot keep.
        if (sec_type != OUR_SEC and sec_type != PEER_SEC) or len(key) != KEY_BYTES:
            return False
        p = self._find(key)
        if value is None:
            if p is not None:
                p[sec_type] = None
                if p[OUR_SEC] is None and p[PEER_SEC] is None:
                    self._peers.remove(p)
                self.dirty = True
            return True
        if len(value) > VALUE_MAX:
            return False
        if p is None:
            if len(self._peers) >= self.limit:
                self._peers.pop(0)
                self.evicted += 1
            p = [key, None, None]
            self._peers.append(p)
        p[sec_type] = value
        self.dirty = True
        return True

    def remove(self, key):
        p = self._find(key)
        if p is not None:
            self._peers.remove(p)
            self.dirty = True

    def clear(self):
        self._peers = []
        self.dirty = True
        self.save()

    def load(self):
        self._peers = []
        try:
            with open(self._path) as f:
                for line in f:
                    self._load_line(line)
        except OSError:
            pass  # no file: no bonds (first boot, or after FORGET_BONDS)
        while len(self._peers) > self.limit:
            self._peers.pop(0)

    def _load_line(self, line):
        parts = line.split()
        if not parts:
            return
        try:
            sec_type = int(parts[0])
            key = unhexlify(parts[1])
            value = unhexlify(parts[2])
        except (ValueError, IndexError):
            self.bad_lines += 1
            return
        if not self.set(sec_type, key, value):
            self.bad_lines += 1

    def save(self):
        if not self.dirty:
            return
        tmp = self._path + ".new"
        with open(tmp, "w") as f:
            for p in self._peers:
                for t in (OUR_SEC, PEER_SEC):
                    if p[t] is not None:
                        f.write("%d %s %s\n" % (t, hexlify(p[0]).decode(), hexlify(p[t]).decode()))
        os.rename(tmp, self._path)
        self.dirty = False


class Pairing:
    # The pairing window and the BOOT button (any object with value(); pressed reads 0 when
    # active_low). poll(now_ms) runs in the main loop; it allocates nothing.
    def __init__(self, bonds, ticks_ms, ticks_diff, button=None, active_low=True,
                 hold_ms=HOLD_MS, window_ms=WINDOW_MS):
        self.bonds = bonds
        self.ticks_ms = ticks_ms
        self.ticks_diff = ticks_diff
        self._button = button
        self._pressed_level = 0 if active_low else 1
        self.hold_ms = hold_ms
        self.window_ms = window_ms
        self._open = False
        self._opened_ms = 0
        self._pressing = False
        self._press_ms = 0
        self._held = False
        self.openings = 0

    def window_open(self):
        return self._open or self.bonds.count() == 0

    def open(self):
        self._open = True
        self._opened_ms = self.ticks_ms()
        self.openings += 1

    def close(self):
        # One new bond stored: no more until the button is held again.
        self._open = False

    def forget(self):
        # FORGET_BONDS: every bond erased; with none left the window is open (until one is made).
        self.bonds.clear()
        self.open()

    def poll(self, now_ms):
        b = self._button
        if b is not None:
            if b.value() == self._pressed_level:
                if not self._pressing:
                    self._pressing = True
                    self._held = False
                    self._press_ms = now_ms
                elif not self._held and self.ticks_diff(now_ms, self._press_ms) >= self.hold_ms:
                    self._held = True  # one opening per press, however long it is held
                    self.open()
            else:
                self._pressing = False
        if self._open and self.ticks_diff(now_ms, self._opened_ms) >= self.window_ms:
            self._open = False
        if self.bonds.dirty:
            self.bonds.save()
