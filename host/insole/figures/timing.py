"""Figures: cadence and contact time over the run; left/right symmetry."""

from __future__ import annotations

from matplotlib.patches import Patch

from insole.figures.common import (
    feet_order,
    minutes_axis,
    new_figure,
    no_data,
    rolling_median,
)
from insole.figures.data import RunData
from insole.figures.style import FOOT_COLOURS

SYMMETRY_BAND_PCT = 10.0  # within ±10 % is usually read as symmetric (analysis summary note)


def cadence_contact(run: RunData):
    """Cadence (steps/min, from each stride) and contact time (ms) per step, both feet on the
    same axes: single steps as dots, rolling medians as lines."""
    div, tlabel = minutes_axis(run)
    fig = new_figure(8.8, 5.6)
    ax_c, ax_t = fig.subplots(2, 1, sharex=True)
    for side in feet_order(run):
        f = run.feet[side]
        col = FOOT_COLOURS[side]
        if len(f.cadence_t_s):
            t = f.cadence_t_s / div
            ax_c.scatter(t, f.cadence_spm, s=5, color=col, alpha=0.25, lw=0)
            ax_c.plot(t, rolling_median(f.cadence_spm), color=col, lw=1.8, label=f"{side} foot")
        if f.steps:
            t = f.step_t_s / div
            ax_t.scatter(t, f.contact_ms, s=5, color=col, alpha=0.25, lw=0)
            ax_t.plot(t, rolling_median(f.contact_ms), color=col, lw=1.8, label=f"{side} foot")
    ax_c.set_ylabel("cadence (steps/min)")
    ax_t.set_ylabel("contact time (ms)")
    ax_t.set_xlabel(tlabel)
    for ax in (ax_c, ax_t):
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(loc="best", fontsize=8, title="rolling median, 15 steps", title_fontsize=7.5)
        else:
            no_data(ax, "no steps")
    fig.suptitle("Cadence and contact time", fontweight="bold")
    return fig


_SYM_ROWS = (
    ("contact_ms", "contact_ms_median", "contact time", "{:.0f} ms"),
    ("peak_force_bw", "peak_force_bw_median", "peak force", "{:.2f} BW"),
    ("valr_bw_per_s", "valr_bw_per_s_median", "loading rate", "{:.0f} BW/s"),
    ("metatarsal_share", "metatarsal_share_median", "forefoot share", "{:.1%}"),
)


def symmetry(run: RunData):
    """Symmetry index 100·(L−R)/mean(L,R) of the per-foot medians; bars point to the foot with
    the larger value; the ±10 % band is usually read as symmetric. None with one foot."""
    if not ("left" in run.feet and "right" in run.feet):
        return None
    si = run.doc["summary"].get("symmetry_index_pct", {})
    rows = [r for r in _SYM_ROWS if r[0] in si]
    fig = new_figure(8.8, 0.55 * max(len(rows), 1) + 1.7)
    ax = fig.subplots()
    band = ax.axvspan(-SYMMETRY_BAND_PCT, SYMMETRY_BAND_PCT, color="#DDDDDD", alpha=0.6,
               label=f"±{SYMMETRY_BAND_PCT:.0f} %: usually read as symmetric")
    ax.axvline(0, color="black", lw=0.8)
    lim = max([SYMMETRY_BAND_PCT * 2] + [abs(si[r[0]]) * 1.6 for r in rows])
    ticks = []
    for y, (key, skey, label, fmt) in enumerate(rows):
        v = si[key]
        ax.barh(y, v, color=FOOT_COLOURS["left" if v >= 0 else "right"], height=0.55)
        ax.text(v + (0.015 * lim if v >= 0 else -0.015 * lim), y, f"{v:+.1f} %", va="center",
                ha="left" if v >= 0 else "right", fontsize=8.5, fontweight="bold")
        lv = run.feet["left"].summary.get(skey)
        rv = run.feet["right"].summary.get(skey)
        ticks.append(f"{label}\nL {fmt.format(lv)} · R {fmt.format(rv)}")
    ax.set_yticks(range(len(rows)), ticks, fontsize=8.5)
    ax.invert_yaxis()
    ax.set_xlim(-lim, lim)
    ax.set_xlabel("symmetry index, 100·(L−R)/mean(L,R) (%): left larger → right of 0")
    ax.legend(handles=[band, Patch(color=FOOT_COLOURS["left"], label="left foot's value larger"),
                       Patch(color=FOOT_COLOURS["right"], label="right foot's value larger")],
              loc="lower left", fontsize=7.5, framealpha=0.9)
    if not rows:
        no_data(ax, "no metric measured on both feet")
    ax.set_title("Left/right symmetry of the per-foot medians", fontweight="bold")
    return fig


