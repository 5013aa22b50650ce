"""Coverage study of `insole compare`: are its 95 % intervals honest?

    python bench/compare_coverage.py                  # the figures in docs/analysis.md (a few minutes)
    python bench/compare_coverage.py --runs 10 --truth-runs 10 --ar-reps 100   # a quick look

Three parts, all printed:

1. **Same runner, two seeds.** Pairs of simulated runs of one scenario with different seeds
   (easy-run, forefoot-overload, heel-striker; ``--runs`` seeds each, paired 1-2, 3-4, ...).
   The true difference is 0 by construction: both runs come from the same gait parameters,
   drift and asymmetry; the seed changes only the step-to-step draws, the clocks and the sensor
   noise (docs/simulator.md). Reported: how often the 95 % interval covers 0, the share of
   metrics called "changed", and how many pairs have more than 1 in 10 metrics changed.
2. **Known differences.** easy-run (seed k) against forefoot-overload, heel-striker and a small
   change (easy-run with the metatarsal share 0.48 → 0.50 and VALR 54 → 56.7 BW/s) with seed
   k + 1. Not the same seed: the simulator draws every scenario's step-to-step variation from
   the same random streams of the seed, so two scenarios with one seed share their noise and
   their difference scatters far less than two real runs' (coverage near 100 %). The true difference of each metric is defined from **long runs**: each scenario is
   also simulated with ``--truth-runs`` other seeds (1001, 1002, ...) and the steps of all of
   them are pooled; the true value of a metric is the median (mean for the strike share) of the
   pooled steps, i.e. of the step distribution of "a run of this length by this runner", and the
   true difference is B's minus A's. A second column scores the same intervals against the
   simulator's own ground truth per step (``truth.json``: what the model generated, before the
   sensor model and the analysis), which adds the analysis's measurement bias.
3. **Dependent steps.** The simulator draws each step independently around a fatigue drift, so
   parts 1-2 cannot show what dependence does. Synthetic AR(1) series (φ = 0, 0.5, 0.8; 250
   steps, like a 3-minute run per foot) with a known shift compare the block bootstrap of
   ``insole.compare.stats`` against the ordinary one (block length 1).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "host"))

from insole import sim  # noqa: E402
from insole.analysis import analyse_paths  # noqa: E402
from insole.compare import stats  # noqa: E402
from insole.compare.compare import CompareConfig, RunComparison  # noqa: E402
from insole.compare.metrics import (  # noqa: E402
    SIDES,
    SYMMETRY_OF,
    foot_series,
    symmetry_index_pct,
)

SMALL = "easy-run+small-change"
SAME_RUNNERS = ("easy-run", "forefoot-overload", "heel-striker")
KNOWN = ("forefoot-overload", "heel-striker", SMALL)


def scenario(name: str):
    if name == SMALL:
        base = sim.SCENARIOS["easy-run"]
        return sim.Scenario(SMALL, "easy-run, metatarsal share +2 points, VALR +5 %",
                            replace(base.gait, met_share=0.50, valr_bw_per_s=54.0 * 1.05))
    return sim.SCENARIOS[name]


def run_one(job: tuple[str, int, float]) -> dict:
    """Simulate one two-foot run, analyse it as `insole compare` would; keep what is needed."""
    name, seed, duration_s = job
    feet = {s: sim.simulate(scenario(name), s, duration_s, seed=seed) for s in SIDES}
    with tempfile.TemporaryDirectory() as d:
        paths = []
        for s, foot in feet.items():
            p = Path(d) / f"{s}.bin"
            sim.write_capture(p, foot)
            paths.append(str(p))
        doc = analyse_paths(paths)
    truth = {s: feet[s].truth["steps"] for s in SIDES}
    for foot in doc["feet"].values():  # keep what the comparison reads (smaller to pass around)
        foot["steps"] = [{k: v for k, v in st.items() if k in _STEP_KEYS} for st in foot["steps"]]
        foot.pop("device", None)
    doc.pop("config", None)
    return {"name": name, "seed": seed, "doc": doc, "truth": truth}


_STEP_KEYS = {"ic_s", "complete", "contact_ms", "stride_ms", "peak_force_bw", "valr_bw_per_s",
              "valr_method", "strike", "zone_impulse_share", "metatarsal_share"}


def _truth_series(steps: list[dict]) -> dict[str, np.ndarray]:
    """Ground-truth per-step values (the simulator's model) under the comparison's names."""
    out = {"valr_bw_per_s_rearfoot": [s["valr_bw_per_s"] for s in steps if s["valr_method"] == "20-80"
                                      and s["strike"] == "rearfoot"],
           "peak_force_bw": [s["peak_force_bw"] for s in steps],
           "contact_ms": [s["contact_ms"] for s in steps],
           "metatarsal_share": [sum(v for z, v in s["zone_impulse_share"].items() if z.startswith("met"))
                                for s in steps]}
    for z in steps[0]["zone_impulse_share"] if steps else []:
        out[f"{z}_share"] = [s["zone_impulse_share"][z] for s in steps]
    return {k: np.asarray(v, float) for k, v in out.items()}


def population(runs: list[dict]) -> tuple[dict, dict]:
    """True values per (side, metric) from pooled long runs: measured, and simulator truth."""
    measured: dict[tuple[str, str], list] = {}
    model: dict[tuple[str, str], list] = {}
    stat: dict[str, str] = {}
    for r in runs:
        for side in SIDES:
            for name, (m, vals) in foot_series(r["doc"]["feet"][side]).items():
                measured.setdefault((side, name), []).append(vals)
                stat[name] = m.statistic
            for name, vals in _truth_series(r["truth"][side]).items():
                model.setdefault((side, name), []).append(vals)

    def reduce(pool):
        out = {}
        for (side, name), parts in pool.items():
            v = np.concatenate(parts)
            if len(v):
                out[(side, name)] = float(np.mean(v) if stat.get(name) == "mean" else np.median(v))
        return out

    meas, mod = reduce(measured), reduce(model)
    for pop in (meas, mod):
        for name in SYMMETRY_OF:
            if all((s, name) in pop for s in SIDES):
                pop[("both", f"{name}_symmetry_pct")] = float(
                    symmetry_index_pct(pop[("left", name)], pop[("right", name)]))
    return meas, mod


def compare_pair(job) -> list[dict]:
    doc_a, doc_b, n_boot, seed, detrend = job
    cfg = CompareConfig(n_boot=n_boot, seed=seed, detrend_degree=detrend)
    return RunComparison(cfg).compute(doc_a, doc_b).document_["metrics"]


def _pct(k: int, n: int) -> str:
    return f"{100.0 * k / n:5.1f} %" if n else "  n/a "


def _cover(lo: float, hi: float, truth: float) -> bool:
    # the document rounds to 6 significant digits; allow that much slack
    eps = 1e-6 * max(abs(lo), abs(hi), abs(truth), 1e-12)
    return lo - eps <= truth <= hi + eps


def ar1_study(phis, reps: int, n: int, n_boot: int, shift_sd: float, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    lines = [f"{'phi':>4s} {'mean block':>10s} {'block bootstrap':>16s} {'ordinary bootstrap':>19s}   "
             f"(coverage of the true shift; 'changed' rate with no shift)"]
    for phi in phis:
        cov = {"block": [0, 0], "iid": [0, 0]}
        blocks = []
        for _ in range(reps):
            def series():
                e = rng.standard_normal(n + 200)
                x = np.empty_like(e)
                x[0] = e[0]
                for i in range(1, len(e)):
                    x[i] = phi * x[i - 1] + e[i]
                return x[200:] * np.sqrt(1 - phi * phi)  # unit variance
            a, b0 = series(), series()
            for key, shift in (("cover", shift_sd), ("null", 0.0)):
                b = b0 + shift
                for kind in ("block", "iid"):
                    r = np.random.default_rng(rng.integers(2**32))
                    ba = stats.block_length(a) if kind == "block" else 1
                    bb = stats.block_length(b) if kind == "block" else 1
                    if kind == "block" and key == "cover":
                        blocks.extend([ba, bb])
                    ra = stats.bootstrap(a, "median", n_boot, r, ba)
                    rb = stats.bootstrap(b, "median", n_boot, r, bb)
                    lo, hi = stats.percentile_interval(rb - ra)
                    if key == "cover":
                        cov[kind][0] += lo <= shift <= hi
                    else:
                        cov[kind][1] += not (lo <= 0.0 <= hi)
        lines.append(f"{phi:4.1f} {np.mean(blocks):10.1f} "
                     f"{_pct(cov['block'][0], reps):>8s} / {_pct(cov['block'][1], reps):>7s} "
                     f"{_pct(cov['iid'][0], reps):>10s} / {_pct(cov['iid'][1], reps):>7s}")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=40, help="seeds per scenario for the pairs (even)")
    ap.add_argument("--truth-runs", type=int, default=40, help="extra seeds per scenario for the truth")
    ap.add_argument("--duration-s", type=float, default=180.0)
    ap.add_argument("--n-boot", type=int, default=stats.N_BOOT)
    ap.add_argument("--ar-reps", type=int, default=400)
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--json", metavar="PATH", help="write every interval to PATH")
    ap.add_argument("--cache", metavar="PATH", help="keep the analysed runs in this pickle and reuse them")
    ap.add_argument("--no-detrend", action="store_true",
                    help="choose block lengths on the raw series (the method without detrending)")
    args = ap.parse_args(argv)
    t0 = time.time()
    detrend = None if args.no_detrend else CompareConfig().detrend_degree
    names = ("easy-run", *KNOWN)
    jobs = [(n, s, args.duration_s) for n in names for s in range(1, args.runs + 1)]
    jobs += [(n, 1000 + s, args.duration_s) for n in names for s in range(1, args.truth_runs + 1)]
    cached = {}
    if args.cache and Path(args.cache).is_file():
        with open(args.cache, "rb") as fh:
            cached = pickle.load(fh)
    todo = [j for j in jobs if j not in cached]
    with ProcessPoolExecutor(args.jobs) as ex:
        for j, r in zip(todo, ex.map(run_one, todo, chunksize=4)):
            cached[j] = r
    if args.cache and todo:
        with open(args.cache, "wb") as fh:
            pickle.dump(cached, fh)
    runs = [cached[j] for j in jobs]
    by = {(r["name"], r["seed"]): r for r in runs}
    t_sim = time.time() - t0
    pops = {n: population([by[(n, 1000 + s)] for s in range(1, args.truth_runs + 1)]) for n in names}
    print(f"insole compare coverage study: {args.duration_s:.0f} s two-foot runs, "
          f"{args.runs} seeds per scenario for the pairs, {args.truth_runs} more for the truth, "
          f"{args.n_boot} resamples, block length chosen on the "
          f"{'raw series' if detrend is None else 'series minus its quadratic trend'}; "
          f"{len(runs)} runs ({len(todo)} simulated and analysed now, in {t_sim:.0f} s)")

    pairs = []  # (kind, A name, B name, seed_a, seed_b)
    for n in SAME_RUNNERS:
        pairs += [("same", n, n, s, s + 1) for s in range(1, args.runs, 2)]
    for n in KNOWN:  # B's seed differs from A's: the same seed shares its random draws (below)
        pairs += [("known", "easy-run", n, s, s % args.runs + 1) for s in range(1, args.runs + 1)]
    cjobs = [(by[(a, sa)]["doc"], by[(b, sb)]["doc"], args.n_boot, 0, detrend)
             for _, a, b, sa, sb in pairs]
    with ProcessPoolExecutor(args.jobs) as ex:
        results = list(ex.map(compare_pair, cjobs, chunksize=4))
    rows = []
    for (kind, a, b, sa, sb), metrics in zip(pairs, results):
        meas_a, mod_a = pops[a]
        meas_b, mod_b = pops[b]
        for e in metrics:
            key = (e["side"], e["name"])
            row = {"kind": kind, "a": a, "b": b, "seed_a": sa, "seed_b": sb, **e}
            if kind == "same":
                row["true_diff"] = 0.0
                row["model_diff"] = 0.0
            else:
                row["true_diff"] = meas_b[key] - meas_a[key] if key in meas_a and key in meas_b else None
                row["model_diff"] = mod_b[key] - mod_a[key] if key in mod_a and key in mod_b else None
            rows.append(row)

    def scored(rs, truth_key):
        ok = [r for r in rs if r["ci95"] and r[truth_key] is not None and r["ci95"][1] > r["ci95"][0]]
        return sum(_cover(*r["ci95"], r[truth_key]) for r in ok), len(ok)

    print("\n1. Same runner, two seeds (true difference 0)")
    print(f"{'runner':20s} {'pairs':>5s} {'intervals':>9s} {'coverage':>9s} {'changed':>8s} "
          f"{'changed/pair':>13s} {'max':>4s} {'pairs >1 in 10':>15s}")
    tot = [0, 0, 0, 0, 0]
    for n in SAME_RUNNERS:
        rs = [r for r in rows if r["kind"] == "same" and r["a"] == n]
        k, m = scored(rs, "true_diff")
        ch = sum(r["changed"] for r in rs)
        per_pair = {}
        n_metrics = {}
        for r in rs:
            per_pair[(r["seed_a"])] = per_pair.get(r["seed_a"], 0) + r["changed"]
            n_metrics[r["seed_a"]] = n_metrics.get(r["seed_a"], 0) + 1
        over = sum(per_pair[p] > 0.1 * n_metrics[p] for p in per_pair)
        print(f"{n:20s} {len(per_pair):5d} {m:9d} {_pct(k, m):>9s} {_pct(ch, len(rs)):>8s} "
              f"{np.mean(list(per_pair.values())):6.2f} of {np.mean(list(n_metrics.values())):4.1f} "
              f"{max(per_pair.values()):4d} {over:8d} of {len(per_pair):3d}")
        tot = [tot[0] + k, tot[1] + m, tot[2] + ch, tot[3] + len(rs), tot[4] + over]
    print(f"{'all':20s} {'':5s} {tot[1]:9d} {_pct(tot[0], tot[1]):>9s} {_pct(tot[2], tot[3]):>8s}")
    same = [r for r in rows if r["kind"] == "same"]
    print("   per metric (all three runners, both feet): coverage / changed")
    for name in dict.fromkeys(r["name"] for r in same):
        rs = [r for r in same if r["name"] == name]
        k, m = scored(rs, "true_diff")
        ch = sum(r["changed"] for r in rs)
        degenerate = sum(1 for r in rs if r["ci95"] and r["ci95"][1] <= r["ci95"][0])
        extra = f"  ({degenerate} intervals of zero width: no step-to-step variation)" if degenerate else ""
        print(f"   {name:38s} {_pct(k, m):>8s} / {_pct(ch, len(rs)):>7s}  n={len(rs)}{extra}")

    print("   does a seed change the runner? easy-run's run medians over its seeds: their standard "
          "deviation | the one the intervals imply (mean width / 3.92 / √2)")
    meds: dict[tuple[str, str], list[float]] = {}
    for s in range(1, args.runs + 1):
        for side in SIDES:
            for name, (m, vals) in foot_series(by[("easy-run", s)]["doc"]["feet"][side]).items():
                if len(vals) and m.statistic == "median":
                    meds.setdefault((side, name), []).append(float(np.median(vals)))
    for (side, name), v in meds.items():
        w = [r["ci95"][1] - r["ci95"][0] for r in same
             if r["a"] == "easy-run" and r["side"] == side and r["name"] == name and r["ci95"]]
        if len(v) > 2 and w:
            print(f"   {side:5s} {name:33s} {np.std(v, ddof=1):10.4g} | {np.mean(w) / 3.92 / np.sqrt(2):10.4g}")

    print("\n2. Known differences (A = easy-run; true difference from pooled long runs | from the "
          "simulator's ground truth)")
    print(f"{'B':24s} {'intervals':>9s} {'coverage':>9s} {'| model':>9s} {'changed':>8s}")
    for n in KNOWN:
        rs = [r for r in rows if r["kind"] == "known" and r["b"] == n]
        k, m = scored(rs, "true_diff")
        k2, m2 = scored(rs, "model_diff")
        ch = sum(r["changed"] for r in rs)
        print(f"{n:24s} {m:9d} {_pct(k, m):>9s} {_pct(k2, m2):>9s} {_pct(ch, len(rs)):>8s}")
    known = [r for r in rows if r["kind"] == "known"]
    print("   per metric (all three B scenarios, both feet): coverage | against the model / changed")
    for name in dict.fromkeys(r["name"] for r in known):
        rs = [r for r in known if r["name"] == name]
        k, m = scored(rs, "true_diff")
        k2, m2 = scored(rs, "model_diff")
        ch = sum(r["changed"] for r in rs)
        print(f"   {name:38s} {_pct(k, m):>8s} | {_pct(k2, m2):>8s} / {_pct(ch, len(rs)):>7s}")
    for n in KNOWN:
        meas_a, mod_a = pops["easy-run"]
        meas_b, mod_b = pops[n]
        print(f"   true differences {n}: " + ", ".join(
            f"{s[0]} {m}: {meas_b[(s, m)] - meas_a[(s, m)]:+.4g}" for s in SIDES
            for m in ("valr_bw_per_s_rearfoot", "metatarsal_share", "contact_ms")
            if (s, m) in meas_a and (s, m) in meas_b))
        small = [r for r in rows if r["kind"] == "known" and r["b"] == n
                 and r["name"] in ("valr_bw_per_s_rearfoot", "metatarsal_share")]
        if small:
            print(f"   called changed, {n}: loading rate {_pct(sum(r['changed'] for r in small if r['name'].startswith('valr')), sum(1 for r in small if r['name'].startswith('valr')))}, "
                  f"metatarsal share {_pct(sum(r['changed'] for r in small if r['name'] == 'metatarsal_share'), sum(1 for r in small if r['name'] == 'metatarsal_share'))}"
                  f" (in the direction of the truth: "
                  f"{_pct(sum(r['changed'] and np.sign(r['diff']) == np.sign(r['true_diff']) for r in small), sum(r['changed'] for r in small))})")

    if args.ar_reps:
        print(f"\n3. Dependent steps: AR(1) series of 250 steps, shift 0.2 SD, {args.ar_reps} pairs each")
        for line in ar1_study((0.0, 0.5, 0.8), args.ar_reps, 250, min(args.n_boot, 1000), 0.2, 7):
            print("   " + line)
    print(f"\ntotal {time.time() - t0:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
