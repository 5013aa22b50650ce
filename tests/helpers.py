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
