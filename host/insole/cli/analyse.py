"""``insole analyse``: load captures or sessions, analyse, print a summary a runner can read."""

from __future__ import annotations

import argparse
import ctypes
import sys
from pathlib import Path

from insole.analysis import run_paths
from insole.errors import InsoleError


def format_summary(doc: dict) -> str:
    lines = []
    feet = doc["feet"]
    body = doc["body"]
    lines.append(f"insole analysis: {', '.join(feet)} foot/feet; body weight {body['body_weight_n']:.0f} N "
                 f"({body['source']})")
    for side, f in feet.items():
        s = f["summary"]
        sc = s["strike_counts"]
        n = max(1, s["steps"])
        strike = ", ".join(f"{k} {100 * v / n:.0f}%" for k, v in sc.items() if v)
        lines.append(f"  {side:5s}: {s['steps']} steps over {s['duration_s']:.0f} s, cadence "
                     f"{_fmt(s['cadence_spm'], '.0f')} spm, contact {_fmt(s['contact_ms_median'], '.0f')} ms, "
                     f"strike {strike or 'n/a'}")
        zs = s["zone_impulse_share_median"]
        lines.append(f"         loading rate {_fmt(s['valr_bw_per_s_median_rearfoot'], '.0f')} BW/s on heel strikes, "
                     f"forefoot {_pct(s['metatarsal_share_median'])} of each step, arch {_pct(zs.get('arch'))}")
        q = f["quality"]
        lines.append(f"         data: {q['packets_lost']} packets lost, {q['samples_dropped']} samples "
                     f"dropped on the device, {q['samples_missing']} samples missing, "
                     f"{q['decode_errors']} damaged frames"
                     + (f", faulty sensors: {', '.join(q['sensor_faults'])}" if q["sensor_faults"] else "")
                     + (f", link lost and back {q['link_reconnects']} time(s) "
                        f"({q.get('link_disconnected_s', 0.0):.1f} s away)"
                        if q.get("link_reconnects") else "")
                     + f"; calibration: {q['calibration']}")
        no_ic = sum((s.get("steps_lost") or {}).get("ic_s", {}).values())
        if no_ic:
            why = q["sensor_fault_reasons"].get("heel", "faulty").split(":")[0]
            lines.append(f"         {no_ic} steps without their initial contact, contact time, strike "
                         f"and loading rate: the heel sensor {why}")
        sb = q.get("swing_baseline_n") or {}
        if sb.get("subtracted"):
            lines.append("         swing baseline (pre-load) removed: " + ", ".join(
                f"{z} {sb['median_n'][z]:.0f} N" for z in sb["subtracted"]))
    sym = doc["summary"].get("symmetry_index_pct")
    if sym:
        lines.append("  left/right symmetry: " + ", ".join(f"{k} {v:+.1f}%" for k, v in sym.items()))
    if doc["flags"]:
        lines.append("Flags:")
        for fl in doc["flags"]:
            lines.append(f"  [{fl['severity']}] {fl['code']} ({fl['side']}, {fl['rule']}): {fl['message']}")
    else:
        lines.append("Flags: none of heel_strike_force, forefoot_overload, arch_collapse.")
    for n in doc.get("notes", []):
        lines.append(f"  note: {n}")
    return "\n".join(lines)


def _fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def _pct(v):
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _tune_allocator() -> None:
    """glibc only: keep freed large blocks for reuse instead of giving each back to the system.

    The analysis makes arrays of a few MB per chunk; by default glibc maps each one fresh
    (mmap above 128 kB), so its pages are faulted in and zeroed again every chunk: about 0.6 s
    of system time on a 2-hour capture, gone with these two settings (measured, BENCHMARKS.md).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return  # not glibc: nothing to tune
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is not None:
        mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: blocks up to 32 MB come from the heap
        mallopt(-1, 128 << 20)  # M_TRIM_THRESHOLD: keep up to 128 MB free on the heap


def _cmd_analyse(args: argparse.Namespace) -> int:
    if args.body_mass_kg is not None and not 20 <= args.body_mass_kg <= 250:
        raise InsoleError(f"--body-mass-kg {args.body_mass_kg} is outside 20-250 kg")
    if args.json and args.json != "-":
        # say so before the work, not after it
        parent = Path(args.json).resolve().parent
        if not parent.is_dir():
            raise InsoleError(f"cannot write {args.json}: {parent} does not exist")
    _tune_allocator()  # the worker processes are forked from this one: they inherit it
    result = run_paths(args.inputs, args.body_mass_kg, args.calibration)
    if args.save:
        from insole.cli.history import save_analysis
        saved = save_analysis(result.document(), args.inputs, args.db, args.athlete, args.date)
        print(saved, file=sys.stderr if args.json == "-" else sys.stdout)
    if args.json == "-":
        result.write_json(sys.stdout.buffer)
        sys.stdout.flush()
        return 0
    if args.json:
        try:
            with open(args.json, "wb") as f:
                result.write_json(f)
        except OSError as e:
            raise InsoleError(f"cannot write {args.json}: {e.strerror}") from e
    print(format_summary(result.head))
    if args.json:
        print(f"analysis written to {args.json}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("analyse", aliases=["analyze"], help="analyse captures or recorded sessions",
                       description="Steps, per-step metrics, data quality and the three flags "
                                   "(heel_strike_force, forefoot_overload, arch_collapse).")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="a raw serial capture (.bin) or a recorded session directory; one per foot")
    p.add_argument("--json", metavar="PATH", help="write the analysis as JSON to PATH ('-' for stdout)")
    p.add_argument("--body-mass-kg", type=float, metavar="KG",
                   help="runner's body mass; without it, the stride-average identity estimates it")
    p.add_argument("--calibration", action="append", metavar="FILE",
                   help="a calibration file from `insole calibrate` (once per foot)")
    p.add_argument("--save", action="store_true", help="also add the run to the history "
                   "(`insole history`; --db, --athlete, --date as there)")
    p.add_argument("--db", metavar="PATH|URL", help="with --save: the history database")
    p.add_argument("--athlete", metavar="NAME", help="with --save: whose run (default 'default')")
    p.add_argument("--date", metavar="ISO", help="with --save: start of a run given as captures")
    p.set_defaults(func=_cmd_analyse)
