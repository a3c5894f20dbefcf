"""Every algorithm name x module x optimizer trains through the registry and TrialRunner.

The fast set covers each algorithm with both modules (GNN on steer, MLP on predict)
and cycles the optimizers; the full cross product is marked slow.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from algorithms.common import local_learner
from algorithms.registry import ALGORITHM_NAMES, ALGORITHMS, MODULE_KINDS, build_algorithm_config
from algorithms.trial import TrialRunner
from algorithms.trial_plan import TrialPlan
from envs.errors import UserInputError
from optim import OPTIMIZER_NAMES, ASGDAdam, ASGDAmsgrad

PPO_TINY = {"train_batch_size": 100, "minibatch_size": 50, "num_epochs": 1}
TINY: dict[str, tuple[int, dict]] = {  # algorithm -> (env_steps, algo_hparams)
    "PPO": (100, dict(PPO_TINY)),
    "A2C": (100, {"train_batch_size": 100}),
    "TRPO": (100, {"train_batch_size": 100, "batch_size": 50, "n_critic_updates": 1}),
    "SAC": (64, {"batch_size": 16, "learning_starts": 16, "train_freq": 4, "steps_per_iteration": 64}),
    "TRPO_to_PPO": (200, {"first_stage_share": 0.5, "TRPO": {"n_critic_updates": 1}, "PPO": {"num_epochs": 1, "minibatch_size": 50}}),
    "PPO_to_TRPO": (200, {"first_stage_share": 0.5, "TRPO": {"n_critic_updates": 1}, "PPO": {"num_epochs": 1, "minibatch_size": 50}}),
    "LoRA_staged": (300, {"stages": {"pretrain": 1 / 3, "lora_convex": 1 / 3, "lora_nonconvex": 1 / 3}, "PPO": dict(PPO_TINY)}),
}
STAGES = {
    "TRPO_to_PPO": ["TRPO", "PPO"],
    "PPO_to_TRPO": ["PPO", "TRPO"],
    "LoRA_staged": ["pretrain", "lora_convex", "lora_nonconvex"],
}
OPTIMIZERS = {
    "adam": ({"lr": 1e-3}, torch.optim.Adam, False),
    "amsgrad": ({"lr": 1e-3}, torch.optim.Adam, True),
    "asgd_adam": ({"lr_min": 1e-4, "lr_max": 1e-3}, ASGDAdam, None),
    "asgd_amsgrad": ({"lr_min": 1e-4, "lr_max": 1e-3}, ASGDAmsgrad, None),
}
FAST = [
    (algo, module, task, OPTIMIZER_NAMES[(2 * i + j) % len(OPTIMIZER_NAMES)])
    for i, algo in enumerate(ALGORITHM_NAMES)
    for j, (module, task) in enumerate([("gnn", "steer"), ("mlp", "predict")])
]
FULL = [
    pytest.param(algo, module, "steer", opt, marks=pytest.mark.slow)
    for algo, module, opt in itertools.product(ALGORITHM_NAMES, MODULE_KINDS, OPTIMIZER_NAMES)
]


pytestmark = pytest.mark.usefixtures("ray_session")


def test_every_name_is_available():
    assert tuple(ALGORITHMS) == ALGORITHM_NAMES and all(callable(b) for b in ALGORITHMS.values())
    assert {a for a, *_ in FAST} == set(ALGORITHM_NAMES)
    assert {o for *_, o in FAST} == set(OPTIMIZER_NAMES)


@pytest.mark.parametrize("algorithm", [a for a in ALGORITHM_NAMES if a != "PPO"])
def test_unknown_hyperparameter_is_a_user_error(algorithm):
    with pytest.raises(UserInputError, match="trian_batch_size"):
        config = TrialPlan(target="Mo", algorithm=algorithm, module="mlp", algo_hparams={"trian_batch_size": 10})
        build_algorithm_config(config)


def _check_optimizers(runner: TrialRunner, optimizer: str) -> None:
    _, cls, amsgrad = OPTIMIZERS[optimizer]
    named = dict(local_learner(runner.algo).get_optimizers_for_module("default_policy"))
    assert named
    for opt in named.values():
        assert type(opt) is cls
        if amsgrad is not None:
            assert all(g["amsgrad"] is amsgrad for g in opt.param_groups)


def _train(algorithm: str, module: str, task: str, optimizer: str) -> None:
    env_steps, hparams = TINY[algorithm]
    config = TrialPlan(
        task=task,
        target="Mo" if task == "steer" else None,
        algorithm=algorithm,
        module=module,
        optimizer=optimizer,
        optimizer_hparams=OPTIMIZERS[optimizer][0],
        algo_hparams={**hparams, "num_envs_per_env_runner": 4},
        env_steps=env_steps,
        seed=3,
    )
    runner = TrialRunner(config)
    try:
        start = {k: v.detach().clone() for k, v in runner.module().named_parameters()}
        _check_optimizers(runner, optimizer)
        results = []
        while not runner.done:
            results.append(runner.train_iteration())
            _check_optimizers(runner, optimizer)
            assert not results[-1]["nan_loss"], results[-1]
            assert math.isfinite(results[-1]["policy_loss"]), results[-1]
            if optimizer.startswith("asgd"):
                assert 0.0 <= results[-1]["frac_lr_max"] <= 1.0
        assert list(dict.fromkeys(r["stage"] for r in results)) == STAGES.get(algorithm, [algorithm])
        assert results[-1]["env_steps"] >= env_steps
        if algorithm not in STAGES:  # a stage switch builds a new module
            moved = [k for k, v in runner.module().named_parameters() if k in start and not torch.equal(v.detach(), start[k])]
            assert moved
        scored = runner.evaluate(n_episodes=3, seed=100)
        assert 0.0 <= scored["score"] <= 1.0 and len(scored["fates"]) == 3
    finally:
        runner.stop()


@pytest.mark.parametrize("algorithm,module,task,optimizer", FAST)
def test_trains_one_budget(algorithm, module, task, optimizer):
    _train(algorithm, module, task, optimizer)


@pytest.mark.parametrize("algorithm,module,task,optimizer", FULL)
def test_trains_one_budget_full_grid(algorithm, module, task, optimizer):
    _train(algorithm, module, task, optimizer)


# ---- SAC specifics ---------------------------------------------------------------------------

from ray.rllib.algorithms.sac.sac_learner import ACTION_LOG_PROBS, ACTION_PROBS, QF_PREDS  # noqa: E402
from ray.rllib.core.columns import Columns  # noqa: E402

from algorithms.sac import SACGNNModule, SACMLPModule  # noqa: E402


def test_sac_config_carries_the_seed_settings():
    config = build_algorithm_config(TrialPlan(target="Mo", algorithm="SAC", module="gnn"))
    assert config.rl_module_spec.module_class is SACGNNModule
    assert config.rl_module_spec.model_config["q_heads"] == 2
    assert config.train_batch_size_per_learner == 256 and config.tau == 0.005 and config.gamma == 0.99
    assert config.replay_buffer_config["capacity"] == 1_000_000
    assert config.replay_buffer_config["type"] == "EpisodeReplayBuffer"
    assert config.training_intensity == 256  # one gradient step of 256 per env step
    assert config.num_steps_sampled_before_learning_starts == 100
    assert config.initial_alpha == 1.0 and config.target_entropy == "auto"
    assert config.target_network_update_freq == 0  # every gradient step
    other = build_algorithm_config(
        TrialPlan(target="Mo", algorithm="SAC", module="mlp", algo_hparams={"train_freq": 4, "gradient_steps": 2, "ent_coef": "auto_0.1"})
    )
    assert other.rl_module_spec.module_class is SACMLPModule
    assert other.training_intensity == 128 and other.initial_alpha == pytest.approx(0.1)
    with pytest.raises(UserInputError, match="ent_coef"):
        build_algorithm_config(TrialPlan(target="Mo", algorithm="SAC", module="mlp", algo_hparams={"ent_coef": 0.2}))


def test_sac_optimizers_hold_their_groups():
    env_steps, hparams = TINY["SAC"]
    config = TrialPlan(target="Mo", algorithm="SAC", module="mlp", optimizer="asgd_amsgrad",
                         optimizer_hparams=OPTIMIZERS["asgd_amsgrad"][0],
                         algo_hparams={**hparams, "optimizer_hparams_by_group": {"alpha": {"lr_min": 1e-3, "lr_max": 1e-2}}},
                         env_steps=env_steps)
    runner = TrialRunner(config)
    try:
        learner = local_learner(runner.algo)
        module = runner.module()
        named = dict(learner.get_optimizers_for_module("default_policy"))
        assert set(named) == {"qf", "qf_twin", "policy", "alpha"}
        ids = lambda params: {id(p) for p in params}  # noqa: E731
        held = {k: ids(p for g in opt.param_groups for p in g["params"]) for k, opt in named.items()}
        assert held["qf"] == ids(module.q_parameters(0)) and held["qf_twin"] == ids(module.q_parameters(1))
        assert held["policy"] == ids(module.actor_parameters())
        assert held["alpha"] == {id(learner.curr_log_alpha["default_policy"])}
        assert named["alpha"].param_groups[0]["lr_max"] == 1e-2 and named["qf"].param_groups[0]["lr_max"] == 1e-3
        alpha0 = float(learner.curr_log_alpha["default_policy"].detach())
        while not runner.done:
            result = runner.train_iteration()
        assert not result["nan_loss"]
        assert float(learner.curr_log_alpha["default_policy"].detach()) != alpha0
    finally:
        runner.stop()


def test_sac_forward_train_is_finite_with_masked_actions():
    from envs.cell_fate_env import CellFateEnv
    from algorithms.modules import model_config

    env = CellFateEnv({"target": "Mo", "observation": "graph"})
    cfg = model_config(env.world, "steer", env.kinds, "gnn", {"q_heads": 2})
    module = SACGNNModule(observation_space=env.observation_space, action_space=env.action_space, model_config=cfg)
    module.make_target_networks()
    obs, _ = env.reset(seed=0)
    obs2, *_ = env.step(1)  # one perturbation: its gene's actions are now masked
    assert obs2["action_mask"].min() == 0
    stack = lambda o: {k: torch.as_tensor(v)[None] for k, v in o.items()}  # noqa: E731
    out = module.forward_train({Columns.OBS: stack(obs2), Columns.NEXT_OBS: stack(obs2)})
    probs, logp = out[ACTION_PROBS], out[ACTION_LOG_PROBS]
    masked = torch.as_tensor(obs2["action_mask"])[None] == 0
    assert torch.all(probs[masked] == 0) and torch.all(torch.isfinite(logp))
    policy_loss = (probs * (0.5 * logp - out[QF_PREDS].detach())).sum(-1).mean()
    policy_loss.backward()
    assert torch.isfinite(policy_loss)
    assert all(torch.isfinite(p.grad).all() for p in module.actor_parameters() if p.grad is not None)
