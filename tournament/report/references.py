"""What each leaderboard row's optimality gap is measured against.

A row's optimum comes from oracle.json with the name of what it is (`reference`): the exact
dynamic optimum, the exact static (time-0) optimum, or the oracle's lower bound. Where that is
not the true optimum (a bound, a time-0 optimum a timed policy may beat, or nothing), the best
entry of the same task with at most the row's MAX_PERTURB that did better, an RL entry's
final-seed mean or a baseline's re-scored value, becomes the reference: the best known value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tournament.engine.oracle_table import REFERENCE_BOUND, REFERENCE_STATIC
from tournament.engine.rundir import oracle_key

REFERENCE_EXACT = "exact optimum"  # what runs before the dynamic optimum called an exact entry
DASH_REFERENCE = "none"


def reference_columns(run: Any, cell: Any, row: dict, point: float) -> None:
    """The row's optimum and what it is (oracle.json's `reference`; older runs: exact or bound)."""
    nan = float("nan")
    orc = run.oracle.get(oracle_key(cell["world"], cell["task"], cell["target"], cell["max_perturb"]))
    if isinstance(orc, dict) and orc.get("optimum") is not None:
        row["optimum"] = float(orc["optimum"])
        row["oracle_exact"] = bool(orc.get("exact", False))
        row["reference"] = orc.get("reference") or (REFERENCE_EXACT if row["oracle_exact"] else REFERENCE_BOUND)
        row["optimality_gap"] = row["optimum"] - point
        row["normalized_iqm"] = point / row["optimum"] if row["optimum"] > 0 else nan
    else:
        row.update(optimum=nan, oracle_exact=pd.NA, reference=DASH_REFERENCE, optimality_gap=nan, normalized_iqm=nan)


def raise_lower_bounds(df: pd.DataFrame, measured: tuple[str, ...]) -> pd.DataFrame:
    """Where the oracle only has a lower bound (or a time-0 optimum a timed policy may beat, or
    nothing), the best entry that did better is the reference: an RL entry or a baseline (rows whose
    `score_source` is in `measured`: a success rate the simulator measured).

    An entry's final-seed mean is a success rate the simulator measured for a policy with
    at most its MAX_PERTURB perturbations, so it bounds the optimum of every cell of the
    same world, task and target with that MAX_PERTURB or more.
    """
    for i, row in df.iterrows():
        # a time-0 optimum, exact or not, bounds a timed policy from below only
        if row["reference"] not in (REFERENCE_BOUND, REFERENCE_STATIC, DASH_REFERENCE) or row["task"] != "steer":
            continue
        peers = df[
            (df["world"] == row["world"]) & (df["task"] == row["task"]) & (df["target"] == row["target"])
            & (df["max_perturb"] <= row["max_perturb"]) & df["score_source"].isin(measured)
        ]
        current = row["optimum"] if np.isfinite(row["optimum"]) else -np.inf
        if peers.empty or not np.isfinite(peers["mean"].max()) or peers["mean"].max() <= current:
            continue
        best = peers.loc[peers["mean"].idxmax()]
        df.loc[i, "optimum"] = float(best["mean"])
        df.loc[i, "reference"] = f"best entry {best['cell_id']}"
        df.loc[i, "optimality_gap"] = df.loc[i, "optimum"] - row["iqm"]
        df.loc[i, "normalized_iqm"] = row["iqm"] / df.loc[i, "optimum"] if df.loc[i, "optimum"] > 0 else float("nan")
    return df
