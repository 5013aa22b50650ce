"""Facts about the physical insole, read from the files in ``hardware/`` (the single source).

The firmware's board module, the simulator's defaults and the analysis's zone positions all come
from ``hardware/pinmap.json`` and ``hardware/zones.json``; tests fail if a copy diverges.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from .errors import InputFileError

# hardware/ beside host/ in a checkout; an installed copy ships its own (see package data).
_CANDIDATES = (
    Path(__file__).resolve().parent.parent.parent / "hardware",
    Path(__file__).resolve().parent / "hardware_data",
)


def hardware_dir() -> Path:
    for p in _CANDIDATES:
        if (p / "pinmap.json").is_file():
            return p
    raise InputFileError("hardware/pinmap.json not found beside the insole package")


@lru_cache(maxsize=None)
def _load(name: str) -> dict:
    path = hardware_dir() / name
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputFileError(f"{path}: cannot read ({e})") from e


def pinmap() -> dict:
    return _load("pinmap.json")


def board(name: str | None = None) -> dict:
    pm = pinmap()
    name = name or pm["default_board"]
    try:
        return pm["boards"][name]
    except KeyError:
        raise InputFileError(f"unknown board {name!r}; known: {', '.join(pm['boards'])}") from None


def default_zones(board_name: str | None = None) -> tuple[str, ...]:
    """Zones of the default board's sensor channels, in channel order."""
    return tuple(board(board_name)["sensors"])


def divider() -> tuple[int, int]:
    """(supply_mv, r_fixed_ohm) of each sensor divider."""
    d = pinmap()["divider"]
    return int(d["supply_mv"]), int(d["r_fixed_ohm"])


def zone_positions() -> dict[str, tuple[float, float]]:
    """Zone centre as (length_frac, width_frac) of a left foot."""
    z = _load("zones.json")["zones"]
    return {k: (float(v["length_frac"]), float(v["width_frac"])) for k, v in z.items()}
