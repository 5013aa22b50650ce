"""The whole analysis of one or two feet as the ``insole.analysis/1`` document.

Each source runs through a :class:`FootPipeline` (its chunks → :class:`FootDecoder` → grid
blocks → :class:`FootCore`), chunk by chunk, so memory does not grow with the recording. At the
end :class:`Analysis` makes the document from the feet's step tables: body weight, per-foot
summaries, flags, left/right timing. :meth:`Analysis.write_json` writes it piece by piece
(orjson); :meth:`Analysis.document` gives it as a dict.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import IO

import numpy as np
import orjson

from insole.analysis.core import (
    DEFAULT_BODY_WEIGHT_N,
    G_M_PER_S2,
    AnalysisConfig,
    FootCore,
    FootSteps,
    _med,
    foot_flags,
    foot_summary,
    live_update,
)
from insole.analysis.flags import RUNNING_MAX_DUTY_FACTOR
from insole.analysis.steps import StepDetector
from insole.analysis.stream import Block, FootDecoder, FootStream
from insole.errors import InputFileError
from insole.io.session import FRAMING_SERIAL, SourceData, open_inputs
from insole.model import calibration
from insole.model.calibration import Calibration

log = logging.getLogger(__name__)

SCHEMA = "insole.analysis/1"
__all__ = ["SCHEMA", "RUNNING_MAX_DUTY_FACTOR", "G_M_PER_S2", "AnalysisConfig", "Analysis",
           "FootPipeline", "LiveFeed", "analyse", "analyse_paths", "run_paths"]
# steps made into JSON objects at a time when the document is written
_STEPS_PER_PIECE = 2000
# two sources with more bytes than this together are analysed in two processes (one per foot;
# the feet are independent until the document is made); smaller ones are not worth the start
PARALLEL_MIN_BYTES = 16 << 20


@dataclass
class FootRun:
    """One foot at the end of its source: the core (steps, faults) and the ledger."""

    side: str
    core: FootCore
    quality: dict
    device: dict


class FootPipeline:
    """One source end to end, incrementally: :meth:`feed` its chunks, then :meth:`finish`.

    Args:
        name: the source's name (for messages and ``device.source``).
        framing: ``"serial"`` (bytes) or ``"packets"`` (one packet per chunk, BLE).
        calibrations: k and β per side; the foot's side is known once its data arrives.
        on_steps: passed to the :class:`FootCore` (called as steps are decided).
        step_table: passed to the :class:`FootCore`: the step table's storage (in memory by
            default; ``insole record`` appends it to files in the session, :class:`StepFile`).
    """

    def __init__(self, name: str, framing: str = FRAMING_SERIAL,
                 calibrations: dict[str, Calibration] | None = None,
                 config: AnalysisConfig | None = None, on_steps=None, step_table=None) -> None:
        self.name = name
        self.decoder = FootDecoder(name, framing)
        self.step_table = step_table
        self.calibrations = calibrations or {}
        self.config = config or AnalysisConfig()
        self.on_steps = on_steps
        self.core: FootCore | None = None
        self.side: str | None = None

    def feed(self, data: bytes, host_time_s: float | None = None) -> int:
        """One chunk as the source delivered it; returns the number of steps it decided."""
        block = self.decoder.feed(data, host_time_s)
        return self._feed_block(block) if block is not None else 0

    def _feed_block(self, block: Block) -> int:
        if self.core is None:
            asm = self.decoder.assembler
            info = asm.info_used
            self.side = info.side
            self.core = FootCore(info, asm.period_us, self.calibrations.get(info.side),
                                 self.config, self.on_steps, self.step_table)
        return self.core.feed(block)

    def finish(self, read_errors: dict[str, int] | None = None) -> FootRun:
        block, q = self.decoder.finish(read_errors)
        if block is not None:
            self._feed_block(block)
        if self.core is None:  # DATA came but no row (cannot happen with a packet of 1+ sets)
            raise InputFileError(f"{self.name}: no samples")
        core = self.core.finish()
        asm = self.decoder.assembler
        _foot_quality(core, q)
        info = core.info
        device = {"first_sample_t0_us": int(asm.t0_us) & 0xFFFFFFFF, "device_id": info.device_id,
                  "firmware": info.firmware, "zones": list(core.zones), "rate_hz": core.rate_hz,
                  "supply_mv": info.supply_mv, "r_fixed_ohm": info.r_fixed_ohm, "source": self.name}
        return FootRun(self.side, core, q, device)


def _foot_quality(core: FootCore, q: dict) -> dict:
    """The ledger plus what the core found: sensor faults, saturation, partial steps."""
    mask, reasons = core.faults(int(q.get("device_fault_mask", 0) or 0))
    q["sensor_fault_mask"] = mask
    q["sensor_faults"] = [z for c, z in enumerate(core.zones) if mask & (1 << c)]
    q["sensor_fault_reasons"] = reasons
    q["saturated_samples"] = core.converter.saturated_samples
    q["partial_steps_skipped"] = core.partial
    q["calibration"] = core.converter.name
    q["swing_baseline_n"] = core.swing.report_
    return q


def run_source(src: SourceData, calibrations: dict[str, Calibration] | None = None,
               config: AnalysisConfig | None = None, on_steps=None) -> FootRun:
    """Feed one source's chunks, as they are read, through a :class:`FootPipeline`."""
    pipe = FootPipeline(src.name, src.framing, calibrations, config, on_steps)
    for ch in src.chunks:
        pipe.feed(ch.data, ch.host_time_s)
    run = pipe.finish(src.read_errors)
    if src.link:  # the BLE link's own ledger: how often and how long it was down
        run.quality["link_reconnects"] = int(src.link.get("reconnects", 0))
        run.quality["link_disconnected_s"] = float(src.link.get("disconnected_s", 0.0))
    return run


class Analysis:
    """The document of one or two feet, made from their :class:`FootRun` at the end."""

    def __init__(self, runs: list[FootRun], body_mass_kg: float | None = None,
                 config: AnalysisConfig | None = None) -> None:
        self.config = config or AnalysisConfig()
        feet: dict[str, FootRun] = {}
        for r in runs:
            if r.side in feet:
                raise InputFileError(f"{r.device['source']} and {feet[r.side].device['source']} "
                                     f"are both the {r.side} foot; give one input per foot")
            feet[r.side] = r
        self.runs = feet
        # body weight: given, or the stride-average identity (one foot's mean force over whole
        # strides is half the body weight), the feet's estimates averaged
        estimates = [e for e in (r.core.body_weight_estimate_n() for r in feet.values()) if e]
        bw_est = float(np.mean(estimates)) if estimates else None
        if body_mass_kg is not None:
            bw, bw_source = body_mass_kg * G_M_PER_S2, "given"
        elif bw_est:
            bw, bw_source = bw_est, "stride-average identity"
        else:
            bw, bw_source = DEFAULT_BODY_WEIGHT_N, f"assumed {DEFAULT_BODY_WEIGHT_N:.0f} N (too few strides to estimate)"
        self.body_weight_n = bw
        self.steps: dict[str, FootSteps] = {}
        head: dict = {"schema": SCHEMA, "feet": {}, "flags": [], "notes": []}
        for side, r in feet.items():
            fs = FootSteps(r.core, bw)
            self.steps[side] = fs
            duration_s = r.quality["duration_s"]
            summary = foot_summary(fs, duration_s, r.core)
            flags, notes, evaluated = foot_flags(r.core, side, duration_s, bw)
            head["flags"].extend(flags)
            head["notes"].extend(notes)
            head["feet"][side] = {"steps": None, "summary": summary, "flags_evaluated": evaluated,
                                  "quality": r.quality, "device": r.device}
        head["body"] = {"body_weight_n": round(bw, 2), "source": bw_source,
                        "stride_average_estimate_n": round(bw_est, 2) if bw_est else None}
        if body_mass_kg is not None:
            head["body"]["body_mass_kg"] = body_mass_kg
            if bw_est:
                head["body"]["force_coverage"] = round(bw_est / bw, 3)
        head["summary"] = _run_summary(head["feet"])
        head["summary"].update(_between_feet(head["feet"], self.steps, head["notes"]))
        head["config"] = {"detector": vars(StepDetector(**self.config.detector)),
                          "metrics": asdict(self.config.metrics), "flags": asdict(self.config.flags)}
        self.head = head

    def document(self) -> dict:
        """The whole document as a dict (every step as an object: for tests and small runs)."""
        doc = dict(self.head)
        doc["feet"] = {side: dict(f, steps=self.steps[side].dicts())
                       for side, f in self.head["feet"].items()}
        return doc

    def write_json(self, fp: IO[bytes]) -> None:
        """Write the document to a binary file, the steps a piece at a time (orjson). With two
        feet of many steps, the second foot's steps are written by a forked process into a
        temporary file while this one writes the first's, then copied in (the same bytes)."""
        dumps = orjson.dumps
        head = self.head
        fp.write(b'{"schema":' + dumps(head["schema"]) + b',"feet":{')
        sides = list(head["feet"])
        helper = self._fork_steps(sides[1], fp) if len(sides) == 2 else None
        try:
            for n, side in enumerate(sides):
                foot = head["feet"][side]
                fp.write((b"," if n else b"") + dumps(side) + b':{"steps":[')
                joined = n and helper is not None and _join_steps(helper, fp)
                helper = None if n else helper
                if not joined:
                    _write_steps(self.steps[side], fp)
                rest = dumps({k: v for k, v in foot.items() if k != "steps"})
                fp.write(b"\n]," + rest[1:] + b"")
        finally:
            if helper is not None:  # the first foot's writing failed: stop the helper
                helper[0].terminate()
                helper[0].join()
                helper[1].close()
        fp.write(b"}")
        for key in ("flags", "notes", "body", "summary", "config"):
            fp.write(b",\n" + dumps(key) + b":" + dumps(head[key]))
        fp.write(b"}\n")

    def _fork_steps(self, side: str, fp: IO[bytes]):
        """A forked process writing ``side``'s steps into a temporary file, or None (few steps,
        one core, no fork on this platform, or it could not start)."""
        if self.steps[side].k < PARALLEL_MIN_STEPS or (os.cpu_count() or 1) < 2 \
                or "fork" not in multiprocessing.get_all_start_methods() \
                or threading.active_count() > 1:  # never fork a process with other threads
            return None
        # nothing buffered may be written twice: the child flushes the standard streams at exit
        fp.flush()
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            tmp = tempfile.TemporaryFile()
            proc = multiprocessing.get_context("fork").Process(
                target=_write_steps_and_exit, args=(self.steps[side], tmp), daemon=True)
            proc.start()
        except OSError:
            return None
        return proc, tmp


# two feet with more steps than this (together about 10 minutes of running) write their steps in
# two processes; fewer are not worth the fork
PARALLEL_MIN_STEPS = 2000


def _write_steps(fs: FootSteps, fp: IO[bytes]) -> None:
    """One foot's step objects, 2000 at a time, one a line, without the enclosing brackets."""
    dumps = orjson.dumps
    for start in range(0, fs.k, _STEPS_PER_PIECE):
        piece = dumps(fs.dicts(start, start + _STEPS_PER_PIECE))
        fp.write((b",\n" if start else b"\n") + piece[1:-1].replace(b"},{", b"},\n{"))


def _write_steps_and_exit(fs: FootSteps, tmp) -> None:
    """The forked helper: the steps into ``tmp``, flushed (the exit status says whether)."""
    _write_steps(fs, tmp)
    tmp.flush()


def _join_steps(helper, fp: IO[bytes]) -> bool:
    """Wait for the helper and copy what it wrote into ``fp``; False (nothing copied) if it
    failed, and the caller writes those steps itself."""
    proc, tmp = helper
    with tmp:
        proc.join()
        if proc.exitcode != 0:
            log.warning("the step writer exited with %s; writing those steps here", proc.exitcode)
            return False
        tmp.seek(0)
        shutil.copyfileobj(tmp, fp, 1 << 20)
    return True


def _between_feet(feet: dict, steps: dict[str, FootSteps], notes: list[str]) -> dict:
    """Step time and flight time between the feet, on one time base.

    Each foot has its own clock. A recorded session carries host receive times, from which each
    foot's device clock is mapped onto the host clock (offset and drift by minimum-delay
    filtering, ``quality.clock_*``). On that common base every step gets ``step_ms`` (its
    initial contact to the other foot's next one) and ``flight_ms`` (its toe-off to the other
    foot's next contact; negative: double support, as in walking). A raw capture has no host
    times, so its feet share no time base and these are left out, with a note.
    """
    if not ("left" in feet and "right" in feet):
        return {}
    qs = [feet[s]["quality"] for s in ("left", "right")]
    if any(q.get("clock_drift_ppm") is None for q in qs):
        notes.append("left/right step and flight times need a common time base: record both "
                     "feet into one session (raw captures carry no host receive times)")
        return {}
    mapped = {}
    for side in ("left", "right"):
        q = feet[side]["quality"]
        scale, offset = 1.0 + q["clock_drift_ppm"] * 1e-6, q["clock_offset_s"]
        fs = steps[side]
        mapped[side] = (fs.ic_s * scale + offset, fs.to_s * scale + offset)
    for side, other in (("left", "right"), ("right", "left")):
        ic, to = mapped[side]
        oic = np.sort(mapped[other][0])
        j = np.searchsorted(oic, ic, side="right")
        has = j < len(oic)
        nxt = np.where(has, oic[np.minimum(j, max(len(oic) - 1, 0))] if len(oic) else np.nan, np.nan)
        near = has & (nxt - ic <= 1.5)  # no contralateral contact near: a gap or a stop
        steps[side].step_ms = np.where(near, np.round((nxt - ic) * 1e3, 2), np.nan)
        steps[side].flight_ms = np.where(near, np.round((nxt - to) * 1e3, 2), np.nan)
    out = {"time_base": "host clock: each foot's device clock mapped by its estimated offset and "
                        "drift (residual " + ", ".join(f"{s} {feet[s]['quality']['clock_residual_ms']:.1f} ms"
                                                       for s in ("left", "right")) + ")"}
    for side in ("left", "right"):
        feet[side]["summary"]["step_ms_median"] = _med(steps[side].step_ms)
        feet[side]["summary"]["flight_ms_median"] = _med(steps[side].flight_ms)
    left, right = feet["left"]["summary"]["step_ms_median"], feet["right"]["summary"]["step_ms_median"]
    if left and right:
        out["step_time_symmetry_index_pct"] = round(200.0 * (left - right) / (left + right), 2)
    return out


def _run_summary(feet: dict) -> dict:
    out: dict = {}
    cad = [f["summary"]["cadence_spm"] for f in feet.values() if f["summary"]["cadence_spm"]]
    if cad:
        out["cadence_spm"] = round(float(np.mean(cad)), 2)
    if "left" in feet and "right" in feet:
        sym = {}
        for key in ("contact_ms_median", "peak_force_bw_median", "valr_bw_per_s_median",
                    "metatarsal_share_median"):
            left, right = feet["left"]["summary"].get(key), feet["right"]["summary"].get(key)
            if left is not None and right is not None and (left + right) != 0:
                sym[key.replace("_median", "")] = round(200.0 * (left - right) / (left + right), 2)
        out["symmetry_index_pct"] = sym
        out["symmetry_note"] = "100·(L−R)/mean(L,R); within ±10 % is usually read as symmetric"
    return out


def _calibrations(calibration_files: list[str] | None) -> list[tuple[str, str, Calibration]]:
    out = []
    for f in calibration_files or []:
        cal = calibration.load(f)
        out.append((f, cal.side, cal))
    return out


def with_body_mass(config: AnalysisConfig | None, body_mass_kg: float | None) -> AnalysisConfig:
    """``config`` with the given body weight for the cores (their impact transients' least
    force); unchanged without a mass."""
    config = config or AnalysisConfig()
    if body_mass_kg is None:
        return config
    return replace(config, body_weight_n=body_mass_kg * G_M_PER_S2)


def run_paths(paths: list[str], body_mass_kg: float | None = None,
              calibration_files: list[str] | None = None,
              config: AnalysisConfig | None = None) -> Analysis:
    """Read inputs (raw captures and/or session dirs) chunk by chunk and analyse them."""
    config = with_body_mass(config, body_mass_kg)
    sources = open_inputs(paths)
    cal_files = _calibrations(calibration_files)
    cals = {side: cal for _, side, cal in cal_files}
    runs = _run_sources(sources, cals, config)
    sides = {r.side for r in runs}
    for f, side, _ in cal_files:
        if side not in sides:
            raise InputFileError(f"{f}: calibration is for the {side} foot, which is not in the input")
    return Analysis(runs, body_mass_kg, config)


def _source_bytes(src: SourceData) -> int:
    path = getattr(src.chunks, "path", None)
    try:
        return path.stat().st_size if path is not None else 0
    except OSError:
        return 0


def _run_sources(sources: list[SourceData], cals: dict[str, Calibration],
                 config: AnalysisConfig | None) -> list[FootRun]:
    workers = min(len(sources), os.cpu_count() or 1)
    if workers < 2 or sum(_source_bytes(s) for s in sources) < PARALLEL_MIN_BYTES:
        return [run_source(src, cals, config) for src in sources]
    # fork: the children start at once with everything imported, and nothing runs beside
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as ex:
        futures = [ex.submit(run_source, src, cals, config) for src in sources]
        return [f.result() for f in futures]


def analyse_paths(paths: list[str], body_mass_kg: float | None = None,
                  calibration_files: list[str] | None = None,
                  config: AnalysisConfig | None = None) -> dict:
    """Load inputs (raw captures and/or session dirs) and analyse them; the document as a dict."""
    return run_paths(paths, body_mass_kg, calibration_files, config).document()


def analyse(feet: dict[str, FootStream], body_mass_kg: float | None = None,
            calibrations: dict[str, Calibration] | None = None,
            config: AnalysisConfig | None = None) -> dict:
    """Analyse whole foot streams (already assembled); the same core, fed one block each."""
    config = with_body_mass(config, body_mass_kg)
    runs = []
    for side, fs in feet.items():
        core = FootCore(fs.info, fs.period_us, (calibrations or {}).get(side), config)
        mask = int(fs.quality.get("device_fault_mask", 0) or 0)
        core.feed(Block.from_volts(0, fs.volts, [(fs.n, mask)] if mask else []))
        core.finish()
        q = _foot_quality(core, dict(fs.quality))
        device = {"first_sample_t0_us": int(fs.t0_us) & 0xFFFFFFFF, "device_id": fs.info.device_id,
                  "firmware": fs.info.firmware, "zones": list(fs.zones), "rate_hz": fs.rate_hz,
                  "supply_mv": fs.info.supply_mv, "r_fixed_ohm": fs.info.r_fixed_ohm,
                  "source": fs.source}
        runs.append(FootRun(side, core, q, device))
    return Analysis(runs, body_mass_kg, config).document()


class LiveFeed:
    """Steps and flags as they happen, for a recording in progress.

    Give :meth:`on_steps` to each source's :class:`FootPipeline`; every decided step becomes
    an event ``("step", side, step)`` (the document's step object, forces in BW: the given
    mass, or the foot's stride-average estimate so far, 700 N until there is one) and the foot's
    flag rules read the core's running state after each batch (the one ``insole analyse``
    reads at the end); a change is an event ``("flags", side, flags)``. ``on_event`` is called
    in the thread that fed the pipeline.

    Its memory does not grow with the run, nor does the cost of a step: a step event reads only
    the new steps of the table, and the flags' state is bounded (:class:`FlagState`).
    """

    def __init__(self, on_event, body_mass_kg: float | None = None,
                 config: AnalysisConfig | None = None) -> None:
        self.on_event = on_event
        self.body_mass_kg = body_mass_kg
        self.config = with_body_mass(config, body_mass_kg)
        self._flag_keys: dict[str, list] = {}

    def body_weight_n(self, core: FootCore) -> float:
        if self.body_mass_kg is not None:
            return self.body_mass_kg * G_M_PER_S2
        return core.body_weight_estimate_n() or DEFAULT_BODY_WEIGHT_N

    def on_steps(self, core: FootCore, first: int, stop: int) -> None:
        side = core.info.side
        steps, flags = live_update(core, side, first, stop, self.body_weight_n(core))
        for st in steps:
            self.on_event("step", side, st)
        key = sorted((f["code"], f["rule"], f["severity"]) for f in flags)
        if key != self._flag_keys.get(side, []):
            self._flag_keys[side] = key
            self.on_event("flags", side, flags)
