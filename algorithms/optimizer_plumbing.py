"""Hands the trial's optimizer (adam | amsgrad | asgd_adam | asgd_amsgrad) to every learner.

One mechanism for all algorithms: the AlgorithmConfig carries the optimizer in
``learner_config_dict`` (set with :func:`optimizer_settings`), and every learner
class of the project mixes in :class:`OptimizerPlumbingMixin` before its RLlib
torch learner::

    class PPOLearner(OptimizerPlumbingMixin, PPOTorchLearner): ...

The mixin's ``configure_optimizers_for_module`` registers one optimizer per
parameter group returned by :meth:`OptimizerPlumbingMixin.optimizer_groups`
(default: one optimizer, RLlib's "default_optimizer", over every trainable
parameter). A learner with several optimizers overrides ``optimizer_groups``
(SAC: {"qf", "qf_twin", "policy"}; TRPO: {"critic"}) or calls
:meth:`register_plumbed_optimizer` for a parameter outside the module (SAC's
log-alpha). Group-specific hyperparameters come from
``learner_config_dict["optimizer_hparams_by_group"][group]`` on top of the
shared ones.

Learning rates: optimizers are registered with ``lr_or_lr_schedule=None``, so
RLlib's ``config.lr`` never overwrites them; ``lr`` / ``lr_min`` / ``lr_max``
from the trial reach the optimizer as given. ASGD param groups have no ``lr``
key, so RLlib's lr logging reports ``lr_max`` there (algorithms.rllib_private).

Logged per update, per module (in ``result["learners"][module_id]``):
``frac_lr_max`` and ``lr_mean`` (optim.active_lr_stats averaged over every
optimizer step of the update, weighted by parameter count; frac_lr_max is nan
for plain Adam / AMSGrad), and the same per optimizer as
``<group>_frac_lr_max`` / ``<group>_lr_mean``.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from ray.rllib.core.learner.learner import DEFAULT_OPTIMIZER
from ray.rllib.utils.typing import ModuleID

from envs.errors import UserInputError, choices_error
from optim import OPTIMIZER_NAMES, active_lr_stats, make_optimizer

from algorithms.rllib_private import OptimizerLrMixin

OPTIMIZER_KEY = "optimizer"
HPARAMS_KEY = "optimizer_hparams"
GROUP_HPARAMS_KEY = "optimizer_hparams_by_group"

logger = logging.getLogger(__name__)


def optimizer_settings(name: str, hparams: dict[str, Any], by_group: dict[str, dict] | None = None) -> dict[str, Any]:
    """The ``learner_config_dict`` entries for optimizer `name`; checked now, in the driver,
    so a bad name or hyperparameter fails before any Ray actor starts."""
    if name not in OPTIMIZER_NAMES:
        raise choices_error("optimizer", name, OPTIMIZER_NAMES)
    probe = torch.nn.Parameter(torch.zeros(1))
    for group_hparams in [hparams, *((by_group or {}).values())]:
        try:
            make_optimizer(name, [probe], {**hparams, **group_hparams})
        except ValueError as err:
            raise UserInputError(f"optimizer {name}: {err}") from None
    return {OPTIMIZER_KEY: name, HPARAMS_KEY: dict(hparams), GROUP_HPARAMS_KEY: dict(by_group or {})}


def use_fused_adam(optimizer: torch.optim.Optimizer) -> bool:
    """Switch a plain torch Adam (or AMSGrad) to its fused kernel, one call for all its
    parameters instead of a dozen tensor ops per parameter (the same update, a third of
    the time on CPU). Other optimizers (ASGD) are left as they are; returns whether it switched."""
    if type(optimizer) is not torch.optim.Adam:
        return False
    params = [p for g in optimizer.param_groups for p in g["params"]]
    if any(g.get("differentiable") or g.get("capturable") for g in optimizer.param_groups):
        return False
    if not params or any(not p.is_floating_point() or p.device.type not in ("cpu", "cuda") for p in params):
        return False
    for group in [optimizer.defaults, *optimizer.param_groups]:
        group["foreach"] = False
        group["fused"] = True
    return True


class FiniteGradientsMixin:
    """Learner mixin: nan / inf gradients become finite (``torch.nan_to_num``), as RLlib's
    default apply_gradients makes them, with one check over all gradients per step (RLlib
    checks every parameter twice); the config's ``torch_skip_nan_gradients=True`` turns
    RLlib's own check off (the PPO, A2C and SAC settings set it)."""

    def apply_gradients(self, gradients_dict: Any) -> None:
        grads = [g.reshape(-1) for g in gradients_dict.values() if g is not None]
        if grads and not bool(torch.isfinite(torch.cat(grads)).all()):
            logger.warning("gradients contain nan/inf values; setting them to finite values (torch.nan_to_num)")
            gradients_dict = {k: g if g is None else torch.nan_to_num(g) for k, g in gradients_dict.items()}
        super().apply_gradients(gradients_dict)


class OptimizerPlumbingMixin(OptimizerLrMixin):
    """Learner mixin: builds optimizers from ``learner_config_dict`` and logs active lr stats.

    Put it first in the bases so its methods override the RLlib learner's.
    """

    # ---- what to optimize -------------------------------------------------------------

    def optimizer_groups(self, module_id: ModuleID, config: Any) -> dict[str, list[torch.nn.Parameter]]:
        """Optimizer name -> parameters; override for several optimizers per module."""
        return {DEFAULT_OPTIMIZER: self.get_parameters(self.module[module_id])}

    def configure_optimizers_for_module(self, module_id: ModuleID, config: Any = None) -> None:
        for name, params in self.optimizer_groups(module_id, config).items():
            self.register_plumbed_optimizer(module_id, name, params)

    def register_plumbed_optimizer(self, module_id: ModuleID, name: str, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        """Build the trial's optimizer over `params` and register it as `name` for `module_id`."""
        settings = self.config.learner_config_dict
        if OPTIMIZER_KEY not in settings:
            raise ValueError("learner_config_dict has no optimizer; build configs with algorithms.registry")
        hparams = {**settings[HPARAMS_KEY], **settings.get(GROUP_HPARAMS_KEY, {}).get(name, {})}
        optimizer = make_optimizer(settings[OPTIMIZER_KEY], params, hparams)
        # Same update, fewer kernels. Over seeds 0-5 of the slow learning tests (PPO and
        # TRPO_to_PPO steering to Mo), steps-to-90% were equal or fewer than unfused.
        use_fused_adam(optimizer)
        # lr_or_lr_schedule=None: RLlib must not reset our lr(s) from config.lr.
        self.register_optimizer(module_id=module_id, optimizer_name=name, optimizer=optimizer, params=params, lr_or_lr_schedule=None)
        return optimizer

    # ---- learning-rate bookkeeping --------------------------------------------------------

    def apply_gradients(self, gradients_dict: Any) -> None:
        super().apply_gradients(gradients_dict)
        sums = self.__dict__.setdefault("_lr_stat_sums", {})
        for module_id in self.module.keys():
            for name, optimizer in self.get_optimizers_for_module(module_id):
                stats = active_lr_stats(optimizer)
                if (module_id, name) not in sums:
                    numel = sum(p.numel() for g in optimizer.param_groups for p in g["params"])
                    sums[module_id, name] = [0.0, 0.0, 0, numel]
                acc = sums[module_id, name]
                acc[0] += stats["frac_lr_max"]
                acc[1] += stats["lr_mean"]
                acc[2] += 1

    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        super().after_gradient_based_update(timesteps=timesteps)
        sums = self.__dict__.pop("_lr_stat_sums", {})
        per_module: dict[str, list[tuple[float, float, int]]] = {}
        for (module_id, name), (frac_sum, lr_sum, steps, numel) in sums.items():
            frac, lr = frac_sum / steps, lr_sum / steps
            self.metrics.log_value((module_id, f"{name}_frac_lr_max"), frac, window=1)
            self.metrics.log_value((module_id, f"{name}_lr_mean"), lr, window=1)
            per_module.setdefault(module_id, []).append((frac, lr, numel))
        for module_id, rows in per_module.items():
            total = sum(n for *_, n in rows)
            frac = sum(f * n for f, _, n in rows) / total
            lr = sum(v * n for _, v, n in rows) / total
            self.metrics.log_value((module_id, "frac_lr_max"), frac, window=1)
            self.metrics.log_value((module_id, "lr_mean"), lr, window=1)
