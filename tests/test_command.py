"""``insole command``: each command reaches the device over a real pty and its REPLY comes back."""

from __future__ import annotations

import pytest
from helpers import run_cli, start_sim, stop

from insole import protocol as P
from insole.io.control import CommandError, parse_command

pytestmark = pytest.mark.live  # starts processes, threads or ptys: make test-repeat


@pytest.fixture(scope="module")
def port(tmp_path_factory):
    sim, ports = start_sim(tmp_path_factory.mktemp("cmd"), seconds=60, side="left")
    try:
        yield ports["left"]
    finally:
        stop(sim)


@pytest.mark.parametrize("words", [["stop"], ["start"], ["identify"], ["rate", "500"],
                                   ["side", "left"], ["forget-bonds"]])
def test_each_command_gets_its_reply(port, words):
    r = run_cli("command", f"serial://{port}", *words, timeout=30)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().splitlines()[0].endswith(" ok")


def test_a_refusal_is_a_one_line_error(port):
    # the simulator's readings are made at one rate: it answers a rate change with BUSY, as the
    # firmware does while it cannot change (the firmware's own rate change: tests/firmware)
    r = run_cli("command", f"serial://{port}", "rate", "200", timeout=30)
    assert r.returncode == 2
    err = r.stderr.decode().strip()
    assert err.endswith("the insole refused SET_RATE: the device is busy; try again"), err
    assert "\n" not in err


def test_info_prints_the_device(port):
    r = run_cli("command", f"serial://{port}", "info", timeout=30)
    assert r.returncode == 0, r.stderr.decode()
    out = r.stdout.decode()
    assert "GET_INFO ok" in out and "left insole, device" in out and "500 Hz" in out


def test_a_port_with_no_device_is_one_line(tmp_path):
    import os
    import tty

    master, slave = os.openpty()  # a port nobody answers on
    tty.setraw(slave)
    try:
        r = run_cli("command", f"serial://{os.ttyname(slave)}", "stop", "--timeout-s", "0.5")
    finally:
        os.close(master)
        os.close(slave)
    assert r.returncode == 2
    err = r.stderr.decode().strip()
    assert "no reply to STOP" in err and "\n" not in err


@pytest.mark.parametrize("words, message", [
    ([], "say which command"), (["jump"], "unknown command"), (["rate"], "rate takes one"),
    (["rate", "fast"], "not a whole number"), (["rate", "5000"], "outside 25-1000"),
    (["side", "up"], "left or right"), (["stop", "now"], "takes no arguments")])
def test_bad_words_are_one_line_errors(words, message):
    with pytest.raises(CommandError, match=message):
        parse_command(words)


def test_parse_command_encodes_arguments():
    assert parse_command(["rate", "200"]) == P.Command(P.CMD_SET_RATE, (200,))
    assert parse_command(["side", "right"]) == P.Command(P.CMD_SET_SIDE, (1,))


def test_a_port_nobody_drains_times_out_on_write_instead_of_hanging():
    import os
    import tty

    from insole.errors import SourceError
    from insole.io.sources import WRITE_TIMEOUT_S, open_source

    master, slave = os.openpty()  # nobody reads the master: the pty's buffer fills up
    tty.setraw(slave)
    src = open_source(f"serial://{os.ttyname(slave)}").open()
    try:
        with pytest.raises(SourceError, match=f"write timed out after {WRITE_TIMEOUT_S:g} s"):
            for _ in range(64):
                src.write(bytes(4096))
    finally:
        src.close()
        os.close(master)
        os.close(slave)
