"""The firmware's encoder and framing reproduce every golden vector under MicroPython."""

from fwtest import make_mp_tests

test_wire = make_mp_tests("mp_wire.py")
