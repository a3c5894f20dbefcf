"""The report's figures: learning curves, leaderboard intervals, ablation forest, MAX_PERTURB, lr switching.

Figures are built with matplotlib's object API on the Agg canvas (no pyplot state, so building a
report never touches the caller's backend) and saved as PNG without a timestamp, so the same run
directory gives the same bytes. Colours are the Okabe-Ito palette (safe for colour-blind
readers) and each series also differs in marker or line style, so no figure relies on colour.

Large runs are summarized rather than drawn in full: at most MAX_PANELS panels a figure, the best
MAX_BOARD_ROWS cells of a group in the leaderboard figure, MAX_LINES curves a panel, and the
MAX_FOREST_CELLS most extreme matching cells of an ablation; each figure says what it left out
(every cell is in leaderboard.csv and ablations.csv).

Size: over 350 lines as one short function per figure sharing one style; splitting by figure
would copy the style helpers.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from tournament.report import stats
from tournament.report.leaderboard import GROUP_AXES, SOURCE_FINAL, RunData, best_tuning_trial

# Okabe & Ito (2008); yellow last because it is faint on white.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000",
           "#F0E442")
MARKERS = ("o", "s", "D", "^", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":")
GRID_POINTS = 50
MAX_LINES = 8
MAX_PANELS = 12
MAX_BOARD_ROWS = 30
MAX_FOREST_CELLS = 8
_RC = {"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 9,
       "axes.spines.top": False, "axes.spines.right": False}


def _styled(fn: Callable[..., Figure | None]) -> Callable[..., Figure | None]:
    """Build the figure under the report's rc settings (fonts are fixed when artists are made)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(_RC):
            return fn(*args, **kwargs)
    return wrapper


def _capped(items: list, limit: int = MAX_PANELS) -> tuple[list, str]:
    """The first `limit` panels and a note on how many were left out."""
    if len(items) <= limit:
        return items, ""
    return items[:limit], f" (first {limit} of {len(items)} panels; the tables hold every cell)"


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained", dpi=110)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes, with no timestamp or version metadata (reproducible)."""
    buf = io.BytesIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def group_label(world: str, task: str, target: str, max_perturb: int | None = None) -> str:
    """A facet title such as ``myeloid, steer to Mo, MAX_PERTURB 2``."""
    what = f"steer to {target}" if task == "steer" else task
    k = f", MAX_PERTURB {int(max_perturb)}" if max_perturb is not None else ""
    return f"{world}, {what}{k}"


def score_unit(task: str) -> str:
    return {"steer": "success probability", "trajectory": "distance closed"}.get(task, "prediction accuracy")


def _steps_formatter() -> FuncFormatter:
    def fmt(x: float, _pos: int) -> str:
        if abs(x) >= 1e6:
            return f"{x / 1e6:g}M"
        return f"{x / 1e3:g}k" if abs(x) >= 1e3 else f"{x:g}"
    return FuncFormatter(fmt)


def _interp_runs(curves: pd.DataFrame, y: str) -> tuple[np.ndarray, np.ndarray]:
    """Each trial's curve on a shared env-steps grid (the range every trial covers)."""
    runs = []
    for _, g in curves.groupby("trial_id", sort=True):
        g = g[np.isfinite(g[y]) & np.isfinite(g["env_steps"])].sort_values("env_steps")
        if not g.empty:
            runs.append((g["env_steps"].to_numpy(float), g[y].to_numpy(float)))
    if not runs:
        return np.array([]), np.empty((0, 0))
    lo = max(r[0][0] for r in runs)
    hi = min(r[0][-1] for r in runs)
    if hi <= lo:
        grid = np.array([hi])
    else:
        grid = np.linspace(lo, hi, GRID_POINTS)
    return grid, np.stack([np.interp(grid, xs, ys) for xs, ys in runs])


def _band_line(ax, grid: np.ndarray, runs: np.ndarray, i: int, label: str, reps: int, seed: int) -> None:
    """The mean of `runs` as line style `i`, with its bootstrap band where one exists."""
    m, lo, hi = stats.curve_band(runs, reps=reps, seed=seed)
    color = PALETTE[i % len(PALETTE)]
    ax.plot(grid, m, color=color, linestyle=LINESTYLES[i % len(LINESTYLES)],
            marker=MARKERS[i % len(MARKERS)], markevery=max(1, len(grid) // 6), markersize=4, label=label)
    if np.isfinite(lo).any():
        ax.fill_between(grid, lo, hi, color=color, alpha=0.18, linewidth=0)


def _legend_outside(ax, handles=None, labels=None, title: str | None = None) -> None:
    kw = {} if handles is None else {"handles": handles, "labels": labels}
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False,
              title=title, **kw)


# The helpers the other figure modules (optuna_view, profiles, predict_view) share.
styled, capped, new_figure, legend_outside = _styled, _capped, _new_figure, _legend_outside


def _cell_curves(run: RunData, cell_id: str) -> tuple[pd.DataFrame, bool]:
    """Final-seed curves of a cell, or its best tuning trial's curve (provisional)."""
    cv = run.curves
    mine = cv[cv["cell_id"] == cell_id]
    fin = mine[mine["phase"] == "final"]
    if not fin.empty:
        return fin, False
    best = best_tuning_trial(run.trials, cell_id)
    if best is None:
        return mine.iloc[0:0], True
    return mine[mine["trial_id"] == best["trial_id"]], True


@_styled
def plot_learning_curves(
    run: RunData, leaderboard: pd.DataFrame, reps: int = stats.DEFAULT_REPS,
    seed: int = stats.DEFAULT_SEED,
) -> Figure | None:
    """Per world/task/target/MAX_PERTURB: mean curve over final seeds with a 95% bootstrap band."""
    cv = run.curves
    if cv.empty or leaderboard.empty or not {"cell_id", "env_steps", "trial_id"} <= set(cv):
        return None
    has_eval = "eval_score" in cv and cv["eval_score"].notna().any()
    y = "eval_score" if has_eval else "episode_return_mean"
    if y not in cv:
        return None
    facets, left_out = _capped(list(leaderboard.groupby([*GROUP_AXES, "max_perturb"], sort=True)))
    fig = _new_figure(10.0, 3.2 * len(facets) + 0.6)
    axes = fig.subplots(len(facets), 1, squeeze=False)[:, 0]
    drew = False
    for ax, ((world, task, target, k), cells) in zip(axes, facets):
        cells = cells.sort_values("rank")
        shown = cells.head(MAX_LINES)
        for i, (_, c) in enumerate(shown.iterrows()):
            data, provisional = _cell_curves(run, c["cell_id"])
            grid, runs = _interp_runs(data, y)
            if runs.size == 0:
                continue
            label = recipe_label(c, max_perturb=False)
            label += " (best tuning trial)" if provisional else f" ({runs.shape[0]} seeds)"
            _band_line(ax, grid, runs, i, label, reps, seed)
            drew = True
        more = f" (best {MAX_LINES} of {len(cells)} cells)" if len(cells) > MAX_LINES else ""
        ax.set_title(group_label(world, task, target, k) + more)
        ax.set_xlabel("environment steps")
        ax.set_ylabel(f"evaluation score ({score_unit(task)})" if has_eval
                      else "mean episode return")
        ax.xaxis.set_major_formatter(_steps_formatter())
        ax.xaxis.set_major_locator(MaxNLocator(nbins=8))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            _legend_outside(ax, title="algorithm / optimizer / module")
    if not drew:
        return None
    fig.suptitle("Learning curves: mean over final seeds, shaded 95% bootstrap band" + left_out)
    return fig


def recipe_label(r: "pd.Series | dict", max_perturb: bool = True) -> str:
    """A cell's recipe as figures name it: algorithm / optimizer / k=K / module, and / continuous for
    a continuous-action cell (a discrete one and a continuous one would read the same otherwise)."""
    parts = [r["algorithm"], r["optimizer"], *([f"k={r['max_perturb']}"] if max_perturb else []), r["module"]]
    if r.get("action", "discrete") == "continuous":
        parts.append("continuous")
    return " / ".join(str(p) for p in parts)



@_styled
def plot_leaderboard(leaderboard: pd.DataFrame) -> Figure | None:
    """IQM with its 95% interval per cell, ranked top to bottom, oracle optimum as vertical lines."""
    lb = leaderboard[np.isfinite(leaderboard["iqm"].astype(float))]
    if lb.empty:
        return None
    groups, left_out = _capped(list(lb.groupby(list(GROUP_AXES), sort=True)))
    heights = [max(1.6, 0.32 * min(len(g), MAX_BOARD_ROWS) + 1.0) for _, g in groups]
    fig = _new_figure(10.0, sum(heights) + 0.6)
    axes = fig.subplots(len(groups), 1, squeeze=False, height_ratios=heights)[:, 0]
    styles = {
        "leader": dict(color=PALETTE[0], marker="D", label="leader"),
        "tie": dict(color=PALETTE[1], marker="o", label="interval overlaps the leader's (tie)"),
        "below": dict(color="#555555", marker="s", label="interval below the leader's"),
        "unknown": dict(color=PALETTE[2], marker="^", label="fewer than 2 seeds: no interval"),
        "provisional": dict(color=PALETTE[3], marker="v", label="provisional (tuning score)"),
    }
    for ax, ((world, task, target), g) in zip(axes, groups):
        n_cells = len(g)
        g = g.sort_values("rank").head(MAX_BOARD_ROWS).reset_index(drop=True)
        ypos = np.arange(len(g))[::-1]
        used = {}
        for yv, (_, r) in zip(ypos, g.iterrows()):
            if r["score_source"] != SOURCE_FINAL:
                kind = "provisional"
            elif r["rank"] == 1:
                kind = "leader"
            elif pd.isna(r["tie_with_leader"]):
                kind = "unknown"
            else:
                kind = "tie" if bool(r["tie_with_leader"]) else "below"
            st = styles[kind]
            xerr = None
            if np.isfinite(r["ci_low"]) and np.isfinite(r["ci_high"]):
                xerr = [[r["iqm"] - r["ci_low"]], [r["ci_high"] - r["iqm"]]]
            h = ax.errorbar(r["iqm"], yv, xerr=xerr, fmt=st["marker"], color=st["color"],
                            capsize=3, markersize=6, linewidth=1.5)
            used.setdefault(st["label"], h)
        ks = g.dropna(subset=["optimum"]).drop_duplicates("max_perturb").sort_values("max_perturb")
        for i, (_, r) in enumerate(ks.iterrows()):
            what = "exact" if pd.notna(r["oracle_exact"]) and bool(r["oracle_exact"]) else "best known"
            h = ax.axvline(r["optimum"], color="#000000", linestyle=LINESTYLES[i % len(LINESTYLES)],
                           linewidth=1.2)
            used.setdefault(f"oracle optimum, k={r['max_perturb']} ({what})", h)
        ax.set_yticks(ypos, [f"{int(r['rank'])}. {recipe_label(r)}" for _, r in g.iterrows()])
        ax.set_ylim(-0.7, len(g) - 0.3)
        more = f" (best {MAX_BOARD_ROWS} of {n_cells} cells)" if n_cells > MAX_BOARD_ROWS else ""
        ax.set_title(group_label(world, task, target) + more)
        ax.set_xlabel(f"IQM of final-seed scores ({score_unit(task)}), 95% bootstrap interval")
        ax.grid(axis="x", alpha=0.3)
        _legend_outside(ax, list(used.values()), list(used.keys()))
    fig.suptitle("Leaderboard: ranked by IQM" + left_out)
    return fig


def _forest_rows(ablations: pd.DataFrame) -> pd.DataFrame:
    """Each pair's aggregate row, then at most MAX_FOREST_CELLS of its cells: the largest and the
    smallest differences (all of them when there are few)."""
    parts = []
    for _, g in ablations.groupby("ablation", sort=False):
        agg, cells = g[g["level"] != "cell"], g[g["level"] == "cell"]
        if len(cells) > MAX_FOREST_CELLS:
            order = cells.sort_values(["difference", "match"], ascending=[False, True])
            half = MAX_FOREST_CELLS // 2
            cells = pd.concat([order.head(half), order.tail(MAX_FOREST_CELLS - half)])
        parts += [agg.assign(_shown=len(cells)), cells]
    return pd.concat(parts, ignore_index=True)


@_styled
def plot_ablation_forest(ablations: pd.DataFrame) -> Figure | None:
    """Paired differences (variant - baseline) with 95% intervals; zero marks no effect."""
    if ablations.empty:
        return None
    rows = _forest_rows(ablations)
    fig = _new_figure(10.0, 0.34 * len(rows) + 1.8)
    ax = fig.subplots()
    ypos = np.arange(len(rows))[::-1]
    pair_names = list(dict.fromkeys(rows["ablation"]))
    handles = {}
    labels = []
    for yv, (_, r) in zip(ypos, rows.iterrows()):
        i = pair_names.index(r["ablation"])
        agg = r["level"] != "cell"
        xerr = None
        if np.isfinite(r["ci_low"]) and np.isfinite(r["ci_high"]):
            xerr = [[r["difference"] - r["ci_low"]], [r["ci_high"] - r["difference"]]]
        h = ax.errorbar(r["difference"], yv, xerr=xerr, fmt=MARKERS[i % len(MARKERS)],
                        color=PALETTE[i % len(PALETTE)], markersize=7 if agg else 4,
                        linewidth=2.2 if agg else 1.0, capsize=3,
                        markerfacecolor=PALETTE[i % len(PALETTE)] if agg else "white")
        handles.setdefault(r["ablation"], h)
        p = f"P(improve)={r['prob_improvement']:.2f}"
        if agg:
            shown = r.get("_shown")
            part = f" ({int(shown)} most extreme shown)" if pd.notna(shown) and shown < r["n_cells"] else ""
            labels.append(f"{r['ablation']}: all {r['n_cells']} cell(s){part}, {p}")
        else:
            values = [part.split("=", 1)[-1] for part in str(r["match"]).split(", ")]
            labels.append(f"    {'/'.join(values)}, {p}")
    ax.axvline(0.0, color="#000000", linewidth=1.0, linestyle="--")
    ax.set_yticks(ypos, labels)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel("score difference, variant - baseline (success probability or accuracy), "
                  "95% bootstrap interval")
    ax.grid(axis="x", alpha=0.3)
    _legend_outside(ax, list(handles.values()), list(handles.keys()), title="ablation")
    ax.set_title("Ablations: paired differences over matching cells (dashed line: no difference)")
    return fig


@_styled
def plot_max_perturb(view: pd.DataFrame) -> Figure | None:
    """Normalized IQM against MAX_PERTURB, one line per algorithm."""
    view = view[np.isfinite(view["normalized_iqm"].astype(float))]
    if view.empty:
        return None
    groups, left_out = _capped(list(view.groupby(list(GROUP_AXES), sort=True)))
    fig = _new_figure(10.0, 3.4 * len(groups) + 0.6)
    axes = fig.subplots(len(groups), 1, squeeze=False)[:, 0]
    for ax, ((world, task, target), g) in zip(axes, groups):
        algos = sorted(g["algorithm"].unique())
        ks = sorted(int(k) for k in g["max_perturb"].unique())
        width = 0.25 / max(1, len(algos))
        for i, algo in enumerate(algos):
            a = g[g["algorithm"] == algo].sort_values("max_perturb")
            x = a["max_perturb"].astype(float).to_numpy() + (i - (len(algos) - 1) / 2) * width
            opt = a["optimum"].astype(float).to_numpy()
            yv = a["normalized_iqm"].astype(float).to_numpy()
            lo = (a["iqm"].to_numpy(float) - a["ci_low"].to_numpy(float)) / opt
            hi = (a["ci_high"].to_numpy(float) - a["iqm"].to_numpy(float)) / opt
            err = np.vstack([np.nan_to_num(lo), np.nan_to_num(hi)])
            ax.errorbar(x, yv, yerr=err, color=PALETTE[i % len(PALETTE)],
                        marker=MARKERS[i % len(MARKERS)], linestyle=LINESTYLES[i % len(LINESTYLES)],
                        capsize=3, label=algo)
        ax.axhline(1.0, color="#000000", linewidth=1.0, linestyle=":", label="oracle optimum")
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_xlabel("MAX_PERTURB (perturbations allowed per cell)")
        ax.set_ylabel("IQM / oracle optimum")
        ax.set_title(group_label(world, task, target) + ": best optimizer/module per algorithm")
        ax.grid(alpha=0.3)
        _legend_outside(ax, title="algorithm")
    fig.suptitle("Score as a function of MAX_PERTURB (95% bootstrap intervals)" + left_out)
    return fig


def _optimizer_curves(run: RunData) -> pd.DataFrame:
    cv = run.curves
    if cv.empty or not {"cell_id", "trial_id", "env_steps"} <= set(cv):
        return pd.DataFrame()
    fin = cv[cv["phase"] == "final"]
    cv = fin if not fin.empty else cv
    tr = run.trials
    if tr.empty or "optimizer" not in tr:
        return pd.DataFrame()
    opt = tr.drop_duplicates("cell_id").set_index("cell_id")["optimizer"]
    return cv.assign(optimizer=cv["cell_id"].map(opt)).dropna(subset=["optimizer"])


@_styled
def plot_lr_switching(
    run: RunData, reps: int = stats.DEFAULT_REPS, seed: int = stats.DEFAULT_SEED
) -> Figure | None:
    """Per optimizer: share of coordinates at lr_max, and mean learning rate, over env steps."""
    cv = _optimizer_curves(run)
    if cv.empty:
        return None
    panels = [(c, lab) for c, lab in (
        ("frac_lr_max", "share of parameter coordinates at lr_max"),
        ("lr_mean", "mean learning rate (log scale)")) if c in cv and cv[c].notna().any()]
    if not panels:
        return None
    fig = _new_figure(10.0, 3.2 * len(panels) + 0.6)
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    optimizers = sorted(cv["optimizer"].unique())
    for ax, (col, ylab) in zip(axes, panels):
        for i, name in enumerate(optimizers):
            grid, runs = _interp_runs(cv[cv["optimizer"] == name], col)
            if runs.size == 0:
                continue
            _band_line(ax, grid, runs, i, f"{name} ({runs.shape[0]} trials)", reps, seed)
        if col == "lr_mean":
            ax.set_yscale("log")
        else:
            ax.set_ylim(-0.03, 1.03)
        ax.set_ylabel(ylab)
        ax.set_xlabel("environment steps")
        ax.xaxis.set_major_formatter(_steps_formatter())
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            _legend_outside(ax, title="optimizer")
    axes[0].set_title("Learning-rate switching (adam/amsgrad have no switch: no share plotted)")
    fig.suptitle("Optimizers: mean over trials, shaded 95% bootstrap band")
    return fig

