"""One self-contained HTML page for the run report.

Every image is inlined as a base64 ``data:`` URL and the style sheet is inline; the page loads
nothing from anywhere (no scripts, fonts or links to fetch), so it opens offline and can be
mailed as one file.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from html import escape

from insole import __version__
from insole.analysis.flags import SOURCES
from insole.figures.data import RunData
from insole.figures.page import document, img_tag
from insole.figures.style import FLAG_COLOUR, FLAG_TITLES, NOT_A_DIAGNOSIS

# What each flag means, in a runner's words (the rules and sources: docs/analysis.md).
FLAG_MEANING = {
    "heel_strike_force": "Your heel strikes load the foot fast (a high vertical loading rate). In a "
                         "prospective study, runners with higher loading rates were more often "
                         "injured; fast heel loading is linked to plantar fasciitis, heel fat-pad "
                         "pain and stress fractures.",
    "forefoot_overload": "The metatarsal heads (the ball of the foot) carry more of each step than "
                         "usual for your strike pattern, or more than at the start of your run. "
                         "This is linked to metatarsalgia and metatarsal stress fractures.",
    "arch_collapse": "The medial arch, which a holding arch leaves almost unloaded, carries load: "
                     "the arch flattens onto the insole, from the start or increasingly as you "
                     "tire. This is linked to overpronation, arch and heel pain.",
}

_CSS = f"""
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto;
       max-width: 1180px; padding: 1.2em 1.5em 3em; color: #1d1d1d; line-height: 1.45; }}
h1 {{ margin-bottom: 0.1em; }} h2 {{ border-bottom: 1px solid #ccc; padding-bottom: 0.2em;
       margin-top: 1.8em; }}
.meta {{ color: #555; font-size: 0.9em; }}
table {{ border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }}
th, td {{ border: 1px solid #d0d0d0; padding: 0.3em 0.7em; text-align: left; vertical-align: top; }}
th {{ background: #f2f2f2; }} td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
.flag {{ border: 2px solid {FLAG_COLOUR}; border-left-width: 8px; border-radius: 4px;
        padding: 0.6em 1em; margin: 0.8em 0; background: #fff6f6; }}
.flag h3 {{ margin: 0 0 0.3em; color: {FLAG_COLOUR}; }}
.flag .numbers {{ font-variant-numeric: tabular-nums; }}
.reminder {{ background: #fff8e1; border: 1px solid #e0c060; border-radius: 4px; padding: 0.6em 1em; }}
.ok {{ background: #eef8ee; border: 1px solid #8c8; border-radius: 4px; padding: 0.6em 1em; }}
figure {{ margin: 1.2em 0 2em; }} figure img {{ max-width: 100%; height: auto;
       border: 1px solid #e3e3e3; }}
figcaption {{ color: #333; font-size: 0.93em; max-width: 60em; }}
.bad {{ color: {FLAG_COLOUR}; font-weight: 600; }}
"""


@dataclass(frozen=True)
class FigureItem:
    name: str
    title: str
    how_to_read: str
    png: bytes


def render(run: RunData, figures: list[FigureItem], skipped: dict[str, str] | None = None) -> str:
    """The whole page as a string."""
    doc = run.doc
    sides = [s for s in ("left", "right") if s in run.feet]
    parts = []
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts.append("<h1>Run report</h1>")
    parts.append(f'<p class="meta">{escape(", ".join(run.inputs))} · made {now} by insole '
                 f"{escape(__version__)} · {escape(' and '.join(sides))} foot</p>")
    parts.append(_summary(run, sides))
    parts.append(_flags(run))
    parts.append('<h2 id="figures">Figures</h2>')
    for f in figures:
        parts.append(f'<figure id="{escape(f.name)}"><h3>{escape(f.title)}</h3>'
                     f"{img_tag(f.png, f.title)}"
                     f"<figcaption>{escape(f.how_to_read)}</figcaption></figure>")
    for name, why in (skipped or {}).items():
        parts.append(f"<p class=\"meta\">{escape(name)}: not drawn ({escape(why)}).</p>")
    parts.append(_quality(run, sides))
    if doc.get("notes"):
        parts.append("<h2>Notes from the analysis</h2><ul>"
                     + "".join(f"<li>{escape(n)}</li>" for n in doc["notes"]) + "</ul>")
    parts.append(f'<p class="reminder">{escape(NOT_A_DIAGNOSIS)}</p>')
    return document("Run report", _CSS, parts)


def _fmt(v, spec: str = ".0f", unit: str = "") -> str:
    if v is None:
        return "n/a"
    return f"{format(v, spec)}{unit}"


def _summary(run: RunData, sides: list[str]) -> str:
    body = run.doc["body"]
    rows = [
        ("steps (complete)", lambda s: f"{s['steps']} ({s['steps_complete']})"),
        ("duration", lambda s: _fmt(s["duration_s"], ".0f", " s")),
        ("activity", lambda s: f"{s['activity']} (duty factor {_fmt(s['duty_factor'], '.2f')})"),
        ("cadence", lambda s: _fmt(s["cadence_spm"], ".0f", " steps/min")),
        ("contact time, median", lambda s: _fmt(s["contact_ms_median"], ".0f", " ms")),
        ("strike pattern", lambda s: ", ".join(f"{k} {v}" for k, v in s["strike_counts"].items() if v) or "n/a"),
        ("loading rate, heel strikes, median", lambda s: _fmt(s["valr_bw_per_s_median_rearfoot"], ".0f", " BW/s")),
        ("peak force, median", lambda s: _fmt(s["peak_force_bw_median"], ".2f", " BW")),
        ("metatarsal heads' share, median", lambda s: _fmt(s["metatarsal_share_median"], ".1%")),
        ("arch share, median", lambda s: _fmt(s["zone_impulse_share_median"].get("arch"), ".1%")),
    ]
    out = ["<h2>Summary</h2><table><tr><th></th>"
           + "".join(f"<th>{s} foot</th>" for s in sides) + "</tr>"]
    for label, get in rows:
        out.append(f"<tr><th>{escape(label)}</th>"
                   + "".join(f'<td class="num">{escape(get(run.feet[s].summary))}</td>' for s in sides)
                   + "</tr>")
    out.append("</table>")
    line = f"Body weight {body['body_weight_n']:.0f} N ({escape(body['source'])})"
    if body.get("force_coverage") is not None:
        line += (f"; the sensors measured {body['force_coverage']:.0%} of it on average "
                 "(force coverage)")
    out.append(f'<p class="meta">{line}. Forces in body weights (BW) are divided by it.</p>')
    return "\n".join(out)


def _flags(run: RunData) -> str:
    flags = run.doc["flags"]
    out = ['<h2 id="flags">Flags</h2>']
    if not flags:
        out.append('<p class="ok">No flag raised: none of hard heel strikes, forefoot overload or '
                   "arch collapse (see the notes below for what could not be evaluated).</p>")
    for f in flags:
        title = FLAG_TITLES.get(f["code"], f["code"])
        span = f["span_s"]
        out.append(
            f'<div class="flag"><h3>{escape(f["side"].capitalize())} foot: {escape(title)} '
            f'({escape(f["severity"])})</h3>'
            f"<p><b>What it means.</b> {escape(FLAG_MEANING.get(f['code'], ''))}</p>"
            f'<p class="numbers"><b>The numbers.</b> {escape(_value(f))} against a threshold of '
            f"{escape(_threshold(f))} ({escape(f['rule'])} rule), over {f['steps']} steps between "
            f"{span[0]:.0f} s and {span[1]:.0f} s.</p>"
            f"<p><b>In words.</b> {escape(f['message'])}</p>"
            f"<p><b>Source.</b> {escape(f.get('source') or SOURCES.get(f['code'], ''))}</p></div>")
    out.append(f'<p class="reminder"><b>Not a diagnosis.</b> {escape(NOT_A_DIAGNOSIS)}</p>')
    return "\n".join(out)


def _value(f: dict) -> str:
    if f["unit"] == "share of stance impulse":
        return f"{f['value']:.1%} of stance impulse"
    if f["unit"].startswith("%"):
        return f"{f['value']:.1f} {f['unit']}"
    return f"{f['value']:.1f} {f['unit']}"


def _threshold(f: dict) -> str:
    if f["unit"] == "share of stance impulse":
        return f"{f['threshold']:.0%}"
    if f["unit"].startswith("%"):
        return f"{f['threshold']:.0f} %"
    return f"{f['threshold']:.0f} {f['unit']}"


_LEDGER = (
    ("packets", "DATA packets received"),
    ("packets_lost", "packets lost in transport (gaps in seq)"),
    ("samples_dropped", "sample sets dropped on the device"),
    ("samples_missing", "sample slots with no data (left empty, never filled)"),
    ("decode_errors", "damaged frames (decoder errors)"),
    ("decode_errors_by_kind", "damaged frames by kind"),
    ("device_overruns", "device overruns (STATUS)"),
    ("achieved_hz_median", "achieved sample rate, median (Hz)"),
    ("duplicate_packets", "duplicate packets"),
    ("sensor_faults", "faulty sensors"),
    ("sensor_fault_reasons", "why"),
    ("saturated_samples", "samples at the supply rail"),
    ("partial_steps_skipped", "steps cut by the ends of the recording"),
    ("clock_offset_s", "device-to-host clock offset (s)"),
    ("clock_drift_ppm", "device clock drift (ppm)"),
    ("clock_residual_ms", "clock fit residual (ms)"),
    ("missing_info", "INFO packet missing (default zones assumed)"),
    ("calibration", "calibration used"),
)


def _cell(key: str, v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, dict):
        return "; ".join(f"{k}: {x}" for k, x in v.items()) or "none"
    if isinstance(v, list):
        return ", ".join(map(str, v)) or "none"
    if isinstance(v, float):
        return f"{v:.3f}" if key.startswith("clock") else f"{v:g}"
    return str(v)


def _quality(run: RunData, sides: list[str]) -> str:
    out = ['<h2 id="quality">Data-quality ledger</h2>',
           "<p>Everything that went missing or wrong between the sensors and this report, per "
           "foot. Missing samples stay missing: nothing is interpolated across a gap.</p>",
           "<table><tr><th></th>" + "".join(f"<th>{s} foot</th>" for s in sides) + "</tr>"]
    for key, label in _LEDGER:
        vals = [run.feet[s].quality.get(key) for s in sides]
        if all(v is None for v in vals) and key not in ("packets_lost", "sensor_faults"):
            continue
        cells = []
        for v in vals:
            bad = isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 and key in (
                "packets_lost", "samples_dropped", "samples_missing", "decode_errors", "device_overruns",
                "duplicate_packets", "saturated_samples", "missing_info")
            bad = bad or (key == "sensor_faults" and bool(v))
            cls = "num bad" if bad else "num"
            cells.append(f'<td class="{cls}">{escape(_cell(key, v))}</td>')
        out.append(f"<tr><th>{escape(label)}</th>{''.join(cells)}</tr>")
    out.append("</table>")
    return "\n".join(out)
