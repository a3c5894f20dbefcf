"""PPO (Schulman et al. 2017) with our modules and optimizers: RLlib's PPO, our learner mixin.

Defaults are for short cell-fate episodes (at most n_stages + MAX_PERTURB
steps, reward at the end) and small budgets: 1024 env steps per iteration from
32 envs stepped in lockstep (registry.COMMON_DEFAULTS), minibatches of 256,
6 epochs, gamma 0.99, GAE lambda 0.95, entropy coefficient 0.01, no KL penalty
(the clip does the work), gradient-norm clip 0.5; gamma 0 for the predict task
(registry.task_defaults). Every key of PPO_DEFAULTS can be set in ``algo_hparams``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner as RLlibPPOTorchLearner

from algorithms.optimizer_plumbing import OptimizerPlumbingMixin
from algorithms.registry import algorithm_settings, apply_common, register_algorithm

if TYPE_CHECKING:
    from algorithms.trial import TrialConfig

PPO_DEFAULTS: dict[str, Any] = {
    "train_batch_size": 1024,
    "minibatch_size": 256,
    "num_epochs": 6,
    "gamma": 0.99,
    "lambda": 0.95,
    "entropy_coeff": 0.01,
    "vf_loss_coeff": 0.5,
    "clip_param": 0.2,
    "vf_clip_param": 10.0,
    "use_kl_loss": False,
    "kl_coeff": 0.0,
    "grad_clip": 0.5,
}


class PPOTorchLearner(OptimizerPlumbingMixin, RLlibPPOTorchLearner):
    """RLlib's PPO loss; optimizer (one over actor + critic) from the trial's settings."""


def ppo_config(config: "TrialConfig", hparams: dict) -> PPOConfig:
    h = algorithm_settings(PPO_DEFAULTS, config, hparams)
    algo = apply_common(PPOConfig(), config, hparams, PPOTorchLearner)
    return algo.training(
        train_batch_size_per_learner=int(h["train_batch_size"]),
        minibatch_size=int(h["minibatch_size"]),
        num_epochs=int(h["num_epochs"]),
        gamma=float(h["gamma"]),
        lambda_=float(h["lambda"]),
        entropy_coeff=float(h["entropy_coeff"]),
        vf_loss_coeff=float(h["vf_loss_coeff"]),
        clip_param=float(h["clip_param"]),
        vf_clip_param=float(h["vf_clip_param"]),
        use_kl_loss=bool(h["use_kl_loss"]),
        kl_coeff=float(h["kl_coeff"]),
        grad_clip=h["grad_clip"],
        grad_clip_by="global_norm",
    )


register_algorithm("PPO", config_builder=ppo_config, hparams=PPO_DEFAULTS)
