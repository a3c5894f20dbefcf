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

Settings (``algo_hparams``), named as SB3 names them, with the seed's values as
defaults: learning rate from the trial's optimizer (seed: 3e-4), buffer_size 1e6
(``replay_buffer_config.capacity``; a uniform ``EpisodeReplayBuffer`` as SB3's,
which only grows as far as the trial's env steps, so the large default costs no
memory on small budgets), batch_size 256, tau 0.005, train_freq 1 and
gradient_steps 1 (one gradient step per environment transition:
``training_intensity = batch_size * gradient_steps / train_freq``, whatever the
number of vectorised envs), ent_coef "auto" (alpha learned from 1.0; "auto_0.1"
starts it at 0.1) with RLlib's "auto" target entropy (-1 for a Discrete space,
as SB3's -dim(A)), learning_starts 100, gamma 0.99, target_update_interval 1.
``steps_per_iteration`` (default 256) is the env steps one ``train()`` samples.
"""

from __future__ import annotations

from typing import Any

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
from ray.rllib.utils.typing import ModuleID

from algorithms.modules import GNNModule, MLPModule
from algorithms.optimizer_plumbing import OptimizerPlumbingMixin

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


def sac_training(config: SACConfig, h: dict[str, Any], num_envs: int) -> SACConfig:
    """Map SB3-named settings `h` onto an RLlib SACConfig (see the module docstring)."""
    from envs.errors import UserInputError

    ent = h["ent_coef"]
    if not (isinstance(ent, str) and (ent == "auto" or ent.startswith("auto_"))):
        raise UserInputError(f"SAC ent_coef must be 'auto' or 'auto_<initial alpha>' (alpha is always learned), got {ent!r}")
    initial_alpha = float(ent[len("auto_") :]) if ent.startswith("auto_") else 1.0
    batch_size = int(h["batch_size"])
    if int(h["train_freq"]) < 1 or int(h["gradient_steps"]) < 1:
        raise UserInputError("SAC train_freq and gradient_steps must be positive integers")
    return config.training(
        train_batch_size_per_learner=batch_size,
        gamma=float(h["gamma"]),
        tau=float(h["tau"]),
        twin_q=True,
        initial_alpha=initial_alpha,
        target_entropy=h["target_entropy"],
        n_step=1,
        replay_buffer_config={"type": "EpisodeReplayBuffer", "capacity": int(h["buffer_size"])},
        store_buffer_in_checkpoints=bool(h["store_buffer_in_checkpoints"]),
        training_intensity=batch_size * int(h["gradient_steps"]) / int(h["train_freq"]),
        num_steps_sampled_before_learning_starts=int(h["learning_starts"]),
        # SB3 counts target updates in gradient steps, RLlib in sampled env steps since the
        # last update (0: after every gradient step).
        target_network_update_freq=0
        if int(h["target_update_interval"]) <= 1
        else int(h["target_update_interval"]) * int(h["train_freq"]) // int(h["gradient_steps"]),
        grad_clip=h["grad_clip"],
    ).reporting(
        min_time_s_per_iteration=0,
        min_sample_timesteps_per_iteration=max(int(h["steps_per_iteration"]), num_envs),
    ).env_runners(rollout_fragment_length=1)
