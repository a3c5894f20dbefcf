"""TrialPlan: everything one trial needs, as plain typed data (no torch, no RLlib imports).

It is what crosses the Ray Tune boundary: the engine builds one per trial from a grid cell
(tournament.engine.cells), sends it as a dict (`to_dict`), and the trainable rebuilds it
(`from_dict`, which rejects unknown keys) before handing it to the runner the spec names
(algorithms.trial.TrialRunner, or the scripted runner of the engine tests). Values are checked
by the layer that owns them when the runner is built: the env settings by envs, the algorithm
and optimizer settings by their dataclasses in algorithms and optim.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from envs.errors import choices_error

# How a world's cells change: "boolean" (envs.batched_env.BatchedCellFateEnv) or "ode" (the same
# rules as BoolODE-style stochastic ODEs, envs.ode.env.OdeCellFateEnv).
DYNAMICS = ("boolean", "ode")


@dataclass(frozen=True)
class TrialPlan:
    world: Any = "myeloid"  # built-in name, world directory path, model file, or an envs.World object
    task: str = "steer"  # steer | predict
    target: str | None = None  # steer: target fate
    max_perturb: int = 2
    kinds: tuple[str, ...] = ("knockout", "overexpression")
    env: dict = field(default_factory=dict)  # other CellFateEnv (or OdeCellFateEnv) settings
    dynamics: str = "boolean"  # a name in DYNAMICS: the Boolean world itself, or its stochastic ODEs
    action: str = "discrete"  # discrete | continuous (a Box of gene weights; ODE worlds only)
    algorithm: str = "PPO"  # a name in algorithms.registry.ALGORITHM_NAMES
    module: str = "gnn"  # gnn | mlp
    module_options: dict = field(default_factory=dict)  # e.g. {"conv": "gat", "layers": 2, "hidden": 64, "heads": 2}
    optimizer: str = "adam"  # adam | amsgrad | asgd_adam | asgd_amsgrad
    optimizer_hparams: dict = field(default_factory=lambda: {"lr": 3e-4})  # {"lr"} or {"lr_min", "lr_max"}
    algo_hparams: dict = field(default_factory=dict)  # the algorithm's settings (its dataclass checks them)
    env_steps: int = 20_000  # the trial's budget in environment steps (all stages together)
    seed: int = 0
    num_env_runners: int = 0
    device: str = "cpu"  # cpu | cuda | auto

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the Tune config (lists for tuples, so it is JSON as Tune stores it)."""
        d = asdict(self)
        d["kinds"] = list(self.kinds)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrialPlan":
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise choices_error("trial plan key", unknown[0], known)
        data = dict(data)
        if "kinds" in data:
            data["kinds"] = tuple(data["kinds"])
        return cls(**data)
