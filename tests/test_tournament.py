"""Tournaments end to end on Ray: the run directory contract, faults, resume after a killed
driver, URI storage, and a two-node cluster.

Budgets are tiny (PPO with an MLP, 400 env steps, batches of 200). Fault, resume and storage
tests use the scripted runner (tournament.engine.scripted), which has the TrialRunner interface and a
synthetic learning curve, so they exercise the engine without paying for RLlib builds. One
local Ray (2 CPUs) is shared by the module.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from tournament_helpers import kill_driver_after_trials, rows, tiny_ppo_spec
from tournament.engine.runner import run_tournament
from tournament.engine.journal import journal_storage
from tournament.engine.spec import parse_spec

RUN_DIR_FILES = ("spec.yaml", "manifest.json", "status.json", "oracle.json", "trials.csv", "curves.csv",
                  "final_scores.csv", "optuna/studies.log")
SCRIPTED = "tournament.engine.scripted:ScriptedRunner"
FAULTY = "tournament.engine.scripted:FaultInjectingRunner"


def studies(run: Path) -> dict[str, optuna.Study]:
    storage = journal_storage(run / "optuna" / "studies.log")
    return {s.study_name: optuna.load_study(study_name=s.study_name, storage=storage)
            for s in optuna.get_all_study_summaries(storage)}


def check_run_dir(run: Path, n_cells: int, trials_per_cell: int, seeds: int) -> None:
    """Every contract file is there and consistent."""
    for name in RUN_DIR_FILES:
        assert (run / name).is_file(), name
    assert (run / "tune").is_dir()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["end_time"] and manifest["packages"]["ray"]
    assert manifest["hardware"]["cpu_count"] >= 1
    status = json.loads((run / "status.json").read_text())
    assert status["phase"] == "done"
    assert status["trials"] == {"done": n_cells * (trials_per_cell + seeds), "running": 0, "failed": 0, "remaining": 0}
    trials = rows(run / "trials.csv")
    assert len(trials) == n_cells * (trials_per_cell + seeds)
    assert sum(r["phase"] == "tune" for r in trials) == n_cells * trials_per_cell
    assert {r["status"] for r in trials} == {"ok"}
    tune_seeds = {int(r["seed"]) for r in trials if r["phase"] == "tune"}
    final_seeds = {int(r["seed"]) for r in trials if r["phase"] == "final"}
    assert tune_seeds.isdisjoint(final_seeds)
    oracle = json.loads((run / "oracle.json").read_text())
    for r in trials:
        optimum = oracle[f"{r['world']}|{r['task']}|{r['target']}|{r['max_perturb']}"]["optimum"]
        assert float(r["normalized_score"]) == pytest.approx(float(r["score"]) / optimum)
        assert float(r["cpu_seconds"]) > 0 and r["node_id"]
        assert int(r["env_steps"]) >= 400
    finals = rows(run / "final_scores.csv")
    assert len(finals) == n_cells * seeds
    assert all(isinstance(json.loads(f["perturbation_sets"]), list) for f in finals)
    curves = rows(run / "curves.csv")
    keys = [(c["trial_id"], c["iteration"]) for c in curves]
    assert len(keys) == len(set(keys)) and {c["trial_id"] for c in curves} == {r["trial_id"] for r in trials}
    found = studies(run)
    assert len(found) == n_cells
    for study in found.values():
        assert sum(t.state == TrialState.COMPLETE for t in study.trials) == trials_per_cell
    spec = yaml.safe_load((run / "spec.yaml").read_text())
    assert spec["execution"]["max_failures"] == 1 and "hpo" in spec


def test_tiny_tournament_end_to_end(tmp_path, ray_local):
    spec = parse_spec(tiny_ppo_spec("e2e", tmp_path))
    run = run_tournament(spec, progress=False, build_report=False)
    assert run == tmp_path / "e2e"
    check_run_dir(run, n_cells=2, trials_per_cell=2, seeds=2)
    trials = rows(run / "trials.csv")
    assert {r["cell_id"] for r in trials} == {"myeloid-steer-Mo-PPO-adam-k2-mlp", "myeloid-steer-Mo-PPO-asgd_adam-k2-mlp"}
    asgd = [json.loads(r["hparams"]) for r in trials if r["optimizer"] == "asgd_adam"]
    assert all(h["lr_min"] <= h["lr_max"] for h in asgd)
    # final trials re-train the best tuning configuration of their cell
    for cell in {r["cell_id"] for r in trials}:
        tuned = [r for r in trials if r["cell_id"] == cell and r["phase"] == "tune"]
        best = max(tuned, key=lambda r: (float(r["score"]), -int(r["seed"])))
        finals = [r for r in trials if r["cell_id"] == cell and r["phase"] == "final"]
        assert {r["hparams"] for r in finals} == {best["hparams"]}


def test_faults_retry_nan_and_uri_storage(tmp_path, ray_local, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = (tmp_path / "remote").as_uri()  # file:// goes through the pyarrow filesystem path
    spec = parse_spec(tiny_ppo_spec(
        "faults", uri,
        grid={"algorithm": ["PPO", "A2C", "TRPO"], "optimizer": ["adam"], "module": ["gnn"]},
        algorithm_settings={"PPO": {"train_batch_size": 200, "fault": "raise_once"},
                            "A2C": {"train_batch_size": 200, "fault": "nan"},
                            "TRPO": {"train_batch_size": 200, "fault": "raise"}},
        hpo={"trials_per_cell": 1}, final={"seeds": 1},
        execution={"storage": uri, "runner": FAULTY, "max_failures": 1, "checkpoint_every": 1},
    ))
    run = run_tournament(spec, progress=False, build_report=False)
    assert run == Path("runs") / "faults"
    trials = {r["cell_id"].split("-")[3] + "-" + r["phase"]: r for r in rows(run / "trials.csv")}
    # raise_once: retried from its checkpoint, then finished normally
    assert trials["PPO-tune"]["status"] == "ok" and trials["PPO-final"]["status"] == "ok"
    remote = tmp_path / "remote" / "faults"
    results = [json.loads(line) for p in (remote / "tune").rglob("result.json") for line in p.read_text().splitlines()]
    ppo_tune = [r for r in results if r.get("trial_key", "").startswith("myeloid-steer-Mo-PPO") and r["phase"] == "tune"]
    assert max(r["attempt"] for r in ppo_tune) == 1
    # NaN: recorded as failed with its reason, not retried, and its cell gets no final trials
    assert trials["A2C-tune"]["status"] == "failed" and "NaN" in trials["A2C-tune"]["fail_reason"]
    assert "A2C-final" not in trials
    a2c = [r for r in results if r.get("trial_key", "").startswith("myeloid-steer-Mo-A2C")]
    assert {r["attempt"] for r in a2c} == {0}
    # an error on every attempt: failed after max_failures retries, with the error named
    assert trials["TRPO-tune"]["status"] == "failed" and "InjectedFault" in trials["TRPO-tune"]["fail_reason"]
    status = json.loads((run / "status.json").read_text())
    assert status["phase"] == "done" and status["trials"]["failed"] == 2 and status["trials"]["done"] == 2
    study_states = {name.split("-")[3]: [t.state for t in s.trials] for name, s in studies(run).items()}
    assert study_states == {"PPO": [TrialState.COMPLETE], "A2C": [TrialState.FAIL], "TRPO": [TrialState.FAIL]}
    # the tables went to the URI too, next to the Tune experiment
    assert (remote / "trials.csv").read_text() == (run / "trials.csv").read_text()
    assert (remote / "tune").is_dir() and (remote / "optuna" / "studies.log").is_file()


def test_resume_after_the_driver_is_killed(tmp_path, ray_local):
    spec_file = tmp_path / "resume.yaml"
    data = tiny_ppo_spec(
        "resume", tmp_path / "runs",
        grid={"algorithm": ["PPO", "A2C"], "optimizer": ["adam"]},
        algorithm_settings={"PPO": {"train_batch_size": 200, "work_s": 0.4},
                            "A2C": {"train_batch_size": 200, "work_s": 0.4}},
        budget={"env_steps": 600}, hpo={"trials_per_cell": 2}, final={"seeds": 1},
        execution={"storage": str(tmp_path / "runs"), "runner": SCRIPTED, "num_cpus": 2, "checkpoint_every": 1},
    )
    spec_file.write_text(yaml.safe_dump(data))
    run = tmp_path / "runs" / "resume"
    kill_driver_after_trials(spec_file, run)
    before = {r["trial_id"]: r for r in rows(run / "trials.csv")}
    assert 2 <= len(before) < 6
    history = {name: [(t.number, t.params, t.value) for t in s.trials if t.state == TrialState.COMPLETE]
               for name, s in studies(run).items()}
    assert json.loads((run / "manifest.json").read_text())["status"] == "running"

    from tournament.engine.runner import resume_tournament

    resume_tournament(run, progress=False)
    after = {r["trial_id"]: r for r in rows(run / "trials.csv")}
    assert len(after) == 2 * (2 + 1)
    for key, row in before.items():
        assert after[key] == row  # not re-run: same CPU seconds, node, scores
    for name, study in studies(run).items():
        done = [(t.number, t.params, t.value) for t in study.trials if t.state == TrialState.COMPLETE]
        assert done[: len(history[name])] == history[name]  # the study kept its history
        assert len(done) == 2
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "finished" and len(manifest["sessions"]) == 2
    curves = rows(run / "curves.csv")
    keys = [(c["trial_id"], c["iteration"]) for c in curves]
    assert len(keys) == len(set(keys))
    assert all(len([k for k in keys if k[0] == t]) == 3 for t in after)  # 600 steps / 200 per iteration


@pytest.mark.slow
def test_tiny_tournament_on_a_two_node_cluster(tmp_path):
    """Two raylets on this machine; the driver joins with --address like on a real cluster."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        spec_file = tmp_path / "cluster.yaml"
        spec_file.write_text(yaml.safe_dump(tiny_ppo_spec("cluster", tmp_path / "runs")))
        out = subprocess.run(
            [sys.executable, "-m", "tournament.cli.main", "run", str(spec_file), "--quiet", "--address", cluster.address],
            capture_output=True, text=True, timeout=900,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        run = tmp_path / "runs" / "cluster"
        check_run_dir(run, n_cells=2, trials_per_cell=2, seeds=2)
        nodes = {r["node_id"] for r in rows(run / "trials.csv")}
        assert len(nodes) == 2  # one CPU per node, two trials at once: both nodes trained
    finally:
        cluster.shutdown()


def test_early_stopping_stops_weak_trials_of_a_cell_only_in_tuning(tmp_path, ray_local):
    spec = parse_spec(tiny_ppo_spec(
        "early", tmp_path,
        grid={"algorithm": ["PPO"], "optimizer": ["adam"], "module": ["gnn"]},
        algorithm_settings={"PPO": {"train_batch_size": 200}},
        budget={"env_steps": 1200},
        hpo={"trials_per_cell": 5, "sampler": "random", "space": {"adam": {"lr": {"choices": [3.0e-4, 1.0e-9]}}}},
        early_stopping={"enabled": True, "grace_iterations": 2, "min_trials": 1},
        final={"seeds": 1},
        execution={"storage": str(tmp_path), "runner": SCRIPTED, "max_concurrent": 1},
    ))
    run = run_tournament(spec, progress=False, build_report=False)
    trials = rows(run / "trials.csv")
    stopped = [r for r in trials if "stopped early" in r["fail_reason"]]
    hopeless = [r for r in trials if json.loads(r["hparams"])["lr"] == 1.0e-9]
    # a trial that cannot learn is stopped once its cell has peers; the first trial has none
    assert hopeless and all(r in stopped for r in hopeless)
    assert trials[0]["trial_id"].endswith("-t0") and trials[0] not in stopped
    assert all(r["phase"] == "tune" and r["status"] == "ok" and int(r["env_steps"]) < 1200 for r in stopped)
    final = [r for r in trials if r["phase"] == "final"]
    assert len(final) == 1 and int(final[0]["env_steps"]) == 1200 and json.loads(final[0]["hparams"])["lr"] == 3.0e-4
    (study,) = studies(run).values()
    assert sum(t.state == TrialState.PRUNED for t in study.trials) == len(stopped)


def test_load_bench_drives_the_engine_through_every_trial_of_a_grid():
    """The load bench's engine loop (no Ray) on a small grid: every tuning slot and final seed once."""
    from tournament.cli.bench.load_bench import bench_engine

    result = bench_engine(trials_per_cell=2, final_seeds=1, targets=("Mo",), max_perturb=(1,))
    assert result["cells"] == 6 * 4 * 2 and result["trials"] == result["cells"] * 3
    assert result["journal_mib"] > 0


def test_tune_logs_choose_what_tune_writes_besides_result_json(tmp_path, ray_local):
    spec = parse_spec(tiny_ppo_spec(
        "logs", tmp_path,
        grid={"algorithm": ["PPO"], "optimizer": ["adam"], "module": ["mlp"]},
        hpo={"trials_per_cell": 1}, final={"seeds": 1},
        baselines={"names": []},
        execution={"storage": str(tmp_path), "runner": SCRIPTED, "max_concurrent": 1, "tune_logs": []},
    ))
    run = run_tournament(spec, progress=False, build_report=False)
    tune_files = {p.name for p in (run / "tune").rglob("*") if p.is_file()}
    assert "result.json" in tune_files and "progress.csv" not in tune_files
    assert not any(name.startswith("events.out.tfevents") for name in tune_files)
    assert {r["status"] for r in rows(run / "trials.csv")} == {"ok"}
