"""`make bench`, live window: frame rate and sample-to-drawing lag on Agg.

Two feet × 500 Hz × 6 zones (the six-sensor board's zones, hallux included), replayed from
capture files at real speed through the same path as `insole live file://… file://…` (paced
replay → reader threads → ring buffers and the streaming step analysis → blitted frames).

1. As fast as it can draw: frames back to back for 10 s, while the data streams in.
2. At the window's default 30 frames/s for 10 s: frames drawn and dropped, and the lag from a
   sample's arrival (the reader thread has read and decoded it) to the end of the first frame
   that drew it. On Agg a frame ends in memory; on screen the toolkit adds its own blit.

Prints figures; asserts nothing (tests never assert on time).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from insole import protocol
from insole.live import LiveFeed, run_headless
from insole.model import hardware, sensor
from insole.sim import SCENARIOS, batch_size, gait
from insole.sim.device import frame_many

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "bench"
RATE_HZ = 500
DURATION_S = 40.0
SIX_ZONE_BOARD = "olimex-esp32-s3-devkit-lipo"


def six_zone_capture(side: str, seed: int = 1) -> Path:
    """A raw capture of one foot with the six-sensor board's zones (INFO, DATA, STATUS)."""
    path = BUILD / f"live-6zone-{side}.bin"
    if path.exists():
        return path
    zones = hardware.default_zones(SIX_ZONE_BOARD)
    p = SCENARIOS["easy-run"].gait
    steps = gait.foot_steps(p, zones, side, DURATION_S, seed)
    period_us = 1_000_000 // RATE_HZ
    n = int(DURATION_S * RATE_HZ)
    forces = gait.zone_forces_n(steps, np.arange(n) * period_us * 1e-6, p.body_mass_kg)
    supply_mv, r_fixed = hardware.divider()
    units = sensor.volts_to_units(sensor.volts_from_force(forces, supply_mv / 1000.0, r_fixed))
    batch = batch_size(len(zones))
    pkts = [protocol.encode(protocol.Info(side, zones, RATE_HZ, supply_mv, r_fixed, "b0b0b0b0b0b0",
                                          "bench"))]
    for k, a in enumerate(range(0, n, batch)):
        pkts.append(protocol.encode(protocol.Data(side, k & 0xFFFF, (a * period_us) & 0xFFFFFFFF,
                                                  period_us, units[a:a + batch])))
        if (a + batch) // RATE_HZ > a // RATE_HZ:  # a STATUS once a second
            pkts.append(protocol.encode(protocol.Status(side, 90, 4000, a // RATE_HZ, RATE_HZ, RATE_HZ,
                                                        0, 0, 1, 170)))
    BUILD.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(frame_many(pkts)))
    return path


def run(fps: float, seconds: float) -> dict:
    urls = [f"file://{six_zone_capture(s)}" for s in ("left", "right")]
    feed = LiveFeed(urls, speed=1.0).start()
    warm = 15
    if fps > 0:
        res = run_headless(feed, int(seconds * fps), fps=fps, warmup_frames=warm)
    else:
        # back to back: draw for `seconds`, counting frames (the frame count is not known ahead)
        t_end = time.monotonic() + seconds + 1.0
        res = run_headless(feed, 10_000_000, fps=0, warmup_frames=warm, _until=t_end)
    s = res.stats.summary()
    s["zones"] = len(next(iter(res.feed.feet.values())).zones)
    s["feet"] = len(res.feed.feet)
    s["packets"] = sum(f.packets for f in res.feed.feet.values())
    return s


def main() -> int:
    print("Live window on Agg: two feet x 500 Hz x 6 zones, replayed at real speed")
    s = run(0, 10.0)
    print(f"  as fast as it draws: {s['fps']:.0f} frames/s over {s['frames']} frames "
          f"({s['feet']} feet x {s['zones']} zones, {s['packets']} packets in), "
          f"draw {s['draw_ms_median']:.1f} ms median per frame")
    s = run(30, 10.0)
    print(f"  at 30 frames/s: {s['fps']:.1f} frames/s achieved, {s['frames_skipped']} frames dropped "
          f"of {s['frames'] + s['frames_skipped']}, draw {s['draw_ms_median']:.1f} ms median")
    print(f"  lag from a sample's arrival to its first drawing: {s['lag_ms_median']:.0f} ms median, "
          f"{s['lag_ms_p95']:.0f} ms p95, {s['lag_ms_max']:.0f} ms max (aim: under 100 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
