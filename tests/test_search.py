"""The composite searcher: one Optuna study per cell, round-robin over cells, concurrency, resume;
and early stopping that compares a trial only with its own cell. Cheap function trainables, no RLlib."""

from __future__ import annotations

import json
import math
import time

import optuna
import pytest
from optuna.trial import TrialState

from tournament.engine.early_stopping import CellMedianStopping
from tournament.engine.journal import journal_storage
from tournament.engine.search import CellSearcher, outcome, spec_sampler

CELLS = ["a", "b", "c"]


def sample(cell_id, trial):
    return {"x": trial.suggest_float("x", 0.0, 1.0)}


def make_config(cell_id, phase, params, seed, key):
    return {"cell": cell_id, "phase": phase, "x": params["x"], "seed": seed, "key": key}


def finished(score):
    return {"score": score, "finished": True}


def test_round_robin_one_study_per_cell_then_finals(tmp_path):
    s = CellSearcher(CELLS, 2, tmp_path / "studies.log", sample, make_config, final_seeds=[100, 101])
    first = [s.suggest(f"t{i}") for i in range(3)]
    assert [c["cell"] for c in first] == CELLS  # every cell before any cell's second trial
    assert {c["seed"] for c in first} == {0} and first[0]["key"] == "a-t0"
    rest = [s.suggest(f"t{i}") for i in range(3, 6)]
    assert [c["cell"] for c in rest] == CELLS and {c["seed"] for c in rest} == {1}
    assert s.suggest("t6") is None  # budget handed out, results pending: wait
    for i, c in enumerate(first + rest):
        s.on_trial_complete(f"t{i}", finished(c["x"] if c["cell"] != "c" else 0.5))
    finals = [s.suggest(f"f{i}") for i in range(6)]
    assert [(c["cell"], c["phase"], c["seed"]) for c in finals] == [
        (cell, "final", seed) for cell in CELLS for seed in (100, 101)
    ]
    # a final trial re-trains the best tuning parameters of its own cell
    for c in finals:
        study = s.study(c["cell"])
        assert c["x"] == pytest.approx(study.best_trial.params["x"])
    assert s.suggest("f6") == CellSearcher.FINISHED
    storage = journal_storage(tmp_path / "studies.log")
    summaries = {st.study_name: st.n_trials for st in optuna.get_all_study_summaries(storage)}
    assert summaries == {"a": 2, "b": 2, "c": 2}
    # each study was told only the results of its own cell's trials
    for cell in CELLS:
        values = [t.value for t in s.study(cell).trials]
        expected = [c["x"] if cell != "c" else 0.5 for c in first + rest if c["cell"] == cell]
        assert values == pytest.approx(expected)


def test_failed_and_stopped_trials_enter_the_study_accordingly(tmp_path):
    s = CellSearcher(["a"], 3, tmp_path / "s.log", sample, make_config, final_seeds=[9])
    for i in range(3):
        s.suggest(f"t{i}")
    s.on_trial_complete("t0", {"score": 0.3, "failed": True, "fail_reason": "NaN loss"})
    s.on_trial_complete("t1", {"score": 0.2, "finished": False})  # stopped early
    s.on_trial_complete("t2", None, error=True)
    states = [t.state for t in s.study("a").trials]
    assert states == [TrialState.FAIL, TrialState.PRUNED, TrialState.FAIL]
    assert s.study("a").trials[0].user_attrs["fail_reason"] == "NaN loss"
    # no finished trial: the cell gets no final seeds, and the search is over
    assert s.suggest("f0") == CellSearcher.FINISHED
    assert outcome({"score": math.nan, "finished": True}, False) == (TrialState.FAIL, None)


def test_resume_continues_studies_and_reruns_only_interrupted(tmp_path):
    path = tmp_path / "studies.log"
    s = CellSearcher(["a", "b"], 3, path, sample, make_config, final_seeds=[50])
    handed = {f"t{i}": s.suggest(f"t{i}") for i in range(4)}  # a0 b0 a1 b1
    s.on_trial_complete("t0", finished(0.1))
    s.on_trial_complete("t1", finished(0.2))
    s.on_trial_complete("t2", finished(0.3))
    # t3 (b-t1) is running when the driver dies; a new searcher opens the same journal
    s2 = CellSearcher(["a", "b"], 3, path, sample, make_config, final_seeds=[50])
    nxt = [s2.suggest(f"u{i}") for i in range(3)]
    keys = [c["key"] for c in nxt]
    assert sorted(keys) == ["a-t2", "b-t1", "b-t2"]
    rerun = next(c for c in nxt if c["key"] == "b-t1")
    assert rerun["x"] == pytest.approx(handed["t3"]["x"]) and rerun["seed"] == handed["t3"]["seed"]
    assert s2.suggest("u3") is None
    for i, c in enumerate(nxt):
        s2.on_trial_complete(f"u{i}", finished(0.5 + i / 10))
    study_b = s2.study("b")
    interrupted = [t for t in study_b.trials if t.user_attrs.get("interrupted")]
    assert len(interrupted) == 1 and interrupted[0].state == TrialState.FAIL
    complete = [t for t in study_b.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 3 and complete[0].value == pytest.approx(0.2)  # history kept
    assert len([t for t in s2.study("a").trials if t.state == TrialState.COMPLETE]) == 3
    finals = [s2.suggest(f"f{i}") for i in range(2)]
    assert {(c["cell"], c["phase"]) for c in finals} == {("a", "final"), ("b", "final")}
    # a third searcher, told that a's final already ran, only hands out b's
    s3 = CellSearcher(["a", "b"], 3, path, sample, make_config, final_seeds=[50], final_done={("a", 50)})
    assert s3.suggest("v0")["key"] == "b-s50"
    assert s3.suggest("v1") == CellSearcher.FINISHED


def test_asgd_samples_keep_lr_min_at_most_lr_max():
    from tournament.engine.cells import expand_grid
    from tournament.engine.spec import parse_spec

    spec = parse_spec({"name": "t", "target": "Mo", "grid": {"optimizer": ["asgd_adam", "adam"]},
                       "algorithm_settings": {"PPO": {"train_batch_size": 200}}, "budget": {"env_steps": 400},
                       "execution": {"runner": "tournament.engine.scripted:ScriptedRunner"}})
    cells = {c.cell_id: c for c in expand_grid(spec)}
    fn = spec_sampler(spec, cells)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    asgd = next(c for c in cells if "asgd" in c)
    for _ in range(200):
        p = fn(asgd, study.ask())["optimizer_hparams"]
        assert set(p) == {"lr_min", "lr_max"} and 1e-5 <= p["lr_min"] <= p["lr_max"] <= 1e-3 * 30
    adam = next(c for c in cells if "-adam-" in c)
    assert set(fn(adam, study.ask())["optimizer_hparams"]) == {"lr"}


class _Trial:
    def __init__(self, trial_id, cell, phase="tune"):
        self.trial_id = trial_id
        self.config = {"meta": {"cell_id": cell, "phase": phase}}


def test_early_stopping_compares_only_within_a_cell():
    rule = CellMedianStopping(grace_iterations=2, min_trials=2)
    good = [_Trial("g1", "fast"), _Trial("g2", "fast")]
    for t in good:
        for it in (1, 2, 3):
            assert rule.on_trial_result(None, t, {"training_iteration": it, "score": 0.9}) == "CONTINUE"
    # a slow cell's trials are far below the fast cell's, but have no peers of their own yet
    slow = _Trial("s1", "slow")
    for it in (1, 2, 3):
        assert rule.on_trial_result(None, slow, {"training_iteration": it, "score": 0.1}) == "CONTINUE"
    # a weak trial of the fast cell is stopped after the grace period
    weak = _Trial("w", "fast")
    assert rule.on_trial_result(None, weak, {"training_iteration": 1, "score": 0.2}) == "CONTINUE"
    assert rule.on_trial_result(None, weak, {"training_iteration": 2, "score": 0.2}) == "STOP"
    # final-phase trials are never stopped
    final = _Trial("f", "fast", phase="final")
    for it in (1, 2, 3):
        assert rule.on_trial_result(None, final, {"training_iteration": it, "score": 0.0}) == "CONTINUE"


# ---- under Ray Tune: concurrency and studies with a cheap trainable ------------------------------


def _cheap_trainable(config):
    from ray import tune

    with open(config["log"], "a") as fh:
        fh.write(json.dumps({"key": config["key"], "cell": config["cell"], "x": config["x"], "event": "start",
                             "t": time.time()}) + "\n")
    time.sleep(0.2)
    with open(config["log"], "a") as fh:
        fh.write(json.dumps({"key": config["key"], "event": "end", "t": time.time()}) + "\n")
    tune.report({"score": config["x"], "finished": True})


@pytest.fixture(scope="module")
def ray_shipping_this_module(ray_local):
    """The trainable lives in this test module, which workers cannot import: ship it by value."""
    import sys

    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield


def test_under_tune_every_cell_its_own_study_and_concurrency_respected(tmp_path, ray_shipping_this_module):
    from ray import tune

    log = tmp_path / "events.jsonl"

    def config_fn(cell_id, phase, params, seed, key):
        return {**make_config(cell_id, phase, params, seed, key), "log": str(log)}

    searcher = CellSearcher(["a", "b"], 3, tmp_path / "studies.log", sample, config_fn, final_seeds=[7])
    tuner = tune.Tuner(
        tune.with_resources(_cheap_trainable, {"cpu": 0.5}),
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=-1, max_concurrent_trials=2, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "tune"), name="exp", verbose=0),
    )
    results = tuner.fit()
    assert len(results) == 2 * 3 + 2
    events = [json.loads(line) for line in log.read_text().splitlines()]
    # 4 slots of 0.5 CPU would allow 4 at once; the limit of 2 must hold at every start
    running, peak = set(), 0
    for e in sorted(events, key=lambda e: (e["t"], e["event"] == "start")):
        if e["event"] == "start":
            running.add(e["key"])
            peak = max(peak, len(running))
        else:
            running.discard(e["key"])
    assert peak <= 2
    starts = [e for e in events if e["event"] == "start"]
    for cell in ("a", "b"):
        study = searcher.study(cell)
        tuned = sorted(e["x"] for e in starts if e["cell"] == cell and "-t" in e["key"])
        assert sorted(t.params["x"] for t in study.trials) == pytest.approx(tuned)
        assert all(t.state == TrialState.COMPLETE for t in study.trials) and len(study.trials) == 3
        final = [e for e in starts if e["key"] == f"{cell}-s7"]
        assert len(final) == 1 and final[0]["x"] == pytest.approx(study.best_trial.params["x"])
