"""Helpers the host tests import (``from helpers import ...``): where things are, and the CLI.

Kept out of conftest.py on purpose: tests/firmware has a conftest.py of its own, and two modules
both named ``conftest`` cannot both be imported by name.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("INSOLE_SHARED", ROOT.parent / "shared"))


def run_cli(*args, timeout: float = 300, input: bytes | None = None) -> subprocess.CompletedProcess:
    """Run `insole ARGS...` as a user would, from the venv's interpreter."""
    return subprocess.run([sys.executable, "-m", "insole.cli", *map(str, args)],
                          capture_output=True, timeout=timeout, input=input, cwd=ROOT)


INSOLE = [sys.executable, "-m", "insole.cli"]


def start_sim(tmp_path, seconds=30, side="both", scenario="easy-run"):
    p = subprocess.Popen([*INSOLE, "sim", scenario, "--side", side, "--pty", "--seed", "4",
                          "--duration-s", str(seconds), "--truth", str(tmp_path / "truth.json")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    ports = {}
    want = 2 if side == "both" else 1
    while len(ports) < want:
        line = p.stdout.readline()
        assert line, p.stderr.read()
        parts = line.split()
        if len(parts) == 2 and parts[1].startswith("/dev/"):
            ports[parts[0]] = parts[1]
    return p, ports


def stop(p: subprocess.Popen, kill: bool = False) -> tuple[bytes | str, bytes | str]:
    """End a child and close its pipes (communicate closes them)."""
    if p.poll() is None:
        p.kill() if kill else p.terminate()
    return p.communicate(timeout=20)
