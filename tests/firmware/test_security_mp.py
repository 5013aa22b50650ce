"""BLE pairing, bonding and the pairing window under MicroPython, against a `bluetooth` fake that
enforces the encryption flags as NimBLE does."""

from fwtest import make_mp_tests

test_security = make_mp_tests("mp_security.py")
