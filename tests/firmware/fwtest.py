"""Helpers for the firmware tests under the real MicroPython (the pinned WebAssembly port, run by Node).

Each ``mp/mp_*.py`` file runs in one node process per firmware variant: the source files in
``firmware/``, the ``.mpy`` files ``make firmware`` deploys (compiled into a temporary folder
here with the same mpy-cross command), and the sources with ``pins.py`` generated for each other
board of ``hardware/pinmap.json``. Every ``test_*`` function in it becomes one pytest test.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import firmware_loop
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SHARED_VECTORS = "protocol/vectors.json"
MPY_CROSS = Path(sys.executable).with_name("mpy-cross")


def mp_test_names(script: Path) -> list[str]:
    return re.findall(r"^def (test_\w+)\(", script.read_text(), flags=re.M)


def compile_firmware(out_dir: Path) -> Path:
    """Compile every firmware file as `make firmware` does; returns the folder of .mpy files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for src in sorted((ROOT / "firmware").glob("*.py")):
        dest = out_dir / (src.stem + ".mpy")
        subprocess.run([str(MPY_CROSS), "-march=xtensawin", "-o", str(dest), str(src)],
                       check=True, capture_output=True, timeout=60)
    return out_dir


def other_boards() -> list[str]:
    """Boards of hardware/pinmap.json other than the default (pins.py is generated for that)."""
    pm = json.loads((ROOT / "hardware" / "pinmap.json").read_text())
    return sorted(b for b in pm["boards"] if b != pm["default_board"])


def firmware_for_board(board: str, out_dir: Path) -> Path:
    """The firmware sources with pins.py generated for another board of the pin map."""
    import firmware_pins

    out_dir.mkdir(parents=True, exist_ok=True)
    for src in (ROOT / "firmware").glob("*.py"):
        shutil.copy(src, out_dir / src.name)
    pm = json.loads(firmware_pins.PINMAP.read_text())
    (out_dir / "pins.py").write_text(firmware_pins.render(pm, board))
    return out_dir


VARIANTS = ["py", "mpy", *(f"board:{b}" for b in other_boards())]


def make_firmware_dirs(tmp_path_factory) -> dict[str, Path]:
    dirs = {"py": ROOT / "firmware", "mpy": compile_firmware(tmp_path_factory.mktemp("fw-mpy"))}
    for b in other_boards():
        dirs[f"board:{b}"] = firmware_for_board(b, tmp_path_factory.mktemp("fw-board"))
    return dirs


_RESULTS: dict[tuple[str, str], dict[str, str]] = {}


def mp_results(script: Path, variant: str, firmware_dirs: dict[str, Path], shared: Path,
               timeout_s: float = 120) -> dict[str, str]:
    """Run one MicroPython test file once per variant; map test name -> "" (pass) or error."""
    key = (str(script), variant)
    if key not in _RESULTS:
        proc = firmware_loop.run_micropython(
            script, firmware_dirs[variant], {"/vectors.json": shared / SHARED_VECTORS},
            timeout_s=timeout_s)
        out = proc.stdout.decode(errors="replace")
        res: dict[str, str] = {}
        for line in out.splitlines():
            if line.startswith("PASS "):
                res[line[5:].strip()] = ""
            elif line.startswith("FAIL "):
                name, _, msg = line[5:].partition(":")
                res[name.strip()] = msg.strip() + "\n" + out[-3000:]
        if proc.returncode != 0 or "DONE" not in out:
            res["__crash__"] = f"exit {proc.returncode}\n{out[-3000:]}\n{proc.stderr.decode()[-3000:]}"
        _RESULTS[key] = res
    return _RESULTS[key]


def check_mp(script: Path, name: str, variant: str, firmware_dirs, shared) -> None:
    res = mp_results(script, variant, firmware_dirs, shared)
    if name not in res:
        pytest.fail(f"{name} did not run under MicroPython:\n{res.get('__crash__', '')}")
    if res[name]:
        pytest.fail(f"{name} failed under MicroPython ({variant}): {res[name]}")


def make_mp_tests(script_name: str):
    """A parametrised pytest function for every test_* of mp/<script_name>."""
    script = HERE / "mp" / script_name
    names = mp_test_names(script)

    @pytest.mark.parametrize("variant", VARIANTS)
    @pytest.mark.parametrize("name", names)
    def test(name, variant, firmware_dirs, shared):
        check_mp(script, name, variant, firmware_dirs, shared)

    return test
