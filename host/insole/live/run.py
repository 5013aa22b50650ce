"""Running the live window: headless on Agg (tests, CI, benchmarks) or on screen with a timer.

Both drive :meth:`LiveWindow.frame` at a steady rate from the main thread; the feed's threads
do the reading. Closing the window (or the last headless frame, or Ctrl-C) closes the feed,
which ends the recording cleanly.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InsoleError
from .feed import LiveFeed
from .window import FrameStats, LiveWindow

log = logging.getLogger(__name__)


@dataclass
class LiveResult:
    stats: FrameStats
    feed: LiveFeed
    png: Path | None = None


def save_frame(win: LiveWindow, path: str | Path) -> Path:
    """Write what the canvas holds now (the last blitted frame) as a PNG."""
    from matplotlib.image import imsave

    p = Path(path)
    if p.parent and not p.parent.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
    rgba = np.asarray(win.fig.canvas.buffer_rgba())
    try:
        imsave(p, rgba)
    except OSError as e:
        raise InsoleError(f"cannot write {p}: {e.strerror}") from e
    return p


def run_headless(feed: LiveFeed, frames: int, fps: float = 30.0, png: str | Path | None = None,
                 wait_for_data_s: float = 10.0, warmup_frames: int = 0, **window_kw) -> LiveResult:
    """Draw ``frames`` frames at ``fps`` on Agg (``fps`` ≤ 0: as fast as possible), then save
    the last frame to ``png``. The frame clock starts once the first sample has arrived (or after
    ``wait_for_data_s``); ``warmup_frames`` more are drawn first and left out of the statistics
    (the first full draw is slow). The feed must be started; it is closed on return."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(dpi=100)
    FigureCanvasAgg(fig)
    try:
        win = LiveWindow(fig, feed, **window_kw)
        deadline = time.monotonic() + wait_for_data_s
        while not feed.feet and time.monotonic() < deadline and not feed.sources_ended():
            feed.stop.wait(0.01)
        period = 1.0 / fps if fps > 0 else 0.0
        next_t = time.monotonic()
        for i in range(warmup_frames + frames):
            if i == warmup_frames and warmup_frames:
                win.stats = FrameStats()
            now = time.monotonic()
            if period and now < next_t:
                time.sleep(next_t - now)
            elif period and now - next_t > period:  # late: drop the frames we missed
                missed = int((now - next_t) // period)
                win.stats.skipped += missed
                next_t += missed * period
            win.frame()
            next_t += period
        out = save_frame(win, png) if png else None
    finally:
        feed.close()
    return LiveResult(win.stats, feed, out)


def run_window(feed: LiveFeed, fps: float = 30.0, png: str | Path | None = None,
               close_after_s: float | None = None, **window_kw) -> LiveResult:
    """Show the window on screen (the default interactive backend, e.g. TkAgg) until it is
    closed, or for ``close_after_s`` seconds. The feed must be started; it is closed on return.

    Raises:
        InsoleError: no display (use ``--headless``).
    """
    import matplotlib
    import matplotlib.pyplot as plt

    backend = matplotlib.get_backend().lower()
    if backend in ("agg", "pdf", "svg", "ps", "cairo", "template") or "inline" in backend:
        feed.close()
        raise InsoleError(f"no display for a window (matplotlib backend {backend!r}); "
                          "use --headless --png PATH, or set DISPLAY")
    fig = plt.figure(dpi=100)
    try:
        fig.canvas.manager.set_window_title("insole live")
    except AttributeError:
        pass
    win = LiveWindow(fig, feed, **window_kw)
    period_ms = max(1, int(round(1000.0 / fps)))
    state = {"next": time.monotonic()}

    def tick() -> None:
        now = time.monotonic()
        late = now - state["next"]
        if late > period_ms / 1000.0:  # the timer fired late: those frames were dropped
            win.stats.skipped += int(late * 1000 // period_ms)
        state["next"] = now + period_ms / 1000.0
        win.frame()

    timer = fig.canvas.new_timer(interval=period_ms)
    timer.add_callback(tick)
    closed = {"done": False}

    def on_close(_event) -> None:
        if not closed["done"]:
            closed["done"] = True
            timer.stop()

    fig.canvas.mpl_connect("close_event", on_close)
    if close_after_s is not None:
        closer = fig.canvas.new_timer(interval=int(close_after_s * 1000))
        closer.single_shot = True

        def close_now() -> None:
            if png:
                save_frame(win, png)
            plt.close(fig)

        closer.add_callback(close_now)
        closer.start()
    timer.start()
    try:
        plt.show(block=True)
    except KeyboardInterrupt:
        pass
    finally:
        timer.stop()
        feed.close()
        plt.close(fig)
    return LiveResult(win.stats, feed, Path(png) if png and close_after_s is not None else None)
