"""Network inference from simulated single-cell data: edge precision/recall and knockout agreement.

For each built-in world and seed: simulate scRNA-seq along asynchronous trajectories
(noise and dropout at the simulator's defaults, 2000 cells over 200 trajectories),
infer a world with the default settings, and compare it with the true one (signed
edges without self-loops, single-gene knockout outcomes through the exact oracle).
`recall_ceiling` is the recall of the same rule search fed the true states and their
true next values: the part of the graph these data can reveal at all (with the
default 0.02 agreement tolerance; `recall_ceiling_no_tolerance` keeps every regulator
that fixes even one cell).
`end_fates_reached` counts the observed end fates the inferred world reaches from the
start state, `rule_swaps` the near-best rules swapped in to reach them. A last row does
the same for scanpy's krumsiek11 data against the published myeloid rules.
"""

from __future__ import annotations

import time


def _row(
    world_name: str, data_name: str, seed, true_world, result, seconds: float, ceiling: dict | None, exact: dict | None
) -> dict:
    from envs.inference.validate import compare_worlds

    checked = compare_worlds(true_world, result.world, seed=0)
    edges, with_self, knockouts = checked["edges"], checked["edges_with_self"], checked["knockouts"]
    return {
        "world": world_name,
        "data": data_name,
        "seed": seed,
        "precision": edges["precision"],
        "recall": edges["recall"],
        "edges": f"{edges['n_correct']}/{edges['n_inferred']} of {edges['n_true']}",
        "recall_with_self": with_self["recall"],
        "recall_ceiling": None if ceiling is None else ceiling["recall"],
        "recall_ceiling_no_tolerance": None if exact is None else exact["recall"],
        "ko_top_agreement": knockouts["top_agreement"],
        "ko_set_agreement": knockouts["set_agreement"],
        "end_fates_reached": f"{len(result.settings['fates_reached'])}/{len(result.settings['end_fates'])}",
        "rule_swaps": len(result.settings["rule_swaps"]),
        "infer_s": seconds,
    }


def bench_inference(
    worlds: "tuple[str, ...]" = ("myeloid", "tcell"),
    seeds: "tuple[int, ...]" = (0, 1, 2),
    n_cells: int = 2000,
    n_trajectories: int = 200,
    krumsiek: bool = True,
) -> list[dict]:
    """One row per (world, seed), plus krumsiek11 when `krumsiek` and 'myeloid' is among the worlds."""
    from envs import load_world
    from envs.inference import infer_world
    from envs.inference.validate import identifiability_ceiling
    from envs.simulate import simulate_anndata

    rows: list[dict] = []
    for name in worlds:
        try:
            world = load_world(name)
        except NotImplementedError:
            rows.append({"world": name, "data": "not available in this build"})
            continue
        for seed in seeds:
            adata = simulate_anndata(world, n_cells=n_cells, n_trajectories=n_trajectories, seed=seed)
            start = time.perf_counter()
            result = infer_world(adata, genes=list(world.genes), seed=seed, name=f"{name}-inferred")
            seconds = time.perf_counter() - start
            ceiling = identifiability_ceiling(world, adata.layers["boolean"])
            exact = identifiability_ceiling(world, adata.layers["boolean"], tolerance=0.0)
            rows.append(_row(name, f"simulated {n_cells} cells", seed, world, result, seconds, ceiling, exact))
    if krumsiek and "myeloid" in worlds:
        import scanpy as sc

        adata = sc.datasets.krumsiek11()
        start = time.perf_counter()
        result = infer_world(adata, pseudotime=None, name="krumsiek11-inferred")
        seconds = time.perf_counter() - start
        data_name = "krumsiek11 (dpt from iroot)"
        rows.append(_row("myeloid", data_name, None, load_world("myeloid"), result, seconds, None, None))
    return rows
