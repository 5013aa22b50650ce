"""Steps and flags for the live window: the interface it consumes, and what implements it.

The window needs, as the run goes on, each foot's newly finished steps (for the latest cadence,
contact time, strike and loading rate) and the flags that hold now. It asks for them through
:class:`StepAnalysis`: ``feed(side, block) -> (new_steps, flags)``, one call per block of
samples in arrival order. :class:`StreamingSteps` (the default) implements it on the streaming
core, incrementally: the same analysis as ``insole analyse``.

(The first stand-in, which re-ran the whole batch analysis over a recent window, is gone: the
streaming core is the one implementation, live and offline.)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from insole import protocol as P
from insole.analysis import AnalysisConfig
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


class StreamingSteps:
    """:class:`StepAnalysis` on the streaming core (:class:`insole.analysis.core.FootCore`).

    Each foot's blocks go, in order, into one core on that foot's block clock (a block that
    starts later than the last one ended leaves a gap of missing rows; one that overlaps is
    cut). A step comes out as soon as the core decides it (40 ms of quiet after its toe-off),
    with the metrics its intact parts allow, and the foot's flags (absolute and drift rules,
    over every step so far, read from the core's running state) are evaluated again after each
    decided step: the same analysis, step for step, as ``insole analyse`` of the recording.

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
        from insole.analysis.core import DEFAULT_BODY_WEIGHT_N, live_update

        bw = (self.config.body_weight_n if self.config.body_weight_n is not None
              else core.body_weight_estimate_n() or DEFAULT_BODY_WEIGHT_N)
        t0 = self._t0_s[side]
        steps, flags = live_update(core, side, first, stop, bw)
        for st in steps:
            if st["ic_s"] is not None:  # None: a dead heel sensor, the contact was not seen
                st["ic_s"] = round(st["ic_s"] + t0, 5)
            st["to_s"] = round(st["to_s"] + t0, 5)
            self._new.setdefault(side, []).append(st)
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
