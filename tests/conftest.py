"""Shared fixtures for the host tests. Importable helpers live in helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import SHARED


@pytest.fixture(scope="session")
def shared() -> Path:
    if not (SHARED / "PROTOCOL.md").is_file():
        pytest.fail(f"../shared not found at {SHARED}; set INSOLE_SHARED")
    return SHARED
