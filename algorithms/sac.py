"""SAC for discrete actions (Christodoulou 2019) and for continuous gene weights (Haarnoja et al.
2018, the ODE worlds) with our modules, our optimizers and a flat replay path.

RLlib's SAC (new API stack) does the sampling, the losses and the learner; this file
adds what our modules need for it and a faster replay:

- ``SACGNNModule`` / ``SACMLPModule``: the cell-fate modules built with two
  Q-networks (``q_heads=2``), each giving Q(s, a) for every action, and a
  ``_forward_train`` that returns what RLlib's discrete SAC loss reads. Action
  probabilities come from the masked logits; their logs from ``log_softmax``, so a
  masked action has probability exactly 0 and a finite log-probability (RLlib's
  default module takes ``log(softmax)``, which is -inf there and NaN once
  multiplied by 0).
- ``SACTorchLearner``: RLlib's SAC learner whose four optimizers (qf, qf_twin,
  policy, alpha) are the trial's, from the optimizer plumbing; per-group settings
  go in ``algo_hparams["optimizer_hparams_by_group"]``. Its gradient step gives
  RLlib's parameters with less work: one backward pass of the summed losses instead
  of four (the losses depend on disjoint parameters), fused Adam kernels (the
  optimizer plumbing's, for every algorithm), the Polyak step in one foreach kernel,
  and, under the flat replay, a round's minibatches taken in one ``Learner.update``
  call (``round_update``).
- ``FlatReplaySAC`` (``replay: flat``, the default): RLlib's SAC algorithm whose
  training_step keeps transitions in an :class:`algorithms.flat_replay.FlatReplayBuffer`
  and hands each round's uniform batches to ``LearnerGroup.update`` as tensors, one
  minibatch per gradient step, instead of slicing ``SingleAgentEpisode`` objects and
  running the learner connector for every gradient step (RLlib's
  ``EpisodeReplayBuffer``, ``replay: rllib``). The losses, optimizers and the
  Learner / RLModule API are RLlib's in both; see :class:`SACSettings` for what
  the flat path counts.

Settings: :class:`SACSettings` (named as SB3 names them, the seed's values as defaults).

Over 300 lines on purpose: the settings, the modules' SAC heads, the learner and the flat
training step are one algorithm, read top to bottom in one file (the replay buffer itself is
in ``algorithms.flat_replay``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from ray.rllib.algorithms.sac import SAC, SACConfig
from ray.rllib.algorithms.sac.sac_learner import (
    ACTION_DIST_INPUTS_NEXT,
    ACTION_LOG_PROBS,
    ACTION_LOG_PROBS_NEXT,
    ACTION_PROBS,
    ACTION_PROBS_NEXT,
    QF_PREDS,
    QF_TARGET_NEXT,
    QF_TWIN_PREDS,
)
from ray.rllib.algorithms.sac.torch.sac_torch_learner import SACTorchLearner as RLlibSACTorchLearner
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import TorchSquashedGaussian
from ray.rllib.core.rl_module.apis import QNetAPI, TargetNetworkAPI
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LAST_TARGET_UPDATE_TS,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_AGENT_STEPS_SAMPLED_LIFETIME,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_TARGET_UPDATES,
    REPLAY_BUFFER_ADD_DATA_TIMER,
    REPLAY_BUFFER_SAMPLE_TIMER,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TD_ERROR_KEY,
    TIMERS,
)
from ray.rllib.utils.typing import ModuleID

from envs.errors import UserInputError, choices_error

from algorithms.common import Stage, apply_common, local_learner
from algorithms.flat_replay import FlatReplayBuffer, sac_train_batch, transitions_from_episodes
from algorithms.modules import GNNModule, MLPModule
from algorithms.optimizer_plumbing import FiniteGradientsMixin, OptimizerPlumbingMixin
from algorithms.rllib_private import RoundUpdateMixin, disable_dqn_target_updates, discard_sac_temp_losses, sample_episodes
from algorithms.settings import CommonSettings

if TYPE_CHECKING:
    from algorithms.trial_plan import TrialPlan

REPLAY_KINDS = ("flat", "rllib")
# The settings a cost calibration (tournament plan) runs SAC with, so that its one short
# iteration runs at a trial's steady rate: no gradient step in the first learning_starts env
# steps made a 256-step calibration 1.6x faster than the rest of a trial; 64-step iterations
# (64 gradient steps, seconds with the GNN) keep the calibration short.
STEADY_STATE_HPARAMS: dict[str, Any] = {"learning_starts": 0, "steps_per_iteration": 64}


@dataclass(frozen=True, kw_only=True)
class SACSettings(CommonSettings):
    """SAC's ``algo_hparams`` (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and
    Applications"; discrete actions: Christodoulou 2019, "Soft Actor-Critic for Discrete
    Action Settings"), named as SB3 names them, with the seed's SB3 values as defaults.

    The learning rate is the trial's optimizer's (the seed's: 3e-4).

    replay: "flat" (default) or "rllib". Both replay uniformly, with replacement, single
        transitions (n_step 1) of the last buffer_size env steps and feed the same
        RLlib loss. "flat": transitions in preallocated numpy arrays
        (algorithms.flat_replay), each round's batches drawn at once and handed to the
        learner as tensors in one update call, one batch_size slice per gradient step, the target networks
        moved after every target_update_interval-th gradient step. "rllib": RLlib's
        EpisodeReplayBuffer and training_step (episode slices and the learner
        connector for every gradient step; many times slower, kept to compare with).
    buffer_size: replay capacity in transitions (RLlib: replay_buffer_config.capacity);
        memory grows with the env steps held, so the large default costs no memory on
        small budgets.
    batch_size: transitions per gradient step (RLlib: train_batch_size_per_learner).
    tau: Polyak coefficient of the target networks.
    train_freq, gradient_steps: gradient_steps gradient steps every train_freq env
        steps, whatever the number of vectorised envs (RLlib: training_intensity =
        batch_size * gradient_steps / train_freq). The flat replay runs them at the
        end of each sample round (num_envs_per_env_runner env steps per runner),
        carrying a fraction to the next round; RLlib rounds the ratio per round.
    ent_coef: "auto" (alpha learned, starting at 1.0) or "auto_<alpha0>" (learned,
        starting at alpha0); a fixed alpha is not supported (RLlib: initial_alpha).
    target_entropy: "auto" is RLlib's -1 for a Discrete space, as SB3's -dim(A).
    learning_starts: env steps sampled before the first gradient step
        (RLlib: num_steps_sampled_before_learning_starts).
    gamma: discount (0 for the predict task unless given).
    target_update_interval: target update every this many gradient steps (the
        "rllib" replay approximates it in sampled env steps).
    grad_clip: gradient-norm clip (SB3: none).
    steps_per_iteration: env steps one ``train()`` samples (ours; RLlib's
        min_sample_timesteps_per_iteration).
    store_buffer_in_checkpoints: whether checkpoints hold the replay buffer (flat
        replay only; RLlib 2.60's new stack stores no buffer).
    """

    NAME: ClassVar[str] = "SAC"

    replay: str = "flat"
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
        if self.replay not in REPLAY_KINDS:
            raise choices_error("SAC replay", self.replay, REPLAY_KINDS)
        super().__post_init__()
        if self.train_freq < 1 or self.gradient_steps < 1:
            raise UserInputError("SAC train_freq and gradient_steps must be positive integers")
        if self.buffer_size < 1 or self.batch_size < 1 or self.target_update_interval < 1:
            raise UserInputError("SAC buffer_size, batch_size and target_update_interval must be positive integers")

    def apply_to(self, config: SACConfig) -> SACConfig:
        """These settings on an RLlib SACConfig (its env runners' vectorisation already set)."""
        initial_alpha = float(self.ent_coef[len("auto_") :]) if self.ent_coef.startswith("auto_") else 1.0
        config = config.training(
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
        ).env_runners(rollout_fragment_length=1).framework(
            # The learner makes non-finite gradients finite itself (FiniteGradientsMixin, as
            # RLlib's default does), in one check instead of two per parameter.
            torch_skip_nan_gradients=True
        )
        if isinstance(config, FlatSACConfig):
            config.flat_replay(
                replay=self.replay,
                gradient_steps=self.gradient_steps,
                train_freq=self.train_freq,
                target_update_interval=self.target_update_interval,
            )
        elif self.replay == "flat":
            raise ValueError("the flat replay needs a FlatSACConfig (algorithms.sac.algorithm_config builds one)")
        return config


# ---- modules --------------------------------------------------------------------------------


class SACModuleMixin:
    """SAC's forward pass over a CellFateModule built with ``q_heads=2``: discrete (per-action
    Q-values, exact expectations over the masked softmax) or continuous (gene weights through
    a tanh-squashed Gaussian, Q(s, a) of a reparameterised sample, as RLlib's and SB3's SAC)."""

    def get_inference_action_dist_cls(self) -> type:
        return TorchSquashedGaussian if self.continuous else super().get_inference_action_dist_cls()

    def deterministic_actions(self, dist_inputs: torch.Tensor) -> torch.Tensor:
        if self.continuous:  # the squashed mean (RLlib's to_deterministic gives the unsquashed one)
            return torch.tanh(dist_inputs[..., : self.n_actions])
        return super().deterministic_actions(dist_inputs)

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        if self.continuous:
            return self._forward_train_continuous(batch)
        current = {Columns.OBS: batch[Columns.OBS]}
        following = {Columns.OBS: batch[Columns.NEXT_OBS]}
        logits = self.action_logits(current)
        # The next state's terms only enter the loss through the detached TD target, so
        # they are computed without a graph (the same values, less autograd bookkeeping).
        with torch.no_grad():
            logits_next = self.action_logits(following)
            target_next = self.forward_target(following)
        return {
            Columns.ACTION_DIST_INPUTS: logits,
            ACTION_PROBS: torch.softmax(logits, dim=-1),
            ACTION_LOG_PROBS: torch.log_softmax(logits, dim=-1),
            ACTION_PROBS_NEXT: torch.softmax(logits_next, dim=-1),
            ACTION_LOG_PROBS_NEXT: torch.log_softmax(logits_next, dim=-1),
            QF_PREDS: self.compute_q_values(current, 0),
            QF_TWIN_PREDS: self.compute_q_values(current, 1),
            QF_TARGET_NEXT: target_next,
        }


    def _forward_train_continuous(self, batch: dict[str, Any]) -> dict[str, Any]:
        """What RLlib's continuous SAC loss reads (its DefaultSACTorchRLModule's keys)."""
        obs, taken = batch[Columns.OBS], batch[Columns.ACTIONS]
        dist_cls = self.get_train_action_dist_cls()
        inputs = self.action_logits({Columns.OBS: obs})
        resampled, logp = dist_cls.from_logits(inputs).rsample_and_logp()
        with torch.no_grad():
            inputs_next = self.action_logits({Columns.OBS: batch[Columns.NEXT_OBS]})
            next_actions, logp_next = dist_cls.from_logits(inputs_next).sample_and_logp()
            target_next = self.forward_target({Columns.OBS: batch[Columns.NEXT_OBS], Columns.ACTIONS: next_actions})
        # Q of the resampled actions for the actor loss: gradients reach the policy through the
        # action, never the Q-networks (RLlib's straight-through pass).
        q_params = [p for i in range(len(self.qf_heads)) for p in self.q_parameters(i)]
        for p in q_params:
            p.requires_grad_(False)
        try:
            q_curr = self.compute_q_values({Columns.OBS: obs, Columns.ACTIONS: resampled})
        finally:
            for p in q_params:
                p.requires_grad_(True)
        taken_batch = {Columns.OBS: obs, Columns.ACTIONS: taken}
        return {
            Columns.ACTION_DIST_INPUTS: inputs,
            ACTION_DIST_INPUTS_NEXT: inputs_next,
            QF_PREDS: self.compute_q_values(taken_batch, 0),
            QF_TWIN_PREDS: self.compute_q_values(taken_batch, 1),
            "logp_resampled": logp,
            "logp_next_resampled": logp_next,
            "q_curr": q_curr,
            "q_target_next": target_next,
        }


class SACGNNModule(SACModuleMixin, GNNModule, QNetAPI, TargetNetworkAPI):
    """GNNModule with twin per-action Q-heads and target copies, for SAC."""


class SACMLPModule(SACModuleMixin, MLPModule, QNetAPI, TargetNetworkAPI):
    """MLPModule with twin per-action Q-heads and target copies, for SAC."""


SAC_MODULES = {GNNModule: SACGNNModule, MLPModule: SACMLPModule}


# ---- learner --------------------------------------------------------------------------------


@torch.no_grad()
def polyak_update(main: torch.nn.Module, target: torch.nn.Module, tau: float) -> None:
    """target <- tau * main + (1 - tau) * target, parameter by parameter (RLlib's
    update_target_network does the same through two state dicts, ten times slower)."""
    polyak_update_tensors(list(main.parameters()), list(target.parameters()), tau, list(main.buffers()), list(target.buffers()))


@torch.no_grad()
def polyak_update_tensors(
    main: list[torch.Tensor], target: list[torch.Tensor], tau: float,
    main_buffers: list[torch.Tensor] = (), target_buffers: list[torch.Tensor] = (),
) -> None:
    """target[i] <- tau * main[i] + (1 - tau) * target[i] for every i, in one foreach kernel
    (torch.lerp per tensor gives the same values, one call per parameter); buffers are copied."""
    if len(main) != len(target) or len(main_buffers) != len(target_buffers):
        raise ValueError(f"{len(main)} main tensors but {len(target)} target tensors, or the buffers differ in number")
    if target:
        torch._foreach_lerp_(target, main, tau)
    if target_buffers:
        torch._foreach_copy_(target_buffers, main_buffers)


def _rows(value: Any, start: int, stop: int) -> Any:
    """Rows start:stop of a batch column (nested dicts of tensors), as views."""
    if isinstance(value, Mapping):
        return {k: _rows(v, start, stop) for k, v in value.items()}
    return value[start:stop]


class SACTorchLearner(RoundUpdateMixin, FiniteGradientsMixin, OptimizerPlumbingMixin, RLlibSACTorchLearner):
    """RLlib's SAC losses; qf, qf_twin, policy and alpha optimizers from the trial's settings.

    Under the flat replay (``config.replay == "flat"``) one ``update`` call holds a
    whole round's gradient steps as minibatches, so the target networks move here,
    after every ``target_update_interval``-th optimizer step, and DQNLearner's
    once-per-update target step is switched off (its last-update mark is +inf)."""

    def build(self) -> None:
        super().build()
        self.flat_targets = getattr(self.config, "replay", "rllib") == "flat"
        self.flat_gradient_steps = 0
        if self.flat_targets:
            disable_dqn_target_updates(self)

    def round_update(self, batch: dict[str, Any], step: Any) -> tuple[Any, Any, Any]:
        # The flat replay hands Learner.update a whole round (gradient steps x batch_size rows,
        # no minibatch_size): RLlib's gradient step runs here on each batch_size slice in turn,
        # as views, instead of Learner.update slicing SampleBatches and logging per minibatch.
        # The returned outputs and losses are the last step's, as Learner.update keeps them.
        size = int(self.config.train_batch_size_per_learner)
        rows = max((len(b[Columns.REWARDS]) for b in batch.values()), default=0)
        if not self.flat_targets or rows <= size:
            return step(batch)
        out: tuple[Any, Any, Any] = ({}, {}, {})
        for start in range(0, rows, size):
            out = step({mid: _rows(b, start, start + size) for mid, b in batch.items()})
        return out

    def optimizer_groups(self, module_id: ModuleID, config: Any) -> dict[str, list[torch.nn.Parameter]]:
        module = self.module[module_id].unwrapped()
        return {"qf": module.q_parameters(0), "qf_twin": module.q_parameters(1), "policy": module.actor_parameters()}

    def configure_optimizers_for_module(self, module_id: ModuleID, config: Any = None) -> None:
        super().configure_optimizers_for_module(module_id, config)
        self.register_plumbed_optimizer(module_id, "alpha", [self.curr_log_alpha[module_id]])

    def compute_gradients(self, loss_per_module: Any, **kwargs: Any) -> Any:
        # RLlib's SAC learner backpropagates each optimizer's loss on its own (four backward
        # passes through one retained graph). Each loss depends on its own optimizer's
        # parameters only (the other terms enter it detached: the TD target, Q in the policy
        # loss, the entropy in the alpha loss), so one backward pass of their sum, which is
        # the total loss RLlib returns, gives every parameter the same gradient.
        discard_sac_temp_losses(self)
        return TorchLearner.compute_gradients(self, loss_per_module, **kwargs)

    def apply_gradients(self, gradients_dict: Any) -> None:
        super().apply_gradients(gradients_dict)  # FiniteGradientsMixin makes them finite first
        if not self.flat_targets:
            return
        self.flat_gradient_steps += 1
        interval = int(getattr(self.config, "flat_target_update_interval", 1))
        if self.flat_gradient_steps % interval:
            return
        for module_id in self.module.keys():
            module = self.module[module_id].unwrapped()
            if not isinstance(module, TargetNetworkAPI):
                continue
            tau = self.config.get_config_for_module(module_id).tau
            main, target, main_buffers, target_buffers = self._target_tensors(module_id, module)
            polyak_update_tensors(main, target, tau, main_buffers, target_buffers)
            self.metrics.log_value((module_id, NUM_TARGET_UPDATES), 1, reduce="lifetime_sum")
            self.metrics.log_value((module_id, LAST_TARGET_UPDATE_TS), self.flat_gradient_steps, reduce="max")

    def _target_tensors(self, module_id: ModuleID, module: Any) -> tuple[list[torch.Tensor], ...]:
        """(main params, target params, main buffers, target buffers) of every target-network
        pair, cached per module object (loading weights copies into the same tensors)."""
        cache = self.__dict__.setdefault("_target_tensor_cache", {})
        hit = cache.get(module_id)
        if hit is None or hit[0] is not module:
            pairs = module.get_target_network_pairs()
            hit = cache[module_id] = (
                module,
                [p for m, _ in pairs for p in m.parameters()],
                [p for _, t in pairs for p in t.parameters()],
                [b for m, _ in pairs for b in m.buffers()],
                [b for _, t in pairs for b in t.buffers()],
            )
        return hit[1:]


# ---- algorithm ------------------------------------------------------------------------------


class FlatSACConfig(SACConfig):
    """SACConfig of :class:`FlatReplaySAC`: ``replay`` "flat" (the flat buffer) or "rllib"
    (RLlib's EpisodeReplayBuffer and training_step), and the flat path's counts."""

    def __init__(self, algo_class: type | None = None):
        super().__init__(algo_class=algo_class or FlatReplaySAC)
        self.replay = "flat"
        self.flat_gradient_steps = 1
        self.flat_train_freq = 1
        self.flat_target_update_interval = 1

    def flat_replay(
        self,
        *,
        replay: str | None = None,
        gradient_steps: int | None = None,
        train_freq: int | None = None,
        target_update_interval: int | None = None,
    ) -> "FlatSACConfig":
        """The replay kind, and gradient_steps per train_freq env steps and the target
        update interval (in gradient steps) of the flat path."""
        if replay is not None:
            if replay not in REPLAY_KINDS:
                raise ValueError(f"replay must be one of {REPLAY_KINDS}, got {replay!r}")
            self.replay = replay
        if gradient_steps is not None:
            self.flat_gradient_steps = int(gradient_steps)
        if train_freq is not None:
            self.flat_train_freq = int(train_freq)
        if target_update_interval is not None:
            self.flat_target_update_interval = int(target_update_interval)
        return self


class FlatReplaySAC(SAC):
    """RLlib's SAC (learner, losses, env runners) with the flat replay path (``replay: flat``).

    Each training_step samples one round from the env runners and appends its
    transitions to a :class:`~algorithms.flat_replay.FlatReplayBuffer`. Once
    ``num_steps_sampled_before_learning_starts`` env steps are sampled, the round
    owes ``gradient_steps`` gradient steps per ``train_freq`` of its env steps (the
    remainder carries over); their batches are drawn at once (uniform, with
    replacement, from the same buffer, as one batch after another would be) and go
    to ``LearnerGroup.update`` as one tensor batch, which the learner takes in
    ``batch_size`` slices, one gradient step each (``SACTorchLearner.round_update``;
    RLlib's ``module_train_batch_size_mean`` metric then counts the round's rows);
    then the env runners get the new weights.
    With ``replay: rllib`` it is RLlib's SAC training_step unchanged."""

    @classmethod
    def get_default_config(cls) -> FlatSACConfig:
        return FlatSACConfig()

    def setup(self, config: Any) -> None:
        super().setup(config)
        self.flat_buffer = FlatReplayBuffer(int(self.config.replay_buffer_config["capacity"]), seed=self.config.seed)
        self._owed = 0  # gradient_steps x env steps not yet trained on, in units of 1 / train_freq
        self._learner_device = local_learner(self).device if self.learner_group.is_local else "cpu"

    @property
    def flat(self) -> bool:
        return getattr(self.config, "replay", "rllib") == "flat"

    def training_step(self) -> None:
        if not self.flat:
            return super().training_step()
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            episodes, runner_metrics = sample_episodes(self)
        self.metrics.aggregate(runner_metrics, key=ENV_RUNNER_RESULTS)
        with self.metrics.log_time((TIMERS, REPLAY_BUFFER_ADD_DATA_TIMER)):
            rows = transitions_from_episodes(episodes)
            added = self.flat_buffer.add(rows) if rows is not None else 0
        sampled = self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)
        if sampled < self.config.num_steps_sampled_before_learning_starts or not len(self.flat_buffer):
            return
        self._owed += added * self.config.flat_gradient_steps
        steps, self._owed = divmod(self._owed, self.config.flat_train_freq)
        if not steps:
            return
        batch_size = int(self.config.total_train_batch_size)
        with self.metrics.log_time((TIMERS, REPLAY_BUFFER_SAMPLE_TIMER)):
            batch = sac_train_batch(self.flat_buffer.sample(steps * batch_size), self._learner_device)
        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            results = self.learner_group.update(
                # The whole round as one batch: SACTorchLearner.round_update takes its
                # batch_size slices one gradient step each.
                batch=batch,
                minibatch_size=None,
                num_epochs=1,
                shuffle_batch_per_epoch=False,
                timesteps={
                    NUM_ENV_STEPS_SAMPLED_LIFETIME: sampled,
                    NUM_AGENT_STEPS_SAMPLED_LIFETIME: self.metrics.peek(
                        (ENV_RUNNER_RESULTS, NUM_AGENT_STEPS_SAMPLED_LIFETIME), default={}
                    ),
                },
            )
            # Per-sample TD errors feed prioritised replay only; they stay out of the results.
            for result in results:
                for module_results in result.values():
                    if isinstance(module_results, dict):
                        module_results.pop(TD_ERROR_KEY, None)
            self.metrics.aggregate(results, key=LEARNER_RESULTS)
        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            self.env_runner_group.sync_weights(from_worker_or_learner_group=self.learner_group, inference_only=True)

    # ---- checkpoints: the carried gradient steps, and the buffer when asked for ---------------

    def get_state(self, components: Any = None, *, not_components: Any = None, **kwargs: Any) -> dict[str, Any]:
        state = super().get_state(components, not_components=not_components, **kwargs)
        if self.flat and components is None:
            keep = bool(self.config.store_buffer_in_checkpoints)
            state["flat_replay"] = {"owed": self._owed, "buffer": self.flat_buffer.get_state() if keep else None}
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        saved = state.get("flat_replay")
        if self.flat and saved is not None:
            self._owed = int(saved["owed"])
            if saved["buffer"] is not None:
                self.flat_buffer.set_state(saved["buffer"])


# ---- the registry's builder -----------------------------------------------------------------


def algorithm_config(trial: "TrialPlan", settings: SACSettings) -> SACConfig:
    """SAC-discrete for a trial: our module with twin Q-heads, all four optimizers plumbed."""
    algo = apply_common(FlatSACConfig(), trial, settings, SACTorchLearner, module_overrides={"q_heads": 2})
    spec = algo.rl_module_spec
    algo.rl_module(rl_module_spec=RLModuleSpec(module_class=SAC_MODULES[spec.module_class], model_config=spec.model_config))
    return settings.apply_to(algo)


def build(trial: "TrialPlan", hparams: Mapping[str, Any]) -> list[Stage]:
    """SAC as the registry runs it: one stage."""
    return [Stage("SAC", algorithm_config(trial, SACSettings.from_dict(hparams, task=trial.task)))]
