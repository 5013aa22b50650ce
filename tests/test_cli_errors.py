"""Bad input never gives a traceback: one line on stderr and exit status 2, or a counted fault."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import run_cli

from insole import protocol as P
from insole import sim


def one_line_error(r):
    err = r.stderr.decode()
    assert r.returncode == 2, (r.returncode, err)
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "error" in lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    d = tmp_path_factory.mktemp("cap")
    foot = sim.simulate("easy-run", "left", 20, seed=2)
    path = d / "left.bin"
    sim.write_capture(path, foot)
    return path


def test_empty_file(tmp_path):
    p = tmp_path / "empty.bin"
    p.write_bytes(b"")
    assert "empty" in one_line_error(run_cli("analyse", p))


def test_random_file(tmp_path):
    p = tmp_path / "random.bin"
    p.write_bytes(os.urandom(50_000))
    assert "not a capture" in one_line_error(run_cli("analyse", p))


def test_file_of_another_format(tmp_path):
    p = tmp_path / "data.csv"
    p.write_text("t,heel,arch\n" + "\n".join(f"{i},1.0,2.0" for i in range(1000)))
    assert "not a capture" in one_line_error(run_cli("analyse", p))
    png = tmp_path / "x.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(4000))
    one_line_error(run_cli("analyse", png))


def test_missing_file_and_directory(tmp_path):
    assert "no such file" in one_line_error(run_cli("analyse", tmp_path / "nope.bin"))
    assert "session" in one_line_error(run_cli("analyse", tmp_path))


def test_truncated_capture_is_analysed_with_the_tail_counted(tmp_path, capture):
    raw = capture.read_bytes()
    p = tmp_path / "cut.bin"
    p.write_bytes(raw[: len(raw) // 2 + 7])
    r = run_cli("analyse", p, "--json", "-")
    assert r.returncode == 0, r.stderr.decode()
    doc = json.loads(r.stdout)
    q = doc["feet"]["left"]["quality"]
    assert q["decode_errors_by_kind"].get("truncated") == 1
    assert doc["feet"]["left"]["summary"]["steps"] > 10


def test_capture_cut_in_the_middle_of_the_stream_start(tmp_path, capture):
    raw = capture.read_bytes()
    p = tmp_path / "joined_late.bin"
    p.write_bytes(raw[1001:])  # starts mid-frame, INFO lost
    r = run_cli("analyse", p, "--json", "-")
    assert r.returncode == 0, r.stderr.decode()
    q = json.loads(r.stdout)["feet"]["left"]["quality"]
    assert q["decode_errors_by_kind"].get("garbage") == 1
    assert q["missing_info"] == 1


def test_two_inputs_for_the_same_foot(capture):
    assert "both the left foot" in one_line_error(run_cli("analyse", capture, capture))


def test_port_that_does_not_exist(tmp_path):
    line = one_line_error(run_cli("record", "serial:///dev/ttyNOPE9", "--out", tmp_path / "s"))
    assert "/dev/ttyNOPE9" in line
    assert not (tmp_path / "s").exists()


def test_unknown_scheme_and_scenario(tmp_path):
    one_line_error(run_cli("record", "gopher://x", "--out", tmp_path / "s"))
    one_line_error(run_cli("record", "sim://no-such-run", "--out", tmp_path / "s2"))


def test_bad_numbers(tmp_path, capture):
    one_line_error(run_cli("analyse", capture, "--body-mass-kg", "5"))
    r = run_cli("analyse", capture, "--body-mass-kg", "heavy")
    assert r.returncode == 2 and "Traceback" not in r.stderr.decode()


def test_unwritable_json_path(capture, tmp_path):
    r = run_cli("analyse", capture, "--json", tmp_path / "no" / "dir" / "out.json")
    assert "does not exist" in one_line_error(r)
    assert r.stdout == b""  # the error comes first, not after a whole summary
    one_line_error(run_cli("analyse", capture, "--json", "/proc/nope/out.json"))


def test_only_status_packets(tmp_path):
    p = tmp_path / "status.bin"
    p.write_bytes(b"".join(P.frame(P.Status("left", 50, 3900, i, 500, 0, 0, 0, 0, 0))
                           for i in range(20)))
    assert "no DATA" in one_line_error(run_cli("analyse", p))


def test_sim_both_feet_into_a_bin_name_is_refused(tmp_path):
    r = run_cli("sim", "easy-run", "--duration-s", "5", "--out", tmp_path / "x.bin")
    assert "give --out DIR" in one_line_error(r)
    assert not (tmp_path / "x.bin").exists()


def test_a_folder_of_simulated_captures_is_an_input(tmp_path):
    out = tmp_path / "run"
    assert run_cli("sim", "easy-run", "--duration-s", "20", "--out", out).returncode == 0
    r = run_cli("analyse", out, "--json", "-")
    assert r.returncode == 0, r.stderr.decode()
    assert set(json.loads(r.stdout)["feet"]) == {"left", "right"}
    r = run_cli("export", out, "--csv", tmp_path / "s.csv")
    assert r.returncode == 0, r.stderr.decode()
    (tmp_path / "nothing").mkdir()
    assert "folder of captures" in one_line_error(run_cli("analyse", tmp_path / "nothing"))


def test_sim_url_fault_parameters_of_every_type(tmp_path):
    url = "sim://easy-run?duration_s=10&realtime=0&disconnect_sensor=arch&overrun_at=2,4&loss_pct=1"
    r = run_cli("record", url, "--out", tmp_path / "s", "-q")
    assert r.returncode == 0, r.stderr.decode()
    assert "unknown parameter 'foo'" in one_line_error(
        run_cli("record", "sim://easy-run?foo=1", "--out", tmp_path / "t"))
    assert "record the source first" in one_line_error(run_cli("analyse", "sim://easy-run"))


def test_every_help_page_renders():
    """`insole --help` and every subcommand's --help (argparse %-formats help strings: a bare
    "95 %" in one of them crashed the whole `insole --help`)."""
    import argparse

    from insole.cli import build_parser

    pages = 0
    todo = [build_parser()]
    while todo:
        p = todo.pop()
        assert p.format_help().startswith("usage: ")
        pages += 1
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                todo.extend(a.choices.values())
    assert pages > 15  # the main page, every command, and the history subcommands


def test_each_command_line_imports_only_its_own_command_module():
    """`insole X` builds a parser holding X alone (the table of names in insole.cli must match
    what each module registers), and an unknown name gets every command."""
    import argparse
    import importlib

    from insole.cli import _COMMAND_MODULES, build_parser

    def names(parser):
        acts = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return set(acts[0].choices)

    for module, registered in _COMMAND_MODULES.items():
        p = argparse.ArgumentParser()
        sub = p.add_subparsers()
        importlib.import_module(module).register(sub)
        assert set(sub.choices) == set(registered), module
        for name in registered:
            assert names(build_parser(name)) == set(registered)
    every = {n for r in _COMMAND_MODULES.values() for n in r}
    assert names(build_parser("no-such-command")) == every == names(build_parser(None))
    # in a fresh interpreter, `insole analyse --help` does not import the simulator or BLE
    code = ("import sys, contextlib, io\nfrom insole.cli import main\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "    main(['-v', 'analyse', '--help'])\n"
            "print(sorted(m for m in sys.modules if m in ('insole.sim', 'insole.io.ble', 'insole.cli.sim')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
