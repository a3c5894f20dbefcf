"""Greedy evaluation of a trained module on fresh CellFateEnv episodes, run in lockstep.

All episodes advance together: one batched forward pass per step for every
episode still running, so evaluating 100 episodes costs about as many forward
passes as one episode has steps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ray.rllib.core.columns import Columns

from envs.cell_fate_env import CellFateEnv


def greedy_actions(module: Any, observations: list[dict[str, np.ndarray]]) -> np.ndarray:
    """argmax of the module's masked logits for a list of observations."""
    device = next(module.parameters()).device
    obs = {
        key: torch.as_tensor(np.stack([o[key] for o in observations]), device=device)
        for key in observations[0]
    }
    logits = module.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
    return logits.argmax(dim=-1).cpu().numpy()


def evaluate_module(module: Any, env_config: dict, n_episodes: int, seed: int) -> dict[str, Any]:
    """Score (steer: success rate; predict: mean per-stage accuracy), mean return, and per
    episode the perturbations used (with the stage each was applied at) and the fate reached;
    episode i is seeded seed + i."""
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    envs = [CellFateEnv(dict(env_config)) for _ in range(n_episodes)]
    obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]
    returns = np.zeros(n_episodes)
    finals: list[dict[str, Any] | None] = [None] * n_episodes
    active = list(range(n_episodes))
    was_training = module.training
    module.eval()
    try:
        while active:
            actions = greedy_actions(module, [obs[i] for i in active])
            still = []
            for i, action in zip(active, actions):
                obs[i], reward, terminated, truncated, info = envs[i].step(int(action))
                returns[i] += reward
                if terminated or truncated:
                    finals[i] = info
                else:
                    still.append(i)
            active = still
    finally:
        module.train(was_training)
    task = envs[0].task
    if task == "steer":
        score = float(np.mean([bool(f.get("success", False)) for f in finals]))
    else:
        score = float(np.mean([f.get("accuracy", 0.0) for f in finals]))
    return {
        "score": score,
        "episode_return_mean": float(returns.mean()),
        # [gene, kind, stage]: the stage it was applied at (0 = before the cell developed)
        "perturbation_sets": [[[g, k, int(st)] for (g, k), st in zip(f.get("perturbations", []),
                                                                      f.get("perturbation_stages") or [])]
                              if f.get("perturbation_stages") else [[g, k] for g, k in f.get("perturbations", [])]
                              for f in finals],
        "fates": [f.get("fate") for f in finals],
    }
