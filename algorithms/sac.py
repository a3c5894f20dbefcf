"""SAC for discrete actions (Christodoulou 2019) with our modules and our optimizers.

RLlib's SAC (new API stack) does the sampling, replay and losses; this file adds
what our modules need for it:

- ``SACGNNModule`` / ``SACMLPModule``: the cell-fate modules built with two
  Q-networks (``q_heads=2``), each giving Q(s, a) for every action, and a
  ``_forward_train`` that returns what RLlib's discrete SAC loss reads. Action
  probabilities come from the masked logits; their logs from ``log_softmax``, so a
  masked action has probability exactly 0 and a finite log-probability (RLlib's
  default module takes ``log(softmax)``, which is -inf there and NaN once
  multiplied by 0).
- ``SACTorchLearner``: RLlib's SAC learner whose four optimizers (qf, qf_twin,
  policy, alpha) are the trial's, from the optimizer plumbing; per-group settings
  go in ``algo_hparams["optimizer_hparams_by_group"]``.

Settings: :class:`SACSettings` (named as SB3 names them, the seed's values as defaults).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from ray.rllib.algorithms.sac import SACConfig
from ray.rllib.algorithms.sac.sac_learner import (
    ACTION_LOG_PROBS,
    ACTION_LOG_PROBS_NEXT,
    ACTION_PROBS,
    ACTION_PROBS_NEXT,
    QF_PREDS,
    QF_TARGET_NEXT,
    QF_TWIN_PREDS,
)
from ray.rllib.algorithms.sac.torch.sac_torch_learner import SACTorchLearner as RLlibSACTorchLearner
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import QNetAPI, TargetNetworkAPI
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.typing import ModuleID

from envs.errors import UserInputError

from algorithms.common import Stage, apply_common
from algorithms.modules import GNNModule, MLPModule
from algorithms.optimizer_plumbing import OptimizerPlumbingMixin
from algorithms.settings import CommonSettings

if TYPE_CHECKING:
    from algorithms.trial_plan import TrialPlan


@dataclass(frozen=True, kw_only=True)
class SACSettings(CommonSettings):
    """SAC's ``algo_hparams`` (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and
    Applications"; discrete actions: Christodoulou 2019, "Soft Actor-Critic for Discrete
    Action Settings"), named as SB3 names them, with the seed's SB3 values as defaults.

    The learning rate is the trial's optimizer's (the seed's: 3e-4).

    buffer_size: replay capacity in transitions (RLlib: replay_buffer_config.capacity),
        a uniform EpisodeReplayBuffer as SB3's; it only grows as far as the trial's env
        steps, so the large default costs no memory on small budgets.
    batch_size: transitions per gradient step (RLlib: train_batch_size_per_learner).
    tau: Polyak coefficient of the target networks.
    train_freq, gradient_steps: gradient_steps gradient steps every train_freq env
        steps, whatever the number of vectorised envs (RLlib: training_intensity =
        batch_size * gradient_steps / train_freq).
    ent_coef: "auto" (alpha learned, starting at 1.0) or "auto_<alpha0>" (learned,
        starting at alpha0); a fixed alpha is not supported (RLlib: initial_alpha).
    target_entropy: "auto" is RLlib's -1 for a Discrete space, as SB3's -dim(A).
    learning_starts: env steps sampled before the first gradient step
        (RLlib: num_steps_sampled_before_learning_starts).
    gamma: discount (0 for the predict task unless given).
    target_update_interval: target update every this many gradient steps.
    grad_clip: gradient-norm clip (SB3: none).
    steps_per_iteration: env steps one ``train()`` samples (ours; RLlib's
        min_sample_timesteps_per_iteration).
    store_buffer_in_checkpoints: whether checkpoints hold the replay buffer.
    """

    NAME: ClassVar[str] = "SAC"

    buffer_size: int = 1_000_000
    batch_size: int = 256
    tau: float = 0.005
    train_freq: int = 1
    gradient_steps: int = 1
    ent_coef: str = "auto"
    target_entropy: str | float = "auto"
    learning_starts: int = 100
    gamma: float = 0.99
    target_update_interval: int = 1
    grad_clip: float | None = None
    steps_per_iteration: int = 256
    store_buffer_in_checkpoints: bool = False

    def __post_init__(self) -> None:
        ent = self.ent_coef
        if not (isinstance(ent, str) and (ent == "auto" or ent.startswith("auto_"))):
            raise UserInputError(f"SAC ent_coef must be 'auto' or 'auto_<initial alpha>' (alpha is always learned), got {ent!r}")
        super().__post_init__()
        if self.train_freq < 1 or self.gradient_steps < 1:
            raise UserInputError("SAC train_freq and gradient_steps must be positive integers")

    def apply_to(self, config: SACConfig) -> SACConfig:
        """These settings on an RLlib SACConfig (its env runners' vectorisation already set)."""
        initial_alpha = float(self.ent_coef[len("auto_") :]) if self.ent_coef.startswith("auto_") else 1.0
        return config.training(
            train_batch_size_per_learner=self.batch_size,
            gamma=self.gamma,
            tau=self.tau,
            twin_q=True,
            initial_alpha=initial_alpha,
            target_entropy=self.target_entropy,
            n_step=1,
            replay_buffer_config={"type": "EpisodeReplayBuffer", "capacity": self.buffer_size},
            store_buffer_in_checkpoints=self.store_buffer_in_checkpoints,
            training_intensity=self.batch_size * self.gradient_steps / self.train_freq,
            num_steps_sampled_before_learning_starts=self.learning_starts,
            # SB3 counts target updates in gradient steps, RLlib in sampled env steps since the
            # last update (0: after every gradient step).
            target_network_update_freq=0
            if self.target_update_interval <= 1
            else self.target_update_interval * self.train_freq // self.gradient_steps,
            grad_clip=self.grad_clip,
        ).reporting(
            min_time_s_per_iteration=0,
            min_sample_timesteps_per_iteration=max(self.steps_per_iteration, int(config.num_envs_per_env_runner)),
        ).env_runners(rollout_fragment_length=1)


class SACModuleMixin:
    """SAC-discrete forward pass over a CellFateModule built with ``q_heads=2``."""

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        current = {Columns.OBS: batch[Columns.OBS]}
        following = {Columns.OBS: batch[Columns.NEXT_OBS]}
        logits = self.action_logits(current)
        logits_next = self.action_logits(following)
        return {
            Columns.ACTION_DIST_INPUTS: logits,
            ACTION_PROBS: torch.softmax(logits, dim=-1),
            ACTION_LOG_PROBS: torch.log_softmax(logits, dim=-1),
            ACTION_PROBS_NEXT: torch.softmax(logits_next, dim=-1),
            ACTION_LOG_PROBS_NEXT: torch.log_softmax(logits_next, dim=-1),
            QF_PREDS: self.compute_q_values(current, 0),
            QF_TWIN_PREDS: self.compute_q_values(current, 1),
            QF_TARGET_NEXT: self.forward_target(following),
        }


class SACGNNModule(SACModuleMixin, GNNModule, QNetAPI, TargetNetworkAPI):
    """GNNModule with twin per-action Q-heads and target copies, for SAC."""


class SACMLPModule(SACModuleMixin, MLPModule, QNetAPI, TargetNetworkAPI):
    """MLPModule with twin per-action Q-heads and target copies, for SAC."""


SAC_MODULES = {GNNModule: SACGNNModule, MLPModule: SACMLPModule}


class SACTorchLearner(OptimizerPlumbingMixin, RLlibSACTorchLearner):
    """RLlib's SAC losses; qf, qf_twin, policy and alpha optimizers from the trial's settings."""

    def optimizer_groups(self, module_id: ModuleID, config: Any) -> dict[str, list[torch.nn.Parameter]]:
        module = self.module[module_id].unwrapped()
        return {"qf": module.q_parameters(0), "qf_twin": module.q_parameters(1), "policy": module.actor_parameters()}

    def configure_optimizers_for_module(self, module_id: ModuleID, config: Any = None) -> None:
        super().configure_optimizers_for_module(module_id, config)
        self.register_plumbed_optimizer(module_id, "alpha", [self.curr_log_alpha[module_id]])


def algorithm_config(trial: "TrialPlan", settings: SACSettings) -> SACConfig:
    """SAC-discrete for a trial: our module with twin Q-heads, all four optimizers plumbed."""
    algo = apply_common(SACConfig(), trial, settings, SACTorchLearner, module_overrides={"q_heads": 2})
    spec = algo.rl_module_spec
    algo.rl_module(rl_module_spec=RLModuleSpec(module_class=SAC_MODULES[spec.module_class], model_config=spec.model_config))
    return settings.apply_to(algo)


def build(trial: "TrialPlan", hparams: Mapping[str, Any]) -> list[Stage]:
    """SAC as the registry runs it: one stage."""
    return [Stage("SAC", algorithm_config(trial, SACSettings.from_dict(hparams, task=trial.task)))]
