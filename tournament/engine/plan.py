"""What a tournament costs before it runs: cells, trials, env steps and core-hours.

A short calibration trains each distinct (world, task, algorithm, module) of the grid for
about three seconds (CALIBRATION_BUDGET_S) in this process (one CPU, one torch thread) and measures env steps per
second of training, sampling and updates together, and the cost of the greedy evaluation
episodes; it runs with each algorithm's steady-state settings (SAC: gradient steps from the first
env step, as in the rest of a trial, in 64-step iterations; evaluations, counted per calibrated
iteration, are then over-counted 4x for SAC, under 1% of a SAC trial at the seed grid's settings).
A trial's estimate is its env steps at that rate, its evaluations, and the
engine's fixed cost per trial (Ray Tune start-up of a trial, about 1.6 s on this kind of
machine; docs/anchors.md). A cell's core-hours are its trials (tuning + final seeds)
times that, times the CPUs a trial reserves (1 + env runners).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

from tournament.engine.cells import Cell, expand_grid
from tournament.engine.spec import ParamSpec, TournamentSpec, resolved_space

TRIAL_OVERHEAD_S = 1.6
CALIBRATION_BUDGET_S = 3.0


@dataclass(frozen=True)
class Calibration:
    """Measured speed of one (world, task, algorithm, module)."""

    env_steps_per_s: float
    eval_episode_s: float
    iterations: int
    env_steps: int


@dataclass(frozen=True)
class CellCost:
    cell_id: str
    trials: int
    env_steps: int
    trial_s: float
    core_hours: float


def _sample(p: ParamSpec):
    if p.fixed:
        return p.value
    if p.choices is not None:
        return p.choices[0]
    mid = math.sqrt(p.low * p.high) if p.log and p.low > 0 else (p.low + p.high) / 2
    return int(round(mid)) if p.integer else mid


def _optimizer_hparams(spec: TournamentSpec, optimizer: str) -> dict:
    """The middle of the cell's search space (lr_ratio turned into lr_max as the search does)."""
    values = {k: _sample(p) for k, p in resolved_space(spec, optimizer).items()}
    if "lr_ratio" in values:
        values["lr_max"] = values["lr_min"] * values.pop("lr_ratio")
    return values


def calibration_plan(spec: TournamentSpec, cell: Cell):
    """The trial a calibration trains: the cell's, at the middle of its search space, with the
    algorithm's steady-state settings (algorithms.registry.STEADY_STATE_HPARAMS)."""
    from algorithms.registry import STEADY_STATE_HPARAMS

    steady = dict(STEADY_STATE_HPARAMS.get(cell.algorithm, {}))
    return cell.trial_plan(spec, _optimizer_hparams(spec, cell.optimizer), steady, seed=0)


def calibrate(spec: TournamentSpec, cell: Cell, budget_s: float = CALIBRATION_BUDGET_S) -> Calibration:
    """Train `cell` for about `budget_s` seconds (at least one iteration) and evaluate a few episodes.

    The build is not timed; the first iteration is, so an algorithm whose one iteration is
    longer than the budget (SAC at the seed's settings) costs one iteration, not more.
    """
    import torch

    from tournament.engine.trainable import load_runner

    torch.set_num_threads(1)
    runner_cls = load_runner(spec.execution.runner)
    runner = runner_cls(calibration_plan(spec, cell))
    try:
        start = time.perf_counter()
        done = 0
        while not runner.done and (done == 0 or time.perf_counter() - start < budget_s):
            runner.train_iteration()
            done += 1
        seconds = time.perf_counter() - start
        steps = runner.env_steps
        episodes = 4
        t0 = time.perf_counter()
        runner.evaluate(episodes, spec.evaluation.seed)
        eval_s = (time.perf_counter() - t0) / episodes
    finally:
        runner.stop()
    rate = steps / seconds if seconds > 0 and steps > 0 else math.nan
    return Calibration(rate, eval_s, done, steps)


def trial_seconds(spec: TournamentSpec, cal: Calibration, final: bool, scale: float = 1.0) -> float:
    steps = spec.budget.env_steps * scale
    iterations = max(1.0, steps / max(cal.env_steps / max(cal.iterations, 1), 1.0))
    evals = math.ceil(iterations / spec.evaluation.every_iterations) * spec.evaluation.episodes
    evals += spec.final.eval_episodes if final else spec.evaluation.episodes
    return steps / cal.env_steps_per_s + evals * cal.eval_episode_s + TRIAL_OVERHEAD_S


def plan(spec: TournamentSpec, scale: float = 1.0, budget_s: float = CALIBRATION_BUDGET_S,
         progress=None) -> dict:
    """Per-cell and total estimates; `scale` multiplies every trial's env steps."""
    cells = expand_grid(spec)
    cpus = 1 + spec.resources.num_env_runners
    calibrations: dict[tuple, Calibration] = {}
    rows: list[CellCost] = []
    for cell in cells:
        key = (cell.world, cell.task, cell.algorithm, cell.module)
        if key not in calibrations:
            if progress:
                progress(f"calibrating {cell.world_name} {cell.task} {cell.algorithm} {cell.module} ...")
            calibrations[key] = calibrate(spec, cell, budget_s)
        cal = calibrations[key]
        tuning, final = spec.hpo.trials_per_cell, spec.final.seeds
        seconds = tuning * trial_seconds(spec, cal, False, scale) + final * trial_seconds(spec, cal, True, scale)
        trials = tuning + final
        rows.append(CellCost(cell.cell_id, trials, int(trials * spec.budget.env_steps * scale),
                             seconds / max(trials, 1), seconds * cpus / 3600))
    return {
        "spec": spec.name,
        "scale": scale,
        "cells": len(rows),
        "trials": sum(r.trials for r in rows),
        "env_steps": sum(r.env_steps for r in rows),
        "core_hours": sum(r.core_hours for r in rows),
        "calibration": {"/".join(k[1:] if k[0] == spec.world[0] else k): asdict(c) for k, c in calibrations.items()},
        "per_cell": [asdict(r) for r in rows],
    }
