"""Algorithm names -> the builders of their stages, as one literal dict.

Each algorithm's file holds its settings (a frozen dataclass with the defaults and
their meaning) and a ``build(trial, hparams) -> list[Stage]``: one Stage for an
algorithm that is one RLlib algorithm (PPO, A2C, TRPO, SAC), several for one that
chains them (TRPO_to_PPO, PPO_to_TRPO, LoRA_staged). Each Stage holds a ready
AlgorithmConfig, its share of the trial's env-step budget and an optional
``transfer(previous_algo, new_algo)`` hook that moves weights (algorithms.common).
A key of ``algo_hparams`` that names no setting is a UserInputError.

The algorithm files import algorithms.common, never this file, so importing them
all here makes no cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

from envs.errors import UserInputError, choices_error

from algorithms import a2c, lora, ppo, sac, staged, trpo
from algorithms.common import Stage
from algorithms.modules import MODULE_KINDS

if TYPE_CHECKING:
    from algorithms.trial_plan import TrialPlan

Builder = Callable[["TrialPlan", Mapping[str, Any]], "list[Stage]"]

ALGORITHMS: dict[str, Builder] = {
    "PPO": ppo.build,
    "A2C": a2c.build,
    "SAC": sac.build,
    "TRPO": trpo.build,
    "TRPO_to_PPO": staged.build_trpo_to_ppo,
    "PPO_to_TRPO": staged.build_ppo_to_trpo,
    "LoRA_staged": lora.build,
}
ALGORITHM_NAMES = tuple(ALGORITHMS)
# The algorithms built and tested for continuous actions (the ODE worlds' gene weights): PPO with a
# Gaussian policy, SAC with a tanh-squashed one.
CONTINUOUS_ALGORITHMS = ("PPO", "SAC")
# What a cost calibration (tournament plan) sets so that its one short iteration runs at a
# trial's steady rate, per algorithm (each file says why).
STEADY_STATE_HPARAMS: dict[str, dict[str, Any]] = {"SAC": sac.STEADY_STATE_HPARAMS}

__all__ = ["ALGORITHMS", "ALGORITHM_NAMES", "CONTINUOUS_ALGORITHMS", "MODULE_KINDS", "STEADY_STATE_HPARAMS", "Stage", "algorithm_stages", "build_algorithm_config"]


def _stages(config: "TrialPlan", name: str, hparams: Mapping[str, Any]) -> list[Stage]:
    if name not in ALGORITHMS:
        raise choices_error("algorithm", name, ALGORITHM_NAMES)
    if config.action == "continuous" and name not in CONTINUOUS_ALGORITHMS:
        raise UserInputError(f"algorithm {name} has no continuous-action form; with action continuous use one of: "
                             f"{', '.join(CONTINUOUS_ALGORITHMS)}")
    return ALGORITHMS[name](config, hparams)


def build_algorithm_config(
    config: "TrialPlan", algorithm: str | None = None, stage_hparams: Mapping[str, Any] | None = None
) -> AlgorithmConfig:
    """The RLlib config of `algorithm` (default: config.algorithm); for a multi-stage
    name, its first stage's. Settings from `stage_hparams` when given, else
    ``config.algo_hparams``."""
    hparams = config.algo_hparams if stage_hparams is None else stage_hparams
    return _stages(config, algorithm or config.algorithm, hparams)[0].config


def algorithm_stages(config: "TrialPlan") -> list[Stage]:
    """The stages a trial of `config.algorithm` runs, in order; budget fractions sum to 1."""
    stages = _stages(config, config.algorithm, config.algo_hparams)
    total = sum(s.budget_fraction for s in stages)
    if not stages or abs(total - 1.0) > 1e-6 or any(s.budget_fraction <= 0 for s in stages):
        raise UserInputError(f"{config.algorithm}: stage budget fractions must be positive and sum to 1, got {[s.budget_fraction for s in stages]}")
    return stages
