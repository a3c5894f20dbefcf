"""Network inference scored as BEELINE scores it: AUPRC ratio and early precision ratio, beside 12 methods.

With `beeline` (the BEELINE / BoolODE folder, e.g. ../shared/data/beeline-boolode): for
each curated model (HSC, mCAD, VSC, GSD, with and without BEELINE's dropout `_50`) and each
synthetic network (dyn-*), the project infers a world with its defaults (no cell types:
fates from the pseudotime branches) and its ranked edges (`edges.csv`'s score) are scored
with `envs.inference.metrics` against `refNetwork.csv`, side by side with every method's
`rankedEdges.csv` from `outputs/`, all computed here from the files. `rank` is the
project's place among the 13 (1 = best; ties share the better place). Then moignard15
(qPCR dCt, the SCNS toolkit's 20-TF embryo model as reference, stages from the cell ids
as cell types, diffusion pseudotime from the first PS cell) and the project's own
simulated worlds, scored the same way. `rules_precision` / `rules_recall` are the signed
edges of the chosen rules (self-loops left out).

Without `beeline` only the moignard15 and simulated-world rows are produced.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

METRICS = (("auprc_ratio", "AUPRC ratio"), ("epr", "EPR"))
CURATED = ("HSC", "mCAD", "VSC", "GSD")
# SCNS writes these two genes under other names than the qPCR table.
MOIGNARD_ALIASES = {"Eto2": "Cbfa2t3h", "Pu1": "Sfpi1"}
DEFAULT_SHARED = Path(__file__).resolve().parents[4] / "shared" / "data"


def _datasets(root: Path) -> list[tuple[str, str, Path, Path]]:
    """(kind, name, data folder, outputs folder) for every BEELINE data set under root."""
    found = []
    for folder in sorted((root / "simulated").glob("*_2000_0*")):
        model = folder.name.split("_")[0]
        found.append(("curated", folder.name, folder, root / "outputs" / "Simulated" / model / folder.name))
    for folder in sorted((root / "synthetic").glob("dyn-*")):
        model = folder.name.split("_")[0]
        found.append(("synthetic", folder.name, folder, root / "outputs" / "Synthetic" / model / folder.name))
    order = {m: i for i, m in enumerate(CURATED)}
    return sorted(found, key=lambda d: (d[0] != "curated", order.get(d[1].split("_")[0], 99), d[1]))


def _ours(result) -> list[tuple[str, str, float]]:
    table = result.ranked_edges
    return list(zip(table["regulator"], table["target"], table["score"].astype(float)))


def _rank(ours: float, others: dict[str, float]) -> str:
    values = [v for v in others.values() if np.isfinite(v)]
    return f"{1 + sum(v > ours for v in values)}/{len(values) + 1}"


def _rows(kind: str, name: str, truth, result, methods: dict[str, list], seconds: float, genes=None) -> list[dict]:
    from envs.inference.metrics import beeline_scores
    from envs.inference.validate import edge_scores

    pairs = [(a, b) for a, b, _ in truth]
    ours = beeline_scores(pairs, _ours(result), genes)
    others = {m: beeline_scores(pairs, edges, genes) for m, edges in methods.items()}
    rules = edge_scores(truth, result.edges, genes=genes)
    rows = []
    for key, label in METRICS:
        scores = {m: s[key] for m, s in others.items()}
        row = {"data": name, "kind": kind, "metric": label, "ours": ours[key]}
        if scores:
            best = max(scores, key=scores.get)
            row.update(rank=_rank(ours[key], scores), best_other=f"{best} {scores[best]:.3g}",
                       median_other=float(np.median(list(scores.values()))))
        row.update(density=ours["density"], rules_precision=rules["precision"], rules_recall=rules["recall"],
                   infer_s=seconds)
        row.update(scores)
        rows.append(row)
    return rows


def _infer(adata, **kwargs):
    from envs.inference import infer_world

    start = time.perf_counter()
    result = infer_world(adata, **kwargs)
    return result, time.perf_counter() - start


def beeline_rows(root: "str | Path") -> list[dict]:
    """Two rows (AUPRC ratio, EPR) per BEELINE data set: the project's ranked edges beside the 12 methods'."""
    from envs.errors import UserInputError
    from envs.inference import read_data
    from envs.inference.references import read_ranked_edges, read_ref_network

    root = Path(root)
    datasets = _datasets(root)
    if not datasets:
        raise UserInputError(f"no BEELINE data sets under {root}; expected simulated/*_2000_0* or synthetic/dyn-*")
    rows: list[dict] = []
    for kind, name, folder, outputs in datasets:
        adata = read_data(folder)
        truth = read_ref_network(folder / "refNetwork.csv")
        methods = {p.parent.name: read_ranked_edges(p) for p in sorted(outputs.glob("*/rankedEdges.csv"))}
        result, seconds = _infer(adata, genes=list(adata.var_names), name=name)
        rows += _rows(kind, name, truth, result, methods, seconds)
    return rows


def moignard_rows(folder: "str | Path") -> list[dict]:
    """moignard15 dCt (higher = more expressed) against the SCNS embryo model's 20 TFs."""
    import pandas as pd

    from envs.inference import read_data
    from envs.inference.references import read_genysis_edges

    folder = Path(folder)
    adata = read_data(folder / "nbt.3154-S3_dCt.csv")
    truth = read_genysis_edges(folder / "scns_combined_embryo_model.net", MOIGNARD_ALIASES)
    genes = sorted({g for e in truth for g in e[:2]})
    stages = pd.Series(adata.obs_names).str.extract(r"^(PS|NP|HF|4SG|4SFG)")[0].fillna("other").to_numpy()
    adata.obs["stage"] = stages
    root = int(np.nonzero(stages == "PS")[0][0])
    result, seconds = _infer(adata, pseudotime=None, root=root, cell_type="stage", genes=genes, name="moignard15")
    return _rows("real qPCR", "moignard15 vs SCNS model", truth, result, {}, seconds, genes)


def simulated_rows(worlds=("myeloid", "tcell"), seeds=(0,), n_cells: int = 2000, n_trajectories: int = 200) -> list[dict]:
    """The project's own worlds, simulated by envs.simulate, scored against their rules' edges."""
    from envs import load_world
    from envs.simulate import simulate_anndata

    rows: list[dict] = []
    for name in worlds:
        world = load_world(name)
        truth = list(world.network.edges)
        for seed in seeds:
            adata = simulate_anndata(world, n_cells=n_cells, n_trajectories=n_trajectories, seed=seed)
            result, seconds = _infer(adata, genes=list(world.genes), seed=seed, name=f"{name}-inferred")
            rows += _rows("own simulator", f"{name} seed {seed}", truth, result, {}, seconds, list(world.genes))
    return rows


def bench_inference(
    beeline: "str | Path | None" = None,
    moignard: "str | Path | None" = None,
    worlds: "tuple[str, ...]" = ("myeloid", "tcell"),
    seeds: "tuple[int, ...]" = (0,),
) -> list[dict]:
    """BEELINE rows (when `beeline`), moignard15 (default: ../shared/data/moignard15 when present), own worlds."""
    rows = beeline_rows(beeline) if beeline is not None else []
    moignard = DEFAULT_SHARED / "moignard15" if moignard is None else Path(moignard)
    if moignard.is_dir():
        rows += moignard_rows(moignard)
    rows += simulated_rows(worlds, seeds)
    return rows
