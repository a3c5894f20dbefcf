"""Optuna's views per grid cell: hyperparameter importance and optimization history, from the journal.

The run's studies (`optuna/studies.log`, one study per cell, named by the cell id) are opened
read-only through the run's journal reader. Per tuning slot only its latest finished trial
counts (a slot that ran again after a lost record has an earlier copy), as in the searcher.
Importances are Optuna's own (`optuna.importance.get_param_importances`, PED-ANOVA by default
in Optuna 5), computed on an in-memory copy of those trials; a cell with fewer than
MIN_IMPORTANCE_TRIALS complete trials, or no searched hyperparameter, says so instead. A damaged
or missing journal leaves these views out with one line saying why; nothing here writes.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from matplotlib.figure import Figure
from optuna.storages import JournalStorage
from optuna.trial import FrozenTrial, TrialState

from tournament.engine.journal import JOURNAL_NAME, JournalDamage, RunJournalBackend
from tournament.report import plots
from tournament.report.leaderboard import GROUP_AXES

MIN_IMPORTANCE_TRIALS = 2  # Optuna's evaluators need two finished trials to compare
FEW_TRIALS_NOTE = 10  # PED-ANOVA's top 10% of fewer than 10 trials is a single trial


@dataclass
class CellStudy:
    """One cell's study as the report shows it."""

    cell_id: str
    direction: str
    trials: list[FrozenTrial]  # the counted trials, by number
    n_failed: int = 0
    importances: dict[str, float] = field(default_factory=dict)
    note: str = ""  # why there is no importance, or what Optuna warned

    @property
    def complete(self) -> list[FrozenTrial]:
        return [t for t in self.trials if t.state == TrialState.COMPLETE and t.value is not None]


def _counted(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """Per slot the latest finished trial (a slot's earlier copy no longer counts), by number."""
    by_slot: dict[object, FrozenTrial] = {}
    loose = []
    for t in sorted(trials, key=lambda t: t.number):
        if not t.state.is_finished():
            continue
        slot = t.user_attrs.get("slot")
        if slot is None:
            loose.append(t)
        else:
            by_slot[slot] = t
    return sorted([*by_slot.values(), *loose], key=lambda t: t.number)


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna's INFO lines (an in-memory study created) off for a block, the caller's level restored."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def _importances(study: CellStudy) -> None:
    complete = study.complete
    searched = {name for t in complete for name in t.distributions}
    if len(complete) < MIN_IMPORTANCE_TRIALS:
        study.note = (f"too few trials for importance: {len(complete)} complete "
                      f"(at least {MIN_IMPORTANCE_TRIALS} needed)")
        return
    if not searched:
        study.note = "no searched hyperparameter (a fixed configuration): no importance"
        return
    with _quiet_optuna(), warnings.catch_warnings(record=True) as caught:
        copy = optuna.create_study(direction=study.direction)
        copy.add_trials(complete)
        warnings.simplefilter("always")
        try:
            study.importances = {k: float(v) for k, v in optuna.importance.get_param_importances(copy).items()}
        except (ValueError, RuntimeError) as exc:
            study.note = f"Optuna could not compute importances: {exc}"
            return
    notes = [str(w.message).split(". ")[0] for w in caught if issubclass(w.category, UserWarning)]
    if len(complete) < FEW_TRIALS_NOTE:
        notes.append(f"rough: {len(complete)} trials, PED-ANOVA's top 10% is one trial")
    if len(searched) == 1:
        notes.append("one searched hyperparameter: its importance is 1 by definition")
    study.note = "; ".join(dict.fromkeys(notes))


def load_studies(run_dir: str | Path) -> tuple[dict[str, CellStudy], str]:
    """({cell id: CellStudy}, a note when the journal is missing or damaged), read-only."""
    path = Path(run_dir) / JOURNAL_NAME
    if not path.is_file():
        return {}, f"No Optuna journal ({JOURNAL_NAME}) in this run directory."
    try:
        storage = JournalStorage(RunJournalBackend(path))
        summaries = storage.get_all_studies()
        out = {}
        for s in summaries:
            study = optuna.load_study(study_name=s.study_name, storage=storage)
            trials = study.get_trials(deepcopy=False)
            cs = CellStudy(s.study_name, study.direction.name.lower(), _counted(trials),
                           n_failed=sum(t.state == TrialState.FAIL for t in _counted(trials)))
            _importances(cs)
            out[s.study_name] = cs
    except JournalDamage as exc:
        return {}, (f"The Optuna journal is damaged ({exc}); its views are left out. "
                    f"`tournament verify RUN` checks it, `tournament resume RUN` repairs a damaged last record.")
    return out, ""


def _ordered(studies: dict[str, CellStudy], lb: pd.DataFrame) -> list[tuple[pd.Series, CellStudy]]:
    """The cells with a study, in leaderboard order (group, then rank)."""
    if lb.empty or "cell_id" not in lb:
        return []
    rl = lb[lb["cell_id"].isin(studies)].sort_values([*GROUP_AXES, "rank"])
    return [(r, studies[r["cell_id"]]) for _, r in rl.iterrows()]


def _label(r: pd.Series) -> str:
    return f"{plots.group_label(r['world'], r['task'], r['target'])}: {plots.recipe_label(r)}"


def importance_table(studies: dict[str, CellStudy], lb: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: trials counted, best value, importances (largest first) or why none."""
    rows = []
    for r, s in _ordered(studies, lb):
        complete = s.complete
        best = (max if s.direction == "maximize" else min)((t.value for t in complete), default=float("nan"))
        imp = ", ".join(f"{k} {v:.2f}" for k, v in sorted(s.importances.items(), key=lambda kv: -kv[1]))
        rows.append({"cell": _label(r), "complete trials": len(complete), "failed trials": s.n_failed,
                     "best value": best, "importance (PED-ANOVA)": imp or "–", "note": s.note})
    return pd.DataFrame(rows)


def _history(s: CellStudy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    complete = s.complete
    number = np.array([t.number for t in complete], dtype=float)
    value = np.array([t.value for t in complete], dtype=float)
    best = np.maximum.accumulate(value) if s.direction == "maximize" else np.minimum.accumulate(value)
    return number, value, best


@plots.styled
def plot_optimization_history(studies: dict[str, CellStudy], lb: pd.DataFrame) -> Figure | None:
    """Per cell: each complete trial's objective value by trial number, and the best so far."""
    cells = [(r, s) for r, s in _ordered(studies, lb) if s.complete]
    if not cells:
        return None
    cells, left_out = plots.capped(cells)
    ncol = 2 if len(cells) > 1 else 1
    nrow = -(-len(cells) // ncol)
    fig = plots.new_figure(10.0, 2.8 * nrow + 0.6)
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    for ax, (r, s) in zip(axes, cells):
        number, value, best = _history(s)
        ax.plot(number, value, linestyle="none", marker=plots.MARKERS[0], color=plots.PALETTE[0],
                label="objective value")
        ax.step(number, best, where="post", color=plots.PALETTE[3], linestyle="--", label="best so far")
        ax.set_title(f"{plots.recipe_label(r)}\n"
                     f"{plots.group_label(r['world'], r['task'], r['target'])}", fontsize=9)
        ax.set_xlabel("trial number")
        ax.set_ylabel(f"tuning score ({plots.score_unit(r['task'])})", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in axes[len(cells):]:
        ax.set_visible(False)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle("Optimization history per cell (Optuna study, complete trials)" + left_out)
    return fig


@plots.styled
def plot_param_importances(studies: dict[str, CellStudy], lb: pd.DataFrame) -> Figure | None:
    """Per cell with importances: Optuna's normalized importance of each searched hyperparameter."""
    cells = [(r, s) for r, s in _ordered(studies, lb) if s.importances]
    if not cells:
        return None
    cells, left_out = plots.capped(cells)
    params = sorted({p for _, s in cells for p in s.importances})
    most = max(len(s.importances) for _, s in cells)
    fig = plots.new_figure(10.0, 0.3 * len(cells) * most + 1.6)
    ax = fig.subplots()
    height = 0.8 / most
    ypos = np.arange(len(cells))[::-1]
    for y, (_, s) in zip(ypos, cells):
        mine = sorted(s.importances)
        for j, p in enumerate(mine):  # this cell's bars centred on its row; colour and hatch by parameter
            k = params.index(p)
            ax.barh(y + (len(mine) / 2 - j - 0.5) * height, s.importances[p], height=height,
                    color=plots.PALETTE[k % len(plots.PALETTE)], hatch=("", "//", "..", "xx")[k % 4],
                    edgecolor="white", label=p)
    handles, labels = ax.get_legend_handles_labels()
    keep = dict(zip(labels, handles))
    ax.set_yticks(ypos, [f"{_label(r)} ({len(s.complete)} trials)" for r, s in cells], fontsize=8)
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("importance (Optuna, PED-ANOVA; sums to 1 per cell)")
    ax.grid(axis="x", alpha=0.3)
    plots.legend_outside(ax, list(keep.values()), list(keep.keys()), title="hyperparameter")
    ax.set_title("Hyperparameter importance per cell" + left_out)
    return fig
