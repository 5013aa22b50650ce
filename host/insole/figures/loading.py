"""Figure: vertical average loading rate of every step over the run, with the threshold."""

from __future__ import annotations

import numpy as np
from matplotlib.lines import Line2D

from insole.figures.common import (
    feet_order,
    minutes_axis,
    new_figure,
    no_data,
    rolling_median,
)
from insole.figures.data import RunData
from insole.figures.style import FOOT_COLOURS, THRESHOLD_COLOUR, mark_flagged


def loading_rate(run: RunData):
    """VALR (BW/s) per step against time; heel strikes filled, other strikes hollow (the flag
    uses heel strikes only); the rolling median of heel strikes of one method; the threshold."""
    sides = feet_order(run)
    div, tlabel = minutes_axis(run)
    thr = float(run.doc["config"]["flags"]["valr_bw_per_s"])
    fig = new_figure(5.2 * len(sides) + 0.6, 4.5)
    axes = fig.subplots(1, len(sides), sharey=True, squeeze=False)[0]
    top = thr * 1.5
    for ax, side in zip(axes, sides):
        f = run.feet[side]
        col = FOOT_COLOURS[side]
        ax.set_title(f"{side.capitalize()} foot")
        ax.set_xlabel(tlabel)
        ax.grid(alpha=0.3)
        ax.axhline(thr, color=THRESHOLD_COLOUR, ls="--", lw=1.3)
        if f.steps == 0:
            no_data(ax, "no complete steps")
            continue
        t = f.step_t_s / div
        v = f.valr_bw_per_s
        rear = np.array([s == "rearfoot" for s in f.strike])
        m2080 = np.array([m == "20-80" for m in f.valr_method])
        for sel, mk in ((rear & m2080, "o"), (rear & ~m2080, "s")):
            if sel.any():
                ax.scatter(t[sel], v[sel], s=12, marker=mk, color=col, alpha=0.6, lw=0)
        if (~rear).any():
            ax.scatter(t[~rear], v[~rear], s=14, marker="o", facecolors="none", edgecolors=col,
                       alpha=0.6, lw=0.8)
        # the flag takes its median over heel strikes of one method only (the methods disagree
        # by about a third): the line follows the method most heel strikes used
        main = m2080 if (rear & m2080).sum() >= (rear & ~m2080).sum() else ~m2080
        sel = rear & main
        if sel.sum() >= 3:
            ax.plot(t[sel], rolling_median(v[sel]), color="black", lw=1.6)
        top = max(top, float(np.nanpercentile(v, 99)) * 1.1 if np.isfinite(v).any() else top)
        mark_flagged(ax, f.flags, ("heel_strike_force",))
    grey = "#555555"
    handles = [
        Line2D([], [], color=THRESHOLD_COLOUR, ls="--", lw=1.3, label=f"threshold {thr:.0f} BW/s (Davis et al. 2016)"),
        Line2D([], [], color=grey, marker="o", ls="none", label="heel strike, 20–80 % of impact peak"),
        Line2D([], [], color=grey, marker="s", ls="none", label="heel strike, 3–12 % of stance (no impact peak)"),
        Line2D([], [], color=grey, marker="o", mfc="none", ls="none", label="mid/forefoot strike (not in the flag)"),
        Line2D([], [], color="black", lw=1.6, label="rolling median of heel strikes, one method (15 steps)"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=7.5, frameon=False)
    axes[0].set_ylabel("loading rate, VALR (BW/s)")
    axes[0].set_ylim(0, top)
    fig.suptitle("Loading rate per step", fontweight="bold")
    return fig
