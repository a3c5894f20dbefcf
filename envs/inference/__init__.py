"""Worlds from single-cell data: read, preprocess, binarize, infer logic rules, validate (IQCELL-style)."""

from envs.inference.infer import InferenceResult, infer_world
from envs.inference.readers import read_data
from envs.inference.rules import RuleFit
from envs.inference.validate import compare_worlds, edge_scores, identifiability_ceiling, knockout_agreement

__all__ = [
    "InferenceResult",
    "RuleFit",
    "compare_worlds",
    "edge_scores",
    "identifiability_ceiling",
    "infer_world",
    "knockout_agreement",
    "read_data",
]
