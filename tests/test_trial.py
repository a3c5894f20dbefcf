"""Trials end to end: configs from the registry, PPO on CellFateEnv, optimizers in the learner,
budgets, stages, greedy evaluation and checkpoints. Budgets are a few hundred env steps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.learner.learner import DEFAULT_OPTIMIZER

from algorithms import registry
from algorithms.modules import GNNModule, MLPModule
from algorithms.ppo import PPOTorchLearner
from algorithms.lora import read_pretrained
from algorithms.common import Stage, as_array, copy_module_weights, learner_module, local_learner
from algorithms.registry import build_algorithm_config
from algorithms.trial import TrialRunner
from algorithms.trial_plan import TrialPlan
from envs.errors import UserInputError
from envs.world import World, load_world
from optim import ASGDAdam, ASGDAmsgrad

TINY = {"train_batch_size": 200, "minibatch_size": 100, "num_epochs": 1, "num_envs_per_env_runner": 4}
OPTIMIZERS = {
    "adam": (torch.optim.Adam, {"lr": 7e-4}),
    "asgd_adam": (ASGDAdam, {"lr_min": 2e-5, "lr_max": 3e-3}),
    "asgd_amsgrad": (ASGDAmsgrad, {"lr_min": 2e-5, "lr_max": 3e-3}),
}
METRIC_KEYS = {"env_steps", "stage", "episode_return_mean", "policy_loss", "frac_lr_max", "lr_mean", "nan_loss"}


pytestmark = pytest.mark.usefixtures("ray_session")


@pytest.fixture(scope="module")
def world() -> World:
    return load_world("myeloid")


def trial(world, **kw) -> TrialPlan:
    base = dict(world=world, target="Mo", env_steps=200, algo_hparams=dict(TINY), seed=0)
    base.update(kw)
    return TrialPlan(**base)


def learner_of(runner: TrialRunner):
    return local_learner(runner.algo)


def test_build_algorithm_config(world):
    cfg = build_algorithm_config(trial(world, module="mlp", num_env_runners=0))
    assert isinstance(cfg, PPOConfig)
    assert cfg.rl_module_spec.module_class is MLPModule
    assert cfg.learner_class is PPOTorchLearner
    assert isinstance(cfg.env_config["world"], World)  # passed through, never reloaded by workers
    assert cfg.env_config["observation"] == "flat"
    assert cfg.train_batch_size_per_learner == 200 and cfg.num_epochs == 1
    assert cfg.num_env_runners == 0 and cfg.seed == 0
    gnn = build_algorithm_config(trial(world, module="gnn", module_options={"conv": "gat"}))
    assert gnn.rl_module_spec.module_class is GNNModule
    assert gnn.rl_module_spec.model_config["conv"] == "gat"
    assert gnn.env_config["observation"] == "graph"


def test_registry_errors(world, monkeypatch):
    with pytest.raises(UserInputError, match="DQN.*PPO"):
        build_algorithm_config(trial(world, algorithm="DQN"))
    with pytest.raises(UserInputError, match="num_epoch"):
        build_algorithm_config(trial(world, algo_hparams={"num_epoch": 3}))
    with pytest.raises(UserInputError, match="optimizer"):
        build_algorithm_config(trial(world, optimizer="sgd"))
    with pytest.raises(UserInputError, match="lr_min"):
        build_algorithm_config(trial(world, optimizer="asgd_adam", optimizer_hparams={"lr_min": 1e-2, "lr_max": 1e-3}))
    with pytest.raises(UserInputError, match="module"):
        build_algorithm_config(trial(world, module="cnn"))
    with pytest.raises(UserInputError, match="num_epochs must be int"):
        build_algorithm_config(trial(world, algo_hparams={"num_epochs": "three"}))


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("module", ["gnn", "mlp"])
def test_one_iteration_per_module_and_optimizer(world, module, optimizer):
    cls, hparams = OPTIMIZERS[optimizer]
    runner = TrialRunner(trial(world, module=module, optimizer=optimizer, optimizer_hparams=hparams))
    try:
        opt = learner_of(runner).get_optimizer(DEFAULT_MODULE_ID, DEFAULT_OPTIMIZER)
        assert type(opt) is cls
        for group in opt.param_groups:
            for key, value in hparams.items():
                assert group[key] == value  # RLlib's config.lr did not overwrite ours
        metrics = runner.train_iteration()
        assert METRIC_KEYS <= set(metrics)
        assert metrics["env_steps"] >= 200 and metrics["stage"] == "PPO"
        assert not metrics["nan_loss"] and math.isfinite(metrics["policy_loss"])
        if optimizer == "adam":
            assert math.isnan(metrics["frac_lr_max"]) and metrics["lr_mean"] == pytest.approx(7e-4)
        else:
            assert 0.0 < metrics["frac_lr_max"] < 1.0  # both learning rates were in use
            assert 2e-5 < metrics["lr_mean"] < 3e-3
        assert runner.done
        result = runner.evaluate(n_episodes=5, seed=100)
        assert 0.0 <= result["score"] <= 1.0
        assert len(result["fates"]) == len(result["perturbation_sets"]) == 5
        assert all(len(s) <= 2 for s in result["perturbation_sets"])
    finally:
        runner.stop()


def test_predict_task_trains_and_scores(world):
    runner = TrialRunner(trial(world, task="predict", target=None, module="gnn"))
    try:
        runner.train_iteration()
        result = runner.evaluate(n_episodes=6, seed=0)
        assert 0.0 <= result["score"] <= 1.0
        assert set(result["fates"]) <= set(world.fate_labels)
    finally:
        runner.stop()


def test_ppo_trains_for_a_few_iterations_to_its_budget(world):
    runner = TrialRunner(trial(world, module="mlp", env_steps=600))
    try:
        steps = []
        while not runner.done:
            steps.append(runner.train_iteration()["env_steps"])
        assert steps == sorted(steps) and len(steps) == 3 and steps[-1] >= 600
        with pytest.raises(RuntimeError, match="budget"):
            runner.train_iteration()
    finally:
        runner.stop()


def test_save_restore_reproduces_greedy_evaluation(world, tmp_path):
    config = trial(world, module="gnn", env_steps=400)
    first = TrialRunner(config)
    first.train_iteration()
    before = first.evaluate(n_episodes=8, seed=7)
    first.save(str(tmp_path))
    # LoRA's pretrained reader finds the current stage's checkpoint in a trial checkpoint.
    saved, weights = read_pretrained(str(tmp_path)), first.module().get_state()
    assert saved.keys() == weights.keys() and all(np.array_equal(saved[k], as_array(weights[k])) for k in saved)
    first.train_iteration()  # moves the weights on, so restoring must bring them back
    first.stop()
    second = TrialRunner(config)
    try:
        second.restore(str(tmp_path))
        assert second.env_steps == 200 and second.iteration == 1 and not second.done
        after = second.evaluate(n_episodes=8, seed=7)
        assert after == before
        assert second.train_iteration()["env_steps"] >= 400
    finally:
        second.stop()


def test_two_stages_switch_and_transfer_weights(world, monkeypatch):
    """The stage abstraction the staged algorithms use: budget split, names, weight transfer."""
    seen = {}

    def transfer(previous, new):
        seen["keys"] = copy_module_weights(previous, new)
        seen["source"] = learner_module(previous).get_state()
        seen["target"] = learner_module(new).get_state()

    def stages(config):
        first = build_algorithm_config(config, "PPO", stage_hparams=dict(TINY))
        second = build_algorithm_config(config, "PPO", stage_hparams={**TINY, "num_epochs": 2})
        return [Stage("first", first, 0.5), Stage("second", second, 0.5, transfer)]

    monkeypatch.setitem(registry.ALGORITHMS, "PPO_to_TRPO", lambda config, hparams: stages(config))
    runner = TrialRunner(trial(world, module="mlp", algorithm="PPO_to_TRPO", env_steps=400))
    try:
        names = []
        while not runner.done:
            metrics = runner.train_iteration()
            names.append((metrics["stage"], metrics["env_steps"]))
        assert names == [("first", 200), ("second", 400)]
        assert seen["keys"] and set(seen["keys"]) == set(seen["source"])
        for key in seen["keys"]:
            np.testing.assert_array_equal(seen["target"][key], seen["source"][key])
    finally:
        runner.stop()


def test_resource_request(world):
    request = TrialRunner.resource_request(trial(world, module="mlp"))
    assert request.required_resources.get("CPU", 0) >= 1
