"""BatchedCellFateEnv against SyncVectorEnv of CellFateEnvs: identical trajectories, sane spaces."""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence
from gymnasium.vector.utils import batch_space

from envs.batched_env import BatchedCellFateEnv
from envs.cell_fate_env import register_env
from envs.cell_fate_env import CellFateEnv
from envs.errors import UserInputError
from envs.network import BooleanNetwork
from envs.world import load_world, make_world
from envs.worlds.synthetic import random_world
from shared_data import shared_data_file

N_ENVS = 6


@functools.lru_cache(maxsize=None)
def level_world():
    """Multi-valued G (bits G_b1, G_b2) driven by the input S; two starts, two conditions."""
    net = BooleanNetwork.from_rules(
        {"S": "S", "G_b1": "S | G_b1", "G_b2": "G_b1 & S", "T": "G_b2 & !P", "P": "!G_b1 & !T", "Q": "T | P"},
        where="level world",
    )
    return make_world(
        "levels",
        net,
        {"T_fate": {"T": 1, "G": 2}, "P_fate": {"P": 1, "G": 0}},
        {"rest": [], "primed": {"G": 1}},
        signatures={"T_fate": {"Q": 1}},
        genes={"G": ["G_b1", "G_b2"]},
        conditions={"signal": {"S": 1}, "none": {"S": 0}},
        default_condition="signal",
    )


@functools.lru_cache(maxsize=None)
def world(name: str):
    if name == "random60":
        return random_world(60, seed=3)
    if name == "levels":
        return level_world()
    if name == "cacace":
        return load_world(str(shared_data_file("cacace2020-tcell/bbm196_model.bnet")))
    return load_world(name)


def random_actions(rng: np.random.Generator, masks: np.ndarray, invalid: float = 0.05) -> np.ndarray:
    """A uniform valid action per env; now and then any action (the mask may forbid it)."""
    out = []
    for m in masks:
        if rng.random() < invalid:
            out.append(int(rng.integers(len(m))))
        else:
            valid = np.flatnonzero(m)
            out.append(int(valid[rng.integers(len(valid))]))
    return np.array(out, dtype=np.int64)


def assert_same_trajectories(config: dict, steps: int = 150, seed: int = 11, engine: str = "auto",
                             n_envs: int = N_ENVS) -> int:
    """Step both with the same actions; every output equal (types, dtypes, values). Episodes ended."""
    reference = gym.vector.SyncVectorEnv([lambda: CellFateEnv(config) for _ in range(n_envs)])
    batched = BatchedCellFateEnv(config, n_envs, engine=engine)
    obs, info = reference.reset(seed=seed)
    obs_b, info_b = batched.reset(seed=seed)
    assert data_equivalence(obs, obs_b, exact=True)
    assert data_equivalence(info, info_b, exact=True)
    rng = np.random.default_rng(seed)
    ended = 0
    for t in range(steps):
        actions = random_actions(rng, obs["action_mask"])
        out = reference.step(actions)
        out_b = batched.step(actions)
        for name, a, b in zip(("obs", "reward", "terminated", "truncated", "infos"), out, out_b):
            assert data_equivalence(a, b, exact=True), f"step {t}: {name} differs\n{a}\n{b}"
        obs = out[0]
        ended += int(out[2].sum())
    # The generators end where the single envs' do.
    for r_ref, r_b in zip(reference.np_random, batched.np_random):
        assert r_ref.bit_generator.state == r_b.bit_generator.state
    return ended


@pytest.mark.parametrize("task", ["steer", "predict"])
@pytest.mark.parametrize("name", ["myeloid", "tcell", "random60", "levels"])
def test_trajectories_match_the_single_env(name, task):
    config = {"world": world(name), "task": task, "max_perturb": 2}
    if name == "levels" and task == "steer":
        config["target"] = "P_fate"
    assert assert_same_trajectories(config) > 10  # autoresets included


@pytest.mark.parametrize("task", ["steer", "predict"])
def test_trajectories_match_on_the_61_variable_cacace_model(task):
    config = {"world": world("cacace"), "task": task, "max_perturb": 3}
    assert assert_same_trajectories(config, steps=80) > 10


@pytest.mark.parametrize(
    "extra",
    [
        {"shaping": True, "observation": "flat"},
        {"scheme": "sync", "shaping": True},
        {"scheme": "priority"},
        {"scheme": "priority", "task": "predict"},
        {"seed": 5},
        {"n_stages": 2, "updates_per_stage": 3, "kinds": ("oe",), "max_perturb": 1},
    ],
    ids=["shaping-flat", "sync", "priority", "priority-predict", "config-seed", "short-stages-one-kind"],
)
def test_settings_match_the_single_env(extra):
    assert_same_trajectories({"world": world("tcell"), **extra}, steps=60)


@pytest.mark.parametrize("task", ["steer", "predict"])
def test_several_starts_and_a_condition_match(task):
    config = {"world": world("levels"), "task": task, "start": ["rest", "primed"], "condition": "none",
              "max_perturb": 2, "shaping": task == "steer"}
    assert_same_trajectories(config, steps=100)


@pytest.mark.parametrize("task", ["steer", "predict"])
@pytest.mark.parametrize("name", ["random60", "levels"])
def test_numpy_engine_matches_the_single_env(name, task):
    config = {"world": world(name), "task": task, "max_perturb": 2}
    if name == "levels" and task == "steer":
        config["target"] = "T_fate"
    assert_same_trajectories(config, steps=60, engine="numpy")


def test_reset_seeds_masks_and_options_match_sync_vector_env():
    config = {"world": world("levels"), "task": "predict", "max_perturb": 2, "start": ["rest", "primed"]}
    reference = gym.vector.SyncVectorEnv([lambda: CellFateEnv(config) for _ in range(4)])
    batched = BatchedCellFateEnv(config, 4)
    seeds = [3, 4, 7, 3]  # a repeated seed; None would draw fresh entropy on a new env
    calls = [
        {"seed": seeds},
        {"seed": None},
        {"seed": [None, 5, None, None]},
        {"seed": 2, "options": {"reset_mask": np.array([False, True, False, True])}},
        {"options": {"start": "primed", "perturbations": [("G", "ko")]}},
    ]
    for kwargs in calls:
        opts = kwargs.get("options")
        a = reference.reset(seed=kwargs.get("seed"), options=dict(opts) if opts else None)
        b = batched.reset(seed=kwargs.get("seed"), options=dict(opts) if opts else None)
        assert data_equivalence(a, b, exact=True)
        actions = np.zeros(4, dtype=np.int64)
        assert data_equivalence(reference.step(actions), batched.step(actions), exact=True)
    assert batched.start_names == ["primed"] * 4


def test_spaces_are_those_of_the_single_env_and_observations_lie_in_them():
    for config in ({"world": world("tcell")}, {"world": world("levels"), "task": "predict", "observation": "flat"}):
        single = CellFateEnv(config)
        env = BatchedCellFateEnv(config, 5)
        assert env.single_observation_space == single.observation_space
        assert env.single_action_space == single.action_space
        assert env.observation_space == batch_space(single.observation_space, 5)
        assert env.action_space == batch_space(single.action_space, 5)
        assert env.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
        obs, infos = env.reset(seed=0)
        assert env.observation_space.contains(obs) and set(infos) == {"start", "_start"}
        env.action_space.seed(0)
        for _ in range(20):
            obs, rewards, terminated, truncated, infos = env.step(env.action_space.sample())
            assert env.observation_space.contains(obs)
            assert rewards.dtype == np.float64 and rewards.shape == (5,)
            assert terminated.dtype == np.bool_ and truncated.dtype == np.bool_ and not truncated.any()
        # Deterministic under a seed.
        a = BatchedCellFateEnv(config, 5).reset(seed=9)
        b = BatchedCellFateEnv(config, 5).reset(seed=9)
        assert data_equivalence(a, b, exact=True)
        env.close()


def test_make_vec_with_the_vector_entry_point_and_the_rllib_creator():
    name = register_env()
    env = gym.make_vec(name, num_envs=3, vectorization_mode="vector_entry_point",
                       config={"world": world("myeloid"), "max_perturb": 1})
    assert isinstance(env, BatchedCellFateEnv) and env.num_envs == 3 and env.max_perturb == 1
    obs, _ = env.reset(seed=0)
    assert obs["x"].shape == (3, 11, 8)
    # RLlib's vector_entry_point hands the env class its env_config plus num_envs.
    vec = BatchedCellFateEnv({"world": world("myeloid"), "worker_index": 1, "num_envs": 4})
    assert isinstance(vec, BatchedCellFateEnv) and vec.num_envs == 4


def test_bad_arguments_are_refused_in_one_line():
    with pytest.raises(UserInputError, match="num_envs must be a positive integer"):
        BatchedCellFateEnv({"world": world("myeloid")}, 0)
    with pytest.raises(UserInputError, match="engine"):
        BatchedCellFateEnv({"world": world("myeloid")}, 2, engine="cuda")
    with pytest.raises(UserInputError, match="environment setting"):
        BatchedCellFateEnv({"world": world("myeloid"), "bogus": 2}, 2)
