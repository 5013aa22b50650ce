"""`make bench`: speed, memory, live cost and delay, accuracy, firmware cost; writes BENCHMARKS.md.

1. Offline: `insole analyse DIR --json OUT` (a new process: decode, analysis, JSON) on a 2-hour
   two-foot 500 Hz five-zone simulated capture, several runs: wall time (median) as a multiple
   of real time, CPU time, and beside it the limit: the time to read the files' bytes and a bare
   vectorised decode (frame delimiters and COBS undone for every frame with numpy; no CRC, no
   grid, no analysis) and the same with cobs-python's C decoder (what insole uses); and the CPU
   per stage of one foot (bench/stages.py).
2. Memory: peak proportional set size (PSS, shared pages divided among the processes that share
   them) of the whole process tree of `insole analyse`, sampled every 20 ms, for a 30-minute cut
   of that run, the 2-hour run and an 8-hour run (two 4-hour simulations one after the other:
   the device reboots at 4 h).
3. Live: bench/live_latency.py (two feet x 500 Hz through real ptys).
3b. Faults: bench/faults.py (each fault of issue 8 through a real pty, the recorder and
   ``insole analyse``'s reader; F1 against the truth, sample sets fabricated, what is reported).
4. Accuracy against ground truth (bench/accuracy.py), the left/right time base over BLE-like
   delivery (bench/ble_clock.py), the firmware's cost per sample set (tools/firmware_bench.py)
   and the live window's frame rate and sample-to-drawing lag on Agg (bench/live.py), printed
   as they run.

Captures are made with the simulator into build/bench/ (never committed) and kept there.
Every figure is the median of RUNS runs (the machine is shared; see BENCHMARKS.md).
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "bench"
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
LIVE_SECONDS = float(os.environ.get("BENCH_LIVE_S", "30"))
INSOLE = [sys.executable, "-m", "insole.cli"]


def sim_capture(seconds: int, seed: int = 1) -> Path:
    out = BUILD / f"easy-run-{seconds}s-seed{seed}"
    if not (out / "right.bin").exists():
        t = time.perf_counter()
        subprocess.run([*INSOLE, "sim", "easy-run", "--side", "both", "--duration-s", str(seconds),
                        "--seed", str(seed), "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
        print(f"  simulated {seconds} s in {time.perf_counter() - t:.0f} s (kept in {out})", flush=True)
    return out


def cut(src: Path, fraction: float, name: str) -> Path:
    """The first ``fraction`` of each foot's capture, ending on a frame delimiter."""
    out = BUILD / name
    out.mkdir(parents=True, exist_ok=True)
    for side in ("left", "right"):
        if not (out / f"{side}.bin").exists():
            data = (src / f"{side}.bin").read_bytes()
            end = data.rfind(b"\x00", 0, int(len(data) * fraction)) + 1
            (out / f"{side}.bin").write_bytes(data[:end])
    return out


def joined(a: Path, b: Path, name: str) -> Path:
    """Capture ``a`` then capture ``b`` per foot (b's device starts again: a reboot)."""
    out = BUILD / name
    out.mkdir(parents=True, exist_ok=True)
    for side in ("left", "right"):
        if not (out / f"{side}.bin").exists():
            with (out / f"{side}.bin").open("wb") as f:
                for part in (a, b):
                    f.write((part / f"{side}.bin").read_bytes())
    return out


def _tree(pid: int) -> list[int]:
    out = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                for c in f.read().split():
                    out += _tree(int(c))
    except OSError:
        pass
    return out


def _pss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def analyse_run(capture: Path) -> dict:
    """One `insole analyse` process: wall time, CPU time (with children), peak PSS of its tree."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "analysis.json"
        t0 = time.perf_counter()
        before = os.times()
        p = subprocess.Popen([*INSOLE, "analyse", str(capture), "--json", str(out)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        peak = 0.0
        while p.poll() is None:
            peak = max(peak, sum(_pss_mb(q) for q in _tree(p.pid)))
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        after = os.times()
        err = p.stderr.read()
        p.stderr.close()
        if p.returncode != 0:
            raise RuntimeError(err.decode())
        doc = json.loads(out.read_bytes())
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return {"wall_s": wall, "cpu_s": cpu, "peak_pss_mb": peak,
            "steps": sum(f["summary"]["steps"] for f in doc["feet"].values()),
            "duration_s": max(f["summary"]["duration_s"] for f in doc["feet"].values()),
            "json_mb": None}


def read_bytes_s(capture: Path) -> float:
    t = time.perf_counter()
    for side in ("left", "right"):
        with (capture / f"{side}.bin").open("rb") as f:
            while f.read(2 << 20):
                pass
    return time.perf_counter() - t


def _whole_frames(capture: Path):
    """Both feet's bytes 2 MB at a time, each piece cut after its last frame delimiter (the
    rest carried into the next piece)."""
    for side in ("left", "right"):
        rest = b""
        with (capture / f"{side}.bin").open("rb") as f:
            while data := f.read(2 << 20):
                data = rest + data
                last = data.rfind(b"\x00")
                rest = data[last + 1:]
                yield data[:last + 1]


def bare_c_decode_s(capture: Path) -> float:
    """Frames split at their delimiters and COBS undone frame by frame by cobs-python's C
    decoder, as ``insole analyse`` does (2 MB at a time); None without the C extension."""
    from insole.protocol.framing import _cobs_c_decode

    if _cobs_c_decode is None:
        return float("nan")
    t = time.perf_counter()
    for frames in _whole_frames(capture):
        [_cobs_c_decode(b) for b in frames[:-1].split(b"\x00")]
    return time.perf_counter() - t


def bare_decode_s(capture: Path) -> float:
    """Delimiters found and COBS undone for every frame with numpy (2 MB at a time)."""
    from insole.protocol.framing import _cobs_decode_many

    t = time.perf_counter()
    for frames in _whole_frames(capture):
        arr = np.frombuffer(frames, np.uint8)
        delim = np.flatnonzero(arr == 0)
        _cobs_decode_many(arr, np.concatenate(([0], delim[:-1] + 1)), delim)
    return time.perf_counter() - t


def med(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{model}, {os.cpu_count()} cores, {mem_gb:.0f} GB RAM; Linux {platform.release()}; "
            f"Python {platform.python_version()}, numpy {np.__version__}; load average at the "
            f"start {load} (the machine is shared with other jobs)")


def _live_memory_lines() -> list[str]:
    """The live pipeline's memory over hours, from the last ``bench/live_memory.py --json
    bench/live_memory.json`` (10-40 minutes for 4 hours: not run by every make bench)."""
    path = ROOT / "bench" / "live_memory.json"
    if not path.exists():
        return ["## Live memory (`insole record` for hours)", "",
                "Not measured here: `python bench/live_memory.py --hours 4 --json bench/live_memory.json`.", ""]
    spec = importlib.util.spec_from_file_location("live_memory", ROOT / "bench" / "live_memory.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.markdown(json.loads(path.read_text()))


def main() -> int:
    BUILD.mkdir(parents=True, exist_ok=True)
    lines = ["# Benchmarks", "", f"Written by `make bench` (bench/run.py) on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
             "", f"Machine: {machine()}.", "",
             f"Every figure is the median of {RUNS} runs unless it says otherwise. Wall-clock figures "
             "depend on what else the machine runs; CPU time less so.", ""]
    print("Offline: insole analyse of a 2-hour two-foot 500 Hz capture", flush=True)
    two_h = sim_capture(7200)
    size_mb = sum((two_h / f"{s}.bin").stat().st_size for s in ("left", "right")) / 1e6
    runs = []
    for k in range(RUNS):
        runs.append(analyse_run(two_h))
        print(f"  run {k + 1}: {runs[-1]['wall_s']:.2f} s wall, {runs[-1]['cpu_s']:.2f} s CPU, "
              f"peak {runs[-1]['peak_pss_mb']:.0f} MB", flush=True)
    wall, cpu = med(runs, "wall_s"), med(runs, "cpu_s")
    fastest = min(r["wall_s"] for r in runs)
    load_during = ", ".join(f"{x:.1f}" for x in os.getloadavg()) + " (1, 5, 15 min)"
    rd = statistics.median(read_bytes_s(two_h) for _ in range(RUNS))
    bare = statistics.median(bare_decode_s(two_h) for _ in range(RUNS))
    bare_c = statistics.median(bare_c_decode_s(two_h) for _ in range(RUNS))
    speed = 7200 / wall
    print(f"  {speed:.0f}x real time ({wall:.2f} s wall, {cpu:.2f} s CPU); limit: read {rd:.2f} s, "
          f"bare vectorised decode {bare:.2f} s, bare C decode {bare_c:.2f} s", flush=True)
    print("  CPU per stage of one foot: bench/stages.py", flush=True)
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "stages.py"), str(two_h), "--runs", "3"],
                       capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        print(r.stderr)
        return r.returncode
    print(r.stdout, end="", flush=True)
    stages = [line.split() for line in r.stdout.splitlines()[1:] if line.strip()]
    lines += ["## Offline analysis (`insole analyse DIR --json OUT`)", "",
              f"Input: simulated easy-run, both feet, 2 hours at 500 Hz, five zones: {size_mb:.0f} MB of "
              f"raw serial bytes, {runs[0]['steps']} steps. One new process per run (decode, analysis, "
              "JSON written), the two feet in two processes.", "",
              "| figure | value | what it measures |", "|---|---|---|",
              f"| speed | **{speed:.0f}x real time** | 7200 s of recording / median wall time of the whole command (aim: >= 2000x) |",
              f"| wall time | {wall:.2f} s | start to exit of `insole analyse`, imports included |",
              f"| CPU time | {cpu:.2f} s | user + system of the process and its workers (the part the load on the machine does not inflate) |",
              f"| fastest run | {7200 / fastest:.0f}x real time ({fastest:.2f} s) | the run that shared the cores least |",
              f"| speed per CPU | {7200 / cpu:.0f}x real time per core-second | 7200 s / CPU time; the feet run in two processes, so with two idle cores the wall time falls towards half the CPU time plus the serial part (imports, the document) |",
              f"| load average during the runs | {load_during} | other jobs on the machine: the wall time above shares the two cores with them |",
              f"| limit: reading the bytes | {rd:.2f} s | reading both files in 2 MB pieces, nothing else |",
              f"| limit: bare decode | {bare_c:.2f} s | reading, splitting the frames at their delimiters and undoing COBS frame by frame with cobs-python's C decoder, as `insole analyse` does (no CRC, no grid, no analysis) |",
              f"| limit: bare vectorised decode | {bare:.2f} s | the same with numpy's lock-step walk over every frame's code bytes (what `insole` falls back to without the C extension) |",
              "",
              "CPU time per stage of one foot of that capture (`bench/stages.py`: one process, the "
              "left foot, each stage's entry point timed; median of 3):", "",
              "| stage | CPU | what it is |", "|---|---|---|"]
    what = {"decode": "bytes to grid blocks: frames, COBS, CRC, packets placed on the grid",
            "forces": "volts to newtons per channel (a table), channel faults, totals",
            "swing": "the swing-baseline tracker (2 s windows)",
            "buffer": "joining the undecided rows",
            "steps+metrics": "the step detector and every per-step metric",
            "document": "body weight, summary, flags",
            "JSON": "the foot's part of the document written (orjson)",
            "other": "the rest (reading the file, the pipeline's own code)",
            "total": "the foot end to end"}
    lines += [f"| {name} | {val} s | {what.get(name, '')} |" for name, val, *_ in stages]
    lines += [""]
    print("Memory: peak PSS of the insole analyse process tree", flush=True)
    half_h = cut(two_h, 0.25, "easy-run-1800s-cut")
    eight_h = joined(sim_capture(14400, 1), sim_capture(14400, 2), "easy-run-28800s-joined")
    mem = {}
    for label, cap, hours in (("30-minute cut", half_h, 0.5), ("2-hour", two_h, 2), ("8-hour", eight_h, 8)):
        rs = runs if label == "2-hour" else [analyse_run(cap) for _ in range(min(RUNS, 3))]
        mem[label] = (med(rs, "peak_pss_mb"), med(rs, "wall_s"), len(rs), hours)
        print(f"  {label}: {mem[label][0]:.0f} MB ({mem[label][1]:.1f} s)", flush=True)
    ratio = mem["30-minute cut"][0] / mem["2-hour"][0]
    lines += ["## Memory", "",
              "Peak proportional set size (PSS: a page shared by k processes counts 1/k) summed over "
              "`insole analyse` and its worker processes, sampled every 20 ms (aim: < 300 MB at 2 h "
              "and 8 h; the 30-minute cut within 25 % of the 2-hour figure).", "",
              "| capture | peak memory | wall time | runs |", "|---|---|---|---|"]
    for label, (pss, w, n, hours) in mem.items():
        lines.append(f"| {label} two-foot capture ({hours * 7200 * 2 * 500 / 2 / 1e6:.1f} M sample sets) "
                     f"| {pss:.0f} MB | {w:.1f} s | {n} |")
    lines += ["", f"30-minute / 2-hour: {ratio:.2f}. The 8-hour capture is two 4-hour simulations "
              "joined (the simulator's limit is 4 h): its device clock and seq start again at 4 h.", ""]
    print("Live: bench/live_latency.py", flush=True)
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "live_latency.py"), str(LIVE_SECONDS),
                        str(min(RUNS, 3))], capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        print(r.stderr)
        return r.returncode
    print(r.stdout, end="", flush=True)
    live = json.loads(r.stdout.strip().splitlines()[-1])
    lines += ["## Live (`insole record` through real ptys)", "",
              f"Two feet x 500 Hz from the simulator on ptys (its own process, not counted), recorded "
              f"and analysed by an in-process Recorder with the live feed, {LIVE_SECONDS:.0f} s per run, "
              f"median of {live['median_of_runs']} runs, {live['steps']:.0f} steps per run.", "",
              "| figure | value | what it measures |", "|---|---|---|",
              f"| analysis CPU | {live['analysis_cpu_pct']:.1f} % of one core | thread CPU time in the streaming analysis per second of stream (aim < 5 %) |",
              f"| recorder CPU | {live['recorder_cpu_pct']:.1f} % of one core | the whole recording process: reading the ports, writing the session, the analysis |",
              f"| toe-off to update, p50 / p99 | {live['toe_off_to_update_ms_p50']:.0f} / {live['toe_off_to_update_ms_p99']:.0f} ms | arrival of the chunk carrying a step's first sample after toe-off to its step and flag events, after the warm-up; includes the 40 ms of samples the detector must see after toe-off, as the device's 38 ms packets deliver them (aim p99 < 50 ms) |",
              f"| packet wait, p50 / p99 | {live['packet_wait_ms_p50']:.0f} / {live['packet_wait_ms_p99']:.0f} ms | arrival of the chunk with the toe-off sample to the arrival of the chunk that completes the 40 ms (always the next 38 ms packet) |",
              f"| decision to update, p50 / p99 | {live['decision_to_update_ms_p50']:.1f} / {live['decision_to_update_ms_p99']:.1f} ms | arrival of the chunk that completes those 40 ms to the events: the host's own processing |",
              f"| warm-up | {live['warm_up_steps']:.0f} steps, up to {live.get('warm_up_toe_off_to_update_ms_max', float('nan')):.0f} ms | a foot's steps in its first 2 s wait for its first swing window to be complete (the swing baseline), left out of the figures above |",
              f"| load average (1 min) | {live['load_avg_1m']:.1f} | at the end of the runs (median): the machine is shared, and the delays grow with its load |",
              "",
              "A step is decided when 20 samples (40 ms, `merge_gap_ms`) after its toe-off have been "
              "seen (a return above the threshold within 40 ms merges with it, offline too). The "
              "device sends a packet every 38 ms (19 sets; firmware `BATCH_MS`), so the deciding "
              "sample always comes in the next packet, 38 ms after the one that carried the toe-off: "
              "toe-off to update is about 38 ms plus the host's processing (docs/latency.md).",
              ""]
    print("Faults: bench/faults.py", flush=True)
    load0 = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "faults.py")], capture_output=True,
                       text=True, cwd=ROOT)
    if r.returncode != 0:
        print(r.stderr)
        return r.returncode
    print(r.stdout, end="", flush=True)
    out = r.stdout.strip().splitlines()
    lines += ["## Faults through the real serial path (`bench/faults.py`)", "",
              f"{out[0]}; one run each (the figures are counts, not times); load average "
              f"{load0} at the start. F1 over the time with data against the simulator's truth at "
              "the 20 ms initial-contact tolerance and at 100 ms; a step whose initial contact the "
              "analysis lost (a dead heel sensor) is matched on its toe-off (docs/validation.md).", "",
              *[x for x in out if x.startswith("|")], ""]
    lines += _live_memory_lines()
    (ROOT / "BENCHMARKS.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {ROOT / 'BENCHMARKS.md'}", flush=True)
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
