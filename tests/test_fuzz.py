"""Fuzzing in CI: the decoder and every file reader (tools/fuzz.py's targets) take random and
mutated inputs and raise nothing but the documented one-line errors (InsoleError and its
subclasses). A small count here, under hypothesis; ``make fuzz`` runs a million.

Each crash the fuzzer found is kept below as a regression test, with the input that broke it.
"""

from __future__ import annotations

import json
import random

import fuzz
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from insole.errors import InputFileError

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.parametrize("name", [t.name for t in fuzz.TARGETS])
@SETTINGS
@given(seed=st.integers(0, 2**32 - 1))
def test_mutated_inputs_raise_only_one_line_insole_errors(name, seed, workdir):
    t = fuzz.BY_NAME[name]
    data = fuzz.make_input(t, random.Random(seed))
    fuzz.check(t, data, workdir)  # Crash (a test failure) on anything else


@pytest.mark.parametrize("name", ["stream_decoder", "packet_decoder", "foot_decoder",
                                  "rec_file", "session_json", "calibration", "truth_score"])
@SETTINGS
@given(data=st.binary(max_size=4096))
def test_random_bytes_raise_only_one_line_insole_errors(name, data, workdir):
    fuzz.check(fuzz.BY_NAME[name], data, workdir)


def test_the_fuzz_run_counts_outcomes_and_reports_a_crash(tmp_path):
    res = fuzz.run(40, 7, tmp_path, only=["packet_decoder", "calibration"], echo=lambda *a, **k: None)
    assert "crash" not in res and res["inputs"] == 40
    assert sum(sum(c.values()) for c in res["counts"].values()) == 40
    # a reader that breaks is caught, its input saved
    fuzz.BY_NAME["boom"] = fuzz.Target("boom", lambda s: s.packets, lambda d, p: 1 / 0)
    try:
        res = fuzz.run(3, 7, tmp_path, only=["boom"], echo=lambda *a, **k: None)
    finally:
        del fuzz.BY_NAME["boom"]
    assert res["crash"]["target"] == "boom" and "ZeroDivisionError" in res["crash"]["error"]
    assert (tmp_path / res["crash"]["input"].split("/")[-1]).is_file()


# --- regressions: the crashes the fuzzer found (each fixed) ----------------------------------


def _session(tmp_path, meta) -> None:
    d = tmp_path / "s"
    d.mkdir()
    (d / "session.json").write_text(json.dumps(meta))
    (d / "source0.rec").write_bytes(fuzz.seeds().recs[0])
    return d


@pytest.mark.parametrize("change", [
    {"sources": 7},                                     # TypeError: not iterable
    {"sources": [3]},                                   # AttributeError: int has no get
    {"sources": [{"framing": "serial"}]},               # KeyError: 'file'
    {"sources": [{"file": 1.5}]},                       # TypeError: Path / float
    {"sources": [{"file": "../../etc/passwd"}]},        # a file outside the session
    {"sources": [{"file": "source0.rec", "link": 3}]},  # AttributeError in the analysis
])
def test_session_json_of_the_wrong_shape_is_a_one_line_error(tmp_path, change):
    from insole.analysis.stream import streams_from_sources
    from insole.io.session import load_inputs

    meta = json.loads(fuzz.seeds().sessions[0])
    meta.update(change)
    with pytest.raises(InputFileError):
        streams_from_sources(load_inputs([_session(tmp_path, meta)]))


def test_a_session_json_that_is_not_an_object(tmp_path):
    from insole.io.session import load_inputs

    with pytest.raises(InputFileError):
        load_inputs([_session(tmp_path, [1, 2])])


@pytest.mark.parametrize("text", [
    b"zone,mass_kg,ohms\n\xe2\x28\xa1",                 # UnicodeDecodeError
    b"zone,mass_kg,force_n,ohms\nheel,,,100\n",         # KeyError: 'mass_kg'
    b"zone,force_n,volts,ohms\nheel,10,,\n",            # KeyError: 'volts'
])
def test_bench_table_damage_is_a_one_line_error(tmp_path, text):
    from insole.model import fits

    p = tmp_path / "b.csv"
    p.write_bytes(text)
    with pytest.raises(InputFileError) as e:
        fits.read_bench_table(p, 3300.0, 10000.0)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("field,value", [("zero_mv", "right"), ("zero_mv", [1]),
                                         ("channel", 3), ("body_mass_kg", "x"), ("checks", 5)])
def test_calibration_values_of_the_wrong_type_are_one_line_errors(tmp_path, field, value):
    from insole.model import calibration

    d = json.loads(fuzz.seeds().calibrations[0])
    if field == "zero_mv":
        d["channels"]["heel"]["zero_mv"] = value
    elif field == "channel":
        d["channels"]["arch"] = value
    else:
        d[field] = value
    p = tmp_path / "c.json"
    p.write_text(json.dumps(d))
    with pytest.raises(InputFileError):
        calibration.load(p)


@pytest.mark.parametrize("reader", ["load_gaitpdb", "load_fukuchi"])
def test_an_empty_data_set_file_is_an_error_not_a_warning(tmp_path, reader):
    from insole.validation import datasets

    p = tmp_path / "RBDS001runT25forces.txt"
    p.write_text("Time\tFx\tFy\tFz\tCOPx\tCOPy\tCOPz\tTy\n" if reader == "load_fukuchi" else "")
    with pytest.raises(InputFileError):
        getattr(datasets, reader)(p)


@pytest.mark.parametrize("where", ["feet", "foot", "steps", "step", "ic_s", "summary"])
def test_analysis_documents_of_the_wrong_shape_are_one_line_errors(tmp_path, where):
    from insole.compare.compare import compare_runs
    from insole.history.ingest import run_record
    from insole.validation.score import score

    doc = json.loads(fuzz.seeds().analyses[0])
    foot = doc["feet"]["left"]
    if where == "feet":
        doc["feet"] = {"left": 3.5}
    elif where == "foot":
        foot.pop("summary")
        foot["device"] = "x"
    elif where == "steps":
        foot["steps"] = 5
    elif where == "step":
        foot["steps"][0] = "heel"
    elif where == "ic_s":
        foot["steps"][0]["ic_s"] = [1]
    else:
        foot["summary"] = None
    truth = json.loads(fuzz.seeds().truths[0])
    for call in (lambda: score(doc, truth), lambda: compare_runs(doc, doc),
                 lambda: run_record(doc, "2026-12-01T10:00:00+00:00", "run.json")):
        try:
            call()
        except InputFileError as e:
            assert "\n" not in str(e)


def test_truth_documents_of_the_wrong_shape_are_one_line_errors():
    from insole.validation.score import score

    doc = json.loads(fuzz.seeds().analyses[0])
    for bad in ({"left": 1.0}, {"left": {"steps": 1}}, {"left": {"steps": [1]}}):
        truth = json.loads(fuzz.seeds().truths[0])
        truth["feet"] = bad
        with pytest.raises(InputFileError):
            score(doc, truth)
    truth = json.loads(fuzz.seeds().truths[0])
    truth["expected_flags"] = 4
    with pytest.raises(InputFileError):
        score(doc, truth)
    # found by make fuzz: OverflowError from int(inf) in the clock alignment
    truth = json.loads(fuzz.seeds().truths[0])
    truth["feet"]["left"]["device"]["first_t0_us"] = float("inf")
    with pytest.raises(InputFileError):
        score(doc, truth)
