"""Figure: the centre-of-pressure path of every step on the foot map, both feet side by side."""

from __future__ import annotations

import warnings

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize

from insole.figures import foot_map
from insole.figures.common import feet_order, minutes_axis, new_figure, no_data
from insole.figures.data import RunData
from insole.figures.style import mark_flagged

_MAX_PATHS = 400  # drawn paths per foot: beyond that a sample spread over the run


def cop_paths(run: RunData):
    """Each step's CoP from contact (dot) to toe-off, coloured by when in the run it happened,
    and the mean path in black with an arrow. Left foot on the left, as seen from above."""
    sides = feet_order(run)
    div, tlabel = minutes_axis(run)
    fig = new_figure(3.1 * len(sides) + 1.3, 6.0)
    axes = fig.subplots(1, len(sides), squeeze=False)[0]
    tmax = max((float(f.step_t_s.max()) for f in run.feet.values() if f.steps), default=1.0) / div
    norm = Normalize(0.0, max(tmax, 1e-9))
    cmap = colormaps["viridis"]
    for ax, side in zip(axes, sides):
        f = run.feet[side]
        foot_map.setup_axes(ax, side, f"{side.capitalize()} foot")
        foot_map.draw_outline(ax, side)
        foot_map.draw_zones(ax, side, f.zones, faulty=tuple(f.quality.get("sensor_faults", [])))
        if f.steps == 0:
            no_data(ax, "no complete steps")
            continue
        pick = np.unique(np.linspace(0, f.steps - 1, min(f.steps, _MAX_PATHS)).astype(int))
        for i in pick:
            p = f.cop_xy[i]
            ax.plot(p[:, 0], p[:, 1], color=cmap(norm(f.step_t_s[i] / div)), lw=0.8, alpha=0.4, zorder=4)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(f.cop_xy, axis=0)
        ok = np.isfinite(mean[:, 0])
        m = mean[ok]
        if len(m) >= 2:
            ax.plot(m[:, 0], m[:, 1], color="black", lw=2.4, zorder=6, label="mean path")
            # direction of travel: an arrowhead halfway along the path (its end may curl back)
            seg = np.r_[0.0, np.cumsum(np.hypot(*np.diff(m, axis=0).T))]
            h = int(np.searchsorted(seg, seg[-1] / 2))
            if 0 < h < len(m) - 1:
                ax.annotate("", xy=m[h + 1], xytext=m[h - 1], zorder=7,
                            arrowprops=dict(arrowstyle="-|>", color="black", lw=0, mutation_scale=22))
            ax.plot(*m[0], "o", color="black", ms=6, zorder=7, ls="none", label="mean contact point")
            ax.plot(*m[-1], "s", color="black", ms=5, zorder=7, ls="none", label="mean toe-off point")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.01), fontsize=7.5, ncol=1, frameon=False)
        mark_flagged(ax, f.flags, badge="title")
    cb = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=list(axes), shrink=0.6, pad=0.02)
    cb.set_label(f"each step's path, coloured by {tlabel}")
    fig.suptitle("Centre of pressure during stance", fontweight="bold")
    return fig
