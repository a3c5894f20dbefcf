"""A perturbation schedule (which gene, which kind, at which stage) run through the environment.

A time-0 set is scored exactly by the oracle; a schedule (a perturbation applied after some
stages, or pulses that release their gene) is a policy, so it is scored by running the steer
environment itself with that fixed policy on seeded cells: the same dynamics, pins, pulses,
backgrounds and starts the RL entries are trained on, with a binomial standard error.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.errors import UserInputError
from envs.simulate import FateDistribution

Scheduled = tuple[str, str, int]  # (gene, kind, stage)


@dataclass(frozen=True)
class ScheduleResult:
    distribution: FateDistribution
    schedule: tuple[Scheduled, ...]
    n_stages: int


def check_schedule(schedule: "list[Scheduled] | tuple", n_stages: int) -> tuple[Scheduled, ...]:
    """Each entry's stage in 0..n_stages-1 (a perturbation acts before its stage's updates)."""
    out = []
    for gene, kind, stage in schedule:
        if isinstance(stage, bool) or not isinstance(stage, (int, np.integer)) or not 0 <= int(stage) < n_stages:
            raise UserInputError(
                f"perturbation {gene}={kind}@{stage}: stage {stage!r} is beyond the last stage; "
                f"valid stages: 0..{n_stages - 1} (n_stages {n_stages})"
            )
        out.append((str(gene), str(kind), int(stage)))
    return tuple(sorted(out, key=lambda p: p[2]))


def simulate_schedule(env_config: dict[str, Any], schedule: "list[Scheduled] | tuple", n_cells: int = 2000,
                      seed: int = 0) -> ScheduleResult:
    """The fate distribution of cells steered by a fixed schedule in a steer env (`env_config`)."""
    from envs.cell_fate_env import NO_PERTURBATION, CellFateEnv

    if n_cells < 1:
        raise UserInputError(f"n_cells must be at least 1, got {n_cells!r}")
    env = CellFateEnv({**env_config, "task": "steer", "max_perturb": max(1, len(schedule), int(env_config.get("max_perturb") or 1))})
    plan = check_schedule(schedule, env.n_stages)
    actions = [(stage, env.encode_action(g, k)) for g, k, stage in plan]
    counts: Counter = Counter()
    for i in range(n_cells):
        obs, _ = env.reset(seed=seed + i)
        todo = list(actions)
        while True:
            if todo and todo[0][0] == env.stage:
                action = todo.pop(0)[1]
                if obs["action_mask"][action] == 0:  # the gene is pinned already or the background holds it
                    raise UserInputError(f"perturbation {env.decode_action(action)} at stage {env.stage} is not allowed "
                                         "there (the gene is perturbed already, or fixed by the background)")
            else:
                action = NO_PERTURBATION
            obs, _, done, _, info = env.step(action)
            if done:
                counts[info["fate"]] += 1
                break
    labels = env.world.fate_labels
    p = {f: counts[f] / n_cells for f in labels}
    se = {f: float(np.sqrt(p[f] * (1 - p[f]) / n_cells)) for f in labels}
    method = f"Monte-Carlo through the steer environment ({n_cells} cells, seeds {seed}..{seed + n_cells - 1})"
    dist = FateDistribution(probabilities=p, stderr=se, method=method, n_samples=n_cells)
    return ScheduleResult(dist, plan, env.n_stages)
