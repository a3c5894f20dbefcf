"""Grid cells: the product of the spec's axes, each with a stable readable id.

A cell is one (world, task, target, algorithm, optimizer, MAX_PERTURB, module, action) combination; it
owns one Optuna study (named by its id) and one leaderboard row. `trial_plan` turns a cell plus
sampled hyperparameters and a seed into an `algorithms.trial_plan.TrialPlan`. The cell id and
the oracle key are derived here and only here; readers use the typed columns, never the id.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from algorithms.trial_plan import TrialPlan
from tournament.engine.rundir import oracle_key
from tournament.engine.spec import TournamentSpec


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "_", text).strip("_") or "x"


@dataclass(frozen=True)
class Cell:
    """One grid cell; `world` is as the spec names it (a built-in name or a path)."""

    world: str
    world_name: str
    task: str
    target: str | None
    algorithm: str
    optimizer: str
    max_perturb: int
    module: str
    action: str = "discrete"

    @property
    def cell_id(self) -> str:
        """e.g. myeloid-steer-Mo-PPO-adam-k2-gnn (predict cells have no target part; continuous-action
        cells end in -continuous)."""
        parts = [self.world_name, self.task] + ([self.target] if self.task == "steer" else [])
        parts += [self.algorithm, self.optimizer, f"k{self.max_perturb}", self.module]
        parts += [self.action] if self.action != "discrete" else []
        return "-".join(_slug(str(p)) for p in parts)

    @property
    def oracle_key(self) -> str:
        """The key of this cell's optimum in oracle.json (`tournament.engine.rundir.oracle_key`)."""
        return oracle_key(self.world_name, self.task, self.target, self.max_perturb)

    def describe(self) -> dict[str, Any]:
        """The columns trials.csv and final_scores.csv share."""
        d = asdict(self)
        d["world"] = d.pop("world_name")
        d["target"] = self.target if self.task == "steer" else ""
        return {"cell_id": self.cell_id, **d}

    def trial_plan(
        self,
        spec: TournamentSpec,
        optimizer_hparams: dict[str, Any],
        algo_hparams: dict[str, Any],
        seed: int,
    ) -> TrialPlan:
        """The plan of one trial of this cell with these hyperparameters and seed."""
        fixed_opt = dict(spec.optimizer_settings.get(self.optimizer, {}))
        from envs.world import portable_world_name

        return TrialPlan(
            world=portable_world_name(self.world),
            task=self.task,
            target=self.target if self.task == "steer" else None,
            max_perturb=int(self.max_perturb),
            kinds=tuple(spec.kinds),
            env=dict(spec.env),
            dynamics=spec.dynamics,
            action=self.action,
            algorithm=self.algorithm,
            module=self.module,
            module_options=dict(spec.module_settings.get(self.module, {})),
            optimizer=self.optimizer,
            optimizer_hparams={**fixed_opt, **optimizer_hparams},
            algo_hparams={**spec.algorithm_settings.get(self.algorithm, {}), **algo_hparams},
            env_steps=int(spec.budget.env_steps),
            seed=int(seed),
            num_env_runners=int(spec.resources.num_env_runners),
            device=spec.resources.device,
        )


def baseline_entry_id(world_name: str, target: str, max_perturb: int, baseline: str) -> str:
    """A baseline's leaderboard id, shaped like a cell id: e.g. myeloid-steer-Mo-greedy-k2."""
    return "-".join(_slug(str(p)) for p in (world_name, "steer", target, baseline, f"k{max_perturb}"))


def task_env(spec: TournamentSpec, cell: Cell) -> dict[str, Any]:
    """The environment settings of the cell's task (what a trial's env gets, without the seed)."""
    return {**spec.env, "world": cell.world, "task": cell.task, "target": cell.target if cell.task == "steer" else None,
            "max_perturb": int(cell.max_perturb), "kinds": tuple(spec.kinds)}


def task_world(spec: TournamentSpec, cell: Cell) -> Any:
    """The cell's world as its task sees it: with the spec's background mutations (env.background)."""
    from envs.world import load_world

    world = load_world(cell.world)
    background = spec.env.get("background")
    if background:
        world = world.with_background(background)
    return world


def task_start(spec: TournamentSpec) -> Any:
    """The start the oracle and the baselines use: env.start (one name, or a list of them), else the world's."""
    start = spec.env.get("start")
    if isinstance(start, (list, tuple)):
        return start[0] if len(start) == 1 else list(start)
    return start


def task_single_start(spec: TournamentSpec) -> Any:
    """The start of the time-0 searches (static oracle, baselines), which take one: of a list, the first."""
    start = task_start(spec)
    return start[0] if isinstance(start, list) else start


def expand_grid(spec: TournamentSpec) -> list[Cell]:
    """Every cell of the spec, in a fixed order (world, task, target, then the grid axes)."""
    from envs.world import load_world

    cells: list[Cell] = []
    for world in spec.world:
        w = load_world(world)
        for task in spec.task:
            targets = spec.targets_for(world, w.fates) if task == "steer" else [None]
            for target in targets:
                # the predict task's action is a fate: its cells take the discrete action only
                actions = ["discrete"] if task == "predict" else spec.grid.action
                for algorithm in spec.grid.algorithm:
                    for optimizer in spec.grid.optimizer:
                        for k in spec.grid.max_perturb:
                            for module in spec.grid.module:
                                for action in actions:
                                    cells.append(Cell(world, w.name, task, target, algorithm, optimizer, int(k), module,
                                                      action))
    ids = [c.cell_id for c in cells]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        from envs.errors import UserInputError

        raise UserInputError(f"world: two worlds share the name of cell {dupes[0]!r}; give worlds distinct names")
    return cells
