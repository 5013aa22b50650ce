"""Running the live window: headless on Agg (tests, CI, benchmarks) or on screen with a timer.

Both drive :meth:`LiveWindow.frame` at a steady rate from the main thread; the feed's threads
do the reading. Closing the window (or the last headless frame, or Ctrl-C) closes the feed,
which ends the recording cleanly.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from insole.errors import InsoleError
from insole.live.feed import LiveFeed
from insole.live.window import FrameStats, LiveWindow

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
                 wait_for_data_s: float = 10.0, warmup_frames: int = 0, _until: float | None = None,
                 stop: threading.Event | None = None, **window_kw) -> LiveResult:
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
            if (_until is not None and now >= _until) or (stop is not None and stop.is_set()):
                break  # the benchmark's time limit, or SIGTERM
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
               frames: int | None = None, stop: threading.Event | None = None,
               **window_kw) -> LiveResult:
    """Show the window on screen (the default interactive backend, e.g. TkAgg) until it is
    closed, or until ``frames`` frames have been drawn (then the last one is saved to ``png``
    and the window closes itself), or until ``stop`` is set (SIGTERM). The feed must be started;
    it is closed on return, which ends a recording cleanly.

    Raises:
        InsoleError: no display (use ``--headless``).
    """
    import matplotlib
    import matplotlib.pyplot as plt

    backend = matplotlib.get_backend().lower()
    if backend in ("agg", "pdf", "svg", "ps", "cairo", "template") or "inline" in backend:
        feed.close()
        raise InsoleError(f"no display for a window (matplotlib backend {backend!r}); "
                          "use --headless --frames N --png PATH, or set DISPLAY")
    try:
        fig = plt.figure(dpi=100)
    except Exception as e:  # noqa: BLE001 - e.g. TclError: no display name
        feed.close()
        raise InsoleError(f"cannot open a window ({str(e).splitlines()[0]}); use --headless") from e
    try:
        fig.canvas.manager.set_window_title("insole live")
    except AttributeError:
        pass
    win = LiveWindow(fig, feed, **window_kw)
    period_ms = max(1, int(round(1000.0 / fps)))
    state = {"next": time.monotonic(), "saved": None}
    timer = fig.canvas.new_timer(interval=period_ms)

    period_s = period_ms / 1000.0

    def tick() -> None:
        # frames on a fixed grid of period_s: the timer is re-armed for the next grid point
        # (a GUI timer otherwise counts its interval from the end of the callback), and grid
        # points already passed are skipped: frames are dropped, never delayed into a backlog
        if stop is not None and stop.is_set():
            timer.stop()
            plt.close(fig)
            return
        now = time.monotonic()
        if now - state["next"] > period_s:
            missed = int((now - state["next"]) // period_s)
            win.stats.skipped += missed
            state["next"] += missed * period_s
        state["next"] += period_s
        if not feed.feet and not feed.sources_ended():
            win.frame()  # "waiting for data"; not counted against --frames
            win.stats.frames = 0
        else:
            win.frame()
            if frames is not None and win.stats.frames >= frames:
                timer.stop()
                if png:
                    state["saved"] = save_frame(win, png)
                plt.close(fig)  # the same path as the user closing the window
                return
        timer.interval = max(1, int((state["next"] - time.monotonic()) * 1000))

    timer.add_callback(tick)
    fig.canvas.mpl_connect("close_event", lambda _event: timer.stop())
    timer.start()
    try:
        plt.show(block=True)
    except KeyboardInterrupt:
        pass
    finally:
        timer.stop()
        feed.close()
        plt.close(fig)
    return LiveResult(win.stats, feed, state["saved"])
