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
   targets over shuffled minibatches of ``batch_size`` (sb3's name), stepped by
   the optimizer registered for the critic parameters.

Sampling and GAE come from algorithms.flat_on_policy (``sampling: flat``, the default)
or PPO's env runners and connectors (``sampling: rllib``); advantages are standardised
either way, as sb3-contrib's ``normalize_advantage=True``.

Over 300 lines on purpose: the settings, the natural-gradient step and the learner
are one algorithm, read top to bottom in one file (as sb3-contrib's trpo.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from ray.rllib.algorithms.ppo.ppo import PPO
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.learner import ENTROPY_KEY, POLICY_LOSS_KEY, VF_LOSS_KEY
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.utils.typing import ModuleID

from envs.errors import UserInputError

from algorithms.a2c import WholeBatchConfig, masked_mean_fn
from algorithms.common import Stage, apply_common
from algorithms.conjugate_gradient import assign_flat, conjugate_gradient, flatten
from algorithms.flat_on_policy import FlatOnPolicyConfigMixin, FlatOnPolicyMixin, OnPolicySamplingSettings
from algorithms.optimizer_plumbing import OptimizerPlumbingMixin
from algorithms.rllib_private import OwnUpdateMixin
from algorithms.settings import key

if TYPE_CHECKING:
    from algorithms.trial_plan import TrialPlan

CRITIC_OPTIMIZER = "critic"
# The learner reads its TRPOSettings from learner_config_dict[SETTINGS_KEY].
SETTINGS_KEY = "trpo"


@dataclass(frozen=True, kw_only=True)
class TRPOSettings(OnPolicySamplingSettings):
    """TRPO's ``algo_hparams`` (Schulman et al. 2015, "Trust Region Policy Optimization"):
    sb3-contrib's names and defaults, except the batch.

    train_batch_size: env steps per update, from all envs together; matched to PPO's
        (sb3-contrib: n_steps=2048 per env).
    gamma: discount (0 for the predict task unless given).
    lambda: GAE lambda (sb3: gae_lambda).
    target_kl: the trust region, the bound on the mean KL(pi_new || pi_old) of a step
        (also accepted as max_kl).
    cg_max_steps: conjugate-gradient iterations for the search direction.
    cg_damping: added to the Fisher matrix's diagonal, ``(F + cg_damping I) x = g``.
    line_search_shrinking_factor: the step is shrunk by this factor until accepted.
    line_search_max_iter: shrinks before the step is rejected (actor left unchanged).
    n_critic_updates: epochs of value regression per batch.
    batch_size: the critic's minibatch (sb3's name; not the train batch).
    grad_clip: global gradient-norm clip of the critic's steps (sb3: none).
    sampling: "flat" (default; algorithms.flat_on_policy) or "rllib" (PPO's env runners
        and connectors); an env other than BatchedCellFateEnv always samples through RLlib.
    """

    NAME: ClassVar[str] = "TRPO"
    ALIASES: ClassVar[Mapping[str, str]] = {"max_kl": "target_kl"}
    # sb3-contrib's names of the settings that have one, for side-by-side runs (tournament bench cartpole).
    SB3_NAMES: ClassVar[Mapping[str, str]] = {
        "gamma": "gamma",
        "lambda_": "gae_lambda",
        "target_kl": "target_kl",
        "cg_max_steps": "cg_max_steps",
        "cg_damping": "cg_damping",
        "line_search_shrinking_factor": "line_search_shrinking_factor",
        "line_search_max_iter": "line_search_max_iter",
        "n_critic_updates": "n_critic_updates",
        "batch_size": "batch_size",
    }

    train_batch_size: int = 1024
    gamma: float = 0.99
    lambda_: float = field(default=0.95, metadata=key("lambda"))
    target_kl: float = 0.01
    cg_max_steps: int = 15
    cg_damping: float = 0.1
    line_search_shrinking_factor: float = 0.8
    line_search_max_iter: int = 10
    n_critic_updates: int = 10
    batch_size: int = 128
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.line_search_shrinking_factor < 1.0:
            raise UserInputError(f"TRPO line_search_shrinking_factor must be in (0, 1), got {self.line_search_shrinking_factor}")
        if self.target_kl <= 0 or self.cg_max_steps < 1 or self.line_search_max_iter < 1:
            raise UserInputError("TRPO target_kl must be > 0, cg_max_steps and line_search_max_iter >= 1")
        if self.n_critic_updates < 0 or self.batch_size < 1:
            raise UserInputError("TRPO n_critic_updates must be >= 0 and batch_size (the critic's minibatch) >= 1")

    def apply_to(self, config: "TRPOConfig") -> "TRPOConfig":
        """These settings on a TRPOConfig; the learner finds them in learner_config_dict."""
        config.on_policy_sampling(self.sampling)
        return config.training(
            train_batch_size_per_learner=self.train_batch_size,
            gamma=self.gamma,
            lambda_=self.lambda_,
            grad_clip=self.grad_clip,
            grad_clip_by="global_norm",
        ).learners(learner_config_dict={SETTINGS_KEY: self})


class TRPOConfig(FlatOnPolicyConfigMixin, WholeBatchConfig):
    """PPOConfig run as TRPO; its settings are a TRPOSettings (``TRPOSettings.apply_to``)."""

    algorithm_name = "TRPO"

    def __init__(self, algo_class: type | None = None):
        super().__init__(algo_class=algo_class or TRPO)

    def get_default_learner_class(self) -> type:
        return TRPOTorchLearner


class TRPO(FlatOnPolicyMixin, PPO):
    """PPO's sampling loop (or the flat one, algorithms.flat_on_policy); the update is TRPOTorchLearner's."""

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
    target_kl: float = TRPOSettings.target_kl,
    cg_max_steps: int = TRPOSettings.cg_max_steps,
    cg_damping: float = TRPOSettings.cg_damping,
    line_search_shrinking_factor: float = TRPOSettings.line_search_shrinking_factor,
    line_search_max_iter: int = TRPOSettings.line_search_max_iter,
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


class TRPOTorchLearner(OwnUpdateMixin, OptimizerPlumbingMixin, PPOTorchLearner):
    """Replaces PPO's gradient update with the TRPO actor step and critic regression.

    Only the critic has a torch optimizer (the trial's, via the plumbing, named "critic").
    """

    def optimizer_groups(self, module_id: ModuleID, config: Any) -> dict[str, list[torch.nn.Parameter]]:
        _, critic = actor_critic_parameters(self.module[module_id])
        return {CRITIC_OPTIMIZER: critic}

    def compute_loss_for_module(self, **kwargs: Any) -> torch.Tensor:
        raise NotImplementedError("TRPO updates in own_update; there is no single loss to backprop")

    @property
    def trpo_settings(self) -> TRPOSettings:
        settings = self.config.learner_config_dict.get(SETTINGS_KEY)
        if not isinstance(settings, TRPOSettings):
            raise ValueError("learner_config_dict has no TRPOSettings; configure with TRPOSettings.apply_to")
        return settings

    def own_update(self, batch: dict[str, Any]) -> tuple[Any, Any, Any]:
        settings = self.trpo_settings
        losses = {}
        for module_id, module_batch in batch.items():
            module = self.module[module_id].unwrapped()
            step = self._actor_step(module_id, module, module_batch, settings)
            vf_loss = self._critic_updates(module_id, module, module_batch, settings)
            losses[module_id] = torch.tensor(-step.surrogate_after + vf_loss)
        return {}, losses, {}

    def _actor_step(self, module_id: ModuleID, module: Any, batch: dict[str, Any], settings: TRPOSettings) -> TRPOStepResult:
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
            target_kl=settings.target_kl,
            cg_max_steps=settings.cg_max_steps,
            cg_damping=settings.cg_damping,
            line_search_shrinking_factor=settings.line_search_shrinking_factor,
            line_search_max_iter=settings.line_search_max_iter,
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

    def _critic_updates(self, module_id: ModuleID, module: Any, batch: dict[str, Any], settings: TRPOSettings) -> float:
        mask = batch.get(Columns.LOSS_MASK)
        valid = torch.arange(len(batch[Columns.ACTIONS]), device=self.device)
        if mask is not None:
            valid = valid[mask.bool()]
        targets = batch[Postprocessing.VALUE_TARGETS]
        losses = []
        n = len(valid)
        if n == 0:
            return 0.0
        size = min(settings.batch_size, n)
        # A shared trunk is the actor's (it moves only inside the trust region), so the critic
        # regresses its value head on the trunk's features, computed once per batch.
        shared = bool(getattr(module, "share_encoder", False))
        if shared:
            with torch.no_grad():
                features = module.pi_encoder(batch[Columns.OBS]).pooled
        for _ in range(settings.n_critic_updates):
            order = valid[torch.randperm(n, device=valid.device)]
            for start in range(0, n, size):
                idx = order[start : start + size]
                if shared:
                    values = module.compute_values({}, embeddings=features[idx])
                else:
                    values = module.compute_values({Columns.OBS: _take(batch[Columns.OBS], idx)})
                loss = torch.mean((values - targets[idx]) ** 2)
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


def algorithm_config(trial: "TrialPlan", settings: TRPOSettings) -> TRPOConfig:
    """The RLlib config of a TRPO trial (or stage); the trial's optimizer trains the critic."""
    return settings.apply_to(apply_common(TRPOConfig(), trial, settings, TRPOTorchLearner))


def build(trial: "TrialPlan", hparams: Mapping[str, Any]) -> list[Stage]:
    """TRPO as the registry runs it: one stage."""
    return [Stage("TRPO", algorithm_config(trial, TRPOSettings.from_dict(hparams, task=trial.task)))]
