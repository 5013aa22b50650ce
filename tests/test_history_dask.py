"""`insole history add --dask tcp://…` analyses a folder of runs on a Dask cluster.

A ``dask.distributed.LocalCluster`` in this process (threads, no worker processes) listens on
127.0.0.1; the command, a separate process, connects to it over TCP, ships each run's files to
the workers and gets the analyses back. The cluster is closed on every path.
"""

from __future__ import annotations

import json

import pytest
from helpers import run_cli
from history_season import BODY_MASS_KG, shared_season

distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed "
                                                        "(pip install 'insole[dask]')")


@pytest.fixture
def cluster():
    c = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                 protocol="tcp", host="127.0.0.1", dashboard_address=None)
    try:
        yield c
    finally:
        c.close()


def test_dask_gives_the_same_history_as_the_process_pool(cluster, tmp_path):
    root, runs = shared_season()
    docs = []
    for db, extra in ((tmp_path / "pool.sqlite", []),
                      (tmp_path / "dask.sqlite", ["--dask", cluster.scheduler_address])):
        r = run_cli("history", "add", root / "runs", "--db", db, "--body-mass-kg", BODY_MASS_KG,
                    "--no-progress", *extra)
        assert r.returncode == 0, r.stderr.decode()
        assert f"{len(runs)} run(s) added" in r.stdout.decode()
        w = run_cli("history", "weeks", "--db", db, "--json", "-")
        docs.append(json.loads(w.stdout))
    assert docs[0] == docs[1]
    assert docs[0]["alerts"]


def test_dask_bad_address_is_one_line(tmp_path):
    (tmp_path / "r.json").write_text("{}")
    r = run_cli("history", "add", tmp_path, "--db", tmp_path / "h.sqlite", "--date", "2026-11-23",
                "--dask", "http://nowhere")
    err = r.stderr.decode()
    assert r.returncode == 2 and "Traceback" not in err, err
    assert "scheduler address" in err
