"""Steps and flags for the live window: the interface it consumes, and what implements it.

The window needs, as the run goes on, each foot's newly finished steps (for the latest cadence,
contact time, strike and loading rate) and the flags that hold now. It asks for them through
:class:`StepAnalysis`: ``feed(side, block) -> (new_steps, flags)``, one call per block of
samples in arrival order. :class:`StreamingSteps` (the default) implements it on the streaming
core, incrementally: the same analysis as ``insole analyse``.

:class:`BatchWindowStopgap`, the first stand-in, re-runs the whole analysis over the most
recent ``window_s`` seconds every ``every_s`` seconds of device time (a few tens of
milliseconds per run; flags from the recent window only). It is kept for comparison.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from insole import protocol as P
from insole.analysis import AnalysisConfig, analyse
from insole.analysis.stream import FootStream
from insole.model.calibration import Calibration

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SampleBlock:
    """One DATA packet's sample sets, on the foot's own clock.

    Attributes:
        side: ``"left"`` or ``"right"``.
        info: the device's INFO (zones, rate, divider), or the stand-in the feed assumed.
        t0_s: device time of the first sample set, seconds since this foot's first sample
            (unwrapped; a jump larger than the previous block's length is a gap).
        period_s: sample period.
        volts: (n, C) pin voltages.
        force_n: (n, C) the same calibrated to newtons.
    """

    side: str
    info: P.Info
    t0_s: float
    period_s: float
    volts: np.ndarray
    force_n: np.ndarray

    @property
    def end_s(self) -> float:
        return self.t0_s + len(self.volts) * self.period_s


class StepAnalysis(Protocol):
    """What the live window consumes for steps and flags."""

    def feed(self, side: str, block: SampleBlock) -> tuple[list[dict], list[dict]]:
        """Take one block; return the steps finished since the last call (step dicts of the
        ``insole.analysis/1`` document, ``ic_s``/``to_s`` on the block clock) and the flags
        that hold now for ``side`` (flag dicts of the same document)."""
        ...


class BatchWindowStopgap:
    """The first stand-in for :class:`StepAnalysis`: whole analyses over a window (module doc).

    Args:
        window_s: seconds of each foot's most recent data that each run analyses (20 s holds
            about 27 steps of one foot at 162 steps/min, above the flags' 20-step minimum; each
            run costs about 30 ms here, against about 40 ms for 30 s).
        every_s: device-time seconds between runs.
        min_wall_s: wall-clock seconds between runs at least (fast replays), as long as less
            than half a window of new data has piled up.
        body_mass_kg: the runner's mass, else the stride-average identity over the window.
        calibrations: per side, the calibration to use (default sensor model otherwise).
        config: analysis parameters.
    """

    def __init__(self, window_s: float = 20.0, every_s: float = 1.0, body_mass_kg: float | None = None,
                 calibrations: dict[str, Calibration] | None = None,
                 config: AnalysisConfig | None = None, min_wall_s: float = 0.5) -> None:
        self.window_s = window_s
        self.every_s = every_s
        self.min_wall_s = min_wall_s
        self.body_mass_kg = body_mass_kg
        self.calibrations = dict(calibrations or {})
        self.config = config
        self._blocks: dict[str, deque[SampleBlock]] = {}
        self._last_run_s: dict[str, float] = {}
        self._last_ic_s: dict[str, float] = {}
        self._flags: dict[str, list[dict]] = {}
        self._last_wall: dict[str, float] = {}
        self.runs_ = 0

    def feed(self, side: str, block: SampleBlock) -> tuple[list[dict], list[dict]]:
        q = self._blocks.setdefault(side, deque())
        q.append(block)
        while q and q[0].end_s < block.end_s - self.window_s:
            q.popleft()
        last = self._last_run_s.get(side)
        if last is None:
            self._last_run_s[side] = block.end_s
            return [], []
        advance = block.end_s - last
        now = time.monotonic()
        # every_s of device time, but at most once per min_wall_s of wall time (a fast replay
        # would otherwise run it many times a second), unless the window would slide past
        # unanalysed data
        if advance < self.every_s or (now - self._last_wall.get(side, 0.0) < self.min_wall_s
                                      and advance < self.window_s / 2):
            return [], self._flags.get(side, [])
        self._last_run_s[side] = block.end_s
        self._last_wall[side] = now
        return self._run(side, q)

    def _run(self, side: str, q: deque[SampleBlock]) -> tuple[list[dict], list[dict]]:
        first = q[0]
        period_s = first.period_s
        t_start = first.t0_s
        n = int(round((q[-1].end_s - t_start) / period_s))
        volts = np.full((n, first.volts.shape[1]), np.nan)
        for b in q:
            if b.volts.shape[1] != volts.shape[1] or abs(b.period_s - period_s) > 1e-9:
                continue  # a format change mid-stream: the feed counts it
            i = int(round((b.t0_s - t_start) / period_s))
            j = min(n, i + len(b.volts))
            if j > i >= 0:
                volts[i:j] = b.volts[:j - i]
        period_us = int(round(period_s * 1e6))
        fs = FootStream(side, first.info, period_us, int(round(t_start * 1e6)), volts,
                        {"duration_s": n * period_s}, source="live window")
        cals = {side: self.calibrations[side]} if side in self.calibrations else None
        doc = analyse({side: fs}, body_mass_kg=self.body_mass_kg, calibrations=cals, config=self.config)
        self.runs_ += 1
        last_ic = self._last_ic_s.get(side, -np.inf)
        new = []
        for st in doc["feet"][side]["steps"]:
            st = dict(st)
            if st["ic_s"] is None:  # a dead heel sensor: the contact was not seen
                continue
            st["ic_s"] = round(st["ic_s"] + t_start, 5)
            st["to_s"] = round(st["to_s"] + t_start, 5)
            if st.get("complete") and st["ic_s"] > last_ic + 1e-3:
                new.append(st)
        if new:
            self._last_ic_s[side] = new[-1]["ic_s"]
        flags = []
        for f in doc["flags"]:
            f = dict(f)
            f["span_s"] = [round(f["span_s"][0] + t_start, 3), round(f["span_s"][1] + t_start, 3)]
            flags.append(f)
        self._flags[side] = flags
        return new, flags


class StreamingSteps:
    """:class:`StepAnalysis` on the streaming core (:class:`insole.analysis.core.FootCore`).

    Each foot's blocks go, in order, into one core on that foot's block clock (a block that
    starts later than the last one ended leaves a gap of missing rows; one that overlaps is
    cut). A step comes out as soon as the core decides it (40 ms of quiet after its toe-off),
    with the metrics its intact parts allow, and the foot's flags (absolute and drift rules,
    over every step so far) are evaluated again after each decided step: the same analysis,
    step for step, as ``insole analyse`` of the recording.

    Args:
        body_mass_kg: the runner's mass, else the foot's stride-average estimate so far
            (700 N until there is one).
        calibrations: per side, the calibration to use (default sensor model otherwise).
        config: analysis parameters.
    """

    def __init__(self, body_mass_kg: float | None = None,
                 calibrations: dict[str, Calibration] | None = None,
                 config: AnalysisConfig | None = None) -> None:
        from insole.analysis.document import with_body_mass

        self.body_mass_kg = body_mass_kg
        self.calibrations = dict(calibrations or {})
        self.config = with_body_mass(config, body_mass_kg)
        self._cores: dict = {}
        self._t0_s: dict[str, float] = {}
        self._new: dict[str, list[dict]] = {}
        self._flags: dict[str, list[dict]] = {}
        self._rolling: dict[str, dict] = {}

    def _core(self, side: str, block: SampleBlock):
        from insole.analysis.core import FootCore

        core = self._cores.get(side)
        if core is None:
            period_us = int(round(block.period_s * 1e6))
            core = FootCore(block.info, period_us, self.calibrations.get(side), self.config,
                            lambda c, a, b, side=side: self._on_steps(side, c, a, b))
            self._cores[side] = core
            self._t0_s[side] = block.t0_s
        return core

    def _on_steps(self, side: str, core, first: int, stop: int) -> None:
        from insole.analysis.core import FootSteps, foot_flags, foot_summary

        bw = (self.config.body_weight_n if self.config.body_weight_n is not None
              else core.body_weight_estimate_n() or 700.0)
        fs = FootSteps(core, bw)
        t0 = self._t0_s[side]
        for st in fs.dicts(first, stop):
            if st["ic_s"] is not None:  # None: a dead heel sensor, the contact was not seen
                st["ic_s"] = round(st["ic_s"] + t0, 5)
            st["to_s"] = round(st["to_s"] + t0, 5)
            self._new.setdefault(side, []).append(st)
        duration_s = core.rows * core.period_s
        flags, _, _ = foot_flags(fs, foot_summary(fs, duration_s), side, duration_s,
                                 self.config.flags, self._rolling.setdefault(side, {}))
        for f in flags:
            f["span_s"] = [round(f["span_s"][0] + t0, 3), round(f["span_s"][1] + t0, 3)]
        self._flags[side] = flags

    def feed(self, side: str, block: SampleBlock) -> tuple[list[dict], list[dict]]:
        from insole.analysis.stream import Block

        core = self._core(side, block)
        if block.volts.shape[1] != len(core.zones) or \
                abs(block.period_s - core.period_s) > 1e-9:
            return [], self._flags.get(side, [])  # a format change mid-stream: the feed counts it
        row = int(round((block.t0_s - self._t0_s[side]) / core.period_s))
        volts = block.volts
        if row < core.rows:  # overlaps what was fed: only the new rows
            volts = volts[core.rows - row:]
            row = core.rows
        if row > core.rows:  # a gap: its rows are missing
            core.feed(Block.from_volts(core.rows, np.full((row - core.rows, volts.shape[1]), np.nan)))
        if len(volts):
            core.feed(Block.from_volts(core.rows, volts))
        return self._new.pop(side, []), self._flags.get(side, [])
