"""Gait analysis: per-foot sample stream, calibration, steps, per-step metrics, flags, the document.

Definitions follow ``DESIGN.md`` (Analysis) and ``docs/analysis.md``. The pieces are small classes
in gaitmap form: the constructor stores parameters, one action method does the work on data it
does not mutate, results land in trailing-underscore attributes, and the method returns ``self``.

- :mod:`~insole.analysis.stream`: packets → one foot's sample grid and quality ledger.
- :mod:`~insole.analysis.forces`: volts → newtons per channel (with the one calibration class,
  :class:`insole.model.calibration.Calibration`), channel faults, total force.
- :mod:`~insole.analysis.steps`: initial contact / toe-off from the foot's total force.
- :mod:`~insole.analysis.metrics`: contact time, loading rate, strike pattern, zone shares, ...
- :mod:`~insole.analysis.flags`: heel-strike force, forefoot overload, arch collapse.
- :mod:`~insole.analysis.core`: :class:`FootCore`, the streaming core that runs all of it on
  one foot's grid blocks as they come (live and offline alike).
- :mod:`~insole.analysis.document`: :class:`FootPipeline` (a source's chunks → core),
  :class:`Analysis` (the ``insole.analysis/1`` document, written piece by piece);
  :func:`analyse_paths` reads inputs chunk by chunk and returns the document.
"""

from insole.analysis.core import AnalysisConfig, FootCore
from insole.analysis.document import (
           SCHEMA,
           Analysis,
           FootPipeline,
           analyse,
           analyse_paths,
           run_paths,
)
from insole.analysis.flags import FlagConfig, FlagRules
from insole.analysis.forces import ChannelForces, ForceConverter
from insole.analysis.metrics import MetricsConfig, StepMetrics
from insole.analysis.steps import StepDetector

__all__ = ["SCHEMA", "Analysis", "AnalysisConfig", "ChannelForces", "FlagConfig", "FlagRules",
           "FootCore", "FootPipeline", "ForceConverter", "MetricsConfig", "StepDetector", "StepMetrics", "analyse",
           "analyse_paths", "run_paths"]
