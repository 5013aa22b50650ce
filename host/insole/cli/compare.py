"""``insole compare A B``: did the change help? Two runs compared metric by metric."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from insole.compare.compare import CompareConfig, RunComparison, load_run, sentences
from insole.errors import InsoleError


def _cmd_compare(args: argparse.Namespace) -> int:
    if args.body_mass_kg is not None and not 20 <= args.body_mass_kg <= 250:
        raise InsoleError(f"--body-mass-kg {args.body_mass_kg} is outside 20-250 kg")
    if not 200 <= args.n_boot <= 100_000:
        raise InsoleError(f"--n-boot {args.n_boot} is outside 200-100000")
    if args.seed < 0:
        raise InsoleError(f"--seed {args.seed} must be 0 or more")
    labels = []
    for path, label, opt in ((args.a, args.label_a, "--label-a"), (args.b, args.label_b, "--label-b")):
        label = _default_label(path) if label is None else label.strip()
        if not label:
            raise InsoleError(f"{opt} must not be empty")
        labels.append(label)
    if labels[0] == labels[1]:
        labels = [f"A ({labels[0]})", f"B ({labels[1]})"]
    doc_a, kind_a = load_run(args.a, args.body_mass_kg, args.calibration)
    doc_b, kind_b = load_run(args.b, args.body_mass_kg, args.calibration)
    cmp = RunComparison(CompareConfig(n_boot=args.n_boot, seed=args.seed)).compute(
        doc_a, doc_b, labels[0], labels[1], f"{args.a} ({kind_a})", f"{args.b} ({kind_b})")
    doc = cmp.document_
    if not doc["metrics"]:
        raise InsoleError(f"{args.a} has the {' and '.join(doc['a']['feet'])} foot, {args.b} the "
                          f"{' and '.join(doc['b']['feet'])}: no foot in common to compare")
    if args.body_mass_kg is not None and "analysis" in (kind_a, kind_b):
        doc["notes"].insert(0, "--body-mass-kg applies to raw inputs only: an analysis file keeps "
                               "the body weight it was analysed with")
    text = json.dumps(doc, indent=1, allow_nan=False, ensure_ascii=False)
    if args.json == "-":
        sys.stdout.write(text + "\n")
    else:
        print(format_text(doc))
    if args.json and args.json != "-":
        _write(Path(args.json), text + "\n")
        print(f"comparison written to {args.json}")
    if args.out:
        from insole.compare.plot import write_report

        out = Path(args.out)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InsoleError(f"cannot create {out}: {e.strerror}") from e
        _write(out / "compare.json", text + "\n")
        files = write_report(cmp, out)
        msg = "written: " + ", ".join(str(p) for p in [out / "compare.json", *files])
        print(msg, file=sys.stderr if args.json == "-" else sys.stdout)
    return 0


def _default_label(path: str) -> str:
    p = Path(path)
    return (p.stem if p.suffix.lower() == ".json" else p.name) or str(path)


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise InsoleError(f"cannot write {path}: {e.strerror}") from e


def _run_line(r: dict) -> str:
    steps = " + ".join(f"{s} {n}" for s, n in r["steps"].items())
    dur = f"{r['duration_s'] / 60:.1f} min" if r.get("duration_s") else "? min"
    cad = f"{r['cadence_spm']:.0f} steps/min" if r.get("cadence_spm") else "cadence n/a"
    return f"{r['label']}: {r['source']}; steps {steps}; {dur}; {cad}"


def format_text(doc: dict) -> str:
    """The comparison as a runner reads it: the two runs, what changed in plain words, a table
    of every metric, then the notes and warnings."""
    lines = [f"insole compare: A = {_run_line(doc['a'])}",
             f"                B = {_run_line(doc['b'])}"]
    said = sentences(doc)
    n_changed = sum(e["changed"] for e in doc["metrics"])
    changed = said[:n_changed]
    lines.append(f"Changed ({n_changed} of {len(doc['metrics'])} metrics; the 95 % interval "
                 "excludes no change):" if n_changed else
                 f"Changed: none of {len(doc['metrics'])} metrics (every 95 % interval includes no change).")
    lines.extend(f"  {s}" for s in changed)
    lines.append(f"  {'side':5s} {'metric':36s} {'A':>9s} {'B':>9s} {'B−A':>9s} "
                 f"{'95 % CI':>21s} {'n A':>5s} {'n B':>5s}")
    for e in doc["metrics"]:
        ci = f"[{_g(e['ci95'][0])}, {_g(e['ci95'][1])}]" if e["ci95"] else "n/a"
        lines.append(f"  {e['side']:5s} {e['name']:36s} {_g(e['a_median']):>9s} {_g(e['b_median']):>9s} "
                     f"{_g(e['diff']):>9s} {ci:>21s} {e['n_a']:5d} {e['n_b']:5d}"
                     + ("  changed" if e["changed"] else ""))
    for n in doc["notes"]:
        lines.append(f"  note: {n}" if not n.startswith(("warning", "note")) else f"  {n}")
    return "\n".join(lines)


def _g(x) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def register(sub) -> None:
    p = sub.add_parser(
        "compare", help="compare two runs metric by metric, with 95 %% intervals",
        description="Did the change help? Per foot, for loading rate on heel strikes, peak force, "
                    "the forefoot, arch and every zone's share, contact time, cadence, the strike "
                    "mix and left/right symmetry: the median of A and of B, the difference and its "
                    "95 % interval (block bootstrap over consecutive steps), and whether it "
                    "excludes no change. Schema insole.compare/1; see docs/analysis.md.")
    p.add_argument("a", metavar="A", help="run A (before): a recorded session, a folder with "
                                          "left.bin/right.bin (insole sim --out), a capture, or an "
                                          "analysis JSON (insole analyse --json)")
    p.add_argument("b", metavar="B", help="run B (after), same kinds as A")
    p.add_argument("--json", metavar="PATH", help="write the insole.compare/1 document to PATH "
                                                  "('-' for stdout)")
    p.add_argument("--out", metavar="DIR", help="write compare.json, compare.png, "
                                                "compare-differences.png and compare.html to DIR")
    p.add_argument("--label-a", metavar="TEXT", help="name of run A (default: its file name)")
    p.add_argument("--label-b", metavar="TEXT", help="name of run B (default: its file name)")
    p.add_argument("--body-mass-kg", type=float, metavar="KG",
                   help="runner's body mass, used for both raw runs (forces on one scale)")
    p.add_argument("--calibration", action="append", metavar="FILE",
                   help="a calibration file from `insole calibrate` (once per foot), for raw runs")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--n-boot", type=int, default=2000, metavar="N",
                   help="bootstrap resamples per run and metric (default 2000)")
    p.set_defaults(func=_cmd_compare)
