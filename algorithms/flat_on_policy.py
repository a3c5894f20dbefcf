"""Lean on-policy sampling for PPO, A2C and TRPO: the batched env stepped into arrays, GAE in numpy, tensors to the learner.

RLlib's on-policy loop turns every env step into ``SingleAgentEpisode`` entries, runs
the env-to-module and module-to-env connectors per step, the learner connectors
(one extra bootstrap timestep per episode, then GAE) per batch and logs metrics per
episode; on the cell-fate environment, whose episodes are a handful of steps, that
Python work is most of a trial's time. With ``sampling: flat`` (the settings of
algorithms.ppo, algorithms.a2c and algorithms.trpo) a training step is instead:

1. :class:`FlatSampler`, on each env runner (the local one when
   ``num_env_runners=0``, else each remote one through ``foreach_env_runner``):
   the runner's vectorised :class:`~envs.batched_env.BatchedCellFateEnv` stepped
   ``rollout_fragment_length`` times by the runner's module (``forward_exploration``,
   actions sampled from the masked logits by the sampler's own seeded generator,
   their log-probabilities and the logits kept) into preallocated arrays. The env
   and the unfinished episodes carry over to the next iteration, as RLlib's runner
   keeps them. A finished env is reset at once (``reset_mask``), so every row is a
   real transition.
2. :func:`flat_batch`: value predictions of the learner's module for every
   observation and every bootstrap observation in one forward pass (as RLlib's GAE
   connector takes them from the learner's module), then GAE in numpy
   (:func:`gae`): a terminated step bootstraps nothing, an env-truncated step
   bootstraps from its final observation, a fragment's last step from the next
   observation, and the recursion stops at all three (RLlib's
   ``compute_value_targets``). Advantages are standardised with RLlib's formula,
   ``(A - mean) / max(1e-4, std)``, over the real steps only (RLlib's connector
   also counts its bootstrap rows).
3. :func:`flat_training_step`: the columns RLlib's PPO loss reads (``OBS`` as the
   Dict observation, ``ACTIONS``, ``ACTION_LOGP``, ``ACTION_DIST_INPUTS``,
   ``ADVANTAGES``, ``VALUE_TARGETS``, ``VF_PREDS``; no ``LOSS_MASK``, every row is
   valid) go to ``LearnerGroup.update`` as one tensor batch. PPO's epochs are laid
   out in it back to back, each a fresh permutation of the rows when
   ``shuffle_batch_per_epoch`` (the first epoch too; RLlib's iterator shuffles only
   from the second), and cut into ``minibatch_size`` minibatches, one gradient step
   each; A2C and TRPO take the whole batch in one update. Then the env runners get
   the new weights.

Metrics under ``env_runners``: the sampled env-step, agent-step, module-step and
episode counts (per iteration and lifetime, what the trial and Tune read), and
``episode_return_mean`` / ``episode_len_mean`` (with min and max) over the last
``metrics_num_episodes_for_smoothing`` finished episodes, as RLlib's runners smooth
them. The learner's results are RLlib's.

The flat path runs only where it applies (:func:`flat_sampling_unavailable`):
the env is a BatchedCellFateEnv (the class RLlib builds with ``num_envs``) and the
learner is local. Any other env (the ODE worlds' Box actions, a registered name)
goes through RLlib's own loop, as ``sampling: rllib`` does.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from ray.rllib.core import DEFAULT_AGENT_ID, DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.metrics import (
    ALL_MODULES,
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    EPISODE_LEN_MAX,
    EPISODE_LEN_MEAN,
    EPISODE_LEN_MIN,
    EPISODE_RETURN_MAX,
    EPISODE_RETURN_MEAN,
    EPISODE_RETURN_MIN,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_AGENT_STEPS_SAMPLED,
    NUM_AGENT_STEPS_SAMPLED_LIFETIME,
    NUM_ENV_STEPS_SAMPLED,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_EPISODES,
    NUM_EPISODES_LIFETIME,
    NUM_MODULE_STEPS_SAMPLED,
    NUM_MODULE_STEPS_SAMPLED_LIFETIME,
    NUM_MODULE_STEPS_TRAINED_LIFETIME,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)

from envs.batched_env import BatchedCellFateEnv
from envs.errors import choices_error

from algorithms.common import local_learner
from algorithms.settings import CommonSettings

SAMPLING_KINDS = ("flat", "rllib")
# The attribute of an env runner that holds its FlatSampler between iterations.
SAMPLER_ATTRIBUTE = "flat_on_policy_sampler"

logger = logging.getLogger(__name__)


# ---- the config side --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class OnPolicySamplingSettings(CommonSettings):
    """The settings of an algorithm that samples on-policy (PPO, A2C, TRPO): CommonSettings
    plus ``sampling`` ("flat" or "rllib", each algorithm's docstring says what it means there)."""

    sampling: str = "flat"

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLING_KINDS:
            raise choices_error(f"{self.NAME} sampling", self.sampling, SAMPLING_KINDS)
        super().__post_init__()


class FlatOnPolicyConfigMixin:
    """AlgorithmConfig mixin: ``sampling`` "flat" (this module's loop) or "rllib" (RLlib's)."""

    def __init__(self, algo_class: type | None = None):
        super().__init__(algo_class=algo_class)
        self.sampling = "flat"

    def on_policy_sampling(self, sampling: str) -> Any:
        """Choose the sampling loop: "flat" (where it applies) or "rllib"."""
        if sampling not in SAMPLING_KINDS:
            raise ValueError(f"sampling must be one of {SAMPLING_KINDS}, got {sampling!r}")
        self.sampling = sampling
        return self


def flat_sampling_unavailable(config: Any) -> str | None:
    """Why the flat loop cannot run `config` (None when it can)."""
    env = config.env
    if not (isinstance(env, type) and issubclass(env, BatchedCellFateEnv)):
        return f"the env is {getattr(env, '__name__', env)!r}, not BatchedCellFateEnv"
    if int(config.num_learners or 0) > 0:
        return "the learners are remote"
    if config.is_multi_agent:
        return "the config is multi-agent"
    return None


# ---- the env runner's side -----------------------------------------------------------------


@dataclass
class Rollout:
    """One runner's fragment: T steps of its E envs, time-major (T, E, ...) arrays.

    ``last_obs``: the observation after step T - 1 (what an unfinished episode
    bootstraps from); ``final_obs``/``final_index``: the final observations of the
    env-truncated steps and their flat indices ``t * E + e``; ``episode_returns`` /
    ``episode_lens``: the episodes that ended in the fragment (whole episodes,
    earlier fragments' steps included)."""

    obs: dict[str, np.ndarray]
    actions: np.ndarray
    logp: np.ndarray
    dist_inputs: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    last_obs: dict[str, np.ndarray]
    final_obs: dict[str, np.ndarray]
    final_index: np.ndarray
    episode_returns: np.ndarray
    episode_lens: np.ndarray

    @property
    def steps(self) -> int:
        return int(self.rewards.size)


def _seed_of(seed: int | None, *parts: int) -> int | None:
    return None if seed is None else int(np.random.SeedSequence([int(seed), *parts]).generate_state(1)[0])


class FlatSampler:
    """Steps one BatchedCellFateEnv with a module's exploration forward pass; keeps the
    env and its unfinished episodes between calls.

    `seed` seeds the env's first reset (env i gets seed + i, as gymnasium seeds a
    vector env) and, mixed with `stream`, the action-sampling generator."""

    def __init__(self, env: BatchedCellFateEnv, seed: int | None = None, stream: int = 0):
        if not isinstance(env, BatchedCellFateEnv):
            raise TypeError(f"the flat sampler steps a BatchedCellFateEnv, got {type(env).__name__}")
        self.env = env
        self.seed = seed
        self.obs: dict[str, np.ndarray] | None = None
        self.returns = np.zeros(env.num_envs, dtype=np.float64)
        self.lengths = np.zeros(env.num_envs, dtype=np.int64)
        self.generator = torch.Generator()
        sampling_seed = _seed_of(seed, stream, 1)
        if sampling_seed is not None:
            self.generator.manual_seed(sampling_seed)

    def sample(self, module: Any, steps: int) -> Rollout:
        """`steps` vectorised steps (steps x num_envs env steps) with `module` exploring."""
        env = self.env
        E, T = env.num_envs, int(steps)
        if T < 1:
            raise ValueError(f"a rollout needs at least one step per env, got {T}")
        if self.obs is None:
            self.obs, _ = env.reset(seed=self.seed)
        obs_buf = {k: np.empty((T, *v.shape), dtype=v.dtype) for k, v in self.obs.items()}
        actions = np.empty((T, E), dtype=np.int64)
        logp = np.empty((T, E), dtype=np.float32)
        dist_inputs: np.ndarray | None = None
        rewards = np.empty((T, E), dtype=np.float32)
        terminated = np.empty((T, E), dtype=np.bool_)
        truncated = np.empty((T, E), dtype=np.bool_)
        finals: list[dict[str, np.ndarray]] = []
        final_index: list[np.ndarray] = []
        ep_returns: list[np.ndarray] = []
        ep_lens: list[np.ndarray] = []
        obs = self.obs
        generator = self.generator
        with torch.no_grad():
            for t in range(T):
                for k, v in obs.items():
                    obs_buf[k][t] = v
                logits = module.forward_exploration({Columns.OBS: {k: torch.from_numpy(v) for k, v in obs.items()}})[
                    Columns.ACTION_DIST_INPUTS
                ]
                log_probs = torch.log_softmax(logits, dim=-1)
                chosen = torch.multinomial(log_probs.exp(), 1, generator=generator)
                if dist_inputs is None:
                    dist_inputs = np.empty((T, E, logits.shape[-1]), dtype=np.float32)
                dist_inputs[t] = logits.numpy()
                logp[t] = log_probs.gather(-1, chosen).squeeze(-1).numpy()
                actions[t] = chosen.squeeze(-1).numpy()
                obs, reward, term, trunc, _ = env.step(actions[t])
                rewards[t] = reward
                terminated[t] = term
                truncated[t] = trunc
                self.returns += reward
                self.lengths += 1
                done = term | trunc
                if done.any():
                    ended = np.flatnonzero(done)
                    ep_returns.append(self.returns[ended].copy())
                    ep_lens.append(self.lengths[ended].copy())
                    self.returns[ended] = 0.0
                    self.lengths[ended] = 0
                    cut = np.flatnonzero(trunc & ~term)
                    if len(cut):
                        finals.append({k: v[cut].copy() for k, v in obs.items()})
                        final_index.append(t * E + cut)
                    obs, _ = env.reset(options={"reset_mask": done})
        self.obs = obs
        empty = {k: np.empty((0, *v.shape[1:]), dtype=v.dtype) for k, v in obs.items()}
        return Rollout(
            obs=obs_buf,
            actions=actions,
            logp=logp,
            dist_inputs=dist_inputs,
            rewards=rewards,
            terminated=terminated,
            truncated=truncated,
            last_obs={k: v.copy() for k, v in obs.items()},
            final_obs={k: np.concatenate([f[k] for f in finals]) for k in obs} if finals else empty,
            final_index=np.concatenate(final_index) if final_index else np.empty(0, dtype=np.int64),
            episode_returns=np.concatenate(ep_returns) if ep_returns else np.empty(0),
            episode_lens=np.concatenate(ep_lens) if ep_lens else np.empty(0, dtype=np.int64),
        )


def runner_sampler(runner: Any) -> FlatSampler:
    """The env runner's FlatSampler, made on first use over the runner's own env."""
    sampler = getattr(runner, SAMPLER_ATTRIBUTE, None)
    if sampler is None:
        env = runner.env.unwrapped
        config = runner.config
        index = int(runner.worker_index or 0)
        # Env seeds do not overlap between runners: runner w's env i gets seed + w * E + i.
        seed = None if config.seed is None else int(config.seed) + index * int(config.num_envs_per_env_runner)
        sampler = FlatSampler(env, seed=seed, stream=index)
        setattr(runner, SAMPLER_ATTRIBUTE, sampler)
    return sampler


def sample_on_runner(runner: Any) -> Rollout:
    """One fragment of ``rollout_fragment_length`` steps per env on `runner` (run there)."""
    steps = int(runner.config.get_rollout_fragment_length(runner.worker_index))
    return runner_sampler(runner).sample(runner.module, steps)


def sample_rollouts(algo: Any) -> list[Rollout]:
    """Fragments from every env runner (the local one without remote runners) until the
    train batch is full, as RLlib's synchronous sampling collects them."""
    group = algo.env_runner_group
    remote = group.num_remote_workers() > 0
    target = int(algo.config.total_train_batch_size)
    rollouts: list[Rollout] = []
    while sum(r.steps for r in rollouts) < target:
        got = group.foreach_env_runner(sample_on_runner, local_env_runner=not remote)
        if not got:
            raise RuntimeError("no env runner returned a rollout")
        rollouts.extend(got)
    return rollouts


# ---- GAE and the train batch ---------------------------------------------------------------


def gae(
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    gamma: float,
    lambda_: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(advantages, value targets) of time-major (T, E) arrays, as RLlib's ``compute_value_targets``.

    ``next_values[t]`` is V of the state after step t (for a truncated step, its final
    observation; for a fragment's last step, the next observation); a terminated step
    bootstraps nothing; the recursion stops at terminated and truncated steps and
    after the fragment's last step."""
    rewards = np.asarray(rewards, dtype=np.float32)
    values = np.asarray(values, dtype=np.float32)
    nonterminal = 1.0 - np.asarray(terminated, dtype=np.float32)
    propagate = nonterminal * (1.0 - np.asarray(truncated, dtype=np.float32))
    deltas = rewards + np.float32(gamma) * nonterminal * np.asarray(next_values, dtype=np.float32) - values
    advantages = np.empty_like(deltas)
    running = np.zeros(deltas.shape[1:], dtype=np.float32)
    decay = np.float32(gamma * lambda_)
    for t in range(deltas.shape[0] - 1, -1, -1):
        running = deltas[t] + decay * propagate[t] * running
        advantages[t] = running
    return advantages, (advantages + values).astype(np.float32)


def standardize(advantages: np.ndarray) -> np.ndarray:
    """RLlib's standardisation of advantages: (A - mean) / max(1e-4, std)."""
    return ((advantages - advantages.mean()) / max(1e-4, float(advantages.std()))).astype(np.float32)


ValueFn = Callable[[Mapping[str, np.ndarray]], np.ndarray]


def _flat(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1, *a.shape[2:])


def flat_batch(rollouts: Sequence[Rollout], value_fn: ValueFn, gamma: float, lambda_: float) -> dict[str, Any]:
    """The train columns of `rollouts` (numpy, rows in (rollout, t, env) order).

    `value_fn` maps an observation dict (B, ...) to V (B,); it is called once, on every
    observation, every fragment's next observation and every truncated step's final one."""
    parts: list[dict[str, np.ndarray]] = []
    for r in rollouts:
        parts.extend([{k: _flat(v) for k, v in r.obs.items()}, r.last_obs, r.final_obs])
    keys = list(rollouts[0].obs)
    all_values = np.asarray(value_fn({k: np.concatenate([p[k] for p in parts]) for k in keys}), dtype=np.float32)
    columns: dict[str, list[np.ndarray]] = {c: [] for c in ("values", "advantages", "targets")}
    start = 0
    for r in rollouts:
        T, E = r.rewards.shape
        values = all_values[start : start + T * E].reshape(T, E)
        last = all_values[start + T * E : start + T * E + E]
        final = all_values[start + T * E + E : start + T * E + E + len(r.final_index)]
        start += T * E + E + len(r.final_index)
        next_values = np.concatenate([values[1:], last[None]], axis=0)
        if len(r.final_index):
            next_values.reshape(-1)[r.final_index] = final
        advantages, targets = gae(r.rewards, values, next_values, r.terminated, r.truncated, gamma, lambda_)
        columns["values"].append(values.reshape(-1))
        columns["advantages"].append(advantages.reshape(-1))
        columns["targets"].append(targets.reshape(-1))
    cat = np.concatenate
    return {
        Columns.OBS: {k: cat([_flat(r.obs[k]) for r in rollouts]) for k in keys},
        Columns.ACTIONS: cat([r.actions.reshape(-1) for r in rollouts]),
        Columns.ACTION_LOGP: cat([r.logp.reshape(-1) for r in rollouts]),
        Columns.ACTION_DIST_INPUTS: cat([_flat(r.dist_inputs) for r in rollouts]),
        Columns.REWARDS: cat([r.rewards.reshape(-1) for r in rollouts]),
        Columns.TERMINATEDS: cat([r.terminated.reshape(-1) for r in rollouts]),
        Columns.TRUNCATEDS: cat([r.truncated.reshape(-1) for r in rollouts]),
        Columns.VF_PREDS: cat(columns["values"]),
        Postprocessing.ADVANTAGES: standardize(cat(columns["advantages"])),
        Postprocessing.VALUE_TARGETS: cat(columns["targets"]),
    }


def module_value_fn(module: Any, device: Any) -> ValueFn:
    """V(s) of `module` (the learner's, critic included) for an observation dict, without a graph."""

    def values(obs: Mapping[str, np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            tensors = {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in obs.items()}
            return module.compute_values({Columns.OBS: tensors}).float().cpu().numpy()

    return values


def epoch_order(n: int, num_epochs: int, shuffle: bool, rng: np.random.Generator) -> np.ndarray:
    """Row order of `num_epochs` passes over `n` rows back to back; each pass a fresh permutation when `shuffle`."""
    if not shuffle:
        return np.tile(np.arange(n), num_epochs)
    return np.concatenate([rng.permutation(n) for _ in range(num_epochs)])


# The columns the learners' losses read (PPO's, A2C's, TRPO's); the minibatch iterator slices
# every column it gets for every gradient step, so the rest stay out of the learner's batch.
LEARNER_COLUMNS = (
    Columns.OBS,
    Columns.ACTIONS,
    Columns.ACTION_LOGP,
    Columns.ACTION_DIST_INPUTS,
    Columns.VF_PREDS,
    Postprocessing.ADVANTAGES,
    Postprocessing.VALUE_TARGETS,
)


def learner_batch(columns: Mapping[str, Any], order: np.ndarray | None, device: Any) -> MultiAgentBatch:
    """The LEARNER_COLUMNS of `columns` (rows in `order`, or as they are) as a tensor
    MultiAgentBatch of the default module."""

    def tensor(a: np.ndarray) -> torch.Tensor:
        if order is not None:
            a = a[order]
        return torch.from_numpy(np.ascontiguousarray(a)).to(device)

    batch = {}
    for k in LEARNER_COLUMNS:
        v = columns[k]
        batch[k] = {kk: tensor(vv) for kk, vv in v.items()} if isinstance(v, Mapping) else tensor(v)
    n = len(columns[Columns.ACTIONS])
    return MultiAgentBatch({DEFAULT_MODULE_ID: SampleBatch(batch)}, env_steps=n)


# ---- the algorithm's side ------------------------------------------------------------------


class FlatOnPolicyMixin:
    """Algorithm mixin (over RLlib's PPO): ``training_step`` is :func:`flat_training_step`
    when ``config.sampling == "flat"`` and the flat loop applies, else the parent's."""

    def setup(self, config: Any) -> None:
        super().setup(config)
        self.flat_sampling = False
        if getattr(self.config, "sampling", "rllib") == "flat":
            reason = flat_sampling_unavailable(self.config)
            if reason is None:
                self.flat_sampling = True
            else:
                logger.info("flat on-policy sampling does not apply (%s); sampling with RLlib's env runners", reason)
        self.flat_rng = np.random.default_rng(_seed_of(self.config.seed, 2))
        self.flat_episodes: deque[tuple[float, int]] = deque(maxlen=max(1, int(self.config.metrics_num_episodes_for_smoothing)))

    def training_step(self) -> None:
        if not self.flat_sampling:
            return super().training_step()
        return flat_training_step(self)


def log_sampling_metrics(algo: Any, rollouts: Sequence[Rollout]) -> None:
    """What RLlib's env runners report: step and episode counts, smoothed episode returns and lengths."""
    steps = sum(r.steps for r in rollouts)
    returns = np.concatenate([r.episode_returns for r in rollouts])
    lengths = np.concatenate([r.episode_lens for r in rollouts])
    m = algo.metrics
    key = ENV_RUNNER_RESULTS
    m.log_value((key, NUM_ENV_STEPS_SAMPLED), steps, reduce="sum")
    m.log_value((key, NUM_ENV_STEPS_SAMPLED_LIFETIME), steps, reduce="lifetime_sum")
    m.log_value((key, NUM_AGENT_STEPS_SAMPLED, DEFAULT_AGENT_ID), steps, reduce="sum")
    m.log_value((key, NUM_AGENT_STEPS_SAMPLED_LIFETIME, DEFAULT_AGENT_ID), steps, reduce="lifetime_sum")
    m.log_value((key, NUM_MODULE_STEPS_SAMPLED, DEFAULT_MODULE_ID), steps, reduce="sum")
    m.log_value((key, NUM_MODULE_STEPS_SAMPLED_LIFETIME, DEFAULT_MODULE_ID), steps, reduce="lifetime_sum")
    m.log_value((key, NUM_EPISODES), len(returns), reduce="sum")
    m.log_value((key, NUM_EPISODES_LIFETIME), len(returns), reduce="lifetime_sum")
    algo.flat_episodes.extend(zip(returns.tolist(), lengths.tolist()))
    if algo.flat_episodes:
        window = np.asarray(algo.flat_episodes, dtype=np.float64)
        for name, column, reduce in (
            (EPISODE_RETURN_MEAN, 0, np.mean),
            (EPISODE_RETURN_MIN, 0, np.min),
            (EPISODE_RETURN_MAX, 0, np.max),
            (EPISODE_LEN_MEAN, 1, np.mean),
            (EPISODE_LEN_MIN, 1, np.min),
            (EPISODE_LEN_MAX, 1, np.max),
        ):
            m.log_value((key, name), float(reduce(window[:, column])), window=1)


def flat_training_step(algo: Any) -> None:
    """Sample every runner's fragment, compute GAE from the learner's critic, update, sync weights."""
    config = algo.config
    with algo.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
        rollouts = sample_rollouts(algo)
        log_sampling_metrics(algo, rollouts)
    with algo.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
        learner = local_learner(algo)
        device = learner.device
        columns = flat_batch(
            rollouts, module_value_fn(learner.module[DEFAULT_MODULE_ID], device), float(config.gamma), float(config.lambda_)
        )
        n = len(columns[Columns.ACTIONS])
        epochs = max(1, int(config.num_epochs))
        minibatch = int(config.minibatch_size or n)
        if epochs > 1 or minibatch < n:
            order = epoch_order(n, epochs, bool(config.shuffle_batch_per_epoch), algo.flat_rng)
        else:
            order = None
        rows = n if order is None else len(order)
        results = algo.learner_group.update(
            batch=learner_batch(columns, order, device),
            minibatch_size=minibatch if minibatch < rows else None,
            num_epochs=1,
            shuffle_batch_per_epoch=False,
            timesteps={
                NUM_ENV_STEPS_SAMPLED_LIFETIME: algo.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME)),
                NUM_MODULE_STEPS_TRAINED_LIFETIME: algo.metrics.peek(
                    (LEARNER_RESULTS, ALL_MODULES, NUM_MODULE_STEPS_TRAINED_LIFETIME), default=0
                ),
            },
        )
        algo.metrics.aggregate(results, key=LEARNER_RESULTS)
    with algo.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
        algo.env_runner_group.sync_weights(from_worker_or_learner_group=algo.learner_group, inference_only=True)
