"""hardware/ is the single source: pin map, zone layout, divider value and drawings agree with it."""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
import math
import re
import sys
from itertools import combinations
from pathlib import Path

import pytest

from insole import protocol as P
from insole.model import hardware

ROOT = Path(__file__).resolve().parent.parent
HW = ROOT / "hardware"
# ADC1 pads by chip, from Espressif's documentation, written out here on purpose: the test must not
# take the pin map's own list on trust.
ADC1 = {"esp32": set(range(32, 40)), "esp32s3": set(range(1, 11))}


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


# --- pin map --------------------------------------------------------------------------------


def test_pinmap_is_sound():
    assert hardware.check_pinmap() == []


@pytest.mark.parametrize("name", hardware.board_names())
def test_every_board_reads_its_sensors_and_battery_on_adc1(name):
    b = hardware.board(name)
    adc1 = ADC1[b["chip"]]
    assert set(hardware.chip(name)["adc1_gpios"]) == adc1
    pins = list(b["sensors"].values())
    assert set(pins) <= adc1, f"{name}: {pins} not all ADC1"
    assert b["battery_adc_pin"] in adc1
    assert len(set(pins)) == len(pins) and b["battery_adc_pin"] not in pins
    assert set(b["sensors"]) <= set(P.ZONES)


def test_check_pinmap_catches_an_adc2_pin_and_a_duplicate():
    pm = copy.deepcopy(hardware.pinmap())
    pm["boards"]["lolin-d32"]["sensors"]["arch"] = 25  # ADC2 on the ESP32
    pm["boards"]["olimex-esp32-s3-devkit-lipo"]["sensors"]["met5"] = 7  # met23's pin
    problems = hardware.check_pinmap(pm)
    assert any("GPIO25" in p and "ADC1" in p for p in problems)
    assert any("share a pin" in p for p in problems)


def test_the_default_board_keeps_the_simulator_zones_and_a_six_sensor_s3_board_exists():
    assert hardware.default_zones() == ("heel", "arch", "met1", "met23", "met5")
    six = [n for n in hardware.board_names() if hardware.board(n)["chip"] == "esp32s3"]
    assert six and "hallux" in hardware.board(six[0])["sensors"] and len(hardware.board(six[0])["sensors"]) == 6


def test_firmware_pins_module_matches_the_pin_map():
    pins_py = ROOT / "firmware" / "pins.py"
    assert pins_py.is_file(), "firmware/pins.py missing: make firmware-pins"
    consts = {}
    for node in ast.parse(pins_py.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            consts[node.targets[0].id] = ast.literal_eval(node.value)
    name = consts["BOARD"]
    b = hardware.board(name)
    assert tuple(consts["SENSOR_GPIOS"]) == hardware.sensor_pins(name)
    assert tuple(consts["ZONE_NAMES"]) == hardware.default_zones(name)
    assert consts["BATTERY_ADC_GPIO"] == b["battery_adc_pin"]
    assert consts["LED_GPIO"] == b["led_pin"]
    assert (consts["SUPPLY_MV"], consts["R_FIXED_OHM"]) == hardware.divider()


# --- divider --------------------------------------------------------------------------------


def test_divider_value_is_the_one_the_analysis_script_recommends():
    tool = _tool("hardware_divider")
    supply_mv, r_fixed = hardware.divider()
    rec = tool.recommend(supply_mv / 1000, 4.0e5, 1.0, hardware.adc_accurate_range_mv("lolin-d32")[1])
    assert r_fixed == rec
    # and it does what the docs claim: 1500 N inside the accurate range, far from clipping
    v = tool.volts(1500, r_fixed, supply_mv / 1000, 4.0e5, 1.0)
    assert v * 1000 <= hardware.adc_accurate_range_mv("lolin-d32")[1]
    assert tool.force_at(3100, r_fixed, supply_mv / 1000, 4.0e5, 1.0) > 3000


def test_readme_carries_the_scripts_current_table():
    tool = _tool("hardware_divider")
    supply_mv, r_fixed = hardware.divider()
    table = tool.report(supply_mv / 1000, 4.0e5, 1.0, r_fixed, markdown=True)
    readme = (HW / "README.md").read_text()
    chosen = next(line for line in table.splitlines() if line.endswith("chosen |"))
    assert chosen in readme, "hardware/README.md's resistor table is stale: paste `python tools/hardware_divider.py --markdown`"


# --- zones ----------------------------------------------------------------------------------


def test_zone_file_covers_every_protocol_zone_and_the_loader_returns_it_unchanged():
    raw = json.loads((HW / "zones.json").read_text())
    assert raw["schema"] == hardware.ZONES_SCHEMA
    assert set(raw["zones"]) == set(P.ZONES)
    pos = hardware.zone_positions()
    for z, v in raw["zones"].items():
        assert pos[z] == (v["length_frac"], v["width_frac"])
        assert 0 <= v["length_frac"] <= 1 and 0 <= v["width_frac"] <= 1
        assert hardware.zone_placement(z)


def test_arch_sensor_sits_where_a_healthy_arch_leaves_it_unloaded():
    lf, wf = hardware.zone_positions()["arch"]
    assert 0.35 <= lf <= 0.5 and wf <= 0.25  # medial midfoot, under the navicular
    assert hardware.zone_positions()["midfoot_lateral"][1] >= 0.75


def test_analysis_takes_zone_positions_from_the_hardware_file(monkeypatch, tmp_path):
    """No module but insole.hardware holds zone coordinates; the analysis reads the loader."""
    pos = hardware.zone_positions()
    # a zone mapped to a pair of fractions, or a length_frac key, outside the loader
    literal = re.compile(r'"(?:%s)"\s*:\s*[\(\[]\s*[01]?\.\d+\s*,\s*[01]?\.\d+\s*[\)\]]|"length_frac"'
                         % "|".join(P.ZONES))
    offenders = [p.name for p in (ROOT / "host" / "insole").rglob("*.py")
                 if p.name != "hardware.py" and literal.search(p.read_text())]
    assert offenders == [], f"zone coordinates hard-coded in {offenders}; read insole.hardware instead"
    from insole.analysis import analyse_paths
    # a change in the zone file reaches the analysis: move the heel forward, the strike index follows
    capture = tmp_path / "run.bin"
    capture.write_bytes(_running_capture())
    before = analyse_paths([str(capture)], body_mass_kg=70.0)
    si0 = before["feet"]["left"]["summary"]["strike_index_median"]
    assert si0 is not None
    moved = dict(pos, heel=(pos["heel"][0] + 0.2, pos["heel"][1]))
    monkeypatch.setattr(hardware, "zone_positions", lambda: moved)
    after = analyse_paths([str(capture)], body_mass_kg=70.0)
    si1 = after["feet"]["left"]["summary"]["strike_index_median"]
    assert si1 > si0 + 0.02, "the analysis did not follow the zone file's heel position"


def _running_capture(seconds: float = 20.0, rate_hz: int = 500) -> bytes:
    """Rearfoot-strike steps: the heel loads first, the forefoot 40 ms later."""
    import numpy as np

    from insole.model.sensor import volts_from_force

    zones = hardware.default_zones()
    stride_s, contact_s = 0.72, 0.26
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    ph = np.mod(t - 0.3, stride_s)
    forces = np.zeros((len(t), len(zones)))
    for c, z in enumerate(zones):
        delay = 0.0 if z == "heel" else 0.04
        u = np.clip((ph - delay) / (contact_s - delay), 0, 1)
        forces[:, c] = np.where((ph >= delay) & (ph < contact_s), 600 * np.sin(np.pi * u), 0.0)
    supply_mv, r_fixed = hardware.divider()
    units = np.clip(np.rint(volts_from_force(forces, supply_mv / 1e3, r_fixed) / P.SAMPLE_UNIT_V), 0,
                    65535).astype(np.uint16)
    out = bytearray(P.frame(P.Info("left", zones, rate_hz, supply_mv, r_fixed, "a0b1c2d3e401", "test")))
    for seq, i in enumerate(range(0, len(t), 20)):
        out += P.frame(P.Data("left", seq, i * 2000, 2000, units[i:i + 20]))
    return bytes(out)


def test_map_coordinates_mirror_for_the_right_foot():
    left, right = hardware.zone_map_xy("left"), hardware.zone_map_xy("right")
    for z in P.ZONES:
        assert left[z][0] == pytest.approx(1 - right[z][0])
        assert left[z][1] == pytest.approx(right[z][1])
    # the big toe side is medial: on the right of a left foot seen from above
    assert left["met1"][0] > left["met5"][0]
    poly = hardware.outline_map_xy("left")
    assert len(poly) == 2 * len(hardware.outline())


def _seg_dist(p, a, b):
    ax, ay = a
    bx, by = b
    dx, dy = bx - ax, by - ay
    t = 0.0 if dx == dy == 0 else max(0.0, min(1.0, ((p[0] - ax) * dx + (p[1] - ay) * dy) / (dx * dx + dy * dy)))
    return math.hypot(p[0] - ax - t * dx, p[1] - ay - t * dy)


def _cross(a, b, c, d):
    def orient(p, q, r):
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
    return (orient(a, b, c) * orient(a, b, d) < 0) and (orient(c, d, a) * orient(c, d, b) < 0)


@pytest.mark.parametrize("foot_mm", [230.0, 270.0, 310.0])
def test_tails_avoid_other_sensors_never_cross_and_leave_over_an_edge(foot_mm):
    r = hardware.sensor_diameter_mm() / 2
    centres = {z: hardware.to_mm(*p, foot_mm) for z, p in hardware.zone_positions().items()}
    routes = {z: [hardware.to_mm(lf, wf, foot_mm) for lf, wf in hardware.zone_tail(z)] for z in centres}
    for z, pts in routes.items():
        assert hardware.zone_tail(z)[0] == hardware.zone_positions()[z], f"{z}: tail starts off the sensor"
        assert hardware.zone_tail(z)[-1][1] in (0.0, 1.0), f"{z}: tail does not end on an edge"
        for other, c in centres.items():
            if other == z:
                continue
            d = min(_seg_dist(c, a, b) for a, b in zip(pts, pts[1:]))
            assert d >= r + 3.0, f"{z}'s tail passes {d:.1f} mm from the {other} sensor centre"
    for (z1, p1), (z2, p2) in combinations(routes.items(), 2):
        for a, b in zip(p1, p1[1:]):
            for c, d in zip(p2, p2[1:]):
                assert not _cross(a, b, c, d), f"tails of {z1} and {z2} cross"


def test_sensors_keep_clear_of_the_insole_edge():
    clearance = hardware.zones_file()["sensor"]["min_edge_clearance_mm"]
    for z, (lf, wf) in hardware.zone_positions().items():
        med, lat = hardware._edges_at(lf)
        local_mm = (lat - med) * hardware.width_to_length() * 270.0
        edge_mm = min(wf, 1 - wf) * local_mm
        assert edge_mm >= clearance, f"{z} centre only {edge_mm:.1f} mm from the edge"


# --- drawings -------------------------------------------------------------------------------


def test_svgs_are_regenerated_from_the_files_identically():
    tool = _tool("hardware_svg")
    outs = tool.outputs()
    assert {p.name for p in outs} >= {"insole_zones.svg", "schematic-lolin-d32.svg"}
    for path, text in outs.items():
        assert path.is_file(), f"{path.name} missing: run `make hardware`"
        assert path.read_text() == text, f"{path.name} is stale: run `make hardware` and commit"


def test_svgs_are_well_formed_and_show_the_files_values():
    import xml.etree.ElementTree as ET

    tool = _tool("hardware_svg")
    _, r_fixed = hardware.divider()
    for path, text in tool.outputs().items():
        ET.fromstring(text.encode())  # raises on malformed XML
        if path.name.startswith("schematic-"):
            board = path.stem[len("schematic-"):]
            assert f"{r_fixed} Ω" in text
            for zone, gpio in hardware.board(board)["sensors"].items():
                assert f"GPIO{gpio}" in text and zone in text
    zones_svg = (HW / "svg" / "insole_zones.svg").read_text()
    for z, (lf, wf) in hardware.zone_positions().items():
        assert f"{z}: {lf * 100:.0f} % L, {wf * 100:.0f} % W" in zones_svg


def test_bom_lists_every_board_of_the_pin_map_and_a_cost():
    import csv

    text = (HW / "bom.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    for name in hardware.board_names():
        assert name in text, f"bom.csv does not name the {name} board of pinmap.json"
    assert any(str(hardware.divider()[1]) in r["value"] for r in rows if r["item"] == "resistor")
    tool = _tool("hardware_bom")
    assert 50 < tool.total(rows) < 400
    assert (HW / "bom.md").read_text() == tool.render(), "bom.md is stale: run `make hardware`"
    assert f"about {tool.total(rows):.0f} USD" in tool.render()


def test_readme_gives_every_zone_placement_from_the_zone_file():
    readme = (HW / "README.md").read_text()
    for z in P.ZONES:
        assert hardware.zone_placement(z) in readme, f"README placement for {z} differs from zones.json"
