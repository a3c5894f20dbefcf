"""The only place the project touches RLlib's private API: two learner hooks with no public form.

RLlib 2.60 offers no public way to do either, so each is one small mixin here and
``tests/test_private_api_pins.py`` checks that RLlib still calls it, so an upgrade
fails loudly in one place instead of silently skipping our code.

- ``Learner._get_optimizer_lr(optimizer)``: RLlib logs every optimizer's learning
  rate through it and TorchLearner reads ``param_groups[0]["lr"]``; ASGD's param
  groups have ``lr_min`` / ``lr_max`` instead (:class:`OptimizerLrMixin`).
- ``TorchLearner._update(batch)``: the per-minibatch step ``Learner.update`` calls
  (forward, loss, gradients, optimizer step). TRPO's actor step is not a gradient
  step of one loss, so its learner replaces the whole thing (:class:`OwnUpdateMixin`).

Everything else goes through public API (``learner_group.foreach_learner``,
``Learner.get_optimizers_for_module``, ``Learner.device``; see algorithms/common.py
and algorithms/optimizer_plumbing.py).
"""

from __future__ import annotations

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
