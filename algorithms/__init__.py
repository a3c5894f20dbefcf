"""RLlib side of the tournament: GNN / MLP RLModules, learners with our optimizers, trials.

Entry points: ``algorithms.trial.TrialConfig`` / ``TrialRunner`` (one trial to its
budget) and ``algorithms.registry.build_algorithm_config`` (one RLlib config).
"""

from algorithms.registry import ALGORITHM_NAMES, ALGORITHMS, MODULE_KINDS, build_algorithm_config
from algorithms.trial import TrialConfig, TrialRunner

__all__ = [
    "ALGORITHMS",
    "ALGORITHM_NAMES",
    "MODULE_KINDS",
    "TrialConfig",
    "TrialRunner",
    "build_algorithm_config",
]
