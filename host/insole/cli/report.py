"""``insole report``: the run report (PNG figures and one self-contained HTML page)."""

from __future__ import annotations

import argparse
import sys

from insole.errors import InsoleError


def _cmd_report(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from insole.figures import build

    if args.body_mass_kg is not None and not 20 <= args.body_mass_kg <= 250:
        raise InsoleError(f"--body-mass-kg {args.body_mass_kg} is outside 20-250 kg")
    # the bar appears only when the report takes more than a second (a long run)
    with tqdm(total=build.stages(), desc="report", unit="stage", delay=1.0,
              file=sys.stderr, disable=args.quiet, leave=False) as bar:
        def progress(stage: str) -> None:
            bar.set_postfix_str(stage, refresh=False)
            bar.update(1)

        rep = build.build_report(args.inputs, args.out, args.body_mass_kg, args.calibration,
                                 progress=progress)
    for p in rep.pngs:
        print(p)
    for name, why in rep.skipped.items():
        print(f"{name}: not drawn ({why})")
    flags = rep.run.doc["flags"]
    print(f"{len(flags)} flag(s)" + (": " + ", ".join(f"{f['code']} ({f['side']})" for f in flags)
                                     if flags else ""))
    print(f"report written to {rep.html_path}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("report", help="PNG figures and an HTML page of a run",
                       description="Analyse one or two feet and write the run report: stance "
                                   "curves, loading rate, zone shares, centre-of-pressure paths, "
                                   "cadence and contact time, symmetry, flags and the data-quality "
                                   "ledger, as PNGs and one self-contained HTML page.")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="a raw serial capture (.bin) or a recorded session directory; one per foot")
    p.add_argument("--out", required=True, metavar="DIR", help="directory for the PNGs and report.html")
    p.add_argument("--body-mass-kg", type=float, metavar="KG",
                   help="runner's body mass; without it, the stride-average identity estimates it")
    p.add_argument("--calibration", action="append", metavar="FILE",
                   help="a calibration file from `insole calibrate` (once per foot)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_report)
