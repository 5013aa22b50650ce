"""The run report (`insole report`): figures from the pipeline's per-step arrays, PNGs and one
self-contained HTML page, checked in a real headless Chromium (skipped with a reason where it is
missing; `make test` installs Debian's chromium when apt is available)."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from helpers import run_cli
from matplotlib.image import imread

from insole import sim
from insole.figures import foot_map, run_data

pytestmark = pytest.mark.live  # starts processes, threads or ptys: make test-repeat


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    """A two-foot heel-striker run of 40 s (enough clean heel strikes for the flag)."""
    d = tmp_path_factory.mktemp("cap")
    paths = []
    for side in ("left", "right"):
        foot = sim.simulate("heel-striker", side, 40.0, seed=4, loss_pct=1.0)
        p = d / f"{side}.bin"
        sim.write_capture(p, foot)
        paths.append(p)
    return paths


@pytest.fixture(scope="module")
def report(capture, tmp_path_factory):
    out = tmp_path_factory.mktemp("rep") / "rep"
    r = run_cli("report", *capture, "--out", out, timeout=180)
    assert r.returncode == 0, r.stderr.decode()
    return out, r.stdout.decode()


def test_run_data_cuts_every_complete_step(capture):
    run = run_data([str(p) for p in capture])
    for side, f in run.feet.items():
        steps = [s for s in run.doc["feet"][side]["steps"] if s.get("complete")]
        k = len(steps)
        assert k > 40 and f.steps == k
        assert f.zone_curves_bw.shape == (k, len(f.zones), 101)
        # stance starts and ends at the 20 N contact threshold: near zero in body weights
        assert np.nanmax(np.abs(f.total_curves_bw[:, [0, -1]])) < 0.1
        peak = np.nanmax(f.total_curves_bw, axis=1)
        np.testing.assert_allclose(peak, f.peak_force_bw, rtol=0.05)  # the analysis's own peaks
        # zone shares of the impulse agree with the curves' integrals
        imp = np.trapezoid(np.nan_to_num(f.zone_curves_bw), axis=2)
        np.testing.assert_allclose(imp / imp.sum(axis=1, keepdims=True), f.zone_shares, atol=0.02)
        # the centre of pressure stays on the insole
        o = foot_map.outline_xy(side)
        cop = f.cop_xy[np.isfinite(f.cop_xy[:, :, 0])]
        assert cop[:, 0].min() >= o[:, 0].min() and cop[:, 0].max() <= o[:, 0].max()
        assert cop[:, 1].min() >= o[:, 1].min() and cop[:, 1].max() <= o[:, 1].max()
        assert len(f.cadence_spm) and 150 < np.median(f.cadence_spm) < 175  # scenario: 162
        assert [fl["code"] for fl in f.flags] == ["heel_strike_force"]


def test_report_writes_figures_and_a_self_contained_page(report):
    out, stdout = report
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) >= 4
    for p in pngs:
        img = imread(p)
        assert img.shape[0] > 300 and img.shape[1] > 500, p
    page = (out / "report.html").read_text(encoding="utf-8")
    imgs = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(imgs) == len(pngs)
    # nothing to fetch: no src/href to anything but inline data, no script
    assert not re.search(r'(src|href)="(?!data:|#)', page)
    assert "<script" not in page and "@import" not in page and "url(" not in page
    assert page.count('class="flag"') == 2 and "hard heel strikes" in page
    assert "not a diagnosis" in page.lower() and "Davis" in page
    assert "Data-quality ledger" in page and "packets lost" in page
    assert "report written to" in stdout


def test_one_foot_report_skips_symmetry_and_says_so(capture, tmp_path):
    from insole.figures import build_report

    rep = build_report([str(capture[0])], tmp_path / "one")
    assert rep.skipped == {"symmetry": "needs both feet"}
    assert not (tmp_path / "one" / "symmetry.png").exists()
    assert len(rep.pngs) >= 4 and all(p.exists() for p in rep.pngs)
    assert "symmetry: not drawn (needs both feet)" in rep.html_path.read_text(encoding="utf-8")


def test_report_user_errors_are_one_line_exit_2(tmp_path, capsys):
    from insole.cli import main

    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    for args in ((str(tmp_path / "missing.bin"), "--out", str(tmp_path / "o")),
                 (str(empty), "--out", str(tmp_path / "o")),
                 (str(empty), "--out", str(tmp_path / "o"), "--body-mass-kg", "5")):
        assert main(["report", *args]) == 2, args
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("insole report: error:"), err
    assert not (tmp_path / "o").exists()  # nothing written for a failed report


# In-browser check: the page is loaded as it is, with one probe script added to a copy (the page
# itself has none). The probe records every error event (resource and script errors, captured)
# and, once the page has loaded, how many images decoded; --dump-dom prints the DOM with that
# verdict. Chromium's own console log (--enable-logging=stderr) is searched for console errors.
_PROBE = """<script>
var __errors = [];
window.addEventListener('error', function (e) {
  __errors.push((e.target && e.target.tagName) || e.message); }, true);
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0 && i.naturalHeight > 0; });
  var p = document.createElement('p'); p.id = '__probe';
  p.textContent = 'PROBE images=' + imgs.length + ' decoded=' + ok.length + ' errors=' + __errors.length;
  document.body.appendChild(p);
});
</script>"""


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None,
                    reason="chromium not installed (make test installs Debian's chromium when apt is available)")
def test_report_page_loads_in_headless_chromium_with_every_image(report, tmp_path):
    out, _ = report
    n_png = len(list(out.glob("*.png")))
    page = (out / "report.html").read_text(encoding="utf-8")
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</head>", _PROBE + "</head>", 1), encoding="utf-8")
    base = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-extensions", "--enable-logging=stderr", "--v=0", f"--user-data-dir={tmp_path / 'prof'}"]
    r = subprocess.run([*base, "--virtual-time-budget=5000", "--dump-dom", probed.as_uri()],
                       capture_output=True, timeout=90)
    dom = r.stdout.decode(errors="replace")
    m = re.search(r"PROBE images=(\d+) decoded=(\d+) errors=(\d+)", dom)
    assert m, f"probe did not run (exit {r.returncode}): {r.stderr.decode(errors='replace')[-2000:]}"
    images, decoded, errors = map(int, m.groups())
    assert images == n_png and decoded == n_png and errors == 0
    console = [ln for ln in r.stderr.decode(errors="replace").splitlines() if "CONSOLE" in ln]
    assert not [ln for ln in console if "error" in ln.lower()], console
