"""``insole history add|weeks|plot``: a runner's load per foot zone across weeks.

Thin: arguments in, calls into :mod:`insole.history`, text out. Also :func:`save_analysis`, which
``insole analyse --save`` calls.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from insole.errors import InsoleError

DEFAULT_ATHLETE = "default"


def _add_db_args(p: argparse.ArgumentParser, athlete_help: str) -> None:
    p.add_argument("--db", metavar="PATH|URL",
                   help="the history: an SQLite file, or postgresql://user@host/dbname "
                        "(default: $INSOLE_HISTORY_DB, else history.sqlite in your data directory)")
    p.add_argument("--athlete", metavar="NAME", help=athlete_help)


def register(sub) -> None:
    p = sub.add_parser("history", help="a runner's load per foot zone across weeks",
                       description="Store analysed runs, sum each foot zone's load per ISO week, "
                                   "and apply the 10 %, 30 %, acute:chronic and trend rules "
                                   "(docs/history.md).")
    hs = p.add_subparsers(dest="history_command", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    a = hs.add_parser("add", help="analyse and add runs (sessions, captures, analysis JSON, folders)")
    a.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="a recorded session, capture files of one run, an analysis JSON, or a "
                        "folder of runs")
    _add_db_args(a, f"whose runs these are (default {DEFAULT_ATHLETE!r})")
    a.add_argument("--date", metavar="ISO",
                   help="start of a run that carries no time of its own (a capture, an analysis "
                        "JSON): 2026-11-23 or 2026-11-23T07:30")
    a.add_argument("--body-mass-kg", type=float, metavar="KG", help="the runner's body mass")
    a.add_argument("--calibration", action="append", metavar="FILE",
                   help="a calibration file from `insole calibrate` (once per foot)")
    a.add_argument("--dask", metavar="ADDRESS",
                   help="analyse on this Dask scheduler (tcp://host:8786) instead of local processes")
    a.add_argument("--jobs", type=int, metavar="N", help="local worker processes (default: CPU count)")
    a.add_argument("--no-progress", action="store_true", help="no progress bar")
    a.set_defaults(func=_cmd_add)

    w = hs.add_parser("weeks", help="weekly load per zone, changes, ACWR and alerts")
    _add_db_args(w, "the athlete (needed when the history holds several)")
    w.add_argument("--json", metavar="PATH", help="write insole.history/1 JSON to PATH ('-' for stdout)")
    w.set_defaults(func=_cmd_weeks)

    pl = hs.add_parser("plot", help="weekly load and per-run trends as PNG and one HTML page")
    _add_db_args(pl, "the athlete (needed when the history holds several)")
    pl.add_argument("--out", required=True, metavar="DIR", help="folder for the PNGs and index.html")
    pl.set_defaults(func=_cmd_plot)


def _check_mass(kg: float | None) -> None:
    if kg is not None and not 20 <= kg <= 250:
        raise InsoleError(f"--body-mass-kg {kg} is outside 20-250 kg")


def _cmd_add(args: argparse.Namespace) -> int:
    from insole.history import HistoryStore
    from insole.history.ingest import (
        analyse_jobs,
        assign_dates,
        check_dask_address,
        find_runs,
        parse_date,
        run_record,
    )

    _check_mass(args.body_mass_kg)
    if args.dask:
        check_dask_address(args.dask)
    if args.jobs is not None and args.jobs < 1:
        raise InsoleError("--jobs must be at least 1")
    date = parse_date(args.date) if args.date else None
    jobs, skipped = find_runs(args.inputs)
    if not jobs:
        raise InsoleError("no runs found in " + ", ".join(args.inputs))
    assign_dates(jobs, date)
    athlete = args.athlete or DEFAULT_ATHLETE
    added = already = 0
    errors: list[str] = []
    notes: list[str] = []
    with HistoryStore.open(args.db) as store:
        results = analyse_jobs(jobs, args.body_mass_kg, args.calibration, args.dask, args.jobs)
        if not args.no_progress and len(jobs) > 1:
            from tqdm import tqdm

            results = tqdm(results, total=len(jobs), unit="run", desc="analysing", file=sys.stderr,
                           disable=None)
        for res in results:
            if res.error:
                errors.append(f"{res.job.label}: {res.error}")
                continue
            try:
                rec = run_record(res.analysis, res.job.start_time, res.job.label)
                out = store.add_run(rec, athlete)
            except InsoleError as e:
                errors.append(f"{res.job.label}: {e}")
                continue
            if out.added:
                added += 1
            else:
                already += 1
                if out.athlete != athlete:
                    notes.append(f"  {res.job.label}: already in the history as {out.athlete}'s run")
        where = store.where
    print(f"history {where}: {added} run(s) added for {athlete}, {already} already there"
          + (f", {len(errors)} failed" if errors else ""))
    for n in notes:
        print(n)
    if skipped:
        print(f"  skipped {len(skipped)} file(s) that are no run: " + ", ".join(skipped[:5])
              + (" ..." if len(skipped) > 5 else ""))
    for e in errors:
        print(f"insole history add: error: {e}", file=sys.stderr)
    return 2 if errors else 0


def _load_history(args: argparse.Namespace, with_analysis: bool = False):
    from insole.history import HistoryStore, weekly_history

    with HistoryStore.open(args.db, create=False) as store:
        athlete = store.resolve_athlete(args.athlete)
        runs = store.runs(athlete, with_analysis=with_analysis)
    return weekly_history(runs, athlete), runs


def _cmd_weeks(args: argparse.Namespace) -> int:
    doc, _ = _load_history(args)
    text = json.dumps(doc, indent=1, allow_nan=False, ensure_ascii=False)
    if args.json == "-":
        sys.stdout.write(text + "\n")
        return 0
    print(format_weeks(doc))
    if args.json:
        try:
            Path(args.json).write_text(text + "\n", encoding="utf-8")
        except OSError as e:
            raise InsoleError(f"cannot write {args.json}: {e.strerror}") from e
        print(f"history written to {args.json}")
    return 0


def format_weeks(doc: dict) -> str:
    lines = [f"insole history: {doc['athlete']}, {len(doc['weeks'])} week(s)"]
    for w in doc["weeks"]:
        feet = "; ".join(f"{s} {w['steps'][s]} steps, {sum(z.values()):.1f} BW·s"
                         for s, z in w["zone_load_bw_s"].items())
        lines.append(f"  {w['week']}: {w['runs']} run(s), {w['duration_s'] / 60:.1f} min; {feet}")
    if doc["alerts"]:
        lines.append(f"Alerts ({len(doc['alerts'])}):")
        for a in doc["alerts"]:
            lines.append(f"  [{a['rule']}] {a['message']}")
    else:
        lines.append("Alerts: none.")
    return "\n".join(lines)


def _cmd_plot(args: argparse.Namespace) -> int:
    from insole.history.plot import write_plots

    doc, runs = _load_history(args)
    files = write_plots(doc, runs, args.out)
    for f in files.values():
        print(f"wrote {f}")
    return 0


def save_analysis(doc: dict, inputs: list[str], db: str | None, athlete: str | None,
                  date: str | None) -> str:
    """``insole analyse --save``: add the analysis just made to the history; returns a line."""
    from insole.history import HistoryStore
    from insole.history.ingest import assign_dates, find_runs, parse_date, run_record

    jobs, _ = find_runs(inputs)
    if len(jobs) != 1:
        raise InsoleError("--save adds one run: give one session, or the captures of one run")
    assign_dates(jobs, parse_date(date) if date else None)
    rec = run_record(doc, jobs[0].start_time, jobs[0].label)
    athlete = athlete or DEFAULT_ATHLETE
    with HistoryStore.open(db) as store:
        out = store.add_run(rec, athlete)
        where = store.where
    state = "added to" if out.added else "already in"
    return f"run {state} the history {where} (athlete {out.athlete}, week {rec.week})"
