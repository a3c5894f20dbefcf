"""Vectorised env throughput: SyncVectorEnv of CellFateEnvs against BatchedCellFateEnv.

Both step `num_envs` copies of the same config with the same random valid actions (one
uniform pick per env from its action mask, drawn the same way for both), resets
included (NEXT_STEP autoreset). Repetitions alternate between the two so that machine
load hits both alike; each figure is the median of the repetitions, env steps per second
(vector steps x num_envs). Worlds: myeloid, tcell and, when ../shared/data holds it, the
61-variable Cacace 2020 T-cell model imported bare (its attractors as fates).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

from envs.batched_env import BatchedCellFateEnv
from envs.cell_fate_env import CellFateEnv
from envs.world import World, load_world

CACACE = Path(__file__).resolve().parents[3] / "shared" / "data" / "cacace2020-tcell" / "bbm196_model.bnet"


def _steps_per_second(envs: gym.vector.VectorEnv, seconds: float, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    obs, _ = envs.reset(seed=seed)
    steps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(16):
            actions = (rng.random(obs["action_mask"].shape) * obs["action_mask"]).argmax(axis=1)
            obs, *_ = envs.step(actions)
            steps += envs.num_envs
    return steps / (time.perf_counter() - start)


def _worlds() -> list[tuple[str, World]]:
    out = [(name, load_world(name)) for name in ("myeloid", "tcell")]
    if CACACE.is_file():
        out.append(("cacace2020 (bbm196)", load_world(str(CACACE))))
    return out


def bench_env_batched(
    seconds: float = 2.0,
    num_envs: int = 32,
    repeats: int = 3,
    tasks: tuple[str, ...] = ("steer", "predict"),
) -> list[dict]:
    rows: list[dict] = []
    for name, world in _worlds():
        for task in tasks:
            config = {"world": world, "task": task, "max_perturb": 2}
            sync = gym.vector.SyncVectorEnv([lambda: CellFateEnv(config) for _ in range(num_envs)])
            batched = BatchedCellFateEnv(config, num_envs)
            _steps_per_second(batched, 0.05)  # compiles (or loads) the update loop
            sync_rates, batched_rates = [], []
            for r in range(repeats):
                sync_rates.append(_steps_per_second(sync, seconds, seed=r))
                batched_rates.append(_steps_per_second(batched, seconds, seed=r))
            s, b = statistics.median(sync_rates), statistics.median(batched_rates)
            rows.append(
                {
                    "world": name,
                    "variables": world.network.n_genes,
                    "genes": world.n_genes,
                    "task": task,
                    "num_envs": num_envs,
                    "sync_steps_per_s": round(s, 1),
                    "batched_steps_per_s": round(b, 1),
                    "ratio": round(b / s, 2),
                    "engine": batched.engine,
                }
            )
    return rows
