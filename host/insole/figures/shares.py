"""Figure: each zone's share of the stance impulse over the run (the fatigue trends)."""

from __future__ import annotations

import numpy as np

from insole.figures.common import (
    ROLLING_STEPS,
    feet_order,
    minutes_axis,
    new_figure,
    no_data,
    rolling_median,
)
from insole.figures.data import RunData
from insole.figures.style import THRESHOLD_COLOUR, mark_flagged, zone_colour, zone_label

_MIDFOOT = ("arch", "midfoot_lateral")
_LABEL_BOX = dict(fc="white", ec="none", alpha=0.75, pad=1.0)


def zone_shares(run: RunData):
    """Top row: heel, metatarsal heads and hallux, with the metatarsal heads together (the
    forefoot-overload rule) and its threshold. Bottom row: the midfoot zones, with the arch
    threshold (the arch-collapse rule). Lines are rolling medians over 15 steps; the dots behind
    the two flagged quantities are single steps."""
    sides = feet_order(run)
    div, tlabel = minutes_axis(run)
    cfg = run.doc["config"]["flags"]
    fig = new_figure(5.2 * len(sides) + 1.9, 6.4)
    axes = fig.subplots(2, len(sides), sharex="col", squeeze=False)
    handles = {}
    for j, side in enumerate(sides):
        f = run.feet[side]
        top, bot = axes[0, j], axes[1, j]
        top.set_title(f"{side.capitalize()} foot: forefoot and heel")
        bot.set_title(f"{side.capitalize()} foot: midfoot")
        bot.set_xlabel(tlabel)
        for ax in (top, bot):
            ax.grid(alpha=0.3)
        if f.steps == 0:
            no_data(top, "no complete steps")
            continue
        t = f.step_t_s / div
        zi = {z: i for i, z in enumerate(f.zones)}
        for z in f.zones:
            if z in _MIDFOOT:
                continue
            handles[z] = top.plot(t, 100 * rolling_median(f.zone_shares[:, zi[z]]), color=zone_colour(z),
                                  lw=1.2, label=zone_label(z))[0]
        if np.isfinite(f.metatarsal_share).any():
            top.scatter(t, 100 * f.metatarsal_share, s=5, color="black", alpha=0.15, lw=0)
            handles["met"] = top.plot(t, 100 * rolling_median(f.metatarsal_share), color="black", lw=2.2,
                                      label="metatarsal heads together")[0]
            rear = sum(s == "rearfoot" for s in f.strike) >= len(f.strike) / 2
            thr = cfg["met_share_rearfoot"] if rear else cfg["met_share_forefoot"]
            top.axhline(100 * thr, color=THRESHOLD_COLOUR, ls="--", lw=1.3)
            top.text(t[0], 100 * thr + 1, f"forefoot threshold {100 * thr:.0f} % "
                     f"({'rearfoot' if rear else 'mid/forefoot'} strikes)", color=THRESHOLD_COLOUR,
                     fontsize=7.5, va="bottom", bbox=_LABEL_BOX)
        top.set_ylim(0, 100)
        mark_flagged(top, f.flags, ("forefoot_overload",))
        mids = [z for z in f.zones if z in _MIDFOOT]
        if mids:
            for z in mids:
                y = 100 * f.zone_shares[:, zi[z]]
                if z == "arch":
                    bot.scatter(t, y, s=5, color=zone_colour(z), alpha=0.2, lw=0)
                handles[z] = bot.plot(t, 100 * rolling_median(f.zone_shares[:, zi[z]]), color=zone_colour(z),
                                      lw=2.0 if z == "arch" else 1.2, label=zone_label(z))[0]
            if "arch" in zi:
                thr = 100 * cfg["arch_share"]
                bot.axhline(thr, color=THRESHOLD_COLOUR, ls="--", lw=1.3)
                bot.text(t[0], thr + 0.2, f"arch threshold {thr:.0f} %", color=THRESHOLD_COLOUR,
                         fontsize=7.5, va="bottom", bbox=_LABEL_BOX)
                hi = float(np.nanpercentile(100 * f.zone_shares[:, zi["arch"]], 99)) if f.steps else 0
                bot.set_ylim(0, max(2 * thr, 1.15 * hi))
            else:
                bot.set_ylim(bottom=0)
        else:
            no_data(bot, "no midfoot sensor on this insole")
        if f.summary.get("activity") != "running":
            top.text(0.99, 0.02, f"{f.summary.get('activity')}: the thresholds come from running "
                     "studies and were not applied", transform=top.transAxes, ha="right", va="bottom",
                     fontsize=7.5, color="#555555", bbox=_LABEL_BOX)
        faulty = [z for z in f.quality.get("sensor_faults", []) if z in zi]
        if faulty:
            for ax in (top, bot):
                ax.text(0.01, 0.98, "sensor reported faulty: " + ", ".join(map(zone_label, faulty))
                        + " (see the data-quality ledger)", transform=ax.transAxes, ha="left",
                        va="top", fontsize=7.5, color="#555555")
        mark_flagged(bot, f.flags, ("arch_collapse",))
    for i in range(2):
        axes[i, 0].set_ylabel("share of stance impulse (%)")
    if handles:
        fig.legend(handles.values(), [h.get_label() for h in handles.values()],
                   loc="outside right center", title=f"rolling median\nover {ROLLING_STEPS} steps",
                   fontsize=8, title_fontsize=8, frameon=False)
    fig.suptitle("Where each step's load goes, over the run", fontweight="bold")
    return fig

