"""``insole score``: an analysis against ground truth, as a table (and JSON)."""

from __future__ import annotations

import json
from pathlib import Path

from insole.errors import InputFileError
from insole.validation.score import DEFAULT_TOLERANCE_S, score


def _load(path: str, what: str) -> dict:
    p = Path(path)
    try:
        return json.loads(p.read_text())
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such {what} file") from None
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise InputFileError(f"{path}: not a JSON {what} file ({e})") from e


def _fmt(v, spec=".2f") -> str:
    return "-" if v is None else format(v, spec)


def format_table(result: dict) -> str:
    """A readable table of a :func:`score` result."""
    head = (f"{'foot':9s} {'true':>5s} {'det':>5s} {'tp':>5s} {'fp':>4s} {'fn':>4s} {'F1':>6s} "
            f"{'IC med':>7s} {'IC p95':>7s} {'TO med':>7s} {'TO p95':>7s} {'CT med':>7s} {'strike':>7s} {'uncl':>5s}")
    lines = [f"score of {result.get('scenario') or 'analysis'} (match within {result['tolerance_ms']:g} ms; "
             "errors in ms, |detected - true|; strike: agreement over classified steps, uncl: "
             "steps left unclassified)", head]
    rows = [*result["feet"].items(), ("both", result["combined"])]
    for name, r in rows:
        st = r["strike"]["agreement"]
        lines.append(f"{name:9s} {r['n_true']:5d} {r['n_detected']:5d} {r['tp']:5d} {r['fp']:4d} {r['fn']:4d} "
                     f"{r['f1']:6.3f} {_fmt(r['ic_error_ms']['median']):>7s} {_fmt(r['ic_error_ms']['p95']):>7s} "
                     f"{_fmt(r['to_error_ms']['median']):>7s} {_fmt(r['to_error_ms']['p95']):>7s} "
                     f"{_fmt(r['contact_error_ms']['median']):>7s} "
                     f"{(_fmt(100 * st, '.0f') + '%') if st is not None else '-':>7s} "
                     f"{r['strike']['unclassified']:5d}")
    on_to = [f"{name} {r['matched_on_toe_off']}" for name, r in rows[:-1] if r.get("matched_on_toe_off")]
    if on_to:
        lines.append("matched on the toe-off (the analysis lost their initial contact; not in the IC "
                     "errors): " + ", ".join(on_to))
    fl = result["flags"]
    for e in fl["expected"]:
        state = ("present" if e["present"] else "MISSING" if e.get("evaluable", True)
                 else "not evaluable (the analysis evaluated no flags there: too few steps)")
        lines.append(f"expected flag {e['code']} ({e['side'] or 'any side'}): {state}")
    for a in fl["absent"]:
        lines.append(f"absent flag {a['code']}: "
                     + ("absent" if a["absent"] else f"PRESENT on {', '.join(a['found_on'])}"))
    for k, v in result["ok"].items():
        if k != "flags" or fl["expected"] or fl["absent"]:
            lim = result["criteria"].get(k)
            lines.append(f"{k}{'' if lim is None else f' {lim:g}'}: {'ok' if v else 'FAILED'}")
    return "\n".join(lines)


def _cmd_score(args) -> int:
    analysis = _load(args.analysis, "analysis")
    truth = _load(args.truth, "truth")
    crit = {}
    for name in ("f1_min", "ic_median_ms_max", "to_median_ms_max", "contact_median_ms_max",
                 "strike_agreement_min"):
        v = getattr(args, name)
        if v is not None:
            crit[name] = v
    if not args.tolerance_ms > 0:
        raise InputFileError("--tolerance-ms must be positive")
    result = score(analysis, truth, args.tolerance_ms / 1e3, crit)
    if args.json:
        text = json.dumps(result, indent=1)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    if args.json != "-":
        print(format_table(result))
    return 0 if result["passed"] else 1


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "score", help="score an analysis against ground truth (steps, timing, strike, flags)",
        description="Match detected steps to true steps by initial contact and report F1, timing "
                    "errors, strike agreement and flags. Exit 1 if a --require-* check or a flag "
                    "check fails.")
    p.add_argument("analysis", metavar="ANALYSIS.json", help="from `insole analyse --json`")
    p.add_argument("truth", metavar="TRUTH.json", help="from `insole sim --truth` or `insole convert`")
    p.add_argument("--tolerance-ms", type=float, default=DEFAULT_TOLERANCE_S * 1e3,
                   help="match initial contacts within this many ms (default 20)")
    p.add_argument("--require-f1", dest="f1_min", type=float, metavar="X",
                   help="fail unless step F1 >= X on each foot and combined")
    p.add_argument("--require-ic-median-ms", dest="ic_median_ms_max", type=float, metavar="MS",
                   help="fail unless the median |IC error| <= MS")
    p.add_argument("--require-to-median-ms", dest="to_median_ms_max", type=float, metavar="MS",
                   help="fail unless the median |TO error| <= MS")
    p.add_argument("--require-contact-median-ms", dest="contact_median_ms_max", type=float, metavar="MS",
                   help="fail unless the median |contact-time error| <= MS")
    p.add_argument("--require-strike", dest="strike_agreement_min", type=float, metavar="FRAC",
                   help="fail unless strike agreement >= FRAC (steps with a known true strike)")
    p.add_argument("--json", metavar="PATH", help="also write the score as JSON ('-': stdout only)")
    p.set_defaults(func=_cmd_score)
