"""Learning tests (slow): PPO reaches 90% of the exact optimum on the myeloid world.

Budgets (env steps, PPO defaults, Adam lr 3e-4, seed 0): steer (target Mo,
MAX_PERTURB 2) 10240, predict (MAX_PERTURB 2) 16384. The greedy policy is
evaluated on 200 fresh episodes (seeds 10_000..) after every 1024-step
iteration; each test prints the first env-step count at which it reached 90%.
Run with ``pytest -m slow tests/test_learning.py -s``.
"""

from __future__ import annotations

import pytest

from algorithms.trial import TrialRunner
from algorithms.trial_plan import TrialPlan
from envs.oracle import bayes_optimal_accuracy, best_perturbations
from envs.world import load_world

STEER_BUDGET = 10_240
PREDICT_BUDGET = 16_384
EVAL_EPISODES = 200
EVAL_SEED = 10_000
KINDS = ("knockout", "overexpression")


pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_session")]


def steps_to_fraction(config: TrialPlan, optimum: float, fraction: float = 0.9) -> tuple[int | None, list]:
    """Train to the budget; the first env-step count whose greedy score >= fraction * optimum."""
    runner = TrialRunner(config)
    curve = []
    try:
        while not runner.done:
            steps = runner.train_iteration()["env_steps"]
            score = runner.evaluate(EVAL_EPISODES, EVAL_SEED)["score"]
            curve.append((steps, round(score, 3)))
            if score >= fraction * optimum:
                return steps, curve
    finally:
        runner.stop()
    return None, curve


@pytest.mark.parametrize("module", ["gnn", "mlp"])
def test_steer_reaches_90_percent_of_oracle(module):
    world = load_world("myeloid")
    optimum = best_perturbations(world, "Mo", 2, KINDS).optimum
    config = TrialPlan(world=world, task="steer", target="Mo", max_perturb=2, module=module, env_steps=STEER_BUDGET, seed=0)
    steps, curve = steps_to_fraction(config, optimum)
    print(f"\nsteer Mo {module}: optimum {optimum:.3f}, steps to 90%: {steps}, curve {curve}")
    assert steps is not None, f"{module} did not reach 90% of {optimum:.3f} in {config.env_steps} steps: {curve}"


@pytest.mark.parametrize("module", ["gnn", "mlp"])
def test_predict_reaches_90_percent_of_bayes_optimum(module):
    world = load_world("myeloid")
    optimum = bayes_optimal_accuracy(world, 2, KINDS)["optimum"]
    config = TrialPlan(world=world, task="predict", max_perturb=2, module=module, env_steps=PREDICT_BUDGET, seed=0)
    steps, curve = steps_to_fraction(config, optimum)
    print(f"\npredict {module}: Bayes optimum {optimum:.3f}, steps to 90%: {steps}, curve {curve}")
    assert steps is not None, f"{module} did not reach 90% of {optimum:.3f} in {config.env_steps} steps: {curve}"
