"""Random Boolean networks of any size, for scaling benchmarks and size-transfer tests."""

from __future__ import annotations

import numpy as np

from envs.network import BooleanNetwork
from envs.world import World, make_world


def random_world(n_genes: int, regulators: int = 2, n_fates: int = 3, seed: int = 0) -> World:
    """A Kauffman-style network: each gene reads `regulators` random genes through a
    random monotone-per-input rule (activators OR-ed, gated by NOT repressors).

    Fate signatures are the fixed points reached from random states, so the world
    has real attractors to steer towards.
    """
    rng = np.random.default_rng(seed)
    genes = [f"g{i}" for i in range(n_genes)]
    rules: dict[str, str] = {}
    for i, gene in enumerate(genes):
        k = min(regulators, n_genes)
        regs = rng.choice(n_genes, size=k, replace=False)
        signs = rng.random(k) < 0.6
        acts = [genes[r] for r, s in zip(regs, signs) if s]
        reps = [genes[r] for r, s in zip(regs, signs) if not s]
        clause = " | ".join(acts) if acts else gene
        rule = f"({clause})" + "".join(f" & !{r}" for r in reps)
        rules[gene] = rule
    network = BooleanNetwork.from_rules(rules, where=f"random network {n_genes}")
    start = (rng.random(n_genes) < 0.5).astype(np.uint8)
    states = (rng.random((64, n_genes)) < 0.5).astype(np.uint8)
    final = network.run_to_attractor(states, rng)
    fixed = final[network.is_fixed_point(final)]
    unique = np.unique(fixed, axis=0)[:n_fates] if len(fixed) else final[:1]
    fates = {f"F{j}": {g: int(v) for g, v in zip(genes, row)} for j, row in enumerate(unique)}
    return make_world(
        f"random{n_genes}",
        network,
        fates,
        {"start": [g for g, v in zip(genes, start) if v]},
        description=f"Random Boolean network, {n_genes} genes, {regulators} regulators each (seed {seed}).",
        source="synthetic",
    )
