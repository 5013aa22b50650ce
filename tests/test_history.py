"""The run history: six simulated weeks through `insole history`, the rules' arithmetic, the store's
idempotence, concurrency and bad databases, the pictures."""

from __future__ import annotations

import json
import sqlite3

import pytest
from helpers import ROOT, run_cli
from history_season import (
    BODY_MASS_KG,
    JUMP_WEEK,
    WEEKS,
    add_concurrently,
    shared_season,
)

from insole.errors import InsoleError
from insole.history import FootTotals, HistoryStore, RunRecord, weekly_history
from insole.history.ingest import run_record

METATARSALS = {"met1", "met23", "met5"}


def one_line_error(r) -> str:
    err = r.stderr.decode()
    assert r.returncode == 2, (r.returncode, err, r.stdout.decode())
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def season(tmp_path_factory):
    root, runs = shared_season()
    db = tmp_path_factory.mktemp("season") / "history.sqlite"
    r = run_cli("history", "add", root / "runs", "--db", db, "--athlete", "ana",
                "--body-mass-kg", BODY_MASS_KG, "--no-progress")
    assert r.returncode == 0, r.stderr.decode()
    assert f"{len(runs)} run(s) added for ana, 0 already there" in r.stdout.decode()
    w = run_cli("history", "weeks", "--db", db, "--json", "-")
    assert w.returncode == 0, w.stderr.decode()
    return {"root": root, "runs": runs, "db": db, "doc": json.loads(w.stdout)}


def test_weekly_sums_equal_the_runs_analyses(season):
    doc, runs = season["doc"], season["runs"]
    assert doc["schema"] == "insole.history/1" and doc["athlete"] == "ana"
    assert len(doc["weeks"]) == WEEKS
    for wk in doc["weeks"]:
        mine = [r["analysis"] for r in runs if r["week"] == wk["week"]]
        assert wk["runs"] == len(mine) == 2
        assert wk["duration_s"] == pytest.approx(sum(
            max(f["summary"]["duration_s"] for f in a["feet"].values()) for a in mine), abs=1e-3)
        for side in ("left", "right"):
            assert wk["steps"][side] == sum(a["feet"][side]["summary"]["steps"] for a in mine)
            zones = mine[0]["feet"][side]["device"]["zones"]
            assert set(wk["zone_load_bw_s"][side]) == set(zones)
            for z in zones:
                expected = sum(st["zone_impulse_bw_s"][z] for a in mine
                               for st in a["feet"][side]["steps"] if st["complete"])
                assert expected > 0
                assert wk["zone_load_bw_s"][side][z] == pytest.approx(expected, abs=2e-4)
            # the zones add up to the steps' total impulse
            total = sum(st["impulse_bw_s"] for a in mine for st in a["feet"][side]["steps"] if st["complete"])
            assert sum(wk["zone_load_bw_s"][side].values()) == pytest.approx(total, rel=1e-5)


def test_forefoot_jump_is_about_40_pct(season):
    doc = season["doc"]
    jump = next(w for w in doc["weeks"] if w["week"] == JUMP_WEEK)
    before = doc["weeks"][-2]
    for side in ("left", "right"):
        met_now = sum(jump["zone_load_bw_s"][side][z] for z in METATARSALS)
        met_before = sum(before["zone_load_bw_s"][side][z] for z in METATARSALS)
        assert 1.3 < met_now / met_before < 1.5
        for z in METATARSALS:
            assert jump["change_pct"][side][z] > 30
        assert jump["change_pct"][side]["heel"] < -30  # the heel carries less
        for w in doc["weeks"][1:-1]:  # the steady block moves by well under the 10 % guideline
            assert all(abs(v) < 5 for v in w["change_pct"][side].values())
        # ACWR from the 4th week on, around 1 in the steady block
        assert all(v is None for w in doc["weeks"][:3] for v in w["acwr"][side].values())
        assert all(0.9 < v < 1.1 for w in doc["weeks"][3:-1] for v in w["acwr"][side].values())


def test_alerts_exactly_on_the_jump_week_and_zones(season):
    alerts = season["doc"]["alerts"]
    assert alerts, "the jump week must alert"
    assert {a["week"] for a in alerts} == {JUMP_WEEK}
    load = {(a["side"], a["zone"], a["rule"]) for a in alerts if a["rule"] != "trend"}
    assert load == {(s, z, rule) for s in ("left", "right") for z in METATARSALS
                    for rule in ("10pct", "30pct")}
    trend = {(a["side"], a["zone"], a["code"]) for a in alerts if a["rule"] == "trend"}
    assert trend == {(s, "metatarsals", "trend_metatarsal_share") for s in ("left", "right")}
    for a in alerts:
        assert set(a) == {"code", "week", "side", "zone", "value", "threshold", "rule", "source",
                          "message"}
        assert a["value"] > a["threshold"]
        assert a["source"] and "Not a diagnosis" in a["message"]
    assert any("Nielsen" in a["source"] for a in alerts if a["rule"] == "30pct")
    assert any("Buist" in a["source"] for a in alerts if a["rule"] == "10pct")


def test_adding_again_changes_nothing(season):
    db = season["db"]
    r = run_cli("history", "add", season["root"] / "analyses", "--db", db, "--athlete", "ana",
                "--no-progress")
    assert r.returncode == 0, r.stderr.decode()
    assert f"0 run(s) added for ana, {len(season['runs'])} already there" in r.stdout.decode()
    w = run_cli("history", "weeks", "--db", db, "--json", "-")
    assert json.loads(w.stdout) == season["doc"]


def test_analyse_save_adds_as_it_analyses(season, tmp_path):
    run = season["runs"][0]
    db = tmp_path / "h.sqlite"
    args = ["analyse", run["dir"] / "left.bin", run["dir"] / "right.bin", "--body-mass-kg",
            BODY_MASS_KG, "--save", "--db", db, "--athlete", "bo"]
    r = run_cli(*args)
    assert "no start time" in one_line_error(r)  # captures need --date
    r = run_cli(*args, "--date", run["date"])
    assert r.returncode == 0, r.stderr.decode()
    assert "run added to the history" in r.stdout.decode()
    r = run_cli(*args, "--date", run["date"])
    assert "run already in the history" in r.stdout.decode()
    with HistoryStore.open(db) as store:
        (rec,) = store.runs("bo", with_analysis=True)
    assert rec.week == run["week"] and rec.start_time.startswith(run["date"])
    assert rec.feet["left"].steps == run["analysis"]["feet"]["left"]["summary"]["steps"]
    assert rec.analysis["schema"] == "insole.analysis/1"


def test_concurrent_adds_lose_nothing(season, tmp_path):
    """Two processes add overlapping halves of the season at once: every run lands once."""
    files = sorted((season["root"] / "analyses").glob("*.json"))
    db = tmp_path / "h.sqlite"
    rcs, outs = add_concurrently(str(db), files, ROOT)
    assert rcs == [0, 0], outs
    with HistoryStore.open(db) as store:
        runs = store.runs("ana")
    assert len(runs) == len(files) == len({r.content_hash for r in runs})
    assert weekly_history(runs, "ana") == season["doc"]


def test_each_dated_file_adds_one_run_and_dates_from_names(season, tmp_path):
    one = sorted((season["root"] / "analyses").glob("*.json"))[0]
    plain = tmp_path / "run.json"
    plain.write_bytes(one.read_bytes())
    db = tmp_path / "h.sqlite"
    assert "no start time" in one_line_error(run_cli("history", "add", plain, "--db", db))
    r = run_cli("history", "add", plain, "--db", db, "--date", "2026-11-23T07:30")
    assert r.returncode == 0, r.stderr.decode()
    with HistoryStore.open(db) as store:
        (rec,) = store.runs("default")
    assert rec.week == "2026-W48" and rec.start_time == "2026-11-23T07:30:00"
    # --date is one day: a folder of several undated runs is refused with it
    folder = tmp_path / "undated"
    folder.mkdir()
    for k in range(2):
        (folder / f"r{k}.json").write_bytes(sorted((season["root"] / "analyses").glob("*.json"))[k].read_bytes())
    assert "--date names one day" in one_line_error(
        run_cli("history", "add", folder, "--db", db, "--date", "2026-11-23"))


@pytest.mark.parametrize("content", [b"this is not a database at all" * 40, b"SQLite format 3\x00" + b"\xff" * 200])
def test_damaged_database_is_one_line(tmp_path, content):
    db = tmp_path / "bad.sqlite"
    db.write_bytes(content)
    line = one_line_error(run_cli("history", "weeks", "--db", db))
    assert "not an insole history database" in line
    assert db.read_bytes() == content  # untouched


def test_foreign_database_is_one_line_and_untouched(tmp_path):
    db = tmp_path / "other.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
    con.commit()
    con.close()
    before = db.read_bytes()
    line = one_line_error(run_cli("history", "weeks", "--db", db))
    assert "another program" in line and "invoices" in line
    assert db.read_bytes() == before


def test_old_analysis_without_impulses_is_refused(season):
    doc = json.loads(json.dumps(season["runs"][0]["analysis"]))
    for foot in doc["feet"].values():
        for st in foot["steps"]:
            st.pop("zone_impulse_bw_s", None)
    with pytest.raises(InsoleError, match="impulse_bw_s"):
        run_record(doc, "2026-11-02", "old.json")


def test_plot_writes_pngs_and_one_self_contained_page(season, tmp_path):
    out = tmp_path / "plots"
    r = run_cli("history", "plot", "--db", season["db"], "--out", out)
    assert r.returncode == 0, r.stderr.decode()
    for name in ("weekly_load.png", "trends.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "index.html").read_text()
    assert page.count('src="data:image/png;base64,') == 2
    assert 'src="http' not in page and "<link" not in page
    assert JUMP_WEEK in page and "Nielsen" in page


# --- the rules' arithmetic on runs built directly ----------------------------------------


def _run(week: str, day: str, heel: float, met: float, minutes: float = 30.0, steps: int = 100,
         met_share: float | None = 0.5, n: int = 0) -> RunRecord:
    ft = FootTotals(steps=steps, steps_complete=steps, duration_s=minutes * 60, device_id="d",
                    impulse_bw_s=heel + met, zone_load_bw_s={"heel": heel, "met23": met},
                    valr_bw_per_s_rearfoot=50.0, metatarsal_share=met_share, arch_share=0.02)
    return RunRecord(content_hash=f"{week}-{n}", start_time=f"{day}T08:00:00", week=week,
                     duration_s=minutes * 60, feet={"left": ft}, device_ids={"left": "d"},
                     calibration={}, body_weight_n=700.0, body_weight_source="given", source="t",
                     run_id=n)


def _weeks(loads, minutes=None, shares=None):
    """One run a week from 2026-W02 (Monday 2026-01-05); loads = [(heel, met), ...]."""
    import datetime as dt

    out = []
    for i, (heel, met) in enumerate(loads):
        day = dt.date(2026, 1, 6) + dt.timedelta(days=7 * i)
        y, w, _ = day.isocalendar()
        out.append(_run(f"{y}-W{w:02d}", day.isoformat(), heel, met,
                        minutes=(minutes or [30] * len(loads))[i],
                        met_share=(shares or [0.5] * len(loads))[i], n=i))
    return weekly_history(out, "t")


def _rules(doc):
    return {(a["week"], a["zone"], a["rule"]) for a in doc["alerts"]}


def test_10pct_30pct_boundaries():
    doc = _weeks([(10, 10), (10, 11), (10, 12.1), (10, 15.8)])
    assert [w["change_pct"]["left"]["met23"] for w in doc["weeks"]] == [None, 10.0, 10.0, 30.58]
    # exactly 10 % is not "more than 10 %"; 30.6 % is both
    assert _rules(doc) == {("2026-W05", "met23", "10pct"), ("2026-W05", "met23", "30pct")}


def test_acwr_rule_and_its_first_weeks():
    doc = _weeks([(10, 10)] * 3 + [(10, 30)])
    assert [w["acwr"]["left"]["met23"] for w in doc["weeks"]] == [None, None, None, 2.0]
    alerts = [a for a in doc["alerts"] if a["rule"] == "acwr"]
    assert [(a["week"], a["zone"], a["value"], a["threshold"]) for a in alerts] == [
        ("2026-W05", "met23", 2.0, 1.5)]
    assert "Lolli" in alerts[0]["source"] and "Impellizzeri" in alerts[0]["source"]
    # an ACWR of exactly 1.5 (coupled: 4-week mean includes this week) does not alert
    doc = _weeks([(10, 8), (10, 8), (10, 8), (10, 14.4)])
    assert doc["weeks"][-1]["acwr"]["left"]["met23"] == 1.5
    assert not [a for a in doc["alerts"] if a["rule"] == "acwr"]


def test_running_time_rules_have_no_side_or_zone():
    doc = _weeks([(10, 10)] * 2, minutes=[30, 45])
    (a10, a30) = [a for a in doc["alerts"] if a["code"] == "running_time_rise"]
    assert a10["side"] is None and a10["zone"] is None and a10["value"] == 50.0
    assert {a10["rule"], a30["rule"]} == {"10pct", "30pct"}


def test_empty_weeks_are_listed_and_break_the_change():
    import datetime as dt

    runs = [_run("2026-W02", "2026-01-06", 10, 10, n=0), _run("2026-W04", "2026-01-20", 10, 20, n=1)]
    doc = weekly_history(runs, "t")
    assert [w["week"] for w in doc["weeks"]] == ["2026-W02", "2026-W03", "2026-W04"]
    assert doc["weeks"][1]["runs"] == 0 and doc["weeks"][1]["zone_load_bw_s"]["left"]["met23"] == 0
    assert doc["weeks"][2]["change_pct"]["left"]["met23"] is None  # from nothing: no percentage
    assert not [a for a in doc["alerts"] if a["rule"] in ("10pct", "30pct")]
    assert dt.date.fromisoformat("2026-01-20").isocalendar()[1] == 4


def test_tiny_zone_left_out_of_the_rules():
    doc = _weeks([(100, 0.5), (100, 1.0)])  # 0.5 % of the foot's load: a sensor near its floor
    assert doc["weeks"][1]["change_pct"]["left"]["met23"] == 100.0
    assert not doc["alerts"]


def test_trend_needs_history_and_flags_outside_the_range():
    shares = [0.50, 0.51, 0.49, 0.50, 0.50, 0.60]
    doc = _weeks([(10, 10)] * 6, shares=shares)
    (a,) = [a for a in doc["alerts"] if a["rule"] == "trend"]
    assert a["week"] == "2026-W07" and a["zone"] == "metatarsals" and a["value"] == 0.6
    assert a["threshold"] == pytest.approx(0.51 * 1.1, abs=1e-4)
    # the same jump with only 3 earlier runs is not judged (too little history)
    doc = _weeks([(10, 10)] * 4, shares=[0.5, 0.5, 0.5, 0.6])
    assert not [a for a in doc["alerts"] if a["rule"] == "trend"]


def test_no_runs_no_weeks():
    assert weekly_history([], "x") == {"schema": "insole.history/1", "athlete": "x", "weeks": [],
                                       "alerts": []}


def test_several_athletes_need_a_name(tmp_path, season):
    db = tmp_path / "h.sqlite"
    recs = [run_record(r["analysis"], r["date"], "t") for r in season["runs"][:2]]
    with HistoryStore.open(db) as store:
        assert store.add_run(recs[0], "ana").added
        assert store.add_run(recs[1], "bo").added
        again = store.add_run(recs[0], "bo")
        assert not again.added and again.athlete == "ana"
    line = one_line_error(run_cli("history", "weeks", "--db", db))
    assert "2 athletes" in line and "--athlete" in line
    assert "no athlete 'cy'" in one_line_error(run_cli("history", "weeks", "--db", db, "--athlete", "cy"))


def test_reading_a_missing_history_creates_nothing(tmp_path):
    db = tmp_path / "none.sqlite"
    assert "no history at" in one_line_error(run_cli("history", "weeks", "--db", db))
    assert not db.exists()
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")  # an empty file is an empty SQLite database: no history in it
    assert "holds no insole history" in one_line_error(run_cli("history", "plot", "--db", empty,
                                                               "--out", tmp_path / "p"))


def test_a_recorded_session_brings_its_own_start_time(tmp_path):
    import datetime as dt

    sess = tmp_path / "sess"
    urls = [f"sim://easy-run?side={s}&seed=4&duration_s=8&realtime=0" for s in ("left", "right")]
    r = run_cli("record", *urls, "--out", sess)
    assert r.returncode == 0, r.stderr.decode()
    created = dt.datetime.fromisoformat(json.loads((sess / "session.json").read_text())["created"])
    db = tmp_path / "h.sqlite"
    r = run_cli("history", "add", sess, "--db", db)  # no --date needed
    assert r.returncode == 0, r.stderr.decode()
    with HistoryStore.open(db) as store:
        (rec,) = store.runs("default")
    start = dt.datetime.fromisoformat(rec.start_time)
    assert start.tzinfo is not None and abs((start - created).total_seconds()) < 1
    y, w, _ = start.date().isocalendar()
    assert rec.week == f"{y}-W{w:02d}"
    assert set(rec.feet) == {"left", "right"} and rec.feet["left"].steps > 5


def test_a_truncated_history_is_one_line(season, tmp_path):
    db = tmp_path / "cut.sqlite"
    src = sqlite3.connect(season["db"])
    dst = sqlite3.connect(db)
    src.backup(dst)  # a whole, standalone copy (no WAL beside it)
    src.close()
    dst.close()
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])
    assert "damaged" in one_line_error(run_cli("history", "weeks", "--db", db))
