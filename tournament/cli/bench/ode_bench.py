"""ODE worlds: integrator and environment speed (`ode`), and the BoolODE comparison (`ode_boolode`).

`ode`: cells x steps per second of the Euler-Maruyama integrator on the 61-variable Cacace
T-cell model (../shared/data; the built-in tcell world where it is absent), numpy and numba
engines at several batch sizes, side by side in one run; and env steps/s of the ODE env
(steer; discrete and Box actions) next to the Boolean CellFateEnv on the same world, random
valid actions, resets included.

`ode_boolode`: `envs.ode.beeline.compare_with_beeline` on HSC, mCAD, VSC and GSD: per
terminal branch, BoolODE's fraction of cells and ours, the tolerance, and the largest
difference over genes of the per-branch mean and variance (tolerances in that module).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from envs.cell_fate_env import CellFateEnv
from envs.ode.beeline import BEELINE_MODELS, TOLERANCE, compare_with_beeline
from envs.ode.env import OdeCellFateEnv
from envs.ode.integrate import simulate
from envs.ode.world import ode_world
from envs.world import World, load_world
from tournament.cli.bench.env_bench import _steps_per_second
from tournament.cli.bench.model_bench import cacace_world

SHARED_DATA = Path(__file__).resolve().parents[4] / "shared" / "data"  # ../shared/data next to the repository
BEELINE = SHARED_DATA / "beeline-boolode"
CACACE = SHARED_DATA / "cacace2020-tcell" / "bbm196_model.bnet"


def _tcell_model() -> tuple[str, World]:
    if CACACE.is_file():
        return "cacace2020 (bbm196)", cacace_world(CACACE.parent)
    return "tcell (built-in; cacace2020 absent)", load_world("tcell")


def _cell_steps_per_s(ow, engine: str, n_cells: int, seconds: float) -> float:
    rng = np.random.default_rng(0)
    y = ow.start(n_cells=n_cells)
    simulate(ow.model, y, 10 * ow.params.dt, rng, engine=engine)  # compile / warm up
    steps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        y = simulate(ow.model, y, 20 * ow.params.dt, rng, engine=engine)
        steps += 20
    return n_cells * steps / (time.perf_counter() - start)


def _continuous_steps_per_s(env: OdeCellFateEnv, seconds: float, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    steps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, done, _, _ = env.step(rng.uniform(-1, 1, env.n_genes).astype(np.float32))
        steps += 1
        if done:
            env.reset()
    return steps / (time.perf_counter() - start)


def bench_ode(batch_sizes: tuple[int, ...] = (1, 100, 1000), seconds: float = 2.0) -> list[dict]:
    label, world = _tcell_model()
    rows: list[dict] = []
    for proteins in (False, True):
        ow = ode_world(world, {"proteins": proteins})
        for n_cells in batch_sizes:
            row = {"measure": "integrator cells x steps/s", "model": label, "variables": world.network.n_genes,
                   "proteins": proteins, "cells": n_cells}
            for engine in ("numpy", "numba"):
                row[engine] = round(_cell_steps_per_s(ow, engine, n_cells, seconds))
            row["numba / numpy"] = round(row["numba"] / row["numpy"], 2)
            rows.append(row)
    for name, w in (("myeloid", load_world("myeloid")), (label, world)):
        target = w.fates[-1]
        boolean = _steps_per_second(CellFateEnv({"world": w, "target": target, "max_perturb": 2}), seconds)
        discrete = _steps_per_second(OdeCellFateEnv({"world": w, "target": target, "max_perturb": 2}), seconds)
        box = _continuous_steps_per_s(OdeCellFateEnv({"world": w, "target": target, "action": "continuous"}), seconds)
        rows.append({"measure": "env steps/s (steer)", "model": name, "variables": w.network.n_genes,
                     "boolean env": round(boolean, 1), "ode discrete": round(discrete, 1), "ode box": round(box, 1),
                     "ode discrete / boolean": round(discrete / boolean, 3)})
    return rows


def bench_ode_boolode(n_traj: int = 1000, seed: int = 0) -> list[dict]:
    if not (BEELINE / "models").is_dir():
        return [{"model": "(skipped)", "note": f"BEELINE data not found at {BEELINE}"}]
    rows: list[dict] = []
    for name in BEELINE_MODELS:
        out = compare_with_beeline(BEELINE / "models", BEELINE / "simulated" / f"{name}_2000_0", name,
                                   n_traj=n_traj, seed=seed)
        for r in out["rows"]:
            rows.append({
                "model": name, "branch": r["branch"], "fraction BoolODE": round(r["fraction_boolode"], 3),
                "fraction ours": round(r["fraction_ours"], 3), "tol": round(r["fraction_tol"], 3),
                "fraction ok": r["fraction_ok"], "max |d mean|": r["max_mean_diff"], "max |d var|": r["max_var_diff"],
                "genes mean ok": r["genes_mean_ok"], "genes var ok": r["genes_var_ok"],
                "BoolODE sims": out["n_sims_boolode"], "our sims": out["n_traj"],
                "sim s": round(out["seconds"], 1),
            })
    rows.append({"model": "tolerances", "note": f"mean {TOLERANCE['mean']} x_max, variance {TOLERANCE['variance']} x_max^2, "
                 f"fraction {TOLERANCE['fraction_z']} sd of a difference of two proportions"})
    return rows
