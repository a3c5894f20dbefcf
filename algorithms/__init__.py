"""RLlib side of the tournament: GNN / MLP RLModules, learners with our optimizers, trials.

Entry points: ``algorithms.trial.TrialConfig`` / ``TrialRunner`` (one trial to its
budget) and ``algorithms.registry.build_algorithm_config`` (one RLlib config).
"""

from algorithms.registry import ALGORITHM_NAMES, MODULE_KINDS, build_algorithm_config, register_algorithm
from algorithms.trial import TrialConfig, TrialRunner

__all__ = [
    "ALGORITHM_NAMES",
    "MODULE_KINDS",
    "TrialConfig",
    "TrialRunner",
    "build_algorithm_config",
    "register_algorithm",
]
