"""An ODE world: a World's network as stochastic ODEs, with its fates read from expression.

Fates are the World's own markers applied to the binarized profile: a variable is on where
its mRNA exceeds half the fully-on steady state (m / l_x / 2, the threshold per gene from
the model's steady states). Start states are the World's, each bit at its on or off steady
state (mRNA and, with the protein layer, protein).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.ode.integrate import simulate
from envs.ode.model import OdeModel
from envs.ode.params import OdeParams, ode_params
from envs.ode.perturb import production_scaling
from envs.errors import UserInputError
from envs.world import World, load_world


@dataclass(frozen=True, eq=False)
class OdeWorld:
    world: World
    model: OdeModel

    @property
    def name(self) -> str:
        return self.world.name

    @property
    def params(self) -> OdeParams:
        return self.model.params

    def start(self, name: "str | None" = None, condition: "str | None" = None, n_cells: int = 1) -> np.ndarray:
        """(n_cells, species) copies of a start state at its steady levels."""
        bits = self.world.start_state(name, condition)
        return np.repeat(self.model.state_from_bits(bits[None, :]), n_cells, axis=0)

    def gene_expression(self, y: np.ndarray) -> np.ndarray:
        """(B, species) -> (B, genes) mRNA per gene (a multi-valued gene: the sum of its bits)."""
        x = self.model.mrna(np.atleast_2d(y))
        return x if not self.world.is_multivalued else x @ self.world.level_matrix.T

    def gene_scale(self) -> np.ndarray:
        """(genes,) the on level of each gene's expression (x_max times its number of levels)."""
        return self.world.level_matrix.sum(axis=1) * self.params.x_max

    def classify(self, y: np.ndarray) -> np.ndarray:
        """Fate index per cell from its expression (len(fates) = aberrant)."""
        return self.world.classify(self.model.binarize(np.atleast_2d(y)))

    def simulate(self, y0: np.ndarray, duration: float, rng=None, weights: "np.ndarray | None" = None, **kwargs):
        """`envs.ode.integrate.simulate` with gene weights in [-1, 1] (`envs.ode.perturb`)."""
        kd = act = None
        if weights is not None:
            kd, act = production_scaling(self.world, weights)
        return simulate(self.model, y0, duration, rng, knockdown=kd, activation=act, **kwargs)


def ode_world(world: "World | str", params: "OdeParams | dict | None" = None) -> OdeWorld:
    """The ODE form of a world (by name, path or World) with these parameters (defaults: BoolODE's)."""
    world = load_world(world)
    return OdeWorld(world, OdeModel.from_network(world.network, ode_params(params)))


def ode_fate_distribution(ode: OdeWorld, weights: "np.ndarray | None" = None, start: "str | None" = None,
                          condition: "str | None" = None, duration: float = 10.0, n_cells: int = 1000,
                          seed: int = 0) -> dict[str, float]:
    """Fraction of `n_cells` cells (one batch, seeded) in each fate after `duration` time units
    from `start` under gene weights (envs.ode.perturb), fates read from expression."""
    if n_cells < 1:
        raise UserInputError(f"cells must be >= 1, got {n_cells!r}")
    if not (np.isfinite(duration) and duration > 0):
        raise UserInputError(f"the simulated time must be > 0 ODE time units, got {duration!r}")
    y0 = ode.start(start, ode.world.check_condition(condition), n_cells)
    w = None if weights is None else np.repeat(np.atleast_2d(weights), n_cells, axis=0)
    fates = ode.classify(ode.simulate(y0, duration, np.random.default_rng(seed), w))
    counts = np.bincount(fates, minlength=len(ode.world.fate_labels))
    return {label: float(c) / n_cells for label, c in zip(ode.world.fate_labels, counts)}
