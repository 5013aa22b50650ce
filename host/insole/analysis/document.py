"""The whole analysis of one or two feet as the ``insole.analysis/1`` document."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np

from insole.analysis.flags import FlagConfig, FlagRules, rearfoot_valr_method
from insole.analysis.forces import Calibration, total_force
from insole.analysis.metrics import MetricsConfig, StepMetrics
from insole.analysis.steps import StepDetector
from insole.analysis.stream import FootStream, streams_from_sources
from insole.errors import InputFileError
from insole.io.session import load_inputs
from insole.model import calibration

log = logging.getLogger(__name__)

G_M_PER_S2 = 9.80665
# Walking keeps each foot down for more than half of its stride (double support); running less.
RUNNING_MAX_DUTY_FACTOR = 0.5
SCHEMA = "insole.analysis/1"


# --- whole analysis ---------------------------------------------------------------------------


@dataclass
class AnalysisConfig:
    detector: dict = field(default_factory=dict)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    flags: FlagConfig = field(default_factory=FlagConfig)



def analyse(feet: dict[str, FootStream], body_mass_kg: float | None = None,
            calibrations: dict[str, Calibration] | None = None,
            config: AnalysisConfig | None = None) -> dict:
    """Analyse one or two feet; returns the ``insole.analysis/1`` document (a dict)."""
    config = config or AnalysisConfig()
    calibrations = calibrations or {}

    def first_pass(side: str):
        fs = feet[side]
        cal = (calibrations.get(side) or Calibration()).apply(fs)
        total = total_force(cal.force_n_, cal.shorted_mask_)
        det = StepDetector(**config.detector).detect(total, fs.period_us * 1e-6)
        return fs, cal, total, det

    # the feet are independent until body weight; numpy releases the GIL for most of this
    with ThreadPoolExecutor(max_workers=max(1, min(len(feet), os.cpu_count() or 1))) as ex:
        pre = dict(zip(feet, ex.map(first_pass, feet)))
    # body weight: given, or the stride-average identity (one foot's mean force over whole
    # strides is half the body weight)
    estimates = {}
    for side, (fs, cal, total, det) in pre.items():
        r = det.regions_
        if len(r) >= 3:
            seg = total[r[0, 0]:r[-1, 0]]
            estimates[side] = 2.0 * float(np.nanmean(seg))
    bw_est = float(np.mean(list(estimates.values()))) if estimates else None
    if body_mass_kg is not None:
        bw = body_mass_kg * G_M_PER_S2
        bw_source = "given"
    elif bw_est:
        bw = bw_est
        bw_source = "stride-average identity"
    else:
        bw = 700.0
        bw_source = "assumed 700 N (too few strides to estimate)"
    doc: dict = {"schema": SCHEMA, "feet": {}, "flags": [], "notes": []}
    for side, (fs, cal, total, det) in pre.items():
        met = StepMetrics(config.metrics).compute(cal.force_n_, fs.zones, det.regions_, det.ic_s_,
                                                  det.to_s_, fs.period_us * 1e-6, bw, side,
                                                  det.complete_)
        steps = met.steps_
        # every step: a damaged one keeps the metrics whose part of the step is intact (its
        # `lost` says which it lost), and each rule and median skips what is missing
        summary = _summary(steps, fs)
        if summary["activity"] == "running":
            rules = FlagRules(config.flags).evaluate(steps, side, fs.n * fs.period_us * 1e-6)
            doc["flags"].extend(rules.flags_)
            doc["notes"].extend(rules.notes_)
            flags_evaluated = rules.evaluated_
        else:
            flags_evaluated = {"absolute": False, "drift": False}
            doc["notes"].append(f"{side}: {summary['activity']} (duty factor "
                                f"{summary['duty_factor']}): the flags' thresholds come from "
                                "running studies, so no flags were evaluated")
        q = dict(fs.quality)
        q["sensor_fault_mask"] = cal.fault_mask_ | q.get("device_fault_mask", 0)
        q["sensor_faults"] = [z for c, z in enumerate(fs.zones) if q["sensor_fault_mask"] & (1 << c)]
        q["sensor_fault_reasons"] = {
            z: cal.fault_reasons_.get(c, "the device set its fault bit (0 V or a short for a second)")
            for c, z in enumerate(fs.zones) if q["sensor_fault_mask"] & (1 << c)}
        q["saturated_samples"] = cal.saturated_samples_
        q["partial_steps_skipped"] = det.partial_
        q["calibration"] = cal.name
        doc["feet"][side] = {"steps": steps, "summary": summary,
                             "flags_evaluated": flags_evaluated, "quality": q,
                             "device": {"first_sample_t0_us": int(fs.t0_us) & 0xFFFFFFFF,
                                        "device_id": fs.info.device_id, "firmware": fs.info.firmware,
                                        "zones": list(fs.zones), "rate_hz": fs.rate_hz,
                                        "supply_mv": fs.info.supply_mv,
                                        "r_fixed_ohm": fs.info.r_fixed_ohm, "source": fs.source}}
    doc["body"] = {"body_weight_n": round(bw, 2), "source": bw_source,
                   "stride_average_estimate_n": round(bw_est, 2) if bw_est else None}
    if body_mass_kg is not None:
        doc["body"]["body_mass_kg"] = body_mass_kg
        if bw_est:
            doc["body"]["force_coverage"] = round(bw_est / bw, 3)
    doc["summary"] = _run_summary(doc["feet"])
    doc["summary"].update(_between_feet(doc["feet"], doc["notes"]))
    doc["config"] = {"detector": vars(StepDetector(**config.detector)),
                     "metrics": asdict(config.metrics), "flags": asdict(config.flags)}
    return doc


def _med(steps, key, pred=None):
    vals = [s[key] for s in steps if s.get(key) is not None and (pred is None or pred(s))]
    return round(float(np.median(vals)), 3) if vals else None


def _summary(all_steps: list[dict], fs: FootStream) -> dict:
    """Per-foot summary: each metric's median over the steps that have it."""
    steps = all_steps
    valr_method = rearfoot_valr_method(steps)
    strides = [s["stride_ms"] for s in all_steps if "stride_ms" in s]
    # a stride that spans a gap or a missed step is not one stride
    if strides:
        med = float(np.median(strides))
        strides = [x for x in strides if x < 1.5 * med]
    cadence = 2 * 60000.0 / float(np.median(strides)) if strides else None
    strikes = {k: sum(1 for s in steps if s.get("strike") == k) for k in ("rearfoot", "midfoot", "forefoot")}
    with_shares = [s for s in steps if s.get("zone_impulse_share")]
    zones = with_shares[0]["zone_impulse_share"].keys() if with_shares else []
    # duty factor: the share of a stride the foot is on the ground; running has a flight phase
    # (duty factor < 0.5, typically 0.3-0.4), walking has double support (about 0.6)
    contact = _med(all_steps, "contact_ms")
    duty = round(contact / float(np.median(strides)), 3) if strides and contact else None
    activity = "unknown" if duty is None else ("running" if duty < RUNNING_MAX_DUTY_FACTOR else "walking")
    return {
        "activity": activity,
        "duty_factor": duty,
        "steps": len(all_steps),
        "steps_complete": sum(1 for s in steps if s.get("complete")),
        "cadence_spm": round(cadence, 2) if cadence else None,
        "contact_ms_median": contact,
        "swing_ms_median": _med(all_steps, "swing_ms"),
        "stride_ms_median": round(float(np.median(strides)), 2) if strides else None,
        "peak_force_bw_median": _med(steps, "peak_force_bw"),
        # one VALR method per median (the flag's): the methods disagree by a third
        "valr_bw_per_s_median_rearfoot": _med(steps, "valr_bw_per_s",
                                              lambda s: s.get("strike") == "rearfoot"
                                              and s.get("valr_method") == valr_method),
        "valr_method_rearfoot": valr_method,
        "valr_bw_per_s_median": _med(steps, "valr_bw_per_s"),
        "strike_counts": strikes,
        "strike_index_median": _med(steps, "strike_index"),
        "metatarsal_share_median": _med(steps, "metatarsal_share"),
        "zone_impulse_share_median": {
            z: round(float(np.median([s["zone_impulse_share"][z] for s in with_shares])), 4)
            for z in zones},
        "forefoot_ml_balance_median": _med(steps, "forefoot_ml_balance"),
        "duration_s": round(fs.quality["duration_s"], 3),
    }


def _between_feet(feet: dict, notes: list[str]) -> dict:
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
    events = []
    for side in ("left", "right"):
        q = feet[side]["quality"]
        scale, offset = 1.0 + q["clock_drift_ppm"] * 1e-6, q["clock_offset_s"]
        for st in feet[side]["steps"]:
            events.append((st["ic_s"] * scale + offset, st["to_s"] * scale + offset, side, st))
    events.sort(key=lambda e: e[0])
    for k, (ic, to, side, st) in enumerate(events):
        nxt = next((e for e in events[k + 1:] if e[2] != side), None)
        if nxt is None or nxt[0] - ic > 1.5:  # no contralateral contact near: a gap or a stop
            continue
        st["step_ms"] = round((nxt[0] - ic) * 1e3, 2)
        st["flight_ms"] = round((nxt[0] - to) * 1e3, 2)
    out = {"time_base": "host clock: each foot's device clock mapped by its estimated offset and "
                        "drift (residual " + ", ".join(f"{s} {feet[s]['quality']['clock_residual_ms']:.1f} ms"
                                                       for s in ("left", "right")) + ")"}
    for side in ("left", "right"):
        steps = feet[side]["steps"]
        feet[side]["summary"]["step_ms_median"] = _med(steps, "step_ms")
        feet[side]["summary"]["flight_ms_median"] = _med(steps, "flight_ms")
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

def analyse_paths(paths: list[str], body_mass_kg: float | None = None,
                  calibration_files: list[str] | None = None,
                  config: AnalysisConfig | None = None) -> dict:
    """Load inputs (raw captures and/or session dirs) and analyse them."""
    feet = streams_from_sources(load_inputs(paths))
    cals = {}
    for f in calibration_files or []:
        cal = calibration.load(f)
        side = cal.side
        if side not in feet:
            raise InputFileError(f"{f}: calibration is for the {side} foot, which is not in the input")
        cals[side] = Calibration(dict(cal.channels), cal.describe())
    return analyse(feet, body_mass_kg=body_mass_kg, calibrations=cals, config=config)
