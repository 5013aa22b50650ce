"""Pictures of a comparison: per metric A and B side by side, changed ones marked; and one
self-contained HTML page (images inlined as base64, opens offline).

- ``compare.png``: one panel per metric; per foot, the per-step distribution of A and of B
  (box: quartiles, whiskers: 5th-95th percentile) with each run's median and its 95 %
  interval; the strike mix as shares with their intervals; left/right symmetry indices with
  theirs. A metric that changed on a foot has that foot's label in red with "changed".
- ``compare-differences.png``: every difference B − A with its 95 % interval (value metrics in %
  of A, shares and symmetry in percentage points), a line at no change, changed ones in red.

Matplotlib's Agg backend only: no display needed.
"""

from __future__ import annotations

import html
import io
from pathlib import Path

import numpy as np

from insole.compare.compare import RunComparison, sentences
from insole.compare.metrics import SIDES
from insole.errors import InsoleError
from insole.figures.page import document, img_tag

COLOR_A = "#4C72B0"
COLOR_B = "#DD8452"
COLOR_CHANGED = "#C0392B"


def _figure(nrows: int, ncols: int, w: float, h: float, **adjust):
    """A Figure on the Agg canvas with fixed margins (in inches at the top and bottom, so they do
    not grow with the rows); a constrained layout costs twice the drawing time here."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=100)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    margins = {"left": 0.05, "right": 0.985, "top": 1 - 0.65 / h, "bottom": 0.8 / h,
               "hspace": 0.5, "wspace": 0.3}
    margins.update(adjust)
    fig.subplots_adjust(**margins)
    return fig, axes


def _scale(unit: str, kind: str) -> tuple[float, str]:
    return (100.0, "%") if kind == "share" else (1.0, unit)


def plot_metrics(cmp: RunComparison):
    """The per-metric figure (a matplotlib Figure): A and B side by side per foot."""
    doc = cmp.document_
    la, lb = doc["a"]["label"], doc["b"]["label"]
    per_foot: dict[str, dict] = {}
    sym = []
    for r in cmp.results_:
        if r.side == "both":
            sym.append(r)
        else:
            per_foot.setdefault(r.metric.name, {})[r.side] = r
    names = list(per_foot)
    n_panels = len(names) + (1 if sym else 0)
    ncols = 4
    nrows = max(1, -(-n_panels // ncols))
    fig, axes = _figure(nrows, ncols, 4.2 * ncols, 3.3 * nrows)
    flat = axes.ravel()
    for ax, name in zip(flat, names):
        feet = per_foot[name]
        m = next(iter(feet.values())).metric
        k, unit = _scale(m.unit, m.kind)
        ticks, ticklabels, tickcolors = [], [], []
        for j, side in enumerate(s for s in SIDES if s in feet):
            r = feet[side]
            x0 = 3 * j
            for dx, vals, est, ci, color in ((0, r.a_values, r.diff.a, r.a_ci, COLOR_A),
                                             (1, r.b_values, r.diff.b, r.b_ci, COLOR_B)):
                x = x0 + dx
                if m.statistic == "mean":  # a share of steps: a bar with its interval
                    if est is not None:
                        ax.bar(x, est * k, width=0.6, color=color, alpha=0.6)
                elif len(vals):
                    q = np.percentile(vals * k, [5, 25, 50, 75, 95])
                    ax.add_patch(_box(x, q[1], q[3], color))
                    ax.plot([x, x], [q[0], q[1]], color=color, lw=1)
                    ax.plot([x, x], [q[3], q[4]], color=color, lw=1)
                if est is not None:
                    ax.plot([x - 0.3, x + 0.3], [est * k, est * k], color="black", lw=1.5)
                if ci is not None:
                    ax.errorbar(x + 0.38, (ci[0] + ci[1]) / 2 * k, yerr=(ci[1] - ci[0]) / 2 * k,
                                color="black", capsize=2, lw=1.2)
            ticks.append(x0 + 0.5)
            ticklabels.append(f"{side}\nchanged" if r.diff.changed else side)
            tickcolors.append(COLOR_CHANGED if r.diff.changed else "black")
        ax.set_xticks(ticks, ticklabels)
        for t, c in zip(ax.get_xticklabels(), tickcolors):
            t.set_color(c)
            if c == COLOR_CHANGED:
                t.set_fontweight("bold")
        ax.set_xlim(-0.8, 3 * max(1, len(feet)) - 1.2)
        any_changed = any(r.diff.changed for r in feet.values())
        ax.set_title(("* " if any_changed else "") + m.label, fontsize=9,
                     color=COLOR_CHANGED if any_changed else "black")
        ax.set_ylabel(f"{m.name} ({unit})", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.autoscale_view()
        ax.grid(axis="y", alpha=0.3)
    used = len(names)
    if sym:
        ax = flat[used]
        used += 1
        for i, r in enumerate(sym):
            for dx, est, ci, color in ((-0.15, r.diff.a, r.a_ci, COLOR_A), (0.15, r.diff.b, r.b_ci, COLOR_B)):
                if est is None:
                    continue
                yerr = None if ci is None else [[est - ci[0]], [ci[1] - est]]
                ax.errorbar(i + dx, est, yerr=yerr, fmt="o", color=color, capsize=2, ms=4)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(range(len(sym)), [r.metric.name.replace("_symmetry_pct", "").replace("_", "\n", 1)
                                        + ("\nchanged" if r.diff.changed else "") for r in sym])
        for t, r in zip(ax.get_xticklabels(), sym):
            if r.diff.changed:
                t.set_color(COLOR_CHANGED)
                t.set_fontweight("bold")
        ax.tick_params(labelsize=7)
        ax.set_ylabel("symmetry index (%)", fontsize=8)
        ax.set_title(("* " if any(r.diff.changed for r in sym) else "") + "left/right symmetry, 100·(L−R)/mean",
                     fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    for ax in flat[used:]:
        ax.set_axis_off()
    from matplotlib.patches import Patch

    fig.legend(handles=[Patch(color=COLOR_A, alpha=0.6, label=f"A: {la}"),
                        Patch(color=COLOR_B, alpha=0.6, label=f"B: {lb}")],
               loc="lower center", bbox_to_anchor=(0.5, 0.0), ncols=2, fontsize=9)
    fig.suptitle("Per-step distributions (box: quartiles, whiskers: 5-95 %), medians (black) and "
                 "their 95 % intervals; * and red: the 95 % interval of B − A excludes no change",
                 fontsize=9)
    return fig


def _box(x: float, lo: float, hi: float, color: str):
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.3, lo), 0.6, max(hi - lo, 1e-12), facecolor=color, alpha=0.6,
                     edgecolor=color)


def plot_differences(cmp: RunComparison):
    """The differences figure: B − A with 95 % intervals, value metrics in % of A (left) and
    shares and symmetry in percentage points (right)."""
    rows = {"value": [], "points": []}
    for r in cmp.results_:
        d = r.diff
        if d.ci is None or d.a is None:
            continue
        if r.metric.kind == "value":
            if d.a == 0:
                continue
            k = 100.0 / abs(d.a)
            rows["value"].append((r, d.diff * k, d.ci[0] * k, d.ci[1] * k))
        else:
            k = 100.0 if r.metric.kind == "share" else 1.0
            rows["points"].append((r, d.diff * k, d.ci[0] * k, d.ci[1] * k))
    n = max(len(rows["value"]), len(rows["points"]), 1)
    h = 0.32 * n + 1.6
    fig, axes = _figure(1, 2, 13, h, left=0.2, right=0.98, wspace=0.75, top=1 - 0.45 / h,
                        bottom=0.6 / h)
    for ax, key, xlabel in ((axes[0, 0], "value", "B − A (% of A's median)"),
                            (axes[0, 1], "points", "B − A (percentage points)")):
        data = rows[key]
        for i, (r, d, lo, hi) in enumerate(data):
            c = COLOR_CHANGED if r.diff.changed else "black"
            ax.errorbar(d, i, xerr=[[d - lo], [hi - d]], fmt="o", color=c, capsize=2, ms=4)
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_yticks(range(len(data)), [f"{r.side} {r.metric.name}" for r, *_ in data], fontsize=8)
        for t, (r, *_) in zip(ax.get_yticklabels(), data):
            if r.diff.changed:
                t.set_color(COLOR_CHANGED)
                t.set_fontweight("bold")
        ax.set_ylim(-0.7, max(len(data), 1) - 0.3)
        ax.invert_yaxis()
        ax.set_xlabel(xlabel, fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    doc = cmp.document_
    fig.suptitle(f"B ({doc['b']['label']}) − A ({doc['a']['label']}) with 95 % intervals; red: "
                 "changed (the interval excludes 0)", fontsize=10)
    return fig


def _png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


_CSS = """body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em}td,th{padding:.2em .6em;border-bottom:1px solid #ddd;
text-align:right}td:nth-child(-n+2),th:nth-child(-n+2){text-align:left}tr.changed td{color:#C0392B;
font-weight:600}img{max-width:100%;border:1px solid #eee}.warn{color:#8a4b00}.runs td{text-align:left}
footer{margin-top:2em;font-size:.8em;color:#666}"""


def html_page(cmp: RunComparison, images: dict[str, bytes]) -> str:
    """The comparison as one self-contained HTML page (``images``: title → PNG bytes)."""
    doc = cmp.document_
    e = html.escape
    said = sentences(doc)
    n_changed = sum(m["changed"] for m in doc["metrics"])
    parts = [f"<h1>Did it change? {e(doc['a']['label'])} (A) → {e(doc['b']['label'])} (B)</h1>",
             "<table class='runs'>"]
    for key in ("a", "b"):
        r = doc[key]
        steps = ", ".join(f"{s} {n} steps" for s, n in r["steps"].items())
        dur = f"{r['duration_s'] / 60:.1f} min" if r.get("duration_s") else ""
        cad = f"{r['cadence_spm']:.0f} steps/min" if r.get("cadence_spm") else ""
        flags = ", ".join(r["flags"]) or "no flags"
        parts.append(f"<tr><td><b>{key.upper()}</b></td><td>{e(r['label'])}</td><td>{e(str(r['source']))}"
                     f"</td><td>{e(steps)}</td><td>{e(dur)}</td><td>{e(cad)}</td><td>{e(flags)}</td></tr>")
    parts.append("</table>")
    parts.append(f"<h2>What changed ({n_changed} of {len(doc['metrics'])} metrics)</h2>")
    if n_changed:
        parts.append("<ul>" + "".join(f"<li>{e(s)}</li>" for s in said[:n_changed]) + "</ul>")
    else:
        parts.append("<p>No metric changed: every 95 % interval includes no change.</p>")
    warns = [n for n in doc["notes"] if n.startswith("warning")]
    if warns:
        parts.append("<h2>Before you read it</h2><ul>"
                     + "".join(f"<li class='warn'>{e(n)}</li>" for n in warns) + "</ul>")
    for title, png in images.items():
        parts.append(f"<h2>{e(title)}</h2>{img_tag(png, title)}")
    parts.append("<h2>Every metric</h2><table><tr><th>side</th><th>metric</th><th>unit</th><th>A</th>"
                 "<th>B</th><th>B − A</th><th>95 % CI</th><th>n A</th><th>n B</th><th>changed</th></tr>")
    for m in doc["metrics"]:
        ci = f"{m['ci95'][0]:.4g} to {m['ci95'][1]:.4g}" if m["ci95"] else "n/a"
        parts.append(
            f"<tr class='{'changed' if m['changed'] else ''}'><td>{e(m['side'])}</td><td>{e(m['name'])}"
            f"</td><td>{e(m['unit'])}</td><td>{_g(m['a_median'])}</td><td>{_g(m['b_median'])}</td>"
            f"<td>{_g(m['diff'])}</td><td>{ci}</td><td>{m['n_a']}</td><td>{m['n_b']}</td>"
            f"<td>{'yes' if m['changed'] else ''}</td></tr>")
    parts.append("</table><h2>In words</h2><ul>"
                 + "".join(f"<li>{e(s)}</li>" for s in said[n_changed:]) + "</ul>")
    notes = [n for n in doc["notes"] if not n.startswith("warning")]
    parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>")
    parts.append("<footer>insole compare (schema insole.compare/1). Not a diagnosis: see a clinician "
                 "if you have pain.</footer>")
    return document(f"insole compare: {doc['a']['label']} vs {doc['b']['label']}", _CSS, parts)


def _g(x) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def write_report(cmp: RunComparison, out_dir: str | Path) -> list[Path]:
    """Write ``compare.png``, ``compare-differences.png`` and ``compare.html`` into ``out_dir``
    (which must exist); returns the paths written.

    Raises:
        InsoleError: a file cannot be written.
    """
    out = Path(out_dir)
    images = {"Per metric, A and B side by side": _png_bytes(plot_metrics(cmp)),
              "Differences with their 95 % intervals": _png_bytes(plot_differences(cmp))}
    files = {"compare.png": images["Per metric, A and B side by side"],
             "compare-differences.png": images["Differences with their 95 % intervals"]}
    written = []
    try:
        for name, data in files.items():
            (out / name).write_bytes(data)
            written.append(out / name)
        (out / "compare.html").write_text(html_page(cmp, images), encoding="utf-8")
        written.append(out / "compare.html")
    except OSError as e:
        raise InsoleError(f"cannot write into {out}: {e.strerror}") from e
    return written
