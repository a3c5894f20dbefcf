"""Helpers the tournament, fault and cluster tests share: run-table rows, spec overrides, the
tiny PPO spec, and a driver killed once some trials have finished."""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def with_changes(data: dict, changes: dict) -> dict:
    """Override top-level spec keys; a dict value updates a dict section instead of replacing it."""
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and isinstance(data.get(key), dict) else value
    return data


def tiny_ppo_spec(name: str, storage: Path | str, **changes) -> dict:
    """Two PPO + MLP cells (adam, asgd_adam), 400 env steps in batches of 200, 2 tuning trials and 2 final seeds."""
    data = {
        "name": name,
        "world": "myeloid",
        "target": "Mo",
        "grid": {"algorithm": ["PPO"], "optimizer": ["adam", "asgd_adam"], "max_perturb": [2], "module": ["mlp"]},
        "algorithm_settings": {"PPO": {"train_batch_size": 200, "minibatch_size": 100, "num_epochs": 1,
                                       "num_envs_per_env_runner": 4}},
        "budget": {"env_steps": 400},
        "hpo": {"trials_per_cell": 2, "seed": 0},
        "final": {"seeds": 2, "eval_episodes": 8},
        "evaluation": {"every_iterations": 1, "episodes": 8},
        "execution": {"storage": str(storage), "max_failures": 1},
    }
    return with_changes(data, changes)


def kill_driver_after_trials(spec_file: Path, run: Path, min_trials: int = 2, timeout: float = 400) -> None:
    """Run `tournament run SPEC` in its own process group and SIGKILL it once `min_trials`
    rows are in trials.csv; fails if the driver ended by itself first."""
    driver = subprocess.Popen([sys.executable, "-m", "tournament.cli.main", "run", str(spec_file), "--quiet"],
                              start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and driver.poll() is None:
            if (run / "trials.csv").is_file() and len(rows(run / "trials.csv")) >= min_trials:
                break
            time.sleep(0.2)
        assert driver.poll() is None, driver.stderr.read().decode()[-2000:]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
        driver.stderr.close()
