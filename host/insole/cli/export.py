"""``insole export``: a session or capture as CSV."""

from __future__ import annotations

import argparse
from pathlib import Path

from insole.errors import InsoleError
from insole.io.export import export_csv


def _cmd_export(args: argparse.Namespace) -> int:
    if args.csv is None:
        raise InsoleError("choose an export format: --csv [PATH]")
    out = args.csv
    if out == "":
        first = Path(args.inputs[0])
        out = str(first / "samples.csv") if first.is_dir() else str(first.with_suffix(".csv"))
    n = export_csv(args.inputs, out)
    print(f"{n} rows written to {out}")
    return 0


def register(sub) -> None:
    e = sub.add_parser("export", help="export a session or capture to CSV",
                       description="One row per sample set: time (s since that foot's first "
                                   "sample), side, each zone's force in newtons.")
    e.add_argument("inputs", nargs="+", metavar="INPUT")
    e.add_argument("--csv", nargs="?", const="", metavar="PATH",
                   help="write CSV (to PATH; default DIR/samples.csv or CAPTURE.csv)")
    e.set_defaults(func=_cmd_export)
