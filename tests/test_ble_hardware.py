"""The hardware tier: a real Bluetooth adapter and two flashed, switched-on insoles.

Skipped unless ``INSOLE_HARDWARE_BLE=1``::

    INSOLE_HARDWARE_BLE=1 .venv/bin/python -m pytest tests/test_ble_hardware.py -m hardware

The production code uses bleak's default backend here (INSOLE_BLEAK_BACKEND must be unset).
"""

from __future__ import annotations

import json
import os

import pytest

from insole import protocol as P
from insole.analysis.stream import streams_from_sources
from insole.io import ble
from insole.io.session import load_inputs
from insole.io.sources import open_source

pytestmark = [
    pytest.mark.hardware,
    pytest.mark.skipif(os.environ.get("INSOLE_HARDWARE_BLE") != "1",
                       reason="needs a Bluetooth adapter and two flashed insoles: run with "
                              "INSOLE_HARDWARE_BLE=1 (see README, hardware tier)"),
]


@pytest.fixture(autouse=True)
def _default_backend(monkeypatch):
    monkeypatch.delenv(ble.BACKEND_ENV, raising=False)


def test_scan_finds_both_real_insoles():
    found = ble.scan_insoles(timeout_s=10.0)
    sides = sorted(f.side for f in found if f.side)
    assert sides == ["left", "right"], [f.to_json() for f in found]
    assert all(f.firmware for f in found)


def test_pair_both_real_insoles():
    # new boards accept the first computer; boards bonded elsewhere need BOOT held 3 s first
    # (or forget-bonds over USB: insole command serial://PORT forget-bonds)
    for url in ble.expand_urls(["ble://"]):
        ble.pair_insole(url, timeout_s=10.0)


def test_record_both_feet_for_ten_seconds(tmp_path):
    from insole.io.recorder import Recorder

    out = tmp_path / "session"
    res = Recorder(ble.expand_urls(["ble://"]), out, duration_s=10.0).run()
    assert [w.fault for w in res["workers"]] == [None, None]
    feet = streams_from_sources(load_inputs([out]))
    assert set(feet) == {"left", "right"}
    for fs in feet.values():
        assert fs.quality["decode_errors"] == 0
        assert fs.quality["sample_sets"] > 0.9 * 10 * fs.rate_hz
    meta = json.loads((out / "session.json").read_text())
    assert all(s["link"]["mtu"] >= ble.MIN_DATA_MTU for s in meta["sources"])


def test_stop_and_start_a_real_insole():
    src = open_source("ble://Insole-L").open()
    try:
        assert src.command(P.Command(P.CMD_STOP)).code == P.REPLY_OK
        assert src.command(P.Command(P.CMD_START)).code == P.REPLY_OK
        assert src.command(P.Command(P.CMD_IDENTIFY)).code == P.REPLY_OK
    finally:
        src.close()
