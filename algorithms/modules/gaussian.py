"""Heads for continuous actions (a Box of gene weights, `envs.ode`): a Gaussian per gene, and Q(s, a).

The action is one weight per gene in [-1, 1] (negative: knock-down by |w|, positive:
activation by w). A policy head returns the distribution inputs RLlib's diagonal Gaussians
read, ``[mean (B, n) ; log_std (B, n)]``: PPO samples an unbounded Gaussian that the
environment clips (as SB3's PPO does), SAC squashes it with tanh (RLlib's
TorchSquashedGaussian, SB3's SAC). log_std is state-dependent; the module clamps it and fixes
the genes the mask rules out (``algorithms.modules.base.gaussian_inputs``).

- GNN: (mean_i, log_std_i) = MLP([h_i ; g]) with shared weights, so the head runs on a
  world of any size; Q(s, a) = MLP([g ; mean_i phi([h_i ; a_i])]): every gene's weight
  read in its network context, then pooled.
- MLP: linear layers on the pooled embedding, and Q(s, a) = MLP([g ; a]).
"""

from __future__ import annotations

import torch
from torch import nn

from algorithms.modules.base import Encoded, mlp

class GeneGaussianHead(nn.Module):
    """GNN policy head: (mean, log_std) of every gene's weight from [h_i ; g]."""

    def __init__(self, hidden: int):
        super().__init__()
        self.node = mlp([2 * hidden, hidden, 2])

    def forward(self, enc: Encoded) -> tuple[torch.Tensor, torch.Tensor]:
        b, n, _ = enc.nodes.shape
        context = enc.pooled.unsqueeze(1).expand(b, n, -1)
        out = self.node(torch.cat([enc.nodes, context], dim=-1))
        return out[..., 0], out[..., 1]


class PooledGaussianHead(nn.Module):
    """MLP policy head: (mean, log_std) of the n gene weights from the pooled embedding."""

    def __init__(self, hidden: int, n_genes: int):
        super().__init__()
        self.linear = nn.Linear(hidden, 2 * n_genes)
        self.n = n_genes

    def forward(self, enc: Encoded) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.linear(enc.pooled)
        return out[:, : self.n], out[:, self.n :]


class GeneActionQHead(nn.Module):
    """GNN Q-head: Q(s, a) = MLP([g ; mean_i phi([h_i ; a_i])])."""

    def __init__(self, hidden: int):
        super().__init__()
        self.phi = mlp([hidden + 1, hidden], last_activation=True)
        self.out = mlp([2 * hidden, hidden, 1])

    def forward(self, enc: Encoded, actions: torch.Tensor) -> torch.Tensor:
        per_gene = self.phi(torch.cat([enc.nodes, actions.unsqueeze(-1)], dim=-1)).mean(dim=1)
        return self.out(torch.cat([enc.pooled, per_gene], dim=-1)).squeeze(-1)


class PooledActionQHead(nn.Module):
    """MLP Q-head: Q(s, a) = MLP([g ; a])."""

    def __init__(self, hidden: int, n_genes: int):
        super().__init__()
        self.out = mlp([hidden + n_genes, hidden, 1])

    def forward(self, enc: Encoded, actions: torch.Tensor) -> torch.Tensor:
        return self.out(torch.cat([enc.pooled, actions], dim=-1)).squeeze(-1)
