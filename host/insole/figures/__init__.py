"""The run report: figures (PNG) and one self-contained HTML page (``insole report``).

``data`` turns inputs into per-step arrays; one module per figure or two (``stance``,
``loading``, ``shares``, ``cop``, ``timing``) draws them; ``foot_map`` is the insole seen from
above (shared with the live window); ``html`` writes the page; ``build`` runs it all.
"""

from insole.figures.build import FIGURES, Report, build_report
from insole.figures.data import FootData, RunData, run_data

__all__ = ["FIGURES", "FootData", "Report", "RunData", "build_report", "run_data"]
