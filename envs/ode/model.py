"""A Boolean network as stochastic ODEs: BoolODE-style Hill production, first-order decay.

Production term (BoolODE, Pratapa et al. 2020). For gene g with regulators j = 1..k, BoolODE
writes

    f_g = (alpha_0 + sum_S alpha_S prod_{j in S} h_j) / (1 + sum_S prod_{j in S} h_j),
    h_j = (y_j / K_j) ** n_j,

over every non-empty subset S of the regulators, where alpha_S is the Boolean rule's value
when exactly the regulators in S are on. Since sum over all subsets of prod h_j equals
prod (1 + h_j), this is the truth table interpolated multilinearly by the Hill activations
a_j = h_j / (1 + h_j):

    f_g = sum_code table_g[code] * prod_j (a_j if bit j of code else 1 - a_j),

which is how it is computed here: the network's own truth tables (`BooleanNetwork.tables`),
contracted one regulator at a time, for a batch of cells at once, with the genes grouped by
their number of regulators so that a gene with k regulators costs 2**k, not 2**width.

Equations, mRNA x and (with the protein layer) protein p of every variable of the network:

    dx = m * f(y) - l_x * x          y = p with the protein layer, else x
    dp = r * x - l_p * p

plus noise (see `envs.ode.params`). Perturbations act on the production (`envs.ode.perturb`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from envs.network import BooleanNetwork
from envs.ode.params import OdeParams, ode_params


@dataclass(frozen=True)
class _Group:
    genes: np.ndarray  # (G,) variable indices with k regulators
    inputs: np.ndarray  # (G, k) regulator indices
    tables: np.ndarray  # (G, 2**k) float64: the rule over the first k inputs


@dataclass(frozen=True, eq=False)
class OdeModel:
    """The ODE form of a Boolean network; plain arrays, pickles cheaply."""

    network: BooleanNetwork
    params: OdeParams
    groups: tuple[_Group, ...] = field(repr=False)

    @classmethod
    def from_network(cls, network: BooleanNetwork, params: "OdeParams | dict | None" = None) -> "OdeModel":
        params = ode_params(params)
        groups = []
        for k in np.unique(network.n_inputs):
            genes = np.flatnonzero(network.n_inputs == k)
            # Padded inputs read a constant-0 column, so the first 2**k entries are the rule.
            groups.append(_Group(genes, network.inputs[genes, :k].copy(), network.tables[genes, : 1 << k].astype(np.float64)))
        return cls(network, params, tuple(groups))

    # ---- sizes and levels ------------------------------------------------------------------

    @property
    def n_vars(self) -> int:
        return self.network.n_genes

    @property
    def n_species(self) -> int:
        """Columns of a state: mRNA of every variable, then protein with the protein layer."""
        return self.n_vars * (2 if self.params.proteins else 1)

    @property
    def regulator_threshold(self) -> float:
        """K: the Hill threshold on the regulating species (BoolODE: half its maximum)."""
        p = self.params
        if p.threshold is not None:
            return float(p.threshold)
        return (p.p_max if p.proteins else p.x_max) / 2

    @property
    def expression_threshold(self) -> float:
        """The mRNA level that separates on from off: half the fully-on steady state."""
        return self.params.x_max / 2

    def state_from_bits(self, bits: np.ndarray) -> np.ndarray:
        """(B, vars) 0/1 -> (B, species): each species at its on or off steady state."""
        bits = np.atleast_2d(bits).astype(np.float64)
        x = bits * self.params.x_max
        if not self.params.proteins:
            return x
        return np.concatenate([x, bits * self.params.p_max], axis=1)

    def state_from_mrna(self, x: np.ndarray) -> np.ndarray:
        """(B, vars) mRNA -> (B, species), proteins at their steady state for that mRNA (BoolODE's start)."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        if not self.params.proteins:
            return x.copy()
        p = self.params
        return np.concatenate([x, x * p.translation / p.protein_decay], axis=1)

    def mrna(self, y: np.ndarray) -> np.ndarray:
        return y[..., : self.n_vars]

    def binarize(self, y: np.ndarray) -> np.ndarray:
        """(B, species) -> (B, vars) uint8: mRNA above half its on level."""
        return (self.mrna(y) > self.expression_threshold).astype(np.uint8)

    # ---- the right-hand side ---------------------------------------------------------------

    def activation(self, y: np.ndarray) -> np.ndarray:
        """(B, vars) Hill activation a = h / (1 + h) of each variable as a regulator."""
        reg = y[:, self.n_vars:] if self.params.proteins else y[:, : self.n_vars]
        h = np.power(np.maximum(reg, 0.0) / self.regulator_threshold, self.params.hill)
        return h / (1.0 + h)

    def production_fraction(self, y: np.ndarray) -> np.ndarray:
        """(B, vars) f in [0, 1]: the rule as a Hill function of the regulators (module docstring)."""
        a = self.activation(y)
        out = np.empty((y.shape[0], self.n_vars))
        for grp in self.groups:
            t = np.broadcast_to(grp.tables, (y.shape[0],) + grp.tables.shape)
            act = a[:, grp.inputs]  # (B, G, k)
            for j in range(grp.inputs.shape[1] - 1, -1, -1):
                half = t.shape[-1] // 2
                aj = act[:, :, j, None]
                t = t[..., :half] + (t[..., half:] - t[..., :half]) * aj
            out[:, grp.genes] = t[..., 0]
        return out

    def rates(self, y: np.ndarray, knockdown: "np.ndarray | None" = None, activation: "np.ndarray | None" = None):
        """(production, decay), each (B, species), with graded perturbations on the mRNA production:
        f' = (1 - knockdown) * f + activation * (1 - f) (knockdown 1 = knockout, activation 1 =
        overexpression)."""
        p = self.params
        f = self.production_fraction(y)
        if knockdown is not None:
            f = f * (1.0 - knockdown)
        if activation is not None:
            f = f + activation * (1.0 - f)
        x = y[:, : self.n_vars]
        prod_x, decay_x = p.transcription * f, p.mrna_decay * x
        if not p.proteins:
            return prod_x, decay_x
        prot = y[:, self.n_vars:]
        return (np.concatenate([prod_x, p.translation * x], axis=1),
                np.concatenate([decay_x, p.protein_decay * prot], axis=1))

    def max_hill_slope(self) -> float:
        """The steepest slope of one Hill activation a(y) over y (for the stability bound)."""
        k, n = self.regulator_threshold, self.params.hill
        y = np.linspace(0.0, 4 * k, 4001)[1:]
        h = (y / k) ** n
        a = h / (1 + h)
        return float(np.max(np.diff(a) / np.diff(y)))

    def stiffness(self) -> float:
        """A bound on the Jacobian's largest eigenvalue magnitude seen through one regulator: the
        fastest decay plus the steepest production slope (m * a'(K) for mRNA, r for protein)."""
        p = self.params
        rate = p.mrna_decay + p.transcription * self.max_hill_slope()
        if p.proteins:
            rate = max(rate, p.protein_decay + p.translation)
        return float(rate)


def ode_model(network: BooleanNetwork, params: "OdeParams | dict | None" = None) -> OdeModel:
    return OdeModel.from_network(network, params)
