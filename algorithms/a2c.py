"""A2C (synchronous advantage actor-critic) on RLlib's new API stack.

RLlib 2.60 has no A2C, so this reuses PPO's sampling loop and learner connectors
(one extra bootstrap timestep per episode, then GAE advantages and value targets)
and replaces only the loss and the update schedule: one gradient step on the whole
train batch per iteration (no minibatches, one epoch), as in Mnih et al. 2016,
"Asynchronous Methods for Deep Reinforcement Learning", and SB3's A2C.

Loss (masked mean over the batch)::

    L = -logp(a|s) * A  +  vf_loss_coeff * (V(s) - V_target)^2  -  entropy_coeff * H(pi(.|s))

RLlib's GAE connector standardises advantages; SB3's A2C does so only with
``normalize_advantage=True``.

``sampling: flat`` (the default) samples and computes GAE through
algorithms.flat_on_policy (arrays from the batched env) instead of PPO's episode-based
env runners and connectors; the loss and the learner are the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from ray.rllib.algorithms.ppo.ppo import PPO, PPOConfig
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.learner import ENTROPY_KEY, POLICY_LOSS_KEY, VF_LOSS_KEY
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.utils.torch_utils import explained_variance

from algorithms.common import Stage, apply_common
from algorithms.flat_on_policy import FlatOnPolicyConfigMixin, FlatOnPolicyMixin, OnPolicySamplingSettings
from algorithms.optimizer_plumbing import FiniteGradientsMixin, OptimizerPlumbingMixin
from algorithms.settings import key

if TYPE_CHECKING:
    from algorithms.trial_plan import TrialPlan


@dataclass(frozen=True, kw_only=True)
class A2CSettings(OnPolicySamplingSettings):
    """A2C's ``algo_hparams`` (Mnih et al. 2016, "Asynchronous Methods for Deep Reinforcement
    Learning", synchronous form): SB3's A2C defaults except the batch (SB3's name in brackets).

    train_batch_size: env steps per update, from all envs together. SB3 takes
        n_steps=5 per env; RLlib's per-iteration overhead makes 256 per batch the floor.
    gamma: discount (0 for the predict task unless given).
    lambda: GAE lambda; 1.0 is the plain n-step return (SB3: gae_lambda).
    entropy_coeff: weight of the entropy bonus (SB3: ent_coef).
    vf_loss_coeff: weight of the value loss (SB3: vf_coef).
    grad_clip: global gradient-norm clip (SB3: max_grad_norm).
    sampling: "flat" (default; algorithms.flat_on_policy) or "rllib" (PPO's env runners
        and connectors); the same loss either way, and an env other than
        BatchedCellFateEnv always samples through RLlib.
    """

    NAME: ClassVar[str] = "A2C"
    # SB3's names of the settings that have one, for side-by-side runs (tournament bench cartpole).
    SB3_NAMES: ClassVar[Mapping[str, str]] = {
        "gamma": "gamma",
        "lambda_": "gae_lambda",
        "entropy_coeff": "ent_coef",
        "vf_loss_coeff": "vf_coef",
        "grad_clip": "max_grad_norm",
    }

    train_batch_size: int = 256
    gamma: float = 0.99
    lambda_: float = field(default=1.0, metadata=key("lambda"))
    entropy_coeff: float = 0.0
    vf_loss_coeff: float = 0.5
    grad_clip: float | None = 0.5

    def apply_to(self, config: "A2CConfig") -> "A2CConfig":
        """These settings on an A2CConfig."""
        config.on_policy_sampling(self.sampling)
        return config.training(
            train_batch_size_per_learner=self.train_batch_size,
            gamma=self.gamma,
            lambda_=self.lambda_,
            entropy_coeff=self.entropy_coeff,
            vf_loss_coeff=self.vf_loss_coeff,
            grad_clip=self.grad_clip,
            grad_clip_by="global_norm",
        ).framework(torch_skip_nan_gradients=True)  # the learner's FiniteGradientsMixin checks instead


def masked_mean_fn(mask: torch.Tensor | None):
    """Mean over valid rows: PPO's connectors add a bootstrap timestep per episode marked invalid."""
    if mask is None:
        return torch.mean
    mask = mask.bool()
    n_valid = mask.sum().clamp(min=1)
    return lambda data: torch.sum(data[mask]) / n_valid


class WholeBatchConfig(PPOConfig):
    """PPOConfig for algorithms that take one update per train batch (A2C, TRPO): one epoch,
    no minibatches, no KL penalty."""

    algorithm_name = "this algorithm"

    def __init__(self, algo_class: type | None = None):
        super().__init__(algo_class=algo_class)
        self.num_epochs = 1
        self.minibatch_size = None
        self.shuffle_batch_per_epoch = False
        self.use_kl_loss = False
        self.kl_coeff = 0.0

    def validate(self) -> None:
        # One step on the whole batch is what makes A2C rather than a clip-free PPO.
        super().validate()
        if self.num_epochs != 1 or self.minibatch_size is not None or self.use_kl_loss:
            raise ValueError(
                f"{self.algorithm_name} takes one update per whole batch and has no KL loss: num_epochs must be 1, "
                f"minibatch_size None and use_kl_loss False (got {self.num_epochs}, {self.minibatch_size}, {self.use_kl_loss})"
            )


class A2CConfig(FlatOnPolicyConfigMixin, WholeBatchConfig):
    """PPOConfig run as A2C (see A2CSettings for the tournament's values); only the loss differs."""

    algorithm_name = "A2C"

    def __init__(self, algo_class: type | None = None):
        super().__init__(algo_class=algo_class or A2C)

    def get_default_learner_class(self) -> type:
        return A2CTorchLearner


class A2C(FlatOnPolicyMixin, PPO):
    """PPO's training_step (or the flat one, algorithms.flat_on_policy) with A2CConfig
    (1 epoch, whole batch) and the A2C learner."""

    @classmethod
    def get_default_config(cls) -> A2CConfig:
        return A2CConfig()


def a2c_loss(
    logp: torch.Tensor,
    entropy: torch.Tensor,
    values: torch.Tensor,
    advantages: torch.Tensor,
    value_targets: torch.Tensor,
    vf_loss_coeff: float,
    entropy_coeff: float,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total A2C loss and its parts; a pure function so its gradient can be checked by hand."""
    mean = masked_mean_fn(mask)
    policy_loss = mean(-logp * advantages.detach())
    vf_loss = mean((values - value_targets.detach()) ** 2)
    mean_entropy = mean(entropy)
    total = policy_loss + vf_loss_coeff * vf_loss - entropy_coeff * mean_entropy
    return total, {POLICY_LOSS_KEY: policy_loss, VF_LOSS_KEY: vf_loss, ENTROPY_KEY: mean_entropy}


class A2CTorchLearner(FiniteGradientsMixin, OptimizerPlumbingMixin, PPOTorchLearner):
    """PPOTorchLearner (GAE connectors, entropy schedule) with the A2C loss and our optimizers."""

    def compute_loss_for_module(
        self, *, module_id: str, config: A2CConfig, batch: dict[str, Any], fwd_out: dict[str, Any]
    ) -> torch.Tensor:
        module = self.module[module_id].unwrapped()
        dist = module.get_train_action_dist_cls().from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
        values = module.compute_values(batch, embeddings=fwd_out.get(Columns.EMBEDDINGS))
        total, parts = a2c_loss(
            logp=dist.logp(batch[Columns.ACTIONS]),
            entropy=dist.entropy(),
            values=values,
            advantages=batch[Postprocessing.ADVANTAGES],
            value_targets=batch[Postprocessing.VALUE_TARGETS],
            vf_loss_coeff=config.vf_loss_coeff,
            entropy_coeff=float(self.entropy_coeff_schedulers_per_module[module_id].get_current_value()),
            mask=batch.get(Columns.LOSS_MASK),
        )
        parts["vf_explained_var"] = explained_variance(batch[Postprocessing.VALUE_TARGETS], values)
        self.metrics.log_dict(parts, key=module_id, window=1)
        return total


def algorithm_config(trial: "TrialPlan", settings: A2CSettings) -> A2CConfig:
    """The RLlib config of an A2C trial (or stage): one gradient step per batch of train_batch_size env steps."""
    return settings.apply_to(apply_common(A2CConfig(), trial, settings, A2CTorchLearner))


def build(trial: "TrialPlan", hparams: Mapping[str, Any]) -> list[Stage]:
    """A2C as the registry runs it: one stage."""
    return [Stage("A2C", algorithm_config(trial, A2CSettings.from_dict(hparams, task=trial.task)))]
