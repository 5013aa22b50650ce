"""`insole compare` on simulated runs: the judging criteria, the schema, the sentences, pictures.

Runs are 3-minute two-foot simulations (about 250 steps per foot), analysed as the command does
(``load_run`` on the folder ``insole sim --out DIR --side both`` writes).
"""

from __future__ import annotations

import copy
import json

import pytest

from insole import sim
from insole.compare.compare import (
    SCHEMA,
    CompareConfig,
    compare_runs,
    load_run,
    sentence,
    sentences,
)

DURATION_S = 180
RUNS = {"easy1": ("easy-run", 1), "easy2": ("easy-run", 2), "fo1": ("forefoot-overload", 1),
        "fo2": ("forefoot-overload", 2), "heel2": ("heel-striker", 2)}
# Runs of different scenarios are compared across different seeds: one seed gives every scenario
# the same step-to-step random draws, which two real runs never share.
ENTRY_KEYS = {"name", "side", "unit", "a_median", "b_median", "diff", "ci95", "n_a", "n_b", "changed"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = {}
    for key, (scenario, seed) in RUNS.items():
        d = tmp_path_factory.mktemp(key)
        for side in ("left", "right"):
            sim.write_capture(d / f"{side}.bin", sim.simulate(scenario, side, DURATION_S, seed=seed))
        doc, kind = load_run(d)
        assert kind == "captures"
        out[key] = doc
    return out


def metric(doc: dict, name: str, side: str) -> dict:
    return next(e for e in doc["metrics"] if e["name"] == name and e["side"] == side)


@pytest.mark.parametrize("a,b", [("easy1", "easy2"), ("fo1", "fo2")])
def test_same_runner_two_seeds_at_most_one_in_ten_metrics_changed(runs, a, b):
    doc = compare_runs(runs[a], runs[b])
    changed = [f"{e['side']} {e['name']}" for e in doc["metrics"] if e["changed"]]
    assert len(doc["metrics"]) >= 20
    assert len(changed) <= 0.1 * len(doc["metrics"]), changed
    assert not any(n.startswith("warning") for n in doc["notes"]), doc["notes"]


def test_forefoot_overload_metatarsal_share_up_on_both_feet(runs):
    doc = compare_runs(runs["easy1"], runs["fo2"], "normal", "overload")
    for side in ("left", "right"):
        e = metric(doc, "metatarsal_share", side)
        assert e["changed"] and e["diff"] > 0 and e["ci95"][0] > 0, e
        assert 0.15 < e["diff"] < 0.25  # 0.48 -> 0.68 in the scenarios
        # the heel gives up what the forefoot took over
        assert metric(doc, "heel_share", side)["ci95"][1] < 0


def test_heel_striker_loading_rate_up(runs):
    doc = compare_runs(runs["easy1"], runs["heel2"])
    for side in ("left", "right"):
        e = metric(doc, "valr_bw_per_s_rearfoot", side)
        assert e["changed"] and e["ci95"][0] > 0, e
        assert 25 < e["diff"] < 45  # 54 -> 90 BW/s in the scenarios
        assert e["n_a"] > 200 and e["n_b"] > 200
    # the heel-striker also runs at 162 instead of 170 steps/min and is heavier: said so
    warnings = [n for n in doc["notes"] if n.startswith("warning")]
    assert any("cadence differs" in w for w in warnings), warnings
    assert any("body weight differs" in w for w in warnings), warnings
    assert "Left foot: loading rate on heel strikes rose" in sentences(doc)[0]


def test_schema(runs):
    doc = compare_runs(runs["easy1"], runs["fo2"], "old shoes", "new shoes",
                       source_a="a-dir", source_b="b-dir")
    assert set(doc) == {"schema", "a", "b", "metrics", "notes"}
    assert doc["schema"] == SCHEMA == "insole.compare/1"
    assert doc["a"]["label"] == "old shoes" and doc["b"]["source"] == "b-dir"
    assert doc["a"]["feet"] == ["left", "right"]
    json.dumps(doc, allow_nan=False)
    seen = set()
    for e in doc["metrics"]:
        assert set(e) == ENTRY_KEYS
        assert e["side"] in ("left", "right", "both")
        assert (e["side"], e["name"]) not in seen
        seen.add((e["side"], e["name"]))
        assert e["unit"]
        assert isinstance(e["changed"], bool) and isinstance(e["n_a"], int)
        # 6 significant digits each
        assert e["diff"] == pytest.approx(e["b_median"] - e["a_median"],
                                          abs=1e-5 * max(abs(e["a_median"]), abs(e["b_median"])))
        lo, hi = e["ci95"]
        assert lo <= hi
        assert e["changed"] == (lo > 0 or hi < 0)
    names = {e["name"] for e in doc["metrics"]}
    for required in ("valr_bw_per_s_rearfoot", "peak_force_bw", "metatarsal_share", "arch_share",
                     "heel_share", "met1_share", "met23_share", "met5_share", "contact_ms",
                     "cadence_spm", "rearfoot_strike_share", "contact_ms_symmetry_pct",
                     "valr_bw_per_s_rearfoot_symmetry_pct"):
        assert required in names


def test_seeded_and_does_not_touch_its_inputs(runs):
    before = copy.deepcopy(runs["easy1"])
    d1 = compare_runs(runs["easy1"], runs["easy2"], config=CompareConfig(n_boot=500, seed=3))
    d2 = compare_runs(runs["easy1"], runs["easy2"], config=CompareConfig(n_boot=500, seed=3))
    d3 = compare_runs(runs["easy1"], runs["easy2"], config=CompareConfig(n_boot=500, seed=4))
    assert d1 == d2
    assert [e["ci95"] for e in d1["metrics"]] != [e["ci95"] for e in d3["metrics"]]
    assert runs["easy1"] == before


def test_incomplete_steps_are_skipped_and_counted(runs):
    doc_b = copy.deepcopy(runs["easy2"])
    steps = doc_b["feet"]["left"]["steps"]
    for st in steps[10:40]:  # as a lossy recording leaves them
        st.update(complete=False, peak_force_bw=None, impact_peak_bw=None, valr_bw_per_s=None,
                  valr_method=None, strike=None, zone_impulse_share=None)
        st.pop("metatarsal_share", None)
    n_clean = sum(1 for s in steps if s.get("complete"))
    doc = compare_runs(runs["easy1"], doc_b)
    assert metric(doc, "peak_force_bw", "left")["n_b"] == n_clean
    assert metric(doc, "metatarsal_share", "left")["n_b"] == n_clean
    assert metric(doc, "peak_force_bw", "right")["n_b"] == len(doc_b["feet"]["right"]["steps"])


def test_one_foot_and_too_few_steps(runs):
    doc_b = copy.deepcopy(runs["easy2"])
    del doc_b["feet"]["right"]
    doc_b["feet"]["left"]["steps"] = doc_b["feet"]["left"]["steps"][:15]
    doc = compare_runs(runs["easy1"], doc_b, "A", "B")
    assert {e["side"] for e in doc["metrics"]} == {"left"}
    assert any("only A has the right foot" in n for n in doc["notes"])
    e = metric(doc, "contact_ms", "left")
    assert e["ci95"] is None and e["changed"] is False and e["n_b"] == 15
    assert "too few steps for an interval" in sentence(e)
    assert any("fewer than 20 steps" in n for n in doc["notes"])


def test_a_forefoot_runner_has_no_heel_strikes_to_compare(runs, tmp_path):
    for side in ("left", "right"):
        sim.write_capture(tmp_path / f"{side}.bin", sim.simulate("forefoot-runner", side, 60, seed=2))
    doc = compare_runs(runs["easy1"], load_run(tmp_path)[0])
    e = metric(doc, "valr_bw_per_s_rearfoot", "left")
    assert e["n_b"] == 0 and e["b_median"] is None and not e["changed"]
    assert "not compared" in sentence(e)
    s = metric(doc, "rearfoot_strike_share", "left")
    assert s["changed"] and s["a_median"] == 1.0 and s["b_median"] < 0.1


def test_sentences_in_plain_words():
    valr = {"name": "valr_bw_per_s_rearfoot", "side": "left", "unit": "BW/s", "a_median": 72.0,
            "b_median": 59.04, "diff": -12.96, "ci95": [-17.28, -7.92], "n_a": 300, "n_b": 310,
            "changed": True}
    assert sentence(valr, "old shoes", "orthotics") == (
        "Left foot: loading rate on heel strikes fell 18 % (95 % CI 11–24 %), 72.0 → 59.0 BW/s.")
    met = {"name": "metatarsal_share", "side": "right", "unit": "share of stance impulse",
           "a_median": 0.481, "b_median": 0.682, "diff": 0.201, "ci95": [0.197, 0.205],
           "n_a": 250, "n_b": 250, "changed": True}
    assert sentence(met) == ("Right foot: forefoot (metatarsal) share of each step rose by 20.1 "
                             "points (95 % CI 19.7–20.5 points), 48.1 % → 68.2 %.")
    same = dict(valr, b_median=72.5, diff=0.5, ci95=[-0.7, 1.6], changed=False)
    assert sentence(same) == ("Left foot: loading rate on heel strikes: no clear change (+0.7 %, "
                              "95 % CI −1.0 to +2.2 %), 72.0 → 72.5 BW/s.")
    sym = {"name": "contact_ms_symmetry_pct", "side": "both", "unit": "%", "a_median": 6.0,
           "b_median": 1.0, "diff": -5.0, "ci95": [-6.5, -3.4], "n_a": 500, "n_b": 500,
           "changed": True}
    assert sentence(sym) == ("Left/right asymmetry of contact time went from +6.0 % to +1.0 % "
                             "(towards symmetry): −5.0 points (95 % CI −6.5 to −3.4 points).")


def test_pace_length_and_body_weight_warnings(runs):
    doc_b = copy.deepcopy(runs["easy2"])
    for foot in doc_b["feet"].values():
        foot["summary"]["contact_ms_median"] *= 0.9  # a faster run: shorter contacts
        foot["summary"]["duration_s"] *= 2
    doc_b["body"] = dict(doc_b["body"], body_weight_n=doc_b["body"]["body_weight_n"] * 1.05)
    notes = compare_runs(runs["easy1"], doc_b, config=CompareConfig(n_boot=200))["notes"]
    warnings = [n for n in notes if n.startswith("warning")]
    assert any("contact time differs" in w and "pace" in w and "(−10." in w for w in warnings), warnings
    assert any("differ in length (3.0 and 6.0 min)" in w for w in warnings), warnings
    assert any("body weight differs" in w for w in warnings), warnings
    assert not any("cadence differs" in w for w in warnings)
