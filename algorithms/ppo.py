"""PPO with our modules and optimizers: RLlib's PPO, our learner mixin, the settings in one place."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner as RLlibPPOTorchLearner

from algorithms.common import Stage, apply_common
from algorithms.optimizer_plumbing import OptimizerPlumbingMixin
from algorithms.settings import CommonSettings, key

if TYPE_CHECKING:
    from algorithms.trial_plan import TrialPlan


@dataclass(frozen=True, kw_only=True)
class PPOSettings(CommonSettings):
    """PPO's ``algo_hparams`` (Schulman et al. 2017, "Proximal Policy Optimization Algorithms").

    Set for short cell-fate episodes (at most n_stages + MAX_PERTURB steps, reward at
    the end) and small budgets. SB3's name in brackets where it differs.

    train_batch_size: env steps sampled per iteration, from all envs together (SB3:
        n_steps * n_envs).
    minibatch_size: rows per gradient step (SB3: batch_size).
    num_epochs: passes over each train batch (SB3: n_epochs).
    gamma: discount (0 for the predict task unless given).
    lambda: GAE lambda (SB3: gae_lambda).
    entropy_coeff: weight of the entropy bonus (SB3: ent_coef).
    vf_loss_coeff: weight of the value loss (SB3: vf_coef).
    clip_param: the policy ratio's clip range (SB3: clip_range).
    vf_clip_param: clip of the value loss (SB3: clip_range_vf, there off by default).
    use_kl_loss, kl_coeff: an adaptive KL penalty on top of the clip; off, the clip does the work.
    grad_clip: global gradient-norm clip (SB3: max_grad_norm).
    """

    NAME: ClassVar[str] = "PPO"

    train_batch_size: int = 1024
    minibatch_size: int = 256
    num_epochs: int = 6
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
        """These settings on an RLlib PPOConfig."""
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
        )


class PPOTorchLearner(OptimizerPlumbingMixin, RLlibPPOTorchLearner):
    """RLlib's PPO loss; optimizer (one over actor + critic) from the trial's settings."""


def algorithm_config(trial: "TrialPlan", settings: PPOSettings) -> PPOConfig:
    """The RLlib config of a PPO trial (or stage)."""
    return settings.apply_to(apply_common(PPOConfig(), trial, settings, PPOTorchLearner))


def build(trial: "TrialPlan", hparams: Mapping[str, Any]) -> list[Stage]:
    """PPO as the registry runs it: one stage."""
    return [Stage("PPO", algorithm_config(trial, PPOSettings.from_dict(hparams, task=trial.task)))]
