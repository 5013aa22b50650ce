"""CPU time per stage of one foot's offline analysis (the profile behind BENCHMARKS.md's speed).

    python bench/stages.py [CAPTURE_DIR] [--side left] [--runs 3]

Runs the analysis of one foot of a capture (default: the 2-hour bench capture in build/bench/)
in this process, as ``insole analyse`` runs each foot in its worker, and charges the process
CPU time (not wall time: the machine is shared) to each stage by wrapping the stage's entry
point. Stages: decode (bytes → grid blocks: frames, COBS, CRC, packets placed on the grid),
forces (volts → newtons, channel faults), swing (the swing-baseline tracker), buffer (joining
the undecided rows), steps+metrics (the detector and per-step metrics), document (body weight,
summary, flags) and JSON (the document written with orjson). Prints the median over the runs.
Used to print the before/after of issue 8's speed work (run it on two checkouts).
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

STAGES = [("decode", "insole.analysis.stream", "FootDecoder", "feed"),
          ("forces", "insole.analysis.forces", "ForceConverter", "feed"),
          ("swing", "insole.analysis.forces", "SwingTracker", "feed"),
          ("buffer", "insole.analysis.core", "FootCore", "_append"),
          ("steps+metrics", "insole.analysis.core", "FootCore", "_process"),
          ("document", "insole.analysis.document", "Analysis", "__init__"),
          ("JSON", "insole.analysis.document", "Analysis", "write_json")]


def _wrap(spent: dict, name: str, cls, attr: str) -> None:
    fn = getattr(cls, attr)

    def timed(*a, **k):
        t = time.process_time()
        try:
            return fn(*a, **k)
        finally:
            spent[name] += time.process_time() - t

    setattr(cls, attr, timed)


def run_once(capture: Path, side: str) -> dict[str, float]:
    import importlib

    from insole.analysis.document import Analysis, run_source
    from insole.io.session import open_inputs

    spent: dict[str, float] = defaultdict(float)
    originals = []
    for name, mod, cls_name, attr in STAGES:
        cls = getattr(importlib.import_module(mod), cls_name)
        originals.append((cls, attr, getattr(cls, attr)))
        _wrap(spent, name, cls, attr)
    try:
        src = next(s for s in open_inputs([str(capture)]) if Path(s.name).stem == side)
        t = time.process_time()
        run = run_source(src)
        Analysis([run]).write_json(io.BytesIO())
        spent["total"] = time.process_time() - t
    finally:
        for cls, attr, fn in originals:
            setattr(cls, attr, fn)
    # the decode stage's time includes nothing else; the stages below it are nested in none
    spent["other"] = spent["total"] - sum(v for k, v in spent.items() if k != "total")
    return dict(spent)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("capture", nargs="?", default=str(ROOT / "build" / "bench" / "easy-run-7200s-seed1"))
    ap.add_argument("--side", default="left")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    runs = [run_once(Path(args.capture), args.side) for _ in range(args.runs)]
    print(f"{args.capture} ({args.side} foot), CPU seconds, median of {args.runs}:")
    for name in [s[0] for s in STAGES] + ["other", "total"]:
        print(f"  {name:14s} {statistics.median(r.get(name, 0.0) for r in runs):6.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
