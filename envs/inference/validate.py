"""Check an inferred world against a known one: signed-edge precision/recall and knockout outcomes.

Edges are (regulator, target, sign) triples; an inferred edge counts only with the true
sign (a true edge of sign 0, acting both ways, matches either sign). Self-loops are left
out by default: the rule search does not propose them unless asked to (a gene's own value
would trivially predict its persistence), so counting them only lowers recall by a fixed
amount; `include_self=True` counts them.

Knockout agreement follows IQCELL's check: for every gene present in both worlds, pin it
off from the start and compare the fate outcome of the two worlds, as the most likely
fate and as the set of fates reached with probability above `p_min`. Fates are matched
by name; a fate of one world absent from the other counts as 'other'.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from envs.world import OTHER, World


def edge_scores(
    true_edges: Iterable[tuple[str, str, int]],
    inferred_edges: Iterable[tuple[str, str, int]],
    genes: Iterable[str] | None = None,
    include_self: bool = False,
) -> dict:
    """Precision, recall and F1 of signed edges, restricted to `genes` (default: all)."""
    keep = None if genes is None else set(genes)

    def clean(edges):
        out = set()
        for src, dst, sign in edges:
            if (not include_self and src == dst) or (keep is not None and not {src, dst} <= keep):
                continue
            out.add((str(src), str(dst), int(np.sign(sign))))
        return out

    truth, found = clean(true_edges), clean(inferred_edges)

    def matches(true_edge, edge) -> bool:
        return true_edge[:2] == edge[:2] and true_edge[2] in (edge[2], 0)

    hits = {e for e in found if any(matches(t, e) for t in truth)}
    recovered = {t for t in truth if any(matches(t, e) for e in hits)}
    precision = len(hits) / len(found) if found else 0.0
    recall = len(recovered) / len(truth) if truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "n_true": len(truth),
        "n_inferred": len(found),
        "n_correct": len(hits),
        "missed": sorted(truth - recovered),
        "spurious": sorted(found - hits),
    }


def _outcome(probs: dict[str, float], names: set[str], p_min: float) -> tuple[str, frozenset]:
    merged: dict[str, float] = {}
    for fate, p in probs.items():
        key = fate if fate in names else OTHER
        merged[key] = merged.get(key, 0.0) + p
    best = max(sorted(merged), key=lambda f: merged[f])
    return best, frozenset(f for f, p in merged.items() if p > p_min)


def knockout_agreement(
    true_world: World,
    inferred_world: World,
    n_cells: int = 1000,
    seed: int = 0,
    p_min: float = 0.1,
    genes: Iterable[str] | None = None,
) -> dict:
    """Per single-gene knockout: do both worlds give the same top fate / the same fate set?"""
    from envs.oracle import fate_distribution  # the oracle pulls in scipy: only when checking

    shared = [g for g in inferred_world.genes if g in set(true_world.genes)]
    if genes is not None:
        shared = [g for g in shared if g in set(genes)]
    names = set(true_world.fates) & set(inferred_world.fates)
    rows = []
    for gene in shared:
        t = fate_distribution(true_world, [(gene, "knockout")], n_cells=n_cells, seed=seed).probabilities
        i = fate_distribution(inferred_world, [(gene, "knockout")], n_cells=n_cells, seed=seed).probabilities
        t_top, t_set = _outcome(t, names, p_min)
        i_top, i_set = _outcome(i, names, p_min)
        rows.append(
            {
                "gene": gene,
                "true_top": t_top,
                "inferred_top": i_top,
                "top_agrees": t_top == i_top,
                "true_set": sorted(t_set),
                "inferred_set": sorted(i_set),
                "set_agrees": t_set == i_set,
            }
        )
    n = len(rows) or 1
    return {
        "top_agreement": sum(r["top_agrees"] for r in rows) / n,
        "set_agreement": sum(r["set_agrees"] for r in rows) / n,
        "n_knockouts": len(rows),
        "rows": rows,
    }


def compare_worlds(true_world: World, inferred_world: World, n_cells: int = 1000, seed: int = 0) -> dict:
    """Edge scores (without and with self-loops) and knockout agreement in one dict."""
    genes = inferred_world.genes
    out = {"edges": edge_scores(true_world.network.edges, inferred_world.network.edges, genes)}
    out["edges_with_self"] = edge_scores(
        true_world.network.edges, inferred_world.network.edges, genes, include_self=True
    )
    out["knockouts"] = knockout_agreement(true_world, inferred_world, n_cells=n_cells, seed=seed)
    return out


def identifiability_ceiling(
    world: World, boolean: np.ndarray, max_activators: int = 3, max_repressors: int = 2, tolerance: float = 0.02
) -> dict:
    """Edge scores of the rule search fed the true states and their true next values.

    What no next-state estimate can beat on these cells: an edge that never changes a
    rule's output on the visited states (a redundant conjunct, a maintenance input of a
    gene that never switches on) is invisible to agreement, and the tie-break towards
    fewer regulators drops it. `boolean` is the (cells, genes) true state matrix, e.g.
    `layers['boolean']` of `envs.simulate.simulate_anndata`.
    """
    from envs.inference.rules import infer_rules

    boolean = np.asarray(boolean, dtype=np.uint8)
    targets = world.network.sync_update(boolean).astype(np.float64)
    rules = infer_rules(
        boolean,
        targets,
        list(world.genes),
        max_activators=max_activators,
        max_repressors=max_repressors,
        max_candidates=world.n_genes,
        tolerance=tolerance,
    )
    edges = [e for fit in rules.values() for e in fit.edges]
    return edge_scores(world.network.edges, edges)
