"""CellFateEnv: spaces, masking, both tasks, reproducibility, and agreement with the simulator."""

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from envs import CellFateEnv, UserInputError, load_world
from envs.cell_fate_env import register_env
from envs.simulate import monte_carlo_fates


@pytest.mark.parametrize("task", ["steer", "predict"])
@pytest.mark.parametrize("observation", ["graph", "flat"])
def test_passes_gymnasium_checker(task, observation):
    env = CellFateEnv({"task": task, "target": "Mo", "observation": observation})
    check_env(env, skip_render_check=True)


def rollout(env, seed, policy):
    obs, _ = env.reset(seed=seed)
    trace, done = [], False
    while not done:
        action = policy(obs)
        obs, reward, done, _, info = env.step(action)
        trace.append((action, reward, obs["x"].tobytes()))
    return trace, info


def test_seeded_episodes_are_reproducible():
    env = CellFateEnv({"target": "Neu", "max_perturb": 3})
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    pick = lambda rng: (lambda obs: int(rng.choice(np.flatnonzero(obs["action_mask"]))))
    a = rollout(env, 11, pick(rng_a))
    b = rollout(env, 11, pick(rng_b))
    assert a == b


def test_mask_enforces_budget_and_one_perturbation_per_gene():
    env = CellFateEnv({"target": "Mo", "max_perturb": 2, "perturbation_cost": 0.0})
    obs, _ = env.reset(seed=0)
    ko_gata1 = env.encode_action("Gata1", "knockout")
    obs, *_ = env.step(ko_gata1)
    assert obs["action_mask"][ko_gata1] == 0
    assert obs["action_mask"][env.encode_action("Gata1", "overexpression")] == 0
    obs, *_ = env.step(env.encode_action("Fli1", "knockout"))
    assert obs["action_mask"][1:].sum() == 0 and obs["action_mask"][0] == 1
    # An action the mask forbids is a no-op with a penalty, and the cell advances.
    stage = env.stage
    _, reward, _, _, info = env.step(env.encode_action("EKLF", "knockout"))
    assert info.get("invalid_action") and reward < 0 and env.stage == stage + 1
    assert env.n_perturbed == 2


def test_steer_outcome_distribution_matches_the_simulator():
    """Perturbing at time 0 then letting the cell develop gives the simulator's fate law."""
    env = CellFateEnv({"target": "Mo", "max_perturb": 1, "perturbation_cost": 0.0})
    world = env.world
    n = 1500
    hits = 0
    for seed in range(n):
        env.reset(seed=seed)
        env.step(env.encode_action("Gfi1", "knockout"))
        done = False
        while not done:
            _, reward, done, _, info = env.step(0)
        hits += info["success"]
    expected = monte_carlo_fates(world, [("Gfi1", "ko")], n_cells=4000, seed=1).probabilities["Mo"]
    se = np.sqrt(expected * (1 - expected) / n + expected * (1 - expected) / 4000)
    assert abs(hits / n - expected) < 4 * se + 1e-9
    assert expected > 0.2  # the knockout of Gfi1 really favours Mo over Neu


def test_predict_task_scores_predictions_against_the_realized_fate():
    env = CellFateEnv({"task": "predict", "max_perturb": 3})
    labels = env.world.fate_labels
    obs, _ = env.reset(seed=3)
    total, done = 0.0, False
    while not done:
        obs, reward, done, _, info = env.step(labels.index("Neu"))
        total += reward
    assert info["predictions"] == ["Neu"] * env.n_stages
    assert total == pytest.approx(1.0 if info["fate"] == "Neu" else 0.0)
    assert len(info["perturbations"]) <= 3


def test_graph_features_report_perturbations_and_target():
    env = CellFateEnv({"target": "Ery"})
    obs, _ = env.reset(seed=0)
    world = env.world
    g = world.network.gene_index("Pu.1")
    obs, *_ = env.step(env.encode_action("Pu.1", "knockout"))
    assert obs["x"][g, 1] == 1 and obs["x"][g, 0] == 0
    eklf = world.network.gene_index("EKLF")
    assert obs["x"][eklf, 3] == 1  # Ery requires EKLF on
    assert obs["x"][:, 6].max() == pytest.approx(0.5)


@pytest.mark.parametrize(
    "config, message",
    [
        ({"task": "drive"}, "unknown task 'drive'; valid choices: steer, predict"),
        ({"target": "Tcell"}, "valid choices: Ery, Mk, Mo, Neu"),
        ({"max_perturb": 0}, "max_perturb must be an integer in 1..11"),
        ({"kinds": ["silence"]}, "unknown perturbation kind 'silence'"),
        ({"colour": 1}, "unknown environment setting 'colour'"),
    ],
)
def test_bad_settings_are_one_line_errors(config, message):
    with pytest.raises(UserInputError, match=message):
        CellFateEnv(config)


def test_registered_for_gymnasium():
    import gymnasium as gym

    name = register_env()
    env = gym.make(name, config={"target": "Mk"})
    obs, _ = env.reset(seed=0)
    assert obs["x"].shape == (load_world("myeloid").n_genes, 8)
