"""`insole compare A B` from the command line: inputs of every kind, output, bad inputs."""

from __future__ import annotations

import json
import os

import pytest
from helpers import run_cli

from insole import sim
from insole.cli import main
from insole.compare.compare import load_run


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Run A as a folder of captures, run B as a folder and as an analysis JSON file (60 s)."""
    d = tmp_path_factory.mktemp("cli")
    out = {}
    for key, scenario, seed in (("a", "easy-run", 3), ("b", "forefoot-overload", 4)):
        folder = d / key
        folder.mkdir()
        for side in ("left", "right"):
            sim.write_capture(folder / f"{side}.bin", sim.simulate(scenario, side, 60, seed=seed))
        out[key] = folder
        js = d / f"{key}.json"
        js.write_text(json.dumps(load_run(folder)[0]))
        out[key + "_json"] = js
    return out


def one_line_error(rc: int, err: str) -> str:
    assert rc == 2, (rc, err)
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("insole compare: error:")
    return lines[0]


def test_json_to_stdout_from_a_folder_and_an_analysis_file(inputs):
    r = run_cli("compare", inputs["a"], inputs["b_json"], "--json", "-",
                "--label-a", "old shoes", "--label-b", "orthotics", "--n-boot", "500")
    assert r.returncode == 0, r.stderr.decode()
    doc = json.loads(r.stdout)
    assert doc["schema"] == "insole.compare/1"
    assert (doc["a"]["label"], doc["b"]["label"]) == ("old shoes", "orthotics")
    assert doc["a"]["source"].endswith("(captures)") and doc["b"]["source"].endswith("(analysis)")
    met = [e for e in doc["metrics"] if e["name"] == "metatarsal_share"]
    assert len(met) == 2 and all(e["changed"] and e["diff"] > 0 for e in met)


def test_text_json_file_and_pictures(inputs, tmp_path, capsys):
    js = tmp_path / "cmp.json"
    out = tmp_path / "report"
    rc = main(["compare", str(inputs["a_json"]), str(inputs["b_json"]), "--json", str(js),
               "--out", str(out), "--n-boot", "300", "--label-a", "A<b>"])
    text = capsys.readouterr().out
    assert rc == 0
    assert text.startswith("insole compare: A = A<b>: ")
    assert "Changed (" in text and "forefoot (metatarsal) share of each step rose by" in text
    assert json.loads(js.read_text())["schema"] == "insole.compare/1"
    assert json.loads((out / "compare.json").read_text()) == json.loads(js.read_text())
    for name in ("compare.png", "compare-differences.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert (out / name).stat().st_size > 20_000, name
    page = (out / "compare.html").read_text()
    assert page.count('src="data:image/png;base64,') == 2  # both figures inlined
    assert "http" not in page  # self-contained: nothing to fetch
    assert "A&lt;b&gt;" in page and "A<b>" not in page  # labels escaped
    assert "forefoot (metatarsal) share of each step rose by" in page


def test_body_mass_note_for_analysis_files(inputs, capsys):
    rc = main(["compare", str(inputs["a_json"]), str(inputs["b"]), "--json", "-",
               "--body-mass-kg", "70", "--n-boot", "200"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert "applies to raw inputs only" in doc["notes"][0]


def test_missing_input_is_one_line_from_the_real_command(tmp_path, inputs):
    r = run_cli("compare", tmp_path / "nope", inputs["a"])
    line = one_line_error(r.returncode, r.stderr.decode())
    assert "no such file or directory" in line


def test_bad_inputs_are_one_line_each(tmp_path, inputs, capsys):
    a = str(inputs["a_json"])
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    wrong_schema = tmp_path / "truth.json"
    wrong_schema.write_text(json.dumps({"schema": "insole.truth/1", "feet": {}}))
    bad_json = tmp_path / "broken.json"
    bad_json.write_text('{"schema": "insole.analysis/1", "feet": ')
    bad_feet = tmp_path / "feet.json"
    bad_feet.write_text(json.dumps({"schema": "insole.analysis/1", "feet": {"left": {"steps": 3}}}))
    left_only, right_only = tmp_path / "left.json", tmp_path / "right.json"
    doc = json.loads(inputs["a_json"].read_text())
    for path, drop in ((left_only, "right"), (right_only, "left")):
        one = dict(doc, feet={k: v for k, v in doc["feet"].items() if k != drop})
        path.write_text(json.dumps(one))
    noise = tmp_path / "noise.bin"
    noise.write_bytes(os.urandom(20_000))
    cases = [
        ([str(empty_dir), a], "neither a recorded session"),
        ([str(wrong_schema), a], "expected insole.analysis/1"),
        ([str(bad_json), a], "not valid JSON"),
        ([a, str(bad_feet)], "steps must be a list"),
        ([str(noise), a], "not a capture"),
        ([str(left_only), str(right_only)], "no foot in common"),
        ([a, a, "--body-mass-kg", "5"], "outside 20-250 kg"),
        ([a, a, "--n-boot", "10"], "--n-boot"),
        ([a, a, "--label-a", "  "], "--label-a must not be empty"),
        ([a, a, "--json", str(tmp_path / "no" / "dir" / "x.json")], "cannot write"),
    ]
    for argv, expected in cases:
        rc = main(["compare", *argv])
        line = one_line_error(rc, capsys.readouterr().err)
        assert expected in line, (argv, line)


def test_a_recorded_session_is_a_run(tmp_path, inputs, capsys):
    session = tmp_path / "session"
    urls = [f"sim://easy-run?side={s}&seed=3&duration_s=30&realtime=0" for s in ("left", "right")]
    r = run_cli("record", *urls, "--out", session)
    assert r.returncode == 0, r.stderr.decode()
    rc = main(["compare", str(session), str(inputs["a"]), "--json", "-", "--n-boot", "200"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert doc["a"]["source"].endswith("(session)") and doc["a"]["feet"] == ["left", "right"]
    # the same runner and seed: the session holds the first 30 s of run A's 60 s
    assert any("differ in length" in n for n in doc["notes"])
