"""`make bench`: performance and accuracy figures, printed (tests never assert on time).

1. Host decode-and-analyse speed for a 60-minute, two-foot, 500 Hz, five-zone capture, as a
   multiple of real time, and the peak memory of the process that did it.
2. Accuracy against ground truth (bench/accuracy.py), if present.
3. Left/right time base over BLE-like delivery (bench/ble_clock.py).
4. Firmware cost per sample set under MicroPython (tools/firmware_bench.py), if present.
5. The live window's frame rate and sample-to-drawing lag on Agg (bench/live.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "bench"
DURATION_S = 3600


def make_capture() -> Path:
    out = BUILD / f"easy-run-{DURATION_S}s"
    if not (out / "right.bin").exists():
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "insole.cli", "sim", "easy-run", "--side", "both",
                        "--duration-s", str(DURATION_S), "--seed", "1", "--out", str(out)],
                       check=True, stdout=subprocess.DEVNULL)
        print(f"  generated the capture in {time.perf_counter() - t:.1f} s (cached in {out})")
    return out


_CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from insole.io.session import load_inputs
from insole.analysis.stream import streams_from_sources
from insole.analysis import analyse
t1 = time.perf_counter()
feet = streams_from_sources(load_inputs(sys.argv[1:]))
t2 = time.perf_counter()
doc = analyse(feet)
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "decode_s": t2 - t1, "analyse_s": t3 - t2,
                  "steps": sum(f["summary"]["steps"] for f in doc["feet"].values()),
                  "samples": sum(fs.n for fs in feet.values()),
                  "decode_errors": sum(f["quality"]["decode_errors"] for f in doc["feet"].values()),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def host_speed() -> None:
    print("Host: decode and analyse a 60-minute two-foot 500 Hz five-zone capture")
    cap = make_capture()
    files = [str(cap / "left.bin"), str(cap / "right.bin")]
    size_mb = sum(Path(f).stat().st_size for f in files) / 1e6
    runs = []
    for _ in range(3):
        r = subprocess.run([sys.executable, "-c", _CHILD, *files], capture_output=True, text=True,
                           check=True)
        runs.append(json.loads(r.stdout))
    best = min(runs, key=lambda r: r["decode_s"] + r["analyse_s"])
    total = best["decode_s"] + best["analyse_s"]
    print(f"  input: {size_mb:.1f} MB, {best['samples']} sample sets, {best['steps']} steps, "
          f"{best['decode_errors']} decode errors")
    print(f"  decode {best['decode_s']:.2f} s + analyse {best['analyse_s']:.2f} s = {total:.2f} s "
          f"(best of 3; import {best['import_s']:.2f} s not counted)")
    print(f"  speed: {2 * DURATION_S / total:.0f}x real time per foot-hour, "
          f"{DURATION_S / total:.0f}x real time for the two-foot run")
    print(f"  peak memory (max RSS of the process): {max(r['peak_rss_mb'] for r in runs):.0f} MB")


def main() -> int:
    host_speed()
    for script in (ROOT / "bench" / "accuracy.py", ROOT / "bench" / "ble_clock.py",
                   ROOT / "tools" / "firmware_bench.py", ROOT / "bench" / "live.py"):
        if script.exists():
            print(f"\n== {script.relative_to(ROOT)}", flush=True)
            rc = subprocess.run([sys.executable, str(script)], cwd=ROOT).returncode
            if rc != 0:
                print(f"{script.name} exited with {rc}")
                return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
