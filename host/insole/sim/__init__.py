"""The insole simulator: a physiological gait model behind the exact wire protocol.

``simulate(scenario, side, duration_s, ...)`` returns a :class:`SimFoot` whose ``frames()`` are
byte-for-byte what the firmware would send over serial, whose ``units`` are exactly the sample
sets the device took, and whose ``truth`` is the model's ground truth for scoring the analysis.
See ``docs/simulator.md``.
"""

from insole.sim.device import (
    FAULT_OPTIONS,
    Faults,
    SimFoot,
    SimulatorError,
    batch_size,
    capture_bytes,
    simulate,
    truth_document,
    write_capture,
    write_truth,
)
from insole.sim.gait import GaitParams
from insole.sim.scenarios import FLAG_CODES, SCENARIOS, Scenario

__all__ = [
    "FAULT_OPTIONS", "FLAG_CODES", "SCENARIOS", "Faults", "GaitParams", "Scenario", "SimFoot",
    "SimulatorError", "batch_size", "capture_bytes", "simulate", "truth_document",
    "write_capture", "write_truth",
]
