"""RLModules for CellFateEnv (GNN over the gene network, MLP baseline) and their model_config.

``model_config(world, task, kinds, kind, options)`` turns a world and the user's
module options into the plain dict RLlib ships to every worker: the graph
(edges, signs, fate signatures) is built here once, from the world, and
travels in it.
"""

from __future__ import annotations

from typing import Any

from envs.cell_fate_env import N_NODE_FEATURES
from envs.errors import UserInputError, choices_error
from envs.ode.env import ACTIONS, TASKS
from envs.world import World

from algorithms.modules.base import MASKED_LOGIT, CellFateModule, Encoded, apply_action_mask
from algorithms.modules.gnn import BACKENDS, CONVS, GNNModule
from algorithms.modules.mlp import MLPModule

MODULE_KINDS = ("gnn", "mlp")
MODULE_CLASSES: dict[str, type[CellFateModule]] = {"gnn": GNNModule, "mlp": MLPModule}
# The observation each kind reads from CellFateEnv.
OBSERVATION = {"gnn": "graph", "mlp": "flat"}

_COMMON_DEFAULTS: dict[str, Any] = {"hidden": 64, "share_encoder": False, "q_heads": 0}
DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    # share_encoder: true halves the GNN's encoder work per update (SB3's on-policy policies
    # share their features extractor; PPO runs about 1.5x faster, BENCHMARKS.md "bench: train"),
    # but over seeds 0-5 of the slow tests' settings it took more env steps to 90% for A2C (16384
    # and 8192 vs 2048 at seeds 0 and 1) and for TRPO_to_PPO's seed 0 (6368 vs 4320), as many or
    # fewer for PPO; so it stays an option, off by default.
    "gnn": {**_COMMON_DEFAULTS, "conv": "gcn", "layers": 2, "heads": 2, "backend": "auto"},
    "mlp": {**_COMMON_DEFAULTS, "layers": 2},
}


def module_class(kind: str) -> type[CellFateModule]:
    if kind not in MODULE_CLASSES:
        raise choices_error("module", kind, MODULE_KINDS)
    return MODULE_CLASSES[kind]


def model_config(
    world: World, task: str, kinds: tuple[str, ...], kind: str = "gnn", options: dict | None = None,
    action: str = "discrete",
) -> dict[str, Any]:
    """The module's model_config for `world`; unknown or bad options raise UserInputError.

    `action` "continuous" (the ODE worlds' Box of gene weights) makes n_actions the number of
    genes and the heads Gaussian (algorithms.modules.gaussian); the trajectory task's heads are
    the steer task's (its actions are perturbations too)."""
    module_class(kind)
    defaults = DEFAULT_OPTIONS[kind]
    options = dict(options or {})
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise choices_error(f"{kind} module option", unknown[0], sorted(defaults))
    cfg = {**defaults, **options}
    for key in ("hidden", "layers", "heads", "q_heads"):
        if key in cfg and (not isinstance(cfg[key], int) or isinstance(cfg[key], bool) or cfg[key] < (0 if key == "q_heads" else 1)):
            raise UserInputError(f"module option {key} must be a positive integer, got {cfg[key]!r}")
    if kind == "gnn":
        if cfg["conv"] not in CONVS:
            raise choices_error("GNN conv", cfg["conv"], CONVS)
        if cfg["backend"] not in BACKENDS:
            raise choices_error("GNN backend", cfg["backend"], BACKENDS)
        if cfg["conv"] == "gat" and cfg["hidden"] % cfg["heads"]:
            raise UserInputError(f"GAT heads ({cfg['heads']}) must divide hidden ({cfg['hidden']})")
    n = world.n_genes
    if task not in TASKS:
        raise choices_error("task", task, TASKS)
    if action not in ACTIONS:
        raise choices_error("action", action, ACTIONS)
    head_task = "predict" if task == "predict" else "steer"
    if action == "continuous" and head_task == "predict":
        raise UserInputError("the predict task's action is a fate (discrete); use action: discrete")
    edge_index, edge_sign = world.edge_index()  # between genes: a multi-valued gene is one node
    if action == "continuous":
        n_actions = n
    else:
        n_actions = 1 + n * len(kinds) if head_task == "steer" else len(world.fate_labels)
    cfg.update(
        task=head_task,
        action=action,
        n_genes=n,
        n_kinds=len(kinds),
        n_fates=len(world.fates),
        n_actions=n_actions,
        node_features=N_NODE_FEATURES,
        edge_index=edge_index.tolist(),
        edge_sign=edge_sign.tolist(),
        signatures=world.gene_signatures.astype(int).tolist(),
    )
    return cfg


__all__ = [
    "MASKED_LOGIT",
    "MODULE_CLASSES",
    "MODULE_KINDS",
    "OBSERVATION",
    "CellFateModule",
    "Encoded",
    "GNNModule",
    "MLPModule",
    "apply_action_mask",
    "model_config",
    "module_class",
]
