"""Six simulated weeks for the history tests: a steady block of easy runs, then a week whose
forefoot load jumps about 40 % (the forefoot-overload scenario at the same body mass, cadence,
contact time and running time: metatarsal share 0.68 against 0.48).

Each run is a folder named with its date (``2026-10-06_run0``) holding ``left.bin`` and
``right.bin``, as ``insole sim --out`` writes them. Runs are 20 s long to keep the tests fast.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

from insole import sim
from insole.analysis import analyse_paths

FIRST_MONDAY = dt.date(2026, 10, 5)  # 2026-W41
WEEKS = 6
JUMP_WEEK = "2026-W46"
RUN_DAYS = (1, 4)  # Tuesday, Friday
RUN_S = 20
BODY_MASS_KG = 70.0


def make_season(root: Path, analyses: Path | None = None) -> list[dict]:
    """Write the season's captures under ``root``; returns one dict per run with its folder,
    date, week and analysis (analysed here, as the test's independent expectation). With
    ``analyses``, also writes each analysis as ``<date>_runK.json`` there."""
    runs = []
    seed = 100
    for wk in range(WEEKS):
        scenario = "forefoot-overload" if wk == WEEKS - 1 else "easy-run"
        for k, day in enumerate(RUN_DAYS):
            date = FIRST_MONDAY + dt.timedelta(days=7 * wk + day)
            d = root / f"{date.isoformat()}_run{k}"
            d.mkdir(parents=True)
            for side in ("left", "right"):
                foot = sim.simulate(scenario, side, RUN_S, seed=seed, body_mass_kg=BODY_MASS_KG)
                sim.write_capture(d / f"{side}.bin", foot)
            seed += 1
            doc = analyse_paths([str(d / "left.bin"), str(d / "right.bin")], BODY_MASS_KG)
            y, w, _ = date.isocalendar()
            runs.append({"dir": d, "date": date.isoformat(), "week": f"{y}-W{w:02d}", "analysis": doc})
            if analyses is not None:
                analyses.mkdir(parents=True, exist_ok=True)
                (analyses / f"{d.name}.json").write_text(json.dumps(doc))
    return runs


_SHARED: dict = {}


def shared_season() -> tuple[Path, list[dict]]:
    """One season per test process (``root/runs``, ``root/analyses``), made on first use and
    removed at exit; tests read it and never change it."""
    if not _SHARED:
        import atexit
        import shutil
        import tempfile

        root = Path(tempfile.mkdtemp(prefix="insole-season-"))
        atexit.register(shutil.rmtree, root, True)
        _SHARED["root"] = root
        _SHARED["runs"] = make_season(root / "runs", analyses=root / "analyses")
    return _SHARED["root"], _SHARED["runs"]


def add_concurrently(db: str, files: list[Path], root: Path) -> list:
    """Two ``insole history add`` processes adding overlapping halves of ``files`` into ``db``
    at once; returns the returncodes and outputs. Both processes end on every path."""
    halves = [files[:8], files[4:]]
    procs = [subprocess.Popen([sys.executable, "-m", "insole.cli", "history", "add", *map(str, h),
                               "--db", db, "--athlete", "ana", "--no-progress", "--jobs", "1"],
                              cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for h in halves]
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=120))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return [p.returncode for p in procs], outs
