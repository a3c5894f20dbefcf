"""Read single-cell data into AnnData: .h5ad, 10x, expression + obs CSVs, BEELINE folders, qPCR Ct tables.

The IQCELL layouts are a 10x directory (`matrix.mtx` + `genes.tsv` + `barcodes.tsv`, or the
gzipped Cell Ranger v3 names) and an expression CSV (cells x genes) with a pseudotime CSV.
BEELINE's layout is a folder with `ExpressionData.csv` (genes x cells) and `PseudoTime.csv`
(one column per lineage, NA off the lineage; Slingshot writes the same), see `read_beeline`.
A qPCR table of Ct values (lower = more expressed) is read with `ct=True`, see `read_qpcr`.
Per-cell annotations (pseudotime, cell type) may sit next to the expression in
`obs.csv`, `pseudotime.csv`, `cell_types.csv` or `metadata.csv` (first column: cell ids);
they are joined into `obs`. A one-column file without a header, or with a generic column
name, names its column after the file (`pseudotime.csv` -> `pseudotime`, `cell_types.csv`
-> `cell_type`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from envs.errors import UserInputError

OBS_FILES = ("obs.csv", "pseudotime.csv", "cell_types.csv", "metadata.csv")
EXPRESSION_FILES = ("expression.csv", "expression.tsv", "counts.csv", "counts.tsv")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt")
BEELINE_EXPRESSION, BEELINE_PSEUDOTIME = "ExpressionData.csv", "PseudoTime.csv"
# obs-level note of the pseudotime columns a reader found (one per lineage), for infer_world.
PSEUDOTIME_COLUMNS_KEY = "pseudotime_columns"
LAYOUTS = (
    ".h5ad file",
    "BEELINE folder (ExpressionData.csv genes x cells + PseudoTime.csv)",
    "10x directory (matrix.mtx + genes.tsv/features.tsv + barcodes.tsv)",
    "expression .csv/.tsv (cells x genes) with obs/pseudotime .csv",
)


def read_data(
    path: "str | Path",
    obs: "str | Path | list[str | Path] | None" = None,
    ct: bool = False,
):
    """Read `path` into AnnData; `obs` names extra annotation CSVs (else sibling files are used).

    `ct`: the expression table holds qPCR Ct values, lower = more expressed (`read_qpcr`).
    """
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"data path not found: {path}")
    if path.is_file() and path.name == BEELINE_EXPRESSION:
        path = path.parent
    if path.is_dir() and (path / BEELINE_EXPRESSION).is_file():
        adata = read_beeline(path, ct=ct)
        files = [] if obs is None else [Path(p) for p in np.atleast_1d(obs)]
        for file in files:
            adata = join_obs(adata, file)
        return adata
    if ct and not (path.is_file() and path.suffix in TABLE_SUFFIXES) and not (
        path.is_dir() and _expression_file(path) is not None
    ):
        raise UserInputError(f"ct=True (--ct) needs a Ct table (.csv/.tsv, cells x genes); got {path}")
    if path.is_file() and path.suffix == ".h5ad":
        adata = _read_h5ad(path)
        folder = path.parent
    elif path.is_dir() and _mtx_file(path) is not None:
        adata = read_10x(path)
        folder = path
    elif path.is_dir() and _expression_file(path) is not None:
        adata = read_qpcr(_expression_file(path)) if ct else read_expression_csv(_expression_file(path))
        folder = path
    elif path.is_file() and path.suffix in TABLE_SUFFIXES:
        adata = read_qpcr(path) if ct else read_expression_csv(path)
        folder = path.parent
    else:
        raise UserInputError(f"unknown data layout at {path}; valid choices: {'; '.join(LAYOUTS)}")
    files = _obs_files(folder, exclude=path) if obs is None else [Path(p) for p in np.atleast_1d(obs)]
    for file in files:
        adata = join_obs(adata, file)
    return adata


def _read_h5ad(path: Path):
    import anndata as ad

    try:
        return ad.read_h5ad(path)
    except Exception as exc:  # h5py/anndata raise many types for a damaged file
        raise UserInputError(f"cannot read {path} as .h5ad ({type(exc).__name__}: {exc})") from None


def _mtx_file(folder: Path) -> Path | None:
    for name in ("matrix.mtx", "matrix.mtx.gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _expression_file(folder: Path) -> Path | None:
    for name in EXPRESSION_FILES:
        if (folder / name).is_file():
            return folder / name
    return None


def _obs_files(folder: Path, exclude: Path) -> list[Path]:
    return [folder / n for n in OBS_FILES if (folder / n).is_file() and (folder / n) != exclude]


def read_10x(folder: "str | Path"):
    """A 10x directory through scanpy's reader; one-column genes.tsv files are read by hand."""
    import scanpy as sc

    folder = Path(folder)
    legacy = (folder / "genes.tsv").is_file()
    genes_file = folder / ("genes.tsv" if legacy else "features.tsv.gz")
    barcodes_file = folder / ("barcodes.tsv" if legacy else "barcodes.tsv.gz")
    for needed in (genes_file, barcodes_file):
        if not needed.is_file():
            raise UserInputError(
                f"10x directory {folder} lacks {needed.name}; valid choices: genes.tsv + barcodes.tsv "
                "(with matrix.mtx) or features.tsv.gz + barcodes.tsv.gz (with matrix.mtx.gz)"
            )
    try:
        genes = pd.read_csv(genes_file, header=None, sep="\t")
        if genes.shape[1] >= 2:
            adata = sc.read_10x_mtx(folder, var_names="gene_symbols")
        else:
            adata = sc.read(folder / "matrix.mtx").T
            adata.var_names = genes[0].astype(str).values
            adata.obs_names = pd.read_csv(barcodes_file, header=None)[0].astype(str).values
    except UserInputError:
        raise
    except Exception as exc:
        raise UserInputError(f"cannot read 10x directory {folder} ({type(exc).__name__}: {exc})") from None
    adata.var_names_make_unique()
    adata.X = adata.X.astype(np.float32)
    return adata


def _read_table(path: Path) -> pd.DataFrame:
    import io

    sep = "," if path.suffix == ".csv" else None
    try:
        text = path.read_text()
        if "\r" in text:  # old Mac (CR only) or Windows line endings, as in published qPCR tables
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        return pd.read_csv(io.StringIO(text), sep=sep, index_col=0, engine="python" if sep is None else "c")
    except Exception as exc:
        raise UserInputError(f"cannot read table {path} ({type(exc).__name__}: {exc})") from None


def _numeric_table(path: Path, layout: str = "cells x genes") -> pd.DataFrame:
    table = _read_table(path)
    if table.shape[0] == 0 or table.shape[1] == 0:
        raise UserInputError(f"expression table {path} is empty; expected {layout} with a header row")
    bad = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
    if bad:
        raise UserInputError(
            f"expression table {path}: column {bad[0]!r} is not numeric; expected {layout} "
            "(first column the row names, then numbers)"
        )
    table.index = table.index.astype(str)
    table.columns = table.columns.astype(str)
    return table


def _anndata(table: pd.DataFrame):
    import anndata as ad

    return ad.AnnData(
        X=table.to_numpy(dtype=np.float32),
        obs=pd.DataFrame(index=table.index),
        var=pd.DataFrame(index=table.columns.astype(str)),
    )


def read_expression_csv(path: "str | Path"):
    """Expression table: one row per cell (first column: cell ids), one column per gene."""
    return _anndata(_numeric_table(Path(path)))


def ct_to_expression(table: pd.DataFrame, path: "str | Path", detection_limit: "float | None" = None) -> pd.DataFrame:
    """qPCR Ct (cycles to threshold; lower = more expressed) as expression = limit - Ct, 0 when not detected.

    The limit defaults to the table's largest Ct, which qPCR tables use for "not
    detected" (25 in Moignard et al. 2015, often 40); Ct at or above it reads as 0.
    A negative Ct is not a cycle count: most likely the table is already a
    higher-is-more dCt, which is read without `ct`.
    """
    values = table.to_numpy(dtype=np.float64)
    negative = np.argwhere(values < 0)
    if len(negative):
        i, j = negative[0]
        raise UserInputError(
            f"Ct table {path} has {len(negative)} negative value(s) (cell {table.index[i]!r}, gene "
            f"{table.columns[j]!r}: {values[i, j]:g}); valid Ct values are cycles >= 0 (read a higher-is-more "
            "dCt table without --ct)"
        )
    limit = float(np.nanmax(values)) if detection_limit is None else float(detection_limit)
    return pd.DataFrame(np.clip(limit - values, 0.0, None), index=table.index, columns=table.columns)


def read_qpcr(path: "str | Path", detection_limit: "float | None" = None):
    """A qPCR Ct table (cells x genes, first column cell ids; lower = more expressed) as expression."""
    path = Path(path)
    adata = _anndata(ct_to_expression(_numeric_table(path), path, detection_limit))
    adata.uns["qpcr_ct"] = True
    return adata


def check_lineage_columns(table: pd.DataFrame, where: str) -> None:
    """Every pseudotime column must place at least one cell on its lineage."""
    for column in table.columns:
        values = pd.to_numeric(table[column], errors="coerce")
        if not np.isfinite(values.to_numpy(dtype=np.float64)).any():
            raise UserInputError(
                f"pseudotime column {column!r} of {where} is all NaN; valid columns place at least one cell "
                f"(columns: {', '.join(map(str, table.columns))})"
            )


def read_beeline(folder: "str | Path", ct: bool = False):
    """A BEELINE / BoolODE folder: ExpressionData.csv (genes x cells) + PseudoTime.csv (cells x lineages).

    Each PseudoTime column becomes an obs column (NaN off its lineage) and is listed in
    `uns['pseudotime_columns']`, which `infer_world` reads as one lineage each. The cell
    ids of the two files must be the same.
    """
    folder = Path(folder)
    table = _numeric_table(folder / BEELINE_EXPRESSION, "genes x cells").T
    if ct:
        table = ct_to_expression(table, folder / BEELINE_EXPRESSION)
    adata = _anndata(table)
    pt_file = folder / BEELINE_PSEUDOTIME
    if not pt_file.is_file():
        return adata
    times = _read_table(pt_file)
    times.index = times.index.astype(str)
    missing = [c for c in adata.obs_names if c not in set(times.index)]
    if missing:
        raise UserInputError(
            f"{len(missing)} of the {adata.n_obs} cells of {folder / BEELINE_EXPRESSION} are not in "
            f"{pt_file.name} (e.g. {missing[0]!r}; its cells: {', '.join(list(times.index[:3]))}, ...); "
            "the two files must hold the same cell ids"
        )
    times = times.apply(pd.to_numeric, errors="coerce").loc[list(adata.obs_names)]
    check_lineage_columns(times, str(pt_file))
    for column in times.columns:
        adata.obs[str(column)] = times[column].to_numpy(dtype=np.float64)
    adata.uns[PSEUDOTIME_COLUMNS_KEY] = [str(c) for c in times.columns]
    return adata


SINGLE_COLUMN_NAMES = {"pseudotime": "pseudotime", "cell_types": "cell_type", "cell_type": "cell_type"}


def _is_number(value) -> bool:
    try:
        float(str(value))
    except ValueError:
        return False
    return True


def _generic_name(value) -> bool:
    name = str(value).strip()
    return not name or name.isdigit() or name.startswith("Unnamed") or name in ("x", "V1", "value")


def join_obs(adata, path: "str | Path"):
    """Join a per-cell annotation table into obs; a genes x cells expression is transposed."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"annotation file not found: {path}")
    table = _read_table(path)
    if table.shape[1] == 1 and _is_number(table.columns[0]):
        # No header row (cell id, value per line): the first cell was read as the header.
        sep = "," if path.suffix == ".csv" else r"\s+|\t|;"
        table = pd.read_csv(path, sep=sep, header=None, index_col=0, engine="python")
    table.index = table.index.astype(str)
    if table.shape[1] == 1 and _generic_name(table.columns[0]):
        table.columns = [SINGLE_COLUMN_NAMES.get(path.stem.lower(), path.stem)]
    cells = pd.Index(adata.obs_names)
    if not table.index.isin(cells).any() and table.index.isin(adata.var_names).any():
        # The expression was written genes x cells: its columns are the cell ids.
        adata = adata.T.copy()
        cells = pd.Index(adata.obs_names)
    common = table.index.intersection(cells)
    if len(common) == 0:
        raise UserInputError(
            f"{path}: no cell id matches the expression's cells (e.g. {cells[0]!r}); "
            "the first column must hold the cell ids"
        )
    adata = adata[adata.obs_names.isin(common)].copy()
    for column in table.columns:
        adata.obs[str(column)] = table.loc[adata.obs_names, column].to_numpy()
    return adata
