"""Graded perturbations of an ODE world: knockout, overexpression, knock-down and activation.

A perturbation scales a gene's mRNA production f (a fraction of its maximum) as CRISPRi / CRISPRa
would: knock-down by a fraction q gives (1 - q) f, activation by q gives f + q (1 - f). So a
knockout is a knock-down by 1 (production 0) and an overexpression an activation by 1
(production at its maximum). One number per gene carries both, a gene weight w in [-1, 1]:
w < 0 knocks down by -w, w > 0 activates by w, 0 leaves the gene alone (the Box action).
A multi-valued gene's weight applies to each of its variables.
"""

from __future__ import annotations

import numpy as np

from envs.errors import UserInputError
from envs.network import KNOCKOUT, OVEREXPRESSION, normalize_kind
from envs.world import World

KNOCKDOWN, ACTIVATION = "knockdown", "activation"
GRADED_KINDS = (KNOCKOUT, OVEREXPRESSION, KNOCKDOWN, ACTIVATION)
_GRADED_ALIASES = {"kd": KNOCKDOWN, "knockdown": KNOCKDOWN, "crispri": KNOCKDOWN,
                   "act": ACTIVATION, "activation": ACTIVATION, "crispra": ACTIVATION}
SYNTAX = "GENE=ko, GENE=oe, GENE=kd:F or GENE=act:F with F in [0, 1]"


def check_fraction(value, what: str = "knock-down fraction") -> float:
    """A fraction in [0, 1]; one-line error otherwise."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise UserInputError(f"{what} must be a number in [0, 1], got {value!r}") from None
    if isinstance(value, bool) or not np.isfinite(f) or not 0.0 <= f <= 1.0:
        raise UserInputError(f"{what} must be in [0, 1], got {value!r}")
    return f


def gene_weight(kind: str, fraction: "float | None" = None) -> float:
    """The gene weight in [-1, 1] of one perturbation."""
    key = str(kind).strip().lower()
    if key in _GRADED_ALIASES:
        kind = _GRADED_ALIASES[key]
        if fraction is None:
            raise UserInputError(f"{kind} needs a fraction: {SYNTAX}")
        q = check_fraction(fraction, f"{kind} fraction")
        return -q if kind == KNOCKDOWN else q
    kind = normalize_kind(kind)
    return -1.0 if kind == KNOCKOUT else 1.0


def parse_perturbation(text: str) -> tuple[str, float]:
    """`GENE=ko|oe|kd:F|act:F` -> (gene, weight)."""
    if "=" not in str(text):
        raise UserInputError(f"bad perturbation {text!r}; write {SYNTAX}")
    gene, spec = str(text).rsplit("=", 1)
    kind, _, fraction = spec.partition(":")
    return gene.strip(), gene_weight(kind, fraction if fraction else None)


def weights_from(world: World, perturbations) -> np.ndarray:
    """(genes,) weights from `GENE=...` strings, (gene, kind[, fraction]) tuples or {gene: weight}."""
    w = np.zeros(world.n_genes)
    items = perturbations.items() if isinstance(perturbations, dict) else perturbations or ()
    seen: set[str] = set()
    for item in items:
        if isinstance(item, str):
            gene, weight = parse_perturbation(item)
        elif len(item) == 2 and not isinstance(item[1], str):
            gene, weight = item[0], float(item[1])
            if not -1.0 <= weight <= 1.0:
                raise UserInputError(f"gene weight of {gene} must be in [-1, 1], got {weight!r}")
        else:
            gene, weight = item[0], gene_weight(item[1], item[2] if len(item) > 2 else None)
        if gene in seen:
            raise UserInputError(f"{gene!r} is perturbed twice; at most one perturbation per gene")
        seen.add(gene)
        w[world.gene_index(gene)] = weight
    return w


def production_scaling(world: World, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B, genes) or (genes,) weights -> (knockdown, activation), each (B, variables)."""
    w = np.clip(np.atleast_2d(np.asarray(weights, dtype=np.float64)), -1.0, 1.0)
    per_var = w @ world.level_matrix  # a variable belongs to exactly one gene
    return np.maximum(-per_var, 0.0), np.maximum(per_var, 0.0)
