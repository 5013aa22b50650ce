"""The loading-rate table of docs/validation.md: the analysis's per-foot median VALR against the
force plate's own (fukuchi2017, computed from the plate file by insole.validation.loading_rate)
and against the simulator's truth, clean and with 3 % frame loss and 1 % corrupt frames.

    .venv/bin/python tools/loading_rate_table.py
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from insole import sim
from insole.analysis import analyse_paths
from insole.analysis.stream import streams_from_sources
from insole.io.session import load_inputs
from insole.validation import damage, datasets, loading_rate
from insole.validation.score import match_steps

ROOT = Path(__file__).resolve().parent.parent
FUKUCHI = ROOT.parent / "shared" / "data" / "fukuchi2017"
MASS = {"RBDS001": 62.0, "RBDS002": 80.0, "RBDS004": 57.05}


def _row(name, side, ref, foot, truth_steps, paths, what) -> str:
    st = foot["steps"]
    m = Counter(s.get("valr_method") for s in st)
    v = [s["valr_bw_per_s"] for s in st if s.get("valr_method") == "20-80"]
    med = float(np.median(v)) if v else float("nan")
    kinds = Counter(s.get("impact_transient") for s in st if s.get("impact_transient"))
    err = f"{100 * (med / ref - 1):+.1f} %" if ref and v else "n/a"
    known = _strike_known(paths, foot, truth_steps, side)
    return (f"| {name} | {side} | {what} | {ref if ref else 'none'} | {med:.1f} | {err} | "
            f"{m.get('20-80', 0)}/{len(st)} | {kinds.get('shoulder', 0)}/{kinds.get('peak', 0)} | {known} |")


def _strike_known(paths, foot, truth_steps, side) -> str:
    fs = streams_from_sources(load_inputs([str(p) for p in paths]))[side]
    missing = np.all(np.isnan(fs.volts), axis=1)
    period = fs.period_us * 1e-6
    det = foot["steps"]
    pairs = match_steps([s["ic_s"] for s in det], [s["ic_s"] for s in truth_steps], 0.020)
    n = known = agree = 0
    for i, j in pairs:
        k = int(np.ceil(det[i]["ic_s"] / period))
        if k >= 1 and not missing[k - 1:k + int(round(0.080 / period)) + 1].any():
            n += 1
            known += det[i]["strike"] is not None
            agree += det[i]["strike"] == truth_steps[j]["strike"]
    return f"{known}/{n} known, {agree}/{known} agree" if n else "n/a"


def main() -> int:
    print("| recording | foot | capture | plate / truth median VALR (BW/s) | analysis median (20-80) | "
          "error | steps by 20-80 | shoulders/peaks | strike on steps with an intact first 80 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        for name, mass in MASS.items():
            src = FUKUCHI / f"{name}runT25forces.txt"
            if not src.is_file():
                print(f"{src} missing", file=sys.stderr)
                return 2
            truth = datasets.convert("fukuchi", src, d / name)
            plate = loading_rate.fukuchi_plate_valr(src)
            for what, dmg in (("clean", None), ("3 % loss, 1 % corrupt", (3.0, 1.0))):
                paths = [d / name / f"{s}.bin" for s in ("left", "right")]
                if dmg:
                    out = []
                    for k, p in enumerate(paths):
                        q = p.with_name(p.stem + "-dmg.bin")
                        q.write_bytes(damage.damage_capture(p.read_bytes(), *dmg, seed=7 + k))
                        out.append(q)
                    paths = out
                a = analyse_paths([str(p) for p in paths], body_mass_kg=mass)
                for side in ("left", "right"):
                    print(_row(name, side, plate["feet"][side]["median_bw_per_s"], a["feet"][side],
                               truth["feet"][side]["steps"], [p for p in paths if side in p.name], what))
        for scen in ("easy-run", "heel-striker"):
            for what, kw in (("clean", {}), ("3 % loss, 1 % corrupt", {"loss_pct": 3.0, "corrupt_pct": 1.0})):
                feet = {s: sim.simulate(scen, s, 180.0, seed=1, **kw) for s in ("left", "right")}
                paths = []
                for s, f in feet.items():
                    sim.write_capture(d / f"{scen}-{s}.bin", f)
                    paths.append(d / f"{scen}-{s}.bin")
                a = analyse_paths([str(p) for p in paths])
                for side in ("left", "right"):
                    ref = round(float(np.median([s["valr_bw_per_s"] for s in feet[side].truth["steps"]])), 2)
                    print(_row(f"sim {scen} seed 1", side, ref, a["feet"][side],
                               feet[side].truth["steps"], [p for p in paths if side in p.name], what))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
