#!/usr/bin/env python3
"""Choose the divider's fixed resistor: print pin voltage and force resolution over 0-1500 N.

Each FSR runs from the supply to the ADC pin and R_fixed from the pin to ground, so
``V = supply · R_fixed / (R_fixed + R_sensor)`` with the sensor model of PROTOCOL.md,
``F = k · G^β`` (G = 1/R_sensor; default k = 4.0e5 N·Ω, β = 1). For each candidate R_fixed this
prints the voltage at several zone forces, the force per millivolt there (the resolution: one
ADC step is about 0.76 mV, and the ADC's noise is a few steps), the force below which the
original ESP32 reads nothing (its calibrated range at 11 dB starts at 150 mV), the force at which
the pin leaves the ADC's accurate range (2450 mV on the ESP32, 3100 mV on the ESP32-S3), and the
current through the divider at full load.

The rule the project uses (``recommend``): the largest E24 value that keeps the highest zone force
(1500 N) inside the ESP32's accurate range. Larger values resolve light loads better and shrink
the dead zone; smaller ones waste resolution at the top and draw more current.

A second table shows why the sensor is a FlexiForce A201 rather than the common FSR 402: the force
each sensor's active area carries at running plantar pressures against its rated range.

Run ``python tools/hardware_divider.py`` (or ``make hardware``); ``--k`` and ``--beta`` re-run the
analysis for a sensor whose bench calibration gave other values, ``--markdown`` prints tables
ready for hardware/README.md.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "host"))

from insole.model import hardware  # noqa: E402
from insole.model.sensor import (  # noqa: E402
    DEFAULT_BETA,
    DEFAULT_K_N_OHM,
    volts_from_force,
)

FORCES_N = (25, 100, 400, 1000, 1500)
CANDIDATES_OHM = (330, 470, 560, 680, 750, 820, 1000, 1500, 2200, 4700)
E24 = (10, 11, 12, 13, 15, 16, 18, 20, 22, 24, 27, 30, 33, 36, 39, 43, 47, 51, 56, 62, 68, 75, 82, 91)
MAX_FORCE_N = 1500.0
ADC_LSB_MV = 3100 / 4095

# Sensors considered: (name, active area diameter mm, rated force N, source).
SENSORS = (
    ("FlexiForce A201-25", 9.53, 111.0, "Tekscan A201 product page: 9.53 mm sensing area, 111 N range"),
    ("FlexiForce A201-100", 9.53, 445.0, "Tekscan A201 product page: 445 N range"),
    ("Interlink FSR 402", 12.7, 10.0, "Interlink FSR 402 data sheet: sensitivity range 0.1-10 N"),
    ("Interlink FSR 400", 5.1, 20.0, "Interlink FSR 400 page: 5.1 mm active area, sensitivity to 20 N"),
)
PRESSURES_KPA = (200, 400, 600)


def e24_values(lo_ohm: float = 100, hi_ohm: float = 100_000) -> list[int]:
    out = []
    decade = 1
    while decade * 10 <= hi_ohm:
        out += [v * decade for v in E24 if lo_ohm <= v * decade <= hi_ohm]
        decade *= 10
    return out


def volts(force_n: float, r_fixed_ohm: float, supply_v: float, k: float, beta: float) -> float:
    return float(volts_from_force(force_n, supply_v, r_fixed_ohm, k, beta))


def newtons_per_mv(force_n: float, r_fixed_ohm: float, supply_v: float, k: float, beta: float) -> float:
    """Force resolution: dF/dV at ``force_n``, in N per mV (numerical derivative)."""
    h = max(force_n * 1e-4, 1e-3)
    dv = volts(force_n + h, r_fixed_ohm, supply_v, k, beta) - volts(force_n - h, r_fixed_ohm, supply_v, k, beta)
    return (2 * h) / (dv * 1000.0)


def force_at(v_mv: float, r_fixed_ohm: float, supply_v: float, k: float, beta: float) -> float:
    """Zone force at which the pin reaches ``v_mv`` (inverse of the divider and sensor model)."""
    v = v_mv / 1000.0
    g = v / (r_fixed_ohm * (supply_v - v))
    return k * g**beta


def recommend(supply_v: float, k: float, beta: float, ceiling_mv: float, max_force_n: float = MAX_FORCE_N) -> int:
    """Largest E24 resistor that keeps ``max_force_n`` at or below ``ceiling_mv``."""
    ok = [r for r in e24_values() if volts(max_force_n, r, supply_v, k, beta) * 1000 <= ceiling_mv]
    if not ok:
        raise ValueError("no E24 value keeps the top force inside the ADC range")
    return max(ok)


def divider_rows(supply_v: float, k: float, beta: float, candidates=CANDIDATES_OHM) -> list[dict]:
    rows = []
    for r in candidates:
        rows.append({
            "r_fixed_ohm": r,
            "volts": [volts(f, r, supply_v, k, beta) for f in FORCES_N],
            "n_per_mv": [newtons_per_mv(f, r, supply_v, k, beta) for f in FORCES_N],
            "dead_zone_n": force_at(150, r, supply_v, k, beta),
            "leaves_esp32_range_n": force_at(2450, r, supply_v, k, beta),
            "ma_at_max": supply_v / (r + k / MAX_FORCE_N) * 1000.0 if beta == 1 else float("nan"),
        })
    return rows


def _table(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    fmt = "  ".join("{:>%d}" % w for w in widths)
    return "\n".join([fmt.format(*header)] + [fmt.format(*r) for r in rows])


def report(supply_v: float, k: float, beta: float, chosen_ohm: int, markdown: bool = False) -> str:
    out = []
    out.append(f"Sensor divider: FSR from {supply_v:.2f} V to the ADC pin, R_fixed to ground. "
               f"Sensor model F = k*G^beta, k = {k:.3g} N*ohm, beta = {beta:g}.")
    out.append(f"ESP32 ADC at 11 dB is accurate over 150-2450 mV, ESP32-S3 at 12 dB over 0-3100 mV; "
               f"one 12-bit step is about {ADC_LSB_MV:.2f} mV.")
    out.append("")
    header = (["R_fixed"] + [f"V@{f}N" for f in FORCES_N] + [f"N/mV@{f}N" for f in FORCES_N]
              + ["ESP32 reads 0 below (N)", "leaves 2450 mV at (N)", "mA@1500N", ""])
    rows = []
    for row in divider_rows(supply_v, k, beta):
        r = row["r_fixed_ohm"]
        v_top = row["volts"][-1] * 1000
        mark = "chosen" if r == chosen_ohm else ("over 2450 mV" if v_top > 2450 else "")
        rows.append([f"{r} ohm"] + [f"{v:.3f}" for v in row["volts"]]
                    + [f"{n:.2f}" for n in row["n_per_mv"]]
                    + [f"{row['dead_zone_n']:.0f}", f"{row['leaves_esp32_range_n']:.0f}",
                       f"{row['ma_at_max']:.2f}", mark])
    if chosen_ohm not in CANDIDATES_OHM:
        r = chosen_ohm
        rows.append([f"{r} ohm"] + [f"{volts(f, r, supply_v, k, beta):.3f}" for f in FORCES_N]
                    + [f"{newtons_per_mv(f, r, supply_v, k, beta):.2f}" for f in FORCES_N]
                    + [f"{force_at(150, r, supply_v, k, beta):.0f}", f"{force_at(2450, r, supply_v, k, beta):.0f}",
                       "", "chosen"])
    out.append(_table(header, rows, markdown))
    out.append("")
    rec = recommend(supply_v, k, beta, 2450)
    out.append(f"Recommended: {rec} ohm, the largest E24 value that keeps {MAX_FORCE_N:.0f} N at or below 2450 mV "
               f"({volts(MAX_FORCE_N, rec, supply_v, k, beta):.3f} V); the pin clips near 3.1 V only at "
               f"{force_at(3100, rec, supply_v, k, beta):.0f} N, and a reading at or above 99.5 % of the supply "
               f"({supply_v * 0.995:.3f} V) is a short, reported as a fault.")
    out.append(f"In hardware/pinmap.json: r_fixed_ohm = {chosen_ohm}"
               + ("" if chosen_ohm == rec else "  <-- differs from the recommendation"))
    out.append("")
    out.append("Sensor choice: force on each sensor's active area at running plantar pressures "
               "(peak in-shoe pressures 200-400 kPa, locally up to ~600 kPa):")
    header2 = ["sensor", "area mm^2"] + [f"N@{p}kPa" for p in PRESSURES_KPA] + ["rated N", "600 kPa uses", "source"]
    rows2 = []
    for name, dia, rated, src in SENSORS:
        area = math.pi * (dia / 2) ** 2
        fs = [p * 1e3 * area * 1e-6 for p in PRESSURES_KPA]
        rows2.append([name, f"{area:.1f}"] + [f"{f:.1f}" for f in fs] + [f"{rated:g}", f"{fs[-1] / rated:.0%}", src])
    out.append(_table(header2, rows2, markdown))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    supply_mv, r_fixed = hardware.divider()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--k", type=float, default=DEFAULT_K_N_OHM, help="sensor k in N*ohm (default %(default)g)")
    ap.add_argument("--beta", type=float, default=DEFAULT_BETA, help="sensor exponent (default %(default)g)")
    ap.add_argument("--supply-mv", type=float, default=supply_mv, help="divider supply (default from pinmap.json)")
    ap.add_argument("--markdown", action="store_true", help="print Markdown tables")
    args = ap.parse_args(argv)
    print(report(args.supply_mv / 1000.0, args.k, args.beta, r_fixed, args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
