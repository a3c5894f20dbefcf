"""Fates without cell types: one pseudotime per lineage (BEELINE / Slingshot), or one for all.

Slingshot and BEELINE write one pseudotime column per lineage, NaN where a cell is off
that lineage; cells before the branch point sit on several lineages. The data then say
what a cell-type column would: a cell on exactly one lineage belongs to that branch, a
cell on several is shared (the progenitors), and each branch's latest cells are its
terminal state, which `infer_world` reads as that branch's fate. With a single
pseudotime (one lineage, or a dpt computed from a root) the latest `TERMINAL_SHARE` of
the cells form the one end fate and the rest are shared. A cell's pseudotime is the
mean over the lineages it is on (they agree before the branch point).
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import pandas as pd

from envs.errors import UserInputError
from envs.inference.readers import PSEUDOTIME_COLUMNS_KEY, check_lineage_columns

SHARED = "shared"
TERMINAL_SHARE = 0.25
# Column names read as lineage pseudotimes when the named pseudotime column is absent.
LINEAGE_PATTERN = re.compile(r"(?i)^pseudo[_ ]?time[_ ]?\w*$")


def lineage_columns(adata, pseudotime: "str | Sequence[str] | None") -> list[str] | None:
    """The lineage pseudotime columns to use, or None for one ordinary column (or dpt when None).

    A list names them; a single name present in obs is one ordinary column; a name that
    is absent falls back to the columns a reader listed (`uns['pseudotime_columns']`)
    or, when that name looks like one (the default 'pseudotime'), to obs columns named
    like PseudoTime1, PseudoTime2, ...
    """
    if pseudotime is not None and not isinstance(pseudotime, str):
        columns = [str(c) for c in pseudotime]
        missing = [c for c in columns if c not in adata.obs.columns]
        if missing:
            raise UserInputError(
                f"pseudotime column {missing[0]!r} not in obs; available columns: "
                f"{', '.join(map(str, adata.obs.columns)) or '(none)'}"
            )
        return columns
    if pseudotime is None or pseudotime in adata.obs.columns:
        return None  # None asks for diffusion pseudotime
    listed = [c for c in adata.uns.get(PSEUDOTIME_COLUMNS_KEY, []) if c in adata.obs.columns]
    if listed:
        return list(listed)
    if not LINEAGE_PATTERN.match(pseudotime):
        return None  # a column the user named that is absent: an error later, not a guess
    found = [str(c) for c in adata.obs.columns if LINEAGE_PATTERN.match(str(c))]
    return found or None


def lineage_times(adata, columns: Sequence[str]) -> pd.DataFrame:
    """(cells, lineages) numeric pseudotimes, NaN off a lineage; an all-NaN column is an error."""
    table = adata.obs[list(columns)].apply(pd.to_numeric, errors="coerce")
    check_lineage_columns(table, "obs")
    return table.astype(np.float64)


def branch_labels(times: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(pseudotime, label) per cell from lineage pseudotimes (module docstring); NaN time: no lineage."""
    values = times.to_numpy(dtype=np.float64)
    on = np.isfinite(values)
    n_on = on.sum(axis=1)
    with np.errstate(invalid="ignore"):
        time = np.where(n_on > 0, np.nansum(np.where(on, values, 0.0), axis=1) / np.maximum(n_on, 1), np.nan)
    names = np.array([str(c) for c in times.columns], dtype=object)
    labels = np.full(len(values), SHARED, dtype=object)
    single = n_on == 1
    labels[single] = names[np.argmax(on[single], axis=1)]
    kinds = set(labels[single])
    if len(kinds) < 2:  # one lineage (or no branch-only cells): its latest cells are the end fate
        labels = terminal_labels(time, str(names[0]) if len(names) == 1 else "end")
    return time, labels.astype(str)


def terminal_labels(pseudotime: np.ndarray, name: str = "end", share: float = TERMINAL_SHARE) -> np.ndarray:
    """One lineage: the latest `share` of the cells are the fate `name`, the rest are shared."""
    finite = np.isfinite(pseudotime)
    cut = np.quantile(pseudotime[finite], 1.0 - share) if finite.any() else np.inf
    return np.where(finite & (pseudotime >= cut), name, SHARED).astype(str)
