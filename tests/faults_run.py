"""One faulty simulated run through the real serial path, measured (tests/test_faults.py and
bench/faults.py import it).

The simulator writes each foot's frames to a real pty (``insole.sim.pty``, faults applied on the
wire or in the device); the production recorder reads it with pyserial (``serial://``, the
source ``insole record`` uses), writes the session and runs the streaming analysis on every
chunk; then ``insole analyse``'s path (``run_paths``) analyses the session. Measured against the
simulator's own record of what it sent:

- ``f1``: steps found against the truth, over the time with data (true steps that overlap a
  stretch of at least ``GAP_S`` with no sample set received are left out: a port unplugged for
  a second holds no step to find; what the device sent between the port's return and the
  recorder opening it again is discarded by the open, as on a real port, so the stretches come
  from the sample sets received, each checked against what was sent);
- ``fabricated``: analysed sample sets (rows of the grid the core is fed) that are not exactly a
  sample set the device sent in a frame the pty delivered (undamaged, or after a garbage burst,
  which may or may not have cost the frame). Must be 0;
- the fault as the user sees it: the document's quality ledger and the recorder's counters.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from insole.analysis.document import run_paths
from insole.analysis.stream import streams_from_sources
from insole.io.recorder import Recorder
from insole.io.session import load_inputs
from insole.sim import simulate, truth_document
from insole.sim.pty import Device, Pty, stream
from insole.validation.score import score

GAP_S = 0.5
WRAP = 1 << 32


@dataclass
class FaultRun:
    doc: dict
    score: dict
    quality: dict  # side -> the document's quality ledger
    analysed_sets: dict = field(default_factory=dict)  # side -> sample sets in the analysed grid
    fabricated: dict = field(default_factory=dict)  # side -> analysed sets not delivered as sent
    delivered_sets: dict = field(default_factory=dict)  # side -> sets in frames written whole
    scored_true_steps: dict = field(default_factory=dict)
    recorder: dict = field(default_factory=dict)  # side -> the worker's counters and ledger
    fates: dict = field(default_factory=dict)  # side -> frames written by fate (sim.pty.Device)
    truth: dict = field(default_factory=dict)  # the truth scored (steps in gaps left out)
    meta: dict = field(default_factory=dict)

    def f1(self, side: str) -> float:
        return self.score["feet"][side]["f1"]


def _delivered_rows(foot, delivered: list[tuple[int, int, str]]) -> np.ndarray:
    """Sim sample indices (into ``foot.t_us``) of every sample set in a delivered DATA frame."""
    index = {int(t) % WRAP: k for k, t in enumerate(foot.t_us.tolist())}
    rows = [np.arange(index[t0], index[t0] + n) for t0, n, _ in delivered]
    return np.unique(np.concatenate(rows)) if rows else np.zeros(0, np.int64)


def _gaps_s(foot, rows: np.ndarray) -> list[tuple[float, float]]:
    """Device-time stretches (s since the first sample) of at least GAP_S without these rows."""
    t = (foot.t_us[rows] - foot.t_us[0]) * 1e-6
    edges = np.r_[-math.inf, t, foot.duration_s + 1.0]
    d = np.diff(edges)
    return [(float(edges[i]), float(edges[i + 1])) for i in np.flatnonzero(d >= GAP_S)]


def _fabricated(foot, fs, rows: np.ndarray) -> tuple[int, int, np.ndarray]:
    """(analysed sample sets, of them not a delivered sample set with the same values, the sim
    indices of those that are)."""
    got = ~np.isnan(fs.volts).any(axis=1)
    n = int(got.sum())
    first = [k for k, t in enumerate(foot.t_us.tolist()) if t % WRAP == fs.t0_us % WRAP]
    if len(first) != 1:
        return n, n, np.zeros(0, np.int64)
    t_rows = foot.t_us[first[0]] + np.flatnonzero(got) * fs.period_us
    k = np.searchsorted(foot.t_us, t_rows)
    k_ok = np.minimum(k, len(foot.t_us) - 1)
    exists = (k < len(foot.t_us)) & (foot.t_us[k_ok] == t_rows)
    sent = exists & np.isin(k_ok, rows)
    same = np.zeros(n, bool)
    volts = fs.volts[got]
    same[sent] = np.all(np.abs(volts[sent] - foot.units[k_ok[sent]] * 1e-4) < 1e-9, axis=1)
    return n, int((~same).sum()), k_ok[same]


def run_faulty(tmp_path: Path, sides=("left",), duration_s: float = 32.0, speed: float = 12.0,
               seed: int = 5, scenario: str = "easy-run", replugs: dict | None = None,
               timeout_s: float = 120.0, **faults) -> FaultRun:
    """Simulate ``sides`` with ``faults`` on ptys, record and analyse them; see the module."""
    feet = {s: simulate(scenario, s, duration_s, seed=seed, **faults) for s in sides}
    truth = truth_document(feet)
    ports = {s: Pty.open(link=str(tmp_path / f"tty-{s}")) for s in sides}
    devices = {s: Device(feet[s], ports[s], (replugs or {}).get(s), log_delivered=True)
               for s in sides}
    out = tmp_path / "session"
    rec = Recorder([f"serial://{ports[s].path}" for s in sides], out)
    stop = threading.Event()
    sim = threading.Thread(target=stream, args=(feet, ports, stop, speed, devices), daemon=True)
    try:
        rec.start()
        sim.start()
        sim.join(timeout_s)
        assert not sim.is_alive(), "the simulated run did not end in time"
        # the recorder takes what is still buffered, then stops before the ports close (so the
        # end of the run is not counted as a disconnect)
        end = time.monotonic() + 10.0
        while any(p.unread_bytes() for p in ports.values()) and time.monotonic() < end:
            stop.wait(0.02)
    finally:
        stop.set()
        rec.close()
        for p in ports.values():
            p.close(drain_s=0.0)
        sim.join(10)
    doc = run_paths([str(out)]).document()
    feet_streams = streams_from_sources(load_inputs([out]))
    run = FaultRun(doc=doc, score={}, quality={s: doc["feet"][s]["quality"] for s in doc["feet"]})
    for w in rec.workers:
        run.recorder[w.side] = {"packets": w.decoder.packets, "bad_frames": w.decoder.error_count,
                                "fault": w.fault, "analysis_fault": w.analysis_fault,
                                **(w.source.ledger() if hasattr(w.source, "ledger") else {})}
    for s in sides:
        rows = _delivered_rows(feet[s], devices[s].delivered)
        run.delivered_sets[s] = int(rows.size)
        run.analysed_sets[s], run.fabricated[s], received = _fabricated(feet[s], feet_streams[s], rows)
        gaps = _gaps_s(feet[s], received)
        tf = truth["feet"][s]
        tf["steps"] = [st for st in tf["steps"]
                       if not any(st["ic_s"] < b and st["to_s"] > a for a, b in gaps)]
        run.scored_true_steps[s] = len(tf["steps"])
        run.fates[s] = dict(devices[s].fates)
        run.meta[s] = {"gaps_s": gaps, "replugs": ports[s].replugs,
                       "frames_unplugged": ports[s].frames_unplugged,
                       "frames_dropped": ports[s].frames_dropped}
    run.score = score(doc, truth)
    run.truth = truth
    return run
