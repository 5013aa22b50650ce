"""Export a session or capture to CSV: one row per sample set, gaps kept as empty cells."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from insole import protocol as P
from insole.analysis import ChannelForces
from insole.analysis.stream import streams_from_sources
from insole.errors import InsoleError
from insole.io.session import load_inputs


def export_csv(inputs: list[str], out_path: str | Path) -> int:
    """One row per sample set: time, side, each zone's force (N) and the total.

    Time is seconds since that foot's first sample on its device clock. A missing sample set
    (lost packet, device drop) is a row with empty force cells: gaps stay visible.
    """
    feet = streams_from_sources(load_inputs(inputs))
    zones = sorted({z for fs in feet.values() for z in fs.zones}, key=P.ZONES.index)
    rows = 0
    try:
        f = open(out_path, "w", newline="")
    except OSError as e:
        raise InsoleError(f"cannot write {out_path}: {e.strerror}") from e
    with f:
        f.write(",".join(["t_s", "side", *[f"{z}_force_n" for z in zones], "total_force_n"]) + "\n")
        for side, fs in feet.items():
            cal = ChannelForces().compute(fs)
            force = cal.force_n_
            table = np.full((fs.n, len(zones) + 2), np.nan)
            table[:, 0] = fs.t_s
            for i, z in enumerate(zones):
                if z in fs.zones:
                    table[:, i + 1] = force[:, fs.zones.index(z)]
            table[:, -1] = cal.total_n_
            fmt = "%.4f," + side + "," + ",".join(["%.2f"] * (len(zones) + 1)) + "\n"
            for start in range(0, fs.n, 50_000):
                chunk = table[start:start + 50_000]
                f.write("".join(fmt % tuple(r) for r in chunk.tolist()).replace("nan", ""))
            rows += fs.n
    return rows
