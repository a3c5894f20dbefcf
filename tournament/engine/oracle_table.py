"""The oracle table of a run (oracle.json): each (world, task, target, MAX_PERTURB) optimum,
computed once before the run, each entry within the spec's oracle.time_budget_s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from envs.errors import UserInputError
from tournament.engine.cells import Cell
from tournament.engine.rundir import atomic_write_json, read_json
from tournament.engine.spec import TournamentSpec


# ---- oracle ---------------------------------------------------------------------------------------


def _oracle_start(spec: TournamentSpec) -> Any:
    start = spec.env.get("start")
    if isinstance(start, (list, tuple)):
        return start[0] if len(start) == 1 else list(start)
    return start


def compute_oracle(spec: TournamentSpec, cells: list[Cell], path: "str | Path") -> dict[str, dict]:
    """oracle.json entries for every (world, task, target, max_perturb) of the grid, computed once."""
    from envs.world import load_world

    oracle: dict[str, dict] = read_json(path, {}) or {}
    start = _oracle_start(spec)
    condition = spec.env.get("condition")
    budget, n_cells = spec.oracle.time_budget_s, spec.oracle.n_cells
    for cell in cells:
        key = cell.oracle_key
        if key in oracle:
            continue
        world = load_world(cell.world)
        try:
            from envs.oracle import bayes_optimal_accuracy, best_perturbations

            if cell.task == "steer":
                s = start if not isinstance(start, list) else start[0]
                res = best_perturbations(world, cell.target, cell.max_perturb, tuple(spec.kinds), start=s, top=10,
                                         condition=condition, n_cells=n_cells, time_budget_s=budget)
                entry = {"optimum": float(res.optimum), "exact": bool(res.exact), "method": res.method,
                         "baseline": res.baseline, "best": res.best, "stderr": res.stderr}
            else:
                res = bayes_optimal_accuracy(world, cell.max_perturb, tuple(spec.kinds), start=start,
                                             condition=condition, n_cells=n_cells, time_budget_s=budget)
                entry = {"optimum": float(res["optimum"]), "exact": bool(res["exact"]), "method": res["method"],
                         "baseline": {}, "best": [], "stderr": res.get("stderr")}
        except UserInputError:
            raise
        except Exception as exc:  # the tournament is still worth running without an optimum
            entry = {"optimum": None, "exact": False, "method": f"unavailable: {type(exc).__name__}: {exc}",
                     "baseline": {}, "best": []}
        oracle[key] = entry
        atomic_write_json(path, oracle)
    return oracle
