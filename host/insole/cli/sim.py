"""``insole sim``: run a simulated insole (or two) into capture files or pseudo-terminals."""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import threading
from pathlib import Path

from insole.sim.device import (
    SimulatorError,
    check_duration,
    check_rate,
    get_scenario,
    simulate,
    truth_document,
    write_capture,
    write_truth,
)
from insole.sim.scenarios import SCENARIOS

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sim", help="simulate a run: insoles on pseudo-terminals or into capture files",
        description="Simulate one or two insoles running a scenario, speaking the exact wire "
                    "protocol, into capture files (--out) or live on pseudo-terminals (--pty). "
                    "Scenarios: " + "; ".join(f"{k}: {v.description}" for k, v in SCENARIOS.items()))
    add_arguments(p)
    p.set_defaults(func=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The simulator's options (also used by ``tools/firmware_loop.py``, firmware in the loop)."""
    p.add_argument("scenario", metavar="SCENARIO", help=", ".join(SCENARIOS))
    p.add_argument("--side", default="both", help="left, right or both (default both)")
    p.add_argument("--duration-s", default="180", metavar="S", help="seconds of running (default 180)")
    p.add_argument("--rate-hz", default="500", metavar="R", help="sample rate, 25-1000 (default 500)")
    p.add_argument("--seed", default="1", metavar="N", help="random seed (default 1)")
    p.add_argument("--body-mass-kg", default=None, metavar="KG", help="the runner's mass")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--pty", action="store_true",
                     help="stream in real time on one pseudo-terminal per foot; prints 'left /dev/pts/N'")
    out.add_argument("--out", metavar="PATH",
                     help="write as fast as possible: the capture file (one side) or a directory "
                          "holding left.bin and right.bin (both)")
    p.add_argument("--truth", metavar="PATH", help="write the ground truth (JSON) here")
    p.add_argument("--speed", default="1", metavar="X", help="with --pty: run X times real time")
    f = p.add_argument_group("faults")
    f.add_argument("--loss-pct", default=None, metavar="P", help="drop P %% of frames")
    f.add_argument("--corrupt-pct", default=None, metavar="P", help="damage one byte in P %% of frames")
    f.add_argument("--garbage-pct", default=None, metavar="P",
                   help="a burst of random bytes before P %% of frames (it can cost the frame after it)")
    f.add_argument("--garbage-bytes", default=None, metavar="N", help="longest burst (default 64)")
    f.add_argument("--replug-at", action="append", default=None, metavar="S",
                   help="with --pty: unplug the port at S s of device time and plug it back after "
                        "--replug-gap-s (repeatable); the port is then a link, printed instead of "
                        "/dev/pts/N, to whichever pty is current")
    f.add_argument("--replug-gap-s", default="1.5", metavar="S",
                   help="how long the port stays unplugged (default 1.5 s)")
    f.add_argument("--overrun-at", action="append", default=None, metavar="S",
                   help="the device drops sample sets at S s (repeatable)")
    f.add_argument("--overrun-ms", default=None, metavar="MS", help="length of each overrun (default 100)")
    f.add_argument("--disconnect-sensor", default=None, metavar="ZONE",
                   help="this zone's channel reads 0 V from --disconnect-at-s on")
    f.add_argument("--disconnect-at-s", default=None, metavar="S", help="default: half the run")
    f.add_argument("--noise-mv", default=None, metavar="MV", help="RMS sensor noise (default 2 mV)")
    f.add_argument("--drift-ppm", default=None, metavar="PPM",
                   help="device clock error (default: random within ±50 ppm per foot)")
    f.add_argument("--preload-n", default=None, metavar="N",
                   help="lacing pre-load on every zone, also in swing (0.5-1.5 x N per zone; default 0)")
    f.add_argument("--adc-floor-mv", default=None, metavar="MV",
                   help="readings below this read 0 (default: the board's ADC, 150 mV; 0 off)")
    f.add_argument("--hysteresis-pct", default=None, metavar="P", help="FSR hysteresis (default 4; 0 off)")
    f.add_argument("--creep-pct", default=None, metavar="P",
                   help="FSR creep per e-fold of run time over 60 s (default 2; 0 off)")


def _num(value, name: str, kind=float):
    if value is None:
        return None
    try:
        v = kind(value)
    except (TypeError, ValueError):
        raise SimulatorError(f"--{name} expects a number, got {value!r}") from None
    if isinstance(v, float) and not math.isfinite(v):
        raise SimulatorError(f"--{name} expects a finite number, got {value!r}")
    return v


def feet_from_args(args: argparse.Namespace) -> tuple[dict, float]:
    """The simulated feet ``{side: SimFoot}`` the options ask for, and the --speed factor; writes
    the truth file when asked."""
    get_scenario(args.scenario)
    sides = {"both": ("left", "right"), "left": ("left",), "right": ("right",)}.get(args.side)
    if sides is None:
        raise SimulatorError(f"--side must be left, right or both, not {args.side!r}")
    duration_s = check_duration(args.duration_s)
    rate_hz = check_rate(args.rate_hz)
    seed = _num(args.seed, "seed", int)
    speed = _num(args.speed, "speed")
    if speed <= 0:
        raise SimulatorError(f"--speed must be > 0, got {args.speed}")
    if not args.pty and not args.out:
        raise SimulatorError("say where the insoles go: --pty (live) or --out PATH (files)")
    faults = {
        "loss_pct": _num(args.loss_pct, "loss-pct"),
        "corrupt_pct": _num(args.corrupt_pct, "corrupt-pct"),
        "garbage_pct": _num(args.garbage_pct, "garbage-pct"),
        "garbage_bytes": _num(args.garbage_bytes, "garbage-bytes"),
        "overrun_at": [_num(x, "overrun-at") for x in args.overrun_at] if args.overrun_at else None,
        "overrun_ms": _num(args.overrun_ms, "overrun-ms"),
        "disconnect_sensor": args.disconnect_sensor,
        "disconnect_at_s": _num(args.disconnect_at_s, "disconnect-at-s"),
        "noise_mv": _num(args.noise_mv, "noise-mv"),
        "drift_ppm": _num(args.drift_ppm, "drift-ppm"),
        "preload_n": _num(args.preload_n, "preload-n"),
        "adc_floor_mv": _num(args.adc_floor_mv, "adc-floor-mv"),
        "hysteresis_pct": _num(args.hysteresis_pct, "hysteresis-pct"),
        "creep_pct": _num(args.creep_pct, "creep-pct"),
    }
    faults = {k: v for k, v in faults.items() if v is not None}
    mass = _num(args.body_mass_kg, "body-mass-kg")
    feet = {s: simulate(args.scenario, s, duration_s, rate_hz=rate_hz, seed=seed,
                        body_mass_kg=mass, **faults) for s in sides}
    if args.truth:
        write_truth(args.truth, truth_document(feet))
    return feet, speed


def run(args: argparse.Namespace) -> int:
    feet, speed = feet_from_args(args)
    sides = tuple(feet)
    if args.pty:
        return _run_pty(feet, speed, _replugs(args, feet))
    out = Path(args.out)
    if len(sides) == 1:
        if out.is_dir():
            raise SimulatorError(f"{out} is a directory; with one side --out names the capture file")
        if out.parent and not out.parent.is_dir():
            raise SimulatorError(f"{out.parent} does not exist")
        n = write_capture(out, feet[sides[0]])
        print(f"{sides[0]} {out} {n} bytes")
        return 0
    if out.suffix == ".bin":
        raise SimulatorError(f"--side {args.side} writes one capture per foot into a directory: "
                             f"give --out DIR, not {out.name}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SimulatorError(f"{out}: cannot make the output directory ({e.strerror})") from e
    for s in sides:
        n = write_capture(out / f"{s}.bin", feet[s])
        print(f"{s} {out / f'{s}.bin'} {n} bytes")
    return 0


def _replugs(args, feet: dict) -> list[tuple[float, float]]:
    at = [_num(x, "replug-at") for x in (args.replug_at or [])]
    if not at:
        return []
    if not args.pty:
        raise SimulatorError("--replug-at needs --pty (a port to unplug)")
    gap = _num(args.replug_gap_s, "replug-gap-s")
    duration = next(iter(feet.values())).duration_s
    if not 0 < gap <= 600:
        raise SimulatorError(f"--replug-gap-s must be in (0, 600] s, got {gap:g}")
    for t in at:
        if not 0 < t < duration:
            raise SimulatorError(f"--replug-at {t:g} s is outside the run (0-{duration:g} s)")
    return [(t, gap) for t in sorted(at)]


def _run_pty(feet: dict, speed: float, replugs: list | None = None) -> int:
    import shutil
    import tempfile

    from insole.sim.pty import Device, Pty, stream

    stop = threading.Event()
    interrupted = threading.Event()
    ports = {}

    def on_term(*_):
        interrupted.set()
        stop.set()

    prev_term = None
    link_dir = tempfile.mkdtemp(prefix="insole-sim-") if replugs else None
    try:
        for s in feet:
            ports[s] = Pty.open(link=f"{link_dir}/{s}" if link_dir else None)
        if threading.current_thread() is threading.main_thread():
            prev_term = signal.signal(signal.SIGTERM, on_term)
        for s in feet:
            print(f"{s} {ports[s].path}")
        sys.stdout.flush()
        try:
            devices = {s: Device(feet[s], ports[s], replugs) for s in feet}
            stream(feet, ports, stop, speed=speed, devices=devices)
        except KeyboardInterrupt:
            interrupted.set()
            stop.set()
        for s, p in ports.items():
            log.info("%s: %d frames sent, %d dropped (no reader), %d bytes", s, p.frames_sent,
                     p.frames_dropped, p.bytes_sent)
    finally:
        for p in ports.values():
            p.close(drain_s=0.0 if interrupted.is_set() else 2.0)
        if link_dir:
            shutil.rmtree(link_dir, ignore_errors=True)
        if prev_term is not None:
            signal.signal(signal.SIGTERM, prev_term)
    return 0
