"""BEELINE's scores of a ranked edge list: AUPRC ratio and early precision ratio.

Definitions as in BEELINE (Pratapa et al. 2020, Nat Methods 17:147; BLEval/AUPRC.py and
EarlyPrecision.py), edges undirected in sign and directed in (regulator, target):

- The universe is every ordered pair of distinct genes of the reference network (the
  genes its edges name, self-loops included); its self-loops are dropped, and so are
  predicted self-loops and predicted edges outside the universe.
- AUPRC: each pair scores the |weight| of its first appearance in the ranked list (0 when
  it is not listed); sklearn's `precision_recall_curve` and `auc` (trapezoidal over
  recall). Its ratio divides by a random predictor's AUPRC, the density of the reference
  (true edges / ordered pairs).
- Early precision: k = the number of true edges; the top-k edges by |weight| are kept,
  with every edge tied with the k-th, and none of weight 0 (the non-zero minimum is the
  floor); precision among them. Its ratio divides by the density too.
"""

from __future__ import annotations

from itertools import permutations
from typing import Iterable

import numpy as np

Edge = tuple[str, str]


def _reference(true_edges: Iterable[Edge], genes: "Iterable[str] | None") -> tuple[list[str], set[Edge]]:
    """The universe's genes (those of the reference, self-loops included, plus `genes`) and its edges."""
    edges = {(str(a), str(b)) for a, b in true_edges}
    names = sorted({g for e in edges for g in e} | set(map(str, genes or ())))
    return names, {e for e in edges if e[0] != e[1]}


def _first_weights(ranked: Iterable[tuple[str, str, float]], names: list[str]) -> dict[Edge, float]:
    """|weight| of each pair's first appearance, for pairs of distinct genes of the universe."""
    inside = set(names)
    weights: dict[Edge, float] = {}
    for a, b, w in ranked:
        key = (str(a), str(b))
        if key[0] != key[1] and key not in weights and key[0] in inside and key[1] in inside:
            weights[key] = abs(float(w)) if np.isfinite(float(w)) else 0.0
    return weights


def auprc(true_edges: Iterable[Edge], ranked: Iterable[tuple[str, str, float]], genes=None) -> float:
    """Area under the precision-recall curve over all ordered pairs of distinct genes."""
    from sklearn.metrics import auc, precision_recall_curve

    names, true = _reference(true_edges, genes)
    weights = _first_weights(ranked, names)
    pairs = list(permutations(names, 2))
    y = np.array([p in true for p in pairs], dtype=int)
    if not y.any():
        return float("nan")
    score = np.array([weights.get(p, 0.0) for p in pairs])
    precision, recall, _ = precision_recall_curve(y, score)
    return float(auc(recall, precision))


def density(true_edges: Iterable[Edge], genes=None) -> float:
    """True edges (no self-loops) over ordered pairs of distinct genes: a random predictor's precision."""
    names, true = _reference(true_edges, genes)
    n = len(names)
    return len(true) / (n * (n - 1)) if n > 1 else float("nan")


def early_precision(true_edges: Iterable[Edge], ranked: Iterable[tuple[str, str, float]], genes=None) -> float:
    """Precision among the top-k edges (k = number of true edges; ties with the k-th kept, zeros left out)."""
    names, true = _reference(true_edges, genes)
    weights = _first_weights(ranked, names)
    if not weights or not true:
        return 0.0
    order = sorted(weights.items(), key=lambda kv: -round(kv[1], 6))
    values = np.array([round(w, 6) for _, w in order])
    k = min(len(order), len(true))
    nonzero = values[values > 0]
    floor = max(float(nonzero.min()) if len(nonzero) else np.inf, float(values[k - 1]))
    top = {edge for (edge, _), w in zip(order, values) if w >= floor}
    return len(top & true) / len(top) if top else 0.0


def beeline_scores(true_edges: Iterable[Edge], ranked: Iterable[tuple[str, str, float]], genes=None) -> dict:
    """AUPRC, early precision, and both divided by the reference's density."""
    true_edges, ranked = list(true_edges), list(ranked)
    d = density(true_edges, genes)
    a, e = auprc(true_edges, ranked, genes), early_precision(true_edges, ranked, genes)
    return {"auprc": a, "auprc_ratio": a / d, "early_precision": e, "epr": e / d, "density": d}
