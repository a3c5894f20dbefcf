"""Writes synthetic run directories with known scores, for the leaderboard and report tests.

The files follow the run-directory contract the runner writes (spec.yaml, manifest.json,
status.json, oracle.json, trials.csv, curves.csv, final_scores.csv), so the report is tested
on numbers whose statistics can be worked out by hand. The tables have the first release's
columns (without tournament.engine.rundir.ADDED_COLUMNS), so every report test also reads a
run directory an older version wrote.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

TRIAL_COLUMNS = [
    "trial_id", "phase", "cell_id", "world", "task", "target", "algorithm", "optimizer",
    "max_perturb", "module", "seed", "hparams", "status", "fail_reason", "score",
    "normalized_score", "env_steps", "steps_to_90", "cpu_seconds", "wall_seconds", "node_id",
]
CURVE_COLUMNS = [
    "trial_id", "phase", "cell_id", "seed", "iteration", "env_steps", "stage",
    "episode_return_mean", "eval_score", "frac_lr_max", "lr_mean",
]
FINAL_COLUMNS = [
    "cell_id", "world", "task", "target", "algorithm", "optimizer", "max_perturb", "module",
    "seed", "score", "normalized_score", "steps_to_90", "cpu_seconds", "perturbation_sets",
]
ENV_STEPS = 4000
N_ITER = 5


@dataclass
class FakeCell:
    """One grid cell with the scores its trials will report."""

    algorithm: str = "PPO"
    optimizer: str = "adam"
    max_perturb: int = 2
    module: str = "gnn"
    world: str = "myeloid"
    task: str = "steer"
    target: str = "Mo"
    final_scores: list[float] = field(default_factory=list)
    tune_scores: list[float] = field(default_factory=lambda: [0.2, 0.4])
    failed_tune: int = 0
    # Per final seed: env steps to 90% of the optimum, None = never reached.
    steps_to_90: list[float | None] | None = None
    # Per final seed: the perturbation sets used in its evaluation episodes.
    perturbation_sets: list[list[list[list[str]]]] | None = None
    cpu_seconds: float = 10.0

    @property
    def cell_id(self) -> str:
        return (f"{self.world}-{self.task}-{self.target}-{self.algorithm}-{self.optimizer}"
                f"-k{self.max_perturb}-{self.module}")

    def axes(self) -> dict:
        return {"world": self.world, "task": self.task, "target": self.target,
                "algorithm": self.algorithm, "optimizer": self.optimizer,
                "max_perturb": self.max_perturb, "module": self.module}


def default_oracle(cells: list[FakeCell], optimum: float = 0.9, exact: bool = True) -> dict:
    """An oracle entry for each world/task/target/max_perturb of the cells."""
    out = {}
    for c in cells:
        key = f"{c.world}|{c.task}|{c.target}|{c.max_perturb}"
        out[key] = {
            "optimum": optimum,
            "exact": exact,
            "method": "exact" if exact else "monte_carlo",
            "baseline": {"Mo": 0.3, "Neu": 0.5, "other": 0.2},
            "best": [
                {"perturbations": [["Gfi1", "ko"], ["Cebpa", "oe"]], "probability": optimum},
                {"perturbations": [["Gfi1", "knockout"]], "probability": optimum - 0.1},
            ],
        }
    return out


def _hparams(c: FakeCell, i: int) -> str:
    if c.optimizer.startswith("asgd"):
        return json.dumps({"lr_min": 1e-4 * (i + 1), "lr_max": 1e-3 * (i + 1)})
    return json.dumps({"lr": 1e-3 * (i + 1)})


def _curve_rows(trial_id: str, phase: str, c: FakeCell, seed: int, score: float) -> list[list]:
    rows = []
    for it in range(N_ITER):
        frac = (it + 1) / N_ITER
        # Plain Adam has no lr switch: frac_lr_max is empty (not applicable), as the runner logs it.
        asgd = c.optimizer.startswith("asgd")
        lr_frac = max(0.1, 1.0 - frac) if asgd else ""
        lr = 1e-4 + 9e-4 * lr_frac if asgd else 1e-3
        rows.append([trial_id, phase, c.cell_id, seed, it, int(ENV_STEPS * frac), "main",
                     round(score * frac, 6), round(score * frac, 6), lr_frac, lr])
    return rows


def write_run_dir(
    path: Path,
    cells: list[FakeCell],
    oracle: dict | None = None,
    manifest_status: str = "finished",
    final_phase: bool = True,
    final_scores_file: bool = True,
) -> Path:
    """Write a run directory for ``cells``.

    ``final_phase=False`` models a run killed during tuning (no final trials at all);
    ``final_scores_file=False`` keeps the final trials in trials.csv but omits final_scores.csv.
    """
    path.mkdir(parents=True, exist_ok=True)
    oracle = default_oracle(cells) if oracle is None else oracle
    trials, curves, finals = [], [], []
    for c in cells:
        opt = oracle.get(f"{c.world}|{c.task}|{c.target}|{c.max_perturb}", {}).get("optimum", 1.0)
        for i, s in enumerate(c.tune_scores):
            tid = f"{c.cell_id}-t{i}"
            trials.append([tid, "tune", c.cell_id, *c.axes().values(), 100 + i, _hparams(c, i),
                           "ok", "", s, s / opt, ENV_STEPS, "", c.cpu_seconds, c.cpu_seconds,
                           "node0"])
            curves += _curve_rows(tid, "tune", c, 100 + i, s)
        for j in range(c.failed_tune):
            tid = f"{c.cell_id}-f{j}"
            trials.append([tid, "tune", c.cell_id, *c.axes().values(), 200 + j, _hparams(c, 0),
                           "failed", "NaN loss", "", "", 800, "", c.cpu_seconds, c.cpu_seconds,
                           "node0"])
        if not final_phase:
            continue
        best = max(range(len(c.tune_scores)), key=lambda i: c.tune_scores[i]) if c.tune_scores else 0
        for k, s in enumerate(c.final_scores):
            seed = 1000 + k
            tid = f"{c.cell_id}-s{seed}"
            s90 = "" if c.steps_to_90 is None or c.steps_to_90[k] is None else c.steps_to_90[k]
            trials.append([tid, "final", c.cell_id, *c.axes().values(), seed, _hparams(c, best),
                           "ok", "", s, s / opt, ENV_STEPS, s90, c.cpu_seconds, c.cpu_seconds,
                           "node0"])
            curves += _curve_rows(tid, "final", c, seed, s)
            sets = c.perturbation_sets[k] if c.perturbation_sets else []
            finals.append([c.cell_id, *c.axes().values(), seed, s, s / opt, s90, c.cpu_seconds,
                           json.dumps(sets)])

    _write_csv(path / "trials.csv", TRIAL_COLUMNS, trials)
    _write_csv(path / "curves.csv", CURVE_COLUMNS, curves)
    if final_phase and final_scores_file:
        _write_csv(path / "final_scores.csv", FINAL_COLUMNS, finals)
    (path / "oracle.json").write_text(json.dumps(oracle, indent=1))
    (path / "spec.yaml").write_text("name: synthetic\nworld: myeloid\ntask: steer\ntarget: Mo\n")
    (path / "manifest.json").write_text(json.dumps({
        "status": manifest_status,
        "versions": {"ray": "2.60.0", "torch": "2.13.0", "python": "3.11"},
        "git_commit": None,
        "hardware": {"cpu_count": 2, "cpu_model": "synthetic", "memory_gb": 4, "gpu": None},
        "start_time": "2026-01-01T00:00:00",
        "end_time": "2026-01-01T00:10:00" if manifest_status == "finished" else None,
        "command": "tournament run synthetic.yaml",
    }, indent=1))
    (path / "status.json").write_text(json.dumps({
        "phase": "done" if manifest_status == "finished" else ("final" if final_phase else "tune"),
        "trials": {"done": len(trials), "running": 0, "failed": 0, "remaining": 0},
        "best_per_cell": {}, "elapsed_s": 600.0, "eta_s": None,
        "updated": "2026-01-01T00:10:00",
    }))
    return path


def _write_csv(path: Path, columns: list[str], rows: list[list]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        w.writerows(rows)
