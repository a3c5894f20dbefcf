"""Checks of a spec that need the other layers: registries, search spaces, probing RLlib, checkpoints.

Every mistake a user can make raises `envs.errors.UserInputError` with one line that names the
key path (e.g. `grid.algorithm[1]`) and, for names, the valid choices.
"""


from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from envs.errors import UserInputError
from tournament.engine.spec.schema import (
    ADAM_FAMILY,
    ADAM_PARAMS,
    ASGD_PARAMS,
    DEFAULT_RUNNER,
    DEFAULT_SPACE,
    ParamSpec,
    TournamentSpec,
)


# ---- registries (lazy: importing algorithms pulls in RLlib) ----------------------------------


def algorithm_names() -> tuple[str, ...]:
    from algorithms.registry import ALGORITHM_NAMES

    return ALGORITHM_NAMES


def module_kinds() -> tuple[str, ...]:
    from algorithms.registry import MODULE_KINDS

    return MODULE_KINDS


def optimizer_names() -> tuple[str, ...]:
    from optim.registry import OPTIMIZER_NAMES

    return tuple(OPTIMIZER_NAMES)



def _probe_value(p: "ParamSpec") -> Any:
    if p.fixed:
        return p.value
    if p.choices is not None:
        return p.choices[0]
    return int(p.low) if p.integer else p.low


def probe_algorithm(spec: "TournamentSpec", algorithm: str, module: str) -> int | None:
    """Build the RLlib config(s) of one algorithm with the spec's settings, as a trial would.

    Catches unknown or bad algorithm settings before Ray starts. Returns the env steps of the
    first stage's training iteration (None when the runner is not the default TrialRunner).
    """
    if spec.execution.runner != DEFAULT_RUNNER:
        return None
    from algorithms.registry import algorithm_stages
    from algorithms.trial_plan import TrialPlan
    from envs.world import load_world

    world = spec.world[0]
    task = spec.task[0]
    target = spec.targets_for(world, load_world(world).fates)[0] if task == "steer" else None
    settings = {k: v for k, v in spec.algorithm_settings.get(algorithm, {}).items() if not k.startswith("_")}
    extra = {k: _probe_value(p) for k, p in spec.hpo.extra.get(algorithm, {}).items()}
    where = f"algorithm_settings.{algorithm}" if not extra else f"algorithm_settings.{algorithm} / hpo.extra.{algorithm}"
    for action in spec.grid.action:
        config = TrialPlan(world=world, task=task, target=target, max_perturb=spec.grid.max_perturb[0],
                           kinds=tuple(spec.kinds), env=dict(spec.env), dynamics=spec.dynamics,
                           action=action if task != "predict" else "discrete", algorithm=algorithm, module=module,
                           module_options=dict(spec.module_settings.get(module, {})),
                           algo_hparams={**settings, **extra}, env_steps=spec.budget.env_steps)
        try:
            first = algorithm_stages(config)[0].config
        except UserInputError as exc:
            raise UserInputError(f"{where}: {exc}") from None
    steps = getattr(first, "train_batch_size_per_learner", None) or getattr(first, "train_batch_size", None)
    return int(steps) if steps else None


def _choices(path: str, what: str, value: Any, valid: tuple | list) -> UserInputError:
    return UserInputError(f"{path}: unknown {what} {value!r}; valid choices: {', '.join(map(str, valid))}")


# ---- semantic checks (need the worlds and registries) -----------------------------------------


def _check_space(path: str, optimizer: str, params: dict[str, ParamSpec]) -> None:
    allowed = ADAM_PARAMS if optimizer in ADAM_FAMILY else ASGD_PARAMS
    for key in params:
        if key not in allowed:
            raise _choices(f"{path}.{key}", f"hyperparameter of {optimizer}", key, allowed)
    if optimizer in ADAM_FAMILY:
        if "lr" not in params:
            raise UserInputError(f"{path}: {optimizer} needs 'lr' (a value or a range)")
        _positive(f"{path}.lr", params["lr"])
        return
    if "lr_min" not in params:
        raise UserInputError(f"{path}: {optimizer} needs 'lr_min' and 'lr_ratio' (or a fixed lr_max)")
    _positive(f"{path}.lr_min", params["lr_min"])
    if "lr_max" in params:
        if "lr_ratio" in params:
            raise UserInputError(f"{path}: give lr_ratio or a fixed lr_max, not both")
        lo, hi = params["lr_min"], params["lr_max"]
        if not (lo.fixed and hi.fixed):
            raise UserInputError(
                f"{path}.lr_max: search lr_max through lr_ratio = lr_max/lr_min >= 1 "
                "(a fixed lr_max needs a fixed lr_min)"
            )
        if float(lo.value) > float(hi.value):
            raise UserInputError(f"{path}: lr_min {lo.value} > lr_max {hi.value}; lr_min must not exceed lr_max")
        return
    if "lr_ratio" not in params:
        raise UserInputError(f"{path}: {optimizer} needs 'lr_ratio' (lr_max/lr_min >= 1) or a fixed lr_max")
    b = params["lr_ratio"].bounds()
    if b is None or b[0] < 1:
        raise UserInputError(f"{path}.lr_ratio: lr_ratio = lr_max/lr_min must be >= 1 so lr_min <= lr_max")


def _positive(path: str, p: ParamSpec) -> None:
    b = p.bounds()
    if b is None or b[0] <= 0:
        raise UserInputError(f"{path}: a learning rate must be a positive number")


def _check_fixed_optimizer(path: str, optimizer: str, settings: dict[str, Any]) -> None:
    allowed = ("betas", "eps", "weight_decay") + (("switch", "threshold") if optimizer not in ADAM_FAMILY else ())
    for key in settings:
        if key in ("lr", "lr_min", "lr_max", "lr_ratio"):
            raise UserInputError(f"{path}.{key}: learning rates belong in hpo.space.{optimizer} (fixed or searched)")
        if key not in allowed:
            raise _choices(f"{path}.{key}", f"setting of {optimizer}", key, allowed)
    if "switch" in settings:
        from optim.asgd import SWITCH_RULES

        if settings["switch"] not in SWITCH_RULES:
            raise _choices(f"{path}.switch", "switch rule", settings["switch"], SWITCH_RULES)


def resolved_space(spec: TournamentSpec, optimizer: str) -> dict[str, ParamSpec]:
    """The search space of one optimizer: the defaults with the spec's entries on top."""
    params = {k: ParamSpec.model_validate(v) for k, v in DEFAULT_SPACE[optimizer].items()}
    given = spec.hpo.space.get(optimizer, {})
    if "lr_max" in given:
        params.pop("lr_ratio", None)
    params.update(given)
    return params


def _check_dynamics(spec: TournamentSpec) -> None:
    """grid.action, the trajectory task and the ODE settings against spec.dynamics."""
    from envs.ode.env import ACTIONS

    for i, a in enumerate(spec.grid.action):
        if a not in ACTIONS:
            raise _choices(f"grid.action[{i}]", "action", a, ACTIONS)
    if spec.dynamics != "ode":
        if "continuous" in spec.grid.action:
            raise UserInputError("grid.action: continuous (graded gene weights) needs dynamics: ode; "
                                 "Boolean worlds have discrete perturbations")
        if "trajectory" in spec.task:
            raise UserInputError("task: trajectory (move a cell's expression profile) needs dynamics: ode")
        if "ode" in spec.env:
            raise UserInputError("env.ode: ODE parameters need dynamics: ode")
    if "predict" in spec.task and "discrete" not in spec.grid.action:
        raise UserInputError("grid.action: the predict task's action is a fate (discrete); add discrete to grid.action")


def check_spec(spec: TournamentSpec) -> None:
    """Checks that need the worlds and registries; raises UserInputError with the key path."""
    from envs.cell_fate_env import env_settings
    from envs.ode.env import ode_env_settings
    from envs.network import normalize_kind
    from envs.world import load_world

    algos, opts, modules = algorithm_names(), optimizer_names(), module_kinds()
    for i, a in enumerate(spec.grid.algorithm):
        if a not in algos:
            raise _choices(f"grid.algorithm[{i}]", "algorithm", a, algos)
    for i, o in enumerate(spec.grid.optimizer):
        if o not in opts:
            raise _choices(f"grid.optimizer[{i}]", "optimizer", o, opts)
    for i, m in enumerate(spec.grid.module):
        if m not in modules:
            raise _choices(f"grid.module[{i}]", "module", m, modules)
    _check_dynamics(spec)
    for key in spec.algorithm_settings:
        if key not in algos:
            raise _choices(f"algorithm_settings.{key}", "algorithm", key, algos)
    for key in spec.hpo.extra:
        if key not in algos:
            raise _choices(f"hpo.extra.{key}", "algorithm", key, algos)
    for key in spec.module_settings:
        if key not in modules:
            raise _choices(f"module_settings.{key}", "module", key, modules)
    for key, settings in spec.optimizer_settings.items():
        if key not in opts:
            raise _choices(f"optimizer_settings.{key}", "optimizer", key, opts)
        _check_fixed_optimizer(f"optimizer_settings.{key}", key, settings)
    for key in spec.hpo.space:
        if key not in opts:
            raise _choices(f"hpo.space.{key}", "optimizer", key, opts)
    for o in spec.grid.optimizer:
        _check_space(f"hpo.space.{o}", o, resolved_space(spec, o))
    for i, k in enumerate(spec.kinds):
        try:
            normalize_kind(k)
        except UserInputError as exc:
            raise UserInputError(f"kinds[{i}]: {exc}") from None

    worlds = {}
    for i, w in enumerate(spec.world):
        try:
            worlds[w] = load_world(w)
        except UserInputError as exc:
            raise UserInputError(f"world[{i}]: {exc}") from None
    if isinstance(spec.target, dict):
        for key in spec.target:
            if key not in worlds:
                raise _choices(f"target.{key}", "world", key, list(worlds))
    for wkey, world in worlds.items():
        for i, k in enumerate(spec.grid.max_perturb):
            world.check_max_perturb(k, what=f"grid.max_perturb[{i}]")
        if "steer" in spec.task:
            path = f"target.{wkey}" if isinstance(spec.target, dict) else "target"
            for t in spec.targets_for(wkey, world.fates):
                if t not in world.fates:
                    raise _choices(path, f"fate of world {world.name}", t, world.fates)
        for task in spec.task:
            target = spec.targets_for(wkey, world.fates)[0] if task == "steer" else None
            env = {**spec.env, "world": world, "task": task, "target": target,
                   "max_perturb": spec.grid.max_perturb[0], "kinds": tuple(spec.kinds)}
            for reserved in ("world", "task", "target", "max_perturb", "kinds"):
                if reserved in spec.env:
                    raise UserInputError(f"env.{reserved}: set it at the top level of the spec (or in grid), not in env")
            try:
                if spec.dynamics == "ode":
                    for action in spec.grid.action if task != "predict" else ["discrete"]:
                        ode_env_settings({**env, "action": action})
                else:
                    env_settings(env)
            except UserInputError as exc:
                raise UserInputError(f"env: {exc}") from None

    for a in spec.grid.algorithm:
        steps = None
        for m in spec.grid.module:
            steps = probe_algorithm(spec, a, m)
        settings = spec.algorithm_settings.get(a, {})
        if steps is None and "train_batch_size" in settings:
            steps = int(settings["train_batch_size"])
        if steps is not None and spec.budget.env_steps < steps:
            raise UserInputError(
                f"budget.env_steps: {spec.budget.env_steps} is smaller than one training iteration of {a} "
                f"({steps} env steps); raise the budget or set algorithm_settings.{a}.train_batch_size"
            )
    tune_hi = spec.hpo.seed_base + spec.hpo.trials_per_cell
    final_hi = spec.final.seed_base + spec.final.seeds
    if spec.final.seeds and not (tune_hi <= spec.final.seed_base or final_hi <= spec.hpo.seed_base):
        raise UserInputError(
            f"final.seed_base: final seeds {spec.final.seed_base}..{final_hi - 1} overlap tuning seeds "
            f"{spec.hpo.seed_base}..{tune_hi - 1}; tuning and final seeds must be disjoint"
        )
    if spec.execution.address is not None and not spec.execution.address.strip():
        raise UserInputError("execution.address: empty; use auto, ray://host:port or host:port")


# Algorithm settings that name a checkpoint for trials to load (LoRA_staged's `pretrained`).
CHECKPOINT_KEYS = ("pretrained",)


def _checkpoint_paths(where: str, value: Any) -> list[tuple[str, str]]:
    """(key path, path) of every checkpoint setting inside nested settings."""
    if isinstance(value, ParamSpec):
        values = value.choices if value.choices is not None else [value.value]
        return [(where, v) for v in values if isinstance(v, str) and v]
    found: list[tuple[str, str]] = []
    for key, sub in (value.items() if isinstance(value, dict) else ()):
        path = f"{where}.{key}"
        if key in CHECKPOINT_KEYS and isinstance(sub, str) and sub:
            found.append((path, sub))
        elif isinstance(sub, (dict, ParamSpec)) and (key in CHECKPOINT_KEYS or isinstance(sub, dict)):
            found += _checkpoint_paths(path, sub)
    return found


def _storage_root(storage: str) -> Path | None:
    """The local directory of the run storage; None when it is a remote URI."""
    if "://" not in storage:
        return Path(storage).expanduser().resolve()
    if storage.startswith("file://"):
        return Path(storage[len("file://"):]).resolve()
    return None


def external_checkpoints(spec: TournamentSpec) -> list[tuple[str, str]]:
    """(key path, path) of checkpoints the spec loads from outside its own storage."""
    found = _checkpoint_paths("algorithm_settings", spec.algorithm_settings)
    found += _checkpoint_paths("hpo.extra", spec.hpo.extra)
    root = _storage_root(spec.execution.storage)
    outside = []
    for where, path in found:
        p = Path(path).expanduser().resolve()
        if root is None or not p.is_relative_to(root):
            outside.append((where, path))
    return outside


def warn_external_checkpoints(spec: TournamentSpec) -> None:
    """RLlib and module checkpoints are pickles, and unpickling runs code: say so when a spec
    loads one that this tool did not write into the run storage."""
    for where, path in external_checkpoints(spec):
        warnings.warn(
            f"{where}: checkpoint {path} lies outside the run storage {spec.execution.storage}; "
            "checkpoints are pickle files and loading one can run arbitrary code, so use only "
            "checkpoints you trust",
            UserWarning,
            stacklevel=2,
        )
