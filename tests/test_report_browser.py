"""report.html in headless Chromium: it loads without a JavaScript error and every plot decodes and shows.

The report is self-contained (plots are base64 PNGs, no scripts, no network), so the browser check
is that Chromium decodes each embedded image to its file's size and lays it out, that the console
stays silent, and that a screenshot of the page is a real picture. A copy of the page outside the
run directory carries a small probe script that writes what the browser saw into the DOM, which
``--dump-dom`` returns; a page with a broken image and a throwing script shows the probe catches both.
Skipped where no chromium binary is installed.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from rundir_factory import FakeCell, write_run_dir
from test_report import PNG_MAGIC, REPS, _grid
from test_report_views import tuned_trials, write_journal
from tournament.report.report import build_report

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium or chromium-browser on PATH "
                                "(install Chromium to run the headless browser check of report.html)")

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--enable-logging=stderr", "--v=0")
WINDOW = (1280, 6000)
PROBE = """<script>
window.__probeErrors = [];
window.addEventListener('error', function (e) {
  window.__probeErrors.push(e.message ? String(e.message) : 'failed to load ' + (e.target && e.target.tagName));
}, true);
window.addEventListener('load', function () {
  var images = Array.prototype.map.call(document.images, function (img) {
    var box = img.getBoundingClientRect();
    return {alt: img.alt, complete: img.complete, width: img.naturalWidth, height: img.naturalHeight,
            shown_width: box.width, shown_height: box.height};
  });
  var out = document.createElement('pre');
  out.id = 'browser-probe';
  out.textContent = JSON.stringify({errors: window.__probeErrors, images: images});
  document.body.appendChild(out);
});
</script>"""
PREDICT_STAGES = [{"stage": s, "accuracy": a, "macro_f1": a - 0.1, "auprc": a + 0.05}
                  for s, a in enumerate((0.4, 0.6, 0.8))]


def _with_predict_results(run: Path, cell: FakeCell) -> None:
    """The last Tune result of each final predict trial, as trainable.py leaves it under tune/."""
    for k in range(len(cell.final_scores)):
        key = f"{cell.cell_id}-s{1000 + k}"
        folder = run / "tune" / "attempt-0" / f"{key}_0000{k}"
        folder.mkdir(parents=True)
        metrics = {"n_episodes": 8, "fates": ["Mo", "Neu"], "fate_counts": [4, 4], "stages": PREDICT_STAGES}
        record = {"trial_key": key, "finished": True, "predict_metrics": json.dumps(metrics)}
        (folder / "result.json").write_text(json.dumps(record) + "\n")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    cells = _grid()
    predict = FakeCell(task="predict", target="-", final_scores=[0.6, 0.7, 0.65])
    run = write_run_dir(tmp_path_factory.mktemp("browser") / "run", [*cells, predict])
    _with_predict_results(run, predict)
    write_journal(run, {c.cell_id: tuned_trials() for c in cells[:2]})
    written = build_report(run, reps=REPS)
    return run, sorted(rel for rel in written if rel.startswith("plots/"))


def _chromium(page: Path, work: Path, *extra: str) -> subprocess.CompletedProcess:
    """Chromium on `page` with a fresh profile in `work`; a hung browser ends the test, not the suite."""
    profile = work / f"profile-{len(list(work.glob('profile-*')))}"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
                          capture_output=True, text=True, timeout=180, check=False)


def _console_lines(stderr: str) -> list[str]:
    """What the page wrote to the console (uncaught errors, failed loads), from Chromium's log."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def _probe(page: Path, work: Path) -> tuple[dict, list[str]]:
    """(what the probe saw: errors and each image's decoded and shown size, console lines) of `page`."""
    probed = work / f"probed-{page.name}"
    probed.write_text(page.read_text().replace("<head>", "<head>" + PROBE, 1))
    done = _chromium(probed, work, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r"<pre id=\"browser-probe\">(.*?)</pre>", done.stdout, re.S)
    assert found, "the probe wrote nothing: the page's load event never came"
    return json.loads(html.unescape(found.group(1))), _console_lines(done.stderr)


def test_report_loads_without_console_errors(report, tmp_path):
    run, _ = report
    done = _chromium(run / "report.html", tmp_path, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    assert _console_lines(done.stderr) == []
    assert "<h1>Tournament report: synthetic</h1>" in done.stdout
    assert "<h2>Fate prediction per stage</h2>" in done.stdout


def test_every_plot_decodes_and_shows(report, tmp_path):
    run, plots = report
    seen, console = _probe(run / "report.html", tmp_path)
    assert seen["errors"] == [] and console == []
    # every figure written (the predict stages and the Optuna views too) is in the page
    assert len(plots) == 10 and {"plots/predict_stages.png", "plots/param_importances.png"} <= set(plots)
    assert len(seen["images"]) == len(plots)
    sizes = sorted((imread(run / rel).shape[1], imread(run / rel).shape[0]) for rel in plots)
    assert sorted((i["width"], i["height"]) for i in seen["images"]) == sizes
    for img in seen["images"]:
        assert img["complete"] and img["shown_width"] > 300 and img["shown_height"] > 100, img


def test_screenshot_is_a_picture(report, tmp_path):
    run, _ = report
    shot = tmp_path / "report.png"
    done = _chromium(run / "report.html", tmp_path, f"--window-size={WINDOW[0]},{WINDOW[1]}",
                     f"--screenshot={shot}")
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    assert shot.read_bytes()[:8] == PNG_MAGIC
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    assert pixels.std() > 0.05  # not a blank page
    # plot colours, not only black text on white: some clearly saturated pixels
    saturation = pixels.max(axis=-1) - pixels.min(axis=-1)
    assert np.mean(saturation > 0.3) > 0.001


def test_probe_catches_a_broken_image_and_a_script_error(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><head><title>x</title></head><body>"
                    "<img alt='broken' src='data:image/png;base64,AAAA'>"
                    "<script>notDefined();</script></body></html>")
    seen, console = _probe(page, tmp_path)
    assert seen["images"][0]["width"] == 0
    assert any("notDefined" in e for e in seen["errors"]) and any("failed to load IMG" in e for e in seen["errors"])
    assert any("notDefined" in line for line in console)
