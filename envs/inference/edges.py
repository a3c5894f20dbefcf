"""Ranked, signed edges with a confidence: how stable each regulator is over bootstrap resamples of cells.

The rule search picks one parsimonious rule per gene; whether a regulator is in it can
hinge on a few cells (two co-switching genes explain a target equally well, and the
tie-break towards fewer regulators keeps one). The confidence of an edge r -> g is the
share of bootstrap resamples of the cells (drawn with replacement, the next-state targets
and the per-gene search run again on each) whose rule for g holds r with that sign: a
frequency in [0, 1], the same scale on every data set, which is what a ranking across
data sets needs. It was chosen over the agreement lost when a regulator is removed
because that loss is measured on the cells that chose the rule (a regulator that just
made the cut loses little, one that won by a hair of another loses nothing), so it is
neither a probability nor comparable across genes.

Pairs that no resample puts in a rule still need an order for a ranking over all pairs
(BEELINE scores every ordered pair): their score is the mutual information between the
regulator's state and the target's next value, scaled below half of one resample's
share (1 / (2 B)), so it never outranks an edge chosen even once. The sign of such a
pair is that of their correlation. Edges of the chosen rules carry `in_rules` and their
rule's sign; the network-level swaps (`envs.inference.consistency`) are not rerun per
resample, so a swapped-in rule's edges may score low.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from envs.inference.rules import RuleFit, mutual_information

EDGE_COLUMNS = ("regulator", "target", "sign", "score", "in_rules", "mutual_information")


def bootstrap_counts(
    fit: Callable[[np.ndarray], dict[str, RuleFit]], n_cells: int, n_boot: int, seed: int
) -> dict[tuple[str, str, int], int]:
    """How many of `n_boot` resamples put (regulator, target, sign) in the target's rule.

    `fit(rows)` runs the targets and the per-gene search on the cells `rows` (with repeats).
    """
    rng = np.random.default_rng(seed)
    counts: dict[tuple[str, str, int], int] = {}
    for _ in range(n_boot):
        rows = np.sort(rng.integers(0, n_cells, size=n_cells))
        for rule in fit(rows).values():
            for edge in rule.edges:
                counts[edge] = counts.get(edge, 0) + 1
    return counts


def edge_table(
    genes: list[str],
    rules: dict[str, RuleFit],
    binary: np.ndarray,
    targets: np.ndarray,
    weights: np.ndarray,
    counts: dict[tuple[str, str, int], int],
    n_boot: int,
) -> pd.DataFrame:
    """One row per ordered pair of distinct genes (EDGE_COLUMNS), best score first (module docstring)."""
    chosen = {(r, g): s for fit in rules.values() for r, g, s in fit.edges}
    index = {g: j for j, g in enumerate(genes)}
    rows = []
    for g in genes:
        j = index[g]
        keep = weights[:, j] > 0
        for r in genes:
            if r == g:
                continue
            i = index[r]
            mi = mutual_information(binary[keep, i], targets[keep, j]) if keep.any() else 0.0
            plus, minus = counts.get((r, g, 1), 0), counts.get((r, g, -1), 0)
            if (r, g) in chosen:
                sign = chosen[(r, g)]
            elif plus or minus:
                sign = 1 if plus >= minus else -1
            else:
                sign = _correlation_sign(binary[keep, i], targets[keep, j])
            hits = plus if sign > 0 else minus
            rows.append((r, g, sign, hits, (r, g) in chosen, mi))
    table = pd.DataFrame(rows, columns=["regulator", "target", "sign", "hits", "in_rules", "mutual_information"])
    n_boot = max(int(n_boot), 1)
    top_mi = float(table["mutual_information"].max()) or 1.0
    # Never chosen: below half a resample's share, ordered by mutual information.
    fallback = 0.5 / n_boot * table["mutual_information"] / top_mi * 0.999
    table["score"] = np.where(table["hits"] > 0, table["hits"] / n_boot, fallback)
    if not counts:  # no bootstrap: the chosen edges are the confident ones
        table["score"] = np.where(table["in_rules"], 1.0, fallback)
    table = table.sort_values(["score", "mutual_information"], ascending=False, kind="stable")
    return table[list(EDGE_COLUMNS)].reset_index(drop=True)


def _correlation_sign(x: np.ndarray, y: np.ndarray) -> int:
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return 1
    return 1 if np.corrcoef(x.astype(np.float64), y)[0, 1] >= 0 else -1
