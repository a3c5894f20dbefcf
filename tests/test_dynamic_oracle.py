"""The exact dynamic optimum: equal to the static one where timing cannot help, above it where it
must, equal to the time-0 oracle for permanent pins, and to a Monte-Carlo run of its own policy."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from envs.cell_fate_env import CellFateEnv
from envs.dynamic_oracle import DynamicSolver, dynamic_optimum, env_dynamic_optimum
from envs.errors import UserInputError
from envs.network import BooleanNetwork
from envs.oracle import best_perturbations
from envs.world import make_world
from envs.worlds.synthetic import random_world


@functools.lru_cache(maxsize=None)
def toggle_world():
    """A toggle A/B splits 50/50 whatever one does to C; the target needs A and C."""
    net = BooleanNetwork.from_rules({"A": "!B", "B": "!A", "C": "C"}, where="toggle world")
    return make_world("toggle", net, {"T": {"A": 1, "C": 1}, "U": {"B": 1}}, {"start": []},
                      conditions={"c_off": {"C": 0}, "c_on": {"C": 1}})


@functools.lru_cache(maxsize=None)
def late_world():
    """R decays at a random time; M, once on, stays on only after R is gone. A pulse on M
    works only if it ends after R has gone, so the policy should wait and watch R."""
    net = BooleanNetwork.from_rules({"R": "0", "M": "!R & M", "X": "X"}, where="late world")
    return make_world("late", net, {"on": {"M": 1}, "off": {"M": 0}}, {"start": ["R"]})


def test_dynamic_equals_static_where_timing_cannot_help():
    # With one perturbation the cell needs C on; the toggle ignores C, so when is irrelevant.
    r = dynamic_optimum(toggle_world(), "T", 1, n_stages=3, updates_per_stage=3)
    assert r.value == pytest.approx(0.5, abs=1e-12) and r.static_value == pytest.approx(0.5, abs=1e-12)
    assert r.static_action == [("C", "overexpression")]
    assert r.static_value == pytest.approx(best_perturbations(toggle_world(), "T", 1).optimum, abs=1e-9)


def test_dynamic_exceeds_static_where_a_late_pulse_is_needed():
    r = dynamic_optimum(late_world(), "on", 1, n_stages=3, updates_per_stage=2, pulse_stages=1, kinds=("oe",))
    assert r.value > r.static_value + 0.1
    assert r.first_action == []  # wait: R may still be on
    assert r.static_action == [("M", "overexpression")]
    # The same world with a permanent pin: overexpressing M at time 0 is certain.
    assert dynamic_optimum(late_world(), "on", 1, n_stages=3, kinds=("oe",)).static_value == pytest.approx(1.0)


def test_static_with_permanent_pins_is_the_time0_oracle():
    world = random_world(7, seed=2)
    for target in world.fates:
        r = dynamic_optimum(world, target, 2, n_stages=2)
        assert r.static_value == pytest.approx(best_perturbations(world, target, 2).optimum, abs=1e-9)
        assert r.value >= r.static_value - 1e-12


def run_policy(config: dict, solver: DynamicSolver, episodes: int, seed: int) -> np.ndarray:
    """Successes of the solver's policy in the env, one episode per seed."""
    env = CellFateEnv(config)
    wins = np.zeros(episodes)
    for i in range(episodes):
        env.reset(seed=seed + i)
        done = False
        while not done:
            for gene, kind in solver.best_action(env.stage, env.state, env.active_pins(), env.max_perturb - env.n_perturbed):
                env.step(env.encode_action(gene, kind))
            *_, done, _, info = env.step(0)
        wins[i] = info["success"]
    return wins


@pytest.mark.parametrize("pulse", [None, 1], ids=["permanent", "pulse1"])
def test_value_matches_monte_carlo_of_its_own_policy(pulse):
    world = random_world(6, seed=5)
    config = {"world": world, "target": "F1", "max_perturb": 1, "n_stages": 3, "updates_per_stage": 6,
              "pulse_stages": pulse}
    r = env_dynamic_optimum(config)
    solver = DynamicSolver(world, "F1", 1, 3, 6, pulse_stages=pulse)
    wins = run_policy(config, solver, 1500, seed=100)
    stderr = max(wins.std() / np.sqrt(len(wins)), 1e-3)
    assert abs(wins.mean() - r.value) < 4 * stderr, (wins.mean(), r.value, stderr)


def test_backgrounds_conditions_and_attractor_starts_are_worlds_like_any_other():
    world = toggle_world()
    via_setting = dynamic_optimum(world, "U", 1, n_stages=2, background=["A=ko"])
    via_world = dynamic_optimum(world.with_background(["A=ko"]), "U", 1, n_stages=2)
    assert via_setting.value == via_world.value == pytest.approx(1.0)
    assert via_world.static_action == []  # B wins without help once A is knocked out
    # Under c_on the cell may start on the T attractor; with C knocked out it must leave it.
    r = dynamic_optimum(world, "T", 1, n_stages=2, start="attractor:T", condition="c_on")
    assert r.value == pytest.approx(1.0) and r.by_start == {"attractor:T": pytest.approx(1.0)}
    r = dynamic_optimum(world, "U", 1, n_stages=2, start="attractor:T", condition="c_on")
    assert r.value == pytest.approx(1.0) and r.static_action == [("A", "knockout")]


def test_refuses_large_worlds_and_bad_settings():
    with pytest.raises(UserInputError, match="at most 12 variables"):
        dynamic_optimum(random_world(13, seed=0), "F0", 1)
    with pytest.raises(UserInputError, match="pulse_stages"):
        dynamic_optimum(toggle_world(), "T", 1, pulse_stages=0)
    with pytest.raises(UserInputError, match="valid choices"):
        dynamic_optimum(toggle_world(), "nope", 1)
    with pytest.raises(UserInputError, match="operations"):
        dynamic_optimum(random_world(12, seed=0), "F0", 3, n_stages=6, pulse_stages=3, max_work=1e6)
