"""The leaderboard: one row per grid cell, read from a run directory and nothing else.

Rows are RL entries (one per grid cell, `entry` "rl") and, for steer tasks, the non-RL baselines
of baselines.json (`entry` "baseline": one row per baseline, its set's value re-scored by the
simulator, its interval from that estimate's standard error, its best set and budget in
`details`). Every row's optimum and `reference` say what its gap is measured against.

Scores per cell come from the final phase (``final_scores.csv``, completed by the final-phase
rows of ``trials.csv`` for seeds it does not hold yet). A cell with no final seed yet (the run
was stopped during tuning) gets its best tuning trial as a *provisional* score, labelled
"provisional (tuning scores)": a maximum over tuning trials is optimistic, so provisional rows
rank after every cell scored on final seeds. Ranks and ties are per world/task/target group.

The run directory is read through the checked readers of tournament.engine.rundir: a damaged record
(a row cut short by a crash, a line that is not a record of its table, a JSON file that does not
parse) is left out and named in `RunData.skipped` (file, line, what was found and expected), so a
report of a damaged run says what it did not use.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tournament.report import stats
from tournament.engine.rundir import RunPaths
from tournament.report.references import raise_lower_bounds, reference_columns
from tournament.engine.records import read_json_checked, read_table

CELL_AXES = ("world", "task", "target", "algorithm", "optimizer", "max_perturb", "module", "action")
GROUP_AXES = ("world", "task", "target")
SOURCE_FINAL = "final seeds"
SOURCE_PROVISIONAL = "provisional (tuning scores)"
SOURCE_NONE = "no successful trial"
SOURCE_BASELINE = "baseline (simulated cells)"
SOURCE_BASELINE_NONE = "baseline without a set"
ENTRY_RL, ENTRY_BASELINE = "rl", "baseline"
_SOURCE_ORDER = {SOURCE_FINAL: 0, SOURCE_BASELINE: 0, SOURCE_PROVISIONAL: 1, SOURCE_NONE: 2, SOURCE_BASELINE_NONE: 2}

LEADERBOARD_COLUMNS = (
    "rank",
    *CELL_AXES,
    "cell_id",
    "score_source",
    "iqm",
    "ci_low",
    "ci_high",
    "mean",
    "mean_ci_low",
    "mean_ci_high",
    "optimum",
    "oracle_exact",
    "reference",
    "optimality_gap",
    "normalized_iqm",
    "n_seeds",
    "steps_to_90",
    "seeds_reached_90",
    "cpu_seconds",
    "failed_trials",
    "tie_with_leader",
    "best_hparams",
    "entry",
    "details",
)

_STRING_COLUMNS = (
    "trial_id", "phase", "cell_id", "world", "task", "target", "algorithm", "optimizer",
    "module", "action", "hparams", "status", "fail_reason", "node_id", "perturbation_sets", "stage",
)


@dataclass
class RunData:
    """Everything the report reads from a run directory; missing files give empty tables."""

    run_dir: Path
    spec_text: str = ""
    manifest: dict[str, Any] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    oracle: dict[str, Any] = field(default_factory=dict)
    baselines: dict[str, Any] = field(default_factory=dict)
    trials: pd.DataFrame = field(default_factory=pd.DataFrame)
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)
    final_scores: pd.DataFrame = field(default_factory=pd.DataFrame)
    has_final_scores_file: bool = False
    # damaged records left out, one line each ("trials.csv, line 57: ...; expected ...")
    skipped: list[str] = field(default_factory=list)

    @property
    def run_status(self) -> str:
        """The manifest's status, read as "finished" once status.json shows the run complete.

        The runner builds the report (status phase "report") before it marks the manifest
        finished; without this the report it leaves would call a finished run partial.
        """
        status = str(self.manifest.get("status", "unknown"))
        if status == "running" and self.status.get("phase") in ("report", "done"):
            return "finished"
        return status


def _read_json(path: Path, skipped: list[str] | None = None) -> dict[str, Any]:
    data, damage = read_json_checked(path)
    if damage is not None and skipped is not None:
        skipped.append(f"{damage} (the file is left out)")
    return data if isinstance(data, dict) else {}


_NUMERIC_COLUMNS = ("score", "normalized_score", "steps_to_90", "cpu_seconds", "env_steps", "seed", "iteration",
                    "eval_score", "episode_return_mean", "frac_lr_max", "lr_mean", "wall_seconds")


def _read_csv(path: Path, skipped: list[str] | None = None) -> pd.DataFrame:
    """Read a run table, checked record by record; text columns stay text (a fate "NA" is no NaN)."""
    table = read_table(path)
    if skipped is not None:
        skipped.extend(f"{d} (the record is left out)" if d.line > 1 else f"{d} (the file is left out)"
                       for d in table.damage)
    if not table.rows:
        return pd.DataFrame()
    df = pd.DataFrame(table.rows, columns=list(table.columns))
    if "target" in df:
        df["target"] = df["target"].replace("", "-")
    if "max_perturb" in df:
        df["max_perturb"] = pd.to_numeric(df["max_perturb"], errors="coerce").astype("Int64")
    for c in _NUMERIC_COLUMNS:
        if c in df:
            df[c] = pd.to_numeric(df[c], errors="coerce")
    return df


def load_run(run_dir: str | Path) -> RunData:
    """Read whatever exists of a run directory (it may still be running); damaged records are skipped."""
    paths = RunPaths(run_dir)
    skipped: list[str] = []
    return RunData(
        run_dir=paths.root,
        spec_text=paths.spec.read_text(errors="replace") if paths.spec.is_file() else "",
        manifest=_read_json(paths.manifest, skipped),
        status=_read_json(paths.status, skipped),
        oracle=_read_json(paths.oracle, skipped),
        baselines=_read_json(paths.baselines, skipped),
        trials=_read_csv(paths.trials, skipped),
        curves=_read_csv(paths.curves, skipped),
        final_scores=_read_csv(paths.final_scores, skipped),
        has_final_scores_file=paths.final_scores.is_file(),
        skipped=skipped,
    )


def final_seed_scores(run: RunData) -> pd.DataFrame:
    """One row per (cell, final seed): final_scores.csv, completed by trials.csv final rows."""
    cols = ["cell_id", *CELL_AXES, "seed", "score", "steps_to_90", "cpu_seconds"]
    parts = []
    fs = run.final_scores
    if not fs.empty and "cell_id" in fs:
        parts.append(fs.assign(_from_file=True))
    tr = run.trials
    if not tr.empty and {"phase", "status", "cell_id"} <= set(tr.columns):
        extra = tr[(tr["phase"] == "final") & (tr["status"] == "ok")].assign(_from_file=False)
        parts.append(extra)
    if not parts:
        return pd.DataFrame(columns=cols)
    df = pd.concat(parts, ignore_index=True)
    df = df[np.isfinite(pd.to_numeric(df["score"], errors="coerce"))]
    # final_scores.csv wins over trials.csv for the same seed.
    df = df.sort_values(["cell_id", "seed", "_from_file"], ascending=[True, True, False])
    df = df.drop_duplicates(["cell_id", "seed"], keep="first")
    return df.drop(columns="_from_file").reset_index(drop=True)


def _cells(run: RunData, finals: pd.DataFrame) -> pd.DataFrame:
    """Every grid cell seen anywhere in the run, with its axes, sorted by cell_id."""
    frames = [f[["cell_id", *CELL_AXES]] for f in (run.trials, finals)
              if not f.empty and set(CELL_AXES) <= set(f.columns)]
    if not frames:
        return pd.DataFrame(columns=["cell_id", *CELL_AXES])
    cells = pd.concat(frames, ignore_index=True).drop_duplicates("cell_id")
    return cells.sort_values("cell_id").reset_index(drop=True)


def _canonical_json(text: str) -> str:
    try:
        return json.dumps(json.loads(text), sort_keys=True, separators=(", ", ": "))
    except (json.JSONDecodeError, TypeError):
        return str(text)


def best_tuning_trial(trials: pd.DataFrame, cell_id: str) -> pd.Series | None:
    """The cell's best successful tuning trial (ties: the earliest trial_id)."""
    if trials.empty or "phase" not in trials:
        return None
    t = trials[(trials["cell_id"] == cell_id) & (trials["phase"] == "tune")
               & (trials["status"] == "ok") & np.isfinite(trials["score"])]
    if t.empty:
        return None
    return t.sort_values(["score", "trial_id"], ascending=[False, True]).iloc[0]


def _best_hparams(trials: pd.DataFrame, cell_id: str) -> str:
    if not trials.empty and "hparams" in trials:
        fin = trials[(trials["cell_id"] == cell_id) & (trials["phase"] == "final")]
        if not fin.empty:
            return _canonical_json(fin.sort_values(["seed", "trial_id"]).iloc[0]["hparams"])
        best = best_tuning_trial(trials, cell_id)
        if best is not None:
            return _canonical_json(best["hparams"])
    return ""


def _steps_to_90(values: pd.Series) -> tuple[float, str]:
    """Median over seeds, a seed that never reached 90% counting as infinitely slow."""
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    if v.size == 0:
        return float("nan"), ""
    reached = np.isfinite(v)
    med = float(np.median(np.where(reached, v, np.inf)))
    return (med if math.isfinite(med) else float("nan")), f"{int(reached.sum())}/{v.size}"


def _cell_row(run: RunData, cell: pd.Series, finals: pd.DataFrame, reps: int, seed: int) -> dict:
    cid = cell["cell_id"]
    row: dict[str, Any] = {a: cell[a] for a in CELL_AXES}
    row["cell_id"] = cid
    mine = finals[finals["cell_id"] == cid]
    nan = float("nan")
    if not mine.empty:
        scores = mine["score"].to_numpy(dtype=float)
        q, m = stats.interval(scores, "iqm", reps, seed), stats.interval(scores, "mean", reps, seed)
        row.update(score_source=SOURCE_FINAL, n_seeds=int(scores.size))
        row["steps_to_90"], row["seeds_reached_90"] = _steps_to_90(mine.get("steps_to_90", pd.Series()))
    else:
        best = best_tuning_trial(run.trials, cid)
        score = float(best["score"]) if best is not None else nan
        q = m = stats.Estimate(score, nan, nan)
        row.update(score_source=SOURCE_PROVISIONAL if best is not None else SOURCE_NONE, n_seeds=0)
        s90 = pd.Series([best["steps_to_90"]]) if best is not None and "steps_to_90" in best else pd.Series(dtype=float)
        row["steps_to_90"], row["seeds_reached_90"] = _steps_to_90(s90)
    row.update(iqm=q.point, ci_low=q.low, ci_high=q.high,
               mean=m.point, mean_ci_low=m.low, mean_ci_high=m.high)

    reference_columns(run, cell, row, q.point)

    tr = run.trials
    mine_tr = tr[tr["cell_id"] == cid] if not tr.empty and "cell_id" in tr else pd.DataFrame()
    if not mine_tr.empty and "cpu_seconds" in mine_tr:
        row["cpu_seconds"] = float(mine_tr["cpu_seconds"].fillna(0).sum())
    elif not mine.empty and "cpu_seconds" in mine:
        row["cpu_seconds"] = float(mine["cpu_seconds"].fillna(0).sum())
    else:
        row["cpu_seconds"] = nan
    row["failed_trials"] = int((mine_tr["status"] == "failed").sum()) if "status" in mine_tr else 0
    row["best_hparams"] = _best_hparams(tr, cid)
    row.update(entry=ENTRY_RL, details="")
    return row


def _baseline_rows(run: RunData) -> list[dict]:
    """One leaderboard row per baseline result of baselines.json (steer tasks)."""
    from tournament.engine.cells import baseline_entry_id

    nan = float("nan")
    out = []
    for task in run.baselines.values():
        if not isinstance(task, dict) or not isinstance(task.get("results"), list):
            continue
        for res in task["results"]:
            value = res.get("value")
            value = float(value) if value is not None else nan
            err = float(res.get("stderr") or 0.0)
            row: dict[str, Any] = {"world": task["world"], "task": task["task"], "target": task["target"],
                                   "algorithm": res["name"], "optimizer": "-", "max_perturb": int(task["max_perturb"]),
                                   "module": "-", "action": "discrete"}
            row["cell_id"] = baseline_entry_id(row["world"], row["target"], row["max_perturb"], res["name"])
            known = math.isfinite(value)
            low, high = (max(0.0, value - 1.96 * err), min(1.0, value + 1.96 * err)) if known else (nan, nan)
            row.update(score_source=SOURCE_BASELINE if known else SOURCE_BASELINE_NONE, n_seeds=0,
                       iqm=value, ci_low=low, ci_high=high, mean=value, mean_ci_low=low, mean_ci_high=high,
                       steps_to_90=nan, seeds_reached_90="", cpu_seconds=float(res.get("wall_s") or nan),
                       failed_trials=0, best_hparams="", entry=ENTRY_BASELINE)
            detail = {"set": res.get("best") or [], "used_cells": res.get("used_cells"),
                      "budget_cells": res.get("budget_cells"), "scoring": res.get("scoring")}
            if res.get("reason"):
                detail["reason"] = res["reason"]
            row["details"] = json.dumps({k: v for k, v in detail.items() if v is not None}, sort_keys=True)
            reference_columns(run, row, row, value)
            out.append(row)
    return out


def _rank_and_ties(df: pd.DataFrame) -> pd.DataFrame:
    df = df.assign(_src=df["score_source"].map(_SOURCE_ORDER),
                   _iqm=df["iqm"].fillna(-np.inf), _mean=df["mean"].fillna(-np.inf))
    df = df.sort_values([*GROUP_AXES, "_src", "_iqm", "_mean", "cell_id"],
                        ascending=[True, True, True, True, False, False, True])
    df["rank"] = df.groupby(list(GROUP_AXES), sort=False).cumcount() + 1
    ties = pd.Series(pd.NA, index=df.index, dtype="boolean")
    for _, g in df.groupby(list(GROUP_AXES), sort=False):
        lead = g.iloc[0]
        others = {}
        for idx, r in g.iloc[1:].iterrows():
            others[idx] = stats.intervals_overlap(lead["ci_low"], lead["ci_high"], r["ci_low"], r["ci_high"])
            if others[idx] is not None:
                ties[idx] = others[idx]
        known = [v for v in others.values() if v is not None]
        if stats.Estimate(lead["iqm"], lead["ci_low"], lead["ci_high"]).known:
            # The leader is in a tie exactly when some row's interval overlaps its own.
            ties[g.index[0]] = any(known)
    df["tie_with_leader"] = ties
    return df.drop(columns=["_src", "_iqm", "_mean"]).reset_index(drop=True)


def build_leaderboard(
    run_dir: str | Path | RunData, reps: int = stats.DEFAULT_REPS, seed: int = stats.DEFAULT_SEED
) -> pd.DataFrame:
    """One row per grid cell (and per baseline) with IQM/mean and 95% bootstrap intervals, ranked per group.

    ``tie_with_leader`` is True for a row whose IQM interval overlaps its group leader's (and
    for the leader when any row does), NA where an interval is unknown (fewer than two seeds).
    """
    run = run_dir if isinstance(run_dir, RunData) else load_run(run_dir)
    finals = final_seed_scores(run)
    cells = _cells(run, finals)
    rows = [_cell_row(run, c, finals, reps, seed) for _, c in cells.iterrows()] + _baseline_rows(run)
    if not rows:
        return pd.DataFrame(columns=list(LEADERBOARD_COLUMNS))
    df = _rank_and_ties(raise_lower_bounds(pd.DataFrame(rows), (SOURCE_FINAL, SOURCE_BASELINE)))
    df["max_perturb"] = df["max_perturb"].astype("Int64")
    df["oracle_exact"] = df["oracle_exact"].astype("boolean")
    return df[list(LEADERBOARD_COLUMNS)]
