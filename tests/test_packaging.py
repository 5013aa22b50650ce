"""The package as a user installs it: a wheel, outside the repository, runs sim and analyse.

Nothing the installed package needs may come from the checkout around it (the pin map and zone
files ship as package data; the firmware-in-the-loop harness is a repository tool)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from helpers import ROOT


def test_a_wheel_installed_outside_the_repository_runs_sim_and_analyse(tmp_path):
    wheel_dir, site, work = tmp_path / "whl", tmp_path / "site", tmp_path / "work"
    work.mkdir()
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                        str(wheel_dir), str(ROOT / "host")], timeout=300, capture_output=True)
    assert r.returncode == 0, r.stderr.decode()
    (wheel,) = wheel_dir.glob("insole-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(site), str(wheel)], check=True, timeout=300, capture_output=True)
    # PYTHONPATH comes before site-packages, where the editable install of the checkout sits
    env = {**os.environ, "PYTHONPATH": str(site)}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "insole.cli", *map(str, args)], cwd=work,
                              env=env, capture_output=True, timeout=120)

    r = subprocess.run([sys.executable, "-c", "import insole; print(insole.__file__)"], cwd=work,
                       env=env, capture_output=True, text=True)
    assert r.stdout.strip().startswith(str(site)), r.stdout + r.stderr
    r = run("sim", "easy-run", "--side", "left", "--duration-s", "20", "--out", work / "x.bin")
    assert r.returncode == 0, r.stderr.decode()
    r = run("analyse", work / "x.bin", "--json", "-")
    assert r.returncode == 0, r.stderr.decode()
    assert len(json.loads(r.stdout)["feet"]["left"]["steps"]) > 20
