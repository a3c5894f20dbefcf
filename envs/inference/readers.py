"""Read single-cell data into AnnData: .h5ad, 10x matrix.mtx directories, expression + obs CSVs.

The IQCELL layouts are a 10x directory (`matrix.mtx` + `genes.tsv` + `barcodes.tsv`, or the
gzipped Cell Ranger v3 names) and an expression CSV (cells x genes) with a pseudotime CSV.
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
LAYOUTS = (
    ".h5ad file",
    "10x directory (matrix.mtx + genes.tsv/features.tsv + barcodes.tsv)",
    "expression .csv/.tsv (cells x genes) with obs/pseudotime .csv",
)


def read_data(path: "str | Path", obs: "str | Path | list[str | Path] | None" = None):
    """Read `path` into AnnData; `obs` names extra annotation CSVs (else sibling files are used)."""
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"data path not found: {path}")
    if path.is_file() and path.suffix == ".h5ad":
        adata = _read_h5ad(path)
        folder = path.parent
    elif path.is_dir() and _mtx_file(path) is not None:
        adata = read_10x(path)
        folder = path
    elif path.is_dir() and _expression_file(path) is not None:
        adata = read_expression_csv(_expression_file(path))
        folder = path
    elif path.is_file() and path.suffix in TABLE_SUFFIXES:
        adata = read_expression_csv(path)
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
    sep = "," if path.suffix == ".csv" else None
    try:
        return pd.read_csv(path, sep=sep, index_col=0, engine="python" if sep is None else "c")
    except Exception as exc:
        raise UserInputError(f"cannot read table {path} ({type(exc).__name__}: {exc})") from None


def read_expression_csv(path: "str | Path"):
    """Expression table: one row per cell (first column: cell ids), one column per gene."""
    import anndata as ad

    path = Path(path)
    table = _read_table(path)
    if table.shape[0] == 0 or table.shape[1] == 0:
        raise UserInputError(f"expression table {path} is empty; expected cells x genes with a header row")
    bad = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
    if bad:
        raise UserInputError(
            f"expression table {path}: column {bad[0]!r} is not numeric; expected cells x genes "
            "(first column cell ids, then one numeric column per gene)"
        )
    table.index = table.index.astype(str)
    return ad.AnnData(
        X=table.to_numpy(dtype=np.float32),
        obs=pd.DataFrame(index=table.index),
        var=pd.DataFrame(index=table.columns.astype(str)),
    )


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
