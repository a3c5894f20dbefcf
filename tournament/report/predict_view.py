"""Fate-prediction metrics of the predict task per stage: accuracy, macro-F1 and AUPRC per final seed.

Each final predict trial's last Tune result carries `predict_metrics` (algorithms.evaluation:
per stage of its evaluation episodes, the accuracy and macro-F1 of the greedy prediction and the
macro one-vs-rest average precision of the policy's softmax). They are read from the run's local
Tune experiment (`tune/attempt-*/<trial>_*/result.json`, the run that finished the trial); a run
whose Tune experiment is at a URI, or trials run before these metrics were recorded, are named
in the view's note. Per cell and stage each metric is the mean over final seeds with a 95%
bootstrap interval (tournament.report.stats.column_means: one bootstrap per cell, each stage and
metric its own stratum).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from tournament.report import plots, stats
from tournament.report.leaderboard import CELL_AXES, RunData

METRICS = ("accuracy", "macro_f1", "auprc")
METRIC_NAMES = {"accuracy": "accuracy", "macro_f1": "macro-F1", "auprc": "AUPRC (macro, one-vs-rest)"}
SEED_COLUMNS = ("cell_id", *CELL_AXES, "seed", "stage", "n_episodes", *METRICS)


def _last_record(path: Path) -> dict | None:
    """The last complete JSON line of a Tune result.json (a killed trial can leave a partial one)."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return None
    for raw in reversed(lines):
        try:
            return json.loads(raw)
        except ValueError:
            continue
    return None


def _final_predict_trials(run: RunData) -> pd.DataFrame:
    tr = run.trials
    if tr.empty or not {"phase", "status", "task"} <= set(tr):
        return tr.iloc[0:0]
    return tr[(tr["phase"] == "final") & (tr["status"] == "ok") & (tr["task"] == "predict")]


def seed_metrics(run: RunData) -> tuple[pd.DataFrame, list[str]]:
    """One row per (predict cell, final seed, stage) with the metrics, and notes on what is missing."""
    finals = _final_predict_trials(run)
    if finals.empty:
        return pd.DataFrame(columns=list(SEED_COLUMNS)), []
    tune = run.run_dir / "tune"
    if not tune.is_dir():
        return pd.DataFrame(columns=list(SEED_COLUMNS)), [
            "No local Tune experiment (tune/) to read the prediction metrics from."]
    folders: dict[str, list[Path]] = {}
    for d in tune.glob("attempt-*/*"):
        if d.is_dir() and "_" in d.name:
            folders.setdefault(d.name.rsplit("_", 1)[0], []).append(d)
    rows, missing = [], []
    for _, t in finals.iterrows():
        key = t["trial_id"]
        cands = folders.get(key) or [d for k, ds in folders.items() if key.startswith(k) for d in ds]
        metrics = None
        for d in sorted(cands, key=lambda d: d.parent.name):  # a trial that ran again: its latest run counts
            last = _last_record(d / "result.json")
            if last and last.get("trial_key") == key and last.get("finished") and last.get("predict_metrics"):
                metrics = json.loads(last["predict_metrics"])
        if metrics is None:
            missing.append(key)
            continue
        for s in metrics.get("stages", []):
            rows.append({"cell_id": t["cell_id"], **{a: t[a] for a in CELL_AXES}, "seed": int(t["seed"]),
                         "stage": int(s["stage"]), "n_episodes": int(metrics.get("n_episodes", 0)),
                         **{m: float(s.get(m, np.nan)) for m in METRICS}})
    notes = []
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        notes.append(f"{len(missing)} final predict trial(s) without prediction metrics in tune/ "
                     f"(recorded before this view existed, or Tune's log ends early): {shown}")
    return pd.DataFrame(rows, columns=list(SEED_COLUMNS)), notes


def stage_table(seeds: pd.DataFrame, reps: int = stats.DEFAULT_REPS, seed: int = stats.DEFAULT_SEED) -> pd.DataFrame:
    """Per predict cell and stage: each metric's mean over final seeds with its 95% interval."""
    rows = []
    if seeds.empty:
        return pd.DataFrame()
    for cell_id, g in seeds.groupby("cell_id", sort=True):
        wide = g.pivot_table(index="seed", columns="stage", values=list(METRICS)).dropna()
        m, lo, hi = stats.column_means(wide.to_numpy(float), reps=reps, seed=seed)
        est = {col: (m[i], lo[i], hi[i]) for i, col in enumerate(wide.columns)}
        for stage in sorted(g["stage"].unique()):
            row = {"cell_id": cell_id, **{a: g[a].iloc[0] for a in CELL_AXES}, "stage": int(stage),
                   "n_seeds": len(wide), "episodes_per_seed": int(g["n_episodes"].iloc[0])}
            for metric in METRICS:
                point, low, high = est[(metric, stage)]
                row.update({metric: point, f"{metric}_ci_low": low, f"{metric}_ci_high": high})
            rows.append(row)
    return pd.DataFrame(rows)


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The stage table as shown: one formatted 'mean [95% CI]' column per metric."""
    if table.empty:
        return table

    def fmt(r, m):
        return stats.with_ci(r[m], r[f"{m}_ci_low"], r[f"{m}_ci_high"])
    return pd.DataFrame({
        "world": table["world"], "algorithm": table["algorithm"], "optimizer": table["optimizer"],
        "MAX_PERTURB": table["max_perturb"].astype(str), "module": table["module"], "stage": table["stage"],
        "seeds": table["n_seeds"], "episodes/seed": table["episodes_per_seed"],
        **{f"{METRIC_NAMES[m]} [95% CI]": [fmt(r, m) for _, r in table.iterrows()] for m in METRICS},
    })


@plots.styled
def plot_stage_metrics(table: pd.DataFrame, leaderboard: pd.DataFrame) -> Figure | None:
    """One panel per metric: its mean over final seeds against the stage, one line per cell."""
    if table.empty:
        return None
    order = leaderboard.sort_values("rank")["cell_id"].tolist() if not leaderboard.empty else []
    cells = sorted(table["cell_id"].unique(), key=lambda c: (order.index(c) if c in order else len(order), c))
    more = f" (best {plots.MAX_LINES} of {len(cells)} cells)" if len(cells) > plots.MAX_LINES else ""
    cells = cells[:plots.MAX_LINES]
    fig = plots.new_figure(10.0, 3.0 * len(METRICS) + 0.6)
    axes = fig.subplots(len(METRICS), 1, squeeze=False)[:, 0]
    for ax, m in zip(axes, METRICS):
        for i, c in enumerate(cells):
            g = table[table["cell_id"] == c].sort_values("stage")
            r = g.iloc[0]
            color = plots.PALETTE[i % len(plots.PALETTE)]
            ax.plot(g["stage"], g[m], color=color, linestyle=plots.LINESTYLES[i % len(plots.LINESTYLES)],
                    marker=plots.MARKERS[i % len(plots.MARKERS)],
                    label=f"{r['world']}: {plots.recipe_label(r)}")
            lo, hi = g[f"{m}_ci_low"].to_numpy(float), g[f"{m}_ci_high"].to_numpy(float)
            if np.isfinite(lo).any():
                ax.fill_between(g["stage"], lo, hi, color=color, alpha=0.15, linewidth=0)
        ax.set_ylabel(METRIC_NAMES[m])
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("stage (0 = before the cell develops)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        plots.legend_outside(ax, title="cell")
    fig.suptitle("Fate prediction per stage: mean over final seeds, shaded 95% bootstrap interval" + more)
    return fig
