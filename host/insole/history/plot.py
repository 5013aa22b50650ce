"""Pictures of a run history: PNG files (matplotlib, Agg) and one self-contained HTML page.

:func:`write_plots` writes into a folder:

- ``weekly_load.png``: per foot, the weekly load per zone as stacked bars (BW·s), the
  week-over-week change per zone (%, with the 10 % and 30 % lines) and the acute:chronic ratio
  per zone (with the 1.5 line); weeks with an alert are marked.
- ``trends.png``: per run, the heel-strike loading rate, the metatarsal share and the arch share
  of each foot, runs flagged by the trend rule marked.
- ``index.html``: both pictures inlined (base64), the weekly table and the alerts.
"""

from __future__ import annotations

import datetime as _dt
import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from insole.errors import InsoleError  # noqa: E402
from insole.figures.page import document, img_tag  # noqa: E402
from insole.history.store import RunRecord  # noqa: E402
from insole.history.weeks import TRENDS  # noqa: E402

ZONE_COLOURS = {"heel": "#8c564b", "arch": "#e377c2", "met1": "#1f77b4", "met23": "#17becf",
                "met5": "#2ca02c", "hallux": "#bcbd22", "midfoot_lateral": "#ff7f0e",
                "metatarsals": "#1f77b4"}
SIDE_STYLE = {"left": ("#1f77b4", "o"), "right": ("#d62728", "s")}


def _colour(zone: str, k: int) -> str:
    return ZONE_COLOURS.get(zone, f"C{k % 10}")


def plot_weekly(doc: dict, path: Path) -> Path:
    weeks = doc["weeks"]
    sides = sorted({s for w in weeks for s in w["zone_load_bw_s"]})
    if not weeks or not sides:
        raise InsoleError("the history has no weeks to plot")
    labels = [w["week"] for w in weeks]
    x = list(range(len(weeks)))
    fig, axes = plt.subplots(3, len(sides), figsize=(6.5 * len(sides), 10), sharex=True, squeeze=False,
                             gridspec_kw={"height_ratios": [2.2, 1.2, 1.2]})
    for c, side in enumerate(sides):
        zones = sorted({z for w in weeks for z in w["zone_load_bw_s"].get(side, {})})
        ax_load, ax_chg, ax_acwr = axes[0, c], axes[1, c], axes[2, c]
        bottom = [0.0] * len(weeks)
        for k, z in enumerate(zones):
            vals = [w["zone_load_bw_s"].get(side, {}).get(z, 0.0) for w in weeks]
            ax_load.bar(x, vals, bottom=bottom, color=_colour(z, k), label=z, width=0.7)
            bottom = [b + v for b, v in zip(bottom, vals)]
        top = max(bottom) if max(bottom) > 0 else 1.0
        ax_load.set_ylim(0, top * 1.45)
        ax_load.set_xlim(-0.7, len(weeks) - 0.3)
        for i, w in enumerate(weeks):
            ax_load.text(i, bottom[i] + top * 0.01, f"{w['runs']} run{'s' if w['runs'] != 1 else ''}\n"
                         f"{w['steps'].get(side, 0)} steps", ha="center", va="bottom", fontsize=7)
        # alerts on this foot's zones, and on total running time (side null)
        for i, wk in enumerate(labels):
            hits = [a for a in doc["alerts"] if a["week"] == wk and a["side"] in (side, None)
                    and a["rule"] != "trend"]
            if hits:
                what = sorted({a["zone"] or "time" for a in hits})
                rules = sorted({a["rule"] for a in hits})
                zones_txt = "\n".join(", ".join(what[k:k + 2]) for k in range(0, len(what), 2))
                ax_load.annotate("▲ " + zones_txt + "\n" + " ".join(rules),
                                 (i, bottom[i] + top * 0.11), ha="center", va="bottom", fontsize=7,
                                 color="#b00000", fontweight="bold")
        ax_load.set_title(f"{side} foot: weekly load per zone", fontsize=11)
        ax_load.set_ylabel("stance impulse (BW·s)")
        ax_load.legend(fontsize=7, ncol=min(len(zones), 4), loc="upper left")
        for k, z in enumerate(zones):
            chg = [w["change_pct"].get(side, {}).get(z) for w in weeks]
            ratio = [w["acwr"].get(side, {}).get(z) for w in weeks]
            ax_chg.plot(x, [float("nan") if v is None else v for v in chg], marker="o", ms=3,
                        color=_colour(z, k), label=z)
            ax_acwr.plot(x, [float("nan") if v is None else v for v in ratio], marker="o", ms=3,
                         color=_colour(z, k), label=z)
        for thr, style in ((10, ":"), (30, "--")):
            ax_chg.axhline(thr, color="#b00000", ls=style, lw=1)
            ax_chg.text(len(weeks) - 0.5, thr, f" +{thr} %", color="#b00000", fontsize=7, va="bottom",
                        ha="right")
        ax_chg.axhline(0, color="0.6", lw=0.8)
        ax_chg.set_ylabel("change vs previous week (%)")
        ratios = [v for w in weeks for v in w["acwr"].get(side, {}).values() if v is not None]
        ax_acwr.set_ylim(0, max([1.8, *ratios]) * 1.1)
        ax_acwr.axhspan(0.8, 1.3, color="0.9", zorder=0)
        ax_acwr.axhline(1.5, color="#b00000", ls="--", lw=1)
        ax_acwr.text(len(weeks) - 0.5, 1.5, " 1.5", color="#b00000", fontsize=7, va="bottom", ha="right")
        ax_acwr.set_ylabel("acute:chronic ratio\n(week ÷ 4-week mean)")
        ax_acwr.set_xticks(x, labels, rotation=45, ha="right", fontsize=8)
        ax_acwr.set_xlabel("ISO week")
        for ax in (ax_load, ax_chg, ax_acwr):
            ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{doc['athlete']}: load per foot zone by week (▲ alert; grey band: ACWR 0.8-1.3)",
                 fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_trends(doc: dict, runs: list[RunRecord], path: Path) -> Path:
    if not runs:
        raise InsoleError("the history has no runs to plot")
    sides = sorted({s for r in runs for s in r.feet})
    fig, axes = plt.subplots(len(TRENDS), 1, figsize=(10, 8.5), sharex=True)
    starts = [_dt.datetime.fromisoformat(r.start_time).replace(tzinfo=None) for r in runs]
    flagged = [a for a in doc["alerts"] if a["rule"] == "trend"]
    for ax, (key, zone, _, name, unit) in zip(axes, TRENDS):
        scale = 1.0 if unit else 100.0
        for side in sides:
            colour, marker = SIDE_STYLE.get(side, ("k", "o"))
            pts = [(t, getattr(r.feet[side], key)) for t, r in zip(starts, runs)
                   if side in r.feet and getattr(r.feet[side], key) is not None]
            if not pts:
                continue
            ax.plot([p[0] for p in pts], [p[1] * scale for p in pts], marker=marker, ms=4, lw=1,
                    color=colour, label=side)
            for a in flagged:
                if a["side"] == side and a["zone"] == zone:
                    ts = [t for t, r in zip(starts, runs) if r.week == a["week"] and side in r.feet
                          and getattr(r.feet[side], key) is not None
                          and abs(getattr(r.feet[side], key) - a["value"]) < 1e-4]
                    ax.plot(ts, [a["value"] * scale] * len(ts), ls="none", marker="o", ms=13,
                            mfc="none", mec="#b00000", mew=2)
        ax.set_ylabel(f"{name}\n({unit or '% of stance impulse'})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    axes[-1].set_xlabel("run start")
    fig.autofmt_xdate()
    fig.suptitle(f"{doc['athlete']}: per-run trends (red ring: outside the 28-day range)", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_plots(doc: dict, runs: list[RunRecord], out_dir: str | Path) -> dict[str, Path]:
    """Write ``weekly_load.png``, ``trends.png`` and ``index.html`` into ``out_dir``."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InsoleError(f"cannot create {out}: {e.strerror}") from e
    files = {"weekly": plot_weekly(doc, out / "weekly_load.png"),
             "trends": plot_trends(doc, runs, out / "trends.png")}
    page = out / "index.html"
    try:
        page.write_text(_html(doc, files), encoding="utf-8")
    except OSError as e:
        raise InsoleError(f"cannot write {page}: {e.strerror}") from e
    files["html"] = page
    return files


_CSS = ("body{font-family:sans-serif;margin:1.5em;max-width:1400px} img{max-width:100%}\n"
        "table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ccc;padding:3px 6px}\n"
        ".alert{color:#b00000} .src{font-size:11px;color:#555}")


def _img(path: Path, alt: str) -> str:
    return img_tag(path.read_bytes(), alt)


def _html(doc: dict, files: dict[str, Path]) -> str:
    e = html.escape
    sides = sorted({s for w in doc["weeks"] for s in w["steps"]})
    rows = []
    for w in doc["weeks"]:
        cells = [e(w["week"]), str(w["runs"]), f"{w['duration_s'] / 60:.1f}"]
        for s in sides:
            load = sum(w["zone_load_bw_s"].get(s, {}).values())
            cells += [str(w["steps"].get(s, 0)), f"{load:.1f}"]
        n = sum(1 for a in doc["alerts"] if a["week"] == w["week"])
        cells.append(f'<b class="alert">{n}</b>' if n else "0")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = ["week", "runs", "running time (min)"]
    for s in sides:
        head += [f"{s} steps", f"{s} load (BW·s)"]
    head.append("alerts")
    alerts = "".join(
        f"<tr><td>{e(a['week'])}</td><td>{e(a['side'] or 'both')}</td><td>{e(a['zone'] or 'running time')}</td>"
        f"<td>{e(a['rule'])}</td><td>{a['value']}</td><td>{a['threshold']}</td><td>{e(a['message'])}</td>"
        f"<td class=src>{e(a['source'])}</td></tr>" for a in doc["alerts"])
    body = f"""<h1>Run history: {e(doc['athlete'])}</h1>
<p>Weekly load per foot zone (stance impulse in body-weight seconds, BW·s), week-over-week change
and acute:chronic workload ratio, with the rules runners follow. An alert is a prompt to look at
the week, not a diagnosis; each names its source and its limits.</p>
{_img(files['weekly'], 'weekly load per zone per foot')}
<h2>Weeks</h2><table><tr>{''.join(f'<th>{h}</th>' for h in head)}</tr>{''.join(rows)}</table>
<h2>Alerts ({len(doc['alerts'])})</h2>
<table><tr><th>week</th><th>side</th><th>zone</th><th>rule</th><th>value</th><th>threshold</th>
<th>message</th><th>source</th></tr>{alerts}</table>
<h2>Per-run trends</h2>
{_img(files['trends'], 'per-run trends')}
<p><small>schema {e(doc['schema'])}</small></p>"""
    return document(f"Run history: {doc['athlete']}", _CSS, [body])
