"""The force plate's own loading rate: the reference the analysis's VALR is judged against.

Computed directly from a fukuchi2017 forces file (the treadmill plate's vertical force ``Fy``,
300 Hz), independently of the insole path (conversion, sensor model, packets, step detection,
:mod:`insole.analysis.metrics`):

* ``Fy`` low-passed as the converter does (zero-phase 2nd-order Butterworth at 50 Hz, run both
  ways), contacts at 20 N (:func:`insole.validation.datasets.contacts`), each step's foot as the
  converter assigns it (the truth of :func:`insole.validation.datasets.convert_fukuchi`).
* **Impact transient**, at 300 Hz with no further smoothing: in the first 30 % of stance and at
  1 BW or more, after the steepest slope of the rise, the first sample that is a local maximum of
  force (a peak) or a local minimum of its slope (a shoulder: the rise slows and picks up again,
  with no dip). The two forms are what a biomechanist marks on a force-plate curve
  (``../shared/data/README.md``: RBDS004's transient is a shoulder of ~2.0-2.3 BW 40-50 ms after
  contact, sometimes with a dip after it and often without).
* **VALR** = 60 % of the transient's force over the time between its 20 % and 80 % crossings
  (linear interpolation), in body weights per second (``Mass`` of ``RBDSinfo.txt``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from insole.validation import datasets

G_M_PER_S2 = 9.80665
WINDOW_FRAC = 0.30
MIN_TRANSIENT_BW = 1.0


def _crossing(x: np.ndarray, level: float) -> float:
    k = int(np.flatnonzero(x >= level)[0])
    return 0.0 if k == 0 else k - 1 + (level - x[k - 1]) / (x[k] - x[k - 1])


def plate_transient(f_bw: np.ndarray, rate_hz: float) -> dict | None:
    """Impact transient and 20-80 % VALR of one stance (``f_bw`` from the sample before contact
    to toe-off, in BW); None when the stance has none (module docstring)."""
    n = len(f_bw)
    w = max(3, int(WINDOW_FRAC * n))
    d = np.gradient(f_bw) * rate_hz
    jm = int(np.argmax(d[:w]))
    for j in range(jm + 1, min(w, n - 1)):
        if f_bw[j] < MIN_TRANSIENT_BW:
            continue
        if d[j] <= 0.0:
            k, kind = (j - 1 if f_bw[j - 1] > f_bw[j] else j), "peak"
            break
        if d[j] < d[j - 1] and d[j] <= d[j + 1]:
            k, kind = j, "shoulder"
            break
    else:
        return None
    v = float(f_bw[k])
    rise = f_bw[:k + 1]
    dt_s = (_crossing(rise, 0.8 * v) - _crossing(rise, 0.2 * v)) / rate_hz
    return {"impact_bw": round(v, 4), "transient": kind, "at_ms": round((k - 1) * 1e3 / rate_hz, 1),
            "valr_bw_per_s": round(0.6 * v / dt_s, 3)}


def fukuchi_plate_valr(path: str | Path) -> dict:
    """Per-foot plate VALR of a fukuchi2017 trial: ``{"body_weight_n", "feet": {side: {"steps":
    [{ic_s, impact_bw, transient, at_ms, valr_bw_per_s}], "median_bw_per_s", "n_transient",
    "n_steps"}}}``. Step times are those of the converted capture's truth (seconds from the
    first plate sample)."""
    table, info = datasets.load_fukuchi(path)
    mass = datasets._num(info.get("Mass"))
    if mass is None:
        raise datasets.InputFileError(f"{path}: no body mass in RBDSinfo.txt beside it")
    bw = mass * G_M_PER_S2
    rate = datasets.FUKUCHI_RATE_HZ
    fy = datasets.lowpass(table[:, 2], datasets.PLATE_LOWPASS_HZ, rate)
    feet_conv, _ = datasets.fukuchi_feet(table)
    out: dict = {"body_weight_n": round(bw, 2), "feet": {}}
    for foot in feet_conv:
        steps = []
        for t in foot.truth_steps:
            s = int(np.ceil(t["ic_s"] * rate))  # first sample above 20 N
            e = int(np.floor(t["to_s"] * rate)) + 1
            r = plate_transient(fy[s - 1:e] / bw, rate)
            steps.append({"ic_s": t["ic_s"], **(r or {"impact_bw": None, "transient": None,
                                                       "at_ms": None, "valr_bw_per_s": None})})
        vals = [x["valr_bw_per_s"] for x in steps if x["valr_bw_per_s"] is not None]
        out["feet"][foot.side] = {
            "steps": steps, "n_steps": len(steps), "n_transient": len(vals),
            "median_bw_per_s": round(float(np.median(vals)), 2) if vals else None}
    return out
