"""GNNModule: a policy / value network that passes messages over the world's signed GRN.

Edge signs. An activating and an inhibiting edge mean opposite things, so each
layer has two convolutions, one over the activating edges and one over the
inhibiting ones, with their own weights (relational message passing as in
R-GCN), summed, plus a residual connection::

    h^{l+1} = h^l + tanh(conv_+(h^l, E+) + conv_-(h^l, E-))

This works the same for GAT, GCN and GraphSAGE (signs as GCN edge weights
would break its degree normalisation; GAT's edge_attr would only bias the
attention). Node inputs are the 8 environment features plus 5 structural ones
computed from the graph (log in/out degree per sign, self-regulation sign), so
nodes are told apart by their place in the network, not by a per-gene
embedding: every weight is shared across genes and the module runs on a world
of any size.

Backends. ``sparse`` batches B cells as one disconnected graph whose edge
index is built once per batch size and cached; ``dense`` uses PyG's Dense*Conv
layers on a (n, n) adjacency per sign. Measured on the myeloid graph (11 genes,
30 edges), hidden 64, one layer pair forward + backward, one thread: dense is
faster for GCN (B=64: 1.6 vs 2.4 ms; B=256: 5.0 vs 7.5 ms), equal for
GraphSAGE, and slower for GAT (B=256: 19.6 vs 10.4 ms). ``auto`` (default)
picks dense for GCN and GraphSAGE, sparse for GAT. Dense costs n^2 per cell, so
for networks of hundreds of genes choose sparse. Weights move between modules
of one backend (GCN's are named alike in both).

Heads (``hidden`` = H, pooled g = tanh(W [mean_i h_i ; max_i h_i])):

- steer: logit(perturb gene i with kind k) = MLP([h_i ; g])_k, and
  logit(no perturbation) = MLP(g); flattened as action 1 + i * n_kinds + k.
- predict: logit(fate f) = mean_i MLP([h_i ; g ; onehot(signature_f[i])]), the
  fate's signature (on / off / don't care per gene) read by every node, and
  logit(other) = MLP(g). Fates are scored by their signatures, so this head
  too is independent of the world's size and number of fates.
- value: MLP(g).
- continuous actions (ODE worlds): a Gaussian over each gene's weight from [h_i ; g], and
  Q(s, a) reading each gene's weight beside h_i (``algorithms.modules.gaussian``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from algorithms.modules.base import CellFateModule, Encoded, mlp
from algorithms.modules.gaussian import GeneActionQHead, GeneGaussianHead

CONVS = ("gat", "gcn", "sage")
BACKENDS = ("auto", "sparse", "dense")
# What "auto" picks per conv, from the measurements in the module docstring.
AUTO_BACKEND = {"gcn": "dense", "sage": "dense", "gat": "sparse"}
N_STRUCTURAL = 5


def structural_features(edge_index: np.ndarray, edge_sign: np.ndarray, n: int) -> np.ndarray:
    """(n, 5): log2(1 + degree) for in+, in-, out+, out-, and the sign of self-regulation."""
    feats = np.zeros((n, N_STRUCTURAL), dtype=np.float32)
    for (src, dst), sign in zip(edge_index.T, edge_sign):
        pos = sign > 0
        feats[dst, 0 if pos else 1] += 1
        feats[src, 2 if pos else 3] += 1
        if src == dst:
            feats[src, 4] = 1.0 if pos else -1.0
    feats[:, :4] = np.log2(1.0 + feats[:, :4])
    return feats


def _make_conv(conv: str, backend: str, hidden: int, heads: int) -> nn.Module:
    from torch_geometric import nn as gnn

    if conv == "gat":
        cls = gnn.DenseGATConv if backend == "dense" else gnn.GATConv
        return cls(hidden, hidden // heads, heads=heads)
    if conv == "gcn":
        return gnn.DenseGCNConv(hidden, hidden) if backend == "dense" else gnn.GCNConv(hidden, hidden)
    return gnn.DenseSAGEConv(hidden, hidden) if backend == "dense" else gnn.SAGEConv(hidden, hidden)


class SignedGraphEncoder(nn.Module):
    """Observation dict -> Encoded(per-gene (B, n, H), pooled (B, H)) over the signed graph."""

    def __init__(self, cfg: dict):
        super().__init__()
        n = int(cfg["n_genes"])
        self.n = n
        self.conv_kind = cfg["conv"]
        self.backend = AUTO_BACKEND[self.conv_kind] if cfg["backend"] == "auto" else cfg["backend"]
        hidden = int(cfg["hidden"])
        edge_index = np.asarray(cfg["edge_index"], dtype=np.int64).reshape(2, -1)
        edge_sign = np.asarray(cfg["edge_sign"], dtype=np.float32)
        # Graph tensors are non-persistent buffers: they belong to the world, not to the
        # weights, so a state dict loads into a module built for another world.
        self.register_buffer("structural", torch.from_numpy(structural_features(edge_index, edge_sign, n)), persistent=False)
        pos, neg = edge_sign > 0, edge_sign < 0
        self.register_buffer("edges_pos", torch.from_numpy(edge_index[:, pos].copy()), persistent=False)
        self.register_buffer("edges_neg", torch.from_numpy(edge_index[:, neg].copy()), persistent=False)
        adj_pos = torch.zeros(n, n)
        adj_neg = torch.zeros(n, n)
        # Dense convs aggregate row i over columns j: adj[target, source].
        adj_pos[self.edges_pos[1], self.edges_pos[0]] = 1.0
        adj_neg[self.edges_neg[1], self.edges_neg[0]] = 1.0
        self.register_buffer("adj_pos", adj_pos, persistent=False)
        self.register_buffer("adj_neg", adj_neg, persistent=False)
        self._batched: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

        self.inp = nn.Sequential(nn.Linear(int(cfg["node_features"]) + N_STRUCTURAL, hidden), nn.Tanh())
        layers = int(cfg["layers"])
        heads = int(cfg["heads"])
        self.conv_pos = nn.ModuleList(_make_conv(self.conv_kind, self.backend, hidden, heads) for _ in range(layers))
        self.conv_neg = nn.ModuleList(_make_conv(self.conv_kind, self.backend, hidden, heads) for _ in range(layers))
        self.pool = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.Tanh())

    def _batched_edges(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Edge indices of `batch` disjoint copies of the graph, cached per batch size."""
        cached = self._batched.get(batch)
        if cached is None or cached[0].device != self.edges_pos.device:
            offsets = torch.arange(batch, device=self.edges_pos.device) * self.n

            def tile(e: torch.Tensor) -> torch.Tensor:
                return (e.unsqueeze(1) + offsets.view(1, -1, 1)).reshape(2, -1)

            cached = (tile(self.edges_pos), tile(self.edges_neg))
            if len(self._batched) > 64:  # odd batch sizes (episode ends) must not pile up
                self._batched.clear()
            self._batched[batch] = cached
        return cached

    def forward(self, obs: dict[str, torch.Tensor]) -> Encoded:
        x = obs["x"]
        b = x.shape[0]
        x = x.reshape(b, self.n, -1)
        h = self.inp(torch.cat([x, self.structural.expand(b, -1, -1)], dim=-1))
        if self.backend == "dense":
            for cp, cn in zip(self.conv_pos, self.conv_neg):
                h = h + torch.tanh(cp(h, self.adj_pos) + cn(h, self.adj_neg))
        else:
            ep, en = self._batched_edges(b)
            flat = h.reshape(b * self.n, -1)
            for cp, cn in zip(self.conv_pos, self.conv_neg):
                flat = flat + torch.tanh(cp(flat, ep) + cn(flat, en))
            h = flat.reshape(b, self.n, -1)
        pooled = self.pool(torch.cat([h.mean(dim=1), h.amax(dim=1)], dim=-1))
        return Encoded(nodes=h, pooled=pooled)


def node_context_linear(linear: nn.Linear, nodes: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
    """linear([h_i ; g]) for every node i without building [h_i ; g]: W_h h_i + (W_g g + b), the
    pooled part once per cell instead of once per node (the same weights, a third less work)."""
    hidden = nodes.shape[-1]
    w = linear.weight
    per_cell = torch.addmm(linear.bias, pooled, w[:, hidden:2 * hidden].t())  # (B, out)
    return nodes @ w[:, :hidden].t() + per_cell.unsqueeze(1)


class SteerNodeHead(nn.Module):
    """Per-gene perturbation logits plus a pooled 'no perturbation' logit."""

    def __init__(self, hidden: int, n_kinds: int):
        super().__init__()
        self.node = mlp([2 * hidden, hidden, n_kinds])
        self.stay = mlp([hidden, hidden, 1])

    def forward(self, enc: Encoded) -> torch.Tensor:
        b = enc.nodes.shape[0]
        per_node = self.node[1:](node_context_linear(self.node[0], enc.nodes, enc.pooled)).reshape(b, -1)
        return torch.cat([self.stay(enc.pooled), per_node], dim=-1)


class FateSignatureHead(nn.Module):
    """Fate logits from every gene reading each fate's signature, plus an 'other' logit."""

    def __init__(self, hidden: int, signatures: np.ndarray):
        super().__init__()
        sig = torch.as_tensor(np.asarray(signatures), dtype=torch.long)  # (F, n) in {-1, 0, 1}
        onehot = torch.nn.functional.one_hot(sig + 1, 3).float()  # (F, n, 3): dont-care, off, on
        self.register_buffer("signatures", onehot, persistent=False)
        self.node = mlp([2 * hidden + 3, hidden, 1])
        self.other = mlp([hidden, hidden, 1])

    def forward(self, enc: Encoded) -> torch.Tensor:
        first = self.node[0]
        hidden = enc.nodes.shape[-1]
        # the first layer of MLP([h_i ; g ; sig_f[i]]) split by input: per cell and node, plus per
        # fate and node, summed (B, F, n, H), instead of one (B, F, n, 2H + 3) input
        per_node = node_context_linear(first, enc.nodes, enc.pooled)  # (B, n, H)
        per_fate = self.signatures @ first.weight[:, 2 * hidden:].t()  # (F, n, H)
        pre = per_node.unsqueeze(1) + per_fate.unsqueeze(0)
        fate_logits = self.node[1:](pre).squeeze(-1).mean(dim=-1)  # (B, F)
        return torch.cat([fate_logits, self.other(enc.pooled)], dim=-1)


class GNNModule(CellFateModule):
    """Graph policy for CellFateEnv's graph observation; see the module docstring.

    model_config (besides the shared keys): edge_index (2, E), edge_sign (E,),
    signatures (F, n), node_features, conv (gat | gcn | sage), layers, hidden,
    heads (GAT; must divide hidden), backend (auto | sparse | dense).
    """

    def setup(self) -> None:
        cfg = self.model_config
        self.embedding_dim = int(cfg["hidden"])
        if cfg["conv"] not in CONVS or cfg["backend"] not in BACKENDS:
            raise ValueError(f"conv must be one of {CONVS} and backend one of {BACKENDS}")
        if cfg["conv"] == "gat" and int(cfg["hidden"]) % int(cfg["heads"]):
            raise ValueError(f"GAT heads ({cfg['heads']}) must divide hidden ({cfg['hidden']})")
        if cfg.get("action") == "continuous":
            expected = cfg["n_genes"]
        else:
            expected = 1 + cfg["n_genes"] * cfg["n_kinds"] if cfg["task"] == "steer" else cfg["n_fates"] + 1
        if expected != cfg["n_actions"]:
            raise ValueError(f"GNN heads give {expected} actions, the environment has {cfg['n_actions']}")
        super().setup()

    def make_encoder(self) -> nn.Module:
        return SignedGraphEncoder(self.model_config)

    def make_action_head(self) -> nn.Module:
        cfg = self.model_config
        if self.continuous:
            return GeneGaussianHead(int(cfg["hidden"]))
        if cfg["task"] == "steer":
            return SteerNodeHead(int(cfg["hidden"]), int(cfg["n_kinds"]))
        return FateSignatureHead(int(cfg["hidden"]), np.asarray(cfg["signatures"]))

    def make_q_head(self) -> nn.Module:
        return GeneActionQHead(int(self.model_config["hidden"])) if self.continuous else self.make_action_head()
