"""Validation against BoolODE: simulate a BEELINE curated model as BEELINE did, compare branches.

BEELINE's curated data sets (Pratapa et al. 2020; `../shared/data/beeline-boolode`) were
simulated by BoolODE from `models/NAME.txt` with its defaults: the protein layer, m = 20,
l_x = 10, r = 10, l_p = 1, n = 10, K = p_max / 2, noise c * sqrt(|y|) with c = 10 and
increments of standard deviation h (our `noise: boolode`, amplitude 1.0), step
h = tmax / (tmax / 0.01 - 1), tmax = 8 (HSC, GSD) or 5 (mCAD, VSC). Starts: mRNA at the
`NAME_ics.txt` values for the genes listed and 0.01 for the others (all 1.0 without the
file), proteins at r / l_p times their mRNA. BoolODE re-draws a simulation in which, at some
time point, every gene is below 0.1 x_max; so do we. Each BEELINE cell is one time point of
one simulation; `DeterministicPT.csv` names the branch (trajectory cluster) of its
simulation.

Comparison. Each of our trajectories is assigned to the branch whose late cells (the last
quarter of the time span) have the nearest mean mRNA profile to its final state; cells are
its states on the time grid (uniform in time, as BEELINE's samples). Per branch: the fraction
of cells, and each gene's mean and variance over the branch's cells. Tolerances (TOLERANCE):
a branch fraction within the 95% interval of a difference of two proportions (BEELINE's and
ours, each over its number of simulations); a gene's mean within 0.1 x_max, its variance
within 0.05 x_max**2.
"""

from __future__ import annotations

import ast
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from envs.errors import UserInputError
from envs.network import BooleanNetwork
from envs.ode.integrate import simulate
from envs.ode.model import OdeModel
from envs.ode.params import OdeParams

BEELINE_MODELS = {"HSC": 8.0, "mCAD": 5.0, "VSC": 5.0, "GSD": 8.0}  # name -> BoolODE simulation_time
BOOLODE_STEP = 0.01
DEFAULT_ICS = 1.0  # every gene's start without an ics file
OTHER_ICS = 0.01  # genes an ics file does not list
RETRY_FLOOR = 0.1  # a time point with every gene below this x_max fraction is re-drawn
LATE = 0.75  # the branch profile uses cells past this fraction of the time span
TOLERANCE = {"fraction_z": 1.96, "mean": 0.1, "variance": 0.05}  # see the module docstring


def boolode_params(tmax: float, **overrides) -> OdeParams:
    """BoolODE's settings for a simulation of `tmax` time units (module docstring)."""
    n_points = int(tmax / BOOLODE_STEP)
    return OdeParams(**{"proteins": True, "noise": "boolode", "dt": tmax / (n_points - 1), **overrides})


def read_beeline_model(folder: "str | Path", name: str) -> tuple[BooleanNetwork, dict[str, float]]:
    """(network, initial mRNA per gene listed in NAME_ics.txt) from BEELINE's `models/` folder."""
    folder = Path(folder)
    path = folder / f"{name}.txt"
    if not path.is_file():
        raise UserInputError(f"BEELINE model not found: {path}")
    rules = []
    for line in path.read_text().splitlines()[1:]:
        if line.strip():
            gene, rule = line.split("\t", 1)
            rules.append((gene.strip(), rule.strip()))
    network = BooleanNetwork.from_rules(rules, where=str(path), free_inputs=True)
    ics: dict[str, float] = {}
    ics_path = folder / f"{name}_ics.txt"
    if ics_path.is_file():
        row = ics_path.read_text().splitlines()[1].split("\t")
        ics = dict(zip(ast.literal_eval(row[0]), map(float, ast.literal_eval(row[1]))))
    return network, ics


@dataclass(frozen=True)
class BeelineData:
    genes: tuple[str, ...]
    expression: np.ndarray  # (cells, genes)
    times: np.ndarray  # (cells,)
    simulation: np.ndarray  # (cells,) BoolODE simulation id
    branch: np.ndarray  # (cells,) branch index
    n_branches: int


def read_beeline_data(folder: "str | Path") -> BeelineData:
    """ExpressionData.csv (genes x cells) and DeterministicPT.csv (branch per cell) of one data set."""
    import pandas as pd

    folder = Path(folder)
    expr = pd.read_csv(folder / "ExpressionData.csv", index_col=0)
    det = pd.read_csv(folder / "DeterministicPT.csv", index_col=0).reindex(expr.columns)
    cells = list(expr.columns)
    sims = np.array([int(c.split("_", 1)[0][1:]) for c in cells])
    times = np.array([float(c.split("_", 1)[1].replace("_", ".")) for c in cells])
    return BeelineData(tuple(expr.index), expr.values.T.astype(np.float64), times, sims,
                       det.notna().values.argmax(axis=1), det.shape[1])


def boolode_start(model: OdeModel, ics: dict[str, float], n_cells: int) -> np.ndarray:
    genes = model.network.genes
    unknown = sorted(set(ics) - set(genes))
    if unknown:
        raise UserInputError(f"initial condition names unknown gene {unknown[0]!r}; genes: {', '.join(genes)}")
    x = np.array([ics.get(g, OTHER_ICS) if ics else DEFAULT_ICS for g in genes])
    return np.repeat(model.state_from_mrna(x[None, :]), n_cells, axis=0)


def simulate_like_boolode(model: OdeModel, ics: dict[str, float], tmax: float, n_traj: int, seed: int,
                          record_every: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """(T, n_traj, vars) mRNA every `record_every` steps and the (T,) times; trajectories that
    BoolODE would re-draw are re-drawn (at most 20 rounds)."""
    rng = np.random.default_rng(seed)
    x_max = model.params.x_max
    out = None
    todo = np.arange(n_traj)
    for _ in range(20):
        _, frames = simulate(model, boolode_start(model, ics, len(todo)), tmax, rng, record_every=record_every)
        mrna = model.mrna(frames)
        if out is None:
            out = mrna.copy()
        else:
            out[:, todo] = mrna
        bad = (mrna[1:].max(axis=2) < RETRY_FLOOR * x_max).any(axis=0)
        todo = todo[bad]
        if not len(todo):
            break
    times = np.arange(out.shape[0]) * record_every * model.params.dt
    return out, times


def compare_with_beeline(model_dir: "str | Path", data_dir: "str | Path", name: str, *, n_traj: int = 500,
                         seed: int = 0, params: "OdeParams | None" = None) -> dict:
    """Our branch fractions and per-branch gene means / variances next to BoolODE's (module docstring)."""
    tmax = BEELINE_MODELS[name]
    network, ics = read_beeline_model(model_dir, name)
    model = OdeModel.from_network(network, params or boolode_params(tmax))
    data = read_beeline_data(data_dir)
    order = [network.genes.index(g) for g in data.genes]
    start = time.perf_counter()
    mrna, times = simulate_like_boolode(model, ics, tmax, n_traj, seed)
    seconds = time.perf_counter() - start
    mrna = mrna[:, :, order]  # genes in the data's order (BEELINE's cells include t = 0)
    x_max = model.params.x_max
    late = data.times > LATE * data.times.max()
    centroids = np.array([data.expression[late & (data.branch == b)].mean(axis=0) for b in range(data.n_branches)])
    ours = np.argmin(((mrna[-1][:, None, :] - centroids[None]) ** 2).sum(axis=2), axis=1)  # per trajectory
    n_sims = len(np.unique(data.simulation))
    rows = []
    for b in range(data.n_branches):
        theirs_cells = data.expression[data.branch == b]
        ours_cells = mrna[:, ours == b].reshape(-1, mrna.shape[2])
        p_theirs, p_ours = float(np.mean(data.branch == b)), float(np.mean(ours == b))
        pooled = (p_theirs * n_sims + p_ours * n_traj) / (n_sims + n_traj)
        tol = TOLERANCE["fraction_z"] * np.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / n_sims + 1 / n_traj))
        row = {"model": name, "branch": b, "fraction_boolode": p_theirs, "fraction_ours": p_ours,
               "fraction_tol": float(tol), "fraction_ok": abs(p_theirs - p_ours) <= tol}
        if len(ours_cells):
            dmean = np.abs(theirs_cells.mean(axis=0) - ours_cells.mean(axis=0))
            dvar = np.abs(theirs_cells.var(axis=0) - ours_cells.var(axis=0))
            row.update(max_mean_diff=float(dmean.max()), max_var_diff=float(dvar.max()),
                       genes_mean_ok=f"{int((dmean <= TOLERANCE['mean'] * x_max).sum())}/{len(dmean)}",
                       genes_var_ok=f"{int((dvar <= TOLERANCE['variance'] * x_max ** 2).sum())}/{len(dvar)}")
        else:
            row.update(max_mean_diff=None, max_var_diff=None, genes_mean_ok="0 cells", genes_var_ok="0 cells")
        rows.append(row)
    steps = int(round(tmax / model.params.dt))
    return {"rows": rows, "seconds": seconds, "cell_steps_per_s": n_traj * steps / seconds, "n_traj": n_traj,
            "n_sims_boolode": n_sims}
