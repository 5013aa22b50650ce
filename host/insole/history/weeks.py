"""Weekly load per foot zone, its change, the acute:chronic ratio, and the rules runners follow.

:func:`weekly_history` takes an athlete's stored runs and returns the ``insole.history/1``
document. Pure: no database, no printing. Definitions (``docs/history.md`` has the sources):

- **week**: the ISO 8601 week (Monday to Sunday) of the run's start date as recorded;
  every calendar week from the first run's to the last run's is listed, weeks without runs
  with zero load.
- **zone load** (BW·s): the sum over the week's runs of each run's zone load, itself the sum
  over its complete steps of the stance impulse under that zone (``zone_impulse_bw_s``).
- **change_pct**: 100 × (this week / previous calendar week − 1); ``null`` when the previous
  week carried no load there (a change from nothing is no percentage).
- **acwr**: acute:chronic workload ratio, this week's load over the mean weekly load of the 4
  weeks ending with this one (the "coupled" rolling average of Gabbett 2016); ``null`` in the
  athlete's first 3 weeks (no chronic load yet) and where the chronic load is zero.
- **rules**, applied to each zone of each foot and to total running time:
  ``10pct`` (rise above 10 % week over week), ``30pct`` (above 30 %), ``acwr`` (ratio above
  1.5). A zone whose load was under ``min_zone_share`` (1 %) of its foot's load the week
  before is left out of the rules: a sensor near its floor swings by large percentages.
- **trend**: per run and foot, the heel-strike loading rate, the metatarsal share and the arch
  share; a run whose value leaves the range of the same foot's runs in the 28 days before it,
  widened by a margin (the within-run drift thresholds of the analysis: 20 %, 10 %, 20 %), is
  flagged once per week, side and value (the furthest run); needs ``trend_min_runs`` earlier
  runs in the window.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from insole.errors import InsoleError
from insole.history.store import RunRecord

SCHEMA = "insole.history/1"
TIME_ZONE_KEY = None  # alerts on total running time carry side null and zone null


@dataclass(frozen=True)
class WeeklyRules:
    """Thresholds of the weekly rules and the trend rule (defaults: see ``docs/history.md``)."""

    rise_pct_guideline: float = 10.0  # the "10 % rule" runners follow (Buist et al. 2008 tested it)
    rise_pct_spike: float = 30.0  # Nielsen et al. 2014: > 30 % a week, HR 1.59 in novices
    acwr_max: float = 1.5  # Gabbett 2016 "sweet spot" 0.8-1.3, danger zone above 1.5
    chronic_weeks: int = 4
    min_zone_share: float = 0.01  # of the foot's load in the previous week
    trend_window_days: int = 28
    trend_min_runs: int = 4
    trend_margin_valr: float = 0.20  # DESIGN.md: heel-strike VALR rise > 20 % within a run
    trend_margin_metatarsal: float = 0.10  # forefoot share rise > 10 % (Weist et al. 2004)
    trend_margin_arch: float = 0.20  # arch share rise > 20 % (Weist et al. 2004)


SOURCES = {
    "10pct": ("the '10 % rule' of training advice; Buist et al. 2008 (Am J Sports Med 36:33-39) "
              "found no fewer injuries in novices whose programme kept to it"),
    "30pct": ("Nielsen et al. 2014 (J Orthop Sports Phys Ther 44:739-747): novices whose weekly "
              "distance rose by more than 30 % had more distance-related injuries (HR 1.59)"),
    "acwr": ("Gabbett 2016 (Br J Sports Med 50:273-280): acute:chronic workload ratio above 1.5; "
             "criticised as a statistical artefact by Lolli et al. 2019 (Br J Sports Med 53:921-922) "
             "and Impellizzeri et al. 2020 (Int J Sports Physiol Perform 15:907-913)"),
    "trend": ("the runner's own range: a run outside the last 28 days' runs of the same foot, "
              "widened by the analysis's within-run drift thresholds (docs/analysis.md)"),
}

# per-run trend values: key in the stored foot totals, alert zone, margin attribute, name, unit
TRENDS = (
    ("valr_bw_per_s_rearfoot", "heel", "trend_margin_valr", "heel-strike loading rate", "BW/s"),
    ("metatarsal_share", "metatarsals", "trend_margin_metatarsal", "metatarsal share", ""),
    ("arch_share", "arch", "trend_margin_arch", "arch share", ""),
)


def iso_week(day: _dt.date) -> str:
    y, w, _ = day.isocalendar()
    return f"{y}-W{w:02d}"


def _monday(week: str) -> _dt.date:
    try:
        return _dt.date.fromisoformat(f"{week}-1")
    except ValueError as e:
        raise InsoleError(f"stored week {week!r} is not an ISO week") from e


def _weeks_between(first: str, last: str) -> list[str]:
    d, end = _monday(first), _monday(last)
    out = []
    while d <= end:
        out.append(iso_week(d))
        d += _dt.timedelta(days=7)
    return out


def _pct(new: float, old: float) -> float | None:
    return None if old <= 0 else 100.0 * (new / old - 1.0)


def weekly_history(runs: list[RunRecord], athlete: str, rules: WeeklyRules | None = None) -> dict:
    """The ``insole.history/1`` document of ``athlete``'s ``runs`` (any order)."""
    rules = rules or WeeklyRules()
    runs = sorted(runs, key=lambda r: (r.start_time, r.run_id or 0))
    doc: dict = {"schema": SCHEMA, "athlete": athlete, "weeks": [], "alerts": []}
    if not runs:
        return doc
    sides = sorted({s for r in runs for s in r.feet})
    zones = {s: sorted({z for r in runs if s in r.feet for z in r.feet[s].zone_load_bw_s})
             for s in sides}
    names = _weeks_between(runs[0].week, max(r.week for r in runs))
    by_week: dict[str, list[RunRecord]] = {w: [] for w in names}
    for r in runs:
        by_week[r.week].append(r)

    # raw (unrounded) sums first; rules run on these, the document shows them rounded
    load = []  # per week: {side: {zone: BW·s}}
    time_s = []
    for w in names:
        wl = {s: dict.fromkeys(zones[s], 0.0) for s in sides}
        for r in by_week[w]:
            for s, ft in r.feet.items():
                for z, v in ft.zone_load_bw_s.items():
                    wl[s][z] += v
        load.append(wl)
        time_s.append(sum(r.duration_s for r in by_week[w]))

    alerts = doc["alerts"]
    for i, w in enumerate(names):
        week_runs = by_week[w]
        entry = {
            "week": w,
            "runs": len(week_runs),
            "duration_s": round(time_s[i], 3),
            "steps": {s: sum(r.feet[s].steps for r in week_runs if s in r.feet) for s in sides},
            "zone_load_bw_s": {s: {z: round(v, 4) for z, v in load[i][s].items()} for s in sides},
            "change_pct": {s: {} for s in sides},
            "acwr": {s: {} for s in sides},
        }
        for s in sides:
            foot_prev = sum(load[i - 1][s].values()) if i else 0.0
            for z in zones[s]:
                cur = load[i][s][z]
                change = _pct(cur, load[i - 1][s][z]) if i else None
                ratio = _acwr([load[j][s][z] for j in range(i + 1)], rules)
                entry["change_pct"][s][z] = None if change is None else round(change, 2)
                entry["acwr"][s][z] = None if ratio is None else round(ratio, 3)
                if i and foot_prev > 0 and load[i - 1][s][z] >= rules.min_zone_share * foot_prev:
                    _rule_alerts(alerts, w, s, z, change, ratio, rules,
                                 f"{s} {z} load", f"{cur:.1f} BW·s")
        t_change = _pct(time_s[i], time_s[i - 1]) if i else None
        t_ratio = _acwr(time_s[:i + 1], rules)
        _rule_alerts(alerts, w, None, None, t_change, t_ratio, rules, "total running time",
                     f"{time_s[i] / 60:.0f} min")
        doc["weeks"].append(entry)
    alerts.extend(_trend_alerts(runs, sides, rules))
    order = {w: k for k, w in enumerate(names)}
    rule_order = {"10pct": 0, "30pct": 1, "acwr": 2, "trend": 3}
    alerts.sort(key=lambda a: (order[a["week"]], a["side"] or "", a["zone"] or "", rule_order[a["rule"]]))
    return doc


def _acwr(weekly: list[float], rules: WeeklyRules) -> float | None:
    """This week over the mean of the last ``chronic_weeks`` weeks (this one included)."""
    n = rules.chronic_weeks
    if len(weekly) < n:
        return None
    chronic = sum(weekly[-n:]) / n
    return None if chronic <= 0 else weekly[-1] / chronic


def _rule_alerts(alerts: list, week: str, side, zone, change, ratio, rules: WeeklyRules,
                 what: str, now: str) -> None:
    code = "running_time" if zone is None else "zone_load"
    if change is not None:
        for rule, thr in (("10pct", rules.rise_pct_guideline), ("30pct", rules.rise_pct_spike)):
            # compared on the value as shown (2 decimals), so a shown 10.00 % never alerts
            if round(change, 2) > thr:
                msg = (f"Week {week}: {what} rose {change:.0f} % over the week before (now {now}; "
                       f"{'guideline' if rule == '10pct' else 'threshold'} {thr:.0f} %).")
                msg += (" Runners are told to stay under 10 % a week; a trial found no fewer "
                        "injuries when they did." if rule == "10pct" else
                        " Rises over 30 % a week went with more running injuries in novices.")
                alerts.append(_alert(f"{code}_rise", week, side, zone, round(change, 2), thr, rule, msg))
    if ratio is not None and round(ratio, 3) > rules.acwr_max:
        msg = (f"Week {week}: {what} is {ratio:.2f}× its {rules.chronic_weeks}-week average (acute:"
               f"chronic ratio, threshold {rules.acwr_max}). A load well above what you are used to; "
               "the ratio itself is disputed, read it as a prompt, not a risk score.")
        alerts.append(_alert(f"{code}_acwr", week, side, zone, round(ratio, 3), rules.acwr_max, "acwr", msg))


def _alert(code, week, side, zone, value, threshold, rule, message) -> dict:
    return {"code": code, "week": week, "side": side, "zone": zone, "value": value,
            "threshold": threshold, "rule": rule, "source": SOURCES[rule],
            "message": message + " Not a diagnosis."}


def _start(r: RunRecord) -> _dt.datetime:
    t = _dt.datetime.fromisoformat(r.start_time)
    # compare runs on their wall-clock time as recorded (a runner's week is local)
    return t.replace(tzinfo=None)


def _trend_alerts(runs: list[RunRecord], sides: list[str], rules: WeeklyRules) -> list[dict]:
    window = _dt.timedelta(days=rules.trend_window_days)
    starts = [_start(r) for r in runs]
    worst: dict[tuple, tuple] = {}  # (week, side, key) -> (distance, run, value, edge, lo, hi)
    for i, r in enumerate(runs):
        for s in sides:
            ft = r.feet.get(s)
            if ft is None:
                continue
            for key, zone, margin_attr, name, unit in TRENDS:
                v = getattr(ft, key)
                if v is None:
                    continue
                past = [getattr(runs[j].feet[s], key) for j in range(i)
                        if s in runs[j].feet and starts[i] - window <= starts[j] < starts[i]
                        and getattr(runs[j].feet[s], key) is not None]
                if len(past) < rules.trend_min_runs:
                    continue
                m = getattr(rules, margin_attr)
                lo, hi = min(past) * (1 - m), max(past) * (1 + m)
                if lo <= v <= hi:
                    continue
                edge = hi if v > hi else lo
                dist = abs(v - edge) / max(abs(edge), 1e-12)
                k = (r.week, s, key)
                if k not in worst or dist > worst[k][0]:
                    worst[k] = (dist, r, v, edge, min(past), max(past), len(past), name, unit, zone)
    out = []
    for (week, s, key), (_, r, v, edge, lo, hi, n, name, unit, zone) in worst.items():
        fmt = (lambda x: f"{x:.0f} {unit}") if unit else (lambda x: f"{100 * x:.1f} %")
        msg = (f"Week {week}: the {s} foot's {name} in the run of {r.start_time[:16]} was "
               f"{fmt(v)}, {'above' if v > edge else 'below'} your range over the 28 days before "
               f"({fmt(lo)}-{fmt(hi)} in {n} runs, widened to {fmt(edge)}). A change of shoes, "
               "surface, plan or form shows this way.")
        out.append(_alert(f"trend_{key}", week, s, zone, round(v, 4), round(edge, 4), "trend", msg))
    return out
