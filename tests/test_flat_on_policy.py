"""The flat on-policy path (algorithms.flat_on_policy): GAE against a hand computation and
RLlib's own, the sampler on the batched env, seeds, the fallback to RLlib's loop, and PPO /
A2C trials with ``sampling: flat`` training, resuming and learning a tiny steer task."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.utils.postprocessing.value_predictions import compute_value_targets

from algorithms.a2c import A2CConfig, A2CSettings
from algorithms.flat_on_policy import FlatSampler, Rollout, flat_batch, flat_sampling_unavailable, gae, standardize
from algorithms.modules import MASKED_LOGIT
from algorithms.optimizer_plumbing import optimizer_settings
from algorithms.ppo import FlatPPOConfig, PPOSettings
from algorithms.trial import TrialRunner
from algorithms.trial_plan import TrialPlan
from envs.batched_env import BatchedCellFateEnv
from envs.errors import UserInputError
from envs.world import load_world

GAMMA, LAMBDA = 0.9, 0.8
TINY = {"train_batch_size": 128, "minibatch_size": 64, "num_epochs": 2, "num_envs_per_env_runner": 4}


# ---- GAE ----------------------------------------------------------------------------------


def tiny_rollout() -> Rollout:
    """Two envs, three steps. Env 0: an episode terminated at t=1, then one still running
    (bootstraps from V=0.4). Env 1: an episode truncated at t=0 (final observation V=0.6),
    then one still running (bootstraps from V=0.9). The observation x is V itself."""
    values = np.array([[0.1, 0.5], [0.2, 0.7], [0.3, 0.8]], dtype=np.float32)
    T, E = values.shape
    return Rollout(
        obs={"x": values[..., None], "action_mask": np.ones((T, E, 2), dtype=np.float32)},
        actions=np.zeros((T, E), dtype=np.int64),
        logp=np.full((T, E), np.log(0.5), dtype=np.float32),
        dist_inputs=np.zeros((T, E, 2), dtype=np.float32),
        rewards=np.array([[0.0, 0.2], [1.0, 0.0], [0.5, 0.1]], dtype=np.float32),
        terminated=np.array([[False, False], [True, False], [False, False]]),
        truncated=np.array([[False, True], [False, False], [False, False]]),
        last_obs={"x": np.array([[0.4], [0.9]], dtype=np.float32), "action_mask": np.ones((E, 2), dtype=np.float32)},
        final_obs={"x": np.array([[0.6]], dtype=np.float32), "action_mask": np.ones((1, 2), dtype=np.float32)},
        final_index=np.array([0 * E + 1]),
        episode_returns=np.array([1.0, 0.2]),
        episode_lens=np.array([2, 1]),
    )


def value_of(obs):
    return obs["x"][:, 0]


def test_flat_batch_advantages_and_targets_match_a_hand_computation():
    batch = flat_batch([tiny_rollout()], value_of, GAMMA, LAMBDA)
    g, gl = GAMMA, GAMMA * LAMBDA
    # Rows are t-major: row t * 2 + e.
    a = {
        (1, 0): 1.0 - 0.2,  # terminated: no bootstrap
        (2, 0): 0.5 + g * 0.4 - 0.3,  # fragment end: bootstrap from the next observation
        (0, 1): 0.2 + g * 0.6 - 0.5,  # truncated: bootstrap from the final observation, no propagation
        (2, 1): 0.1 + g * 0.9 - 0.8,
    }
    a[(0, 0)] = (0.0 + g * 0.2 - 0.1) + gl * a[(1, 0)]
    a[(1, 1)] = (0.0 + g * 0.8 - 0.7) + gl * a[(2, 1)]
    values = tiny_rollout().obs["x"][..., 0]
    raw = np.array([a[(t, e)] for t in range(3) for e in range(2)], dtype=np.float32)
    targets = raw + values.reshape(-1)
    np.testing.assert_allclose(batch[Postprocessing.VALUE_TARGETS], targets, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(batch[Columns.VF_PREDS], values.reshape(-1), rtol=1e-6)
    expected = (raw - raw.mean()) / raw.std()
    np.testing.assert_allclose(batch[Postprocessing.ADVANTAGES], expected, rtol=1e-5, atol=1e-6)
    assert batch[Columns.OBS]["x"].shape == (6, 1) and batch[Columns.ACTION_DIST_INPUTS].shape == (6, 2)


def test_gae_equals_rllibs_value_targets_on_the_same_episodes():
    """RLlib's compute_value_targets on the episodes as its connectors lay them out: each
    chunk plus one bootstrap row (terminated -> the chunk's last row terminated, else truncated)."""
    r = tiny_rollout()
    values = r.obs["x"][..., 0]
    next_values = np.concatenate([values[1:], r.last_obs["x"][:, 0][None]])
    next_values.reshape(-1)[r.final_index] = r.final_obs["x"][:, 0]
    _, ours = gae(r.rewards, values, next_values, r.terminated, r.truncated, GAMMA, LAMBDA)
    # (env, first t, last t, bootstrap value, terminated)
    episodes = [(0, 0, 1, 0.0, True), (0, 2, 2, 0.4, False), (1, 0, 0, 0.6, False), (1, 1, 2, 0.9, False)]
    for e, first, last, bootstrap, terminated in episodes:
        n = last - first + 1
        rllib = compute_value_targets(
            values=np.append(values[first : last + 1, e], bootstrap).astype(np.float32),
            rewards=np.append(r.rewards[first : last + 1, e], 0.0).astype(np.float32),
            terminateds=np.array([False] * (n - 1) + [terminated, False], dtype=np.float32),
            truncateds=np.array([False] * (n - 1) + [not terminated, False], dtype=np.float32),
            gamma=GAMMA,
            lambda_=LAMBDA,
        )
        np.testing.assert_allclose(ours[first : last + 1, e], rllib[:n], rtol=1e-6, atol=1e-6)


def test_standardize_is_rllibs_formula():
    a = np.array([1.0, 2.0, 4.0], dtype=np.float32)
    np.testing.assert_allclose(standardize(a), (a - a.mean()) / a.std(), rtol=1e-6)
    assert np.all(standardize(np.ones(3, dtype=np.float32)) == 0.0)  # std floored at 1e-4


# ---- the sampler --------------------------------------------------------------------------


class UniformModule:
    """Stands in for an RLModule: uniform over the actions the mask allows."""

    def forward_exploration(self, batch):
        mask = batch[Columns.OBS]["action_mask"]
        return {Columns.ACTION_DIST_INPUTS: torch.where(mask > 0.5, torch.zeros_like(mask), torch.full_like(mask, MASKED_LOGIT))}


def batched_env(num_envs: int = 4) -> BatchedCellFateEnv:
    cfg = {"world": load_world("myeloid"), "task": "steer", "target": "Mo", "max_perturb": 2, "observation": "flat"}
    return BatchedCellFateEnv(cfg, num_envs=num_envs)


def test_sampler_records_real_transitions_and_keeps_episodes_across_calls():
    sampler = FlatSampler(batched_env(), seed=3)
    module = UniformModule()
    first, second = sampler.sample(module, 5), sampler.sample(module, 5)
    for r in (first, second):
        mask = r.obs["action_mask"]
        assert r.steps == 20 and r.obs["x"].shape[:2] == (5, 4)
        assert np.all(np.take_along_axis(mask, r.actions[..., None], axis=-1) == 1.0)  # only allowed actions
        np.testing.assert_allclose(r.logp, -np.log(mask.sum(-1)), rtol=1e-5)  # uniform over the allowed ones
        assert not r.truncated.any() and len(r.final_index) == 0  # the cell env only terminates
    # An episode running at the end of a call goes on in the next one: the next call starts
    # from the observation the last one ended on, and its returns count both parts.
    np.testing.assert_array_equal(second.obs["x"][0], first.last_obs["x"])
    rewards = np.concatenate([first.rewards, second.rewards])
    done = np.concatenate([first.terminated, second.terminated])
    returns = []
    for e in range(4):
        total = 0.0
        for t in range(10):
            total += rewards[t, e]
            if done[t, e]:
                returns.append((t, e, total))
                total = 0.0
    expected = [ret for _, _, ret in sorted(returns)]
    got = np.concatenate([first.episode_returns, second.episode_returns])
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_sampler_is_seeded():
    runs = []
    for _ in range(2):
        r = FlatSampler(batched_env(), seed=11).sample(UniformModule(), 6)
        runs.append((r.actions, r.rewards, r.obs["x"]))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
    other = FlatSampler(batched_env(), seed=12).sample(UniformModule(), 6)
    assert not np.array_equal(other.actions, runs[0][0])


# ---- settings and fallback ------------------------------------------------------------------


def test_sampling_setting_is_validated_and_reaches_the_config():
    with pytest.raises(UserInputError, match="sampling"):
        PPOSettings.from_dict({"sampling": "fast"})
    with pytest.raises(UserInputError, match="sampling"):
        A2CSettings.from_dict({"sampling": "episodes"})
    assert PPOSettings().sampling == A2CSettings().sampling == "flat"
    assert PPOSettings.from_dict({"sampling": "rllib"}).apply_to(FlatPPOConfig()).sampling == "rllib"
    assert A2CSettings().apply_to(A2CConfig()).sampling == "flat"
    with pytest.raises(ValueError, match="FlatPPOConfig"):
        PPOSettings().apply_to(PPOConfig())


def test_flat_sampling_applies_only_to_the_batched_cell_env():
    assert flat_sampling_unavailable(FlatPPOConfig().environment(env=BatchedCellFateEnv)) is None
    assert "CartPole" in flat_sampling_unavailable(FlatPPOConfig().environment("CartPole-v1"))
    assert flat_sampling_unavailable(A2CConfig().environment(env=BatchedCellFateEnv).learners(num_learners=2))


def test_an_env_other_than_the_batched_one_trains_through_rllibs_loop(ray_session):
    config = (
        A2CSettings(train_batch_size=64, num_envs_per_env_runner=2)
        .apply_to(A2CConfig())
        .environment("CartPole-v1")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=2)
        .learners(learner_config_dict=optimizer_settings("adam", {"lr": 1e-3}))
    )
    assert config.sampling == "flat"
    algo = config.build_algo()
    try:
        assert algo.flat_sampling is False
        result = algo.train()
        assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 64
    finally:
        algo.stop()


# ---- trials ----------------------------------------------------------------------------------


def plan(algorithm: str, hparams: dict, env_steps: int = 256, **kw) -> TrialPlan:
    return TrialPlan(
        world="myeloid", task="steer", target="Mo", max_perturb=2, algorithm=algorithm, module="mlp",
        optimizer="adam", optimizer_hparams={"lr": 1e-3}, algo_hparams=hparams, env_steps=env_steps, seed=0, **kw,
    )


def run(config: TrialPlan) -> tuple[list[dict], dict]:
    runner = TrialRunner(config)
    try:
        assert runner.algo.flat_sampling
        results = []
        while not runner.done:
            results.append(runner.train_iteration())
        return results, {k: v.clone() for k, v in runner.module().state_dict().items()}
    finally:
        runner.stop()


@pytest.mark.usefixtures("ray_session")
@pytest.mark.parametrize("algorithm", ["PPO", "A2C"])
def test_same_seed_same_training_twice(algorithm):
    hparams = dict(TINY) if algorithm == "PPO" else {"train_batch_size": 128, "num_envs_per_env_runner": 4}
    (first, w1), (second, w2) = run(plan(algorithm, hparams)), run(plan(algorithm, hparams))
    assert len(first) == 2 and first[-1]["env_steps"] == 256
    for a, b in zip(first, second):
        for key in ("env_steps", "episode_return_mean", "episode_len_mean", "policy_loss", "vf_loss", "entropy"):
            assert a[key] == b[key], key
    assert all(np.isfinite(r["policy_loss"]) and np.isfinite(r["episode_return_mean"]) for r in first)
    for k in w1:
        torch.testing.assert_close(w1[k], w2[k], rtol=0, atol=0)


@pytest.mark.usefixtures("ray_session")
def test_remote_env_runners_sample_through_the_flat_loop():
    results, _ = run(plan("PPO", {**TINY, "train_batch_size": 64}, env_steps=128, num_env_runners=2))
    # Two runners x 4 envs x the auto fragment (64 / 8 = 8 steps) per iteration.
    assert [r["env_steps"] for r in results] == [64, 128]
    assert np.isfinite(results[-1]["episode_return_mean"])


@pytest.mark.usefixtures("ray_session")
@pytest.mark.parametrize("algorithm", ["PPO", "A2C"])
def test_flat_trial_learns_to_steer_to_mo(algorithm):
    """The tiny steer task of the learning tests (myeloid, Mo, MAX_PERTURB 2: the optimum is 1.0)
    at a budget a flat trial spends in seconds."""
    hparams = {} if algorithm == "PPO" else {"train_batch_size": 256}
    runner = TrialRunner(plan(algorithm, hparams, env_steps=8192 if algorithm == "PPO" else 16384))
    scores = []
    try:
        while not runner.done:
            runner.train_iteration()
            if runner.iteration % (2 if algorithm == "PPO" else 8) == 0 or runner.done:
                scores.append(runner.evaluate(100, 10_000)["score"])
                if scores[-1] >= 0.9:
                    break
    finally:
        runner.stop()
    assert scores[-1] >= 0.9, scores


def test_learners_make_non_finite_gradients_finite_in_one_check():
    from algorithms.a2c import A2CTorchLearner
    from algorithms.optimizer_plumbing import FiniteGradientsMixin
    from algorithms.ppo import PPOTorchLearner

    class Recorder:
        def apply_gradients(self, gradients_dict):
            self.got = gradients_dict

    class Learner(FiniteGradientsMixin, Recorder):
        pass

    learner = Learner()
    learner.apply_gradients({"a": torch.tensor([1.0, float("nan")]), "b": torch.tensor([float("inf")]), "c": None})
    assert torch.equal(learner.got["a"], torch.tensor([1.0, 0.0])) and torch.isfinite(learner.got["b"]).all()
    assert learner.got["c"] is None
    finite = {"a": torch.tensor([2.0])}
    learner.apply_gradients(finite)
    assert learner.got is finite  # finite gradients pass through untouched
    # RLlib's own per-parameter check is off exactly where ours runs.
    assert issubclass(PPOTorchLearner, FiniteGradientsMixin) and issubclass(A2CTorchLearner, FiniteGradientsMixin)
    assert PPOSettings().apply_to(FlatPPOConfig()).torch_skip_nan_gradients
    assert A2CSettings().apply_to(A2CConfig()).torch_skip_nan_gradients
