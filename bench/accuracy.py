"""Print the analysis's accuracy: simulator scenarios x seeds, and the real recordings.

    python bench/accuracy.py                 # everything (about 2 minutes)
    python bench/accuracy.py --seeds 1 --no-lossy --duration-s 60   # a quick look

Each simulator row is one 2-foot run: simulated, written as raw serial captures, analysed by
``insole.report.analyse_paths`` and scored by ``insole.score.score`` (IC matched within 20 ms).
Real-data rows convert ../shared/data with ``insole.datasets`` first. Criteria are those of
tests/test_accuracy_sim.py and tests/test_realdata.py; a failed criterion is marked with ``!``.
The figures are described in docs/validation.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "host"))

from insole.analysis import analyse_paths  # noqa: E402
from insole.validation import datasets  # noqa: E402
from insole.validation.score import score  # noqa: E402

SCENARIOS = ("easy-run", "heel-striker", "forefoot-overload", "arch-collapse", "forefoot-runner", "walk")
SIM_CRITERIA = {"f1_min": 0.99, "ic_median_ms_max": 3.0, "to_median_ms_max": 8.0}  # docs/validation.md
GAITPDB = ("GaCo01_01", "GaPt03_01", "JuCo01_01", "JuPt01_01", "SiCo01_01", "SiPt02_01")
FUKUCHI = {"RBDS001runT25forces": "forefoot", "RBDS002runT25forces": "midfoot",
           "RBDS004runT25forces": "rearfoot"}


def _shared() -> Path:
    return Path(os.environ.get("INSOLE_SHARED", ROOT.parent / "shared"))


def _mark(ok: bool) -> str:
    return " " if ok else "!"


def _worst(r: dict, key: str, stat: str = "median") -> float | None:
    vals = [f[key][stat] for f in [*r["feet"].values(), r["combined"]] if f[key][stat] is not None]
    return max(vals) if vals else None


def _min_f1(r: dict) -> float:
    return min(f["f1"] for f in [*r["feet"].values(), r["combined"]])


def sim_rows(seeds, duration_s: float, lossy: bool, tmp: Path) -> list[str]:
    from insole import sim

    variants = {"clean": {}}
    if lossy:
        variants["lossy"] = {"loss_pct": 3.0, "corrupt_pct": 0.5}
    out = [f"{'scenario':18s} {'seed':>4s} {'faults':6s} {'steps':>6s} {'F1 min':>8s} {'IC med':>8s} "
           f"{'IC p95':>8s} {'TO med':>8s} {'TO p95':>8s} {'strike':>7s} {'unclas':>6s}  flags"]
    n_fail = 0
    for name in SCENARIOS:
        for seed in seeds:
            for vname, kw in variants.items():
                feet = {s: sim.simulate(name, s, duration_s, seed=seed, **kw) for s in ("left", "right")}
                paths = []
                for s, foot in feet.items():
                    p = tmp / f"{s}.bin"
                    sim.write_capture(p, foot)
                    paths.append(str(p))
                r = score(analyse_paths(paths), sim.truth_document(feet), 0.020, SIM_CRITERIA)
                c = r["combined"]
                fl = r["flags"]
                bad = [e["code"] + " missing" for e in fl["expected"] if not e["present"]]
                bad += [a["code"] + " on " + ",".join(a["found_on"]) for a in fl["absent"] if not a["absent"]]
                st = c["strike"]["agreement"]
                n_fail += not r["passed"]
                out.append(
                    f"{name:18s} {seed:4d} {vname:6s} {c['n_true']:6d} "
                    f"{_min_f1(r):7.4f}{_mark(r['ok']['f1_min'])} "
                    f"{_worst(r, 'ic_error_ms'):7.2f}{_mark(r['ok']['ic_median_ms_max'])} "
                    f"{_worst(r, 'ic_error_ms', 'p95'):8.2f} "
                    f"{_worst(r, 'to_error_ms'):7.2f}{_mark(r['ok']['to_median_ms_max'])} "
                    f"{_worst(r, 'to_error_ms', 'p95'):8.2f} "
                    f"{'-' if st is None else f'{100 * st:.0f}%':>7s} {c['strike']['unclassified']:6d}  "
                    + ("ok" if fl["ok"] else "! " + "; ".join(bad)))
    out.append(f"{n_fail} simulator run(s) failed a criterion (F1 >= 0.99, IC median <= 3 ms, "
               "TO median <= 8 ms, flags); F1 min and medians are the worst of left, right, both; "
               "strike: agreement over classified steps, unclas: steps the analysis left unclassified.")
    return out


def real_rows(tmp: Path) -> list[str]:
    shared = _shared() / "data"
    out = [f"{'recording':22s} {'steps':>6s} {'F1 min':>8s} {'IC med':>8s} {'IC p95':>8s} "
           f"{'CT med':>8s} {'TO med':>8s}  strike (left | right)"]
    rows = [("gaitpdb", n, None) for n in GAITPDB] + [("fukuchi", n, s) for n, s in FUKUCHI.items()]
    for kind, name, want in rows:
        src = shared / ("gaitpdb" if kind == "gaitpdb" else "fukuchi2017") / f"{name}.txt"
        if not src.is_file():
            out.append(f"{name:22s} missing ({src})")
            continue
        d = tmp / name
        truth = datasets.convert(kind, src, d)
        r = score(analyse_paths([str(d / "left.bin"), str(d / "right.bin")]), truth, 0.020)
        c = r["combined"]
        if kind == "gaitpdb":
            ok_f1 = _min_f1(r) >= 0.97
            ok_ic = _worst(r, "ic_error_ms") <= 10
            ok_ct = True
            strike = "-"
        else:
            ok_f1 = ok_ic = True
            ok_ct = _worst(r, "contact_error_ms") <= 10
            parts = []
            for side, f in r["feet"].items():
                got = f["strike"]["confusion"].get(want, {})
                n = sum(got.values())
                agree = got.get(want, 0)
                parts.append(f"{want} {agree}/{n}{_mark(n > 0 and agree > n / 2)}")
            strike = " | ".join(parts)
        out.append(f"{name:22s} {c['n_true']:6d} {_min_f1(r):7.4f}{_mark(ok_f1)} "
                   f"{_worst(r, 'ic_error_ms'):7.2f}{_mark(ok_ic)} {_worst(r, 'ic_error_ms', 'p95'):8.2f} "
                   f"{_worst(r, 'contact_error_ms'):7.2f}{_mark(ok_ct)} {_worst(r, 'to_error_ms'):8.2f}  {strike}")
    out.append("gaitpdb: F1 >= 0.97 and IC median <= 10 ms (truth: sum of all 8 sensors > 20 N; capture: 5). "
               "fukuchi: contact-time median |error| <= 10 ms; strike = metadata for most steps.")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--duration-s", type=float, default=180.0)
    ap.add_argument("--no-lossy", action="store_true", help="skip the 3 %% loss / 0.5 %% corrupt runs")
    ap.add_argument("--no-sim", action="store_true", help="real recordings only")
    ap.add_argument("--no-real", action="store_true", help="simulator only")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_sim:
            print(f"== accuracy on the simulator ({args.duration_s:g} s, both feet; errors in ms) ==")
            for line in sim_rows(args.seeds, args.duration_s, not args.no_lossy, Path(tmp)):
                print(line, flush=True)
        if not args.no_real:
            print("== accuracy on real recordings (../shared/data; errors in ms) ==")
            for line in real_rows(Path(tmp)):
                print(line, flush=True)
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
