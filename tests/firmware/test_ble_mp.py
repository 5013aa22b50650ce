"""BLE under MicroPython against a `bluetooth` fake that enforces the radio's limits."""

from fwtest import make_mp_tests

test_ble = make_mp_tests("mp_ble.py")
