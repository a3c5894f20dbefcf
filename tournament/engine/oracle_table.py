"""The oracle table of a run (oracle.json): each (world, task, target, MAX_PERTURB) optimum,
computed once before the run, each entry within the spec's oracle.time_budget_s.

Which optimum an entry holds, in its `reference` field:
- "exact dynamic optimum": the best timed policy (perturbations at any stage, pulses released
  on time) by dynamic programming over the async chain's stage kernels (envs.dynamic_oracle),
  for worlds small enough; the static (time-0) optimum is kept beside it as `static_optimum`;
- "exact static optimum": the best time-0 set, every set enumerated on the exact chain (a timed
  policy may do better: it is the true optimum only where timing cannot help);
- "oracle lower bound": the best time-0 set a bounded search found (Monte-Carlo or beam);
- none, for pulsed perturbations on a world too large for the dynamic programme (a time-0 set
  with permanent pins is another task) and for ODE worlds (spec.dynamics: ode), so the
  leaderboard's reference is the best entry.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

from envs.errors import UserInputError
from tournament.engine.cells import Cell, task_env, task_single_start, task_start, task_world
from tournament.engine.rundir import atomic_write_json, read_json
from tournament.engine.spec import TournamentSpec

REFERENCE_DYNAMIC = "exact dynamic optimum"
REFERENCE_STATIC = "exact static optimum"
REFERENCE_BOUND = "oracle lower bound"
# A target the unperturbed cell already reaches this often is no steering task.
DEFAULT_OUTCOME_WARNING = 0.95


def _steer_entry(spec: TournamentSpec, cell: Cell) -> dict[str, Any]:
    from envs.dynamic_oracle import env_dynamic_optimum
    from envs.oracle import best_perturbations

    world = task_world(spec, cell)
    env = task_env(spec, cell)
    pulsed = env.get("pulse_stages") is not None
    entry: dict[str, Any] = {"optimum": None, "exact": False, "reference": "none", "baseline": {}, "best": []}
    if not pulsed:
        res = best_perturbations(world, cell.target, cell.max_perturb, tuple(spec.kinds), start=task_single_start(spec),
                                 top=10, condition=env.get("condition"), n_cells=spec.oracle.n_cells,
                                 time_budget_s=spec.oracle.time_budget_s)
        entry.update(optimum=float(res.optimum), exact=bool(res.exact), method=res.method, baseline=res.baseline,
                     best=res.best, stderr=res.stderr, static_optimum=float(res.optimum),
                     reference=REFERENCE_STATIC if res.exact else REFERENCE_BOUND)
    else:
        from envs.oracle import fate_distribution

        unperturbed = fate_distribution(world, [], start=task_single_start(spec), n_cells=spec.oracle.n_cells,
                                        condition=env.get("condition"))
        entry.update(baseline=unperturbed.probabilities,
                     method="no time-0 bound: pulsed perturbations (env.pulse_stages) are another task than "
                            "permanent time-0 sets")
    try:
        dyn = env_dynamic_optimum(env)
    except UserInputError as exc:  # too large or not async: the static answer stands
        entry["dynamic"] = f"not computed: {exc}"
    else:
        entry.update(optimum=float(dyn.value), exact=True, reference=REFERENCE_DYNAMIC, static_optimum=float(dyn.static_value),
                     method=dyn.method, dynamic_first_action=[list(p) for p in dyn.first_action], stderr=0.0)
    return entry


def _warn_if_default(cell: Cell, entry: dict[str, Any]) -> None:
    p = (entry.get("baseline") or {}).get(cell.target)
    if p is not None and math.isfinite(p) and p >= DEFAULT_OUTCOME_WARNING:
        warnings.warn(f"target {cell.target} of {cell.world_name}: the unperturbed cell already reaches it with "
                      f"probability {p:.3f} (>= {DEFAULT_OUTCOME_WARNING}); the task measures little", UserWarning,
                      stacklevel=2)


def compute_oracle(spec: TournamentSpec, cells: list[Cell], path: "str | Path") -> dict[str, dict]:
    """oracle.json entries for every (world, task, target, max_perturb) of the grid, computed once."""
    from envs.oracle import bayes_optimal_accuracy

    oracle: dict[str, dict] = read_json(path, {}) or {}
    for cell in cells:
        key = cell.oracle_key
        if key in oracle:
            continue
        try:
            if spec.dynamics == "ode":
                # the exact chains and the Bayes-optimal predictor are the Boolean world's, not its ODEs'
                entry = {"optimum": None, "exact": False, "reference": "none", "baseline": {}, "best": [],
                         "method": "none for ODE worlds: the oracle solves the Boolean chain; the reference is the best entry"}
            elif cell.task == "steer":
                entry = _steer_entry(spec, cell)
                _warn_if_default(cell, entry)
            else:
                res = bayes_optimal_accuracy(task_world(spec, cell), cell.max_perturb, tuple(spec.kinds),
                                             start=task_start(spec), condition=spec.env.get("condition"),
                                             n_cells=spec.oracle.n_cells, time_budget_s=spec.oracle.time_budget_s)
                entry = {"optimum": float(res["optimum"]), "exact": bool(res["exact"]), "method": res["method"],
                         "reference": REFERENCE_STATIC if res["exact"] else REFERENCE_BOUND,
                         "baseline": {}, "best": [], "stderr": res.get("stderr")}
        except UserInputError:
            raise
        except Exception as exc:  # the tournament is still worth running without an optimum
            entry = {"optimum": None, "exact": False, "reference": "none",
                     "method": f"unavailable: {type(exc).__name__}: {exc}", "baseline": {}, "best": []}
        oracle[key] = entry
        atomic_write_json(path, oracle)
    return oracle
