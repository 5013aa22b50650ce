"""`make demo`: a simulated two-foot run, streamed over two real serial ports, recorded, analysed.

Every step is the `insole` command a user would type:

  1. insole sim SCENARIO --side both --pty --truth OUT/truth.json   (two pseudo-terminals)
  2. insole record serial:///dev/pts/N serial:///dev/pts/M --out OUT/session
  3. insole analyse OUT/session --json OUT/analysis.json
  4. insole score OUT/analysis.json OUT/truth.json                  (how close to the truth)
  5. insole report OUT/session --out OUT/report                      (figures and an HTML page)
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

INSOLE = [sys.executable, "-m", "insole.cli"]


def say(msg: str) -> None:
    print(f"\n== {msg}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="demo-out")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--scenario", default="heel-striker")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--firmware", action="store_true",
                    help="run the real firmware under MicroPython as the device behind each pty")
    args = ap.parse_args()
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    session = out / "session"

    sim_prog = ([sys.executable, str(Path(__file__).with_name("firmware_loop.py"))] if args.firmware
                else [*INSOLE, "sim"])
    sim_cmd = [*sim_prog, args.scenario, "--side", "both", "--pty", "--seed", str(args.seed),
               "--duration-s", str(args.seconds + 5), "--truth", str(out / "truth.json")]
    say("1. simulator on two pseudo-terminals: " + " ".join(sim_cmd[2:]))
    sim = subprocess.Popen(sim_cmd, stdout=subprocess.PIPE, text=True)
    ports = {}
    t_end = time.monotonic() + 60
    while len(ports) < 2 and time.monotonic() < t_end:
        line = sim.stdout.readline()
        if not line:
            break
        print("   sim: " + line.rstrip())
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("left", "right") and parts[1].startswith("/dev/"):
            ports[parts[0]] = parts[1]
    if len(ports) < 2:
        sim.kill()
        print("demo: the simulator did not print two ports", file=sys.stderr)
        return 1
    try:
        rec_cmd = [*INSOLE, "record", f"serial://{ports['left']}", f"serial://{ports['right']}",
                   "--out", str(session), "--duration-s", str(args.seconds)]
        say(f"2. recording {args.seconds:.0f} s from both ports: " + " ".join(rec_cmd[2:]))
        rc = subprocess.run(rec_cmd).returncode
        if rc != 0:
            return rc
    finally:
        sim.terminate()
        try:
            sim.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sim.kill()

    an_cmd = [*INSOLE, "analyse", str(session), "--json", str(out / "analysis.json")]
    say("3. analysis: " + " ".join(an_cmd[2:]))
    rc = subprocess.run(an_cmd).returncode
    if rc != 0:
        return rc
    sc_cmd = [*INSOLE, "score", str(out / "analysis.json"), str(out / "truth.json")]
    say("4. against the simulator's ground truth: " + " ".join(sc_cmd[2:]))
    subprocess.run(sc_cmd)
    rep_cmd = [*INSOLE, "report", str(session), "--out", str(out / "report")]
    say("5. the run report: " + " ".join(rep_cmd[2:]))
    rc = subprocess.run(rep_cmd).returncode
    if rc != 0:
        return rc
    print(f"\nDone. The recording, analysis.json and truth.json are in {out}/", flush=True)
    print(f"The run report: {(out / 'report' / 'report.html').resolve()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
