"""Shared RLModule machinery for the cell-fate policies: heads, masking, parameter groups.

A module is built from three parts that a subclass supplies:

- ``make_encoder()``: an ``nn.Module`` mapping the observation dict to an
  :class:`Encoded` (per-gene embeddings, or None for the MLP, and one pooled
  embedding per cell);
- ``make_action_head()``: an ``nn.Module`` mapping an :class:`Encoded` to one
  value per action, in the environment's action order (used for the policy
  logits and, with its own encoder, for each Q-network);
- ``embedding_dim``: the width of the pooled embedding (the value head's input).

Networks and parameter groups (what the learners optimize separately)::

    actor   = pi_encoder -> pi_head            actor_parameters()
    critic  = vf_encoder -> vf_head            critic_parameters()
              (vf_encoder is pi_encoder when model_config["share_encoder"])
    Q net i = qf_encoders[i] -> qf_heads[i]    q_parameters(i), i < model_config["q_heads"]

The actor's logits depend on actor parameters only (:meth:`action_logits`), which
TRPO's natural-gradient step needs. With ``share_encoder`` the encoder counts as
actor: PPO and A2C train it with both losses, TRPO moves it only inside the trust
region and fits the value head on its features; without it (the default) the critic
has its own encoder. SAC-discrete sets ``q_heads=2``:
:meth:`compute_q_values` returns Q(s, .) for every action (B, n_actions) from
Q-net ``i``, and :meth:`make_target_networks` / :meth:`get_target_network_pairs` /
:meth:`forward_target` implement RLlib's ``TargetNetworkAPI`` contract (the
minimum over the twin target nets), so a SAC module is
``class GNNSACModule(GNNModule, QNetAPI, TargetNetworkAPI)`` with no new code.

Continuous actions (``model_config["action"] == "continuous"``, the ODE worlds' Box of gene
weights): the action head returns a (mean, log_std) pair per gene instead of logits,
:meth:`action_logits` returns RLlib's diagonal-Gaussian inputs ``[mean ; log_std]`` with
the masked genes fixed (:func:`gaussian_inputs`; the heads are in ``algorithms.modules.gaussian``),
and the Q-heads
(``make_q_head``) read the action: :meth:`compute_q_values` returns Q(s, a) (B,) for
``batch[ACTIONS]``.

Env runners build the module with ``inference_only=True`` and keep the actor
only (RLlib's InferenceOnlyAPI), so weight syncs carry half the parameters.

Masking: invalid actions get the logit ``MASKED_LOGIT`` through ``torch.where``
(not ``log(mask)``, which would put -inf into the graph): their probability is
exactly 0, their gradient is 0, and entropy / KL stay finite.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis.inference_only_api import InferenceOnlyAPI
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from torch import nn

MASKED_LOGIT = -1e9


@dataclass
class Encoded:
    """What an encoder returns: per-gene embeddings (B, n, H) or None, and a pooled (B, H)."""

    nodes: torch.Tensor | None
    pooled: torch.Tensor


def mlp(sizes: list[int], activation: type[nn.Module] = nn.Tanh, last_activation: bool = False) -> nn.Sequential:
    """A plain fully connected stack; the last layer is linear unless `last_activation`."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2 or last_activation:
            layers.append(activation())
    return nn.Sequential(*layers)


def apply_action_mask(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Invalid actions (mask 0) get MASKED_LOGIT; valid logits pass through unchanged."""
    return torch.where(mask > 0.5, logits, torch.full_like(logits, MASKED_LOGIT))


LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # SB3's clamp of a state-dependent log_std
# log_std of a gene the mask rules out (std 0.1): a constant, so it only shifts log-probabilities.
MASKED_LOG_STD = -2.3


def gaussian_inputs(mean: torch.Tensor, log_std: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """RLlib's diagonal-Gaussian inputs [mean ; clamped log_std] (B, 2n); genes with mask 0 get
    mean 0 and MASKED_LOG_STD, a constant in every log-probability and no gradient."""
    on = mask > 0.5
    mean = torch.where(on, mean, torch.zeros_like(mean))
    log_std = torch.where(on, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX), torch.full_like(log_std, MASKED_LOG_STD))
    return torch.cat([mean, log_std], dim=-1)


class CellFateModule(TorchRLModule, ValueFunctionAPI, InferenceOnlyAPI):
    """Base class of GNNModule and MLPModule; see the module docstring for the layout.

    ``model_config`` keys shared by all modules (built by ``algorithms.modules.model_config``):
    task, n_genes, n_kinds, n_actions, n_fates, hidden, share_encoder, q_heads.
    """

    # ---- subclass hooks -------------------------------------------------------------

    embedding_dim: int

    def make_encoder(self) -> nn.Module:
        raise NotImplementedError

    def make_action_head(self) -> nn.Module:
        raise NotImplementedError

    def make_q_head(self) -> nn.Module:
        """A Q-network's head: per-action values (discrete) or Q(s, a) (continuous)."""
        return self.make_action_head()

    # ---- construction -------------------------------------------------------------------

    def setup(self) -> None:
        cfg = self.model_config
        self.task: str = cfg["task"]
        self.n_actions: int = int(cfg["n_actions"])
        self.continuous = cfg.get("action", "discrete") == "continuous"
        space = self.action_space
        if space is not None:
            given = int(space.shape[0]) if self.continuous else getattr(space, "n", self.n_actions)
            if given != self.n_actions:
                raise ValueError(f"model_config says {self.n_actions} actions, the action space {space} has {given}")
        self.pi_encoder = self.make_encoder()
        self.pi_head = self.make_action_head()
        self.share_encoder = bool(cfg.get("share_encoder", False))
        self.vf_encoder = None if self.share_encoder else self.make_encoder()
        self.vf_head = mlp([self.embedding_dim, self.embedding_dim, 1])
        n_q = int(cfg.get("q_heads", 0))
        self.qf_encoders = nn.ModuleList(self.make_encoder() for _ in range(n_q))
        self.qf_heads = nn.ModuleList(self.make_q_head() for _ in range(n_q))

    def get_non_inference_attributes(self) -> list[str]:
        """Env runners only act: they get the actor, never the critic or Q-networks."""
        return ["vf_encoder", "vf_head", "qf_encoders", "qf_heads"]

    # ---- parameter groups -----------------------------------------------------------

    def actor_parameters(self) -> list[nn.Parameter]:
        """Parameters the policy logits depend on (encoder shared with the critic included)."""
        return [*self.pi_encoder.parameters(), *self.pi_head.parameters()]

    def critic_parameters(self) -> list[nn.Parameter]:
        """State-value parameters; only the value head when the encoder is shared."""
        enc = [] if self.vf_encoder is None else list(self.vf_encoder.parameters())
        return [*enc, *self.vf_head.parameters()]

    def q_parameters(self, index: int) -> list[nn.Parameter]:
        """Parameters of Q-network `index` (SAC: 0 = qf, 1 = qf_twin)."""
        return [*self.qf_encoders[index].parameters(), *self.qf_heads[index].parameters()]

    def trainable_groups(self) -> dict[str, list[nn.Parameter]]:
        """Every parameter group by name; their union is every trainable parameter."""
        groups = {"actor": self.actor_parameters(), "critic": self.critic_parameters()}
        for i in range(len(self.qf_heads)):
            groups[f"q{i}"] = self.q_parameters(i)
        return groups

    # ---- forward passes -----------------------------------------------------------------

    @staticmethod
    def _obs(batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        obs = batch[Columns.OBS]
        if not isinstance(obs, dict):
            raise ValueError("cell-fate modules need the Dict observation {'x', 'action_mask'}")
        return obs

    def _dist_inputs(self, encoded: Encoded, mask: torch.Tensor) -> torch.Tensor:
        if self.continuous:
            return gaussian_inputs(*self.pi_head(encoded), mask)
        return apply_action_mask(self.pi_head(encoded), mask)

    def action_logits(self, batch: dict[str, Any]) -> torch.Tensor:
        """Masked policy logits (B, n_actions), or Gaussian inputs (B, 2 n_genes) for continuous
        actions; differentiable in actor parameters only."""
        obs = self._obs(batch)
        return self._dist_inputs(self.pi_encoder(obs), obs["action_mask"])

    def _forward(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return {Columns.ACTION_DIST_INPUTS: self.action_logits(batch)}

    def deterministic_actions(self, dist_inputs: torch.Tensor) -> torch.Tensor:
        """The greedy action of each row of dist inputs: the arg max logit, or the Gaussian mean."""
        if self.continuous:
            return dist_inputs[..., : self.n_actions]
        return dist_inputs.argmax(dim=-1)

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        obs = self._obs(batch)
        encoded = self.pi_encoder(obs)
        out = {Columns.ACTION_DIST_INPUTS: self._dist_inputs(encoded, obs["action_mask"])}
        if self.share_encoder:
            # Saves PPO's value loss a second encoder pass.
            out[Columns.EMBEDDINGS] = encoded.pooled
        return out

    def compute_values(self, batch: dict[str, Any], embeddings: Any | None = None) -> torch.Tensor:
        """State values (B,) for GAE and the value loss."""
        if embeddings is None:
            encoder = self.pi_encoder if self.vf_encoder is None else self.vf_encoder
            embeddings = encoder(self._obs(batch)).pooled
        return self.vf_head(embeddings).squeeze(-1)

    # ---- Q-networks (SAC-discrete) --------------------------------------------------------

    def _q(self, batch: dict[str, Any], encoders: nn.ModuleList, heads: nn.ModuleList, index: int | None) -> torch.Tensor:
        obs = self._obs(batch)
        if not len(heads):
            raise ValueError("this module has no Q-networks; build it with model_config['q_heads'] >= 1")
        chosen = range(len(heads)) if index is None else [index]
        if self.continuous:
            actions = batch[Columns.ACTIONS]
            qs = [heads[i](encoders[i](obs), actions) for i in chosen]
        else:
            qs = [heads[i](encoders[i](obs)) for i in chosen]
        return torch.stack(qs).min(dim=0).values if len(qs) > 1 else qs[0]

    def compute_q_values(self, batch: dict[str, Any], index: int | None = None) -> torch.Tensor:
        """Q(s, a) for every action, (B, n_actions), unmasked (continuous: Q(s, batch[ACTIONS]),
        (B,)): from net `index`, or the minimum over all nets when `index` is None (clipped
        double-Q)."""
        return self._q(batch, self.qf_encoders, self.qf_heads, index)

    def make_target_networks(self) -> None:
        """Frozen copies of the Q-networks (RLlib TargetNetworkAPI)."""
        self.target_qf_encoders = copy.deepcopy(self.qf_encoders)
        self.target_qf_heads = copy.deepcopy(self.qf_heads)
        for p in [*self.target_qf_encoders.parameters(), *self.target_qf_heads.parameters()]:
            p.requires_grad_(False)

    def get_target_network_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.qf_encoders, self.target_qf_encoders), (self.qf_heads, self.target_qf_heads)]

    def forward_target(self, batch: dict[str, Any], index: int | None = None) -> torch.Tensor:
        """Target Q-values (B, n_actions; continuous (B,)), minimum over the target nets by default."""
        return self._q(batch, self.target_qf_encoders, self.target_qf_heads, index)
