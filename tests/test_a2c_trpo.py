"""A2C and TRPO: conjugate gradient, the TRPO step's trust region, A2C's gradient, and both
learners training on CartPole and CellFateEnv through the registry."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing

from algorithms.a2c import A2CConfig, a2c_loss
from algorithms.common import learner_module
from algorithms.conjugate_gradient import conjugate_gradient
from algorithms.optimizer_plumbing import optimizer_settings
from algorithms.registry import build_algorithm_config
from algorithms.trial import TrialRunner
from algorithms.trial_plan import TrialPlan
from algorithms.trpo import TRPOConfig, TRPOSettings, actor_critic_parameters, trpo_step


# ---- conjugate gradient -------------------------------------------------------------------


def test_conjugate_gradient_solves_spd_system():
    gen = torch.Generator().manual_seed(0)
    m = torch.randn(6, 6, generator=gen, dtype=torch.float64)
    a = m @ m.T + 0.5 * torch.eye(6, dtype=torch.float64)
    b = torch.randn(6, generator=gen, dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, b, max_steps=20, residual_tol=1e-20)
    torch.testing.assert_close(x, torch.linalg.solve(a, b), rtol=1e-8, atol=1e-8)
    # Truncated CG is only an approximation: it must not be exact after one step.
    x1 = conjugate_gradient(lambda v: a @ v, b, max_steps=1)
    assert torch.linalg.norm(a @ x1 - b) > 1e-3


# ---- TRPO step on a tabular softmax policy ------------------------------------------------


def _tabular_problem(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    n_states, n_actions, n = 4, 3, 64
    logits = torch.nn.Parameter(torch.randn(n_states, n_actions, generator=gen))
    states = torch.randint(n_states, (n,), generator=gen)
    actions = torch.randint(n_actions, (n,), generator=gen)
    advantages = torch.randn(n, generator=gen)
    with torch.no_grad():
        old = torch.distributions.Categorical(logits=logits[states].clone())
        old_logp = old.log_prob(actions)

    def evaluate():
        dist = torch.distributions.Categorical(logits=logits[states])
        surrogate = (torch.exp(dist.log_prob(actions) - old_logp) * advantages).mean()
        kl = torch.distributions.kl_divergence(dist, old).mean()
        return surrogate, kl

    return logits, evaluate


@pytest.mark.parametrize("target_kl", [0.001, 0.01, 0.05])
def test_trpo_step_respects_kl_limit_and_improves_surrogate(target_kl):
    logits, evaluate = _tabular_problem()
    before = logits.detach().clone()
    with torch.no_grad():
        surrogate0, _ = evaluate()
    result = trpo_step([logits], evaluate, target_kl=target_kl, cg_max_steps=10, cg_damping=0.01)
    with torch.no_grad():
        surrogate1, kl1 = evaluate()
    assert result.accepted
    assert 0.0 < float(kl1) <= target_kl
    assert float(surrogate1) > float(surrogate0)
    assert not torch.equal(before, logits.detach())
    # The step uses most of the trust region (a plain small step would also pass the two
    # checks above): the quadratic KL model is close on this problem.
    assert float(kl1) > 0.2 * target_kl


def test_trpo_step_rejects_and_restores_when_no_improvement_is_possible():
    logits, evaluate = _tabular_problem()
    before = logits.detach().clone()

    def flat_surrogate():
        surrogate, kl = evaluate()
        return surrogate * 0.0, kl

    result = trpo_step([logits], flat_surrogate, target_kl=0.01)
    assert not result.accepted
    torch.testing.assert_close(logits.detach(), before, rtol=0, atol=0)


def test_trpo_line_search_failure_restores_parameters():
    logits, evaluate = _tabular_problem()
    before = logits.detach().clone()

    def kl_always_too_large():
        surrogate, kl = evaluate()
        return surrogate, kl + 1.0  # same gradients, but the constraint never holds

    result = trpo_step([logits], kl_always_too_large, target_kl=0.01, line_search_max_iter=3)
    assert not result.accepted and result.n_evaluations == 4
    torch.testing.assert_close(logits.detach(), before, rtol=0, atol=0)


# ---- A2C gradient by hand -------------------------------------------------------------------


def _hand_logit_grad(z, actions, adv, ent_coeff):
    p = torch.softmax(z, dim=-1)
    logp = torch.log(p)
    h = -(p * logp).sum(-1, keepdim=True)
    onehot = torch.nn.functional.one_hot(actions, z.shape[-1]).to(z.dtype)
    n = z.shape[0]
    g_pg = -adv[:, None] * (onehot - p) / n  # d(-A log p_a)/dz
    g_ent = -ent_coeff * (-p * (logp + h)) / n  # d(-c H)/dz, dH/dz_j = -p_j (log p_j + H)
    return g_pg + g_ent


def test_a2c_loss_gradient_matches_hand_computation():
    z = torch.tensor([[0.3, -0.2], [-1.0, 0.5]], dtype=torch.float64, requires_grad=True)
    v = torch.tensor([0.4, -0.1], dtype=torch.float64, requires_grad=True)
    actions = torch.tensor([0, 1])
    adv = torch.tensor([1.5, -0.7], dtype=torch.float64)
    targets = torch.tensor([1.0, 0.2], dtype=torch.float64)
    dist = torch.distributions.Categorical(logits=z)
    loss, _ = a2c_loss(dist.log_prob(actions), dist.entropy(), v, adv, targets, vf_loss_coeff=0.5, entropy_coeff=0.1)
    loss.backward()
    torch.testing.assert_close(z.grad, _hand_logit_grad(z.detach(), actions, adv, 0.1))
    torch.testing.assert_close(v.grad, 2 * 0.5 * (v.detach() - targets) / 2)


def test_a2c_learner_loss_gradient_matches_hand_computation():
    """Through the learner: right columns, right signs, masked rows give no gradient."""
    config = (
        A2CConfig()
        .environment("CartPole-v1")
        .training(entropy_coeff=0.1, vf_loss_coeff=0.5)
        .learners(learner_config_dict=optimizer_settings("adam", {"lr": 7e-4}))
    )
    learner = config.build_learner(env=gym.make("CartPole-v1"))
    obs = torch.zeros(3, 4)
    actions = torch.tensor([0, 1, 1])
    adv = torch.tensor([1.5, -0.7, 9.0])
    batch = {
        Columns.OBS: obs,
        Columns.ACTIONS: actions,
        Postprocessing.ADVANTAGES: adv,
        Postprocessing.VALUE_TARGETS: torch.tensor([1.0, 0.2, 5.0]),
        Columns.LOSS_MASK: torch.tensor([True, True, False]),
    }
    z = torch.tensor([[0.3, -0.2], [-1.0, 0.5], [2.0, 2.0]], requires_grad=True)
    loss = learner.compute_loss_for_module(
        module_id=DEFAULT_MODULE_ID, config=config, batch=batch, fwd_out={Columns.ACTION_DIST_INPUTS: z}
    )
    loss.backward()
    expected = _hand_logit_grad(z.detach()[:2], actions[:2], adv[:2], 0.1)
    torch.testing.assert_close(z.grad[:2], expected, rtol=1e-5, atol=1e-6)
    assert torch.all(z.grad[2] == 0)


# ---- the learners inside RLlib -------------------------------------------------------------


def test_trpo_learner_on_cartpole_moves_actor_within_trust_region(ray_session):
    settings = TRPOSettings(train_batch_size=256, target_kl=0.005, n_critic_updates=2)
    config = (
        settings.apply_to(TRPOConfig())
        .environment("CartPole-v1")
        .env_runners(num_env_runners=0)
        .rl_module(model_config={"fcnet_hiddens": [32, 32]})
        .learners(learner_config_dict=optimizer_settings("adam", {"lr": 1e-3}))
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        module = learner_module(algo)
        actor, critic = actor_critic_parameters(module)
        assert actor and critic and not ({id(p) for p in actor} & {id(p) for p in critic})
        before_actor = [p.detach().clone() for p in actor]
        before_critic = [p.detach().clone() for p in critic]
        result = algo.train()["learners"][DEFAULT_MODULE_ID]
        assert result["line_search_success"] == 1.0
        assert 0.0 < result["mean_kl_loss"] <= 0.005
        assert any(not torch.equal(b, p.detach()) for b, p in zip(before_actor, actor))
        assert any(not torch.equal(b, p.detach()) for b, p in zip(before_critic, critic))
        assert math.isfinite(result["vf_loss"])
    finally:
        algo.stop()


@pytest.mark.parametrize("algorithm", ["A2C", "TRPO"])
def test_cellfate_trial_trains_and_resumes(ray_session, algorithm, tmp_path):
    hparams = {"train_batch_size": 128, "num_envs_per_env_runner": 4}
    if algorithm == "TRPO":
        hparams.update(batch_size=64, n_critic_updates=2, max_kl=0.02)
    config = TrialPlan(target="Mo", algorithm=algorithm, module="mlp", env_steps=256, algo_hparams=hparams)
    assert build_algorithm_config(config).algo_class.__name__ == algorithm
    runner = TrialRunner(config)
    try:
        first = runner.train_iteration()
        assert first["stage"] == algorithm and not first["nan_loss"]
        assert np.isfinite(first["policy_loss"]) and np.isfinite(first["vf_loss"])
        runner.save(str(tmp_path))
        weights = {k: v.clone() for k, v in runner.module().state_dict().items()}
        runner.train_iteration()
        assert runner.done
        runner.restore(str(tmp_path))
        assert not runner.done
        for k, v in runner.module().state_dict().items():
            torch.testing.assert_close(v, weights[k])
    finally:
        runner.stop()
