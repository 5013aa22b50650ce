"""Accuracy of the analysis on the simulator: every scenario, both feet, 3 minutes, seeds 1-5.

Criteria (docs/validation.md): step F1 >= 0.99 with initial contacts matched within 20 ms, median
|IC error| <= 3 ms, median |TO error| <= 8 ms (per foot and both feet), every expected flag present
and every absent flag absent; the same on captures with 3 % packet loss and 0.5 % corrupt frames.

Each run is simulated, written as raw serial captures, analysed and scored once (module cache);
the tests only read the cached scores.
"""

from __future__ import annotations

import pytest

from insole import sim
from insole.analysis import analyse_paths
from insole.validation.score import score  # noqa: E402

SCENARIOS = ("easy-run", "heel-striker", "forefoot-overload", "arch-collapse", "forefoot-runner", "walk")
SEEDS = (1, 2, 3, 4, 5)
DURATION_S = 180.0
FAULTS = {"clean": {}, "lossy": {"loss_pct": 3.0, "corrupt_pct": 0.5}}
# TO 8 ms (was 5) and IC 3 ms (was 2): the original ESP32 ADC reads 0 below 150 mV (25 N a zone),
# so the insole sees toe-off 5.5-6.2 ms early, and a forefoot landing, spread over three
# metatarsal zones, 1.6-2.0 ms late; with the floor off both are under 0.3 ms (measured,
# docs/validation.md).
CRITERIA = {"f1_min": 0.99, "ic_median_ms_max": 3.0, "to_median_ms_max": 8.0}

_CACHE: dict = {}
# Under xdist (make test: --dist loadgroup) both tests of one run must meet on the worker that holds
# its cached score; one group per scenario spreads the 60 runs over the workers.
_BY_SCENARIO = [pytest.param(s, marks=pytest.mark.xdist_group(f"accuracy_sim-{s}")) for s in SCENARIOS]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("accuracy_sim")


def scored(run_dir, scenario: str, seed: int, faults: str) -> dict:
    key = (scenario, seed, faults)
    if key not in _CACHE:
        feet = {side: sim.simulate(scenario, side, DURATION_S, seed=seed, **FAULTS[faults])
                for side in ("left", "right")}
        paths = []
        for side, foot in feet.items():
            p = run_dir / f"{scenario}-{seed}-{faults}-{side}.bin"
            sim.write_capture(p, foot)
            paths.append(str(p))
        analysis = analyse_paths(paths)
        _CACHE[key] = score(analysis, sim.truth_document(feet), 0.020, CRITERIA)
        for p in paths:
            (run_dir / p).unlink()
    return _CACHE[key]


def _figures(r: dict) -> str:
    parts = []
    for name, f in [*r["feet"].items(), ("both", r["combined"])]:
        parts.append(f"{name}: F1 {f['f1']:.4f} (tp {f['tp']} fp {f['fp']} fn {f['fn']}), "
                     f"IC med {f['ic_error_ms']['median']} ms, TO med {f['to_error_ms']['median']} ms")
    fl = r["flags"]
    parts.append("missing flags: " + str([e["code"] + "/" + e["side"] for e in fl["expected"] if not e["present"]]))
    parts.append("unexpected flags: " + str([a["code"] + "@" + ",".join(a["found_on"]) for a in fl["absent"]
                                             if not a["absent"]]))
    return "; ".join(parts)


@pytest.mark.slow
@pytest.mark.parametrize("faults", list(FAULTS))
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scenario", _BY_SCENARIO)
def test_steps_and_timing(run_dir, scenario, seed, faults):
    r = scored(run_dir, scenario, seed, faults)
    failed = [k for k in CRITERIA if not r["ok"][k]]
    assert not failed, f"{scenario} seed {seed} {faults}: {', '.join(failed)} failed: {_figures(r)}"


@pytest.mark.slow
@pytest.mark.parametrize("faults", list(FAULTS))
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scenario", _BY_SCENARIO)
def test_flags(run_dir, scenario, seed, faults):
    r = scored(run_dir, scenario, seed, faults)
    assert r["flags"]["ok"], f"{scenario} seed {seed} {faults}: {_figures(r)}"
