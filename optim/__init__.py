"""Optimizers compared in the tournament: Adam, AMSGrad and their lr-switching ASGD variants.

Self-contained (torch only) so it can be imported by workers without the rest
of the project.
"""

from .asgd import ASGDAdam, ASGDAmsgrad
from .registry import OPTIMIZER_NAMES, TUNABLE_HPARAMS, active_lr_stats, make_optimizer

__all__ = [
    "ASGDAdam",
    "ASGDAmsgrad",
    "OPTIMIZER_NAMES",
    "active_lr_stats",
    "make_optimizer",
    "TUNABLE_HPARAMS",
]
