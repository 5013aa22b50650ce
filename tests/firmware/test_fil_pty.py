"""Firmware in the loop, live: `tools/firmware_loop.py --pty` serves the real firmware on a
pseudo-terminal that the host's pyserial opens; commands written to the port reach the firmware
and its REPLYs come back."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import serial
from fwtest import ROOT

from insole import protocol

pytestmark = pytest.mark.live  # starts processes, threads or ptys: make test-repeat


def _frames_until(port, dec, until, timeout_s=5.0):
    got = []
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        got += dec.feed(port.read(4096))
        if until(got):
            break
    return got


def test_live_pty_streams_and_takes_commands():
    proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "firmware_loop.py"), "easy-run",
                             "--side", "left", "--duration-s", "20", "--pty"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().split()
        assert line[:1] == ["left"] and line[1].startswith("/dev/"), line
        with serial.Serial(line[1], 921600, timeout=0.1) as port:
            dec = protocol.StreamDecoder()
            got = _frames_until(port, dec, lambda g: sum(isinstance(p, protocol.Data) for p in g) >= 30)
            data = [p for p in got if isinstance(p, protocol.Data)]
            assert len(data) >= 30, f"{len(data)} DATA packets, errors {dict(dec.errors)}"
            seqs = [p.seq for p in data]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "no gaps while live"
            port.write(protocol.frame(protocol.Command(protocol.CMD_STOP)))
            got = _frames_until(port, dec, lambda g: any(isinstance(p, protocol.Reply) for p in g))
            replies = [p for p in got if isinstance(p, protocol.Reply)]
            assert replies == [protocol.Reply(protocol.CMD_STOP, protocol.REPLY_OK)], replies
            time.sleep(0.3)
            port.reset_input_buffer()
            dec = protocol.StreamDecoder()
            got = _frames_until(port, dec, lambda g: False, timeout_s=1.0)
            assert not [p for p in got if isinstance(p, protocol.Data)], "no DATA after STOP"
            port.write(protocol.frame(protocol.Command(protocol.CMD_SET_RATE, (1001,))))
            port.write(protocol.frame(protocol.Command(protocol.CMD_START)))
            got = _frames_until(port, dec, lambda g: any(isinstance(p, protocol.Data) for p in g))
            replies = [p for p in got if isinstance(p, protocol.Reply)]
            assert replies[:2] == [protocol.Reply(protocol.CMD_SET_RATE, protocol.REPLY_OUT_OF_RANGE),
                                   protocol.Reply(protocol.CMD_START, protocol.REPLY_OK)], replies
            assert any(isinstance(p, protocol.Data) for p in got), "DATA again after START"
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
