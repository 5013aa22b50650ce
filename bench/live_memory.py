"""Memory of the live pipeline over a long run, in accelerated time (issue 8, item 7).

A child process simulates a two-foot run (``easy-run``, default 4 hours) and writes each foot's
frames to a real pty as fast as the reader takes them (``Pty.wait_for_reader``: no pacing, no
frame dropped). This process runs what ``insole record`` runs: the :class:`Recorder` reading
both ptys with pyserial (``serial://``), writing the session, feeding every chunk to the
streaming core, and a :class:`LiveFeed` making the step and flag events (counted, not printed).
Every ``--every-min`` simulated minutes it samples its own RSS and PSS (``/proc/self/
smaps_rollup``), the bytes of the two step tables (which grow with the run by design, about
250 bytes a step) and the bytes and items everything else the pipeline keeps holds
(:func:`retained`). It prints the series and the slopes after the warm-up in MB per simulated
hour: of RSS, of the step tables' memory (0 since the recorder appends them to files in the
session, ``source<i>.steps/``), and of everything else.

    python bench/live_memory.py [--hours 4] [--every-min 10] [--warmup-min 30] [--json PATH]

``--json`` writes the result (series, slopes, the machine's load); ``make bench`` puts the last
one, ``bench/live_memory.json``, into BENCHMARKS.md (:func:`markdown`): the run is too long
(10-40 minutes for 4 hours) for every ``make bench``.

The simulator's memory (its whole run is made up front) lives in the child and is not counted.
``tests/test_live_memory.py`` is the fast version (minutes, asserting the retained structures).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import gc
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def retained(obj, skip=("table",)) -> tuple[int, int]:
    """(bytes of numpy arrays, items in lists/dicts/deques/sets) reachable from ``obj`` through
    attributes and containers, not through attributes named in ``skip`` (the step table),
    callables, threads, modules or files. Each object is counted once."""
    seen: set[int] = set()
    stack = [obj]
    nbytes = items = 0
    while stack:
        o = stack.pop()
        if id(o) in seen or o is None or isinstance(o, (str, bytes, int, float, bool, type)):
            continue
        seen.add(id(o))
        if isinstance(o, np.ndarray):
            nbytes += o.nbytes if o.base is None else 0
            if o.base is not None and isinstance(o.base, np.ndarray):
                stack.append(o.base)
            continue
        if isinstance(o, (bytearray, memoryview)):
            nbytes += len(o)
            continue
        if isinstance(o, dict):
            items += len(o)
            stack.extend(o.values())
            continue
        if isinstance(o, (list, tuple, set, frozenset, collections.deque)):
            items += len(o)
            stack.extend(o)
            continue
        if callable(o) or isinstance(o, (threading.Thread, type(sys), threading.Event)):
            continue
        d = getattr(o, "__dict__", None)
        if d is None and dataclasses.is_dataclass(o):
            d = {f.name: getattr(o, f.name) for f in dataclasses.fields(o)}
        if d is None:
            slots = getattr(type(o), "__slots__", ())
            d = {k: getattr(o, k, None) for k in slots}
        stack.extend(v for k, v in d.items() if k not in skip and not hasattr(v, "read"))
    return nbytes, items


def pipeline_state(workers) -> dict:
    """What the recording's analysis keeps now: rows seen, steps, step-table bytes, the rest."""
    rows = steps = table_b = other_b = other_items = 0
    for w in workers:
        p = w.pipeline
        if p is None:
            continue
        rows += p.decoder.assembler._row_next
        if p.core is not None:
            t = p.core.table
            steps += len(t)
            table_b += t.ram_bytes  # 0 for the recorder's StepFile (on disk)
        b, n = retained(p)
        other_b += b
        other_items += n
        # the worker's own rings: the latency ring (a fixed array) and the chunk arrivals (a
        # bounded deque)
        b, n = retained(w.latency_s)
        other_b += b
        other_items += n + len(w._arrivals)
    return {"rows": rows, "steps": steps, "table_mb": table_b / 1e6, "other_mb": other_b / 1e6,
            "other_items": other_items}


def memory_mb() -> tuple[float, float]:
    """(RSS, PSS) of this process in MB, from /proc/self/smaps_rollup (Linux)."""
    vals = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        parts = line.split()
        if parts and parts[0] in ("Rss:", "Pss:"):
            vals[parts[0]] = int(parts[1]) / 1024
    return vals.get("Rss:", float("nan")), vals.get("Pss:", float("nan"))


def _sim_child(links: dict, hours: float, seed: int, ready, stop) -> None:
    from insole.sim import simulate
    from insole.sim.pty import Pty, stream

    feet = {s: simulate("easy-run", s, hours * 3600.0, seed=seed) for s in links}
    ports = {s: Pty.open(link=links[s]) for s in links}
    for p in ports.values():
        p.wait_for_reader = True
    ready.set()
    stream(feet, ports, stop, speed=1e9)
    for p in ports.values():
        p.close(drain_s=600.0)


def slope_mb_per_h(xs_h, ys_mb) -> float:
    if len(xs_h) < 2:
        return float("nan")
    return float(np.polyfit(np.asarray(xs_h, float), np.asarray(ys_mb, float), 1)[0])


def run(hours: float, every_min: float, warmup_min: float, seed: int = 3, echo=print) -> dict:
    from insole.analysis.document import LiveFeed
    from insole.io.recorder import Recorder, return_freed_memory_promptly

    return_freed_memory_promptly()  # as insole record does

    events = collections.Counter()
    with tempfile.TemporaryDirectory(prefix="insole-live-memory-") as tmp:
        links = {s: str(Path(tmp) / f"tty-{s}") for s in ("left", "right")}
        ctx = multiprocessing.get_context("fork")
        ready, stop = ctx.Event(), ctx.Event()
        child = ctx.Process(target=_sim_child, args=(links, hours, seed, ready, stop), daemon=True)
        child.start()
        try:
            if not ready.wait(600):
                raise RuntimeError("the simulator did not start")
            live = LiveFeed(lambda kind, side, payload: events.update([kind]))
            rec = Recorder([f"serial://{links[s]}?reconnect_s=0" for s in links],
                           Path(tmp) / "session", live=live)
            rec.start()
            t0 = time.perf_counter()
            series = []
            next_min = 0.0
            rate_hz = 500.0
            while any(w.is_alive() for w in rec.workers):
                rec.stop.wait(0.2)
                rows = min((w.pipeline.decoder.assembler._row_next if w.pipeline else 0)
                           for w in rec.workers)
                sim_min = rows / rate_hz / 60.0
                if sim_min >= next_min:
                    gc.collect()
                    rss, pss = memory_mb()
                    st = pipeline_state(rec.workers)
                    row = {"sim_min": round(sim_min, 1), "wall_s": round(time.perf_counter() - t0, 1),
                           "rss_mb": round(rss, 1), "pss_mb": round(pss, 1),
                           "steps": st["steps"], "table_mb": round(st["table_mb"], 2),
                           "other_mb": round(st["other_mb"], 2), "other_items": st["other_items"]}
                    series.append(row)
                    echo("  " + "  ".join(f"{k} {v}" for k, v in row.items()), flush=True)
                    next_min += every_min
            rec.close()
        finally:
            stop.set()
            child.join(30)
            if child.is_alive():
                child.kill()
                child.join()
    wall = time.perf_counter() - t0
    after = [r for r in series if r["sim_min"] >= warmup_min]
    xs = [r["sim_min"] / 60 for r in after]
    res = {"hours": hours, "wall_s": wall, "speed_x": hours * 3600 / wall, "series": series,
           "events": dict(events),
           "rss_slope_mb_per_h": slope_mb_per_h(xs, [r["rss_mb"] for r in after]),
           "pss_slope_mb_per_h": slope_mb_per_h(xs, [r["pss_mb"] for r in after]),
           "table_slope_mb_per_h": slope_mb_per_h(xs, [r["table_mb"] for r in after]),
           "other_slope_mb_per_h": slope_mb_per_h(xs, [r["other_mb"] for r in after]),
           "items_slope_per_h": slope_mb_per_h(xs, [r["other_items"] for r in after]),
           "rss_after_warmup_mb": (min(r["rss_mb"] for r in after), max(r["rss_mb"] for r in after))
           if after else None}
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", type=float, default=4.0)
    ap.add_argument("--every-min", type=float, default=10.0)
    ap.add_argument("--warmup-min", type=float, default=30.0)
    ap.add_argument("--json", type=Path, help="write the result here (make bench reads it)")
    a = ap.parse_args(argv)
    load0 = os.getloadavg()
    print(f"live memory: {a.hours:g} h two-foot run through pty + recorder + streaming core + "
          f"live feed, as fast as it goes; a sample every {a.every_min:g} simulated min", flush=True)
    r = run(a.hours, a.every_min, a.warmup_min)
    print(f"{a.hours:g} simulated hours in {r['wall_s']:.0f} s ({r['speed_x']:.0f}x real time); "
          f"events: {r['events']}")
    lo, hi = r["rss_after_warmup_mb"] or (float("nan"), float("nan"))
    print(f"after {a.warmup_min:g} min of warm-up: RSS {lo:.0f}-{hi:.0f} MB; slopes in MB per "
          f"simulated hour: RSS {r['rss_slope_mb_per_h']:+.2f}, PSS {r['pss_slope_mb_per_h']:+.2f}, "
          f"step tables in memory {r['table_slope_mb_per_h']:+.2f} (on disk: ~250 B a step), "
          f"everything else the pipeline keeps {r['other_slope_mb_per_h']:+.3f}, its items "
          f"{r['items_slope_per_h']:+.0f}")
    if a.json:
        r.update(warmup_min=a.warmup_min, every_min=a.every_min, date=time.strftime("%Y-%m-%d"),
                 load_start=[round(x, 1) for x in load0],
                 load_end=[round(x, 1) for x in os.getloadavg()])
        a.json.write_text(json.dumps(r, indent=1) + "\n")
    return 0


def markdown(r: dict) -> list[str]:
    """BENCHMARKS.md's section for a :func:`run` result written with ``--json``."""
    steps = r["series"][-1]["steps"] if r["series"] else 0
    lines = ["## Live memory (`insole record` for hours)", "",
             f"`python bench/live_memory.py --hours {r['hours']:g} --json bench/live_memory.json` "
             f"({r['date']}): a {r['hours']:g}-hour two-foot `easy-run` from the simulator (its own "
             "process, not counted) written to two ptys as fast as they are read, recorded by an "
             "in-process Recorder with the streaming core and the live feed, as `insole record` runs "
             f"them; {r['hours'] * 3600 / r['wall_s']:.0f}x real time, {r['events'].get('step', steps)} step "
             f"events, load average "
             f"{r['load_start'][0]} at the start and {r['load_end'][0]} at the end (one run: it "
             f"takes {r['wall_s'] / 60:.0f} minutes). Slopes after {r['warmup_min']:g} minutes of "
             "warm-up, per simulated hour (aim: flat):", "",
             "| what | slope | what it is |", "|---|---|---|",
             f"| RSS | {r['rss_slope_mb_per_h']:+.2f} MB/h | resident memory of the recording process "
             f"({r['rss_after_warmup_mb'][0]:.0f}-{r['rss_after_warmup_mb'][1]:.0f} MB after the warm-up) |",
             f"| PSS | {r['pss_slope_mb_per_h']:+.2f} MB/h | its proportional set size |",
             f"| step tables in memory | {r['table_slope_mb_per_h']:+.2f} MB/h | every step is appended "
             "to `source<i>.steps/` in the session (about 250 bytes a step on disk) |",
             f"| everything else kept, arrays | {r['other_slope_mb_per_h']:+.3f} MB/h | the numpy "
             "arrays the pipeline holds (the clock sync's bins among them: 32 kB a foot, fixed; "
             "the flags' grids: a block when a value falls further out than any before) |",
             f"| everything else kept, items | {r['items_slope_per_h']:+.0f} /h | Python container "
             "items the pipeline holds |", "",
             "RSS is sampled from the main thread while the reader threads run. The flags are "
             "running state (docs/analysis.md, \"Flags as running state\"): nothing of every step "
             "is read to evaluate them (docs/validation.md).", "",
             "| simulated min | " + " | ".join(f"{x['sim_min']:.0f}" for x in r["series"]) + " |",
             "|---|" + "---|" * len(r["series"]),
             "| RSS MB | " + " | ".join(f"{x['rss_mb']:.1f}" for x in r["series"]) + " |",
             "| items | " + " | ".join(str(x["other_items"]) for x in r["series"]) + " |", ""]
    return lines


if __name__ == "__main__":
    sys.exit(main())
