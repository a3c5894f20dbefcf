"""The report: deterministic rebuilds, valid PNGs, self-contained HTML, partial-run banners."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from rundir_factory import FakeCell, write_run_dir
from tournament.report.report import build_report

REPS = 200
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REQUIRED_COLUMNS = ["world", "task", "algorithm", "optimizer", "max_perturb", "module", "iqm",
                    "mean", "ci_low", "ci_high", "optimality_gap", "n_seeds", "failed_trials",
                    "rank", "tie_with_leader", "steps_to_90", "cpu_seconds", "best_hparams"]


def _grid() -> list[FakeCell]:
    rng = np.random.default_rng(0)
    sets = [[[["Gfi1", "ko"], ["Cebpa", "oe"]], [["Gfi1", "ko"]]] for _ in range(3)]
    cells = []
    for k in (2, 3):
        for algo, base in (("PPO", 0.6), ("TRPO_to_PPO", 0.62)):
            for opt, bonus in (("adam", 0.0), ("asgd_adam", 0.05)):
                scores = list(np.clip(base + bonus + rng.normal(0, 0.05, 3), 0, 1).round(3))
                cells.append(FakeCell(algorithm=algo, optimizer=opt, max_perturb=k,
                                      final_scores=scores, perturbation_sets=sets,
                                      steps_to_90=[1000, None, 3000]))
    return cells


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run = write_run_dir(tmp_path_factory.mktemp("finished") / "run", _grid())
    return run, build_report(run, reps=REPS)


def test_writes_every_output(finished):
    run, written = finished
    for rel in ("leaderboard.csv", "leaderboard.md", "ablations.csv", "report.html",
                "plots/leaderboard.png", "plots/learning_curves.png", "plots/ablation_forest.png",
                "plots/score_vs_max_perturb.png", "plots/lr_switching.png"):
        assert rel in written and (run / rel).is_file(), rel
    lb = pd.read_csv(run / "leaderboard.csv")
    assert set(REQUIRED_COLUMNS) <= set(lb.columns)
    assert len(lb) == 8 and sorted(lb["rank"]) == list(range(1, 9))
    ab = pd.read_csv(run / "ablations.csv")
    assert {"TRPO_to_PPO vs PPO", "asgd_adam vs adam"} == set(ab["ablation"])
    # Atomic writes leave no temp files behind.
    assert not [p for p in run.rglob(".*.tmp")]


def test_rebuild_is_byte_identical(finished):
    run, _ = finished
    first = {n: (run / n).read_bytes() for n in ("leaderboard.csv", "leaderboard.md",
                                                  "ablations.csv", "report.html")}
    build_report(run, reps=REPS)
    for name, data in first.items():
        assert (run / name).read_bytes() == data, f"{name} changed on rebuild"


def test_plots_are_valid_pngs(finished):
    run, _ = finished
    for png in sorted((run / "plots").glob("*.png")):
        data = png.read_bytes()
        assert data[:8] == PNG_MAGIC, png.name
        img = imread(png)
        assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 400, png.name
        # Not a blank canvas: something was drawn.
        assert img[..., :3].std() > 0.01, png.name


def test_html_is_self_contained(finished):
    run, _ = finished
    text = (run / "report.html").read_text()
    srcs = re.findall(r"<img[^>]*\ssrc=['\"]([^'\"]*)['\"]", text)
    # five figures of the leaderboard views, the performance profiles and the P(X > Y) matrix; no journal:
    # no Optuna figures, no predict cells: no per-stage figure
    assert len(srcs) == 7
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:|//|file:)", text)
    assert "<link" not in text and "<script" not in text
    for section in ("Leaderboard", "Oracle", "Ablations", "Across algorithms (rliable)",
                    "Hyperparameter search (Optuna)", "Biology", "Manifest", "Spec"):
        assert f"<h2>{section}" in text
    assert "Partial report" not in text
    assert "Cebpa oe + Gfi1 ko" in text  # biology view, checked against the oracle
    assert "exact optimum" in text
    assert "No Optuna journal (optuna/studies.log)" in text
    assert "Fate prediction per stage" not in text  # steer cells only


def test_killed_before_final_phase_gives_partial_report(tmp_path):
    cells = [FakeCell(algorithm="PPO", tune_scores=[0.3, 0.6]),
             FakeCell(algorithm="A2C", tune_scores=[0.2], failed_tune=1)]
    run = write_run_dir(tmp_path / "run", cells, manifest_status="running", final_phase=False)
    written = build_report(run, reps=REPS)
    lb = pd.read_csv(run / "leaderboard.csv")
    assert (lb["score_source"] == "provisional (tuning scores)").all()
    assert lb.set_index("algorithm").loc["PPO", "iqm"] == pytest.approx(0.6)
    md = (run / "leaderboard.md").read_text()
    html = (run / "report.html").read_text()
    for text in (md, html):
        assert "Partial report" in text and "still going or was interrupted" in text
        assert "provisional (tuning scores)" in text
    assert "class='banner'" in html
    # No final seeds: nothing to pair, but the learning curves of the tuning trials still show.
    assert "plots/ablation_forest.png" not in written
    assert "plots/learning_curves.png" in written
    assert pd.read_csv(run / "ablations.csv").empty


def test_interrupted_run_banner_and_stale_plot_removed(tmp_path):
    cells = _grid()[:2]
    run = write_run_dir(tmp_path / "run", cells, manifest_status="interrupted")
    (run / "plots").mkdir()
    (run / "plots" / "ablation_forest.png").write_bytes(b"stale")
    build_report(run, reps=REPS)
    assert "the run was interrupted" in (run / "report.html").read_text()
    # Two adam/asgd_adam cells at k=2: one pair exists, so the forest plot is rebuilt.
    assert (run / "plots" / "ablation_forest.png").read_bytes()[:8] == PNG_MAGIC
    cells = [FakeCell(algorithm="PPO", final_scores=[0.5, 0.6])]
    write_run_dir(run, cells, manifest_status="interrupted")  # the same run, now one cell
    build_report(run, reps=REPS)
    assert not (run / "plots" / "ablation_forest.png").exists()


def test_empty_run_directory_still_reports(tmp_path):
    written = build_report(tmp_path, reps=REPS)
    assert "report.html" in written
    assert "No trials recorded yet" in (tmp_path / "leaderboard.md").read_text()
    assert "Partial report" in (tmp_path / "report.html").read_text()


def test_missing_run_directory_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        build_report(tmp_path / "nope")


def test_report_built_by_the_runner_before_the_manifest_is_final(tmp_path):
    # The runner writes status phase "report", builds the report, then marks the manifest.
    run = write_run_dir(tmp_path / "run", _grid()[:2], manifest_status="running")
    status = json.loads((run / "status.json").read_text())
    (run / "status.json").write_text(json.dumps({**status, "phase": "report"}))
    build_report(run, reps=REPS)
    md = (run / "leaderboard.md").read_bytes()
    assert b"Partial report" not in md
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**manifest, "status": "finished"}))
    build_report(run, reps=REPS)
    assert (run / "leaderboard.md").read_bytes() == md
