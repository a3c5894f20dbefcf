"""The only place the project touches RLlib's private API: two learner hooks and one sampling call with no public form.

RLlib 2.60 offers no public way to do any of them, so each is one small mixin or function here and
``tests/test_private_api_pins.py`` checks that RLlib still calls it, so an upgrade
fails loudly in one place instead of silently skipping our code.

- ``Learner._get_optimizer_lr(optimizer)``: RLlib logs every optimizer's learning
  rate through it and TorchLearner reads ``param_groups[0]["lr"]``; ASGD's param
  groups have ``lr_min`` / ``lr_max`` instead (:class:`OptimizerLrMixin`).
- ``TorchLearner._update(batch)``: the per-minibatch step ``Learner.update`` calls
  (forward, loss, gradients, optimizer step). TRPO's actor step is not a gradient
  step of one loss, so its learner replaces the whole thing (:class:`OwnUpdateMixin`);
  SAC's flat replay hands ``Learner.update`` a round of minibatches as one batch and runs
  RLlib's ``_update`` on each of them itself (:class:`RoundUpdateMixin`).
- ``synchronous_parallel_sample(..., _uses_new_env_runners=True, _return_metrics=True)``:
  one sample round of the env runners as episodes plus their metrics, as DQN's and
  SAC's training_step take it; SAC's flat replay takes its rounds the same way
  (:func:`sample_episodes`).
- ``DQNLearner.last_update_ts_by_mid``: the env-step mark of each module's last
  target-network step; DQNLearner steps again once the env steps since it reach
  ``target_network_update_freq``. SAC's flat replay moves the targets itself after
  every gradient step and sets the mark to +inf (:func:`disable_dqn_target_updates`).
- ``SACTorchLearner._temp_losses``: the per-optimizer losses its loss stores for its four
  backward passes; SAC's learner takes one backward pass of their sum and drops them
  (:func:`discard_sac_temp_losses`).

Everything else goes through public API (``learner_group.foreach_learner``,
``Learner.get_optimizers_for_module``, ``Learner.device``; see algorithms/common.py
and algorithms/optimizer_plumbing.py).
"""

from __future__ import annotations

import math
from typing import Any

import torch


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    """The learning rate RLlib reports for `optimizer`: ``lr``, or ``lr_max`` for ASGD."""
    group = optimizer.param_groups[0]
    return float(group["lr"] if "lr" in group else group["lr_max"])


class OptimizerLrMixin:
    """Learner mixin: RLlib's lr logging reads ASGD optimizers through :func:`current_lr`."""

    @staticmethod
    def _get_optimizer_lr(optimizer: torch.optim.Optimizer) -> float:
        return current_lr(optimizer)


class OwnUpdateMixin:
    """Learner mixin for an update that is not one loss's gradient step: RLlib's
    per-minibatch ``_update(batch)`` calls ``self.own_update(batch)``, which returns
    (forward outputs, loss per module, tensor metrics) as RLlib's does."""

    def own_update(self, batch: dict[str, Any]) -> tuple[Any, Any, Any]:
        raise NotImplementedError

    def _update(self, batch: dict[str, Any], **kwargs: Any) -> tuple[Any, Any, Any]:
        return self.own_update(batch)


def sample_episodes(algo: Any) -> tuple[list[Any], list[Any]]:
    """One synchronous sample round of `algo`'s env runners: (episode chunks, env runner metrics).

    What DQN's and SAC's own training_step call (``synchronous_parallel_sample`` with
    its underscored ``_uses_new_env_runners`` and ``_return_metrics`` switches, which
    select the new stack's episodes and their metrics)."""
    from ray.rllib.execution.rollout_ops import synchronous_parallel_sample

    return synchronous_parallel_sample(
        worker_set=algo.env_runner_group,
        concat=True,
        sample_timeout_s=algo.config.sample_timeout_s,
        _uses_new_env_runners=True,
        _return_metrics=True,
    )


def disable_dqn_target_updates(learner: Any) -> None:
    """Switch off DQNLearner's target-network step at the end of each ``update`` call
    (for a learner that moves its targets itself): every module's last-update mark is +inf."""
    from collections import defaultdict

    learner.last_update_ts_by_mid = defaultdict(lambda: math.inf)


def discard_sac_temp_losses(learner: Any) -> None:
    """Drop the per-optimizer losses RLlib's SACTorchLearner keeps for its own
    ``compute_gradients`` (``_temp_losses``, filled by the loss), for a learner that
    backpropagates their sum in one pass instead (algorithms/sac.py)."""
    learner._temp_losses.clear()


class RoundUpdateMixin:
    """Learner mixin: RLlib's per-minibatch ``_update(batch)`` goes through
    ``self.round_update(batch, step)``, where ``step`` is RLlib's own ``_update``, so a
    learner handed a whole round of minibatches as one batch can run RLlib's gradient step
    on each of them without ``Learner.update``'s per-minibatch slicing and bookkeeping."""

    def round_update(self, batch: dict[str, Any], step: Any) -> tuple[Any, Any, Any]:
        return step(batch)

    def _update(self, batch: dict[str, Any], **kwargs: Any) -> tuple[Any, Any, Any]:
        return self.round_update(batch, super()._update)
