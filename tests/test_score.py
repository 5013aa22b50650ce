"""insole.score on hand-made analysis and truth documents, and the `insole score` command."""

from __future__ import annotations

import json

import pytest
from helpers import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from insole.errors import InputFileError
from insole.validation.score import match_steps, score


def _truth(steps_l, steps_r=None, expected=(), absent=(), **foot_extra):
    feet = {"left": {"zones": ["heel"], "steps": steps_l, **foot_extra}}
    if steps_r is not None:
        feet["right"] = {"zones": ["heel"], "steps": steps_r}
    return {"schema": "insole.truth/1", "scenario": "hand", "seed": 0, "feet": feet,
            "expected_flags": [{"code": c, "side": s} for c, s in expected], "absent_flags": list(absent)}


def _analysis(steps_l, steps_r=None, flags=()):
    feet = {"left": {"steps": steps_l}}
    if steps_r is not None:
        feet["right"] = {"steps": steps_r}
    return {"schema": "insole.analysis/1", "feet": feet,
            "flags": [{"code": c, "side": s} for c, s in flags]}


def _step(ic, to, strike="rearfoot"):
    return {"ic_s": ic, "to_s": to, "contact_ms": (to - ic) * 1e3, "strike": strike}


TRUE = [_step(1.0 + 0.7 * k, 1.25 + 0.7 * k) for k in range(10)]


def test_perfect_detection():
    r = score(_analysis(TRUE), _truth(TRUE))
    f = r["feet"]["left"]
    assert (f["tp"], f["fp"], f["fn"], f["f1"]) == (10, 0, 0, 1.0)
    assert f["ic_error_ms"]["median"] == 0 and f["to_error_ms"]["p95"] == 0
    assert f["strike"]["agreement"] == 1.0
    assert r["passed"]


def test_errors_misses_and_false_alarms():
    det = [_step(s["ic_s"] + 0.003, s["to_s"] - 0.004) for s in TRUE[:8]]  # two missed
    det.append(_step(50.0, 50.2))  # a false alarm
    det.append(_step(TRUE[8]["ic_s"] + 0.030, TRUE[8]["to_s"]))  # outside 20 ms: fp and fn
    r = score(_analysis(det), _truth(TRUE), criteria={"f1_min": 0.9, "ic_median_ms_max": 5})
    f = r["feet"]["left"]
    assert (f["tp"], f["fp"], f["fn"]) == (8, 2, 2)
    assert f["precision"] == pytest.approx(0.8) and f["recall"] == pytest.approx(0.8)
    assert f["f1"] == pytest.approx(0.8)
    assert f["ic_error_ms"]["median"] == pytest.approx(3.0, abs=1e-6)
    assert f["to_error_ms"]["median"] == pytest.approx(4.0, abs=1e-6)
    assert f["contact_error_ms"]["median"] == pytest.approx(7.0, abs=1e-6)
    assert f["ic_bias_ms"] == pytest.approx(3.0, abs=1e-6)
    assert r["ok"] == {"f1_min": False, "ic_median_ms_max": True, "flags": True}
    assert not r["passed"]
    # a wider tolerance turns the 30 ms detection into a hit
    assert score(_analysis(det), _truth(TRUE), tolerance_s=0.05)["feet"]["left"]["tp"] == 9


def test_matching_is_one_to_one_and_prefers_the_closest():
    # two detections near one true step: only the closer one matches
    assert match_steps([0.995, 1.002], [1.0], 0.02) == [(1, 0)]
    # one detection between two true steps: matched once
    assert len(match_steps([1.01], [1.0, 1.02], 0.02)) == 1
    assert match_steps([], [1.0], 0.02) == []


def test_both_feet_combined_and_missing_foot():
    r = score(_analysis(TRUE), _truth(TRUE, TRUE[:4]))
    assert r["feet"]["right"]["fn"] == 4 and r["feet"]["right"]["f1"] == 0.0
    c = r["combined"]
    assert (c["n_true"], c["tp"], c["fn"]) == (14, 10, 4)
    assert c["f1"] == pytest.approx(2 * 1.0 * (10 / 14) / (1 + 10 / 14), abs=1e-4)


def test_strike_agreement_and_unknown_strikes():
    det = [dict(s, strike="midfoot") if k < 3 else s for k, s in enumerate(TRUE)]
    r = score(_analysis(det), _truth(TRUE), criteria={"strike_agreement_min": 0.8})
    st = r["feet"]["left"]["strike"]
    assert (st["n"], st["agree"], st["agreement"]) == (10, 7, 0.7)
    assert st["confusion"] == {"rearfoot": {"midfoot": 3, "rearfoot": 7}}
    assert r["ok"]["strike_agreement_min"] is False
    # steps the analysis declined to classify are counted apart, not as disagreements
    det2 = [dict(s, strike=None) if k == 9 else s for k, s in enumerate(det)]
    st = score(_analysis(det2), _truth(TRUE))["feet"]["left"]["strike"]
    assert (st["n"], st["agree"], st["unclassified"]) == (9, 6, 1)
    assert st["confusion"]["rearfoot"]["None"] == 1
    # truth without strike (walking records): no strike figure, and no failure for lack of one
    nostrike = [dict(s, strike=None) for s in TRUE]
    r = score(_analysis(det), _truth(nostrike), criteria={"strike_agreement_min": 0.8})
    assert r["feet"]["left"]["strike"]["agreement"] is None and r["ok"]["strike_agreement_min"]


def test_flags_expected_and_absent():
    t = _truth(TRUE, TRUE, expected=[("heel_strike_force", "left")], absent=["arch_collapse"])
    good = score(_analysis(TRUE, TRUE, flags=[("heel_strike_force", "left")]), t)
    assert good["flags"]["ok"] and good["passed"]
    missing = score(_analysis(TRUE, TRUE, flags=[("heel_strike_force", "right")]), t)
    assert missing["flags"]["expected"][0]["present"] is False and not missing["passed"]
    extra = score(_analysis(TRUE, TRUE, flags=[("heel_strike_force", "left"), ("arch_collapse", "right")]), t)
    assert extra["flags"]["absent"] == [{"code": "arch_collapse", "found_on": ["right"], "absent": False}]
    assert not extra["ok"]["flags"]


def test_scored_span_ignores_detections_of_partial_contacts():
    det = [_step(0.0, 0.3), *TRUE, _step(99.0, 99.3)]
    r = score(_analysis(det), _truth(TRUE, scored_from_s=0.5, scored_to_s=20.0))
    f = r["feet"]["left"]
    assert (f["tp"], f["fp"], f["n_ignored_outside_span"]) == (10, 0, 2)


def test_wrong_documents_are_input_errors():
    with pytest.raises(InputFileError, match="schema"):
        score(_truth(TRUE), _truth(TRUE))
    with pytest.raises(InputFileError, match="schema"):
        score(_analysis(TRUE), {"schema": "insole.truth/1"} | {"schema": "x"})
    with pytest.raises(InputFileError, match="criterion"):
        score(_analysis(TRUE), _truth(TRUE), criteria={"nonsense": 1})


def test_cli_table_and_exit_status(tmp_path):
    a, t = tmp_path / "a.json", tmp_path / "t.json"
    det = [_step(s["ic_s"] + 0.001, s["to_s"]) for s in TRUE[:9]]
    a.write_text(json.dumps(_analysis(det)))
    t.write_text(json.dumps(_truth(TRUE)))
    r = run_cli("score", a, t)
    assert r.returncode == 0, r.stderr.decode()
    out = r.stdout.decode()
    assert "F1" in out and "left" in out and "both" in out
    r = run_cli("score", a, t, "--require-f1", "0.99")
    assert r.returncode == 1 and b"FAILED" in r.stdout
    r = run_cli("score", a, t, "--tolerance-ms", "20", "--json", "-")
    assert r.returncode == 0 and json.loads(r.stdout)["schema"] == "insole.score/1"


def test_cli_bad_files_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    good = tmp_path / "t.json"
    good.write_text(json.dumps(_truth(TRUE)))
    for args in ((bad, good), (tmp_path / "missing.json", good), (good, good)):
        r = run_cli("score", *args)
        assert r.returncode == 2
        err = r.stderr.decode().strip()
        assert err.startswith("insole score: error:") and "\n" not in err and "Traceback" not in err


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 10, allow_nan=False), max_size=30),
       st.lists(st.floats(0, 10, allow_nan=False), max_size=30),
       st.floats(0.001, 0.1))
def test_matching_invariants(det, true, tol):
    pairs = match_steps(det, true, tol)
    assert len({i for i, _ in pairs}) == len(pairs) == len({j for _, j in pairs})  # one to one
    assert all(abs(det[i] - true[j]) <= tol + 1e-12 for i, j in pairs)
    # maximal: no unmatched detection lies within the tolerance of an unmatched true step
    md, mt = {i for i, _ in pairs}, {j for _, j in pairs}
    assert not any(abs(det[i] - true[j]) <= tol for i in range(len(det)) if i not in md
                   for j in range(len(true)) if j not in mt)


def test_a_recording_that_started_late_is_aligned_by_t0():
    # the device started 2.0 s before the recording: truth times are 2 s later on its clock
    truth = _truth([dict(s, ic_s=s["ic_s"] + 2.0, to_s=s["to_s"] + 2.0) for s in TRUE])
    truth["feet"]["left"]["device"] = {"first_t0_us": 4_294_000_000}
    analysis = _analysis(TRUE)
    analysis["feet"]["left"]["device"] = {"first_sample_t0_us": (4_294_000_000 + 2_000_000) % 2**32}
    analysis["feet"]["left"]["summary"] = {"duration_s": 60.0}
    f = score(analysis, truth)["feet"]["left"]
    assert (f["tp"], f["fp"], f["fn"], f["aligned_by_s"]) == (10, 0, 0, 2.0)
    assert f["ic_error_ms"]["median"] == pytest.approx(0.0, abs=1e-6)


def test_a_recording_that_caught_the_first_sample_is_scored_over_its_own_span():
    # The recorder opened the port before the device's first DATA frame (offset 0.0) and stopped
    # before the simulator did: only the true steps inside the recording are scored. (A shift of
    # 0.0 used to be taken for "no alignment data", scoring the whole truth: F1 0.29 in CI.)
    truth = _truth(TRUE)
    truth["feet"]["left"]["device"] = {"first_t0_us": 123_456}
    analysis = _analysis(TRUE[:5])
    analysis["feet"]["left"]["device"] = {"first_sample_t0_us": 123_456}
    analysis["feet"]["left"]["summary"] = {"duration_s": TRUE[5]["ic_s"] - 0.1}
    f = score(analysis, truth)["feet"]["left"]
    assert (f["tp"], f["fp"], f["fn"], f["aligned_by_s"]) == (5, 0, 0, 0.0)


def test_without_alignment_data_the_whole_truth_is_scored():
    f = score(_analysis(TRUE[:5]), _truth(TRUE))["feet"]["left"]
    assert (f["tp"], f["fn"], f["aligned_by_s"]) == (5, 5, None)


def test_an_expected_flag_on_a_foot_too_short_to_evaluate_is_not_a_failure():
    truth = _truth(TRUE, expected=[("heel_strike_force", "left")])
    analysis = _analysis(TRUE)
    analysis["feet"]["left"]["flags_evaluated"] = {"absolute": False, "drift": False}
    r = score(analysis, truth)
    assert r["flags"]["expected"][0]["evaluable"] is False and r["passed"]
    # where the flags were evaluated, a missing one still fails
    analysis["feet"]["left"]["flags_evaluated"] = {"absolute": True, "drift": False}
    assert not score(analysis, truth)["passed"]


def test_a_contact_the_analysis_did_not_see_is_matched_on_its_toe_off():
    """A step whose initial contact fell into a gap carries an estimated ic_s and says so in
    lost.strike: it is matched on the toe-off and its estimate stays out of the IC error; the
    same estimate without that mark is a false step and a missed one."""
    from insole.validation.score import IC_IN_GAP

    det = [dict(s) for s in TRUE]
    det[4] = {**_step(TRUE[4]["ic_s"] + 0.030, TRUE[4]["to_s"] + 0.002), "strike": None,
              "complete": False, "lost": {"strike": IC_IN_GAP}}
    f = score(_analysis(det), _truth(TRUE))["feet"]["left"]
    assert (f["tp"], f["fp"], f["fn"], f["matched_on_toe_off"]) == (10, 0, 0, 1)
    assert f["ic_error_ms"]["p95"] == 0  # the 30 ms estimate is not an IC error
    del det[4]["lost"]
    f = score(_analysis(det), _truth(TRUE))["feet"]["left"]
    assert (f["tp"], f["fp"], f["fn"], f["matched_on_toe_off"]) == (9, 1, 1, 0)
