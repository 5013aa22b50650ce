"""`make demo-ble`: two virtual insoles on a virtual BLE radio, recorded over ``ble://``.

Every step after the first is the `insole` command a user would type; only the radio is virtual
(bumble, on 127.0.0.1), reached through bleak by the test backend that INSOLE_BLEAK_BACKEND names:

  1. python -m tests.support.serve --truth OUT/truth.json   (two insoles advertising; --firmware:
                                                              the real firmware under MicroPython)
  2. insole scan
  3. insole pair ble://Insole-L, insole pair ble://Insole-R  (new insoles: inside their pairing
                                                              window; the bonds go to
                                                              OUT/host-keys.json, the virtual
                                                              computer's bond store)
  4. insole record ble:// --out OUT/session --duration-s SECONDS
  5. insole analyse OUT/session --json OUT/analysis.json
  6. insole score OUT/analysis.json OUT/truth.json
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSOLE = [sys.executable, "-m", "insole.cli"]
BACKEND = ("tests.support.bumble_backend:BumbleScanner,"
           "tests.support.bumble_backend:BumbleClient")
SETUP_MARGIN_S = 30.0  # the simulated run outlasts the recording (scan, pairing) by this much


def say(msg: str) -> None:
    print(f"\n== {msg}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="demo-ble-out")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--scenario", default="heel-striker")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--firmware", action="store_true",
                    help="the real firmware under MicroPython as each insole")
    args = ap.parse_args()
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    # the virtual radio lives in tests/support; the firmware harness in tools/
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), str(ROOT / "tools"), os.environ.get("PYTHONPATH", "")]))

    serve_cmd = [sys.executable, "-m", "tests.support.serve", "--scenario", args.scenario,
                 "--seed", str(args.seed), "--seconds", str(args.seconds + SETUP_MARGIN_S),
                 "--truth", str(out / "truth.json")]
    if args.firmware:
        serve_cmd.append("--firmware")
    say("1. two virtual insoles on a virtual radio (bumble, 127.0.0.1): "
        + " ".join(serve_cmd[1:]))
    radio = subprocess.Popen(serve_cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        line = radio.stdout.readline()
        if not line.startswith("hci "):
            print("demo-ble: the virtual radio did not start", file=sys.stderr)
            return 1
        spec = line.split()[1]
        print(f"   radio: {spec}")
        env.update(INSOLE_BLEAK_BACKEND=BACKEND, INSOLE_BUMBLE_HCI=spec,
                   INSOLE_BUMBLE_KEYSTORE=str(out / "host-keys.json"))

        say("2. insole scan")
        rc = subprocess.run([*INSOLE, "scan"], env=env).returncode
        if rc != 0:
            return rc
        for name in ("Insole-L", "Insole-R"):
            pair_cmd = [*INSOLE, "pair", f"ble://{name}"]
            say("3. pairing (new insoles accept the first computer): " + " ".join(pair_cmd[2:]))
            rc = subprocess.run(pair_cmd, env=env).returncode
            if rc != 0:
                return rc
        session = out / "session"
        rec_cmd = [*INSOLE, "record", "ble://", "--out", str(session),
                   "--duration-s", str(args.seconds)]
        say(f"4. recording {args.seconds:.0f} s from both feet: " + " ".join(rec_cmd[2:]))
        t = time.monotonic()
        rc = subprocess.run(rec_cmd, env=env).returncode
        print(f"   ({time.monotonic() - t:.1f} s)")
        if rc != 0:
            return rc
    finally:
        radio.terminate()
        try:
            radio.wait(timeout=20)
        except subprocess.TimeoutExpired:
            radio.kill()
            radio.wait()

    an_cmd = [*INSOLE, "analyse", str(session), "--json", str(out / "analysis.json")]
    say("5. analysis: " + " ".join(an_cmd[2:]))
    rc = subprocess.run(an_cmd).returncode
    if rc != 0:
        return rc
    sc_cmd = [*INSOLE, "score", str(out / "analysis.json"), str(out / "truth.json")]
    say("6. against the simulator's ground truth: " + " ".join(sc_cmd[2:]))
    rc = subprocess.run(sc_cmd).returncode
    print(f"\nDone. The recording, analysis.json and truth.json are in {out}/", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
