"""Score an analysis (``insole.analysis/1``) against ground truth (``insole.truth/1``).

:func:`score` matches detected steps to true steps one to one by initial contact: every pair of a
detected and a true step whose initial contacts lie within the tolerance (20 ms by default) is a
candidate, and candidates are taken in order of increasing |IC error|, each step used at most
once (greedy by error; with steps hundreds of milliseconds apart and a tolerance of tens this is
the optimal assignment). Matched pairs are true positives, unmatched detections false positives,
unmatched true steps false negatives. A detected step whose initial contact the analysis lost
(``ic_s`` null: a dead heel sensor, docs/analysis.md) or did not see (it fell into a gap of lost
packets, and ``ic_s`` is an estimate) is matched the same way on its toe-off,
to the true steps left unmatched (``matched_on_toe_off`` counts them); its strike counts as
unclassified. Over the matched pairs it reports the median and 95th
percentile of |IC error| (the pairs matched on IC only), |TO error| and |contact-time error| (ms) and the agreement of strike
patterns over matched steps whose true strike is known and which the analysis classified (steps
it declined to classify, strike ``None``/``"unknown"``, are counted as ``unclassified``; the
confusion table shows them too). Per foot, and over both feet combined.

A truth file may bound the time span in which steps are scored per foot (``scored_from_s``,
``scored_to_s``: the converters of real recordings set them so that a contact already under way at
the first sample, or still under way at the last, counts neither way). Detections whose IC lies
outside that span (widened by the tolerance) are ignored.

Flags: each expected flag (code and side) must be present in the analysis; each absent flag code
must be absent on every side.

``insole score ANALYSIS.json TRUTH.json`` prints a table; ``--require-*`` options turn it into a
check (exit status 1 when one fails).
"""

from __future__ import annotations

import math

import numpy as np

from insole.analysis.metrics import LOST_STRIKE
from insole.errors import InputFileError, malformed

IC_IN_GAP = LOST_STRIKE[1]  # "initial contact fell into a gap"

SCHEMA = "insole.score/1"
DEFAULT_TOLERANCE_S = 0.020

# Criteria understood by :func:`score` (name -> (result key path, comparison)).
CRITERIA = {
    "f1_min": (("f1",), ">="),
    "ic_median_ms_max": (("ic_error_ms", "median"), "<="),
    "ic_p95_ms_max": (("ic_error_ms", "p95"), "<="),
    "to_median_ms_max": (("to_error_ms", "median"), "<="),
    "contact_median_ms_max": (("contact_error_ms", "median"), "<="),
    "strike_agreement_min": (("strike", "agreement"), ">="),
}


def _stats(x: list[float]) -> dict:
    if not x:
        return {"n": 0, "median": None, "p95": None, "mean": None, "max": None}
    a = np.asarray(x, dtype=float)
    return {"n": int(a.size), "median": round(float(np.median(a)), 3),
            "p95": round(float(np.percentile(a, 95)), 3), "mean": round(float(a.mean()), 3),
            "max": round(float(a.max()), 3)}


def match_steps(detected_ic_s, true_ic_s, tolerance_s: float = DEFAULT_TOLERANCE_S) -> list[tuple[int, int]]:
    """One-to-one matches (detected index, true index) within the tolerance, greedy by |error|."""
    d = np.asarray(detected_ic_s, dtype=float)
    t = np.asarray(true_ic_s, dtype=float)
    cands = []
    if len(d) and len(t):
        order = np.argsort(t)
        ts = t[order]
        for i, x in enumerate(d):
            lo = np.searchsorted(ts, x - tolerance_s, "left")
            hi = np.searchsorted(ts, x + tolerance_s, "right")
            for k in range(lo, hi):
                cands.append((abs(x - ts[k]), i, int(order[k])))
    cands.sort()
    used_d: set[int] = set()
    used_t: set[int] = set()
    pairs = []
    for _, i, j in cands:
        if i not in used_d and j not in used_t:
            used_d.add(i)
            used_t.add(j)
            pairs.append((i, j))
    return sorted(pairs, key=lambda p: p[1])


def _ic_unseen(step: dict) -> bool:
    """The analysis says the step's initial contact fell into a gap of missing samples: its
    ``ic_s`` is an estimate (from the toe-off and the median contact time, bounded by the gap),
    so the step is matched on its toe-off."""
    return (step.get("lost") or {}).get("strike") == IC_IN_GAP


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _foot(det_steps: list[dict], true_steps: list[dict], tol: float, span: tuple[float, float]) -> dict:
    lo, hi = span
    det = [s for s in det_steps if _finite(s.get("ic_s")) and not _ic_unseen(s)
           and lo - tol <= s["ic_s"] <= hi + tol]
    pairs = match_steps([s["ic_s"] for s in det], [s["ic_s"] for s in true_steps], tol)
    # steps whose contact was lost (ic_s null) or fell into a gap (ic_s an estimate): matched on
    # the toe-off, to the true steps left
    no_ic = [s for s in det_steps if (s.get("ic_s") is None or _ic_unseen(s)) and _finite(s.get("to_s"))
             and lo - tol <= s["to_s"] <= hi + tol]
    n_ic = len(det)
    if no_ic:
        left = [j for j in range(len(true_steps)) if j not in {p[1] for p in pairs}
                and _finite(true_steps[j].get("to_s"))]
        on_to = match_steps([s["to_s"] for s in no_ic], [true_steps[j]["to_s"] for j in left], tol)
        pairs = pairs + [(n_ic + i, left[j]) for i, j in on_to]
        det = det + no_ic
    tp = len(pairs)
    fp = len(det) - tp
    fn = len(true_steps) - tp
    ic_err, to_err, ct_err, ic_signed, to_signed = [], [], [], [], []
    strike_n = strike_ok = strike_unclassified = 0
    confusion: dict[str, dict[str, int]] = {}
    for i, j in pairs:
        d, t = det[i], true_steps[j]
        if i < n_ic:
            e = (d["ic_s"] - t["ic_s"]) * 1e3
            ic_err.append(abs(e))
            ic_signed.append(e)
        if _finite(d.get("to_s")) and _finite(t.get("to_s")):
            e = (d["to_s"] - t["to_s"]) * 1e3
            to_err.append(abs(e))
            to_signed.append(e)
        dc = d.get("contact_ms") if i < n_ic else None  # matched on the toe-off: no contact seen
        if not _finite(dc) and _finite(d.get("to_s")) and i < n_ic:
            dc = (d["to_s"] - d["ic_s"]) * 1e3
        tc = t.get("contact_ms")
        if not _finite(tc) and _finite(t.get("to_s")):
            tc = (t["to_s"] - t["ic_s"]) * 1e3
        if _finite(dc) and _finite(tc):
            ct_err.append(abs(dc - tc))
        if t.get("strike"):
            got = d.get("strike")
            row = confusion.setdefault(t["strike"], {})
            row[str(got)] = row.get(str(got), 0) + 1
            if got in (None, "unknown"):  # the analysis declined to classify (e.g. data gap)
                strike_unclassified += 1
                continue
            strike_n += 1
            strike_ok += got == t["strike"]
    return _rates({
        "n_true": len(true_steps), "n_detected": len(det),
        "n_ignored_outside_span": len(det_steps) - len(det),
        "tp": tp, "fp": fp, "fn": fn, "matched_on_toe_off": tp - len(ic_err),
        "ic_error_ms": _stats(ic_err), "to_error_ms": _stats(to_err),
        "contact_error_ms": _stats(ct_err),
        "ic_bias_ms": round(float(np.mean(ic_signed)), 3) if ic_signed else None,
        "to_bias_ms": round(float(np.mean(to_signed)), 3) if to_signed else None,
        "strike": {"n": strike_n, "agree": int(strike_ok),
                   "agreement": round(strike_ok / strike_n, 4) if strike_n else None,
                   "unclassified": strike_unclassified, "confusion": confusion},
        "_raw": (ic_err, to_err, ct_err, ic_signed, to_signed),
    })


def _rates(r: dict) -> dict:
    tp, fp, fn = r["tp"], r["fp"], r["fn"]
    r["precision"] = round(tp / (tp + fp), 4) if tp + fp else (1.0 if fn == 0 else 0.0)
    r["recall"] = round(tp / (tp + fn), 4) if tp + fn else 1.0
    p, q = r["precision"], r["recall"]
    r["f1"] = round(2 * p * q / (p + q), 4) if p + q else 0.0
    return r


def _combine(feet: dict) -> dict:
    c = {"n_true": 0, "n_detected": 0, "n_ignored_outside_span": 0, "tp": 0, "fp": 0, "fn": 0,
         "matched_on_toe_off": 0}
    raws: list[list[float]] = [[], [], [], [], []]
    sn = sa = su = 0
    confusion: dict[str, dict[str, int]] = {}
    for f in feet.values():
        for k in c:
            c[k] += f[k]
        for acc, x in zip(raws, f["_raw"], strict=True):
            acc.extend(x)
        sn += f["strike"]["n"]
        sa += f["strike"]["agree"]
        su += f["strike"]["unclassified"]
        for t, row in f["strike"]["confusion"].items():
            dst = confusion.setdefault(t, {})
            for g, n in row.items():
                dst[g] = dst.get(g, 0) + n
    c.update({"ic_error_ms": _stats(raws[0]), "to_error_ms": _stats(raws[1]),
              "contact_error_ms": _stats(raws[2]),
              "ic_bias_ms": round(float(np.mean(raws[3])), 3) if raws[3] else None,
              "to_bias_ms": round(float(np.mean(raws[4])), 3) if raws[4] else None,
              "strike": {"n": sn, "agree": sa, "agreement": round(sa / sn, 4) if sn else None,
                         "unclassified": su, "confusion": confusion}})
    return _rates(c)


def _alignment_s(analysis_foot: dict, truth_foot: dict) -> float | None:
    """Device seconds between the truth's first sample and the analysed recording's first one.

    Both carry the wire ``t0_us`` of their first sample (analysis:
    ``device.first_sample_t0_us``; truth: ``device.first_t0_us``); None when either is missing
    (then the two are taken to start together). 0.0 is a real alignment: the recording caught
    the device's very first sample, and may still end before the truth does.
    """
    a = (analysis_foot.get("device") or {}).get("first_sample_t0_us")
    t = (truth_foot.get("device") or {}).get("first_t0_us")
    if a is None or t is None:
        return None
    return ((int(a) - int(t)) % (1 << 32)) / 1e6


def _check(doc: dict, what: str, schema: str) -> None:
    if not isinstance(doc, dict) or doc.get("schema") != schema:
        got = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise InputFileError(f"{what} has schema {got!r}, expected {schema!r}")
    if not isinstance(doc.get("feet"), dict):
        raise InputFileError(f"{what} has no 'feet' object")


def score(analysis: dict, truth: dict, tolerance_s: float = DEFAULT_TOLERANCE_S,
          criteria: dict | None = None) -> dict:
    """See :func:`_score_unchecked`; a document of an unforeseen shape raises
    :class:`InputFileError` (one line), never a TypeError from inside."""
    with malformed("the analysis or truth document"):
        return _score_unchecked(analysis, truth, tolerance_s, criteria)


def _score_unchecked(analysis: dict, truth: dict, tolerance_s: float = DEFAULT_TOLERANCE_S,
          criteria: dict | None = None) -> dict:
    """Score an analysis document against a truth document.

    Args:
        analysis: an ``insole.analysis/1`` dict (``insole analyse --json``).
        truth: an ``insole.truth/1`` dict (simulator or ``insole convert``).
        tolerance_s: how far a detected initial contact may be from the true one to match.
        criteria: optional thresholds, keys of :data:`CRITERIA` (e.g. ``{"f1_min": 0.99,
            "ic_median_ms_max": 2}``), checked per foot and combined; flags are always checked.
    Returns:
        an ``insole.score/1`` dict: ``feet`` (per foot), ``combined``, ``flags``, ``ok`` (one
        boolean per criterion and ``flags``) and ``passed`` (all of them).
    Raises:
        InputFileError: a document of the wrong schema or shape.
    """
    _check(analysis, "the analysis", "insole.analysis/1")
    _check(truth, "the truth", "insole.truth/1")
    if not tolerance_s > 0:
        raise InputFileError("the matching tolerance must be positive")
    feet = {}
    for side, tf in truth["feet"].items():
        true_steps = [s for s in tf.get("steps", []) if _finite(s.get("ic_s"))]
        af = analysis["feet"].get(side) or {}
        det_steps = af.get("steps", [])
        span = (float(tf.get("scored_from_s", -math.inf)), float(tf.get("scored_to_s", math.inf)))
        shift = _alignment_s(af, tf)
        if shift is not None:
            # a recording that started after the device: move the truth onto its clock and
            # score only the span the recording covers
            dur = float((af.get("summary") or {}).get("duration_s") or math.inf)
            true_steps = [dict(s, ic_s=s["ic_s"] - shift,
                               to_s=s["to_s"] - shift if _finite(s.get("to_s")) else None)
                          for s in true_steps]
            # only whole steps inside the recording, as the analysis counts them
            true_steps = [s for s in true_steps if s["ic_s"] > 0 and s["to_s"] is not None
                          and s["to_s"] < dur]
            span = (max(span[0] - shift, 0.0), min(span[1] - shift, dur))
        feet[side] = _foot(det_steps, true_steps, tolerance_s, span)
        feet[side]["aligned_by_s"] = None if shift is None else round(shift, 6)
    combined = _combine(feet)
    for f in feet.values():
        f.pop("_raw")

    present = {(f.get("code"), f.get("side")) for f in analysis.get("flags", [])}

    def evaluated(side: str | None) -> bool:
        # a foot on which the analysis could evaluate no flag at all (too few steps, walking)
        # cannot miss one: its expected flags are reported as not evaluable, not as failures
        sides = [side] if side else list(analysis["feet"])
        return any((analysis["feet"].get(s) or {}).get("flags_evaluated", {"absolute": True})
                   .get("absolute", True) for s in sides)

    expected = [{"code": e["code"], "side": e.get("side"),
                 "present": any(c == e["code"] and (e.get("side") in (None, s)) for c, s in present),
                 "evaluable": evaluated(e.get("side"))}
                for e in truth.get("expected_flags", [])]
    absent = [{"code": code, "found_on": sorted({s for c, s in present if c == code})}
              for code in truth.get("absent_flags", [])]
    for a in absent:
        a["absent"] = not a["found_on"]
    flags_ok = all(e["present"] or not e["evaluable"] for e in expected) and \
        all(a["absent"] for a in absent)

    ok: dict[str, bool] = {}
    for name, limit in (criteria or {}).items():
        if name not in CRITERIA:
            raise InputFileError(f"unknown criterion {name!r}; known: {', '.join(CRITERIA)}")
        path, cmp = CRITERIA[name]
        results = []
        for part in [*feet.values(), combined]:
            v = part
            for k in path:
                v = v[k]
            if v is None:  # nothing to measure (e.g. no strike in the truth): not a failure
                continue
            results.append(v >= limit if cmp == ">=" else v <= limit)
        ok[name] = all(results)
    ok["flags"] = flags_ok
    return {"schema": SCHEMA, "scenario": truth.get("scenario"), "seed": truth.get("seed"),
            "tolerance_ms": round(tolerance_s * 1e3, 3), "criteria": dict(criteria or {}),
            "feet": feet, "combined": combined,
            "flags": {"expected": expected, "absent": absent, "ok": flags_ok},
            "ok": ok, "passed": all(ok.values())}













