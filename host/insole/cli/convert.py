"""``insole convert``: a real recording (gaitpdb, fukuchi) into insole captures plus truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from insole.validation.datasets import CONVERTERS, convert


def _cmd_convert(args) -> int:
    truth = convert(args.dataset, args.input, args.out, args.truth)
    for side, foot in truth["feet"].items():
        steps = foot["steps"]
        ct = [s["contact_ms"] for s in steps]
        med = f"{np.median(ct):.0f} ms" if ct else "-"
        print(f"{side:5s}: {len(steps):4d} whole steps, median contact {med} -> {Path(args.out) / (side + '.bin')}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "convert", help="turn a real recording (gaitpdb, fukuchi) into insole captures plus truth",
        description="Turn a recording of ../shared/data into OUT/left.bin and OUT/right.bin (raw "
                    "serial captures) and a truth JSON for `insole score`.")
    p.add_argument("dataset", choices=sorted(CONVERTERS), help="which dataset the INPUT file is from")
    p.add_argument("input", help="gaitpdb: e.g. GaCo01_01.txt; fukuchi: e.g. RBDS001runT25forces.txt "
                                 "(demographics.txt / RBDSinfo.txt are read from beside it)")
    p.add_argument("--out", required=True, help="output directory for left.bin and right.bin")
    p.add_argument("--truth", help="truth JSON path (default OUT/truth.json)")
    p.set_defaults(func=_cmd_convert)
