"""Ablation views: paired differences between recipes over matching cells, score vs MAX_PERTURB.

A pair compares a *variant* with a *baseline* that differ on one axis (algorithm or optimizer);
two cells match when every other axis (world, task, target, max_perturb, module and the other
of algorithm/optimizer) is equal. Only final-seed scores enter (a provisional best-of-tuning
score is not a sample of the recipe's performance). Differences are in raw score (success
probability for steer, accuracy for predict), variant minus baseline.

"LoRA_staged vs full fine-tuning" is defined here as LoRA_staged against PPO in the matching
cell: PPO trains every weight of the same module from scratch, which is the cost LoRA stages
are meant to save. The LoRA run's own last (full fine-tuning) stage is inside one trial and
has no separate final-seed score, so it cannot be paired seed by seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tournament.report import stats
from tournament.report.leaderboard import CELL_AXES, GROUP_AXES, SOURCE_FINAL, RunData, final_seed_scores


@dataclass(frozen=True)
class AblationPair:
    """A variant and its baseline on one grid axis."""

    name: str
    axis: str
    variant: str
    baseline: str


PAIRS: tuple[AblationPair, ...] = (
    AblationPair("TRPO_to_PPO vs PPO", "algorithm", "TRPO_to_PPO", "PPO"),
    AblationPair("asgd_adam vs adam", "optimizer", "asgd_adam", "adam"),
    AblationPair("asgd_amsgrad vs amsgrad", "optimizer", "asgd_amsgrad", "amsgrad"),
    AblationPair("LoRA_staged vs full fine-tuning (PPO)", "algorithm", "LoRA_staged", "PPO"),
)

ABLATION_COLUMNS = (
    "ablation", "variant", "baseline", "level", "match", "n_cells", "n_variant_seeds",
    "n_baseline_seeds", "variant_mean", "baseline_mean", "difference", "ci_low", "ci_high",
    "prob_improvement",
)
LEVEL_ALL = "all matching cells"
LEVEL_CELL = "cell"


def _match_label(key: tuple, axes: list[str]) -> str:
    return ", ".join(f"{a}={v}" for a, v in zip(axes, key))


def _row(pair: AblationPair, level: str, match: str, xs: list, ys: list, reps: int, seed: int) -> dict:
    d = stats.paired_difference(xs, ys, reps, seed)
    return {
        "ablation": pair.name, "variant": pair.variant, "baseline": pair.baseline,
        "level": level, "match": match, "n_cells": d.n_cells,
        "n_variant_seeds": d.n_variant_runs, "n_baseline_seeds": d.n_baseline_runs,
        "variant_mean": float(np.mean([np.mean(x) for x in xs])),
        "baseline_mean": float(np.mean([np.mean(y) for y in ys])),
        "difference": d.difference, "ci_low": d.low, "ci_high": d.high,
        "prob_improvement": d.prob_improvement,
    }


def paired_ablations(
    run: RunData, reps: int = stats.DEFAULT_REPS, seed: int = stats.DEFAULT_SEED,
    pairs: tuple[AblationPair, ...] = PAIRS,
) -> pd.DataFrame:
    """One row per pair over all its matching cells, then one row per matching cell.

    Pairs with no matching cell in the run are left out.
    """
    finals = final_seed_scores(run)
    rows: list[dict] = []
    if finals.empty:
        return pd.DataFrame(columns=list(ABLATION_COLUMNS))
    for pair in pairs:
        axes = [a for a in CELL_AXES if a != pair.axis]
        side = {}
        for label in (pair.variant, pair.baseline):
            sub = finals[finals[pair.axis] == label]
            side[label] = {k: g["score"].to_numpy(dtype=float)
                           for k, g in sub.groupby(axes, sort=True)}
        keys = sorted(set(side[pair.variant]) & set(side[pair.baseline]), key=str)
        if not keys:
            continue
        xs = [side[pair.variant][k] for k in keys]
        ys = [side[pair.baseline][k] for k in keys]
        rows.append(_row(pair, LEVEL_ALL, f"{len(keys)} matching cell(s)", xs, ys, reps, seed))
        for k, x, y in zip(keys, xs, ys):
            rows.append(_row(pair, LEVEL_CELL, _match_label(k, axes), [x], [y], reps, seed))
    return pd.DataFrame(rows, columns=list(ABLATION_COLUMNS))


def max_perturb_view(leaderboard: pd.DataFrame) -> pd.DataFrame:
    """Score as a function of MAX_PERTURB per algorithm (final-seed cells only).

    For each world/task/target, algorithm and MAX_PERTURB the best cell by IQM (over optimizer
    and module) stands for the algorithm: the question is what the algorithm can reach at that
    budget. ``normalized_iqm`` divides by the oracle optimum at that MAX_PERTURB, which grows
    with it, so budgets are comparable.
    """
    cols = [*GROUP_AXES, "algorithm", "max_perturb", "optimizer", "module", "iqm", "ci_low",
            "ci_high", "optimum", "normalized_iqm", "n_seeds"]
    lb = leaderboard[leaderboard["score_source"] == SOURCE_FINAL]
    if lb.empty:
        return pd.DataFrame(columns=cols)
    lb = lb.sort_values([*GROUP_AXES, "algorithm", "max_perturb", "iqm", "cell_id"],
                        ascending=[True] * 5 + [False, True])
    best = lb.drop_duplicates([*GROUP_AXES, "algorithm", "max_perturb"], keep="first")
    return best[cols].reset_index(drop=True)
