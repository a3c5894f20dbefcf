"""The driver's record of a run: a Tune callback that appends trials.csv, curves.csv and
final_scores.csv as trials report and end, and keeps status.json and the progress display current."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from tournament.engine.cells import Cell
from tournament.engine.progress import ProgressDisplay, ProgressTracker, cost_group
from tournament.engine.rundir import (
    CURVE_COLUMNS,
    FINAL_COLUMNS,
    PREDICT_COLUMNS,
    TRAJECTORY_COLUMNS,
    TRIAL_COLUMNS,
    AppendTable,
    RunDirWriteError,
    RunPaths,
    atomic_write_json,
    is_finite_number,
    now_iso,
    read_json,
)
from tournament.engine.records import read_table

log = logging.getLogger("tournament")


# ---- the driver callback ----------------------------------------------------------------------


def _num(x: Any) -> float | None:
    return float(x) if is_finite_number(x) else None


def _json_field(result: dict, key: str) -> dict:
    try:
        value = json.loads(result.get(key) or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def task_metrics(result: dict) -> dict[str, float | None]:
    """final_scores.csv's task metric columns from a trial's last result: the predict trial's
    `predict_metrics` (per stage, algorithms.evaluation) as each metric's mean over the stages,
    the trajectory trial's `trajectory_metrics` as they are; None where the trial has none."""
    out: dict[str, float | None] = dict.fromkeys((*PREDICT_COLUMNS, *TRAJECTORY_COLUMNS))
    stages = [s for s in _json_field(result, "predict_metrics").get("stages") or [] if isinstance(s, dict)]
    for column in PREDICT_COLUMNS:
        values = [float(s[column.removeprefix("predict_")]) for s in stages
                  if is_finite_number(s.get(column.removeprefix("predict_")))]
        out[column] = sum(values) / len(values) if values else None
    trajectory = _json_field(result, "trajectory_metrics")
    for column in TRAJECTORY_COLUMNS:
        out[column] = _num(trajectory.get(column.removeprefix("trajectory_")))
    return out


def _error_line(trial: Any) -> str:
    path = getattr(trial, "error_file", None)
    text = ""
    try:
        if path and Path(path).is_file():
            text = Path(path).read_text()
    except OSError:
        pass
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    reason = lines[-1] if lines else "the trial raised an error"
    return f"raised after {getattr(trial, 'num_failures', 0)} attempt(s): {reason}"[:500]


def _tune_callback_base() -> type:
    from ray.tune import Callback

    return Callback


class RunDirCallback(_tune_callback_base()):
    """Keeps the run directory's tables, status.json and the progress display current."""

    # Writes, in this order, when a trial ends: its curve rows, its final score row, its trials.csv
    # row (the record that it finished), then the study's tell; each an fsynced append. A crash
    # between two of them leaves rows that tournament.engine.repair sets aside at the next resume, and
    # the trial runs again; a crash after the trials.csv row leaves a finished trial.
    def __init__(self, paths: RunPaths, cells: dict[str, Cell], tracker: ProgressTracker, searcher: Any,
                 display: ProgressDisplay, flush_every_s: float = 1.0):
        self.paths = paths
        self.cells = cells
        self.tracker = tracker
        self.searcher = searcher
        self.display = display
        self.flush_every_s = flush_every_s
        self._tables = {name: AppendTable(path, columns, paths.root) for name, path, columns in (
            ("trials", paths.trials, TRIAL_COLUMNS), ("curves", paths.curves, CURVE_COLUMNS),
            ("finals", paths.final_scores, FINAL_COLUMNS))}
        for table in self._tables.values():
            table.append_header()
        # trials recorded by earlier sessions (the tables were repaired before a resume)
        self.recorded: set[str] = {r["trial_id"] for r in read_table(paths.trials, TRIAL_COLUMNS).rows}
        # curve points of running trials by iteration; they go to curves.csv when the trial ends
        self._curves: dict[str, dict[str, dict]] = {}
        self._last_flush = 0.0
        # Tune turns an exception in a trial's result handling into a trial failure (and retries
        # the trial); a failed write is kept here instead and raised between steps, stopping the run
        self.write_failure: RunDirWriteError | None = None
        self.flush(force=True)

    def _guarded(self, fn: Any, *args: Any) -> None:
        if self.write_failure is not None:
            return  # the run is stopping; nothing more is written or told
        try:
            fn(*args)
        except RunDirWriteError as exc:
            self.write_failure = exc

    def raise_write_failure(self) -> None:
        if self.write_failure is not None:
            raise self.write_failure

    # -- helpers --
    @staticmethod
    def _meta(trial: Any) -> dict:
        return trial.config.get("meta", {})

    def _record(self, trial: Any, result: dict | None, error: str | None) -> None:
        meta = self._meta(trial)
        key = meta.get("trial_key") or trial.trial_id
        cell = self.cells.get(meta.get("cell_id", ""))
        result = result or {}
        failed = error is not None or bool(result.get("failed"))
        reason = error or str(result.get("fail_reason") or "")
        if not failed and not result.get("finished", False):
            reason = "stopped early (median rule within its cell)" if result else "stopped before reporting"
        row = {
            "trial_id": key,
            "phase": meta.get("phase", ""),
            **(cell.describe() if cell else {"cell_id": meta.get("cell_id", "")}),
            "seed": trial.config.get("trial", {}).get("seed"),
            "hparams": json.dumps(meta.get("hparams", {}), sort_keys=True),
            "status": "failed" if failed else "ok",
            "fail_reason": reason,
            "score": _num(result.get("score")),
            "normalized_score": _num(result.get("normalized_score")),
            "env_steps": result.get("env_steps"),
            "steps_to_90": _num(result.get("steps_to_90")),
            "cpu_seconds": _num(result.get("cpu_seconds")),
            "wall_seconds": _num(result.get("wall_seconds")),
            "node_id": result.get("node_id", ""),
        }
        if row["steps_to_90"] is not None:
            row["steps_to_90"] = int(row["steps_to_90"])
        curve = self._curves.pop(key, {})
        if key not in self.recorded:
            self._tables["curves"].append(list(curve.values()))
            if row["phase"] == "final" and not failed and cell is not None:
                self._tables["finals"].append([{
                    **cell.describe(),
                    "seed": row["seed"],
                    "score": row["score"],
                    "normalized_score": row["normalized_score"],
                    "steps_to_90": row["steps_to_90"],
                    "cpu_seconds": row["cpu_seconds"],
                    "perturbation_sets": result.get("perturbation_sets", "[]") if cell.task != "predict" else "",
                    **task_metrics(result),
                }])
            self._tables["trials"].append([row])
            self.recorded.add(key)
        else:
            log.warning("trial %s ended again after it was recorded; the first record stands", key)
        self.tracker.finish(key, ok=not failed, cell_id=row["cell_id"], score=row["score"] if not failed else None)
        # only now that the row is on disk may the study learn the outcome (see CellSearcher)
        if hasattr(self.searcher, "commit"):
            self.searcher.commit(trial.trial_id)
        self._update_phase()
        self.flush()

    def _update_phase(self) -> None:
        if hasattr(self.searcher, "tuning_done") and self.tracker.phase in ("tune", "final"):
            self.tracker.phase = "final" if self.searcher.tuning_done else "tune"
        if hasattr(self.searcher, "counts"):
            self.tracker.planned = self.searcher.counts()["planned"]

    def flush(self, force: bool = False) -> None:
        """status.json (at most every flush_every_s unless forced); the tables are appended at once."""
        now = time.monotonic()
        if not force and now - self._last_flush < self.flush_every_s:
            return
        self.tracker.write(self.paths.status)
        self._last_flush = now

    # -- Tune hooks --
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        meta = self._meta(trial)
        cell = self.cells.get(meta.get("cell_id", ""))
        group = cost_group(cell.algorithm, cell.module) if cell else ""
        self.tracker.start(meta.get("trial_key") or trial.trial_id, group)
        self.display.update(self.tracker.status())

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        meta = self._meta(trial)
        key = meta.get("trial_key") or trial.trial_id
        it = result.get("iteration", result.get("training_iteration"))
        points = self._curves.setdefault(key, {})
        if str(it) in points:
            return  # re-reported after a restart from an older checkpoint
        self.tracker.report(key, result.get("env_steps"))
        points[str(it)] = {
            "trial_id": key, "phase": meta.get("phase", ""), "cell_id": meta.get("cell_id", ""),
            "seed": trial.config.get("trial", {}).get("seed"), "iteration": it,
            "env_steps": result.get("env_steps"), "stage": result.get("stage", ""),
            "episode_return_mean": _num(result.get("episode_return_mean")),
            "eval_score": _num(result.get("eval_score")),
            "frac_lr_max": _num(result.get("frac_lr_max")), "lr_mean": _num(result.get("lr_mean")),
        }

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._guarded(self._record, trial, trial.last_result, None)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._guarded(self._record, trial, trial.last_result, _error_line(trial))

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        self.raise_write_failure()

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self.raise_write_failure()
        self._guarded(self.flush)
        self.display.update(self.tracker.status())

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        if hasattr(self.searcher, "commit_all"):
            self._guarded(self.searcher.commit_all)
        self._guarded(self.flush, True)




def write_status(paths: RunPaths, phase: str, tracker: ProgressTracker | None = None) -> None:
    if tracker is not None:
        tracker.phase = phase
        tracker.write(paths.status)
        return
    old = read_json(paths.status, {}) or {}
    old.update(phase=phase, updated=now_iso())
    old.setdefault("trials", {"done": 0, "running": 0, "failed": 0, "remaining": 0})
    old.setdefault("best_per_cell", {})
    old.setdefault("elapsed_s", 0.0)
    old.setdefault("eta_s", None)
    atomic_write_json(paths.status, old)
