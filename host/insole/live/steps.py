"""Steps and flags for the live window: the interface it consumes, and a stopgap behind it.

The window needs, as the run goes on, each foot's newly finished steps (for the latest cadence,
contact time, strike and loading rate) and the flags that hold now. It asks for them through
:class:`StepAnalysis`: ``feed(side, block) -> (new_steps, flags)``, one call per block of
samples in arrival order. The streaming step analysis (being written separately) will implement
it incrementally.

Until then :class:`BatchWindowStopgap` implements it by re-running the existing batch analysis
(:func:`insole.analysis.analyse`) over the most recent ``window_s`` seconds of each foot every
``every_s`` seconds of device time. THIS IS A STOPGAP: it costs a few tens of milliseconds per
run (it runs on the live feed's analysis thread, never on the drawing thread), its flags see
only the recent window (absolute rules; the drift rules need a baseline of a minute and more and
stay silent), and a step shows up only once the batch analysis over the window has seen it whole.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from insole import protocol as P
from insole.analysis import AnalysisConfig, Calibration, analyse
from insole.analysis.stream import FootStream

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
    """STOPGAP implementation of :class:`StepAnalysis` over the batch analysis (see module doc).

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
