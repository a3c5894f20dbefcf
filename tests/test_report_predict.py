"""Fate-prediction metrics of the predict task: hand-computed AUPRC / macro-F1, a real module's
evaluation, and their per-stage view in the report."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from algorithms.evaluation import average_precision, evaluate_module, macro_f1, prediction_metrics
from algorithms.modules import OBSERVATION, model_config, module_class
from envs.cell_fate_env import CellFateEnv
from envs.world import load_world


def test_average_precision_by_hand():
    # thresholds 0.9, 0.8, 0.7, 0.1: (recall, precision) = (.5, 1), (.5, .5), (1, 2/3), (1, .5)
    assert average_precision(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1])) == pytest.approx(0.5 + 0.5 * 2 / 3)
    # all scores tied: one threshold, AP is the prevalence
    assert average_precision(np.array([1, 0, 0, 0]), np.full(4, 0.3)) == pytest.approx(0.25)
    # a perfect ranking scores 1, the reversed one less
    assert average_precision(np.array([1, 1, 0]), np.array([0.9, 0.8, 0.1])) == pytest.approx(1.0)
    assert average_precision(np.array([1, 1, 0]), np.array([0.1, 0.2, 0.9])) < 0.6
    assert np.isnan(average_precision(np.array([0, 0]), np.array([0.1, 0.2])))


def test_macro_f1_by_hand():
    # class 0: tp 1, fn 1 -> 2/3; class 1: tp 1, fp 2 -> 1/2; class 2: tp 0, fn 1 -> 0
    assert macro_f1(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1])) == pytest.approx((2 / 3 + 0.5 + 0) / 3)
    assert macro_f1(np.array([1, 2, 2]), np.array([1, 2, 2])) == 1.0


def test_prediction_metrics_of_one_stage():
    y = np.array([0, 1, 1, 2])
    probs = np.array([[0.5, 0.45, 0.05], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [0.1, 0.1, 0.8]])
    m = prediction_metrics(y, probs)
    assert m["accuracy"] == pytest.approx(0.75)
    # argmax [0, 1, 0, 2]: F1 class 0 = 2/3, class 1 = 2/3, class 2 = 1
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    # AP class 0: its positive ties a negative at 0.5 -> precision 1/2 at recall 1; class 1: .7 (+), .45 (-),
    # .4 (+) -> (1 + 2/3) / 2; class 2: 1
    assert m["auprc"] == pytest.approx((0.5 + (1 + 2 / 3) / 2 + 1) / 3)


@pytest.fixture(scope="module")
def predict_setup():
    world = load_world("myeloid")
    cfg = {"world": world, "task": "predict", "max_perturb": 2, "observation": OBSERVATION["gnn"]}
    env = CellFateEnv(dict(cfg))
    torch.manual_seed(0)
    module = module_class("gnn")(observation_space=env.observation_space, action_space=env.action_space,
                                 model_config=model_config(world, "predict", env.kinds, "gnn", {}))
    return cfg, env, module


def test_evaluate_module_records_per_stage_metrics(predict_setup):
    cfg, env, module = predict_setup
    ev = evaluate_module(module, cfg, n_episodes=12, seed=5)
    pm = ev["predict_metrics"]
    assert pm["n_episodes"] == 12 and sum(pm["fate_counts"]) == 12
    assert [s["stage"] for s in pm["stages"]] == list(range(env.n_stages))
    # the task's score is the mean over episodes of the per-stage accuracy: the mean of the stages' accuracies
    assert ev["score"] == pytest.approx(np.mean([s["accuracy"] for s in pm["stages"]]))
    for s in pm["stages"]:
        assert 0.0 <= s["macro_f1"] <= 1.0 and 0.0 <= s["auprc"] <= 1.0
    # the realized fates are the ones the episodes report
    assert sorted(pm["fates"]) == sorted(set(ev["fates"]))
    assert evaluate_module(module, cfg, n_episodes=12, seed=5)["predict_metrics"] == pm  # seeded


def test_steer_evaluation_has_no_predict_metrics(predict_setup):
    world = load_world("myeloid")
    cfg = {"world": world, "task": "steer", "target": "Mo", "max_perturb": 1, "observation": OBSERVATION["gnn"]}
    env = CellFateEnv(dict(cfg))
    module = module_class("gnn")(observation_space=env.observation_space, action_space=env.action_space,
                                 model_config=model_config(world, "steer", env.kinds, "gnn", {}))
    assert "predict_metrics" not in evaluate_module(module, cfg, n_episodes=3, seed=0)
