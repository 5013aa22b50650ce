"""The live window: per foot, zone forces over the last seconds, the foot map coloured by the
current force with the centre-of-pressure trail of the current step, the latest step metrics,
the flags as they rise and a status line.

Drawing is blitted: everything that does not change (axes, labels, outlines, colour bar) is
rendered once into a background; each frame restores it and draws only the changing artists,
with fixed axis limits so that nothing forces a full redraw. A frame reads each foot's ring
buffer under its lock (a copy of a few thousand numbers) and never waits on the sources or the
analysis: when drawing falls behind, frames are skipped, never data.
"""

from __future__ import annotations

import textwrap
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection, PatchCollection
from matplotlib.colors import Normalize
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, Rectangle

from insole.figures import foot_map
from insole.figures.data import COP_MIN_FORCE_N, cop_on_map
from insole.figures.style import FLAG_COLOUR, FLAG_TITLES, zone_colour, zone_label
from insole.live.feed import FootView, LiveFeed

#: seconds of zone force shown
SHOW_S = 5.0
#: fixed y limit of the force traces and top of the foot map's colour scale, newtons
FORCE_MAX_N = 1600.0
MAP_MAX_N = 1200.0
#: samples drawn per trace at most (the ring is decimated to this for drawing)
MAX_POINTS = 500
_CMAP = colormaps["YlOrRd"]


@dataclass
class FrameStats:
    """What the window measured about its own drawing."""

    frames: int = 0
    skipped: int = 0  # timer ticks that found the previous frame still late (frames dropped)
    started: float = 0.0
    last: float = 0.0
    draw_s: deque = field(default_factory=lambda: deque(maxlen=5000))
    lag_s: deque = field(default_factory=lambda: deque(maxlen=20000))

    @property
    def fps(self) -> float:
        dt = self.last - self.started
        return (self.frames - 1) / dt if self.frames > 1 and dt > 0 else 0.0

    def summary(self) -> dict:
        lag = np.array(self.lag_s) * 1e3
        draw = np.array(self.draw_s) * 1e3
        return {"frames": self.frames, "frames_skipped": self.skipped, "fps": round(self.fps, 1),
                "draw_ms_median": round(float(np.median(draw)), 2) if len(draw) else None,
                "lag_ms_median": round(float(np.median(lag)), 1) if len(lag) else None,
                "lag_ms_p95": round(float(np.percentile(lag, 95)), 1) if len(lag) else None,
                "lag_ms_max": round(float(lag.max()), 1) if len(lag) else None}


class _Column:
    """The artists of one foot's column."""

    def __init__(self, win: LiveWindow, j: int, foot: FootView) -> None:
        fig = win.fig
        self.foot = foot
        side = foot.side
        self.ax_f, self.ax_m, self.ax_t = win.axes[j]
        ax = self.ax_f
        ax.set_title(f"{side.capitalize()} foot", fontsize=10, loc="left", fontweight="bold")
        n_show = int(round(win.show_s / foot.period_s))
        self.step = max(1, -(-n_show // MAX_POINTS))
        self.n_show = n_show - n_show % self.step
        self.x = np.arange(-self.n_show, 0, self.step) * foot.period_s + foot.period_s * self.step
        # all zone traces as one LineCollection: one artist to draw per frame instead of one per
        # zone (the legend uses plain proxy lines)
        self.colours = [zone_colour(z) for z in foot.zones]
        self.traces = LineCollection([np.zeros((0, 2))] * len(foot.zones), colors=self.colours,
                                     linewidths=1.3, animated=True)
        ax.add_collection(self.traces)
        self._segs = np.zeros((len(foot.zones), len(self.x), 2))
        self._segs[:, :, 0] = self.x
        proxies = [Line2D([], [], color=col, lw=1.3, label=zone_label(z))
                   for z, col in zip(foot.zones, self.colours)]
        self.ax_t.legend(handles=proxies, loc="lower left", fontsize=7.5, ncol=2, frameon=False,
                         title="zone force traces", title_fontsize=7.5, alignment="left")
        # the foot map
        m = self.ax_m
        foot_map.setup_axes(m, side)
        m.set_title(f"{side.capitalize()} foot now", fontsize=10)
        foot_map.draw_outline(m, side)
        # static outlines and labels; the fill is one PatchCollection recoloured every frame
        rings = foot_map.draw_zones(m, side, foot.zones, labels=True, fc="none", lw=2.2, zorder=3)
        self.disc_zones = [z for z in foot.zones if z in rings]
        self.disc_index = [foot.zones.index(z) for z in self.disc_zones]
        self.fills = PatchCollection([Circle(rings[z].center, foot_map.ZONE_RADIUS) for z in self.disc_zones],
                                     facecolors="white", edgecolors="none", animated=True, zorder=2)
        m.add_collection(self.fills)
        (self.trail,) = m.plot([], [], color="black", lw=2.0, animated=True, zorder=6)
        (self.dot,) = m.plot([], [], "o", color="black", ms=7, animated=True, zorder=7)
        # metrics and flags
        self.metrics = self.ax_t.text(0.02, 0.98, "", va="top", ha="left", fontsize=9.5,
                                      family="monospace", animated=True, transform=self.ax_t.transAxes)
        self.flags = self.ax_t.text(0.02, 0.50, "", va="top", ha="left", fontsize=8.5, color=FLAG_COLOUR,
                                    animated=True, transform=self.ax_t.transAxes)
        pos = [a.get_position() for a in win.axes[j]]
        x0, y0 = min(p.x0 for p in pos) - 0.008, min(p.y0 for p in pos) - 0.01
        x1, y1 = max(p.x1 for p in pos) + 0.008, max(p.y1 for p in pos) + 0.035
        self.frame = Rectangle((x0, y0), x1 - x0, y1 - y0, transform=fig.transFigure, fill=False,
                               ec=FLAG_COLOUR, lw=3, animated=True, visible=False)
        fig.add_artist(self.frame)
        self.status = fig.text((x0 + x1) / 2, 0.012, "",
                               ha="center", va="bottom", fontsize=8, animated=True)
        self.drawn_head = 0
        self.first_frame_at = float("inf")  # set when its first frame is drawn

    def fast_artists(self):
        """Artists that change every frame."""
        return [self.traces, self.fills, self.trail, self.dot]

    def slow_artists(self):
        """Artists that change a few times a second at most (text is costly to render)."""
        return [self.metrics, self.flags, self.frame, self.status]

    def slow_key(self) -> tuple:
        return (self.metrics.get_text(), self.flags.get_text(), self.frame.get_visible(),
                self.status.get_text())


class LiveWindow:
    """Draws a :class:`LiveFeed` into ``fig`` (any canvas: Agg headless, TkAgg on screen).

    Args:
        fig: an empty figure on its canvas.
        feed: the started feed.
        show_s: seconds of zone force shown.
        record_dir: shown in the status line when recording.
    """

    def __init__(self, fig, feed: LiveFeed, show_s: float = SHOW_S, record_dir: str | None = None) -> None:
        self.fig = fig
        self.feed = feed
        self.show_s = show_s
        self.record_dir = record_dir
        self.stats = FrameStats()
        n = len(feed.urls)
        fig.set_size_inches(6.6 * n + 1.0, 7.6)
        self.norm = Normalize(0.0, MAP_MAX_N)
        gs = fig.add_gridspec(2, n, height_ratios=[2.0, 3.2], left=0.10 if n == 1 else 0.06,
                              right=0.88 if n == 1 else 0.92, top=0.87, bottom=0.07, hspace=0.28, wspace=0.18)
        self.axes = []
        for j in range(n):
            ax_f = fig.add_subplot(gs[0, j])
            ax_f.set_xlim(-show_s, 0)
            ax_f.set_ylim(0, FORCE_MAX_N)
            ax_f.set_xlabel("time (s, 0 = newest sample)", fontsize=8.5)
            ax_f.set_ylabel("force (N)", fontsize=8.5)
            ax_f.tick_params(labelsize=8)
            ax_f.grid(alpha=0.3)
            sub = gs[1, j].subgridspec(1, 2, width_ratios=[1.0, 1.35], wspace=0.05)
            ax_m = fig.add_subplot(sub[0, 0])
            foot_map.frame_axes(ax_m)
            ax_t = fig.add_subplot(sub[0, 1])
            ax_t.set_axis_off()
            self.axes.append((ax_f, ax_m, ax_t))
        cax = fig.add_axes([0.935 if n == 2 else 0.90, 0.10, 0.012, 0.45])
        cb = fig.colorbar(ScalarMappable(norm=self.norm, cmap=_CMAP), cax=cax)
        cb.set_label("zone force now (N)", fontsize=8.5)
        cb.ax.tick_params(labelsize=8)
        fig.suptitle("insole live: " + "  ·  ".join(feed.urls), fontsize=10.5)
        fig.text(0.5, 0.935, "Flags are patterns in your running that studies link to foot pain, "
                 "not a diagnosis.", ha="center", fontsize=8, color="#555555")
        self.waiting = fig.text(0.5, 0.5, "waiting for data…", ha="center", fontsize=12, animated=True)
        self.columns: list[_Column | None] = [None] * n
        self._bg = None
        self._bg_text = None
        self._slow_key: tuple = ()
        self._needs_full = True
        fig.canvas.mpl_connect("draw_event", self._on_draw)

    # --- blitting --------------------------------------------------------------------------
    # Two layers: the static background (axes, outlines, colour bar), captured after each full
    # draw; and that plus the text, re-rendered only when a text changes. A frame restores the
    # second and draws the lines, discs and trail over it.

    def _on_draw(self, _event) -> None:
        self._bg = self.fig.canvas.copy_from_bbox(self.fig.bbox)
        self._bg_text = None
        self._draw_slow()
        self._draw_fast()

    def _draw_slow(self) -> None:
        fig = self.fig
        for c in self.columns:
            if c is not None:
                for a in c.slow_artists():
                    fig.draw_artist(a)
        if all(c is None for c in self.columns):
            fig.draw_artist(self.waiting)

    def _draw_fast(self) -> None:
        fig = self.fig
        for c in self.columns:
            if c is not None:
                for a in c.fast_artists():
                    fig.draw_artist(a)

    def _attach_feet(self) -> None:
        with self.feed.feet_lock:
            feet = dict(self.feed.feet)
        n = len(self.columns)
        for side, foot in feet.items():
            if any(c is not None and c.foot is foot for c in self.columns):
                continue
            j = (0 if side == "left" else 1) if n == 2 else 0
            if self.columns[j] is None:
                self.columns[j] = _Column(self, j, foot)
                self._needs_full = True

    def frame(self) -> None:
        """Draw one frame from the feed's current state."""
        t0 = time.monotonic()
        self._attach_feet()
        canvas = self.fig.canvas
        for c in self.columns:
            if c is not None:
                self._update_column(c)
        if self._needs_full or self._bg is None:
            self._needs_full = False
            canvas.draw()  # renders the background and, through _on_draw, the artists
        else:
            key = tuple(c.slow_key() for c in self.columns if c is not None)
            if self._bg_text is None or key != self._slow_key:
                canvas.restore_region(self._bg)
                self._draw_slow()
                self._bg_text = canvas.copy_from_bbox(self.fig.bbox)
                self._slow_key = key
            else:
                canvas.restore_region(self._bg_text)
            self._draw_fast()
            canvas.blit(self.fig.bbox)
        done = time.monotonic()
        st = self.stats
        if st.frames == 0:
            st.started = done
        st.frames += 1
        st.last = done
        st.draw_s.append(done - t0)
        for c in self.columns:
            if c is None:
                continue
            arr = c.foot.arrivals
            with c.foot.lock:
                while arr and arr[0][0] <= c.drawn_head:
                    t_arrived = arr.popleft()[1]
                    if t_arrived >= c.first_frame_at:  # before the window was up is not lag
                        st.lag_s.append(done - t_arrived)
            if c.first_frame_at == float("inf"):
                c.first_frame_at = done

    # --- one foot ----------------------------------------------------------------------------

    def _update_column(self, c: _Column) -> None:
        foot = c.foot
        with foot.lock:
            force, head = foot.recent(c.n_show + c.step)
            status = foot.status
            steps = list(foot.steps)
            steps_total = foot.steps_total
            flags = list(foot.flags)
            first = dict(foot.flags_first_s)
            counts = (foot.packets, foot.packets_lost, foot.samples_dropped, foot.decode_errors,
                      foot.other_problems)
            last_arrival = foot.last_arrival
        c.drawn_head = head
        # decimated for drawing by the maximum of each bucket of `step` samples (a short impact
        # peak never falls between the drawn points), buckets fixed to absolute sample numbers
        # so that the picture scrolls without flicker; the newest partial bucket waits
        lag = head % c.step
        buckets = force[len(force) - lag - c.n_show:len(force) - lag] if lag else force[c.step:]
        shown = np.fmax.reduce(buckets.reshape(-1, c.step, buckets.shape[1]), axis=1) \
            if c.step > 1 else buckets
        c._segs[:, :, 1] = shown.T
        c.traces.set_segments(c._segs)
        # the foot map: the newest sample's force per zone
        valid = np.flatnonzero(~np.all(np.isnan(force), axis=1))
        now = np.nan_to_num(force[valid[-1]]) if len(valid) else np.zeros(len(foot.zones))
        c.fills.set_facecolor(_CMAP(self.norm(now[c.disc_index])))
        # CoP trail of the current (or the just-finished) step
        tot = np.nansum(force, axis=1)
        on = tot >= COP_MIN_FORCE_N
        if on.any():
            end = int(np.flatnonzero(on)[-1]) + 1
            off_before = np.flatnonzero(~on[:end])
            start = int(off_before[-1]) + 1 if len(off_before) else 0
            cop = cop_on_map(force[start:end:2], foot.zones, foot.side)
            c.trail.set_data(cop[:, 0], cop[:, 1])
            if on[-1]:
                c.dot.set_data([cop[-1, 0]], [cop[-1, 1]])
            else:
                c.dot.set_data([], [])
        else:
            c.trail.set_data([], [])
            c.dot.set_data([], [])
        c.metrics.set_text(_metrics_text(steps, steps_total))
        c.flags.set_text(_flags_text(flags, first))
        c.frame.set_visible(bool(flags))
        c.status.set_text(self._status_text(foot, status, counts, last_arrival))

    def _status_text(self, foot: FootView, status, counts, last_arrival: float) -> str:
        reading, why = self.feed.source_state(foot.source_url)
        silent = time.monotonic() - last_arrival
        if reading and silent < 2.0:
            conn = "connected"
        elif reading:
            conn = f"silent for {silent:.0f} s"
        else:
            conn = f"ended ({why})" if why else "ended"
        packets, lost, dropped, bad, other = counts
        parts = [f"{foot.side}: {conn}", f"{foot.info.rate_hz} Hz",
                 f"{lost} packets lost", f"{bad} bad frames"]
        if dropped:
            parts.append(f"{dropped} samples dropped on device")
        if other:
            parts.append(f"{other} packets out of order")
        if status is not None:
            bat = "battery ?" if status.battery_pct == 255 else f"battery {status.battery_pct} %"
            if status.battery_mv:
                bat += f" ({status.battery_mv / 1000:.2f} V)"
            parts.append(bat)
            faults = [z for i, z in enumerate(foot.zones) if status.fault_mask & (1 << i)]
            parts.append("sensor faults: " + (", ".join(faults) if faults else "none"))
        else:
            parts.append("battery: no STATUS yet")
        if foot.assumed_info:
            parts.append("no INFO: default zones assumed")
        line = " · ".join(parts)
        if self.record_dir:
            line += f"\nrecording to {self.record_dir}"
        return line


def _metrics_text(steps: list[dict], steps_total: int) -> str:
    last = steps[-1] if steps else None
    ics = [s["ic_s"] for s in steps[-6:] if s["ic_s"] is not None]  # None: contact not seen
    strides = np.diff(ics) if len(ics) >= 2 else np.zeros(0)
    strides = strides[strides < 2.0]  # across a gap is not a stride
    cadence = 2 * 60.0 / float(np.median(strides)) if len(strides) else None

    def v(x, fmt, unit):
        return "—" if x is None else f"{format(x, fmt)} {unit}"

    method = {"20-80": "20–80 % of impact peak", "3-12pct": "3–12 % of stance"}
    lines = [
        "latest step" + ("" if last else " (none yet)"),
        f"cadence      {v(cadence, '.0f', 'steps/min')}",
        f"contact      {v(last and last.get('contact_ms'), '.0f', 'ms')}",
        f"strike       {(last or {}).get('strike') or '—'}",
        f"loading rate {v(last and last.get('valr_bw_per_s'), '.0f', 'BW/s')}",
        f"             {method.get((last or {}).get('valr_method'), '')}",
        f"steps        {steps_total}",
    ]
    return "\n".join(lines)


def _flags_text(flags: list[dict], first: dict) -> str:
    if not flags:
        return ""
    out = []
    for f in flags:
        title = FLAG_TITLES.get(f["code"], f["code"])
        since = first.get((f["code"], f["rule"]))
        head = f"FLAG: {title} ({f['severity']})" + (f", since {since:.0f} s" if since is not None else "")
        msg = f["message"].split(". ")[0] + "."
        out.append(head + "\n" + textwrap.fill(msg, 44))
    return "\n".join(out)
