"""``insole calibrate`` (guided standing trial) and ``insole calibrate-bench`` (bench weights)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

from insole import protocol as P
from insole.io.sources import LIVE_SCHEMES
from insole.io.trial import load_trial
from insole.model.calibration import CalibrationError, load
from insole.model.fits import (
    CHECK_TOLERANCE_PCT,
    MIN_PHASE_S,
    TRANSITION_S,
    TRIAL_PHASES,
    bench_calibration,
    check_standing,
    fit_standing,
    trial_phases,
)


def _positive_mass(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 20 <= v <= 250:
        raise argparse.ArgumentTypeError(f"{v:g} kg is not a plausible body mass (20-250)")
    return v


def _phase_seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 4 <= v <= 120:
        raise argparse.ArgumentTypeError(f"{v:g} s per phase: use 4-120 s (steady parts shorter "
                                         f"than {MIN_PHASE_S:g} s cannot be found)")
    return v


def _guide(inputs: list[str], assume_yes: bool, phases=TRIAL_PHASES, out=sys.stdout) -> float:
    """Print the trial's prompts; for live sources wait for Enter. Returns seconds to record."""
    live = any(u.startswith(LIVE_SCHEMES) for u in inputs)
    total = sum(d for _, d, _ in phases) + TRANSITION_S * (len(phases) - 1) + 4.0
    print("Standing calibration trial: shoes on, insoles in, laces as for running.", file=out)
    for i, (name, dur, prompt) in enumerate(phases, 1):
        print(f"  {i}. {prompt} ({dur:.0f} s)", file=out)
    if not live:
        print(f"Reading the recorded trial from {', '.join(inputs)}.", file=out)
        return 0.0
    if not assume_yes:
        try:
            input("Press Enter to start, then follow the cues... ")
        except EOFError:
            raise CalibrationError("no terminal to confirm on; pass --yes to start at once") from None
    return total


def _cmd_calibrate(args) -> int:
    if len(args.sources) > 2:
        raise CalibrationError("give one source per foot (at most two)")
    phases = trial_phases(args.phase_s)
    seconds = _guide(args.sources, args.yes, phases)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    session = Path(args.session) if args.session else Path(args.out_dir) / f"stand-trial-{stamp}"
    feet = load_trial(args.sources, seconds, session, phases)
    if seconds:
        print(f"the raw trial is in {session} (calibrate again from it: insole calibrate {session} ...)")
    if args.check:
        cals = {c.side: c for c in map(load, args.check)}
        res = check_standing(feet, args.body_mass_kg, cals)
        worst = 0.0
        for side, d in res.items():
            print(f"{side}: " + ", ".join(f"{k.replace('_', ' ')} {v:+.1f} %" for k, v in d.items()))
            worst = max([worst] + [abs(v) for v in d.values()])
        ok = worst <= args.tolerance_pct
        print(f"calibration {'holds' if ok else 'does NOT hold'}: worst error {worst:.1f} % "
              f"(tolerance {args.tolerance_pct:g} %)")
        return 0 if ok else 1
    priors = {}
    for p in args.bench or []:
        cal = load(p)
        priors[cal.side] = cal
    cals = fit_standing(feet, args.body_mass_kg, priors)
    written = []
    for side, cal in cals.items():
        if args.out and len(cals) == 1:
            path = Path(args.out)
        else:
            path = Path(args.out_dir) / f"calibration-{side}.json"
        cal.save(path)
        written.append(path)
        ch = cal.checks
        print(f"{side}: scale {ch['scale']:.3f} x prior, k "
              + ", ".join(f"{z} {k:.3g}" for z, (k, _) in cal.channels.items())
              + f" N·Ω; steady within {ch['loaded_rms_pct']:.1f} % on one foot, "
              f"{ch['both_phase_share_pct']:.0f} % of body weight on both feet")
    any_cal = next(iter(cals.values()))
    if "both_feet_sum_error_pct" in any_cal.checks:
        print(f"check: both feet together carry body weight within {any_cal.checks['both_feet_sum_error_pct']:+.1f} %")
    else:
        print("check: only one foot given, so the both-feet sum could not be checked")
    for p in written:
        print(f"wrote {p}")
    return 0


def _cmd_bench(args) -> int:
    cal = bench_calibration(args.table, args.side, args.device_id or "", args.supply_mv, args.r_fixed_ohm)
    out = Path(args.out or f"bench-{args.side}.json")
    cal.save(out)
    for zone, (k, beta) in cal.channels.items():
        print(f"{zone}: k {k:.4g} N·Ω, β {beta:.3f}, fit within {cal.checks['fit_rms_pct'][zone]:.1f} % rms")
    print(f"wrote {out}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "calibrate", help="guided standing trial: fit or check the force calibration",
        description="Fit one force scale per foot from a standing trial (both feet, then left, then "
                    "right) with a known body mass, and write calibration-<side>.json; or --check "
                    "existing calibration files against the trial.")
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="one per foot: a capture or session (file://), serial://PORT, or sim://stand")
    p.add_argument("--body-mass-kg", type=_positive_mass, required=True, metavar="KG")
    p.add_argument("--bench", action="append", metavar="FILE",
                   help="bench calibration of a foot (keeps its per-channel k ratios and beta)")
    p.add_argument("--check", action="append", metavar="FILE",
                   help="check these calibration files instead of fitting (exit 1 if off)")
    p.add_argument("--tolerance-pct", type=float, default=CHECK_TOLERANCE_PCT)
    p.add_argument("--out-dir", default=".", help="where calibration-<side>.json go (default: here)")
    p.add_argument("--out", help="file name when calibrating one foot")
    p.add_argument("--phase-s", type=_phase_seconds, default=10.0, metavar="S",
                   help="seconds of each phase of a live trial (default 10, at least 4)")
    p.add_argument("--session", metavar="DIR",
                   help="where a live trial is recorded (default: OUT_DIR/stand-trial-<time>)")
    p.add_argument("-y", "--yes", action="store_true", help="start at once, no confirmation")
    p.set_defaults(func=_cmd_calibrate)

    b = subparsers.add_parser(
        "calibrate-bench", help="fit k and beta per channel from known weights on the bench",
        description="Fit F = k*G^beta per channel from a CSV of zone, mass_kg (or force_n), "
                    "ohms (or volts); see hardware/README.md, 'Bench calibration'.")
    b.add_argument("table", metavar="TABLE.csv")
    b.add_argument("--side", choices=P.SIDES, required=True)
    b.add_argument("--device-id", default="")
    b.add_argument("--supply-mv", type=float, help="divider supply for a volts column (default: pinmap.json)")
    b.add_argument("--r-fixed-ohm", type=float, help="divider resistor for a volts column (default: pinmap.json)")
    b.add_argument("--out", help="output file (default bench-<side>.json)")
    b.set_defaults(func=_cmd_bench)
