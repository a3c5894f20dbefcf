"""Continuous SAC on an ODE world against SB3's SAC at matched settings (`tournament bench ode_sac`).

Both sides train SAC on the same env class (envs.ode.env.OdeCellFateEnv: the myeloid world's
stochastic ODEs, steer to the last fate, a Box of gene weights), one env, one torch thread each,
with the seed's SB3 settings: buffer 1e6, batch 256, tau 0.005, one gradient step per env step,
learning starts at 100 steps, entropy coefficient learned (auto), lr 3e-4 on every optimizer, two
hidden layers of 64 tanh units. SB3 reads the flat node features (`observation: vector`), ours the
same features with the gene mask (`flat` for the MLP module, `graph` for the GNN). Sides alternate
over the repetitions (SB3 first in even ones); the row's ratio is the median of ours over the
median of SB3's env steps per second. Construction (Ray, RLlib's algorithm) is not timed, SB3's
learn() is, whole.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from algorithms.trial import TrialRunner
from algorithms.trial_plan import TrialPlan
from envs.ode.env import OdeCellFateEnv

WORLD = "myeloid"
SETTINGS = {"buffer_size": 1_000_000, "batch_size": 256, "tau": 0.005, "train_freq": 1, "gradient_steps": 1,
            "learning_starts": 100, "ent_coef": "auto", "gamma": 0.99}
LR = 3e-4
HIDDEN, LAYERS = 64, 2


def _ours(module: str, env_steps: int, seed: int) -> float:
    plan = TrialPlan(world=WORLD, dynamics="ode", action="continuous", algorithm="SAC", module=module,
                     optimizer="adam", optimizer_hparams={"lr": LR}, env_steps=env_steps, seed=seed,
                     module_options={"hidden": HIDDEN, "layers": LAYERS},
                     algo_hparams={**SETTINGS, "num_envs_per_env_runner": 1, "steps_per_iteration": 250})
    runner = TrialRunner(plan)
    try:
        start = time.perf_counter()
        while not runner.done:
            runner.train_iteration()
        return runner.env_steps / (time.perf_counter() - start)
    finally:
        runner.stop()


def _sb3(env_steps: int, seed: int) -> float:
    from stable_baselines3 import SAC

    env = OdeCellFateEnv({"world": WORLD, "action": "continuous", "observation": "vector"})
    model = SAC("MlpPolicy", env, learning_rate=LR, seed=seed, verbose=0, device="cpu",
                policy_kwargs={"net_arch": [HIDDEN] * LAYERS, "activation_fn": torch.nn.Tanh}, **SETTINGS)
    start = time.perf_counter()
    model.learn(env_steps)
    return env_steps / (time.perf_counter() - start)


def bench_ode_sac(env_steps: int = 1000, repetitions: int = 3, modules: tuple[str, ...] = ("mlp", "gnn")) -> list[dict[str, Any]]:
    """One row per module: ours and SB3's median env steps/s, the ratio and the per-repetition ratios."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rates: dict[str, list[float]] = {m: [] for m in (*modules, "sb3")}
        for rep in range(repetitions):
            sides = ["sb3", *modules] if rep % 2 == 0 else [*modules, "sb3"]
            for side in sides:
                rates[side].append(_sb3(env_steps, rep) if side == "sb3" else _ours(side, env_steps, rep))
    finally:
        torch.set_num_threads(threads)
    sb3 = statistics.median(rates["sb3"])
    settings = ", ".join(f"{k}={v}" for k, v in SETTINGS.items())
    return [{
        "algorithm": "SAC (continuous)", "module": m, "world": f"{WORLD} (ODE)", "env_steps": env_steps,
        "repetitions": repetitions, "ours_steps_per_s": round(statistics.median(rates[m]), 1),
        "sb3_steps_per_s": round(sb3, 1), "ratio_vs_sb3": round(statistics.median(rates[m]) / sb3, 3),
        "ratios": [round(a / b, 3) for a, b in zip(rates[m], rates["sb3"])],
        "settings": f"{settings}, lr={LR}, {LAYERS}x{HIDDEN} tanh, 1 env, 1 thread",
    } for m in modules]
