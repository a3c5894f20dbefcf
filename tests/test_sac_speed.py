"""SAC's faster gradient step gives RLlib's: one backward pass of the summed losses, fused Adam, foreach Polyak steps."""

from __future__ import annotations

import copy
import types

import pytest
import torch
from ray.rllib.core import DEFAULT_MODULE_ID

from algorithms.common import local_learner
from algorithms.flat_replay import sac_train_batch
from algorithms.optimizer_plumbing import use_fused_adam
from algorithms.sac import RLlibSACTorchLearner, polyak_update_tensors
from algorithms.trial import TrialRunner
from algorithms.trial_plan import TrialPlan

TINY = {"batch_size": 32, "learning_starts": 16, "train_freq": 4, "steps_per_iteration": 64}


def test_fused_adam_steps_as_the_single_tensor_loop():
    torch.manual_seed(0)
    shapes = [(5, 3), (3,), (1,)]
    for amsgrad in (False, True):
        a = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
        b = [torch.nn.Parameter(p.detach().clone()) for p in a]
        plain = torch.optim.Adam(a, lr=1e-2, amsgrad=amsgrad, foreach=False)
        fused = torch.optim.Adam(b, lr=1e-2, amsgrad=amsgrad)
        assert use_fused_adam(fused) and fused.param_groups[0]["fused"]
        for _ in range(5):
            grads = [torch.randn(s) for s in shapes]
            for p, q, g in zip(a, b, grads):
                p.grad, q.grad = g.clone(), g.clone()
            plain.step()
            fused.step()
        for p, q in zip(a, b):
            torch.testing.assert_close(q, p, rtol=1e-6, atol=1e-7)
    other = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    assert not use_fused_adam(other)


def test_polyak_update_tensors_is_lerp_per_tensor_and_copies_buffers():
    torch.manual_seed(1)
    main = [torch.randn(4, 2), torch.randn(3)]
    target = [torch.randn(4, 2), torch.randn(3)]
    expected = [t + 0.01 * (m - t) for m, t in zip(main, target)]
    buffers_main, buffers_target = [torch.arange(3.0)], [torch.zeros(3)]
    polyak_update_tensors(main, target, 0.01, buffers_main, buffers_target)
    for e, t in zip(expected, target):
        torch.testing.assert_close(t, e)
    assert torch.equal(buffers_target[0], buffers_main[0])
    with pytest.raises(ValueError):
        polyak_update_tensors(main, target[:1], 0.01)


def _snapshot(learner) -> tuple[dict, list]:
    module = learner.module[DEFAULT_MODULE_ID].unwrapped()
    opts = [o for _, o in learner.get_optimizers_for_module(DEFAULT_MODULE_ID)]
    return copy.deepcopy(module.state_dict()), [copy.deepcopy(o.state_dict()) for o in opts], learner.curr_log_alpha[DEFAULT_MODULE_ID].detach().clone()


def _restore(learner, snap) -> None:
    module = learner.module[DEFAULT_MODULE_ID].unwrapped()
    module.load_state_dict(snap[0])
    for (_, o), state in zip(learner.get_optimizers_for_module(DEFAULT_MODULE_ID), snap[1]):
        o.load_state_dict(copy.deepcopy(state))
    with torch.no_grad():
        learner.curr_log_alpha[DEFAULT_MODULE_ID].copy_(snap[2])


def _rllib_step(learner, on: bool) -> None:
    """Switch `learner` to RLlib's own four backward passes and the single-tensor Adam (on) or back."""
    for _, o in learner.get_optimizers_for_module(DEFAULT_MODULE_ID):
        for group in o.param_groups:
            group["fused"], group["foreach"] = (None, False) if on else (True, False)
    if on:
        learner.compute_gradients = types.MethodType(RLlibSACTorchLearner.compute_gradients, learner)
    else:
        learner.__dict__.pop("compute_gradients", None)


@pytest.mark.usefixtures("ray_session")
@pytest.mark.parametrize("module, world", [("mlp", {}), ("gnn", {}), ("mlp", {"world": "myeloid", "dynamics": "ode", "action": "continuous"})])
def test_one_backward_and_fused_adam_give_rllibs_update(module, world):
    plan = TrialPlan(target="Mo", algorithm="SAC", module=module, optimizer="adam", optimizer_hparams={"lr": 1e-2},
                     algo_hparams=TINY, env_steps=64, **world)
    runner = TrialRunner(plan)
    try:
        runner.train_iteration()
        learner = local_learner(runner.algo)
        assert all(o.param_groups[0]["fused"] for _, o in learner.get_optimizers_for_module(DEFAULT_MODULE_ID))
        batch = {DEFAULT_MODULE_ID: sac_train_batch(runner.algo.flat_buffer.sample(32)).policy_batches[DEFAULT_MODULE_ID]}
        start = _snapshot(learner)
        outcomes = []
        for rllib in (True, False):
            _restore(learner, start)
            _rllib_step(learner, rllib)
            torch.manual_seed(5)  # the continuous loss resamples actions
            for _ in range(3):
                learner._update(batch)
            assert not learner._temp_losses
            outcomes.append(_snapshot(learner))
        _rllib_step(learner, False)
        (ref_params, _, ref_alpha), (params, _, alpha) = outcomes
        moved = max((ref_params[k] - start[0][k]).abs().max().item() for k in ref_params)
        assert moved > 1e-4  # the three steps changed the weights
        for key, value in ref_params.items():
            torch.testing.assert_close(params[key], value, rtol=1e-5, atol=1e-6, msg=key)
        torch.testing.assert_close(alpha, ref_alpha, rtol=1e-5, atol=1e-6)
    finally:
        runner.stop()


@pytest.mark.usefixtures("ray_session")
def test_a_round_as_one_batch_trains_as_minibatches_through_learner_update():
    plan = TrialPlan(target="Mo", algorithm="SAC", module="mlp", optimizer="adam", optimizer_hparams={"lr": 1e-2},
                     algo_hparams=TINY, env_steps=64)
    runner = TrialRunner(plan)
    try:
        runner.train_iteration()
        algo = runner.algo
        learner = local_learner(algo)
        round_batch = sac_train_batch(algo.flat_buffer.sample(4 * TINY["batch_size"]))
        start = _snapshot(learner)
        outcomes = []
        for whole in (False, True):
            _restore(learner, start)
            steps = learner.flat_gradient_steps
            if not whole:  # RLlib's Learner.update slicing the minibatches, one _update each
                learner.round_update = lambda batch, step: step(batch)
            try:
                results = algo.learner_group.update(batch=round_batch, minibatch_size=None if whole else TINY["batch_size"],
                                                    num_epochs=1, shuffle_batch_per_epoch=False, timesteps={"num_env_steps_sampled_lifetime": 64})
            finally:
                learner.__dict__.pop("round_update", None)
            assert learner.flat_gradient_steps - steps == 4
            outcomes.append((_snapshot(learner), results[0][DEFAULT_MODULE_ID]))
        (ref, ref_results), (got, got_results) = outcomes
        for key, value in ref[0].items():
            torch.testing.assert_close(got[0][key], value, rtol=1e-6, atol=1e-7, msg=key)
        torch.testing.assert_close(got[2], ref[2])
        # The logged losses are the last gradient step's either way.
        for key in ("policy_loss", "qf_loss", "alpha_loss", "num_module_steps_trained"):
            assert float(got_results[key].peek()) == pytest.approx(float(ref_results[key].peek()), rel=1e-5), key
    finally:
        runner.stop()
