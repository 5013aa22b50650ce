"""What the report's figures draw, as plain arrays: one call from input paths to :class:`RunData`.

The analysis document (``insole.analysis/1``) carries per-step numbers but not the per-sample
curves; this module runs the existing pipeline (``session.load_inputs`` →
``stream.streams_from_sources`` → ``analysis.analyse``), then cuts each complete step out of the
calibrated zone forces and resamples it to 0–100 % of stance, so that the figure modules take
arrays and never touch streams. (The lead will later rewire this onto the streaming analysis;
the :class:`FootData` fields are the contract the figures rely on.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from insole.analysis import AnalysisConfig, ChannelForces, analyse
from insole.analysis.stream import FootStream, streams_from_sources
from insole.errors import InputFileError
from insole.figures import foot_map
from insole.io.session import load_inputs
from insole.model import calibration as calibration_files
from insole.model.calibration import Calibration
from insole.protocol import METATARSAL_ZONES

#: points of the stance-phase grid (0, 1, ..., 100 % of stance)
STANCE_POINTS = 101
#: below this total force (N) the centre of pressure is not drawn: too little load to place it
COP_MIN_FORCE_N = 20.0


@dataclass
class FootData:
    """One foot, ready to draw. Per-step arrays have one row per complete step, in time order.

    Attributes:
        side: ``"left"`` or ``"right"``.
        zones: zone names in channel order (columns of ``zone_curves_bw`` and ``zone_shares``).
        stance_pct: (P,) the stance grid, 0–100 %.
        zone_curves_bw: (k, C, P) each zone's force in body weights over each step's stance;
            NaN for a channel the calibration found faulty (shorted).
        total_curves_bw: (k, P) the foot's total force in body weights.
        cop_xy: (k, P, 2) centre of pressure on the foot map (units of :mod:`foot_map`), NaN
            where the total force is under :data:`COP_MIN_FORCE_N`.
        step_t_s: (k,) initial contact, seconds since this foot's first sample.
        contact_ms, valr_bw_per_s, peak_force_bw: (k,) per-step metrics from the analysis.
        valr_method: per step, ``"20-80"`` or ``"3-12pct"`` (see docs/analysis.md).
        strike: per step, ``"rearfoot"``, ``"midfoot"``, ``"forefoot"`` or ``"unknown"``.
        zone_shares: (k, C) share of stance impulse per zone (0–1).
        metatarsal_share: (k,) the metatarsal zones together (NaN if the foot has none).
        cadence_t_s, cadence_spm: stride-based cadence, at each stride's first contact.
        summary, quality: the analysis document's sections for this foot.
        flags: the flags raised on this foot.
    """

    side: str
    zones: tuple[str, ...]
    stance_pct: np.ndarray
    zone_curves_bw: np.ndarray
    total_curves_bw: np.ndarray
    cop_xy: np.ndarray
    step_t_s: np.ndarray
    contact_ms: np.ndarray
    valr_bw_per_s: np.ndarray
    valr_method: list[str]
    peak_force_bw: np.ndarray
    strike: list[str]
    zone_shares: np.ndarray
    metatarsal_share: np.ndarray
    cadence_t_s: np.ndarray
    cadence_spm: np.ndarray
    summary: dict
    quality: dict
    flags: list[dict] = field(default_factory=list)

    @property
    def steps(self) -> int:
        return int(len(self.step_t_s))


@dataclass
class RunData:
    """Both feet plus the whole analysis document (flags, notes, body weight, symmetry)."""

    feet: dict[str, FootData]
    doc: dict
    inputs: list[str]


def run_data(paths: list[str], body_mass_kg: float | None = None,
             calibration_paths: list[str] | None = None, config: AnalysisConfig | None = None,
             progress: Callable[[str], None] | None = None) -> RunData:
    """Load, analyse and cut the steps of one or two feet.

    Args:
        paths: raw captures and/or recorded session directories, one foot each.
        body_mass_kg: the runner's mass; without it the analysis estimates body weight.
        calibration_paths: calibration files from ``insole calibrate`` (one per foot).
        config: analysis parameters (defaults as in docs/analysis.md).
        progress: called with a stage name after each stage (for a progress bar).

    Raises:
        InputFileError: unreadable inputs, a calibration for a foot that is not there.
    """
    tick = progress or (lambda _stage: None)
    sources = load_inputs(paths)
    tick("read inputs")
    feet = streams_from_sources(sources)
    tick("decode")
    cals: dict[str, Calibration] = {}
    for f in calibration_paths or []:
        cal = calibration_files.load(f)
        if cal.side not in feet:
            raise InputFileError(f"{f}: calibration is for the {cal.side} foot, which is not in the input")
        cals[cal.side] = cal
    doc = analyse(feet, body_mass_kg=body_mass_kg, calibrations=cals, config=config)
    tick("analyse")
    bw_n = float(doc["body"]["body_weight_n"])
    out = {}
    for side in ("left", "right"):
        if side in feet:
            out[side] = foot_data(feet[side], doc, cals.get(side), bw_n)
        tick(f"cut {side} steps" if side in feet else f"no {side} foot")
    return RunData(out, doc, [str(p) for p in paths])


def foot_data(fs: FootStream, doc: dict, cal: Calibration | None, body_weight_n: float) -> FootData:
    """Per-step curves of one foot from its stream and the analysis document."""
    side = fs.side
    fd = doc["feet"][side]
    cal = ChannelForces(cal).compute(fs)
    force = cal.force_n_.copy()
    for c in range(force.shape[1]):
        if cal.shorted_mask_ & (1 << c):
            force[:, c] = np.nan  # a shorted channel reads full scale, not a force
    period_s = fs.period_us * 1e-6
    # whole steps with their contact seen (a dead heel sensor loses it: docs/analysis.md)
    steps = [s for s in fd["steps"] if s.get("complete") and s.get("ic_s") is not None
             and s.get("zone_impulse_share") is not None]
    k, n_ch = len(steps), force.shape[1]
    grid = np.linspace(0.0, 100.0, STANCE_POINTS)
    curves = np.full((k, n_ch, STANCE_POINTS), np.nan)
    idx = np.arange(fs.n, dtype=float)
    for i, st in enumerate(steps):
        x = np.linspace(st["ic_s"], st["to_s"], STANCE_POINTS) / period_s
        a, b = max(0, int(np.floor(x[0]))), min(fs.n, int(np.ceil(x[-1])) + 1)
        for c in range(n_ch):
            curves[i, c] = np.interp(x, idx[a:b], force[a:b, c])
    curves_bw = curves / body_weight_n
    total_bw = np.nansum(curves_bw, axis=1)
    total_bw[np.all(np.isnan(curves_bw), axis=1)] = np.nan
    cop = cop_on_map(np.moveaxis(curves, 1, 2), fs.zones, side)
    zones = tuple(fs.zones)
    shares = np.array([[s["zone_impulse_share"].get(z, np.nan) for z in zones] for s in steps]) \
        if k else np.zeros((0, n_ch))
    has_met = any(z in METATARSAL_ZONES for z in zones)
    met = np.array([s.get("metatarsal_share", np.nan) if has_met else np.nan for s in steps], float)
    all_steps = fd["steps"]
    strides = [(s["ic_s"], s["stride_ms"]) for s in all_steps if s.get("stride_ms") and s.get("ic_s") is not None]
    if strides:
        med = float(np.median([x[1] for x in strides]))
        strides = [x for x in strides if x[1] < 1.5 * med]  # a stride over a gap is not one
    cad_t = np.array([x[0] for x in strides], float)
    cad = np.array([2 * 60000.0 / x[1] for x in strides], float)
    return FootData(
        side=side, zones=zones, stance_pct=grid, zone_curves_bw=curves_bw, total_curves_bw=total_bw,
        cop_xy=cop,
        step_t_s=np.array([s["ic_s"] for s in steps], float),
        contact_ms=np.array([s["contact_ms"] for s in steps], float),
        valr_bw_per_s=np.array([np.nan if s["valr_bw_per_s"] is None else s["valr_bw_per_s"]
                                for s in steps], float),
        valr_method=[s["valr_method"] for s in steps],
        peak_force_bw=np.array([s["peak_force_bw"] for s in steps], float),
        strike=[s["strike"] for s in steps],
        zone_shares=shares, metatarsal_share=met, cadence_t_s=cad_t, cadence_spm=cad,
        summary=fd["summary"], quality=fd["quality"],
        flags=[f for f in doc["flags"] if f["side"] == side])


def cop_on_map(force_n: np.ndarray, zones: tuple[str, ...], side: str) -> np.ndarray:
    """Centre of pressure on the foot map from zone forces.

    ``force_n`` is (..., C): zone forces in newtons, zones last. Returns (..., 2) map
    coordinates (units of :mod:`foot_map`): the force-weighted mean of the zone centres, NaN
    where the summed force is under :data:`COP_MIN_FORCE_N`. A few discrete sensors give a
    coarse CoP: it moves between the sensor centres and never outside them.
    """
    pos = foot_map.zone_xy(side)
    xy = np.array([pos.get(z, (np.nan, np.nan)) for z in zones], float)  # (C, 2)
    known = ~np.isnan(xy[:, 0])
    w = np.where(known, np.nan_to_num(np.asarray(force_n, float)), 0.0)
    tot = w.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cop = (w @ np.nan_to_num(xy)) / tot[..., None]
    cop[tot < COP_MIN_FORCE_N] = np.nan
    return cop
