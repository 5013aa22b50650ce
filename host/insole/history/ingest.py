"""Turn inputs into runs for the history: find the runs, analyse them in parallel, make records.

- :func:`find_runs` turns command-line inputs into :class:`RunJob` s: a recorded session
  directory is one run (its start time from ``session.json``); an analysis JSON
  (``insole.analysis/1``) is one run; capture files given together are the feet of one run (as
  ``insole analyse`` takes them); a folder without ``session.json`` is searched: a folder that
  holds capture files (``*.bin``, ``*.cap``, ``*.raw``, ``*.rec``) directly is one run (the layout
  ``insole sim --out DIR`` writes), other folders are walked for sessions, analyses and such
  run folders.
- :func:`analyse_jobs` maps the per-run analysis, a pure function of a run's files, over a
  process pool (default) or a Dask cluster (``dask_address``), yielding results as they finish.
- :func:`run_record` turns an analysis document into a :class:`~insole.history.store.RunRecord`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from insole.errors import InputFileError, InsoleError, malformed
from insole.history.store import FootTotals, RunRecord
from insole.history.weeks import iso_week

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

ANALYSIS_SCHEMA = "insole.analysis/1"
CAPTURE_SUFFIXES = (".bin", ".cap", ".raw", ".rec")
_DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[T_ ](\d{2})[:h-]?(\d{2}))?")


@dataclass
class RunJob:
    """One run to analyse: its input paths (one session, one analysis JSON or its captures)."""

    label: str  # how messages name it
    paths: list[str]
    kind: str  # "session", "captures" or "analysis"
    start_time: str | None = None  # ISO 8601 when the input knows it (sessions)
    name_date: str | None = None  # a date found in the file or folder name
    files: dict[str, bytes] = field(default_factory=dict, repr=False)  # shipped to remote workers


@dataclass
class JobResult:
    job: RunJob
    analysis: dict | None
    error: str | None


# --- finding runs -------------------------------------------------------------------------


def find_runs(inputs: list[str]) -> tuple[list[RunJob], list[str]]:
    """Jobs for ``inputs``, and the files skipped inside folders (neither run nor capture).

    Raises:
        InputFileError: an input that does not exist, or a file that is none of the kinds.
    """
    jobs: list[RunJob] = []
    skipped: list[str] = []
    captures: list[str] = []
    for raw in inputs:
        p = Path(raw[len("file://"):] if raw.startswith("file://") else raw)
        if not p.exists():
            raise InputFileError(f"{p}: no such file or directory")
        if p.is_dir() or p.name == "session.json":
            jobs.extend(_walk(p if p.is_dir() else p.parent, skipped))
        elif p.suffix.lower() == ".json":
            jobs.append(_analysis_job(p, strict=True))
        else:
            captures.append(str(p))
    if captures:
        jobs.append(RunJob(" + ".join(captures), captures, "captures",
                           name_date=_date_in_name(captures[0])))
    return jobs, skipped


def _walk(d: Path, skipped: list[str]) -> list[RunJob]:
    if (d / "session.json").is_file():
        return [_session_job(d)]
    try:
        entries = sorted(d.iterdir())
    except OSError as e:
        raise InputFileError(f"{d}: cannot list ({e.strerror})") from e
    caps = [e for e in entries if e.is_file() and e.suffix.lower() in CAPTURE_SUFFIXES]
    if caps:
        skipped.extend(str(e) for e in entries if e.is_dir())
        return [RunJob(str(d), [str(c) for c in caps], "captures", name_date=_date_in_name(str(d)))]
    jobs: list[RunJob] = []
    for e in entries:
        if e.is_dir():
            jobs.extend(_walk(e, skipped))
        elif e.suffix.lower() == ".json":
            job = _analysis_job(e, strict=False)
            if job is None:
                skipped.append(str(e))
            else:
                jobs.append(job)
        elif not e.name.startswith("."):
            skipped.append(str(e))
    return jobs


def _session_job(d: Path) -> RunJob:
    meta_path = d / "session.json"
    try:
        meta = json.loads(meta_path.read_text())
        created = meta.get("created")
    except (OSError, ValueError, AttributeError) as e:
        raise InputFileError(f"{meta_path}: not a readable session.json") from e
    start = None
    if isinstance(created, str):
        try:
            t = _dt.datetime.fromisoformat(created)
        except ValueError:
            t = None
        if t is not None:
            # the recorder writes UTC; the runner's week is local, so convert at add time
            start = (t.astimezone() if t.tzinfo else t).isoformat(timespec="seconds")
    return RunJob(str(d), [str(d)], "session", start_time=start, name_date=_date_in_name(str(d)))


def _analysis_job(p: Path, strict: bool) -> RunJob | None:
    try:
        doc = json.loads(p.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as e:
        if strict:
            raise InputFileError(f"{p}: not a readable JSON file ({e})") from e
        return None
    if not isinstance(doc, dict) or doc.get("schema") != ANALYSIS_SCHEMA:
        if strict:
            raise InputFileError(f"{p}: not an analysis (schema {ANALYSIS_SCHEMA} expected)")
        return None
    return RunJob(str(p), [str(p)], "analysis", name_date=_date_in_name(str(p)))


def _date_in_name(path: str) -> str | None:
    m = _DATE_IN_NAME.search(Path(path).name)
    if not m:
        return None
    try:
        day = _dt.date.fromisoformat(m.group(1))
    except ValueError:
        return None
    if m.group(2):
        hh, mm = int(m.group(2)), int(m.group(3))
        if hh < 24 and mm < 60:
            return _dt.datetime(day.year, day.month, day.day, hh, mm).isoformat(timespec="seconds")
    return _dt.datetime(day.year, day.month, day.day).isoformat(timespec="seconds")


def parse_date(text: str) -> str:
    """``--date``: an ISO 8601 date or date-time (``2026-11-23``, ``2026-11-23T07:30``,
    ``2026-11-23T07:30+01:00``) → ISO 8601 text."""
    try:
        if len(text) == 10:
            d = _dt.date.fromisoformat(text)
            return _dt.datetime(d.year, d.month, d.day).isoformat(timespec="seconds")
        return _dt.datetime.fromisoformat(text).isoformat(timespec="seconds")
    except ValueError:
        raise InsoleError(f"--date {text!r}: expected an ISO date such as 2026-11-23 or "
                          "2026-11-23T07:30") from None


def assign_dates(jobs: list[RunJob], date: str | None) -> None:
    """Give every job a start time: its own (sessions), else ``date`` (``--date``, for one
    run), else a date in its name. Raises InsoleError naming a run that has none."""
    undated = [j for j in jobs if j.start_time is None]
    if date is not None and len(undated) > 1:
        raise InsoleError(f"--date names one day, but {len(undated)} runs have no start time of "
                          "their own: add them one at a time, or name each run's file or folder "
                          "with its date (e.g. 2026-11-23_run)")
    for j in undated:
        j.start_time = date or j.name_date
        if j.start_time is None:
            what = {"captures": "a capture", "analysis": "an analysis JSON"}.get(j.kind, "this input")
            raise InsoleError(f"{j.label}: {what} carries no start time: give --date ISO (e.g. "
                              "--date 2026-11-23) or put the date in its name")


# --- analysing ----------------------------------------------------------------------------


def _analyse_job(job: RunJob, body_mass_kg: float | None, calibration: list[str] | None) -> JobResult:
    """Worker side: analyse one run; errors come back as text (some don't pickle)."""
    from insole.analysis import analyse_paths

    try:
        if job.kind == "analysis":
            doc = json.loads(Path(job.paths[0]).read_text())
            return JobResult(job, doc, None)
        if job.files:  # a remote worker: the files came with the job
            with tempfile.TemporaryDirectory(prefix="insole-run-") as tmp:
                paths = []
                for rel, data in job.files.items():
                    dst = Path(tmp) / rel
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    dst.write_bytes(data)
                    top = Path(tmp) / Path(rel).parts[0]
                    if str(top) not in paths:
                        paths.append(str(top))
                doc = analyse_paths(paths, body_mass_kg, calibration)
            return JobResult(_light(job), doc, None)
        return JobResult(job, analyse_paths(job.paths, body_mass_kg, calibration), None)
    except InsoleError as e:
        return JobResult(_light(job), None, str(e))
    except (OSError, ValueError) as e:
        return JobResult(_light(job), None, f"{type(e).__name__}: {e}")


def _light(job: RunJob) -> RunJob:
    return RunJob(job.label, job.paths, job.kind, job.start_time, job.name_date)


def _ship(job: RunJob) -> RunJob:
    """Read the run's files into the job so a worker without this file system can analyse it."""
    if job.kind == "analysis":
        doc = Path(job.paths[0]).read_bytes()
        return RunJob(job.label, job.paths, job.kind, job.start_time, job.name_date,
                      {"__analysis__": doc})
    files: dict[str, bytes] = {}
    for p in map(Path, job.paths):
        try:
            if p.is_dir():
                for f in sorted(p.iterdir()):
                    if f.is_file():
                        files[f"{p.name}/{f.name}"] = f.read_bytes()
            else:
                files[p.name] = p.read_bytes()
        except OSError as e:
            raise InputFileError(f"{p}: cannot read ({e.strerror})") from e
    return RunJob(job.label, job.paths, job.kind, job.start_time, job.name_date, files)


def _analyse_shipped(job: RunJob, body_mass_kg, calibration) -> JobResult:
    if job.kind == "analysis":
        try:
            return JobResult(_light(job), json.loads(job.files["__analysis__"]), None)
        except ValueError as e:
            return JobResult(_light(job), None, f"{job.label}: not JSON ({e})")
    return _analyse_job(job, body_mass_kg, calibration)


def analyse_jobs(jobs: list[RunJob], body_mass_kg: float | None = None,
                 calibration: list[str] | None = None, dask_address: str | None = None,
                 max_workers: int | None = None) -> Iterator[JobResult]:
    """Analyse every job; yields :class:`JobResult` s in the order they finish.

    One job runs in this process. Several run on a :class:`ProcessPoolExecutor` (``max_workers``,
    default the CPU count), or, with ``dask_address`` (``tcp://host:8786``), on that Dask
    cluster: each job then carries its files' bytes, so workers need no shared file system.
    """
    if dask_address:
        yield from _analyse_dask(jobs, body_mass_kg, calibration, dask_address)
        return
    if len(jobs) <= 1 or max_workers == 1:
        for j in jobs:
            yield _analyse_job(j, body_mass_kg, calibration)
        return
    workers = min(len(jobs), max_workers or os.cpu_count() or 1)
    with ProcessPoolExecutor(max_workers=workers) as ex:
        futures = [ex.submit(_analyse_job, j, body_mass_kg, calibration) for j in jobs]
        try:
            for f in as_completed(futures):
                yield f.result()
        finally:
            for f in futures:
                f.cancel()


def check_dask_address(address: str) -> None:
    if not address.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
        raise InsoleError(f"--dask {address!r}: give a scheduler address such as tcp://host:8786")


def _analyse_dask(jobs, body_mass_kg, calibration, address) -> Iterator[JobResult]:
    try:
        from dask.distributed import Client
        from dask.distributed import as_completed as dask_completed
    except ImportError as e:
        raise InsoleError("--dask needs dask.distributed: pip install 'insole[dask]'") from e
    check_dask_address(address)
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError) as e:
        raise InsoleError(f"--dask {address}: cannot reach the scheduler ({e})") from e
    try:
        futures = [client.submit(_analyse_shipped, _ship(j), body_mass_kg, calibration, pure=False)
                   for j in jobs]
        try:
            for f in dask_completed(futures):
                yield f.result()
        finally:
            client.cancel(futures)
    finally:
        client.close()


# --- records ------------------------------------------------------------------------------


def content_hash(doc: dict) -> str:
    """What makes a run the same run: per foot, its device, its first sample time, its rate and
    zones and the times of its steps. Independent of body mass, calibration and of whether it
    came as a capture, a session or an analysis JSON."""
    ident = {}
    for side, foot in sorted(doc.get("feet", {}).items()):
        dev = foot.get("device", {})
        ident[side] = {"device_id": dev.get("device_id"), "t0_us": dev.get("first_sample_t0_us"),
                       "rate_hz": dev.get("rate_hz"), "zones": dev.get("zones"),
                       "steps": [[None if s["ic_s"] is None else round(s["ic_s"], 4), round(s["to_s"], 4)]
                                 for s in foot.get("steps", [])]}
    raw = json.dumps(ident, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()


def run_record(doc: dict, start_time: str, source: str) -> RunRecord:
    """See :func:`_run_record_unchecked`; a document of an unforeseen shape raises
    :class:`InputFileError` (one line), never a TypeError from inside."""
    with malformed(f"{source}: the analysis"):
        return _run_record_unchecked(doc, start_time, source)


def _run_record_unchecked(doc: dict, start_time: str, source: str) -> RunRecord:
    """The history's record of one analysed run.

    Raises:
        InputFileError: the document is no analysis, or was made by an insole that did not
            yet report per-step impulses in BW·s (``impulse_bw_s``).
    """
    if not isinstance(doc, dict) or doc.get("schema") != ANALYSIS_SCHEMA or not doc.get("feet"):
        raise InputFileError(f"{source}: not an analysis with feet (schema {ANALYSIS_SCHEMA})")
    try:
        day = _dt.datetime.fromisoformat(start_time)
    except ValueError as e:
        raise InsoleError(f"{source}: start time {start_time!r} is not ISO 8601") from e
    feet: dict[str, FootTotals] = {}
    duration = 0.0
    for side, foot in doc["feet"].items():
        steps = foot.get("steps", [])
        zone_load: dict[str, float] = dict.fromkeys(foot.get("device", {}).get("zones", []), 0.0)
        impulse = 0.0
        for st in steps:
            if not st.get("complete"):
                continue  # a step with missing samples has no impulse to add
            if "zone_impulse_bw_s" not in st:
                raise InputFileError(f"{source}: analysis has no per-step impulse_bw_s (made by an "
                                     "older insole): analyse the capture or session again")
            impulse += st["impulse_bw_s"]
            for z, v in st["zone_impulse_bw_s"].items():
                zone_load[z] = zone_load.get(z, 0.0) + v
        s = foot.get("summary", {})
        duration = max(duration, float(s.get("duration_s") or 0.0))
        feet[side] = FootTotals(
            steps=int(s.get("steps", len(steps))), steps_complete=int(s.get("steps_complete", 0)),
            duration_s=s.get("duration_s"), device_id=foot.get("device", {}).get("device_id"),
            impulse_bw_s=impulse, zone_load_bw_s=zone_load,
            valr_bw_per_s_rearfoot=s.get("valr_bw_per_s_median_rearfoot"),
            metatarsal_share=s.get("metatarsal_share_median"),
            arch_share=(s.get("zone_impulse_share_median") or {}).get("arch"))
    body = doc.get("body", {})
    return RunRecord(
        content_hash=content_hash(doc), start_time=start_time, week=iso_week(day.date()),
        duration_s=duration, feet=feet,
        device_ids={side: f.device_id for side, f in feet.items()},
        calibration={side: foot.get("quality", {}).get("calibration", "")
                     for side, foot in doc["feet"].items()},
        body_weight_n=body.get("body_weight_n"), body_weight_source=body.get("source"),
        source=source, analysis=doc)
