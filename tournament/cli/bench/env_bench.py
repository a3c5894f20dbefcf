"""Environment throughput: steps per second per world and task, and growth with network size."""

from __future__ import annotations

import time

import numpy as np

from envs.cell_fate_env import CellFateEnv
from envs.world import load_world
from envs.worlds.synthetic import random_world


def _steps_per_second(env: CellFateEnv, seconds: float, seed: int = 0) -> float:
    """Random valid actions for `seconds` of wall time; resets count as part of the cost."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    steps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(64):
            valid = np.flatnonzero(obs["action_mask"])
            obs, _, done, _, _ = env.step(int(valid[rng.integers(len(valid))]))
            steps += 1
            if done:
                obs, _ = env.reset()
    return steps / (time.perf_counter() - start)


def bench_env(
    worlds: tuple[str, ...] = ("myeloid", "tcell"),
    sizes: tuple[int, ...] = (10, 30, 100, 300),
    seconds: float = 2.0,
) -> list[dict]:
    rows: list[dict] = []
    for name in worlds:
        world = load_world(name)
        for task in ("steer", "predict"):
            env = CellFateEnv({"world": world, "task": task, "max_perturb": 2})
            rows.append(
                {
                    "world": name,
                    "genes": world.n_genes,
                    "task": task,
                    "steps_per_s": round(_steps_per_second(env, seconds), 1),
                }
            )
    for n in sizes:
        world = random_world(n, seed=0)
        env = CellFateEnv({"world": world, "task": "steer", "max_perturb": 2, "n_stages": 4})
        rows.append(
            {
                "world": world.name,
                "genes": n,
                "task": "steer",
                "steps_per_s": round(_steps_per_second(env, seconds), 1),
            }
        )
    return rows
