"""Fixtures of the firmware tests (helpers in fwtest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fwtest import make_firmware_dirs


@pytest.fixture(scope="session")
def firmware_dirs(tmp_path_factory) -> dict[str, Path]:
    """Folder of each firmware variant: sources, compiled .mpy, sources for each other board."""
    return make_firmware_dirs(tmp_path_factory)
