"""The run report: every figure as a PNG plus one self-contained HTML page.

:func:`build_report` is the whole of ``insole report`` without the command line: inputs in,
files out, a progress callback for the caller's progress bar.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from insole.analysis import AnalysisConfig
from insole.errors import InsoleError
from insole.figures import cop, html, loading, shares, stance, timing
from insole.figures.common import DPI
from insole.figures.data import RunData, run_data


@dataclass(frozen=True)
class FigureSpec:
    name: str  # file stem
    title: str
    make: Callable[[RunData], object]
    how_to_read: str


FIGURES = (
    FigureSpec("stance_curves", "Mean stance curve per zone", stance.stance_curves,
               "Each line is one sensor zone's force during ground contact, averaged over every "
               "complete step, in body weights (BW); the band is ±1 standard deviation across steps. "
               "A rearfoot striker's heel (blue) rises first with the impact transient, then the "
               "load rolls to the metatarsal heads for push-off. The dashed line is the whole foot "
               "as the sensors see it (the sensors cover part of the sole, so it is below the "
               "ground reaction force)."),
    FigureSpec("loading_rate", "Loading rate per step", loading.loading_rate,
               "Vertical average loading rate (VALR) of each step: the mean slope of force between "
               "20 % and 80 % of the impact peak, in body weights per second. Steps with no impact "
               "peak use the slope over 3–12 % of stance (squares), which reads about a third "
               "lower. The red dashed line is the heel_strike_force threshold (66 BW/s, Davis et "
               "al. 2016); the flag looks at the median of heel strikes (filled markers) only."),
    FigureSpec("zone_shares", "Zone shares over the run", shares.zone_shares,
               "How each step's load (its impulse, force × time) is shared between the zones, as a "
               "rolling median over 15 steps. A rising black line (metatarsal heads together) is the "
               "forefoot taking over; a rising arch line is the arch giving way. Red dashed lines are "
               "the absolute thresholds; the drift rules compare you with your own first minute."),
    FigureSpec("cop_paths", "Centre-of-pressure paths", cop.cop_paths,
               "Where the load is centred during each step, seen from above (left foot on the left), "
               "from contact (dot) to toe-off (arrow), coloured by when in the run the step was. "
               "With a few discrete sensors the path runs between the sensor centres; it shows the "
               "roll-over pattern and its changes, not a full-coverage pressure map. Hatched discs are "
               "sensors reported faulty."),
    FigureSpec("cadence_contact", "Cadence and contact time", timing.cadence_contact,
               "Cadence in steps per minute (two steps per stride of one foot) and ground-contact time "
               "in milliseconds for each foot; lines are rolling medians over 15 steps. Fatigue usually "
               "shows as a falling cadence and a longer contact."),
    FigureSpec("symmetry", "Left/right symmetry", timing.symmetry,
               "Symmetry index 100·(L−R)/mean(L,R) of each foot's median: a bar to the right means "
               "the left foot's value is larger. Within ±10 % (grey) is usually read as symmetric."),
)


@dataclass
class Report:
    out_dir: Path
    html_path: Path
    pngs: list[Path]
    skipped: dict[str, str]
    run: RunData


def stages() -> int:
    """How many times :func:`build_report` calls ``progress`` (for a progress bar's total):
    read, decode, analyse, one per foot, one per figure, the page."""
    return 3 + 2 + len(FIGURES) + 1


def build_report(paths: list[str], out_dir: str | Path, body_mass_kg: float | None = None,
                 calibration_paths: list[str] | None = None, config: AnalysisConfig | None = None,
                 progress: Callable[[str], None] | None = None) -> Report:
    """Analyse ``paths`` and write ``out_dir``/``*.png`` and ``out_dir``/``report.html``.

    Raises:
        InsoleError: unreadable inputs, an output directory that cannot be written.
    """
    tick = progress or (lambda _stage: None)
    out = Path(out_dir)
    run = run_data(paths, body_mass_kg, calibration_paths, config, progress=tick)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InsoleError(f"cannot create {out}: {e.strerror}") from e
    pngs, figures, skipped = [], [], {}
    for spec in FIGURES:
        fig = spec.make(run)
        if fig is None:
            skipped[spec.name] = "needs both feet"
            tick(spec.name)
            continue
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI)
        data = buf.getvalue()
        path = out / f"{spec.name}.png"
        try:
            path.write_bytes(data)
        except OSError as e:
            raise InsoleError(f"cannot write {path}: {e.strerror}") from e
        pngs.append(path)
        figures.append(html.FigureItem(spec.name, spec.title, spec.how_to_read, data))
        tick(spec.name)
    html_path = out / "report.html"
    try:
        html_path.write_text(html.render(run, figures, skipped), encoding="utf-8")
    except OSError as e:
        raise InsoleError(f"cannot write {html_path}: {e.strerror}") from e
    tick("html")
    return Report(out, html_path, pngs, skipped, run)
