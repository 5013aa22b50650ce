"""Two runs, metric by metric: medians, the difference, its 95 % interval, and plain words.

:func:`load_run` turns an input (a recorded session, a folder of one capture per foot as
``insole sim --out DIR --side both`` writes it, a single capture, or an ``insole.analysis/1``
JSON file) into its analysis document. :class:`RunComparison` compares two analyses and builds
the ``insole.compare/1`` document::

    {"schema": "insole.compare/1",
     "a": {...run A...}, "b": {...run B...},
     "metrics": [{"name", "side", "unit", "a_median", "b_median", "diff", "ci95": [lo, hi],
                  "n_a", "n_b", "changed"}, ...],
     "notes": [...]}

``diff`` is ``b_median - a_median`` in the metric's unit; ``ci95`` its 95 % block-bootstrap
interval (:mod:`insole.compare.stats`), ``null`` when either run has fewer than 20 values;
``changed`` is true when the interval excludes 0. For ``rearfoot_strike_share`` the two
"medians" are the shares of rearfoot steps (the mean of a 0/1 series); for the
``*_symmetry_pct`` metrics (side ``"both"``) they are symmetry indices of the feet's medians.
:func:`sentences` puts each line of the document into plain words.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from insole.compare import metrics as M
from insole.compare import stats
from insole.compare.metrics import (
    SIDES,
    SYMMETRY_OF,
    Metric,
    foot_series,
    symmetry_index_pct,
    symmetry_metric,
)
from insole.errors import InputFileError, malformed

SCHEMA = "insole.compare/1"
ANALYSIS_SCHEMA = "insole.analysis/1"
CAPTURE_NAMES = ("left.bin", "right.bin")


# --- inputs -----------------------------------------------------------------------------------


def load_run(path: str | Path, body_mass_kg: float | None = None,
             calibration_files: list[str] | None = None) -> tuple[dict, str]:
    """The analysis document of one run, and what kind of input it was.

    Args:
        path: a recorded session directory, a directory holding ``left.bin`` and/or
            ``right.bin`` (``insole sim --out DIR``), a raw capture or session file, or an
            ``insole.analysis/1`` JSON file.
        body_mass_kg: the runner's mass for raw inputs (ignored for an analysis file).
        calibration_files: calibration files for raw inputs.

    Returns:
        ``(analysis document, kind)`` with kind ``"session"``, ``"captures"``, ``"capture"`` or
        ``"analysis"``.

    Raises:
        InputFileError: a missing path, an unknown folder, a damaged or foreign JSON file, or
            any error of the analysis itself (one line each).
    """
    from insole.analysis import analyse_paths

    p = Path(path)
    if not p.exists():
        raise InputFileError(f"{p}: no such file or directory")
    if p.is_dir():
        if (p / "session.json").is_file():
            return analyse_paths([str(p)], body_mass_kg, calibration_files), "session"
        caps = [p / n for n in CAPTURE_NAMES if (p / n).is_file()]
        if caps:
            return analyse_paths([str(c) for c in caps], body_mass_kg, calibration_files), "captures"
        raise InputFileError(f"{p}: neither a recorded session (session.json) nor a folder of "
                             f"captures ({' and/or '.join(CAPTURE_NAMES)})")
    try:
        with p.open("rb") as fh:
            head = fh.read(64).lstrip()
    except OSError as e:
        raise InputFileError(f"{p}: cannot read ({e.strerror})") from e
    if head.startswith(b"{") or p.suffix.lower() == ".json":
        return _load_analysis(p), "analysis"
    return analyse_paths([str(p)], body_mass_kg, calibration_files), "capture"


def _load_analysis(p: Path) -> dict:
    try:
        doc = json.loads(p.read_text())
    except OSError as e:
        raise InputFileError(f"{p}: cannot read ({e.strerror})") from e
    except ValueError as e:
        raise InputFileError(f"{p}: not valid JSON ({e})") from e
    if not isinstance(doc, dict) or doc.get("schema") != ANALYSIS_SCHEMA:
        schema = doc.get("schema") if isinstance(doc, dict) else None
        raise InputFileError(f"{p}: schema {schema!r}, expected {ANALYSIS_SCHEMA} "
                             "(write one with `insole analyse ... --json PATH`)")
    feet = doc.get("feet")
    if not isinstance(feet, dict) or not feet or any(s not in SIDES for s in feet):
        raise InputFileError(f"{p}: 'feet' must map left and/or right to a foot's analysis")
    for side, foot in feet.items():
        steps = foot.get("steps") if isinstance(foot, dict) else None
        if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
            raise InputFileError(f"{p}: feet.{side}.steps must be a list of steps")
    return doc


# --- comparison -------------------------------------------------------------------------------


@dataclass
class CompareConfig:
    """Parameters of a comparison (defaults are the project's; see docs/analysis.md)."""

    n_boot: int = stats.N_BOOT
    seed: int = 0
    conf: float = stats.CONF_LEVEL
    min_steps: int = stats.MIN_STEPS
    detrend_degree: int | None = 2
    """Block length chosen on each series minus its quadratic trend (:func:`stats.block_length`)."""
    cadence_warn_frac: float = 0.03
    """Cadence differing by more than 3 % (about 5 steps/min at 170) is a confound."""
    contact_warn_frac: float = 0.05
    """Contact time differing by more than 5 % suggests another pace (Weyand et al. 2000)."""
    duration_warn_ratio: float = 1.5
    """One run 1.5 times as long as the other: fatigue drift differs."""
    body_weight_warn_frac: float = 0.03
    """Body weights (the unit of every force) differing by more than 3 %."""


@dataclass
class MetricResult:
    """One compared metric: its definition, side, the difference, and each run's own interval
    of its statistic (for pictures)."""

    metric: Metric
    side: str
    diff: stats.Difference
    a_ci: tuple[float, float] | None = None
    b_ci: tuple[float, float] | None = None
    a_values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    b_values: np.ndarray = field(default_factory=lambda: np.zeros(0))


class RunComparison:
    """Compares run B with run A, metric by metric (gaitmap form: ``compute`` returns self).

    Args:
        config: a :class:`CompareConfig`; the default draws 2000 resamples with seed 0.
    """

    def __init__(self, config: CompareConfig | None = None) -> None:
        self.config = config or CompareConfig()

    def compute(self, doc_a: dict, doc_b: dict, label_a: str = "A", label_b: str = "B",
                source_a: str | None = None, source_b: str | None = None) -> RunComparison:
        """Sets ``results_`` (list of :class:`MetricResult`) and ``document_`` (the
        ``insole.compare/1`` dict); returns self. Neither analysis is modified."""
        cfg = self.config
        notes: list[str] = []
        results: list[MetricResult] = []
        feet_a, feet_b = doc_a.get("feet", {}), doc_b.get("feet", {})
        common = [s for s in SIDES if s in feet_a and s in feet_b]
        for s in SIDES:
            if (s in feet_a) != (s in feet_b):
                has = label_a if s in feet_a else label_b
                notes.append(f"only {has} has the {s} foot: {s}-foot metrics and left/right "
                             "symmetry are not compared")
        if not common:
            notes.append(f"{label_a} and {label_b} share no foot: nothing to compare")
        by_side: dict[str, dict[str, MetricResult]] = {}
        for side in common:
            sa, sb = foot_series(feet_a[side]), foot_series(feet_b[side])
            by_side[side] = {}
            for name in [*sa, *(k for k in sb if k not in sa)]:
                if name not in sa or name not in sb:
                    has = label_a if name in sa else label_b
                    notes.append(f"{side}: {name} only in {has} (another set of sensors): not compared")
                    continue
                m, xa = sa[name]
                xb = sb[name][1]
                d = stats.compare(xa, xb, m.statistic, cfg.n_boot, self._rng(side, name), cfg.conf,
                                  cfg.min_steps, cfg.detrend_degree)
                r = MetricResult(m, side, d, a_values=xa, b_values=xb)
                if d.reps_a is not None:
                    r.a_ci = stats.percentile_interval(d.reps_a, cfg.conf)
                    r.b_ci = stats.percentile_interval(d.reps_b, cfg.conf)
                by_side[side][name] = r
                results.append(r)
        if len(common) == 2:
            for name in SYMMETRY_OF:
                rs = [by_side[s].get(name) for s in SIDES]
                if all(r is not None for r in rs):
                    results.append(self._symmetry(rs[0], rs[1]))
        few = [f"{r.side} {r.metric.name} ({r.diff.n_a} vs {r.diff.n_b})" for r in results
               if r.diff.ci is None and (r.diff.n_a or r.diff.n_b)]
        if few:
            notes.append(f"fewer than {cfg.min_steps} steps in a run, so no interval: " + "; ".join(few))
        notes.extend(self._confounds(doc_a, doc_b, label_a, label_b))
        notes.append(
            f"95 % intervals: circular block bootstrap over consecutive steps (block length per run "
            f"and metric by Politis & White 2004, on the series without its drift over the run), "
            f"{cfg.n_boot} resamples, seed {cfg.seed}. They "
            "describe the step-to-step variation inside these two runs; day-to-day variation of the "
            "same runner is not in them, so 'changed' means these two runs differ, not why.")
        self.results_ = results
        self.document_ = {
            "schema": SCHEMA,
            "a": _describe(doc_a, label_a, source_a),
            "b": _describe(doc_b, label_b, source_b),
            "metrics": [_entry(r) for r in results],
            "notes": notes,
        }
        return self

    def _rng(self, side: str, name: str) -> np.random.Generator:
        # one stream per metric, independent of the order metrics are computed in
        return np.random.default_rng([self.config.seed, zlib.crc32(f"{side}:{name}".encode())])

    def _symmetry(self, left: MetricResult, right: MetricResult) -> MetricResult:
        """Symmetry index of the feet's medians, A vs B; replicates from the per-foot ones."""
        m = symmetry_metric(left.metric)
        dl, dr = left.diff, right.diff
        a = _si(dl.a, dr.a)
        b = _si(dl.b, dr.b)
        diff = b - a if a is not None and b is not None else None
        n_a, n_b = dl.n_a + dr.n_a, dl.n_b + dr.n_b
        if dl.reps_a is None or dr.reps_a is None:
            return MetricResult(m, "both", stats.Difference(a, b, diff, None, False, n_a, n_b))
        si_a = symmetry_index_pct(dl.reps_a, dr.reps_a)
        si_b = symmetry_index_pct(dl.reps_b, dr.reps_b)
        ok = np.isfinite(si_a) & np.isfinite(si_b)
        if not ok.all() or a is None or b is None:
            return MetricResult(m, "both", stats.Difference(a, b, diff, None, False, n_a, n_b))
        ci = stats.percentile_interval(si_b - si_a, self.config.conf)
        d = stats.Difference(a, b, diff, ci, stats.excludes_zero(ci), n_a, n_b,
                             reps_a=si_a, reps_b=si_b)
        return MetricResult(m, "both", d, stats.percentile_interval(si_a, self.config.conf),
                            stats.percentile_interval(si_b, self.config.conf))

    def _confounds(self, doc_a: dict, doc_b: dict, la: str, lb: str) -> list[str]:
        """Warnings when the runs differ in ways that change the metrics by themselves."""
        cfg = self.config
        out = []
        sa, sb = _run_facts(doc_a), _run_facts(doc_b)
        ca, cb = sa["cadence_spm"], sb["cadence_spm"]
        if ca and cb and abs(cb / ca - 1) > cfg.cadence_warn_frac:
            out.append(
                f"warning: cadence differs, {ca:.0f} steps/min in {la} and {cb:.0f} in {lb} "
                f"({_pc(100 * (cb / ca - 1), True)} %). Loading rate, peak force and contact time change "
                "with cadence and pace by themselves (a 5-10 % higher step rate lowers hip and knee "
                "loading: Heiderscheit et al. 2011, Med Sci Sports Exerc 43:296), so part of any "
                "difference may come from running differently, not from what you changed.")
        ta, tb = sa["contact_ms"], sb["contact_ms"]
        if ta and tb and abs(tb / ta - 1) > cfg.contact_warn_frac:
            out.append(
                f"warning: contact time differs, {ta:.0f} ms in {la} and {tb:.0f} ms in {lb} "
                f"({_pc(100 * (tb / ta - 1), True)} %): the pace may differ (contact time shortens as "
                "speed rises: Weyand et al. 2000, J Appl Physiol 89:1991) and loading rate rises "
                "with pace. The insoles cannot measure pace: compare runs of the same route at "
                "the same pace.")
        da, db = sa["duration_s"], sb["duration_s"]
        if da and db and max(da, db) / min(da, db) > cfg.duration_warn_ratio:
            out.append(
                f"warning: the runs differ in length ({da / 60:.1f} and {db / 60:.1f} min): loading "
                "rate and the forefoot and arch shares drift with fatigue over a run, so a longer "
                "run's medians include more tired steps.")
        ba, bb = sa["body_weight_n"], sb["body_weight_n"]
        if ba and bb and abs(bb / ba - 1) > cfg.body_weight_warn_frac:
            out.append(
                f"warning: body weight differs, {ba:.0f} N ({sa['body_source']}) in {la} and "
                f"{bb:.0f} N ({sb['body_source']}) in {lb}: forces are in body weights, so loading "
                "rate and peak force scale with it. Give --body-mass-kg (or analyse both with the "
                "same mass) to compare forces on one scale.")
        elif sa["body_source"] != sb["body_source"]:
            out.append(f"note: body weight from '{sa['body_source']}' in {la} and "
                       f"'{sb['body_source']}' in {lb}")
        if sa["calibration"] != sb["calibration"]:
            out.append(f"warning: calibrations differ ({'; '.join(sa['calibration'])} in {la}, "
                       f"{'; '.join(sb['calibration'])} in {lb}): forces and shares may differ "
                       "because of the calibration alone.")
        if sa["activity"] != sb["activity"]:
            out.append(f"warning: {la} is {', '.join(sa['activity']) or 'unknown'} and {lb} is "
                       f"{', '.join(sb['activity']) or 'unknown'}: running and walking load the foot "
                       "differently; compare like with like.")
        return out


def _si(left: float | None, right: float | None) -> float | None:
    if left is None or right is None or left + right == 0:
        return None
    return float(symmetry_index_pct(left, right))


def _run_facts(doc: dict) -> dict:
    feet = doc.get("feet", {})
    sums = [f.get("summary") or {} for f in feet.values()]

    def mean(key):
        vals = [s[key] for s in sums if isinstance(s.get(key), (int, float))]
        return float(np.mean(vals)) if vals else None

    cad = (doc.get("summary") or {}).get("cadence_spm") or mean("cadence_spm")
    body = doc.get("body") or {}
    return {
        "cadence_spm": cad,
        "contact_ms": mean("contact_ms_median"),
        "duration_s": max([s["duration_s"] for s in sums if isinstance(s.get("duration_s"), (int, float))],
                          default=None),
        "body_weight_n": body.get("body_weight_n"),
        "body_source": body.get("source", "unknown"),
        "calibration": sorted({str((f.get("quality") or {}).get("calibration")) for f in feet.values()}),
        "activity": sorted({s.get("activity", "unknown") for s in sums}),
    }


def _describe(doc: dict, label: str, source: str | None) -> dict:
    facts = _run_facts(doc)
    feet = doc.get("feet", {})
    return {
        "label": label,
        "source": source,
        "feet": [s for s in SIDES if s in feet],
        "steps": {s: len(feet[s].get("steps") or []) for s in SIDES if s in feet},
        "duration_s": _r(facts["duration_s"], 3),
        "cadence_spm": _r(facts["cadence_spm"], 2),
        "contact_ms_median": _r(facts["contact_ms"], 2),
        "body_weight_n": _r(facts["body_weight_n"], 2),
        "body_weight_source": facts["body_source"],
        "flags": sorted({f"{f.get('code')} ({f.get('side')})" for f in doc.get("flags") or []}),
    }


def _r(x, nd):
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


def _sig(x: float | None) -> float | None:
    """Round for the document: 6 significant digits (far below any interval's width)."""
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.6g}")


def _entry(r: MetricResult) -> dict:
    d = r.diff
    return {"name": r.metric.name, "side": r.side, "unit": r.metric.unit,
            "a_median": _sig(d.a), "b_median": _sig(d.b), "diff": _sig(d.diff),
            "ci95": [_sig(d.ci[0]), _sig(d.ci[1])] if d.ci else None,
            "n_a": int(d.n_a), "n_b": int(d.n_b), "changed": bool(d.changed)}


def compare_runs(doc_a: dict, doc_b: dict, label_a: str = "A", label_b: str = "B",
                 config: CompareConfig | None = None, source_a: str | None = None,
                 source_b: str | None = None) -> dict:
    """See :func:`_compare_runs_unchecked`; a document of an unforeseen shape raises
    :class:`InputFileError` (one line), never a TypeError from inside."""
    with malformed(f"the analysis of {label_a} or {label_b}"):
        return _compare_runs_unchecked(doc_a, doc_b, label_a, label_b, config, source_a, source_b)


def _compare_runs_unchecked(doc_a: dict, doc_b: dict, label_a: str = "A", label_b: str = "B",
                 config: CompareConfig | None = None, source_a: str | None = None,
                 source_b: str | None = None) -> dict:
    """The ``insole.compare/1`` document of run B against run A (see :class:`RunComparison`)."""
    return RunComparison(config).compute(doc_a, doc_b, label_a, label_b, source_a, source_b).document_


# --- plain words ------------------------------------------------------------------------------


def _metric_def(name: str) -> Metric:
    for m in (M.VALR, M.PEAK, M.MET, M.CONTACT, M.CADENCE, M.REARFOOT):
        if name == m.name:
            return m
        if name == f"{m.name}_symmetry_pct":
            return symmetry_metric(m)
    if name.endswith("_share"):
        return M.zone_metric(name[: -len("_share")])
    return Metric(name, "", name.replace("_", " "))


def _num(x: float) -> str:
    a = abs(x)
    spec = ".0f" if a >= 100 else ".1f" if a >= 10 else ".2f" if a >= 1 else ".3f"
    return format(x, spec).replace("-", "−")


def _pc(x: float, signed: bool = False, dec: int = 1) -> str:
    out = format(x, ("+" if signed else "") + f".{dec}f")
    if signed and float(out) == 0.0:
        out = format(0.0, f".{dec}f")  # no "+0.0" / "-0.0"
    return out.replace("-", "−")


def _decimals(width: float) -> int:
    """Decimals that show an interval of this width with about two significant digits."""
    if not width > 0 or not math.isfinite(width):
        return 1
    return int(min(3, max(0, -math.floor(math.log10(width / 4.0)))))


def _range(lo: float, hi: float, dec: int) -> str:
    """'11–24' for a positive range, '−1.2 to +2.0' otherwise."""
    if lo >= 0:
        return f"{_pc(lo, dec=dec)}–{_pc(hi, dec=dec)}"
    return f"{_pc(lo, True, dec)} to {_pc(hi, True, dec)}"


def sentence(entry: dict, label_a: str = "A", label_b: str = "B") -> str:
    """One metric line of an ``insole.compare/1`` document in plain words, e.g.
    "Left foot: loading rate on heel strikes fell 18 % (95 % CI 11–24 %), 72.0 → 59.0 BW/s."

    Value metrics are read relative to A's median (the interval too: the interval of the
    difference divided by A's median); shares and symmetry indices in percentage points.
    """
    m = _metric_def(entry["name"])
    if entry["side"] == "both":
        head = m.label[0].upper() + m.label[1:]
    else:
        head = f"{entry['side'].capitalize()} foot: {m.label}"
    a, b, diff, ci = entry["a_median"], entry["b_median"], entry["diff"], entry["ci95"]
    if a is None or b is None:
        return (f"{head}: {entry['n_a']} values in {label_a}, {entry['n_b']} in {label_b}: "
                "not compared.")
    if m.kind == "value" and a != 0:
        scale, unit = 100.0 / abs(a), " %"
    elif m.kind == "share":
        scale, unit = 100.0, " points"
    else:
        scale, unit = 1.0, " points"
    dec = _decimals((ci[1] - ci[0]) * scale) if ci else 1
    if m.kind == "value":
        pair = f"{_num(a)} → {_num(b)} {m.unit}"
    elif m.kind == "share":
        pair = f"{_pc(100 * a, dec=max(1, dec))} % → {_pc(100 * b, dec=max(1, dec))} %"
    else:
        pair = f"{_pc(a, True, max(1, dec))} % → {_pc(b, True, max(1, dec))} %"
    if ci is None:
        return (f"{head}: {pair}, too few steps for an interval ({entry['n_a']} in {label_a}, "
                f"{entry['n_b']} in {label_b}).")
    d, lo, hi = diff * scale, ci[0] * scale, ci[1] * scale
    if not entry["changed"]:
        return (f"{head}: no clear change ({_pc(d, True, dec)}{unit}, 95 % CI "
                f"{_range(lo, hi, dec)}{unit}), {pair}.")
    verb = "rose" if d > 0 else "fell"
    if m.kind == "symmetry":
        toward = " (towards symmetry)" if abs(b) < abs(a) else " (away from symmetry)"
        pair = pair.replace(" → ", " to ")
        return (f"{head} went from {pair}{toward}: {_pc(d, True, dec)} points "
                f"(95 % CI {_range(lo, hi, dec)} points).")
    mag_lo, mag_hi = (lo, hi) if d > 0 else (-hi, -lo)
    by = "" if m.kind == "value" else " by"
    return (f"{head} {verb}{by} {_pc(abs(d), dec=dec)}{unit} "
            f"(95 % CI {_range(mag_lo, mag_hi, dec)}{unit}), {pair}.")


def sentences(doc: dict) -> list[str]:
    """Every metric of an ``insole.compare/1`` document in plain words, changed ones first."""
    la, lb = doc["a"].get("label", "A"), doc["b"].get("label", "B")
    ms = doc["metrics"]
    return [sentence(e, la, lb) for e in [*(e for e in ms if e["changed"]),
                                           *(e for e in ms if not e["changed"])]]
