"""`insole record ble://` as a person runs it (a separate process reaching the virtual radio over
127.0.0.1), Ctrl-C, and what a machine without Bluetooth answers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from helpers import ROOT

from insole.cli import main as cli_main
from insole.io import ble
from tests.support import BACKEND
from tests.support.bumble_backend import HCI_ENV, KEYSTORE_ENV
from tests.support.harness import start_feet, virtual_ble

pytestmark = pytest.mark.live  # starts processes, threads or ptys: make test-repeat


def test_record_ble_both_feet_then_ctrl_c_closes_the_session(tmp_path):
    out = tmp_path / "session"
    with virtual_ble() as rt:
        start_feet(rt, duration_s=60.0)
        env = dict(os.environ, PYTHONPATH=str(ROOT), **{
            ble.BACKEND_ENV: BACKEND, HCI_ENV: rt.radio.hci_spec,
            KEYSTORE_ENV: str(tmp_path / "host-keys.json")})  # this "laptop's" bonds
        # pair first, in its own process, as a person does; the recording uses the stored bond
        paired = subprocess.run([sys.executable, "-m", "insole.cli", "pair", "ble://"], env=env,
                                cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert paired.returncode == 0 and paired.stdout.count(": paired") == 2, paired
        proc = subprocess.Popen([sys.executable, "-m", "insole.cli", "record", "ble://",
                                 "--out", str(out)], env=env, cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # the live progress line, once for both feet, then Ctrl-C
            first = proc.stderr.readline()
            assert first.startswith("[") and "left:" in first and "right:" in first, first
            assert "reconnects" in first
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, stderr
    assert "stopped; session closed cleanly" in stderr
    meta = json.loads((out / "session.json").read_text())
    assert meta["closed"] is True
    assert sorted(s["side"] for s in meta["sources"]) == ["left", "right"]
    assert all(s["framing"] == "packets" and s["bytes"] > 0 and s["link"]["reconnects"] == 0
               for s in meta["sources"])
    # the BLE recording round-trips through the analysis like a serial one
    assert cli_main(["analyse", str(out), "--json", str(tmp_path / "a.json")]) == 0
    doc = json.loads((tmp_path / "a.json").read_text())
    for side in ("left", "right"):
        q = doc["feet"][side]["quality"]
        assert q["decode_errors"] == 0 and q["link_reconnects"] == 0


@pytest.mark.skipif(os.path.exists("/run/dbus/system_bus_socket")
                    or bool(os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")) or sys.platform != "linux",
                    reason="this machine may have Bluetooth (a D-Bus system bus is there)")
def test_no_bluetooth_service_is_one_line_and_exit_2(monkeypatch, capsys):
    monkeypatch.delenv(ble.BACKEND_ENV, raising=False)
    for argv in (["scan"], ["record", "ble://", "--out", "unused"], ["info", "ble://Insole-L"]):
        assert cli_main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "bluetoothd" in err[0], err
