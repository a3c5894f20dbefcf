"""SAC's flat replay path: the ring buffer, transitions from episodes, the train batch, one trial end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.env.single_agent_episode import SingleAgentEpisode

from algorithms.common import local_learner
from algorithms.flat_replay import FlatReplayBuffer, sac_train_batch, transitions_from_episodes
from algorithms.sac import FlatReplaySAC, FlatSACConfig, SACSettings, polyak_update
from algorithms.trial import TrialRunner
from algorithms.trial_plan import TrialPlan
from envs.errors import UserInputError

TINY = {"batch_size": 16, "learning_starts": 16, "train_freq": 4, "steps_per_iteration": 64}


def rows(first: int, n: int, terminal_every: int = 0) -> dict:
    """n transitions numbered first..first+n-1: obs x = [i, i], next obs x = [i + 0.5, i + 0.5]."""
    i = np.arange(first, first + n, dtype=np.float32)
    term = (np.arange(first, first + n) % terminal_every == terminal_every - 1) if terminal_every else np.zeros(n, bool)
    return {
        "obs": {"x": np.stack([i, i], 1), "action_mask": np.ones((n, 3), np.float32)},
        "next_obs": {"x": np.stack([i, i], 1) + 0.5, "action_mask": np.ones((n, 3), np.float32)},
        "actions": (np.arange(n) % 3).astype(np.int64),
        "rewards": i.copy(),
        "terminateds": term,
        "truncateds": np.zeros(n, bool),
    }


def held_ids(buffer: FlatReplayBuffer) -> list[int]:
    return sorted(int(v) for v in buffer.columns["rewards"][: buffer.size])


# ---- the ring ----------------------------------------------------------------------------------


def test_buffer_grows_by_doubling_then_wraps_keeping_the_newest_rows():
    buffer = FlatReplayBuffer(capacity=10, seed=0, initial_rows=2)
    assert len(buffer) == 0 and buffer.allocated == 0
    buffer.add(rows(0, 3))
    assert len(buffer) == 3 and buffer.allocated == 4 and buffer.pos == 3
    buffer.add(rows(3, 4))
    assert len(buffer) == 7 and buffer.allocated == 8
    buffer.add(rows(7, 6))  # 13 rows into a ring of 10: rows 0..2 are overwritten
    assert len(buffer) == 10 and buffer.allocated == 10 and buffer.pos == 3 and buffer.added == 13
    assert held_ids(buffer) == list(range(3, 13))
    # Every column of a row moved together: obs, next obs, action, reward.
    for r in range(10):
        i = buffer.columns["rewards"][r]
        assert buffer.obs["x"][r, 0] == i and buffer.next_obs["x"][r, 1] == i + 0.5
        assert buffer.columns["actions"][r] == (int(i) - (7 if i >= 7 else 3 if i >= 3 else 0)) % 3
    buffer.add(rows(13, 25))  # more than the capacity at once: only the newest 10 survive
    assert held_ids(buffer) == list(range(28, 38)) and buffer.added == 38 and len(buffer) == 10


def test_buffer_state_round_trips_oldest_first():
    buffer = FlatReplayBuffer(capacity=6, seed=3, initial_rows=2)
    buffer.add(rows(0, 9))
    buffer.sample_indices(5)
    state = buffer.get_state()
    assert list(state["rows"]["rewards"]) == [3, 4, 5, 6, 7, 8]
    other = FlatReplayBuffer(capacity=6, seed=99)
    other.set_state(state)
    assert held_ids(other) == held_ids(buffer) and other.added == 9
    np.testing.assert_array_equal(other.sample_indices(20), buffer.sample_indices(20))


def test_sampling_is_uniform_over_the_rows_held_and_seeded():
    buffer = FlatReplayBuffer(capacity=100, seed=7)
    with pytest.raises(ValueError, match="empty"):
        buffer.sample_indices(1)
    buffer.add(rows(0, 20))
    first = buffer.sample_indices(20_000)
    assert first.min() == 0 and first.max() == 19  # never a row not yet written
    counts = np.bincount(first, minlength=20)
    assert counts.min() > 850 and counts.max() < 1150  # 1000 expected each, sd ~31
    again = FlatReplayBuffer(capacity=100, seed=7)
    again.add(rows(0, 20))
    np.testing.assert_array_equal(again.sample_indices(20_000), first)
    sample = buffer.rows(np.array([4, 4, 19]))
    assert list(sample["rewards"]) == [4, 4, 19] and sample["obs"]["x"].shape == (3, 2)


# ---- transitions from episode chunks -------------------------------------------------------------


def _obs(t: int) -> dict:
    return {"x": np.full((2, 2), t, np.float32), "action_mask": np.full(3, t % 2, np.float32)}


def test_transitions_pair_each_obs_with_the_next_and_mark_only_terminal_rows():
    done = SingleAgentEpisode(observations=[_obs(t) for t in range(4)], actions=[0, 1, 2], rewards=[0.0, 0.0, 1.0],
                              terminated=True, len_lookback_buffer=0).to_numpy()
    cut = SingleAgentEpisode(observations=[_obs(t) for t in (10, 11, 12)], actions=[2, 2], rewards=[0.5, -0.5], len_lookback_buffer=0)
    # The next round's chunk of `cut` starts at its last observation, kept as lookback.
    continued = SingleAgentEpisode(observations=[_obs(t) for t in (10, 11, 12)], actions=[2, 2], rewards=[0.5, -0.5],
                                   len_lookback_buffer=0).cut(len_lookback_buffer=1)
    continued.add_env_step(_obs(13), 0, 2.0, terminated=True)
    rest = transitions_from_episodes([continued])
    assert list(rest["obs"]["x"][:, 0, 0]) == [12] and list(rest["next_obs"]["x"][:, 0, 0]) == [13]
    assert list(rest["terminateds"]) == [True] and list(rest["rewards"]) == [2.0]
    truncated = SingleAgentEpisode(observations=[_obs(20), _obs(21)], actions=[1], rewards=[0.25], truncated=True, len_lookback_buffer=0)
    empty = SingleAgentEpisode(observations=[_obs(30)], len_lookback_buffer=0)
    out = transitions_from_episodes([done, cut, empty, truncated])
    assert out["obs"]["x"].shape == (6, 2, 2) and out["obs"]["action_mask"].shape == (6, 3)
    assert list(out["obs"]["x"][:, 0, 0]) == [0, 1, 2, 10, 11, 20]
    # The terminal row's next obs is the episode's final observation (masked out by the loss).
    assert list(out["next_obs"]["x"][:, 0, 0]) == [1, 2, 3, 11, 12, 21]
    assert list(out["next_obs"]["action_mask"][:, 0]) == [1, 0, 1, 1, 0, 1]
    assert list(out["actions"]) == [0, 1, 2, 2, 2, 1] and list(out["rewards"]) == [0, 0, 1, 0.5, -0.5, 0.25]
    assert list(out["terminateds"]) == [False, False, True, False, False, False]
    assert list(out["truncateds"]) == [False, False, False, False, False, True]  # bootstraps, as RLlib's buffer does
    assert transitions_from_episodes([empty]) is None


def test_train_batch_holds_the_columns_of_rllibs_sac_loss():
    buffer = FlatReplayBuffer(capacity=50, seed=0)
    buffer.add(rows(0, 30, terminal_every=5))
    batch = sac_train_batch(buffer.sample(8)).policy_batches[DEFAULT_MODULE_ID]
    assert set(batch.keys()) == {Columns.OBS, Columns.NEXT_OBS, Columns.ACTIONS, Columns.REWARDS, Columns.TERMINATEDS,
                                 Columns.TRUNCATEDS, "weights", "n_step"}
    assert batch[Columns.OBS]["x"].shape == (8, 2) and batch[Columns.NEXT_OBS]["action_mask"].shape == (8, 3)
    assert batch[Columns.ACTIONS].dtype == torch.int64 and batch[Columns.REWARDS].dtype == torch.float32
    assert batch[Columns.TERMINATEDS].dtype == torch.bool and len(batch) == 8
    assert torch.all(batch["weights"] == 1) and torch.all(batch["n_step"] == 1)
    ids = batch[Columns.REWARDS].numpy().astype(int)
    np.testing.assert_array_equal(batch[Columns.TERMINATEDS].numpy(), ids % 5 == 4)
    np.testing.assert_array_equal(batch[Columns.NEXT_OBS]["x"][:, 0].numpy(), ids + 0.5)


def test_polyak_update_moves_the_target_by_tau():
    torch.manual_seed(0)
    main, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in target.parameters()]
    polyak_update(main, target, 0.25)
    for b, m, t in zip(before, main.parameters(), target.parameters()):
        torch.testing.assert_close(t, 0.25 * m + 0.75 * b)


def test_replay_setting_is_checked():
    assert SACSettings().replay == "flat"
    with pytest.raises(UserInputError, match="replay"):
        SACSettings.from_dict({"replay": "prioritized"})


# ---- a trial end to end ------------------------------------------------------------------------


def _plan(module: str = "mlp", **hparams) -> TrialPlan:
    return TrialPlan(target="Mo", algorithm="SAC", module=module, optimizer="adam", optimizer_hparams={"lr": 1e-3},
                     algo_hparams={**TINY, **hparams}, env_steps=64)


@pytest.mark.usefixtures("ray_session")
@pytest.mark.parametrize("module", ["mlp", "gnn"])
def test_one_flat_iteration_trains_the_owed_gradient_steps(module):
    runner = TrialRunner(_plan(module))
    try:
        algo = runner.algo
        assert isinstance(algo, FlatReplaySAC) and isinstance(algo.config, FlatSACConfig) and algo.config.replay == "flat"
        learner = local_learner(algo)
        sac_module = runner.module()
        targets_before = [p.detach().clone() for p in sac_module.target_qf_heads.parameters()]
        result = runner.train_iteration()
        assert runner.done and result["env_steps"] == 64 and not result["nan_loss"]
        assert np.isfinite(result["policy_loss"])
        # 2 rounds of 32 env steps, both after learning_starts=16: 32 / train_freq 4 = 8 gradient steps each.
        assert len(algo.flat_buffer) == 64 and learner.flat_gradient_steps == 16
        # DQNLearner's own once-per-update target step never ran (it would set the mark to the env steps).
        assert learner.last_update_ts_by_mid[DEFAULT_MODULE_ID] == float("inf")
        optimizers = dict(learner.get_optimizers_for_module(DEFAULT_MODULE_ID))
        for name in ("qf", "qf_twin", "policy", "alpha"):
            steps = {int(s["step"]) for s in optimizers[name].state.values()}
            assert steps == {16}, name
        # Target nets moved by Polyak steps only (tau 0.005 x 16 steps: a small move).
        moved = [(a - b).abs().max().item() for a, b in zip(sac_module.target_qf_heads.parameters(), targets_before)]
        assert 0 < max(moved) < 0.05
        # A batch from the buffer goes through the module and RLlib's loss as RLlib's own batches do.
        batch = sac_train_batch(algo.flat_buffer.sample(16)).policy_batches[DEFAULT_MODULE_ID]
        fwd = learner.module.forward_train({DEFAULT_MODULE_ID: batch})
        losses = learner.compute_losses(fwd_out=fwd, batch={DEFAULT_MODULE_ID: batch})
        assert torch.isfinite(losses[DEFAULT_MODULE_ID])
    finally:
        runner.stop()


@pytest.mark.usefixtures("ray_session")
def test_checkpoint_keeps_the_flat_buffer_when_asked(tmp_path):
    runner = TrialRunner(_plan(store_buffer_in_checkpoints=True))
    try:
        runner.train_iteration()
        runner.save(str(tmp_path))
        held = runner.algo.flat_buffer.get_state()["rows"]
    finally:
        runner.stop()
    restored = TrialRunner(_plan(store_buffer_in_checkpoints=True))
    try:
        restored.restore(str(tmp_path))
        again = restored.algo.flat_buffer
        assert len(again) == 64
        np.testing.assert_array_equal(again.get_state()["rows"]["obs"]["x"], held["obs"]["x"])
    finally:
        restored.stop()


@pytest.mark.usefixtures("ray_session")
def test_rllib_replay_is_still_available():
    runner = TrialRunner(_plan(replay="rllib"))
    try:
        assert runner.algo.config.replay == "rllib"
        result = runner.train_iteration()
        assert not result["nan_loss"] and len(runner.algo.flat_buffer) == 0
        assert runner.algo.local_replay_buffer.get_num_timesteps() == 64
    finally:
        runner.stop()
