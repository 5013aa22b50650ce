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


# Modules that share one per-process cache of their own (not a fixture): one group, one build.
_SHARED_CACHE_GROUPS = {
    # history_season.shared_season(): 12 simulated two-foot runs, analysed
    "tests/test_history.py": "history_season",
    "tests/test_history_pg.py": "history_season",
    "tests/test_history_dask.py": "history_season",
}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks
def pytest_collection_modifyitems(config, items):
    """Keep a module's tests on one xdist worker when they share a module-scoped fixture.

    `make test` runs the suite over every core with ``--dist loadgroup`` (docs/testing.md): tests
    without a group go to whichever worker is free, one by one. A module-scoped fixture (a
    simulated run, an analysed document, a started simulator or database) would otherwise be
    built again on each worker that gets one of the module's tests, so such tests are grouped by
    module. A test that names its own ``xdist_group`` (test_accuracy_sim.py: one per scenario)
    keeps it; modules that share a per-process cache are grouped as _SHARED_CACHE_GROUPS says.
    Without xdist (plain ``pytest``) the mark does nothing.
    """
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        module = item.nodeid.split("::")[0]
        if module in _SHARED_CACHE_GROUPS:
            item.add_marker(pytest.mark.xdist_group(_SHARED_CACHE_GROUPS[module]))
            continue
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        for name in info.names_closure:
            defs = info.name2fixturedefs.get(name)
            if defs and defs[-1].scope in ("module", "package", "class"):
                item.add_marker(pytest.mark.xdist_group(module))
                break
