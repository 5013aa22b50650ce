"""Every command and every error code, through the real firmware's serial port, under MicroPython."""

from fwtest import make_mp_tests

test_commands = make_mp_tests("mp_commands.py")
