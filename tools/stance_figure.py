"""A real stance and a simulated one side by side (docs/img/stance_real_vs_sim.png), and the
waveform features that calibrate the simulator against the force plate (printed as a table).

    .venv/bin/python tools/stance_figure.py [--out docs/img/stance_real_vs_sim.png]

Real: fukuchi2017 RBDS004 (a rearfoot runner, treadmill force plate, 300 Hz; ``../shared/data``),
the plate's raw vertical force and the same low-passed at 50 Hz as the converter does, in body
weights of the listed mass (57.05 kg). Simulated: the ``easy-run`` scenario (seed 1), the true
total force of the model and what the insole reports (the capture decoded and calibrated by the
analysis: noise, FSR hysteresis and creep, the ESP32 ADC's 150 mV floor, 500 Hz).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from insole import sim  # noqa: E402
from insole.analysis.forces import ChannelForces  # noqa: E402
from insole.analysis.metrics import MetricsConfig, impact_transient  # noqa: E402
from insole.analysis.stream import streams_from_sources  # noqa: E402
from insole.io.session import load_inputs  # noqa: E402
from insole.validation import datasets, loading_rate  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RBDS004 = ROOT.parent / "shared" / "data" / "fukuchi2017" / "RBDS004runT25forces.txt"
MASS_KG = 57.05
G = 9.80665


def features(f_bw: np.ndarray, rate_hz: float) -> dict:
    """Waveform features of one stance (f_bw from the sample before contact to toe-off)."""
    n = len(f_bw)
    cfg = MetricsConfig()
    it = impact_transient(f_bw, rate_hz, int(cfg.impact_window_frac * n) + 1, cfg.impact_min_bw, cfg)
    k_act = int(np.argmax(f_bw))
    out = {"contact_ms": (n - 1) * 1e3 / rate_hz, "active_bw": float(f_bw[k_act]),
           "active_at_pct": 100.0 * k_act / n, "early_30ms_max_bw": float(f_bw[: int(0.03 * rate_hz)].max())}
    if it is not None:
        after = f_bw[it.index: k_act + 1]
        out.update(transient_bw=it.value, transient_ms=(it.index - 1) * 1e3 / rate_hz,
                   dip_bw=float(it.value - after.min()), shoulder=it.kind == "shoulder",
                   valr=it.valr_per_s)
    return out


def table(rows: list[dict]) -> dict:
    keys = ("contact_ms", "transient_ms", "transient_bw", "dip_bw", "active_bw", "active_at_pct",
            "early_30ms_max_bw", "valr")
    out = {k: np.median([r[k] for r in rows if k in r]) for k in keys}
    out["shoulder_frac"] = np.mean([r.get("shoulder", False) for r in rows])
    out["n"] = len(rows)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "img" / "stance_real_vs_sim.png"))
    args = ap.parse_args(argv)
    if not RBDS004.is_file():
        print(f"{RBDS004} is missing (../shared/data)", file=sys.stderr)
        return 2
    # --- real: the plate
    table_in, _ = datasets.load_fukuchi(RBDS004)
    rate_r = datasets.FUKUCHI_RATE_HZ
    bw_r = MASS_KG * G
    raw = table_in[:, 2]
    lp = datasets.lowpass(raw, datasets.PLATE_LOWPASS_HZ, rate_r)
    steps = datasets.contacts(lp, rate_r)["steps"]
    real = [features(lp[s - 1:e + 1] / bw_r, rate_r) for _, _, s, e in steps]
    plate = loading_rate.fukuchi_plate_valr(RBDS004)
    # --- simulated: the model's true force and the insole's reading
    foot = sim.simulate("easy-run", "left", 60.0, seed=1)
    bw_s = foot.body_mass_kg * 9.81
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "left.bin"
        sim.write_capture(p, foot)
        fs = streams_from_sources(load_inputs([str(p)]))["left"]
    read = ChannelForces().compute(fs).total_n_
    true = foot.forces_n.sum(axis=1)
    rate_s = float(foot.rate_hz)
    t_s = np.arange(len(true)) / rate_s
    simulated = []
    for st in foot.truth["steps"]:
        a = int(np.ceil(st["ic_s"] * rate_s))
        b = int(np.floor(st["to_s"] * rate_s)) + 1
        simulated.append(features(true[a - 1:b] / bw_s, rate_s))
    tr, ts = table(real), table(simulated)
    print("| feature | RBDS004 plate (57.05 kg) | simulator easy-run (model force) |")
    print("|---|---|---|")
    names = {"n": "steps", "contact_ms": "contact (ms)", "transient_ms": "impact transient at (ms after contact)",
             "transient_bw": "impact transient (BW)", "dip_bw": "dip after it (BW)",
             "shoulder_frac": "share of steps with a shoulder (no dip)", "active_bw": "active peak (BW)",
             "active_at_pct": "active peak at (% of stance)", "early_30ms_max_bw": "most force in the first 30 ms (BW)",
             "valr": "20-80 % VALR (BW/s, this table's smoothing)"}
    for k, name in names.items():
        print(f"| {name} | {tr[k]:.3g} | {ts[k]:.3g} |")
    print("plate VALR per foot (loading_rate.fukuchi_plate_valr):",
          {s: f["median_bw_per_s"] for s, f in plate["feet"].items()})

    # --- the figure: one real stance (a shoulder) and one simulated, the same axes
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.2), sharey="row")
    k_real = next(i for i, r in enumerate(real) if r.get("shoulder") and 0.3 < i / len(real) < 0.7)
    _, _, s, e = steps[k_real]
    pre = int(0.02 * rate_r)
    idx = np.arange(s - pre, e + pre)
    t_r = (idx - s) * 1e3 / rate_r
    k_sim = next(i for i, r in enumerate(simulated) if r.get("shoulder") and 0.3 < i / len(simulated) < 0.7)
    st = foot.truth["steps"][k_sim]
    a = int(np.ceil(st["ic_s"] * rate_s))
    b = int(np.floor(st["to_s"] * rate_s)) + 1
    pre_s = int(0.02 * rate_s)
    j = np.arange(a - pre_s, b + pre_s)
    t_m = (t_s[j] - st["ic_s"]) * 1e3
    for row, xlim in ((0, None), (1, (-10, 80))):
        ax = axes[row, 0]
        ax.plot(t_r, raw[idx] / bw_r, color="0.6", lw=0.9, marker=".", ms=3, label="plate Fy, raw (300 Hz)")
        ax.plot(t_r, lp[idx] / bw_r, color="C0", lw=1.6, label="low-passed 50 Hz (as converted)")
        ax = axes[row, 1]
        ax.plot(t_m, true[j] / bw_s, color="C3", lw=1.6, label="model: true total force")
        ax.plot(t_m, read[j] / bw_s, color="0.35", lw=0.9, marker=".", ms=3,
                label="insole reading (noise, hysteresis,\ncreep, 150 mV ADC floor; 500 Hz)")
        for ax in axes[row]:
            ax.grid(alpha=0.3)
            ax.axhline(0, color="k", lw=0.5)
            if xlim:
                ax.set_xlim(*xlim)
                ax.set_ylim(-0.1, 2.6)
            ax.set_xlabel("time from contact (ms)")
    # mark the transients the analysis would take
    for ax, f, rate, t0 in ((axes[0, 0], lp[s - 1:e + 1] / bw_r, rate_r, -1e3 / rate_r),
                            (axes[0, 1], read[a - 1:b] / bw_s, rate_s, (t_s[a - 1] - st["ic_s"]) * 1e3)):
        n = len(f)
        it = impact_transient(f, rate, int(0.3 * n) + 1, 0.8)
        if it is not None:
            ax.plot(t0 + it.index * 1e3 / rate, it.value, "v", color="k", ms=8,
                    label=f"impact transient: {it.kind}, {it.value:.2f} BW,\nVALR {it.valr_per_s:.0f} BW/s")
    axes[0, 0].set_ylabel("vertical force (BW)")
    axes[1, 0].set_ylabel("vertical force (BW), first 80 ms")
    axes[0, 0].set_title(f"real: RBDS004 force plate, step {k_real + 1} ({MASS_KG} kg)", fontsize=10)
    axes[0, 1].set_title(f"simulated: easy-run insole, seed 1, left step {k_sim + 1} (70 kg)", fontsize=10)
    for ax in axes[0]:
        ax.legend(fontsize=7.5, loc="upper right")
    for ax in axes[1]:
        ax.legend(fontsize=7.5, loc="lower right")
    fig.suptitle("A real and a simulated rearfoot stance: shoulder at the impact transient, "
                 "ripples and a bump on contact", fontsize=11)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
