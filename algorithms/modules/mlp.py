"""MLPModule: the baseline policy on the flat observation (genes x features in one vector).

Same contract as GNNModule (masking, value head, actor / critic / Q parameter
groups, see algorithms.modules.base), but its input layer is tied to one
world's size, so its weights do not move between worlds.
"""

from __future__ import annotations

import torch
from torch import nn

from algorithms.modules.base import CellFateModule, Encoded, mlp
from algorithms.modules.gaussian import PooledActionQHead, PooledGaussianHead


class FlatEncoder(nn.Module):
    """Observation dict -> Encoded(None, MLP(flattened x)); graph or flat x both accepted."""

    def __init__(self, in_dim: int, hidden: int, layers: int):
        super().__init__()
        self.net = mlp([in_dim] + [hidden] * layers, last_activation=True)

    def forward(self, obs: dict[str, torch.Tensor]) -> Encoded:
        x = obs["x"]
        return Encoded(nodes=None, pooled=self.net(x.reshape(x.shape[0], -1)))


class MLPModule(CellFateModule):
    """Fully connected policy; model_config (besides the shared keys): node_features, hidden, layers."""

    def setup(self) -> None:
        self.embedding_dim = int(self.model_config["hidden"])
        super().setup()

    def make_encoder(self) -> nn.Module:
        cfg = self.model_config
        return FlatEncoder(int(cfg["n_genes"]) * int(cfg["node_features"]), int(cfg["hidden"]), int(cfg["layers"]))

    def make_action_head(self) -> nn.Module:
        if self.continuous:
            return PooledGaussianHead(self.embedding_dim, self.n_actions)
        return _PooledHead(self.embedding_dim, self.n_actions)

    def make_q_head(self) -> nn.Module:
        return PooledActionQHead(self.embedding_dim, self.n_actions) if self.continuous else self.make_action_head()


class _PooledHead(nn.Module):
    def __init__(self, hidden: int, n_actions: int):
        super().__init__()
        self.linear = nn.Linear(hidden, n_actions)

    def forward(self, enc: Encoded) -> torch.Tensor:
        return self.linear(enc.pooled)
