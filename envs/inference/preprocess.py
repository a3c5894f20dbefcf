"""Check and prepare single-cell data for network inference: inputs, normalization, smoothing, pseudotime.

Every function takes and returns AnnData (scanpy's contract). Mistakes in the data raise
a one-line `UserInputError` naming the bad value and the valid choices.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from envs.errors import UserInputError

MIN_CELLS = 30
NON_FATE_LABELS = ("other", "unknown", "nan", "none", "", "shared")


def shown(values: Sequence[str], limit: int = 20) -> str:
    """Comma-separated values for an error message, cut after `limit`."""
    values = [str(v) for v in values]
    more = f", ... ({len(values)} in all)" if len(values) > limit else ""
    return ", ".join(values[:limit]) + more


def dense(x) -> np.ndarray:
    """A float64 array from a dense or sparse matrix."""
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)


def check_obs_column(adata, column: str, what: str) -> None:
    if column not in adata.obs.columns:
        raise UserInputError(
            f"{what} column {column!r} not in obs; available columns: {shown(adata.obs.columns) or '(none)'}"
        )


def check_genes(adata, genes: Sequence[str]) -> list[str]:
    """The user's genes, in order, each present in var_names and listed once."""
    genes = [str(g) for g in genes]
    names = set(map(str, adata.var_names))
    for gene in genes:
        if gene not in names:
            raise UserInputError(f"gene {gene!r} not in var_names; valid choices: {shown(adata.var_names)}")
    if len(set(genes)) != len(genes):
        dup = next(g for g in genes if genes.count(g) > 1)
        raise UserInputError(f"gene {dup!r} is listed twice; list each gene once")
    if len(genes) < 2:
        raise UserInputError(f"{len(genes)} gene(s) given; at least 2 are needed to infer a network")
    return genes


def gene_variance(x) -> np.ndarray:
    """Per-gene variance of a dense or sparse matrix without densifying it."""
    if hasattr(x, "toarray"):
        mean = np.asarray(x.mean(axis=0)).ravel()
        return np.asarray(x.multiply(x).mean(axis=0)).ravel() - mean**2
    return np.asarray(x, dtype=np.float64).var(axis=0)


def check_finite(adata, what: str = "expression") -> None:
    x = adata.X
    values = x.data if hasattr(x, "data") and hasattr(x, "indptr") else np.asarray(x)
    bad = ~np.isfinite(values) if np.issubdtype(values.dtype, np.number) else ~np.isfinite(values.astype(float))
    if bad.any():
        raise UserInputError(
            f"{what} matrix has {int(bad.sum())} NaN/inf value(s); valid values: finite numbers "
            "(impute or drop those cells/genes first)"
        )


def check_cells(adata, min_cells: int = MIN_CELLS) -> None:
    if adata.n_obs < min_cells:
        raise UserInputError(f"only {adata.n_obs} cells; at least {min_cells} are needed to infer a network")


def check_cell_types(adata, column: str) -> None:
    labels = adata.obs[column].astype(str)
    if labels.isin(["nan"]).all():
        raise UserInputError(f"cell type column {column!r} is empty (all NaN)")
    kinds = sorted(labels.unique())
    if len(kinds) < 2:
        raise UserInputError(
            f"cell type column {column!r} holds a single cell type {kinds[0]!r}; "
            "at least 2 are needed (a start and a fate)"
        )


def check_pseudotime(values: np.ndarray, column: str) -> np.ndarray:
    values = pd.to_numeric(pd.Series(np.asarray(values).ravel()), errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise UserInputError(
            f"pseudotime {column!r} has {int(bad.sum())} NaN/inf/non-numeric value(s); valid values: finite numbers"
        )
    if np.ptp(values) <= 0:
        raise UserInputError(
            f"pseudotime {column!r} does not vary (all values {values[0]:g}); it must order the cells"
        )
    return values


def looks_like_counts(adata) -> bool:
    """Raw counts are non-negative integers; anything else is taken as already transformed."""
    x = adata.X
    values = x.data if hasattr(x, "indptr") else np.asarray(x).ravel()
    values = np.asarray(values[: 200_000], dtype=np.float64)
    return bool(values.size) and bool((values >= 0).all()) and bool(np.allclose(values, np.round(values)))


def normalize(adata, mode: "bool | None" = None):
    """normalize_total + log1p (scanpy) when `mode` is True, or None and X looks like raw counts."""
    import scanpy as sc

    adata = adata.copy()
    if mode is None:
        mode = looks_like_counts(adata)
    if mode:
        sc.pp.normalize_total(adata)
        sc.pp.log1p(adata)
    adata.uns["inference_normalized"] = bool(mode)
    return adata


def select_genes(adata, n_genes: int = 20, tf_list: "Sequence[str] | None" = None) -> list[str]:
    """Highly variable genes (scanpy, on log data) intersected with `tf_list`, at most `n_genes`."""
    import scanpy as sc

    if n_genes < 2:
        raise UserInputError(f"n_genes={n_genes}; at least 2 genes are needed")
    names = [str(g) for g in adata.var_names]
    pool = names if tf_list is None else [g for g in names if g in set(map(str, tf_list))]
    if tf_list is not None and len(pool) < 2:
        raise UserInputError(
            f"only {len(pool)} gene(s) of the transcription-factor list are in var_names; "
            f"valid choices: {shown(names)}"
        )
    if len(pool) <= n_genes:
        return pool
    sub = adata[:, pool].copy()
    # Constant genes make scanpy's dispersion binning divide by zero; they carry no signal.
    variance = gene_variance(sub.X)
    sub = sub[:, variance > 0].copy()
    try:
        table = sc.pp.highly_variable_genes(sub, n_top_genes=min(n_genes, sub.n_vars), inplace=False)
        order = np.argsort(-np.nan_to_num(table["dispersions_norm"].to_numpy(), nan=-np.inf), kind="stable")
    except Exception:  # too few genes/cells for scanpy's binning: fall back to plain variance
        order = np.argsort(-gene_variance(sub.X), kind="stable")
    return [str(sub.var_names[i]) for i in order[:n_genes]]


def smooth_knn(adata, k: int = 10):
    """kNN smoothing over expression space, a light MAGIC-like dropout remedy.

    Each cell's values become the mean over itself and its k-1 nearest cells, found on
    the genes scaled to [0, 1] (so that no gene dominates the distance). Returned in
    `layers['smoothed']`; X is left as it was.
    """
    from sklearn.neighbors import NearestNeighbors

    adata = adata.copy()
    x = dense(adata.X)
    if k <= 1:
        adata.layers["smoothed"] = x
        return adata
    lo, hi = np.percentile(x, 1, axis=0), np.percentile(x, 99, axis=0)
    scaled = np.clip((x - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0, 1.0)
    k = min(k, adata.n_obs)
    neighbours = NearestNeighbors(n_neighbors=k).fit(scaled).kneighbors(scaled, return_distance=False)
    adata.layers["smoothed"] = x[neighbours].mean(axis=1)
    return adata


def root_index(adata, root: "str | int | None") -> int:
    """The root cell for diffusion pseudotime: a cell name, a row number, or uns['iroot']."""
    if root is None:
        if "iroot" not in adata.uns:
            raise UserInputError(
                "no pseudotime column and no root cell; pass root=<cell name> or set uns['iroot'] "
                "to compute diffusion pseudotime"
            )
        root = adata.uns["iroot"]
    if isinstance(root, (int, np.integer)) and not isinstance(root, bool):
        if not 0 <= int(root) < adata.n_obs:
            raise UserInputError(f"root cell index {root} out of range; valid choices: 0..{adata.n_obs - 1}")
        return int(root)
    names = [str(n) for n in adata.obs_names]
    if str(root) in names:
        return names.index(str(root))
    if str(root).isdigit() and int(root) < adata.n_obs:
        return int(root)
    raise UserInputError(f"root cell {root!r} not in obs_names; valid choices: {shown(names)}")


def diffusion_pseudotime(adata, root: "str | int | None" = None, n_neighbors: int = 15, seed: int = 0):
    """Diffusion pseudotime (scanpy's dpt) from a root cell, in obs['dpt_pseudotime'].

    Gaussian-kernel neighbours on sklearn's exact kNN avoid UMAP's slow JIT start.
    """
    import scanpy as sc

    adata = adata.copy()
    adata.uns["iroot"] = root_index(adata, root)
    x = dense(adata.X)
    if adata.n_vars > 50:
        sc.pp.pca(adata, n_comps=min(30, adata.n_obs - 1, adata.n_vars - 1), random_state=seed)
        rep = "X_pca"
    else:
        adata.obsm["X_inference"] = x
        rep = "X_inference"
    sc.pp.neighbors(
        adata, n_neighbors=min(n_neighbors, adata.n_obs - 1), use_rep=rep, method="gauss", transformer="sklearn"
    )
    sc.tl.diffmap(adata, n_comps=min(15, adata.n_obs - 2))
    sc.tl.dpt(adata)
    values = adata.obs["dpt_pseudotime"].to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise UserInputError(
            f"diffusion pseudotime is infinite for {int((~np.isfinite(values)).sum())} cells "
            "(not connected to the root); pass a pseudotime column instead"
        )
    return adata
