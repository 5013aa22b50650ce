"""Which per-step metrics two runs are compared on, and how each is read from an analysis.

Every metric is a series of consecutive steps of one foot, taken from the ``insole.analysis/1``
document's ``feet[side]["steps"]`` in step order. Force metrics use complete steps only (an
incomplete step has ``null`` force metrics: it is skipped, and ``n_a``/``n_b`` count what was
used). The metrics are those behind the three flags and the ones a runner changes on purpose:

=============================  ===========================  ====================================
name                           unit                         per-step values
=============================  ===========================  ====================================
``valr_bw_per_s_rearfoot``     BW/s                         VALR of rearfoot steps measured by
                                                            the 20-80 % method (the definition
                                                            behind Davis et al. 2016's 66 BW/s;
                                                            the fallback method differs by a
                                                            third, so it is not mixed in)
``peak_force_bw``              BW                           highest total force in stance
``metatarsal_share``           share of stance impulse      met1 + met23 + met5
``<zone>_share``               share of stance impulse      each zone of the insole (heel, arch,
                                                            met1, met23, met5 by default)
``contact_ms``                 ms                           toe-off − initial contact
``cadence_spm``                steps/min                    2 · 60000 / stride_ms, strides
                                                            between two complete steps, within
                                                            0.5–1.5 × the median stride
``rearfoot_strike_share``      share of steps               1 for a rearfoot strike, else 0
                                                            (compared by the mean: the share of
                                                            rearfoot steps, the strike mix)
=============================  ===========================  ====================================

With both feet in both runs, left/right symmetry ``100 · (L − R) / mean(L, R)`` of the medians
of ``contact_ms``, ``peak_force_bw``, ``valr_bw_per_s_rearfoot`` and ``metatarsal_share`` (the
analysis's ``symmetry_index_pct``) is compared too, as ``<metric>_symmetry_pct`` on side
``"both"``, in % (its difference in percentage points).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from insole.protocol import METATARSAL_ZONES

SIDES = ("left", "right")


@dataclass(frozen=True)
class Metric:
    """One compared metric: ``name`` (with its unit), ``unit``, ``label`` (plain words, for the
    sentences), ``kind`` (``"value"``: its change is read in % of A; ``"share"``: in percentage
    points; ``"symmetry"``: in percentage points of the symmetry index) and ``statistic``
    (``"median"``, or ``"mean"`` for a share of steps)."""

    name: str
    unit: str
    label: str
    kind: str = "value"
    statistic: str = "median"


VALR = Metric("valr_bw_per_s_rearfoot", "BW/s", "loading rate on heel strikes")
PEAK = Metric("peak_force_bw", "BW", "peak force")
MET = Metric("metatarsal_share", "share of stance impulse", "forefoot (metatarsal) share of each step",
             "share")
CONTACT = Metric("contact_ms", "ms", "contact time")
CADENCE = Metric("cadence_spm", "steps/min", "cadence")
REARFOOT = Metric("rearfoot_strike_share", "share of steps", "share of heel (rearfoot) strikes",
                  "share", "mean")
_ZONE_LABELS = {"heel": "heel", "arch": "arch", "met1": "met1 (big-toe side)",
                "met23": "met2-3 (central)", "met5": "met5 (little-toe side)",
                "hallux": "big toe", "midfoot_lateral": "outer midfoot"}
SYMMETRY_OF = ("contact_ms", "peak_force_bw", "valr_bw_per_s_rearfoot", "metatarsal_share")


def zone_metric(zone: str) -> Metric:
    return Metric(f"{zone}_share", "share of stance impulse",
                  f"{_ZONE_LABELS.get(zone, zone)} share of each step", "share")


def symmetry_metric(of: Metric) -> Metric:
    return Metric(f"{of.name}_symmetry_pct", "% (100·(L−R)/mean(L,R))",
                  f"left/right asymmetry of {of.label}", "symmetry")


def foot_series(foot: dict) -> dict[str, tuple[Metric, np.ndarray]]:
    """The per-step series of one foot of an ``insole.analysis/1`` document.

    Args:
        foot: ``doc["feet"][side]`` (needs ``steps``).

    Returns:
        ``{name: (Metric, values)}`` in a fixed order; values are float arrays in step order
        (possibly empty). Zone metrics are those the foot's steps carry.
    """
    steps = foot.get("steps") or []
    clean = [s for s in steps if s.get("complete")]
    out: dict[str, tuple[Metric, np.ndarray]] = {}

    def put(m: Metric, vals) -> None:
        out[m.name] = (m, np.asarray([v for v in vals if v is not None], dtype=float))

    put(VALR, (s.get("valr_bw_per_s") for s in clean
               if s.get("strike") == "rearfoot" and s.get("valr_method") == "20-80"))
    put(PEAK, (s.get("peak_force_bw") for s in clean))
    zones: list[str] = []
    for s in clean:
        for z in s.get("zone_impulse_share") or {}:
            if z not in zones:
                zones.append(z)
    if any(z in zones for z in METATARSAL_ZONES):
        put(MET, (_met_share(s) for s in clean))
    for z in zones:
        put(zone_metric(z), ((s.get("zone_impulse_share") or {}).get(z) for s in clean))
    put(CONTACT, (s.get("contact_ms") for s in clean))
    put(CADENCE, _cadence(steps))
    put(REARFOOT, (float(s["strike"] == "rearfoot") for s in clean
                   if s.get("strike") in ("rearfoot", "midfoot", "forefoot")))
    return out


def _met_share(step: dict) -> float | None:
    if step.get("metatarsal_share") is not None:
        return step["metatarsal_share"]
    zs = step.get("zone_impulse_share") or {}
    vals = [zs[z] for z in METATARSAL_ZONES if zs.get(z) is not None]
    return float(sum(vals)) if vals else None


def _cadence(steps: list[dict]) -> list[float]:
    """Per-stride cadence (steps/min of both feet) between consecutive complete steps; a stride
    outside 0.5–1.5 × the median (a missed step, a stop) is not one stride."""
    strides = [s["stride_ms"] for s, nxt in zip(steps, steps[1:])
               if s.get("complete") and nxt.get("complete") and s.get("stride_ms")]
    if not strides:
        return []
    med = float(np.median(strides))
    return [120000.0 / x for x in strides if 0.5 * med < x < 1.5 * med]


def symmetry_index_pct(left: np.ndarray | float, right: np.ndarray | float) -> np.ndarray | float:
    """``100 · (L − R) / mean(L, R)`` (element-wise for bootstrap replicates)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return 200.0 * (np.asarray(left) - np.asarray(right)) / (np.asarray(left) + np.asarray(right))
