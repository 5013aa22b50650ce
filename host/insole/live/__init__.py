"""``insole live``: the live window (matplotlib, blitted) over one or two sources.

``feed`` reads the sources (recording when asked) into per-foot ring buffers and feeds the step
analysis on its own thread; ``steps`` is the interface the window consumes for steps and flags,
implemented on the streaming core; ``window`` draws; ``run`` drives it headless or on
screen; ``pacing`` replays files and the simulator at the device's pace.
"""

from insole.live.feed import FootView, LiveFeed
from insole.live.run import LiveResult, run_headless, run_window
from insole.live.steps import SampleBlock, StepAnalysis, StreamingSteps
from insole.live.window import FrameStats, LiveWindow

__all__ = ["FootView", "FrameStats", "LiveFeed", "LiveResult", "LiveWindow",
           "SampleBlock", "StepAnalysis", "StreamingSteps", "run_headless", "run_window"]
