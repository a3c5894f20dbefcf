"""TRPO on RLlib's new API stack: natural-gradient actor step, critic by the chosen optimizer.

Schulman et al. 2015, "Trust Region Policy Optimization", in the form of
sb3-contrib's TRPO (same hyperparameter names and defaults). Per train batch:

1. Actor: maximise the surrogate ``mean(exp(logp - logp_old) * A)`` subject to
   ``mean KL(pi_new || pi_old) <= target_kl``. The search direction x solves
   ``(F + cg_damping I) x = g`` by conjugate gradient, where g is the surrogate's
   gradient and F x is a Fisher-vector product obtained by double backprop through
   the mean KL. The full step ``sqrt(2 target_kl / x.Fx) x`` is shrunk by
   ``line_search_shrinking_factor`` up to ``line_search_max_iter`` times until the KL
   is below the limit and the surrogate improved; otherwise the actor is left
   unchanged. These parameters are set directly, outside any torch optimizer.
2. Critic: ``n_critic_updates`` epochs of mean-squared error on the GAE value
   targets over shuffled minibatches of ``critic_minibatch_size`` (sb3's
   ``batch_size``), stepped by the optimizer registered for the critic parameters.

Sampling and GAE come from PPO's connectors (advantages are standardised there, as
sb3-contrib's ``normalize_advantage=True``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from ray.rllib.algorithms.ppo.ppo import PPO
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.learner import ENTROPY_KEY, POLICY_LOSS_KEY, VF_LOSS_KEY
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.utils.annotations import override
from ray.rllib.utils.typing import ModuleID

from algorithms.a2c import WholeBatchConfig, masked_mean_fn
from algorithms.conjugate_gradient import assign_flat, conjugate_gradient, flatten
from algorithms.optimizer_plumbing import OptimizerPlumbingMixin, optimizer_settings

CRITIC_OPTIMIZER = "critic"
TRPO_HPARAMS = (
    "target_kl",
    "cg_max_steps",
    "cg_damping",
    "line_search_shrinking_factor",
    "line_search_max_iter",
    "n_critic_updates",
    "critic_minibatch_size",
)


class TRPOConfig(WholeBatchConfig):
    """PPOConfig plus sb3-contrib's TRPO hyperparameters (and its defaults)."""

    algorithm_name = "TRPO"

    def __init__(self, algo_class: type | None = None):
        super().__init__(algo_class=algo_class or TRPO)
        self.train_batch_size = 2048
        self.lambda_ = 0.95
        self.target_kl = 0.01
        self.cg_max_steps = 15
        self.cg_damping = 0.1
        self.line_search_shrinking_factor = 0.8
        self.line_search_max_iter = 10
        self.n_critic_updates = 10
        self.critic_minibatch_size = 128
        # The critic's optimizer; the registry replaces it with the trial's.
        self.learner_config_dict.update(optimizer_settings("adam", {"lr": 1e-3}))

    def training(self, **kwargs: Any) -> "TRPOConfig":
        """Also accepts the TRPO_HPARAMS names (and sb3's ``batch_size`` for the critic)."""
        if "batch_size" in kwargs:
            kwargs["critic_minibatch_size"] = kwargs.pop("batch_size")
        for key in TRPO_HPARAMS:
            if key in kwargs:
                setattr(self, key, kwargs.pop(key))
        return super().training(**kwargs)

    def get_default_learner_class(self) -> type:
        return TRPOTorchLearner

    def validate(self) -> None:
        super().validate()
        if not 0.0 < self.line_search_shrinking_factor < 1.0:
            self._value_error(f"line_search_shrinking_factor must be in (0, 1), got {self.line_search_shrinking_factor}")
        if self.target_kl <= 0 or self.cg_max_steps < 1 or self.line_search_max_iter < 1:
            self._value_error("target_kl must be > 0, cg_max_steps and line_search_max_iter >= 1")
        if self.n_critic_updates < 0 or self.critic_minibatch_size < 1:
            self._value_error("n_critic_updates must be >= 0 and critic_minibatch_size >= 1")


class TRPO(PPO):
    """PPO's sampling loop; the update is TRPOTorchLearner's."""

    @classmethod
    def get_default_config(cls) -> TRPOConfig:
        return TRPOConfig()


@dataclass
class TRPOStepResult:
    """What one natural-gradient step did (for metrics and tests)."""

    accepted: bool
    surrogate_before: float
    surrogate_after: float
    kl: float
    step_fraction: float  # share of the full trust-region step taken (0 when rejected)
    n_evaluations: int


def trpo_step(
    params: Sequence[torch.Tensor],
    evaluate: Callable[[], tuple[torch.Tensor, torch.Tensor]],
    *,
    target_kl: float = 0.01,
    cg_max_steps: int = 15,
    cg_damping: float = 0.1,
    line_search_shrinking_factor: float = 0.8,
    line_search_max_iter: int = 10,
) -> TRPOStepResult:
    """One TRPO step on ``params`` in place.

    ``evaluate()`` returns (surrogate to maximise, mean KL(new || old)) at the current
    parameter values, with autograd graphs to ``params``. Parameters the KL does not
    depend on are left alone.
    """
    surrogate, kl = evaluate()
    before = float(surrogate.detach())
    kl_grads = torch.autograd.grad(kl, params, create_graph=True, allow_unused=True)
    used = [i for i, g in enumerate(kl_grads) if g is not None]
    params = [params[i] for i in used]
    if not params:
        return TRPOStepResult(False, before, before, 0.0, 0.0, 1)
    flat_kl_grad = flatten([kl_grads[i] for i in used])
    surr_grads = torch.autograd.grad(surrogate, params, retain_graph=True, allow_unused=True)
    g = flatten([torch.zeros_like(p) if d is None else d for p, d in zip(params, surr_grads)]).detach()

    def fisher_vector_product(v: torch.Tensor) -> torch.Tensor:
        hv = torch.autograd.grad((flat_kl_grad * v).sum(), params, retain_graph=True, allow_unused=True)
        return flatten([torch.zeros_like(p) if h is None else h for p, h in zip(params, hv)]).detach() + cg_damping * v

    direction = conjugate_gradient(fisher_vector_product, g, max_steps=cg_max_steps)
    quad = float(torch.dot(direction, fisher_vector_product(direction)))
    if not (quad > 0 and math.isfinite(quad)):
        return TRPOStepResult(False, before, before, 0.0, 0.0, 1)
    full_step = math.sqrt(2.0 * target_kl / quad) * direction
    original = flatten([p.detach() for p in params]).clone()
    coeff = 1.0
    with torch.no_grad():
        for i in range(line_search_max_iter):
            assign_flat(params, original + coeff * full_step)
            new_surrogate, new_kl = evaluate()
            new_surrogate, new_kl = float(new_surrogate), float(new_kl)
            if new_kl < target_kl and new_surrogate > before:
                return TRPOStepResult(True, before, new_surrogate, new_kl, coeff, i + 2)
            coeff *= line_search_shrinking_factor
        assign_flat(params, original)
    return TRPOStepResult(False, before, before, 0.0, 0.0, line_search_max_iter + 1)


def is_critic_parameter(name: str) -> bool:
    """Default split by name: RLlib's default modules call the value branch 'vf' / 'critic_encoder'."""
    parts = name.split(".")
    return parts[0] in ("vf", "critic", "value", "value_head") or any("critic" in p for p in parts)


def actor_critic_parameters(module: torch.nn.Module) -> tuple[list[torch.nn.Parameter], list[torch.nn.Parameter]]:
    """(actor, critic) trainable parameters of a module.

    A module may declare the split with ``actor_parameters()`` / ``critic_parameters()``;
    otherwise names decide (see ``is_critic_parameter``). Shared layers count as actor:
    they must stay inside the trust region, as in sb3-contrib.
    """
    if hasattr(module, "critic_parameters"):
        critic = [p for p in module.critic_parameters() if p.requires_grad]
    else:
        critic = [p for n, p in module.named_parameters() if p.requires_grad and is_critic_parameter(n)]
    critic_ids = {id(p) for p in critic}
    candidates = module.actor_parameters() if hasattr(module, "actor_parameters") else module.parameters()
    actor = [p for p in candidates if p.requires_grad and id(p) not in critic_ids]
    return actor, critic


class TRPOTorchLearner(OptimizerPlumbingMixin, PPOTorchLearner):
    """Replaces PPO's gradient update with the TRPO actor step and critic regression.

    Only the critic has a torch optimizer (the trial's, via the plumbing, named "critic").
    """

    def optimizer_groups(self, module_id: ModuleID, config: Any) -> dict[str, list[torch.nn.Parameter]]:
        _, critic = actor_critic_parameters(self.module[module_id])
        return {CRITIC_OPTIMIZER: critic}

    def compute_loss_for_module(self, **kwargs: Any) -> torch.Tensor:
        raise NotImplementedError("TRPO updates in _update; there is no single loss to backprop")

    @override(PPOTorchLearner)
    def _update(self, batch: dict[str, Any]) -> tuple[Any, Any, Any]:
        losses = {}
        for module_id, module_batch in batch.items():
            module = self.module[module_id].unwrapped()
            config = self.config.get_config_for_module(module_id)
            step = self._actor_step(module_id, module, module_batch, config)
            vf_loss = self._critic_updates(module_id, module, module_batch, config)
            losses[module_id] = torch.tensor(-step.surrogate_after + vf_loss)
        return {}, losses, {}

    def _actor_step(self, module_id: ModuleID, module: Any, batch: dict[str, Any], config: TRPOConfig) -> TRPOStepResult:
        mean = masked_mean_fn(batch.get(Columns.LOSS_MASK))
        dist_cls = module.get_train_action_dist_cls()
        actions = batch[Columns.ACTIONS]
        advantages = batch[Postprocessing.ADVANTAGES]
        # The old policy is the module before this step (as in sb3-contrib), so the KL
        # starts at exactly zero even if the sampler's copy lagged behind.
        with torch.no_grad():
            old_dist = dist_cls.from_logits(module.forward_train(batch)[Columns.ACTION_DIST_INPUTS])
            old_logp = old_dist.logp(actions)
        entropy = {}

        def evaluate() -> tuple[torch.Tensor, torch.Tensor]:
            dist = dist_cls.from_logits(module.forward_train(batch)[Columns.ACTION_DIST_INPUTS])
            ratio = torch.exp(dist.logp(actions) - old_logp)
            entropy["value"] = mean(dist.entropy()).detach()
            return mean(ratio * advantages), mean(dist.kl(old_dist))

        actor, _ = actor_critic_parameters(module)
        result = trpo_step(
            actor,
            evaluate,
            target_kl=config.target_kl,
            cg_max_steps=config.cg_max_steps,
            cg_damping=config.cg_damping,
            line_search_shrinking_factor=config.line_search_shrinking_factor,
            line_search_max_iter=config.line_search_max_iter,
        )
        self.metrics.log_dict(
            {
                POLICY_LOSS_KEY: -result.surrogate_after,
                "mean_kl_loss": result.kl,
                ENTROPY_KEY: float(entropy.get("value", math.nan)),
                "line_search_success": float(result.accepted),
                "step_fraction": result.step_fraction,
            },
            key=module_id,
            window=1,
        )
        return result

    def _critic_updates(self, module_id: ModuleID, module: Any, batch: dict[str, Any], config: TRPOConfig) -> float:
        mask = batch.get(Columns.LOSS_MASK)
        valid = torch.arange(len(batch[Columns.ACTIONS]), device=self._device)
        if mask is not None:
            valid = valid[mask.bool()]
        targets = batch[Postprocessing.VALUE_TARGETS]
        losses = []
        n = len(valid)
        if n == 0:
            return 0.0
        size = min(config.critic_minibatch_size, n)
        for _ in range(config.n_critic_updates):
            order = valid[torch.randperm(n, device=valid.device)]
            for start in range(0, n, size):
                idx = order[start : start + size]
                minibatch = {Columns.OBS: _take(batch[Columns.OBS], idx)}
                loss = torch.mean((module.compute_values(minibatch) - targets[idx]) ** 2)
                # RLlib's own path: zero grads, backward, clip (config.grad_clip), step the
                # registered critic optimizer (and the plumbing's lr statistics).
                grads = self.compute_gradients({module_id: loss})
                self.apply_gradients(self.postprocess_gradients(grads))
                losses.append(float(loss.detach()))
        # Gradients that reached actor parameters through shared layers are dropped:
        # those parameters only move inside the trust region.
        module.zero_grad(set_to_none=True)
        vf_loss = float(np.mean(losses)) if losses else math.nan
        self.metrics.log_value((module_id, VF_LOSS_KEY), vf_loss, window=1)
        return vf_loss if losses else 0.0


def _take(data: Any, idx: torch.Tensor) -> Any:
    """Rows ``idx`` of a tensor or a (nested) dict of tensors, e.g. Dict observations."""
    if isinstance(data, dict):
        return {k: _take(v, idx) for k, v in data.items()}
    return data[idx]
