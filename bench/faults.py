"""The fault table of docs/validation.md ("Faults and fuzzing"): each fault through the real
serial path (pty, pyserial, recorder, streaming core, ``insole analyse``'s reader), measured by
tests/faults_run.py: F1 over the time with data, sample sets analysed and fabricated, and the
counts the user sees.

    python bench/faults.py [--duration-s 120] [--speed 10] [--seed 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from faults_run import run_faulty  # noqa: E402

from insole.validation.score import score  # noqa: E402


def cases(duration_s: float) -> dict:
    d = duration_s
    return {
        "5 % packet loss": dict(loss_pct=5),
        "1 % corrupted frames": dict(corrupt_pct=1),
        "garbage bursts before 2 % of frames": dict(garbage_pct=2),
        "device overruns (3 x 100 ms)": dict(overrun_at=(d * 0.2, d * 0.45, d * 0.7), overrun_ms=100),
        "met5 sensor disconnected mid-run": dict(disconnect_sensor="met5", disconnect_at_s=d / 2),
        "heel sensor disconnected mid-run": dict(disconnect_sensor="heel", disconnect_at_s=d / 2),
        "arch sensor disconnected mid-run": dict(disconnect_sensor="arch", disconnect_at_s=d / 2),
        "met1 sensor disconnected mid-run": dict(disconnect_sensor="met1", disconnect_at_s=d / 2),
        "port closed and reopened (1.5 s)": dict(sides=("left", "right"),
                                                 replugs={"left": [(d * 0.4, 1.5)]}),
    }


def reported(q: dict, rec: dict, score_foot: dict | None = None, doc_foot: dict | None = None) -> str:
    parts = []
    for key, label in (("packets_lost", "packets lost"), ("decode_errors", "damaged frames"),
                       ("device_overruns", "device overruns"), ("samples_dropped", "sets dropped on the device"),
                       ("link_reconnects", "reconnects")):
        if q.get(key):
            parts.append(f"{q[key]} {label}")
    if q.get("sensor_faults"):
        parts.append("faulty sensor " + ", ".join(q["sensor_faults"]))
    lost = ((doc_foot or {}).get("summary", {}).get("steps_lost") or {}).get("ic_s")
    if lost:
        parts.append(f"{sum(lost.values())} steps without a contact (matched on the toe-off: "
                     f"{(score_foot or {}).get('matched_on_toe_off', 0)})")
    flags = (doc_foot or {}).get("flags")
    if flags is not None:
        parts.append("flags: " + (", ".join(f"{f['code']} ({f['rule']})" for f in flags) or "none"))
    return "; ".join(parts) or "-"


def foot_doc(doc: dict, side: str) -> dict:
    return {"summary": doc["feet"][side]["summary"],
            "flags": [f for f in doc["flags"] if f["side"] == side]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration-s", type=float, default=120.0)
    ap.add_argument("--speed", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=5)
    a = ap.parse_args(argv)
    print(f"faults: easy-run, {a.duration_s:g} s per run at {a.speed:g}x real time, seed {a.seed}")
    print("| fault | foot | F1 (20 ms) | F1 (100 ms) | true steps scored | sets analysed | "
          "fabricated | reported (insole analyse) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, kw in cases(a.duration_s).items():
        with tempfile.TemporaryDirectory() as d:
            r = run_faulty(Path(d), duration_s=a.duration_s, speed=a.speed, seed=a.seed, **kw)
        wide = score(r.doc, r.truth, tolerance_s=0.100)
        for s in r.quality:
            print(f"| {name} | {s} | {r.f1(s):.3f} | {wide['feet'][s]['f1']:.3f} | "
                  f"{r.scored_true_steps[s]} | {r.analysed_sets[s]} of {r.delivered_sets[s]} sent | "
                  f"{r.fabricated[s]} | {reported(r.quality[s], r.recorder[s], r.score['feet'][s], foot_doc(r.doc, s))} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
