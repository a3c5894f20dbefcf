"""rliable's views across recipes: performance profiles and the probability-of-improvement matrix.

A *method* is a recipe (algorithm / optimizer / module) and a *task* one world / task / target /
MAX_PERTURB, so each method has at most one grid cell per task and its runs are that cell's
final seeds (tuning scores never enter). Scores are normalized by the task's optimum
(`normalized_score`, score / optimum) so tasks are comparable; a task without an optimum enters
with its raw score, and the figure says so. rliable's profile needs the same number of runs on
every task of a method: where a failed seed makes it ragged, each task keeps its first n seeds
(n the method's smallest count), and the note says so. P(X > Y) is averaged over the tasks both
methods have (rliable's definition), with a stratified-bootstrap interval (tournament.report.stats).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from tournament.report import plots, stats
from tournament.report.leaderboard import RunData, final_seed_scores

TASK_AXES = ("world", "task", "target", "max_perturb")
METHOD_AXES = ("algorithm", "optimizer", "module")
MAX_METHODS = 10
TAU_POINTS = 51
POI_COLUMNS = ("method_x", "method_y", "n_tasks", "n_runs_x", "n_runs_y", "prob_improvement", "ci_low", "ci_high")


def method_scores(run: RunData) -> tuple[dict[str, dict[tuple, np.ndarray]], list[str]]:
    """{method: {task: that cell's final-seed scores (seed order)}} and notes on how scores were used.

    Methods are ordered by their mean score (best first) and capped at MAX_METHODS.
    """
    fs = final_seed_scores(run)
    if fs.empty:
        return {}, []
    fs = fs.assign(score=pd.to_numeric(fs["score"], errors="coerce"))
    norm = pd.to_numeric(fs.get("normalized_score", pd.Series(np.nan, index=fs.index)), errors="coerce")
    fs = fs.assign(_norm=norm)
    notes = []
    raw_tasks = []
    parts = []
    for task, g in fs.groupby(list(TASK_AXES), sort=True):
        if np.isfinite(g["_norm"]).all():
            parts.append(g.assign(_value=g["_norm"]))
        else:
            raw_tasks.append(plots.group_label(task[0], task[1], task[2], task[3]))
            parts.append(g.assign(_value=g["score"]))
    if raw_tasks:
        notes.append(f"raw scores (no optimum to normalize by) for: {', '.join(raw_tasks)}")
    fs = pd.concat(parts, ignore_index=True)
    out: dict[str, dict[tuple, np.ndarray]] = {}
    for method, g in fs.groupby(list(METHOD_AXES), sort=True):
        label = " / ".join(str(v) for v in method)
        out[label] = {task: t.sort_values("seed")["_value"].to_numpy(float)
                      for task, t in g.groupby(list(TASK_AXES), sort=True)}
    ranked = sorted(out, key=lambda m: -np.mean(np.concatenate(list(out[m].values()))))
    if len(ranked) > MAX_METHODS:
        notes.append(f"the best {MAX_METHODS} of {len(ranked)} methods by mean score")
        ranked = ranked[:MAX_METHODS]
    return {m: out[m] for m in ranked}, notes


def _matrix(tasks: dict[tuple, np.ndarray]) -> tuple[np.ndarray, bool]:
    """(runs x tasks) with each task cut to the smallest run count; whether anything was cut."""
    n = min(v.size for v in tasks.values())
    cut = any(v.size != n for v in tasks.values())
    return np.stack([v[:n] for v in tasks.values()], axis=1), cut


def profiles(scores: dict[str, dict[tuple, np.ndarray]], reps: int = stats.DEFAULT_REPS,
             seed: int = stats.DEFAULT_SEED) -> tuple[np.ndarray, dict, dict, list[str]]:
    """(taus, {method: profile}, {method: band}, notes) from rliable's performance profile."""
    mats, notes = {}, []
    for m, tasks in scores.items():
        mats[m], cut = _matrix(tasks)
        if cut:
            notes.append(f"{m}: each task cut to its first {mats[m].shape[0]} seeds (a ragged seed count)")
    top = max(1.0, max(float(np.nanmax(x)) for x in mats.values()))
    taus = np.linspace(0.0, top, TAU_POINTS)
    prof, band = stats.performance_profile(mats, taus, reps=reps, seed=seed)
    return taus, prof, band, notes


def poi_table(scores: dict[str, dict[tuple, np.ndarray]], reps: int = stats.DEFAULT_REPS,
              seed: int = stats.DEFAULT_SEED) -> pd.DataFrame:
    """P(method_x > method_y) over their common tasks, for every ordered pair that has one."""
    rows = []
    for mx, tx in scores.items():
        for my, ty in scores.items():
            common = sorted(set(tx) & set(ty))
            if mx == my or not common:
                continue
            xs, ys = [tx[t] for t in common], [ty[t] for t in common]
            est = stats.probability_of_improvement_interval(xs, ys, reps=reps, seed=seed)
            rows.append({"method_x": mx, "method_y": my, "n_tasks": len(common),
                         "n_runs_x": int(sum(x.size for x in xs)), "n_runs_y": int(sum(y.size for y in ys)),
                         "prob_improvement": est.point, "ci_low": est.low, "ci_high": est.high})
    return pd.DataFrame(rows, columns=list(POI_COLUMNS))


@plots.styled
def plot_profiles(taus: np.ndarray, prof: dict, band: dict, normalized: bool, note: str = "") -> Figure | None:
    """Share of runs scoring above tau, one line per method, shaded 95% bootstrap band."""
    if not prof:
        return None
    fig = plots.new_figure(10.0, 4.2)
    ax = fig.subplots()
    for i, (m, p) in enumerate(prof.items()):
        color = plots.PALETTE[i % len(plots.PALETTE)]
        ax.plot(taus, p, color=color, linestyle=plots.LINESTYLES[i % len(plots.LINESTYLES)],
                marker=plots.MARKERS[i % len(plots.MARKERS)], markevery=max(1, len(taus) // 8), markersize=4,
                label=m)
        lo, hi = band[m]
        ax.fill_between(taus, lo, hi, color=color, alpha=0.15, linewidth=0)
    what = "score / optimum" if normalized else "score (raw where a task has no optimum)"
    ax.set_xlabel(f"threshold tau on the {what}")
    ax.set_ylabel("fraction of runs with score > tau")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    plots.legend_outside(ax, title="algorithm / optimizer / module")
    ax.set_title("Performance profiles (rliable score distributions over final seeds and tasks)" + note,
                 fontsize=10)
    return fig


@plots.styled
def plot_poi_matrix(table: pd.DataFrame, methods: list[str]) -> Figure | None:
    """Heat map of P(row method > column method); blank where two methods share no task."""
    if table.empty:
        return None
    n = len(methods)
    mat = np.full((n, n), np.nan)
    for r in table.itertuples():
        mat[methods.index(r.method_x), methods.index(r.method_y)] = r.prob_improvement
    size = max(4.0, 0.75 * n + 3.0)
    fig = plots.new_figure(size + 2.0, size)
    ax = fig.subplots()
    im = ax.imshow(mat, cmap="RdBu", vmin=0.0, vmax=1.0)
    for i in range(n):
        for j in range(n):
            if np.isfinite(mat[i, j]):
                ax.text(j, i, f"{mat[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if abs(mat[i, j] - 0.5) > 0.3 else "black")
    ax.set_xticks(range(n), methods, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(n), methods, fontsize=8)
    ax.set_xlabel("method Y")
    ax.set_ylabel("method X")
    fig.colorbar(im, ax=ax, label="P(X > Y), averaged over common tasks")
    ax.set_title("Probability of improvement (rliable)", fontsize=10)
    return fig
