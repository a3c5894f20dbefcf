"""Monte-Carlo simulation of a world: fate distributions and simulated single-cell data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.errors import choices_error
from envs.network import UPDATE_SCHEMES, BooleanNetwork, Pins
from envs.world import World

Perturbation = tuple[str, str]  # (gene, kind)


@dataclass
class FateDistribution:
    """Fate -> probability, with the method that produced it and its standard errors."""

    probabilities: dict[str, float]
    stderr: dict[str, float]
    method: str
    n_samples: int = 0

    def to_json(self) -> dict:
        return {
            "fates": self.probabilities,
            "stderr": self.stderr,
            "method": self.method,
            "n_samples": self.n_samples,
        }


def check_perturbations(world: World, perturbations: "list[Perturbation] | tuple") -> list[Perturbation]:
    """Validate gene names and kinds; canonical kinds; one perturbation per gene."""
    return world.check_perturbations(perturbations)


def pinned_batch(
    world: World, perturbations, start: str | None, batch: int, condition: str | None = None
) -> tuple[np.ndarray, Pins, "BooleanNetwork"]:
    """`batch` copies of the start state with one checked perturbation set pinned, and the
    network it runs on (edge knockouts rewrite the network, gene perturbations pin bits)."""
    mask, value, edges = world.pin_bits(perturbations)
    pins = Pins(np.repeat(mask[None, :], batch, axis=0), np.repeat(value[None, :], batch, axis=0))
    states = pins.apply(np.repeat(world.start_state(start, condition)[None, :], batch, axis=0))
    return states, pins, world.network_for(edges)


def _compiled_async_run(network: BooleanNetwork, states: np.ndarray, pins: Pins, rng: np.random.Generator):
    """Async runs to the attractor through the batched environment's compiled loop (the same
    law as `network.run_to_attractor`: one uniform gene per update, a fixed-point check every
    n updates, at most 60 n), each cell's genes drawn up front; None without numba."""
    from envs.batched_env import _numba_kernels

    kernels = _numba_kernels()
    if kernels is None:
        return None
    _, finish = kernels
    cells, n = states.shape
    max_updates = 60 * n
    genes = rng.integers(0, n, size=(cells, max_updates), dtype=np.int16 if n < 1 << 15 else np.int32)
    state = np.ascontiguousarray(states, dtype=np.uint8).copy()
    rows = np.arange(cells, dtype=np.int64)
    pos = np.zeros(cells, dtype=np.int64)
    fill = np.full(cells, max_updates, dtype=np.int64)
    done = np.zeros(cells, dtype=np.int64)
    starved = np.zeros(cells, dtype=np.bool_)
    finish(state, rows, genes, pos, fill, done, max_updates, np.ascontiguousarray(pins.mask),
           network.inputs, network.n_inputs, network.tables, starved)
    return state


def monte_carlo_fates(
    world: World,
    perturbations: "list[Perturbation] | tuple" = (),
    start: str | None = None,
    n_cells: int = 2000,
    seed: int = 0,
    scheme: str | None = None,
    condition: str | None = None,
) -> FateDistribution:
    """Run `n_cells` independent cells to their attractors; count fates (binomial stderr).

    `scheme` defaults to the world's update scheme. A cell still moving after the step
    cap sits on a cyclic attractor (or a very long transient); its last state is classified.
    """
    perturbations = check_perturbations(world, perturbations)
    scheme = scheme or world.scheme
    if scheme not in UPDATE_SCHEMES:
        raise choices_error("update scheme", scheme, UPDATE_SCHEMES)
    rng = np.random.default_rng(seed)
    states, pins, network = pinned_batch(world, perturbations, start, n_cells, condition)
    final = _compiled_async_run(network, states, pins, rng) if scheme == "async" else None
    if final is None:
        final = network.run_to_attractor(states, rng, pins, scheme)
    counts = np.bincount(world.classify(final), minlength=len(world.fate_labels))
    p = counts / n_cells
    se = np.sqrt(p * (1 - p) / n_cells)
    return FateDistribution(
        probabilities={f: float(v) for f, v in zip(world.fate_labels, p)},
        stderr={f: float(v) for f, v in zip(world.fate_labels, se)},
        method=f"monte-carlo ({n_cells} cells, {scheme} updates, seed {seed})",
        n_samples=n_cells,
    )


def simulate_anndata(
    world: World,
    n_cells: int = 600,
    n_trajectories: int = 60,
    perturbations: "list[Perturbation] | tuple" = (),
    start: str | None = None,
    noise: float = 0.1,
    dropout: float = 0.1,
    seed: int = 0,
):
    """Simulated scRNA-seq of cells sampled along async trajectories from a progenitor.

    Each trajectory runs to its attractor; cells are snapshots at random times. The
    expression of an on gene is log-normal around 1, off genes sit near 0, plus
    Gaussian noise; a share `dropout` of entries is zeroed (scRNA-seq dropouts).
    `obs['pseudotime']` is the snapshot's update count divided by the trajectory's
    length to its attractor, `obs['cell_type']` the fate the snapshot's Boolean
    state is closest to. The true Boolean state is kept in `layers['boolean']`.
    """
    import anndata as ad
    import pandas as pd

    perturbations = check_perturbations(world, perturbations)
    rng = np.random.default_rng(seed)
    states, pins, net = pinned_batch(world, perturbations, start, n_trajectories)
    n = net.n_genes
    horizon = 40 * n
    path = np.empty((horizon + 1, n_trajectories, n), dtype=np.uint8)
    path[0] = states
    for t in range(horizon):
        states = net.step(states, rng, pins, world.scheme)
        path[t + 1] = states
    # A trajectory's length is the last time its state changed.
    changed = (path[1:] != path[:-1]).any(axis=2)
    last_change = np.where(changed.any(axis=0), horizon - np.argmax(changed[::-1], axis=0), 1)
    traj = rng.integers(0, n_trajectories, size=n_cells)
    # Snapshots up to a little past the attractor so mature cells are well sampled.
    times = np.minimum((rng.random(n_cells) * 1.15 * last_change[traj]).astype(int), horizon)
    boolean = path[times, traj]
    pseudotime = np.minimum(times / last_change[traj], 1.0)
    level = np.exp(rng.normal(0.0, 0.25, size=boolean.shape))
    expression = boolean * level + rng.normal(0.0, noise, size=boolean.shape)
    expression = np.clip(expression, 0.0, None)
    expression[rng.random(boolean.shape) < dropout] = 0.0
    labels = np.array(world.fate_labels)[world.classify(boolean)]
    obs = pd.DataFrame(
        {
            "pseudotime": pseudotime,
            "cell_type": pd.Categorical(labels),
            "trajectory": traj,
        },
        index=[f"cell{i}" for i in range(n_cells)],
    )
    adata = ad.AnnData(
        X=expression.astype(np.float32),
        obs=obs,
        var=pd.DataFrame(index=list(world.variables)),
        layers={"boolean": boolean.astype(np.uint8)},
    )
    adata.uns["world"] = world.name
    adata.uns["iroot"] = int(np.argmin(pseudotime))
    return adata
