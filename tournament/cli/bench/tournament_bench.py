"""Tournament efficiency: CPU utilization and per-trial overhead of a whole tournament.

utilization = sum over trials of the trial's CPU seconds / (wall seconds x CPUs). The trial's
CPU seconds are those of its worker process from the start of the trainable (algorithm build,
training, evaluation); the wall clock runs from the start of `run_tournament` (Ray start and
the oracle included) to its end, so everything the engine adds counts against it.
`utilization_fit` uses only the Tune experiment's wall time (first trial start to last end).
Per-trial overhead = (wall x concurrency - sum of trial wall seconds) / trials: the slot time a
trial costs beyond its own run (scheduling, process start, result handling). slot_occupancy =
sum of trial wall seconds / (wall x concurrency) is the engine's share alone: on a machine shared
with other work, utilization falls with the CPU the trials get, occupancy does not.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from tournament.engine.rundir import RunPaths


def bench_spec(name: str, storage: str, env_steps: int, trials_per_cell: int, seeds: int, num_cpus: int,
               runner: str | None = None) -> dict[str, Any]:
    """Two PPO cells (adam, asgd_adam) with trials of `env_steps` steps each."""
    spec: dict[str, Any] = {
        "name": name,
        "world": "myeloid",
        "target": "Mo",
        "grid": {"algorithm": ["PPO"], "optimizer": ["adam", "asgd_adam"], "max_perturb": [2], "module": ["gnn"]},
        "algorithm_settings": {"PPO": {"train_batch_size": 1000, "minibatch_size": 250, "num_epochs": 4}},
        "budget": {"env_steps": env_steps},
        "hpo": {"trials_per_cell": trials_per_cell, "seed": 0},
        "evaluation": {"episodes": 20, "every_iterations": 5},
        "final": {"seeds": seeds, "eval_episodes": 50},
        "execution": {"storage": storage, "num_cpus": num_cpus},
    }
    if runner:
        spec["execution"]["runner"] = runner
    return spec


def read_trials(run_dir: Path) -> list[dict]:
    """The run's trials.csv rows (the run must have written it)."""
    with open(RunPaths(run_dir).trials, newline="") as fh:
        return list(csv.DictReader(fh))


def _utilization(run_dir: Path) -> dict[str, Any]:
    trials = read_trials(run_dir)
    cpu = sum(float(r["cpu_seconds"] or 0) for r in trials)
    trial_wall = sum(float(r["wall_seconds"] or 0) for r in trials)
    return {"trials": len(trials), "failed": sum(r["status"] == "failed" for r in trials),
            "trial_cpu_s": round(cpu, 1), "trial_wall_s": round(trial_wall, 1),
            "mean_trial_wall_s": round(trial_wall / max(1, len(trials)), 1)}


def bench_tournament(
    env_steps: int = 20_000,
    trials_per_cell: int = 2,
    seeds: int = 1,
    num_cpus: int | None = None,
    spec_path: str | None = None,
    runner: str | None = None,
    keep: str | None = None,
) -> dict[str, Any]:
    """Run a tournament (the built-in two-cell PPO spec, or `spec_path`) and measure it."""
    import ray

    from tournament.engine.runner import run_tournament
    from tournament.engine.spec import load_spec, parse_spec, with_overrides

    cpus = num_cpus or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="tournament-bench-") as tmp:
        storage = keep or tmp
        if spec_path:
            spec = with_overrides(load_spec(spec_path), storage=storage, num_cpus=cpus)
        else:
            spec = parse_spec(bench_spec("bench", storage, env_steps, trials_per_cell, seeds, cpus, runner))
        if ray.is_initialized():
            cpus = int(ray.cluster_resources().get("CPU", cpus))
        start = time.perf_counter()
        run_dir = run_tournament(spec, progress=False, build_report=False)
        wall = time.perf_counter() - start
        stats = _utilization(run_dir)
        fit_wall = _fit_wall(run_dir)
    concurrency = cpus  # one CPU per trial
    return {
        "spec": spec.name if spec_path else f"2 PPO cells x ({trials_per_cell} tuning + {seeds} final), {env_steps} steps",
        "cpus": cpus,
        **stats,
        "wall_s": round(wall, 1),
        "utilization": round(stats["trial_cpu_s"] / (wall * cpus), 3),
        "utilization_fit": round(stats["trial_cpu_s"] / (fit_wall * cpus), 3) if fit_wall else None,
        # the engine's part alone: how much of the wall time the trial slots were occupied
        "slot_occupancy": round(stats["trial_wall_s"] / (wall * concurrency), 3),
        "overhead_per_trial_s": round((wall * concurrency - stats["trial_wall_s"]) / max(1, stats["trials"]), 2),
    }


def _fit_wall(run_dir: Path) -> float | None:
    """Seconds from the first trial's start to the last trial's end, from Tune's result files."""
    starts, ends = [], []
    for path in RunPaths(run_dir).tune_dir.rglob("result.json"):
        lines = path.read_text().splitlines()
        if not lines:
            continue
        last = json.loads(lines[-1])
        starts.append(last["timestamp"] - float(last.get("wall_seconds", 0.0)))
        ends.append(last["timestamp"])
    return (max(ends) - min(starts)) if starts else None
