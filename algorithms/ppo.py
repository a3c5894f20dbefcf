"""PPO with our modules and optimizers: RLlib's PPO, our learner mixin, the settings in one place.

``sampling: flat`` (the default) runs RLlib's PPO learner and loss on batches sampled by
algorithms.flat_on_policy (arrays from the batched env, GAE in numpy) instead of RLlib's
episode-based env runners and connectors; ``sampling: rllib`` is RLlib's PPO unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ray.rllib.algorithms.ppo import PPO, PPOConfig
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner as RLlibPPOTorchLearner

from algorithms.common import Stage, apply_common
from algorithms.flat_on_policy import FlatOnPolicyConfigMixin, FlatOnPolicyMixin, OnPolicySamplingSettings
from algorithms.optimizer_plumbing import FiniteGradientsMixin, OptimizerPlumbingMixin
from algorithms.settings import key

if TYPE_CHECKING:
    from algorithms.trial_plan import TrialPlan


@dataclass(frozen=True, kw_only=True)
class PPOSettings(OnPolicySamplingSettings):
    """PPO's ``algo_hparams`` (Schulman et al. 2017, "Proximal Policy Optimization Algorithms").

    Set for short cell-fate episodes (at most n_stages + MAX_PERTURB steps, reward at
    the end) and small budgets. SB3's name in brackets where it differs.

    train_batch_size: env steps sampled per iteration, from all envs together (SB3:
        n_steps * n_envs).
    minibatch_size: rows per gradient step (SB3: batch_size).
    num_epochs: passes over each train batch (SB3: n_epochs). 8 keeps the update intensity
        PPO had under RLlib's sampling loop: there every episode chunk adds a bootstrap row
        that takes a minibatch slot (masked in the loss), so 6 epochs of 1024 env steps in
        minibatches of 256 were about 29-31 gradient steps on these 4-6 step episodes; the
        flat loop takes exactly epochs x batch / minibatch (SB3's count), 32 at 8 epochs.
        (6 epochs, 24 steps, took more env steps to 90% on predict: seeds 0-7, GNN.)
    gamma: discount (0 for the predict task unless given).
    lambda: GAE lambda (SB3: gae_lambda).
    entropy_coeff: weight of the entropy bonus (SB3: ent_coef).
    vf_loss_coeff: weight of the value loss (SB3: vf_coef).
    clip_param: the policy ratio's clip range (SB3: clip_range).
    vf_clip_param: clip of the value loss (SB3: clip_range_vf, there off by default).
    use_kl_loss, kl_coeff: an adaptive KL penalty on top of the clip; off, the clip does the work.
    grad_clip: global gradient-norm clip (SB3: max_grad_norm).
    sampling: "flat" (default; algorithms.flat_on_policy: the batched env stepped into
        arrays, GAE in numpy, every epoch a fresh shuffle) or "rllib" (RLlib's env
        runners, episodes and connectors; kept to compare with). Either way RLlib's
        PPO learner and loss; an env other than BatchedCellFateEnv always samples
        through RLlib.
    """

    NAME: ClassVar[str] = "PPO"

    train_batch_size: int = 1024
    minibatch_size: int = 256
    num_epochs: int = 8
    gamma: float = 0.99
    lambda_: float = field(default=0.95, metadata=key("lambda"))
    entropy_coeff: float = 0.01
    vf_loss_coeff: float = 0.5
    clip_param: float = 0.2
    vf_clip_param: float = 10.0
    use_kl_loss: bool = False
    kl_coeff: float = 0.0
    grad_clip: float | None = 0.5

    def apply_to(self, config: PPOConfig) -> PPOConfig:
        """These settings on an RLlib PPOConfig (the sampling choice only on a FlatPPOConfig)."""
        if isinstance(config, FlatOnPolicyConfigMixin):
            config.on_policy_sampling(self.sampling)
        elif self.sampling == "flat":
            raise ValueError("flat sampling needs a FlatPPOConfig (algorithms.ppo.algorithm_config builds one)")
        return config.training(
            train_batch_size_per_learner=self.train_batch_size,
            minibatch_size=self.minibatch_size,
            num_epochs=self.num_epochs,
            gamma=self.gamma,
            lambda_=self.lambda_,
            entropy_coeff=self.entropy_coeff,
            vf_loss_coeff=self.vf_loss_coeff,
            clip_param=self.clip_param,
            vf_clip_param=self.vf_clip_param,
            use_kl_loss=self.use_kl_loss,
            kl_coeff=self.kl_coeff,
            grad_clip=self.grad_clip,
            grad_clip_by="global_norm",
        ).framework(
            # The learner makes non-finite gradients finite itself (FiniteGradientsMixin), in
            # one check instead of RLlib's two per parameter and optimizer step.
            torch_skip_nan_gradients=True
        )


class PPOTorchLearner(FiniteGradientsMixin, OptimizerPlumbingMixin, RLlibPPOTorchLearner):
    """RLlib's PPO loss; optimizer (one over actor + critic) from the trial's settings."""


class FlatPPOConfig(FlatOnPolicyConfigMixin, PPOConfig):
    """PPOConfig of :class:`FlatPPO`, with ``sampling`` "flat" or "rllib"."""

    def __init__(self, algo_class: type | None = None):
        super().__init__(algo_class=algo_class or FlatPPO)


class FlatPPO(FlatOnPolicyMixin, PPO):
    """RLlib's PPO whose training_step samples through algorithms.flat_on_policy under ``sampling: flat``."""

    @classmethod
    def get_default_config(cls) -> FlatPPOConfig:
        return FlatPPOConfig()


def algorithm_config(trial: "TrialPlan", settings: PPOSettings) -> PPOConfig:
    """The RLlib config of a PPO trial (or stage)."""
    return settings.apply_to(apply_common(FlatPPOConfig(), trial, settings, PPOTorchLearner))


def build(trial: "TrialPlan", hparams: Mapping[str, Any]) -> list[Stage]:
    """PPO as the registry runs it: one stage."""
    return [Stage("PPO", algorithm_config(trial, PPOSettings.from_dict(hparams, task=trial.task)))]
