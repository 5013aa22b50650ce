"""Facts about the physical insole, read from ``pinmap.json`` and ``zones.json`` (the single source,
shipped inside the package as ``insole/model/data/``; ``hardware/`` links to them).

The firmware's board module, the simulator's defaults, the analysis's zone positions, the live
view's foot map and the drawings in ``hardware/svg/`` all come from ``hardware/pinmap.json`` and
``hardware/zones.json``; tests fail if a copy diverges.

Coordinates: a zone's ``length_frac`` runs from the back of the heel (0) to the tip of the longest
toe (1); its ``width_frac`` runs across the insole *at that length* from the medial edge (0) to the
lateral edge (1), for a left foot. A right foot mirrors width, which changes nothing in these
fractions; only a picture seen from above flips (see :func:`zone_map_xy`).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

from insole.errors import InputFileError

PINMAP_SCHEMA = "insole.pinmap/1"
ZONES_SCHEMA = "insole.zones/1"


def hardware_dir() -> Path:
    """The folder of the pin map and zone files: package data of ``insole.model`` (``data/``).

    In a checkout, ``hardware/pinmap.json`` and ``hardware/zones.json`` are links to these files,
    so the firmware's pin module, the drawings and the installed package read one source.
    """
    return Path(str(resources.files("insole.model") / "data"))


@lru_cache(maxsize=None)
def _load(name: str) -> dict:
    path = hardware_dir() / name
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputFileError(f"{path}: cannot read ({e})") from e


def reload() -> None:
    """Forget the cached files (after editing them in a running process)."""
    _load.cache_clear()


def pinmap() -> dict:
    """The whole of ``hardware/pinmap.json`` (schema ``insole.pinmap/1``)."""
    return _load("pinmap.json")


def board_names() -> tuple[str, ...]:
    return tuple(pinmap()["boards"])


def board(name: str | None = None) -> dict:
    """One board's entry: ``sensors`` (zone → GPIO, in channel order), ``battery_adc_pin``,
    ``battery_divider_ratio``, ``led_pin``, ``chip``, ``description``."""
    pm = pinmap()
    name = name or pm["default_board"]
    try:
        return pm["boards"][name]
    except KeyError:
        raise InputFileError(f"unknown board {name!r}; known: {', '.join(pm['boards'])}") from None


def default_zones(board_name: str | None = None) -> tuple[str, ...]:
    """Zones of the default board's sensor channels, in channel order."""
    return tuple(board(board_name)["sensors"])


def sensor_pins(board_name: str | None = None) -> tuple[int, ...]:
    """GPIO of each sensor channel, in channel order."""
    return tuple(int(p) for p in board(board_name)["sensors"].values())


def divider() -> tuple[int, int]:
    """(supply_mv, r_fixed_ohm) of each sensor divider."""
    d = pinmap()["divider"]
    return int(d["supply_mv"]), int(d["r_fixed_ohm"])


def chip(board_name: str | None = None) -> dict:
    """ADC facts of a board's chip: ``adc1_gpios``, ``attenuation_db``, ``accurate_range_mv``
    (where the calibrated ADC is most accurate), ``full_scale_mv`` (where it clips)."""
    name = board(board_name).get("chip", "esp32")
    try:
        return pinmap()["chips"][name]
    except KeyError:
        raise InputFileError(f"hardware/pinmap.json: no chip entry {name!r}") from None


def adc_full_scale_mv(board_name: str | None = None) -> int:
    """Pin voltage in mV at which the board's ADC clips (reads its largest value)."""
    return int(chip(board_name)["full_scale_mv"])


def adc_accurate_range_mv(board_name: str | None = None) -> tuple[int, int]:
    """(low, high) pin voltage in mV between which the board's ADC reads accurately.

    A sensor voltage above ``high`` is still a reading (the ADC clips only near
    ``full_scale_mv``) but a less accurate one; the host counts such samples as
    "above the ADC's accurate range" rather than treating them as faults.
    """
    lo, hi = chip(board_name)["accurate_range_mv"]
    return int(lo), int(hi)


def check_pinmap(pm: dict | None = None) -> list[str]:
    """Every problem with a pin map, as sentences (empty when it is sound).

    Checks: schema, default board present, each board's sensors are known zones on distinct
    ADC1 pins of its chip (ADC2 is unusable while the radio runs), the battery pin is an ADC1
    pin distinct from the sensors, the LED pin is not a sensor pin, and 1-8 channels.
    """
    from insole.protocol import (
        ZONES,  # local: protocol imports numpy, keep this module light
    )

    pm = pinmap() if pm is None else pm
    problems = []
    if pm.get("schema") != PINMAP_SCHEMA:
        problems.append(f"schema is {pm.get('schema')!r}, expected {PINMAP_SCHEMA!r}")
    boards = pm.get("boards", {})
    if pm.get("default_board") not in boards:
        problems.append(f"default_board {pm.get('default_board')!r} is not among the boards")
    for name, b in boards.items():
        chip_name = b.get("chip", "esp32")
        adc1 = set(pm.get("chips", {}).get(chip_name, {}).get("adc1_gpios", ()))
        if not adc1:
            problems.append(f"{name}: chip {chip_name!r} has no adc1_gpios entry")
        sensors = b.get("sensors", {})
        if not 1 <= len(sensors) <= 8:
            problems.append(f"{name}: {len(sensors)} sensor channels (1-8 allowed)")
        for zone, pin in sensors.items():
            if zone not in ZONES:
                problems.append(f"{name}: unknown zone {zone!r} (known: {', '.join(ZONES)})")
            if pin not in adc1:
                problems.append(f"{name}: sensor {zone} on GPIO{pin}, which is not an ADC1 pin of {chip_name}")
        pins = list(sensors.values())
        if len(set(pins)) != len(pins):
            problems.append(f"{name}: two sensors share a pin")
        bat = b.get("battery_adc_pin")
        if bat not in adc1:
            problems.append(f"{name}: battery_adc_pin GPIO{bat} is not an ADC1 pin of {chip_name}")
        if bat in pins:
            problems.append(f"{name}: battery_adc_pin GPIO{bat} is also a sensor pin")
        if b.get("led_pin") in pins or b.get("led_pin") == bat:
            problems.append(f"{name}: led_pin GPIO{b.get('led_pin')} is also an analog input")
        button = b.get("button_pin")
        if button is not None and (button in pins or button == bat or button == b.get("led_pin")):
            problems.append(f"{name}: button_pin GPIO{button} is also used for something else")
        if not float(b.get("battery_divider_ratio", 0)) >= 1.0:
            problems.append(f"{name}: battery_divider_ratio must be >= 1")
    return problems


# --- zones -----------------------------------------------------------------------------------


def zones_file() -> dict:
    """The whole of ``hardware/zones.json`` (schema ``insole.zones/1``)."""
    return _load("zones.json")


def zone_positions() -> dict[str, tuple[float, float]]:
    """Zone centre as (length_frac, width_frac) of a left foot."""
    z = zones_file()["zones"]
    return {k: (float(v["length_frac"]), float(v["width_frac"])) for k, v in z.items()}


def zone_placement(zone: str) -> str:
    """The maker's placement instruction for one zone."""
    try:
        return str(zones_file()["zones"][zone]["placement"])
    except KeyError:
        raise InputFileError(f"hardware/zones.json has no placement for zone {zone!r}") from None


def outline() -> list[tuple[float, float, float]]:
    """The insole's edges as (length_frac, medial, lateral) rows, medial/lateral in fractions of
    the insole's maximum width measured from the medial tangent line, heel to toe."""
    pts = zones_file()["outline"]["points"]
    return [(float(p["length_frac"]), float(p["medial"]), float(p["lateral"])) for p in pts]


def width_to_length() -> float:
    """The insole's maximum width as a fraction of foot length."""
    return float(zones_file()["outline"]["width_to_length"])


def _edges_at(length_frac: float) -> tuple[float, float]:
    rows = outline()
    for (l0, m0, a0), (l1, m1, a1) in zip(rows, rows[1:]):
        if l0 <= length_frac <= l1:
            t = 0.0 if l1 == l0 else (length_frac - l0) / (l1 - l0)
            return m0 + t * (m1 - m0), a0 + t * (a1 - a0)
    raise ValueError(f"length_frac {length_frac} outside 0..1")


def across(length_frac: float, width_frac: float) -> float:
    """A point's distance from the medial tangent line, as a fraction of the insole's maximum
    width (``width_frac`` applied to the local width at ``length_frac``)."""
    med, lat = _edges_at(length_frac)
    return med + width_frac * (lat - med)


def medial_offset(zone: str) -> float:
    """A zone centre's distance from the medial tangent line, as a fraction of the insole's
    maximum width (the width_frac of the zone applied to the local width at its length)."""
    return across(*zone_positions()[zone])


def to_mm(length_frac: float, width_frac: float, foot_length_mm: float) -> tuple[float, float]:
    """A point on the insole in millimetres: (from the medial tangent line, from the heel)."""
    return across(length_frac, width_frac) * width_to_length() * foot_length_mm, length_frac * foot_length_mm


def zone_tail(zone: str) -> list[tuple[float, float]]:
    """The route of a zone's sensor tail as (length_frac, width_frac) waypoints, from the sensor
    centre to where it leaves the insole over its edge."""
    try:
        return [(float(a), float(b)) for a, b in zones_file()["zones"][zone]["tail"]]
    except KeyError:
        raise InputFileError(f"hardware/zones.json has no tail route for zone {zone!r}") from None


def sensor_diameter_mm() -> float:
    return float(zones_file()["sensor"]["active_diameter_mm"])


def zone_map_xy(side: str = "left") -> dict[str, tuple[float, float]]:
    """Zone centres for a picture of the foot seen from above, as (x, y) in units of the
    insole's maximum width: x from the picture's left edge (0) to its right edge (1), y from the
    heel (0) to the toe (``1 / width_to_length()``). A left foot has its medial side (big toe) on
    the right of the picture, a right foot on the left. Use :func:`outline_map_xy` for the
    outline in the same units."""
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', not {side!r}")
    scale = 1.0 / width_to_length()
    out = {}
    for zone, (length_frac, _) in zone_positions().items():
        m = medial_offset(zone)
        out[zone] = (1.0 - m if side == "left" else m, length_frac * scale)
    return out


def outline_map_xy(side: str = "left") -> list[tuple[float, float]]:
    """The insole outline as a closed polygon in the units of :func:`zone_map_xy`."""
    scale = 1.0 / width_to_length()
    rows = outline()
    medial = [(m, lf * scale) for lf, m, _ in rows]
    lateral = [(a, lf * scale) for lf, _, a in reversed(rows)]
    poly = medial + lateral
    if side == "left":
        return [(1.0 - x, y) for x, y in poly]
    return poly
