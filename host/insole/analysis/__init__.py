"""Gait analysis: per-foot sample stream, calibration, steps, per-step metrics, flags, the document.

Definitions follow ``DESIGN.md`` (Analysis) and ``docs/analysis.md``. The pieces are small classes
in gaitmap form: the constructor stores parameters, one action method does the work on data it
does not mutate, results land in trailing-underscore attributes, and the method returns ``self``.

- :mod:`~insole.analysis.stream`: packets → one foot's sample grid and quality ledger.
- :mod:`~insole.analysis.forces`: volts → newtons per channel, channel faults, total force.
- :mod:`~insole.analysis.steps`: initial contact / toe-off from the foot's total force.
- :mod:`~insole.analysis.metrics`: contact time, loading rate, strike pattern, zone shares, ...
- :mod:`~insole.analysis.flags`: heel-strike force, forefoot overload, arch collapse.
- :mod:`~insole.analysis.document`: :func:`analyse` runs all of it for one or two feet and
  returns the ``insole.analysis/1`` document; :func:`analyse_paths` loads inputs first.
"""

from insole.analysis.document import SCHEMA, AnalysisConfig, analyse, analyse_paths
from insole.analysis.flags import FlagConfig, FlagRules
from insole.analysis.forces import Calibration, total_force
from insole.analysis.metrics import MetricsConfig, StepMetrics
from insole.analysis.steps import StepDetector

__all__ = ["SCHEMA", "AnalysisConfig", "Calibration", "FlagConfig", "FlagRules", "MetricsConfig",
           "StepDetector", "StepMetrics", "analyse", "analyse_paths", "total_force"]
