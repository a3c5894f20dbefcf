"""Pulsed perturbations, background mutations and attractor starts, in the single and the batched env."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from envs.batched_env import BatchedCellFateEnv
from envs.cell_fate_env import CellFateEnv
from envs.errors import UserInputError
from envs.network import BooleanNetwork
from envs.oracle import best_perturbations, exact_fates
from envs.world import make_world
from test_batched_env import assert_same_trajectories
from test_batched_env import world as named_world


@functools.lru_cache(maxsize=None)
def pulse_world():
    """G decays unless pinned; M remembers G; W follows M."""
    net = BooleanNetwork.from_rules({"G": "0", "M": "M | G", "W": "M"}, where="pulse world")
    return make_world("pulse", net, {"mem": {"M": 1, "W": 1}, "naive": {"M": 0}}, {"start": []})


@functools.lru_cache(maxsize=None)
def toggle_world():
    """A toggle A/B that splits 50/50, and an input C set by a condition."""
    net = BooleanNetwork.from_rules({"A": "!B", "B": "!A", "C": "C"}, where="toggle world")
    return make_world(
        "toggle", net, {"T": {"A": 1, "C": 1}, "U": {"B": 1}}, {"start": []},
        conditions={"c_off": {"C": 0}, "c_on": {"C": 1}},
    )


def pulse_env(**extra) -> CellFateEnv:
    return CellFateEnv({"world": pulse_world(), "target": "mem", "n_stages": 4, "updates_per_stage": 3,
                        "max_perturb": 2, "seed": 0, **extra})


def test_a_pulse_releases_its_gene_after_d_stages():
    env = pulse_env(pulse_stages=2)
    oe = env.encode_action("G", "oe")
    obs, *_ = env.step(oe)
    assert env.active_pins() == {"G": ("overexpression", 2)}
    assert obs["x"][0, 2] == 1 and obs["action_mask"][oe] == 0
    obs, *_ = env.step(0)
    assert env.active_pins() == {"G": ("overexpression", 1)} and env.pins.mask[0, 0]
    obs, *_ = env.step(0)
    assert env.active_pins() == {} and not env.pins.mask[0].any()
    assert obs["x"][0, 2] == 0 and obs["action_mask"][oe] == 1  # may be perturbed again
    assert obs["x"][0, 6] == 0.5  # the budget is not refunded
    env.step(oe)
    env.step(0)
    *_, done, _, info = env.step(0)
    assert done and info["perturbations"] == [("G", "overexpression")] * 2 and info["perturbation_stages"] == [0, 2]


def test_permanent_pins_stay_and_the_mask_ignores_released_genes_by_default():
    env = pulse_env()
    env.step(env.encode_action("G", "oe"))
    for _ in range(3):
        env.step(0)
    assert env.active_pins() == {"G": ("overexpression", None)}


def test_pulses_left_at_the_end_act_for_their_remaining_stages():
    env = pulse_env(pulse_stages=3, n_stages=1)
    calls = []
    advance = env._advance
    env._advance = lambda n: (calls.append(n), advance(n))[1]
    env.step(env.encode_action("G", "oe"))
    *_, done, _, info = env.step(0)
    assert done and calls == [3, 3, 3]  # the stage itself, then the pulse's two remaining stages
    assert env.active_pins() == {}


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_pulse_lengths_are_one_line_errors(bad):
    with pytest.raises(UserInputError, match="pulse_stages") as err:
        pulse_env(pulse_stages=bad)
    assert repr(bad) in str(err.value) and "\n" not in str(err.value)


def test_pulses_are_refused_for_the_predict_task():
    with pytest.raises(UserInputError, match="steer"):
        CellFateEnv({"world": pulse_world(), "task": "predict", "pulse_stages": 1})


@pytest.mark.parametrize("extra", [{"pulse_stages": 1}, {"pulse_stages": 2, "max_perturb": 3},
                                   {"pulse_stages": 3, "n_stages": 2, "background": ["Spi1=oe"]}],
                         ids=["d1", "d2", "d3-background"])
def test_batched_env_matches_the_single_env_with_pulses(extra):
    assert assert_same_trajectories({"world": named_world("tcell"), **extra}, steps=60) > 5


def test_batched_env_matches_with_pulses_on_multivalued_genes_and_the_numpy_engine():
    config = {"world": named_world("levels"), "pulse_stages": 1, "target": "T_fate", "start": ["rest", "primed"]}
    assert_same_trajectories(config, steps=60, engine="numpy")


def test_batched_pulse_release_shows_in_the_observation():
    env = BatchedCellFateEnv({"world": pulse_world(), "target": "mem", "pulse_stages": 1, "n_stages": 3}, 2)
    env.reset(seed=0)
    oe = env.encode_action("G", "oe")
    obs, *_ = env.step(np.array([oe, 0]))
    assert obs["x"][0, 0, 2] == 1 and obs["x"][1, 0, 2] == 0
    obs, *_ = env.step(np.array([0, 0]))
    assert obs["x"][0, 0, 2] == 0 and obs["action_mask"][0, oe] == 1


def test_background_fixes_genes_renames_the_world_and_masks_them():
    world = toggle_world().with_background(["A=ko"])
    assert world.name == "toggle+A=KO" and world.background == (("A", "knockout"),)
    assert world.network.rules[0] == "0" and world.start_state()[0] == 0
    assert exact_fates(world).probabilities["U"] == 1.0
    assert best_perturbations(world, "T", 1).optimum == 0.0  # the oracle runs on it unchanged
    env = CellFateEnv({"world": toggle_world(), "background": ["A=ko"], "target": "U", "max_perturb": 1, "seed": 0})
    assert env.world.name == "toggle+A=KO"
    mask = env._obs()["action_mask"]
    assert mask[env.encode_action("A", "ko")] == 0 and mask[env.encode_action("B", "ko")] == 1


def test_background_on_an_unknown_gene_names_it_and_the_genes():
    with pytest.raises(UserInputError, match=r"'Z'.*A, B, C"):
        toggle_world().with_background(["Z=ko"])
    with pytest.raises(UserInputError, match="GENE=ko"):
        toggle_world().with_background(["A"])
    with pytest.raises(UserInputError, match="max_perturb"):
        CellFateEnv({"world": toggle_world(), "background": ["A=ko", "B=oe"], "max_perturb": 2})


def test_attractor_start_is_a_cell_on_that_fate():
    world = toggle_world()
    state = world.start_state("attractor:U")
    assert list(state) == [0, 1, 0]
    assert exact_fates(world, start="attractor:U").probabilities["U"] == 1.0
    # Under c_on the T attractor is reachable; the env starts there.
    env = CellFateEnv({"world": world, "start": "attractor:T", "condition": "c_on", "target": "U", "seed": 0})
    assert list(env.state) == [1, 0, 1]
    with pytest.raises(UserInputError, match=r"'T'.*reachable fates: U"):
        world.start_state("attractor:T")  # C stays 0 under the default condition
    with pytest.raises(UserInputError, match="valid choices"):
        world.start_state("attractor:nope")


def test_a_saved_background_world_reads_back_with_its_background(tmp_path):
    from envs.world import read_world, save_world

    world = toggle_world().with_background(["A=ko"])
    back = read_world(save_world(world, tmp_path / "w"))
    assert back.name == world.name and back.background == world.background
    assert back.network.rules == world.network.rules and list(back.start_state()) == list(world.start_state())


def test_a_cut_edge_in_the_background_survives_saving(tmp_path):
    from envs.world import read_world, save_world

    world = toggle_world().with_background(["B->A=cut"])  # A reads B as absent: A turns on
    assert exact_fates(world).probabilities["U"] == 0.0
    back = read_world(save_world(world, tmp_path / "w"))
    assert np.array_equal(back.network.tables, world.network.tables)
