"""The insole seen from above: outline and sensor positions, for the report and the live window.

Everything comes from ``insole.model.hardware`` (``outline_map_xy``, ``zone_map_xy``), which reads
``hardware/zones.json``; nothing here reads hardware files. Units: the insole's maximum width is
1; y runs from the back of the heel (0) to the tip of the longest toe (``1 / width_to_length``,
about 2.6). A left foot has its big toe on the right of the picture, a right foot on the left,
as you see your own feet looking down.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from matplotlib.patches import Circle, Polygon

from insole.figures.style import ZONE_SHORT, zone_colour
from insole.model import hardware

#: drawn radius of a sensor disc, map units (the A201's active area is 9.5 mm across, about 0.1
#: units on a 26 cm foot; drawn a little larger so that its colour reads)
ZONE_RADIUS = 0.13


@lru_cache(maxsize=4)
def zone_xy(side: str) -> dict[str, tuple[float, float]]:
    """Zone centres on the map of one foot (cached: the live window asks every frame)."""
    return hardware.zone_map_xy(side)


def outline_xy(side: str) -> np.ndarray:
    """(n, 2) closed outline polygon of one foot."""
    return np.asarray(hardware.outline_map_xy(side), float)


def limits(margin: float = 0.08) -> tuple[tuple[float, float], tuple[float, float]]:
    """(xlim, ylim) that hold either foot with a margin; the same for both feet."""
    o = outline_xy("left")
    return ((float(o[:, 0].min()) - margin, float(o[:, 0].max()) + margin),
            (float(o[:, 1].min()) - margin, float(o[:, 1].max()) + margin))


def frame_axes(ax) -> None:
    """Equal aspect, fixed limits (the same for either foot), no ticks."""
    (x0, x1), (y0, y1) = limits()
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def setup_axes(ax, side: str, title: str | None = None) -> None:
    """:func:`frame_axes`, the medial and lateral sides named, and a title."""
    frame_axes(ax)
    (x0, x1), (y0, y1) = limits()
    medial_right = side == "left"
    pad = 0.04
    ax.text(x1 - pad if medial_right else x0 + pad, y0 + 0.03, "medial",
            ha="right" if medial_right else "left", va="bottom", fontsize=7, color="#555555")
    ax.text(x0 + pad if medial_right else x1 - pad, y0 + 0.03, "lateral",
            ha="left" if medial_right else "right", va="bottom", fontsize=7, color="#555555")
    if title:
        ax.set_title(title)


def draw_outline(ax, side: str, **kw) -> Polygon:
    style = dict(closed=True, fc="#F4F1EA", ec="#444444", lw=1.2, zorder=0)
    style.update(kw)
    poly = Polygon(outline_xy(side), **style)
    ax.add_patch(poly)
    return poly


def draw_zones(ax, side: str, zones: tuple[str, ...], labels: bool = True,
               faulty: tuple[str, ...] = (), **kw) -> dict[str, Circle]:
    """A disc per zone at its position (faulty zones hatched), labelled; returns the discs."""
    pos = zone_xy(side)
    discs = {}
    for z in zones:
        if z not in pos:
            continue
        x, y = pos[z]
        style = dict(fc="white", ec=zone_colour(z), lw=2.0, zorder=2)
        style.update(kw)
        if z in faulty:
            style.update(hatch="xxx", fc="#DDDDDD")
        c = Circle((x, y), ZONE_RADIUS, **style)
        ax.add_patch(c)
        discs[z] = c
        if labels:
            ax.text(x, y - ZONE_RADIUS - 0.03, ZONE_SHORT.get(z, z) + (" (fault)" if z in faulty else ""),
                    ha="center", va="top", fontsize=7, color="#222222", zorder=3)
    return discs
