"""Build gates: mpy-cross accepts every firmware file for the ESP32, pyright passes with the
MicroPython ESP32 stubs, and the committed pins.py is what hardware/pinmap.json gives."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
FIRMWARE = ROOT / "firmware"
BIN = Path(sys.executable).parent
STUBS = ROOT / ".stubs"
import firmware_pins  # noqa: E402


@pytest.mark.parametrize("src", sorted(FIRMWARE.glob("*.py")), ids=lambda p: p.name)
def test_mpy_cross_accepts(src, tmp_path):
    out = tmp_path / (src.stem + ".mpy")
    r = subprocess.run([str(BIN / "mpy-cross"), "-march=xtensawin", "-o", str(out), str(src)],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    assert out.stat().st_size > 0


def test_mpy_cross_rejects_what_the_device_cannot_run(tmp_path):
    # The gate can fail: a construct CPython accepts and MicroPython does not.
    bad = tmp_path / "bad.py"
    bad.write_text("def f(a, /):\n    return a\n")
    r = subprocess.run([str(BIN / "mpy-cross"), "-march=xtensawin", str(bad)], capture_output=True,
                       timeout=60)
    assert r.returncode != 0


def _pyright(project: Path):
    if not (STUBS / "machine.pyi").is_file():
        pytest.fail(f"{STUBS} has no micropython-esp32-stubs: run `make setup`")
    return subprocess.run([str(BIN / "pyright"), "-p", str(project)], capture_output=True,
                          timeout=300, cwd=ROOT)


def test_typecheck_firmware_against_esp32_stubs():
    r = _pyright(FIRMWARE / "pyrightconfig.json")
    assert r.returncode == 0, r.stdout.decode()[-4000:]
    assert "0 errors" in r.stdout.decode()


def test_typecheck_catches_cpython_only_calls(tmp_path):
    (tmp_path / "bad.py").write_text(
        "import time\nimport machine\n"
        "t = time.perf_counter()\n"  # CPython only: not on the ESP32
        "adc = machine.ADC(machine.Pin(36))\nadc.read_uv(3)\n")
    cfg = json.loads((FIRMWARE / "pyrightconfig.json").read_text())
    cfg["typeshedPath"] = cfg["stubPath"] = str(STUBS)
    cfg["include"] = ["."]
    (tmp_path / "pyrightconfig.json").write_text(json.dumps(cfg))
    r = _pyright(tmp_path / "pyrightconfig.json")
    out = r.stdout.decode()
    assert r.returncode != 0
    assert "perf_counter" in out and "bad.py:5" in out and "2 errors" in out, out


def test_pins_py_matches_pinmap():
    text = firmware_pins.render(json.loads(firmware_pins.PINMAP.read_text()))
    assert (FIRMWARE / "pins.py").read_text() == text, "run `make firmware-pins`"


def test_pins_generator_refuses_adc2_and_unknown_zones():
    pm = {"default_board": "b", "divider": {"supply_mv": 3300, "r_fixed_ohm": 1000},
          "boards": {"b": {"sensors": {"heel": 36, "arch": 25}, "battery_adc_pin": None,
                           "led_pin": 2}}}
    with pytest.raises(SystemExit, match="ADC1"):
        firmware_pins.render(pm)
    pm["boards"]["b"]["sensors"] = {"heel": 36, "toe": 39}
    with pytest.raises(SystemExit, match="unknown zone"):
        firmware_pins.render(pm)
    pm["boards"]["b"]["sensors"] = {"met5": 39, "heel": 36}
    text = firmware_pins.render(pm)
    assert "SENSOR_GPIOS = (39, 36)" in text and "ZONE_IDS = (4, 0)" in text
    assert "BATTERY_ADC_GPIO = None" in text
