"""A standalone virtual radio with two virtual insoles, for demos and manual runs.

    python -m tests.support.serve --scenario heel-striker --seconds 30 --truth OUT/truth.json
           [--firmware] [--seed 1] [--speed 1] [--port 0] [--insole-keys FILE] [--window-s 60]

Listens on 127.0.0.1 only and prints one line ``hci tcp-client:127.0.0.1:PORT`` once both
insoles advertise; a host reaches them with

    INSOLE_BLEAK_BACKEND=tests.support.bumble_backend:BumbleScanner,tests.support.bumble_backend:BumbleClient
    INSOLE_BUMBLE_HCI=tcp-client:127.0.0.1:PORT   PYTHONPATH=<repository root>:<repository root>/tools

Exits when both feet have streamed their whole run, or on SIGINT/SIGTERM. The simulated insoles
pair as docs/ble.md says (new ones accept the first computer; later ones only inside the pairing
window): SIGUSR1 holds BOOT for 3 s on each (``kill -USR1 PID``), and ``--insole-keys FILE`` keeps
their bonds across runs (their flash). The host keeps its own bonds in INSOLE_BUMBLE_KEYSTORE.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time

from insole import sim
from tests.support.firmware_peripheral import FirmwarePeripheral
from tests.support.radio import VirtualRadio
from tests.support.virtual_insole import VirtualInsole


async def serve(args: argparse.Namespace) -> int:
    radio = VirtualRadio()
    await radio.serve(args.port)
    loop = asyncio.get_running_loop()
    feet = []
    if args.firmware:
        wall_t0 = time.time() + 1.0
        for side in ("left", "right"):
            foot = sim.simulate(args.scenario, side, args.seconds, rate_hz=args.rate_hz,
                                seed=args.seed)
            feet.append(FirmwarePeripheral(radio, foot, wall_t0=wall_t0, speed=args.speed))
    else:
        t0 = loop.time() + 0.5
        for side in ("left", "right"):
            feet.append(VirtualInsole(radio, side, scenario=args.scenario,
                                      duration_s=args.seconds, seed=args.seed, speed=args.speed,
                                      rate_hz=args.rate_hz, wall_t0=t0,
                                      keystore_path=args.insole_keys, window_s=args.window_s))
    for f in feet:
        await f.start()
    if args.truth:
        sim.write_truth(args.truth, sim.truth_document({f.side: f.foot for f in feet}))
    print(f"hci {radio.hci_spec}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def press_boot() -> None:
        for f in feet:
            if hasattr(f, "press_boot"):  # the firmware bridge has it once its pairing is in
                f.press_boot()

    loop.add_signal_handler(signal.SIGUSR1, press_boot)
    done = asyncio.ensure_future(asyncio.gather(*(f.finished.wait() for f in feet)))
    await asyncio.wait([done, asyncio.ensure_future(stop.wait())],
                       return_when=asyncio.FIRST_COMPLETED)
    for f in feet:
        await f.stop()
    await radio.close()
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="heel-striker")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the simulated run")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rate-hz", type=int, default=500)
    ap.add_argument("--speed", type=float, default=1.0, help="run faster than real time")
    ap.add_argument("--truth", help="write the ground truth here")
    ap.add_argument("--firmware", action="store_true",
                    help="the real firmware under MicroPython instead of the simulator's device")
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free)")
    ap.add_argument("--insole-keys", metavar="FILE",
                    help="the simulated insoles' bonds, kept in this JSON file across runs")
    ap.add_argument("--window-s", type=float, default=60.0,
                    help="how long the pairing window stays open after BOOT (SIGUSR1)")
    args = ap.parse_args()
    try:
        return asyncio.run(serve(args))
    except sim.SimulatorError as e:
        print(f"serve: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
