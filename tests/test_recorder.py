"""The driver's recorder: final_scores.csv rows of finished final trials with their task metrics
(predict: per-stage means; trajectory: the seed's metrics), and a run directory written before
those columns (and the action column) existed, which resumes into the current columns."""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

import pytest

from rundir_factory import FakeCell, write_run_dir
from tournament.engine.cells import Cell
from tournament.engine.progress import ProgressDisplay, ProgressTracker
from tournament.engine.recorder import RunDirCallback, task_metrics
from tournament.engine.records import read_table
from tournament.engine.rundir import FINAL_COLUMNS, PREDICT_COLUMNS, TRAJECTORY_COLUMNS, RunPaths, legacy_columns
from tournament.report.leaderboard import build_leaderboard

STEER = Cell("myeloid", "myeloid", "steer", "Mo", "PPO", "adam", 2, "gnn")
PREDICT = Cell("myeloid", "myeloid", "predict", None, "PPO", "adam", 2, "gnn")
TRAJECTORY = Cell("myeloid", "myeloid", "trajectory", None, "SAC", "adam", 2, "mlp", "continuous")
STAGES = [{"stage": 0, "accuracy": 0.4, "macro_f1": 0.2, "auprc": 0.5},
          {"stage": 1, "accuracy": 0.6, "macro_f1": 0.5, "auprc": 0.7},
          {"stage": 2, "accuracy": 1.0, "macro_f1": 1.0, "auprc": 0.9}]
SEED_METRICS = {"n_episodes": 4, "distance_closed": 0.25, "direction_accuracy": 0.75, "macro_f1": 0.5,
                "auprc": 0.625, "mse": 0.125, "r2": -0.5, "pearson": 0.375}


def _callback(root, *cells: Cell) -> RunDirCallback:
    return RunDirCallback(RunPaths(root), {c.cell_id: c for c in cells}, ProgressTracker(planned=4), searcher=object(),
                          display=ProgressDisplay("test", enabled=False))


def _finish(cb: RunDirCallback, cell: Cell, seed: int, **result) -> None:
    """A final trial of `cell` that ends with `result` in its last Tune result."""
    key = f"{cell.cell_id}-s{seed}"
    trial = SimpleNamespace(trial_id=key, error_file=None, num_failures=0,
                            config={"meta": {"trial_key": key, "cell_id": cell.cell_id, "phase": "final",
                                             "hparams": {"lr": 0.001}}, "trial": {"seed": seed}},
                            last_result={"score": 0.7, "normalized_score": 0.7, "env_steps": 400,
                                         "cpu_seconds": 1.0, "wall_seconds": 1.0, "finished": True, **result})
    cb.on_trial_complete(0, [], trial)


def _final_rows(root) -> list[dict]:
    with open(root / "final_scores.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_task_metrics_are_the_stage_means_and_the_seed_metrics():
    got = task_metrics({"predict_metrics": json.dumps({"n_episodes": 8, "stages": STAGES})})
    assert {c: got[c] for c in PREDICT_COLUMNS} == pytest.approx(
        {"predict_accuracy": 2.0 / 3, "predict_macro_f1": 1.7 / 3, "predict_auprc": 0.7})
    assert all(got[c] is None for c in TRAJECTORY_COLUMNS)
    got = task_metrics({"trajectory_metrics": json.dumps(SEED_METRICS)})
    assert got["trajectory_direction_accuracy"] == 0.75 and got["trajectory_r2"] == -0.5
    assert got["trajectory_distance_closed"] == 0.25 and all(got[c] is None for c in PREDICT_COLUMNS)
    assert set(task_metrics({"predict_metrics": "not json"}).values()) == {None}


def test_final_scores_carry_task_metrics_and_leave_the_other_tasks_empty(tmp_path):
    cb = _callback(tmp_path, STEER, PREDICT, TRAJECTORY)
    _finish(cb, PREDICT, 1000, predict_metrics=json.dumps({"n_episodes": 8, "stages": STAGES}))
    _finish(cb, STEER, 1000, perturbation_sets=json.dumps([[["Gfi1", "ko", 0]]]))
    _finish(cb, TRAJECTORY, 1000, trajectory_metrics=json.dumps(SEED_METRICS),
            perturbation_sets=json.dumps([{"Gata1": -0.5}]))
    table = read_table(tmp_path / "final_scores.csv")
    assert table.damage == [] and len(table.rows) == 3
    predict, steer, trajectory = _final_rows(tmp_path)
    assert float(predict["predict_accuracy"]) == pytest.approx(2.0 / 3)
    assert float(predict["predict_auprc"]) == pytest.approx(0.7)
    assert [steer[c] for c in (*PREDICT_COLUMNS, *TRAJECTORY_COLUMNS)] == [""] * 10
    assert json.loads(steer["perturbation_sets"]) == [[["Gfi1", "ko", 0]]]
    assert trajectory["action"] == "continuous" and trajectory["cell_id"].endswith("-continuous")
    assert float(trajectory["trajectory_pearson"]) == 0.375 and trajectory["predict_accuracy"] == ""
    assert json.loads(trajectory["perturbation_sets"]) == [{"Gata1": -0.5}]


def test_a_run_written_before_the_added_columns_reads_and_resumes_into_them(tmp_path):
    run = write_run_dir(tmp_path / "run", [FakeCell(final_scores=[0.5, 0.6])])
    old_header = (run / "final_scores.csv").read_text().splitlines()[0]
    assert old_header == ",".join(legacy_columns(FINAL_COLUMNS))
    table = read_table(run / "final_scores.csv")  # read as it is, the added columns filled in
    assert table.damage == [] and len(table.rows) == 2
    assert {r["action"] for r in table.rows} == {"discrete"} and all(r["predict_auprc"] == "" for r in table.rows)
    cb = _callback(run, STEER, PREDICT)  # a resumed run: the tables are rewritten in today's columns
    _finish(cb, PREDICT, 1001, predict_metrics=json.dumps({"n_episodes": 8, "stages": STAGES}))
    assert (run / "final_scores.csv").read_text().splitlines()[0] == ",".join(FINAL_COLUMNS)
    table = read_table(run / "final_scores.csv")
    assert table.damage == [] and len(table.rows) == 3
    assert [r["action"] for r in table.rows] == ["discrete"] * 3
    assert float(table.rows[-1]["predict_accuracy"]) == pytest.approx(2.0 / 3)
    assert read_table(run / "trials.csv").damage == []
    assert set(build_leaderboard(run, reps=200)["cell_id"]) >= {PREDICT.cell_id, "myeloid-steer-Mo-PPO-adam-k2-gnn"}
