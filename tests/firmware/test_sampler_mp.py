"""Sampling under MicroPython: values, timestamps, batch sizes per MTU, overruns, no allocation."""

from fwtest import make_mp_tests

test_sampler = make_mp_tests("mp_sampler.py")
