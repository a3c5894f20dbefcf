"""The baselines table of a run (baselines.json): what a biologist would try before RL, per steer task.

For every (world, steer, target, MAX_PERTURB) of the grid, each baseline of the spec's
`baselines.names` (algorithms.baselines) searches time-0 perturbation sets within its budget in
simulated cells and reports its best set, its value re-scored on fresh cells, the budget it
used and its anytime trace. Computed once before the run, like the oracle; the leaderboard
shows each as a row (entry "baseline"). A static time-0 set cannot express pulsed
perturbations, so on a pulsed task each baseline is a row with that reason and no value.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from envs.errors import UserInputError
from tournament.engine.cells import Cell, task_env, task_single_start, task_world
from tournament.engine.rundir import atomic_write_json, read_json
from tournament.engine.spec import TournamentSpec

PULSED_REASON = "a time-0 set with permanent pins cannot express pulsed perturbations (env.pulse_stages)"


def _rows(spec: TournamentSpec, cell: Cell) -> list[dict[str, Any]]:
    from algorithms.baselines import run_baseline

    cfg = spec.baselines
    env = task_env(spec, cell)
    if env.get("pulse_stages") is not None:
        return [{"name": n, "value": None, "reason": PULSED_REASON, "best": []} for n in cfg.names]
    world = task_world(spec, cell)
    start = task_single_start(spec)
    rows = []
    for name in cfg.names:
        extra = {"time_limit_s": cfg.control_time_s} if name == "aeon_control" else {}
        t0 = time.perf_counter()
        try:
            res = run_baseline(name, world, cell.target, cell.max_perturb, kinds=tuple(spec.kinds), start=start,
                               condition=env.get("condition"), budget_cells=cfg.budget_cells, n_cells=cfg.n_cells,
                               seed=cfg.seed, **extra)
        except UserInputError:
            raise
        except Exception as exc:  # one baseline failing must not cost the tournament
            rows.append({"name": name, "value": None, "best": [], "wall_s": time.perf_counter() - t0,
                         "reason": f"failed: {type(exc).__name__}: {exc}"})
            continue
        rows.append(_json_safe(res.to_json()))
    return rows


def _json_safe(value: Any) -> Any:
    """NaN and infinities (a baseline without a set, an undefined error) as null: strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def compute_baselines(spec: TournamentSpec, cells: list[Cell], path: "str | Path") -> dict[str, dict]:
    """baselines.json: key (as oracle.json's) -> the task's typed columns and one result per baseline."""
    table: dict[str, dict] = read_json(path, {}) or {}
    # The baselines score sets on the Boolean world's simulator; an ODE world has none yet.
    for cell in cells if spec.baselines.names and spec.dynamics != "ode" else []:
        key = cell.oracle_key
        if cell.task != "steer" or key in table:
            continue
        table[key] = {"world": cell.world_name, "task": cell.task, "target": cell.target,
                      "max_perturb": int(cell.max_perturb), "results": _rows(spec, cell)}
        atomic_write_json(path, table)
    if not Path(path).exists():
        atomic_write_json(path, table)  # an empty table says no baselines were asked for
    return table
