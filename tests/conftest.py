"""Shared fixtures: where ../shared is, and a runner for the `insole` CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("INSOLE_SHARED", ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared() -> Path:
    if not (SHARED / "PROTOCOL.md").is_file():
        pytest.fail(f"../shared not found at {SHARED}; set INSOLE_SHARED")
    return SHARED


def run_cli(*args: str, timeout: float = 300, input: bytes | None = None) -> subprocess.CompletedProcess:
    """Run `insole ARGS...` as a user would, from the venv's interpreter."""
    return subprocess.run([sys.executable, "-m", "insole.cli", *map(str, args)],
                          capture_output=True, timeout=timeout, input=input, cwd=ROOT)
