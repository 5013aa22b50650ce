"""``insole live``: the live window over one or two sources, optionally recording."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from insole.errors import InsoleError


def _cmd_live(args: argparse.Namespace) -> int:
    from insole.live import LiveFeed, StreamingSteps, run_headless, run_window
    from insole.model import calibration

    if len(args.sources) > 2:
        raise InsoleError("give one or two sources (one per foot)")
    if args.headless and not args.frames:
        raise InsoleError("--headless needs --frames N")
    if args.frames is not None and args.frames < 1:
        raise InsoleError("--frames must be at least 1")
    if not 1 <= args.fps <= 120:
        raise InsoleError(f"--fps {args.fps} is outside 1-120")
    if args.body_mass_kg is not None and not 20 <= args.body_mass_kg <= 250:
        raise InsoleError(f"--body-mass-kg {args.body_mass_kg} is outside 20-250 kg")
    cals = {}
    for f in args.calibration or []:
        cal = calibration.load(f)
        cals[cal.side] = cal
    analysis = StreamingSteps(body_mass_kg=args.body_mass_kg, calibrations=cals)
    feed = LiveFeed(args.sources, record_dir=args.record, speed=args.speed, analysis=analysis,
                    calibrations=cals).start()
    # SIGTERM closes the window (and the recording) as closing it by hand would
    stop = threading.Event()
    old = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if args.headless:
            res = run_headless(feed, args.frames, fps=args.fps, png=args.png, stop=stop,
                               record_dir=args.record)
        else:
            res = run_window(feed, fps=args.fps, png=args.png, frames=args.frames, stop=stop,
                             record_dir=args.record)
    finally:
        signal.signal(signal.SIGTERM, old)
    s = res.stats.summary()
    print(f"{s['frames']} frames at {s['fps']} frames/s ({s['frames_skipped']} skipped), "
          f"draw {s['draw_ms_median']} ms median, sample-to-screen lag {s['lag_ms_median']} ms median, "
          f"{s['lag_ms_p95']} ms p95", file=sys.stderr)
    for side, foot in res.feed.feet.items():
        print(f"{side}: {foot.packets} packets, {foot.packets_lost} lost, {foot.decode_errors} bad frames, "
              f"{foot.steps_total} steps, flags: {', '.join(f['code'] for f in foot.flags) or 'none'}",
              file=sys.stderr)
    if args.stats_json:
        print(json.dumps(s))
    if res.png:
        print(f"last frame written to {res.png}")
    if args.record:
        print(f"session written to {args.record}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("live", help="show one or two feet live (and record them)",
                       description="A window with, per foot, the zone forces over the last seconds, "
                                   "the foot map coloured by the current force with the centre-of-"
                                   "pressure trail, the latest cadence, contact time, strike and "
                                   "loading rate, the flags as they rise and a status line.")
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="serial:///dev/ttyUSB0, file://capture.bin, sim://heel-striker?side=left, ...")
    p.add_argument("--record", metavar="DIR", help="record into this new session directory while showing")
    p.add_argument("--speed", type=float, default=1.0, metavar="X",
                   help="replay speed for file:// and sim:// sources (default 1, real time)")
    p.add_argument("--fps", type=float, default=30.0, help="frames per second (default 30)")
    p.add_argument("--body-mass-kg", type=float, metavar="KG", help="runner's body mass (for BW units)")
    p.add_argument("--calibration", action="append", metavar="FILE",
                   help="a calibration file from `insole calibrate` (once per foot)")
    p.add_argument("--headless", action="store_true", help="draw on Agg, no window (needs --frames)")
    p.add_argument("--frames", type=int, metavar="N",
                   help="stop after N frames (the window closes itself; --png saves the last)")
    p.add_argument("--png", metavar="PATH", help="save the last frame as a PNG")
    p.add_argument("--stats-json", action="store_true", help="print the frame statistics as JSON")
    p.set_defaults(func=_cmd_live)
