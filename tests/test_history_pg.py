"""The run history on a real PostgreSQL server gives the same JSON as on SQLite.

The fixture starts a private PostgreSQL (initdb + pg_ctl from the machine's PostgreSQL, found on
PATH or under /usr/lib/postgresql/*/bin) in a temporary directory, listening on a Unix socket
only (no TCP port), and stops it on every path. PostgreSQL refuses to run as root; when the
tests run as root (as here and in CI) the server runs as the unprivileged ``nobody`` user through
``runuser``, in a directory that user owns. Skipped, saying why, where no server binary exists.
pytest-postgresql's process fixture was not used: it runs pg_ctl as the current user, which is
root here.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from helpers import ROOT, run_cli
from history_season import add_concurrently, shared_season

pytest.importorskip("psycopg", reason="psycopg 3 is not installed (pip install 'insole[postgresql]')")


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    hits = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return hits[-1] if hits else None


@pytest.fixture(scope="module")
def pg_url():
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in "
                    "/usr/lib/postgresql/*/bin: apt-get install postgresql to run these tests")
    as_root = os.geteuid() == 0
    if as_root and not shutil.which("runuser"):
        pytest.skip("running as root and no runuser to start PostgreSQL as another user")
    prefix = ["runuser", "-u", "nobody", "--"] if as_root else []
    base = Path(tempfile.mkdtemp(prefix="insole-pg-", dir="/tmp"))
    if as_root:
        shutil.chown(base, "nobody")
    data, log = base / "data", base / "server.log"
    started = False
    try:
        subprocess.run([*prefix, initdb, "-D", str(data), "-U", "insole", "-A", "trust",
                        "-E", "UTF8", "--no-sync"], check=True, capture_output=True, timeout=120)
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
                        f"-k {base} -c listen_addresses= -p 5432 -c fsync=off", "start"],
                       check=True, capture_output=True, timeout=90)
        started = True
        yield f"postgresql://insole@/postgres?host={base}&port=5432"
    except subprocess.CalledProcessError as e:
        tail = log.read_text()[-2000:] if log.exists() else ""
        pytest.fail(f"PostgreSQL did not start: {e.stderr.decode()[-2000:]} {tail}")
    finally:
        if started:
            subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def analyses():
    return shared_season()[0] / "analyses"


def test_postgresql_gives_the_same_json(pg_url, analyses, tmp_path):
    docs = {}
    for db in (tmp_path / "h.sqlite", pg_url):
        r = run_cli("history", "add", analyses, "--db", db, "--athlete", "ana", "--no-progress")
        assert r.returncode == 0, r.stderr.decode()
        w = run_cli("history", "weeks", "--db", db, "--athlete", "ana", "--json", "-")
        assert w.returncode == 0, w.stderr.decode()
        docs[str(db)] = w.stdout.decode()
    sqlite_text, pg_text = docs.values()
    assert pg_text == sqlite_text
    doc = json.loads(pg_text)
    assert len(doc["weeks"]) == 6 and doc["alerts"]
    # adding again through PostgreSQL changes nothing
    r = run_cli("history", "add", analyses, "--db", pg_url, "--athlete", "ana", "--no-progress")
    assert "0 run(s) added for ana, 12 already there" in r.stdout.decode()


def test_postgresql_concurrent_adds_lose_nothing(pg_url, analyses):
    """Two processes add overlapping halves of the season at once into a fresh database (both
    also create the schema at once): every run lands once."""
    import psycopg

    from insole.history import HistoryStore, weekly_history

    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("CREATE DATABASE concurrent")
    url = pg_url.replace("/postgres?", "/concurrent?")
    files = sorted(analyses.glob("*.json"))
    rcs, outs = add_concurrently(url, files, ROOT)
    assert rcs == [0, 0], outs
    with HistoryStore.open(url) as store:
        runs = store.runs("ana")
    assert len(runs) == len(files) == len({r.content_hash for r in runs})
    assert len(weekly_history(runs, "ana")["weeks"]) == 6


def test_postgresql_unreachable_is_one_line(tmp_path):
    r = run_cli("history", "weeks", "--db", f"postgresql://insole@/postgres?host={tmp_path}&port=5999")
    err = r.stderr.decode()
    assert r.returncode == 2 and "Traceback" not in err
    assert len([ln for ln in err.splitlines() if ln.strip()]) == 1 and "cannot connect" in err
