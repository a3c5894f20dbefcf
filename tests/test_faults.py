"""Faults in a tournament, nothing lost: a killed driver (a partial report, then a resume that
ends with the trials of an uninterrupted run), trials over their time or memory budget, and a
spec that loads a checkpoint from outside its run storage.

Trials use the scripted runner (tournament.engine.scripted), which has the TrialRunner interface, so
the engine is exercised without RLlib builds. One local Ray (2 CPUs) is shared by the module;
a node removed from a multi-node cluster is in tests/test_cluster.py.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import yaml

from tournament_helpers import kill_driver_after_trials, rows, with_changes
from tournament.cli.main import main
from tournament.engine.runner import resume_tournament, run_tournament
from tournament.engine.spec import parse_spec

SCRIPTED = "tournament.engine.scripted:ScriptedRunner"


def spec_dict(name: str, storage: Path | str, **changes) -> dict:
    """Two scripted cells (PPO, A2C), 2 tuning trials and 2 final seeds each, 4 iterations a trial."""
    data = {
        "name": name,
        "world": "myeloid",
        "target": "Mo",
        "grid": {"algorithm": ["PPO", "A2C"], "optimizer": ["adam"], "max_perturb": [2], "module": ["mlp"]},
        "algorithm_settings": {"PPO": {"train_batch_size": 200}, "A2C": {"train_batch_size": 200}},
        "budget": {"env_steps": 800},
        "hpo": {"trials_per_cell": 2, "seed": 0},
        "final": {"seeds": 2, "eval_episodes": 8},
        "evaluation": {"every_iterations": 1, "episodes": 8},
        "execution": {"storage": str(storage), "runner": SCRIPTED, "max_failures": 1, "checkpoint_every": 1},
    }
    return with_changes(data, changes)


def trial_keys(run: Path) -> set[tuple[str, str, str]]:
    return {(r["trial_id"], r["phase"], r["seed"]) for r in rows(run / "trials.csv")}


@pytest.mark.slow  # about 2-3 minutes on a loaded 2-core machine; kill and resume alone are in test_tournament
def test_killed_driver_gives_a_partial_report_and_resumes_to_the_uninterrupted_trials(tmp_path, ray_local):
    # the uninterrupted run; the killed one burns CPU in its trials so that it is killed mid-way
    reference = run_tournament(parse_spec(spec_dict("crash", tmp_path / "reference")), progress=False,
                               build_report=False)
    slow = {"PPO": {"train_batch_size": 200, "work_s": 0.3}, "A2C": {"train_batch_size": 200, "work_s": 0.3}}
    spec_file = tmp_path / "crash.yaml"
    spec_file.write_text(yaml.safe_dump(spec_dict("crash", tmp_path / "runs", algorithm_settings=slow)))
    run = tmp_path / "runs" / "crash"
    kill_driver_after_trials(spec_file, run)
    assert len(rows(run / "trials.csv")) < 8

    # the report of the killed run is built from what exists and says it is partial
    assert main(["report", str(run)]) == 0
    for name in ("leaderboard.md", "report.html"):
        assert "Partial report" in (run / name).read_text(), name
    assert json.loads((run / "manifest.json").read_text())["status"] == "running"

    resume_tournament(run, progress=False)
    assert json.loads((run / "manifest.json").read_text())["status"] == "finished"
    # the same trials as the uninterrupted run: every (cell, tuning slot) and (cell, final seed)
    assert trial_keys(run) == trial_keys(reference)
    assert len(trial_keys(run)) == 2 * (2 + 2)
    assert {r["status"] for r in rows(run / "trials.csv")} == {"ok"}
    finals = [r["cell_id"] for r in rows(reference / "final_scores.csv")]
    board = {r["cell_id"]: int(r["n_seeds"]) for r in rows(run / "leaderboard.csv") if r["entry"] == "rl"}
    assert board == {cell: finals.count(cell) for cell in finals}  # the baseline rows sit beside them
    assert "Partial report" not in (run / "leaderboard.md").read_text()


@pytest.fixture(scope="module")
def budget_run(tmp_path_factory, ray_local) -> Path:
    """PPO within its budgets, A2C over its time budget, TRPO over its memory budget."""
    storage = tmp_path_factory.mktemp("budgets")
    spec = parse_spec(spec_dict(
        "budgets", storage,
        grid={"algorithm": ["PPO", "A2C", "TRPO"]},
        algorithm_settings={"PPO": {"train_batch_size": 200},
                            "A2C": {"train_batch_size": 200, "work_s": 2.5},  # >= 7.5 s by iteration 3
                            "TRPO": {"train_batch_size": 200, "fault": "memory", "ballast_mb": 1088}},
        hpo={"trials_per_cell": 1}, final={"seeds": 1},
        resources={"trial_timeout_s": 6.0, "trial_memory_mb": 1024},
        execution={"runner": "tournament.engine.scripted:FaultInjectingRunner"},
    ))
    return run_tournament(spec, progress=False, build_report=False)


def _by_cell(run: Path) -> dict[str, dict]:
    return {r["algorithm"] + "-" + r["phase"]: r for r in rows(run / "trials.csv")}


def _attempts(run: Path, algorithm: str) -> set[int]:
    found = set()
    for path in (run / "tune").rglob("result.json"):
        for line in path.read_text().splitlines():
            r = json.loads(line)
            if r.get("trial_key", "").startswith(f"myeloid-steer-Mo-{algorithm}-"):
                found.add(r["attempt"])
    return found


def test_a_trial_over_its_time_budget_fails_with_the_reason(budget_run):
    trials = _by_cell(budget_run)
    slow = trials["A2C-tune"]
    assert slow["status"] == "failed" and "time budget exceeded" in slow["fail_reason"]
    assert int(slow["env_steps"]) < 800 and float(slow["wall_seconds"]) > 6.0
    assert _attempts(budget_run, "A2C") == {0}  # not retried
    assert "A2C-final" not in trials  # a cell without a finished tuning trial has no final seeds
    assert trials["PPO-tune"]["status"] == "ok" and trials["PPO-final"]["status"] == "ok"
    status = json.loads((budget_run / "status.json").read_text())
    assert status["phase"] == "done" and status["trials"]["failed"] == 2


def test_a_trial_over_its_memory_budget_fails_with_the_reason(budget_run):
    trials = _by_cell(budget_run)
    hog = trials["TRPO-tune"]
    assert hog["status"] == "failed" and "memory budget exceeded" in hog["fail_reason"]
    assert int(hog["env_steps"]) == 200  # stopped at its first iteration
    assert _attempts(budget_run, "TRPO") == {0}
    assert all(trials[k]["fail_reason"] == "" for k in ("PPO-tune", "PPO-final"))
    assert int(trials["PPO-final"]["env_steps"]) == 800


def test_a_checkpoint_from_outside_the_run_storage_is_warned_about(tmp_path):
    def spec_loading(path: Path, storage: str) -> dict:
        return spec_dict("lora", storage, grid={"algorithm": ["LoRA_staged"]},
                         algorithm_settings={"LoRA_staged": {"train_batch_size": 200, "pretrained": str(path)}})

    with pytest.warns(UserWarning, match=r"algorithm_settings\.LoRA_staged\.pretrained: .*pickle"):
        parse_spec(spec_loading(tmp_path / "downloads" / "ckpt", str(tmp_path / "runs")))
    with pytest.warns(UserWarning, match="outside the run storage"):
        parse_spec(spec_loading(tmp_path / "runs" / "pretrain" / "ckpt", "s3://bucket/runs"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a checkpoint the tool wrote into its own storage
        parse_spec(spec_loading(tmp_path / "runs" / "pretrain" / "ckpt", str(tmp_path / "runs")))
        parse_spec(spec_loading(tmp_path / "runs" / "pretrain" / "ckpt", (tmp_path / "runs").as_uri()))
