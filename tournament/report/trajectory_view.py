"""The trajectory task's metrics (ODE worlds): the seed's expression-level metrics per cell.

Each final seed of a trajectory cell records, over its evaluation episodes (algorithms.evaluation,
envs.ode.metrics), the fraction of the distance to the target profile closed (its score) and the
seed's metrics: per-gene direction-of-change accuracy, macro-F1 and AUPRC, and the reached
profile's MSE, R2 and Pearson correlation with the target (``final_scores.csv`` columns
``trajectory_*``; each metric over the genes of all evaluation episodes pooled, as a metric over a
data set's cells is). Per cell each is the mean over final seeds with a 95% bootstrap interval
(tournament.report.stats.column_means, each metric its own stratum).
"""

from __future__ import annotations

import pandas as pd

from tournament.engine.rundir import TRAJECTORY_COLUMNS
from tournament.report import stats
from tournament.report.leaderboard import CELL_AXES, RunData

LABELS = {
    "trajectory_distance_closed": "Distance closed",
    "trajectory_direction_accuracy": "Direction accuracy",
    "trajectory_macro_f1": "Direction macro-F1",
    "trajectory_auprc": "Direction AUPRC",
    "trajectory_mse": "Profile MSE",
    "trajectory_r2": "Profile R2",
    "trajectory_pearson": "Profile Pearson r",
}
TEXT = (
    "Trajectory task (ODE worlds): move a cell's expression profile towards a later cell's. Distance closed = "
    "1 - final / initial RMS distance to the target (each gene divided by its on level; the score). Direction "
    "accuracy, macro-F1 and AUPRC: the direction of each gene's change (down / flat / up) against the target's; "
    "MSE, R2 and Pearson r: the reached profile against the target; each over the genes of all of a seed's "
    "evaluation episodes pooled. Mean over final seeds [95% bootstrap CI]."
)


def cell_table(run: RunData, reps: int = stats.DEFAULT_REPS, seed: int = stats.DEFAULT_SEED) -> pd.DataFrame:
    """Per trajectory cell: n seeds and each metric's mean over final seeds with its interval."""
    fs = run.final_scores
    if fs.empty or "task" not in fs or not set(TRAJECTORY_COLUMNS) <= set(fs):
        return pd.DataFrame()
    rows = []
    for cell_id, g in fs[fs["task"] == "trajectory"].groupby("cell_id", sort=True):
        values = g[list(TRAJECTORY_COLUMNS)].apply(pd.to_numeric, errors="coerce").dropna()
        if values.empty:
            continue
        m, lo, hi = stats.column_means(values.to_numpy(float), reps=reps, seed=seed)
        row = {"cell_id": cell_id, **{a: g[a].iloc[0] for a in CELL_AXES if a in g}, "n_seeds": len(values)}
        for i, col in enumerate(TRAJECTORY_COLUMNS):
            row.update({col: m[i], f"{col}_ci_low": lo[i], f"{col}_ci_high": hi[i]})
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.sort_values("trajectory_distance_closed", ascending=False) if not table.empty else table


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The cell table as shown: one 'mean [95% CI]' column per metric."""
    if table.empty:
        return table

    return pd.DataFrame({
        "world": table["world"], "algorithm": table["algorithm"], "optimizer": table["optimizer"],
        "MAX_PERTURB": table["max_perturb"].astype(str), "module": table["module"], "action": table["action"],
        "seeds": table["n_seeds"],
        **{LABELS[c]: [stats.with_ci(r[c], r[f"{c}_ci_low"], r[f"{c}_ci_high"]) for _, r in table.iterrows()]
           for c in TRAJECTORY_COLUMNS},
    })
