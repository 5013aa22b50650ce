"""Helpers shared by the figure modules: a figure without pyplot, the run's time axis, smoothing."""

from __future__ import annotations

import warnings

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from insole.figures.data import RunData

DPI = 110
#: steps in the rolling median drawn over per-step scatter (about 20 s of running per foot)
ROLLING_STEPS = 15


def new_figure(width_in: float, height_in: float) -> Figure:
    """A figure on its own Agg canvas: no pyplot state, safe off the main thread."""
    fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def minutes_axis(run: RunData) -> tuple[float, str]:
    """(divisor, label) for time in the run: minutes from 3 minutes on, else seconds."""
    dur = max((f.quality.get("duration_s", 0.0) for f in run.feet.values()), default=0.0)
    return (60.0, "time in run (min)") if dur >= 180 else (1.0, "time in run (s)")


def rolling_median(values: np.ndarray, window: int = ROLLING_STEPS) -> np.ndarray:
    """Centred rolling median over ``window`` steps, NaN-aware; shorter at the ends."""
    v = np.asarray(values, float)
    n = len(v)
    if n == 0:
        return v
    h = window // 2
    out = np.full(n, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN window
        for i in range(n):
            out[i] = np.nanmedian(v[max(0, i - h):i + h + 1])
    return out


def feet_order(run: RunData) -> list[str]:
    return [s for s in ("left", "right") if s in run.feet]


def no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=9,
            color="#555555", wrap=True)
