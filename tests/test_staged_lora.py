"""Multi-stage algorithms: TRPO_to_PPO / PPO_to_TRPO weight hand-over, one curve, checkpoints
in either stage; LoRA adapters, their stages and what each stage may change."""

from __future__ import annotations

import pytest
import ray
import torch

from algorithms.registry import algorithm_stages
from algorithms.staged import stage_plan, transfer_weights
from algorithms.trial import TrialConfig, TrialRunner
from envs.errors import UserInputError

FAST = {"num_envs_per_env_runner": 4}


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield


def staged_trial(algorithm: str = "TRPO_to_PPO", module: str = "mlp", **hparams) -> TrialConfig:
    h = {**FAST, "first_stage_share": 0.25, "PPO": {"minibatch_size": 50, "num_epochs": 1}, "TRPO": {"n_critic_updates": 1}}
    h.update(hparams)
    return TrialConfig(target="Mo", algorithm=algorithm, module=module, env_steps=400, algo_hparams=h, seed=1)


def module_state(algo) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(v).clone() for k, v in algo.learner_group._learner.module["default_policy"].get_state().items()}


# ---- TRPO_to_PPO / PPO_to_TRPO --------------------------------------------------------------


def test_stage_plans_and_their_errors():
    assert stage_plan("TRPO_to_PPO", {}) == [("TRPO", 0.01), ("PPO", 0.99)]
    assert stage_plan("PPO_to_TRPO", {"first_stage_share": 0.2}) == [("PPO", 0.2), ("TRPO", 0.8)]
    assert stage_plan("TRPO_to_PPO", {"stages": [["PPO", 0.5], ["TRPO", 0.5]]}) == [("PPO", 0.5), ("TRPO", 0.5)]
    with pytest.raises(UserInputError, match="SAC"):
        stage_plan("TRPO_to_PPO", {"stages": [["SAC", 0.5], ["PPO", 0.5]]})
    with pytest.raises(UserInputError):
        stage_plan("TRPO_to_PPO", {"first_stage_share": 1.5})
    with pytest.raises(UserInputError, match="sum to 1"):
        bad = {"stages": [["TRPO", 0.3], ["PPO", 0.3]]}
        algorithm_stages(TrialConfig(target="Mo", algorithm="TRPO_to_PPO", module="mlp", algo_hparams=bad))


@pytest.mark.parametrize("module", ["mlp", "gnn"])
def test_transfer_moves_every_weight(module):
    stages = algorithm_stages(staged_trial(module=module))
    assert [s.name for s in stages] == ["TRPO", "PPO"]
    # The TRPO stage samples its whole 25% share (100 steps) in one batch.
    assert stages[0].config.train_batch_size_per_learner == 100
    first = stages[0].config.build_algo()
    second = stages[1].config.build_algo()
    try:
        first.train()
        trained, fresh = module_state(first), module_state(second)
        assert any(not torch.equal(trained[k], fresh[k]) for k in trained)
        keys = transfer_weights(first, second)
        assert set(keys) == set(trained)
        after = module_state(second)
        for k in trained:
            torch.testing.assert_close(after[k], trained[k], rtol=0, atol=0)
    finally:
        first.stop()
        second.stop()


def test_transfer_refuses_modules_with_other_keys():
    small = algorithm_stages(staged_trial())[0].config.build_algo()
    deeper = TrialConfig(target="Mo", algorithm="PPO", module="mlp", module_options={"layers": 3}, algo_hparams=dict(FAST))
    other = algorithm_stages(deeper)[0].config.build_algo()
    try:
        with pytest.raises(ValueError, match="differ"):
            transfer_weights(small, other)
    finally:
        small.stop()
        other.stop()


@pytest.mark.parametrize("algorithm", ["TRPO_to_PPO", "PPO_to_TRPO"])
def test_staged_trial_one_curve_and_resume_in_either_stage(algorithm, tmp_path):
    config = staged_trial(algorithm)
    runner = TrialRunner(config)
    first_name, second_name = [s.name for s in runner.stages]
    results = []
    try:
        results.append(runner.train_iteration())
        assert results[-1]["stage"] == first_name
        runner.save(str(tmp_path / "first"))
        first_weights = module_state(runner.algo)
        while not runner.done:
            results.append(runner.train_iteration())
            if results[-1]["stage"] == second_name and not (tmp_path / "second").exists():
                runner.save(str(tmp_path / "second"))
                second_weights = module_state(runner.algo)
                second_steps = runner.env_steps
    finally:
        runner.stop()
    steps = [r["env_steps"] for r in results]
    assert steps == sorted(steps) and steps[-1] >= config.env_steps
    names = [r["stage"] for r in results]
    assert names[0] == first_name and names[-1] == second_name
    assert names == sorted(names, key=[first_name, second_name].index)  # one switch, no way back

    resumed = TrialRunner(config)
    try:
        resumed.restore(str(tmp_path / "second"))
        assert resumed.stage.name == second_name and resumed.env_steps == second_steps
        for k, v in module_state(resumed.algo).items():
            torch.testing.assert_close(v, second_weights[k], rtol=0, atol=0)
        resumed.restore(str(tmp_path / "first"))
        assert resumed.stage.name == first_name
        for k, v in module_state(resumed.algo).items():
            torch.testing.assert_close(v, first_weights[k], rtol=0, atol=0)
        again = resumed.train_iteration()
        assert again["stage"] in (first_name, second_name) and not again["nan_loss"]
    finally:
        resumed.stop()
