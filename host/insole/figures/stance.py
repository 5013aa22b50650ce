"""Figure: the mean stance curve of each zone, with its spread, per foot."""

from __future__ import annotations

import warnings

import numpy as np

from insole.figures.common import feet_order, new_figure, no_data
from insole.figures.data import RunData
from insole.figures.style import mark_flagged, zone_colour, zone_label


def stance_curves(run: RunData):
    """Each zone's force over stance (0–100 %) in body weights: mean line, ±1 SD band; the
    foot's total force dashed. One panel per foot, same y scale."""
    sides = feet_order(run)
    fig = new_figure(5.2 * len(sides) + 1.6, 4.2)
    axes = fig.subplots(1, len(sides), sharey=True, squeeze=False)[0]
    handles = {}
    for ax, side in zip(axes, sides):
        f = run.feet[side]
        ax.set_title(f"{side.capitalize()} foot: {f.steps} complete steps")
        ax.set_xlabel("stance (% of contact time)")
        ax.grid(alpha=0.3)
        ax.set_xlim(0, 100)
        if f.steps == 0:
            no_data(ax, "no complete steps")
            continue
        x = f.stance_pct
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for c, z in enumerate(f.zones):
                y = f.zone_curves_bw[:, c, :]
                if np.all(np.isnan(y)):
                    continue
                m, sd = np.nanmean(y, axis=0), np.nanstd(y, axis=0)
                col = zone_colour(z)
                ax.fill_between(x, m - sd, m + sd, color=col, alpha=0.18, lw=0)
                handles[z] = ax.plot(x, m, color=col, lw=1.8, label=zone_label(z))[0]
            tm, tsd = np.nanmean(f.total_curves_bw, axis=0), np.nanstd(f.total_curves_bw, axis=0)
        ax.fill_between(x, tm - tsd, tm + tsd, color="black", alpha=0.08, lw=0)
        handles["total"] = ax.plot(x, tm, color="black", lw=1.6, ls="--", label="whole foot")[0]
        mark_flagged(ax, f.flags)
    axes[0].set_ylabel("force (body weights, BW)")
    axes[0].set_ylim(bottom=0)
    if handles:
        fig.legend(handles.values(), [h.get_label() for h in handles.values()], loc="outside right center",
                   title="zone (mean ± 1 SD)", fontsize=8, title_fontsize=8, frameon=False)
    fig.suptitle("Mean stance curve per zone", fontweight="bold")
    return fig
