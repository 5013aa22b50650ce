"""``insole record``: record one or two sources into a session directory, Ctrl-C to stop.

Steps and flags are printed as they happen (the streaming analysis runs on every chunk as it
is recorded); ``--quiet`` silences them and the progress lines.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from insole.analysis.document import LiveFeed
from insole.errors import InsoleError
from insole.io.ble import expand_urls
from insole.io.recorder import Recorder, return_freed_memory_promptly


def _fmt(v, spec: str) -> str:
    return "  -" if v is None else format(v, spec)


def format_event(kind: str, side: str, payload) -> str:
    """One line per decided step, or the foot's flags when they change."""
    if kind == "step":
        st = payload
        if st["ic_s"] is None:  # a dead heel sensor: the contact was not seen (docs/analysis.md)
            return f"{side:5s} step to {st['to_s']:8.2f} s: contact not seen (heel reads 0 V under load)"
        return (f"{side:5s} step at {st['ic_s']:8.2f} s: contact {st['contact_ms']:5.0f} ms, "
                f"peak {_fmt(st['peak_force_bw'], '4.2f')} BW, loading rate "
                f"{_fmt(st['valr_bw_per_s'], '5.1f')} BW/s, {st['strike'] or 'incomplete (data gap)'}")
    if not payload:
        return f"{side:5s} flags: none"
    return "\n".join(f"{side:5s} FLAG {fl['code']} ({fl['rule']}, {fl['severity']}): {fl['message']}"
                     for fl in payload)


def _progress(workers, elapsed):
    parts = []
    for w in workers:
        d = w.decoder
        parts.append(f"{w.side or '?'}: {d.packets} packets, {d.error_count} bad frames")
        if hasattr(w.source, "ledger"):
            lg = w.source.ledger()
            parts[-1] += (f", {lg['reconnects']} reconnects, {lg['disconnected_s']:.1f} s disconnected"
                          + ("" if getattr(w.source, "connected", True) else ", RECONNECTING"))
        if w.fault:
            parts[-1] += f", FAULT {w.fault}"
    print(f"[{elapsed:6.1f} s] " + "; ".join(parts), file=sys.stderr, flush=True)


def _cmd_record(args: argparse.Namespace) -> int:
    args.sources = expand_urls(args.sources)  # ble:// alone: every insole advertising
    if len(args.sources) > 2:
        raise InsoleError("give one or two sources (one per foot)")
    if args.body_mass_kg is not None and not 20 <= args.body_mass_kg <= 250:
        raise InsoleError(f"--body-mass-kg {args.body_mass_kg} is outside 20-250 kg")

    lock = threading.Lock()  # one worker thread per source prints: whole lines only

    def _print_event(kind, side, payload):
        with lock:
            sys.stdout.write(format_event(kind, side, payload) + "\n")
            sys.stdout.flush()

    return_freed_memory_promptly()  # a recording's memory stays flat (io/recorder.py)
    live = None if args.quiet else LiveFeed(_print_event, args.body_mass_kg)
    rec = Recorder(args.sources, args.out, args.duration_s, live=live)
    interrupted = []

    def _stop(signum, frame):  # only sets an event: the recorder closes the session itself
        interrupted.append(signum)
        rec.request_stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C interrupts

    old = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        res = rec.run(progress=None if args.quiet else _progress)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    if interrupted:
        print("insole record: stopped; session closed cleanly", file=sys.stderr)
    faults = 0
    for w in res["workers"]:
        d = w.decoder
        line = (f"{w.source.url}: {w.bytes} bytes, {d.packets} packets, {d.error_count} bad frames"
                + (f", side {w.side}" if w.side else ""))
        lg = w.source.ledger() if hasattr(w.source, "ledger") else {}
        if lg.get("reconnects"):
            line += (f"; the link was lost and came back {lg['reconnects']} time(s), "
                     f"{lg['disconnected_s']:.1f} s away (a gap in the data, counted)")
        if w.fault:
            faults += 1
            line += f"; FAULT: {w.fault} (everything received before it is kept)"
        if w.analysis_fault:
            line += f"; live analysis stopped: {w.analysis_fault} (the recording is whole)"
        print(line)
    print(f"session written to {args.out}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("record", help="record one or two sources into a session directory",
                       description="Append every chunk as received, with the host receive time, "
                                   "to DIR. Ctrl-C stops cleanly.")
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="serial:///dev/ttyUSB0, ble:// (both feet), ble://Insole-L, "
                        "file://capture.bin, sim://easy-run?side=left, ...")
    p.add_argument("--out", required=True, metavar="DIR", help="new session directory")
    p.add_argument("--duration-s", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--body-mass-kg", type=float, metavar="KG",
                   help="runner's body mass for the live BW figures (else estimated as you run)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no steps, flags or progress lines as they happen")
    p.set_defaults(func=_cmd_record)
