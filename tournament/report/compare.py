"""Two run directories side by side: the same grid cells' final scores, and how much B differs from A.

A cell is the leaderboard's (world / task / target / MAX_PERTURB / algorithm / optimizer / module;
RL entries only, the baselines are not trained per run). Each side's score is the mean of the
cell's final seeds with the leaderboard's 95% bootstrap interval (``stats.interval``); the
difference is B - A with the stratified-bootstrap interval and P(B > A) of
``stats.paired_difference`` on that one cell. A cell without final seeds on a side (the run stopped
during tuning) is shown with 0 seeds and no score: a tuning maximum is not a final score. Cells
that exist in only one run are listed, never dropped silently; two runs without a common cell are a
user error that names a few cells of each.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from envs.errors import UserInputError
from tournament.engine.rundir import RunPaths
from tournament.report import stats
from tournament.report.leaderboard import CELL_AXES, ENTRY_RL, SOURCE_FINAL, build_leaderboard, final_seed_scores, load_run
from tournament.report.report import _md_table

SHOWN_IN_ERROR = 3
# spec sections that differ between any two runs without changing what was measured
_SPEC_IGNORED = ("name", "execution")
COMPARE_COLUMNS = (
    "cell_id", *CELL_AXES, "n_a", "mean_a", "ci_low_a", "ci_high_a", "n_b", "mean_b", "ci_low_b", "ci_high_b",
    "difference", "diff_ci_low", "diff_ci_high", "prob_b_better",
)


@dataclass
class Comparison:
    """The common cells (one row each, `COMPARE_COLUMNS`), the cells of one run only, and notes."""

    run_a: Path
    run_b: Path
    cells: pd.DataFrame
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _check_dirs(run_a: str | Path, run_b: str | Path) -> tuple[Path, Path]:
    for d in (run_a, run_b):
        if not RunPaths(d).spec.is_file():
            raise UserInputError(f"{d} is not a run directory (no spec.yaml)")
    if os.path.samefile(run_a, run_b):
        raise UserInputError(f"{run_a} and {run_b} are the same run directory; give two different runs")
    return Path(run_a), Path(run_b)


def _side(run_dir: Path, reps: int, seed: int) -> tuple[dict[tuple, pd.Series], dict[str, Any], str]:
    """({cell key: RL leaderboard row}, {cell_id: final-seed scores}, spec text) of one run."""
    run = load_run(run_dir)
    lb = build_leaderboard(run, reps=reps, seed=seed)
    rows = {tuple(str(r[a]) for a in CELL_AXES): r for _, r in lb[lb["entry"] == ENTRY_RL].iterrows()}
    fs = final_seed_scores(run)
    scores = {cid: g.sort_values("seed")["score"].to_numpy(float) for cid, g in fs.groupby("cell_id")}
    return rows, scores, run.spec_text


def _spec_differences(text_a: str, text_b: str) -> list[str]:
    """Top-level spec sections whose values differ (what makes the two runs measure different things)."""
    try:
        a, b = yaml.safe_load(text_a) or {}, yaml.safe_load(text_b) or {}
    except yaml.YAMLError:
        return []
    if not isinstance(a, dict) or not isinstance(b, dict):
        return []
    return sorted(k for k in set(a) | set(b) if k not in _SPEC_IGNORED and a.get(k) != b.get(k))


def _estimate(row: pd.Series) -> tuple[int, float, float, float]:
    if row["score_source"] != SOURCE_FINAL:
        nan = float("nan")
        return 0, nan, nan, nan
    return int(row["n_seeds"]), float(row["mean"]), float(row["mean_ci_low"]), float(row["mean_ci_high"])


def compare_runs(run_a: str | Path, run_b: str | Path, reps: int = stats.DEFAULT_REPS,
                 seed: int = stats.DEFAULT_SEED) -> Comparison:
    """Compare every cell the two runs share; B - A per cell, with intervals."""
    a_dir, b_dir = _check_dirs(run_a, run_b)
    lb_a, scores_a, spec_a = _side(a_dir, reps, seed)
    lb_b, scores_b, spec_b = _side(b_dir, reps, seed)
    common = sorted(set(lb_a) & set(lb_b), key=lambda k: lb_a[k]["cell_id"])
    only_a = sorted(r["cell_id"] for k, r in lb_a.items() if k not in lb_b)
    only_b = sorted(r["cell_id"] for k, r in lb_b.items() if k not in lb_a)
    if not common:
        def few(cells: list[str]) -> str:
            more = f" and {len(cells) - SHOWN_IN_ERROR} more" if len(cells) > SHOWN_IN_ERROR else ""
            return (", ".join(cells[:SHOWN_IN_ERROR]) + more) if cells else "no cell"
        raise UserInputError(f"{a_dir} and {b_dir} have no grid cell in common: A has {few(only_a)}; "
                             f"B has {few(only_b)}")
    rows = []
    for key in common:
        ra, rb = lb_a[key], lb_b[key]
        n_a, m_a, lo_a, hi_a = _estimate(ra)
        n_b, m_b, lo_b, hi_b = _estimate(rb)
        x = scores_b.get(rb["cell_id"], []) if n_b else []
        y = scores_a.get(ra["cell_id"], []) if n_a else []
        d = stats.paired_difference([x], [y], reps=reps, seed=seed)
        rows.append({"cell_id": ra["cell_id"], **{a: ra[a] for a in CELL_AXES},
                     "n_a": n_a, "mean_a": m_a, "ci_low_a": lo_a, "ci_high_a": hi_a,
                     "n_b": n_b, "mean_b": m_b, "ci_low_b": lo_b, "ci_high_b": hi_b,
                     "difference": d.difference, "diff_ci_low": d.low, "diff_ci_high": d.high,
                     "prob_b_better": d.prob_improvement})
    cells = pd.DataFrame(rows, columns=list(COMPARE_COLUMNS))
    notes = []
    unscored = cells.loc[(cells["n_a"] == 0) | (cells["n_b"] == 0), "cell_id"].tolist()
    if unscored:
        notes.append(f"{len(unscored)} common cell(s) lack final seeds on a side, so no difference: "
                     + ", ".join(unscored))
    differ = _spec_differences(spec_a, spec_b)
    if differ:
        notes.append("the specs differ in " + ", ".join(differ) + ": the runs may not measure the same thing")
    return Comparison(a_dir, b_dir, cells, only_a, only_b, notes)


def display_table(cmp: Comparison) -> pd.DataFrame:
    """The common cells formatted for reading: each side's mean [95% CI] and seeds, B - A [95% CI]."""
    c = cmp.cells
    return pd.DataFrame({
        "cell": c["cell_id"],
        "A mean [95% CI]": [stats.with_ci(r.mean_a, r.ci_low_a, r.ci_high_a) for r in c.itertuples()],
        "A seeds": c["n_a"].astype(int),
        "B mean [95% CI]": [stats.with_ci(r.mean_b, r.ci_low_b, r.ci_high_b) for r in c.itertuples()],
        "B seeds": c["n_b"].astype(int),
        "B - A [95% CI]": [stats.with_ci(r.difference, r.diff_ci_low, r.diff_ci_high) for r in c.itertuples()],
        "P(B > A)": [stats.with_ci(v, math.nan, math.nan) for v in c["prob_b_better"]],
    })


_METHOD = ("Per cell: the mean of its final seeds with a 95% bootstrap interval on each side, and B - A "
           "(difference of the means) with a 95% bootstrap interval, each side's seeds resampled "
           "independently, and P(B > A) (Mann-Whitney, ties one half).")


def _tail_lines(cmp: Comparison) -> list[str]:
    out = [f"Only in A ({len(cmp.only_a)}): " + (", ".join(cmp.only_a) or "none"),
           f"Only in B ({len(cmp.only_b)}): " + (", ".join(cmp.only_b) or "none")]
    return out + [f"Note: {n}" for n in cmp.notes]


def comparison_text(cmp: Comparison) -> str:
    """The plain-text table printed on the terminal."""
    head = [f"A: {cmp.run_a}", f"B: {cmp.run_b}", ""]
    table = display_table(cmp).to_string(index=False)
    return "\n".join([*head, table, "", *_tail_lines(cmp), "", _METHOD]) + "\n"


def comparison_markdown(cmp: Comparison) -> str:
    """The same comparison as a markdown document."""
    out = [f"# Comparison: {cmp.run_b.name} (B) against {cmp.run_a.name} (A)", "",
           f"- A: `{cmp.run_a}`", f"- B: `{cmp.run_b}`", "", _METHOD, "",
           _md_table(display_table(cmp)), ""]
    out += [f"- {line}" for line in _tail_lines(cmp)]
    return "\n".join(out) + "\n"


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v.item() if hasattr(v, "item") else v


def comparison_json(cmp: Comparison) -> str:
    """Machine-readable comparison: the cells (NaN as null), the cells of one run only, the notes."""
    cells = [{k: _jsonable(v) for k, v in row.items()} for row in cmp.cells.to_dict(orient="records")]
    return json.dumps({"run_a": str(cmp.run_a), "run_b": str(cmp.run_b), "difference": "B - A",
                       "cells": cells, "only_in_a": cmp.only_a, "only_in_b": cmp.only_b,
                       "notes": cmp.notes}, indent=2) + "\n"
