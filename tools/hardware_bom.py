#!/usr/bin/env python3
"""Render hardware/bom.md (the readable bill of materials) from hardware/bom.csv.

    python tools/hardware_bom.py          # write hardware/bom.md
    python tools/hardware_bom.py --check  # exit 1 if bom.md is stale
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CSV = ROOT / "hardware" / "bom.csv"
MD = ROOT / "hardware" / "bom.md"


def rows() -> list[dict]:
    return list(csv.DictReader(CSV.read_text().splitlines()))


def total(rs: list[dict], swap: dict[str, str] | None = None) -> float:
    """Cost per pair of the required rows; ``swap`` replaces an item by its alternative."""
    swap = swap or {}
    by_item = {r["item"]: r for r in rs}
    t = 0.0
    for r in rs:
        if r["required"] != "yes":
            continue
        use = by_item.get(swap.get(r["item"], r["item"]), r)
        t += float(use["qty_per_pair"]) * float(use["unit_cost_usd"])
    return t


def render() -> str:
    rs = rows()
    out = ["# Bill of materials (one pair of insoles)", "",
           "Generated from `bom.csv` by `tools/hardware_bom.py`; edit the CSV, then run `make hardware`.",
           "Costs are approximate single-quantity hobby prices in US dollars; check current prices.", "",
           "| item | part | value / part number | per insole | per pair | unit USD | line USD | notes |",
           "|---|---|---|---:|---:|---:|---:|---|"]
    for r in rs:
        if r["required"] != "yes":
            continue
        line = float(r["qty_per_pair"]) * float(r["unit_cost_usd"])
        pn = r["value"] + (f" ({r['part_number']})" if r["part_number"] and r["part_number"] != r["value"] else "")
        out.append(f"| {r['item']} | {r['part']} | {pn} | {r['qty_per_insole']} | {r['qty_per_pair']} | "
                   f"{float(r['unit_cost_usd']):.2f} | {line:.2f} | {r['notes']} |")
    t = total(rs)
    out += ["", f"**Total per pair: about {t:.0f} USD** (default build: LOLIN D32, five FlexiForce A201 per insole).",
            "", "## Alternatives", "",
            "| item | part | value / part number | per pair | unit USD | notes |", "|---|---|---|---:|---:|---|"]
    for r in rs:
        if r["required"] == "alt":
            out.append(f"| {r['item']} | {r['part']} | {r['value']} | {r['qty_per_pair']} | "
                       f"{float(r['unit_cost_usd']):.2f} | {r['notes']} |")
    budget = total(rs, {"sensor": "sensor_alt"})
    by = {r["item"]: r for r in rs}
    s3 = (t - 2 * float(by["board"]["unit_cost_usd"]) + 2 * float(by["board_alt"]["unit_cost_usd"])
          + 2 * (float(by["sensor"]["unit_cost_usd"]) + float(by["resistor"]["unit_cost_usd"])
                 + float(by["puck"]["unit_cost_usd"]) + float(by["connector_sensor"]["unit_cost_usd"])))
    out += ["", f"- Budget build (FSR 400 instead of A201): about {budget:.0f} USD per pair.",
            f"- Six-sensor build (Olimex ESP32-S3-DevKit-LiPo, hallux added): about {s3:.0f} USD per pair.",
            "- Tools: soldering iron, crimp tool for 2.54 mm contacts, multimeter (also for the bench "
            "calibration), a set of known weights (bags of water or gym plates and a kitchen scale).", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        if not MD.is_file() or MD.read_text() != text:
            print("hardware/bom.md is stale (run `make hardware`)", file=sys.stderr)
            return 1
        return 0
    MD.write_text(text)
    print(f"wrote {MD.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
