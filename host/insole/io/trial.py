"""A standing calibration trial's samples per foot: from captures, sessions, ``sim://stand``, or
recorded live from the ports with the phases cued."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import numpy as np

from insole.errors import InsoleError, SourceError
from insole.io.sources import LIVE_SCHEMES
from insole.model import hardware
from insole.model.fits import TRANSITION_S, TRIAL_PHASES, FootTrial
from insole.sim.standing import stand_sources

log = logging.getLogger(__name__)


def _trial_from_stream(fs) -> FootTrial:
    v = np.asarray(fs.volts, dtype=float)
    keep = ~np.all(np.isnan(v), axis=1)
    zones, supply_mv, r_fixed = tuple(fs.zones), fs.info.supply_mv, fs.info.r_fixed_ohm
    if fs.quality.get("missing_info"):
        # The port was opened after the device sent INFO: take the divider and zones from the
        # pin map the firmware was built from (the default board), and say so.
        supply_mv, r_fixed = hardware.divider()
        default_zones = hardware.default_zones()
        if len(default_zones) == v.shape[1]:
            zones = default_zones
        log.warning("%s: no INFO packet; assuming the pin map's divider (%d mV, %d ohm) and zones %s",
                    fs.source, supply_mv, r_fixed, ", ".join(zones))
    return FootTrial(fs.side, zones, v[keep], fs.rate_hz, supply_mv, r_fixed,
                     fs.info.device_id, fs.source)


def _record_live(urls: list[str], seconds: float, session_dir: Path, phases=TRIAL_PHASES,
                 out=sys.stdout) -> list:
    """Record the live sources into a session (the recorder) while cueing each phase.

    This is the one place that touches ports; the session stays on disk as the raw trial.
    """
    import threading

    from insole.io.recorder import Recorder
    from insole.io.session import load_session

    rec = Recorder(urls, session_dir, seconds)
    result: dict = {}

    def _run() -> None:
        try:
            rec.run()
        except InsoleError as e:  # reported by the main thread
            result["error"] = e

    th = threading.Thread(target=_run, name="calibration-trial")
    th.start()
    cued = False
    try:
        t0 = time.monotonic()
        t = 1.0
        for i, (name, dur, prompt) in enumerate(phases):
            if i:
                t += TRANSITION_S
            _wait_until(t0 + t - (TRANSITION_S if i else 1.0), rec)
            print(f"  get ready: {prompt.lower()}", file=out, flush=True)
            _wait_until(t0 + t, rec)
            print(f"  NOW ({dur:.0f} s): {prompt}", file=out, flush=True)
            t += dur
        _wait_until(t0 + t, rec)
        print("  done: relax.", file=out, flush=True)
        cued = True
    finally:
        if not cued:  # Ctrl-C (or an error) while cueing stops the recording: no thread left behind
            rec.request_stop()
        th.join()
    if "error" in result:
        raise result["error"]
    return load_session(session_dir)


def _wait_until(t_mono: float, rec) -> None:
    # the recorder's stop event doubles as the clock: it wakes at once when recording ends
    rec.stop.wait(max(0.0, t_mono - time.monotonic()))




def load_trial(inputs: list[str], live_seconds: float = 0.0,
               session_dir: Path | None = None, phases=TRIAL_PHASES) -> dict[str, FootTrial]:
    """Standing-trial samples per foot from captures, sessions, ``sim://stand`` or live ports
    (recorded for ``live_seconds`` into ``session_dir`` with cues)."""
    from insole.analysis.stream import streams_from_sources
    from insole.io.session import load_inputs

    srcs = []
    live = [u for u in inputs if u.startswith(LIVE_SCHEMES)]
    for url in inputs:
        if url in live:
            continue
        if url.startswith("sim://"):
            if not url.startswith("sim://stand"):
                raise SourceError(f"{url}: the calibration trial's simulator scenario is sim://stand")
            srcs += stand_sources(url)
        else:
            srcs += load_inputs([url])
    if live:
        if session_dir is None:
            raise SourceError("recording a live trial needs a session directory")
        srcs += _record_live(live, live_seconds, session_dir, phases)
    feet = streams_from_sources(srcs)
    return {side: _trial_from_stream(fs) for side, fs in feet.items()}
