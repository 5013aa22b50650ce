"""Shared look of the report and the live window: zone and foot colours, labels, flag marking.

Zone colours are the Okabe–Ito palette (Okabe & Ito 2008, "Color Universal Design"), readable
with the common colour-vision deficiencies; yellow is left out because it vanishes on white.
"""

from __future__ import annotations

ZONE_COLOURS = {
    "heel": "#0072B2",  # blue
    "arch": "#D55E00",  # vermillion
    "met1": "#009E73",  # bluish green
    "met23": "#E69F00",  # orange
    "met5": "#CC79A7",  # reddish purple
    "hallux": "#56B4E9",  # sky blue
    "midfoot_lateral": "#7F7F7F",  # grey
}
ZONE_LABELS = {
    "heel": "heel",
    "arch": "medial arch",
    "met1": "1st metatarsal",
    "met23": "2nd–3rd metatarsal",
    "met5": "5th metatarsal",
    "hallux": "hallux",
    "midfoot_lateral": "lateral midfoot",
}
ZONE_SHORT = {"heel": "heel", "arch": "arch", "met1": "M1", "met23": "M2-3", "met5": "M5",
              "hallux": "hallux", "midfoot_lateral": "lat. mid"}
FOOT_COLOURS = {"left": "#1B9E77", "right": "#7570B3"}  # Dark2 teal and purple
FLAG_COLOUR = "#C00000"
THRESHOLD_COLOUR = "#C00000"
FLAG_TITLES = {
    "heel_strike_force": "hard heel strikes",
    "forefoot_overload": "forefoot overload",
    "arch_collapse": "arch collapse",
}
NOT_A_DIAGNOSIS = ("These flags describe patterns in your running that studies link to foot pain. "
                   "They are not a diagnosis: see a clinician if you have pain.")


def zone_colour(zone: str) -> str:
    return ZONE_COLOURS.get(zone, "#333333")


def zone_label(zone: str) -> str:
    return ZONE_LABELS.get(zone, zone)


def mark_flagged(ax, flags: list[dict], codes: tuple[str, ...] | None = None,
                 badge: str = "inside") -> bool:
    """Frame ``ax`` in the flag colour and name the flags in red; True if marked.

    ``codes`` limits the marking to the flags this figure is about (None: any flag).
    ``badge``: ``"inside"`` a red label in the top right corner, ``"title"`` a second title
    line in red (for pictures, where a label would hide part of the drawing).
    """
    hits = [f for f in flags if codes is None or f["code"] in codes]
    if not hits:
        return False
    for sp in ax.spines.values():
        sp.set_edgecolor(FLAG_COLOUR)
        sp.set_linewidth(2.5)
    names = sorted({FLAG_TITLES.get(f["code"], f["code"]) for f in hits})
    text = "FLAG: " + ", ".join(names)
    if badge == "title":
        ax.set_title(f"{ax.get_title()}\n{text}", color=FLAG_COLOUR, fontweight="bold")
        return True
    ax.text(0.99, 0.98, text, transform=ax.transAxes, ha="right", va="top",
            fontsize=8.5, color="white", fontweight="bold", zorder=10,
            bbox=dict(boxstyle="round,pad=0.3", fc=FLAG_COLOUR, ec="none"))
    return True
