"""Early stopping within a grid cell: a median stopping rule that compares a trial only with
trials of its own cell.

Comparing across cells would stop, say, every SAC trial because PPO learns faster, which is
exactly the comparison the tournament is there to make fairly. The rule (after Golovin et al.,
"Google Vizier", 2017, as in Tune's MedianStoppingRule): after `grace_iterations`, a tuning
trial whose best score so far is below the median of the best-so-far scores that at least
`min_trials` other trials of its cell had at the same iteration is stopped. Final-phase trials
are never stopped. A stopped trial enters its Optuna study as PRUNED.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler


def tuning_cell(config: dict) -> str | None:
    """The cell of a tuning trial from its Tune config; None for trials never to stop."""
    meta = config.get("meta", {}) if isinstance(config, dict) else {}
    return meta.get("cell_id") if meta.get("phase") == "tune" else None


class CellMedianStopping(FIFOScheduler):
    """Per-cell median stopping; otherwise first in, first out."""

    def __init__(
        self,
        cell_of: Callable[[dict], str | None] = tuning_cell,
        metric: str = "score",
        mode: str = "max",
        time_attr: str = "training_iteration",
        grace_iterations: int = 3,
        min_trials: int = 2,
    ):
        super().__init__()
        self._metric, self._mode = metric, mode
        self.cell_of = cell_of
        self.time_attr = time_attr
        self.grace = int(grace_iterations)
        self.min_trials = int(min_trials)
        # cell -> trial id -> list of (time, best score so far)
        self._history: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(dict)
        self.stopped: set[str] = set()

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return metric in (None, self._metric) and mode in (None, self._mode)

    def _better(self, a: float, b: float) -> bool:
        return a > b if self._mode == "max" else a < b

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        cell = self.cell_of(trial.config)
        t, v = result.get(self.time_attr), result.get(self._metric)
        if cell is None or t is None or not isinstance(v, (int, float)) or not math.isfinite(v):
            return TrialScheduler.CONTINUE
        hist = self._history[cell].setdefault(trial.trial_id, [])
        best = v if not hist or self._better(v, hist[-1][1]) else hist[-1][1]
        hist.append((float(t), float(best)))
        if t < self.grace:
            return TrialScheduler.CONTINUE
        decision = self.decide(cell, trial.trial_id, float(t), float(best))
        if decision == TrialScheduler.STOP:
            self.stopped.add(trial.trial_id)
        return decision

    def decide(self, cell: str, trial_id: str, t: float, best: float) -> str:
        """STOP when `best` is worse than the median of the cell's other trials at time t."""
        others: list[float] = []
        for other_id, hist in self._history[cell].items():
            if other_id == trial_id or not hist or hist[-1][0] < t:
                continue
            at_t = [b for (time, b) in hist if time <= t]
            if at_t:
                others.append(at_t[-1])
        if len(others) < self.min_trials:
            return TrialScheduler.CONTINUE
        median = statistics.median(others)
        return TrialScheduler.STOP if self._better(median, best) else TrialScheduler.CONTINUE

    def debug_string(self) -> str:
        return f"CellMedianStopping: {len(self.stopped)} trials stopped early."
