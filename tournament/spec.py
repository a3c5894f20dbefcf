"""The tournament spec: pydantic models, YAML loading, and validation before Ray starts.

A spec names the worlds, tasks and targets, the grid axes (algorithm x optimizer x
MAX_PERTURB x module), the step budget of a trial, the Optuna search per cell, early stopping,
the final multi-seed phase, and where and how to run. Everything not given takes a default;
`TournamentSpec.model_dump()` is the spec as run (written to `spec.yaml`).

Every mistake a user can make raises `envs.errors.UserInputError` with one line that names the
key path (e.g. `grid.algorithm[1]`) and, for names, the valid choices.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from envs.errors import UserInputError

# Seeds: tuning trial n of a cell trains with hpo.seed_base + n, final seed j with
# final.seed_base + j. The ranges are checked to be disjoint (Eimer et al., ICML 2023: tune on
# other seeds than those you report). Evaluation episodes use yet other seeds (evaluation.seed).
DEFAULT_FINAL_SEED_BASE = 1_000_000
DEFAULT_EVAL_SEED = 2_000_000_000

TASKS = ("steer", "predict")
SAMPLERS = ("tpe", "random")
DEVICES = ("cpu", "cuda", "auto")
ADAM_FAMILY = ("adam", "amsgrad")
# Optimizer hyperparameters the search space may name, per optimizer family. asgd_* search
# lr_min and lr_ratio = lr_max / lr_min >= 1, so lr_min <= lr_max holds for every sample.
ADAM_PARAMS = ("lr", "eps", "weight_decay")
ASGD_PARAMS = ("lr_min", "lr_ratio", "lr_max", "eps", "weight_decay", "switch", "threshold")
DEFAULT_SPACE: dict[str, dict[str, Any]] = {
    "adam": {"lr": [1e-5, 3e-3]},
    "amsgrad": {"lr": [1e-5, 3e-3]},
    "asgd_adam": {"lr_min": [1e-5, 1e-3], "lr_ratio": [1.0, 30.0]},
    "asgd_amsgrad": {"lr_min": [1e-5, 1e-3], "lr_ratio": [1.0, 30.0]},
}
# The class that trains one trial unless the spec names another (execution.runner).
DEFAULT_RUNNER = "algorithms.trial:TrialRunner"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _as_list(value: Any) -> Any:
    """Let a single value stand for a one-element list (`algorithm: PPO`)."""
    if value is None:
        return value
    return value if isinstance(value, (list, tuple)) else [value]


class ParamSpec(_Strict):
    """One searched (or fixed) hyperparameter.

    YAML forms: a number or string (fixed), `[low, high]` (log-uniform when low > 0),
    `{low, high, log, integer}`, or `{choices: [...]}`.
    """

    value: Any = None
    low: float | None = None
    high: float | None = None
    log: bool | None = None
    integer: bool = False
    choices: list[Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return data
        if isinstance(data, (list, tuple)):
            if len(data) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in data):
                raise ValueError("a range is [low, high] with two numbers")
            return {"low": data[0], "high": data[1]}
        return {"value": data}

    @model_validator(mode="after")
    def _consistent(self) -> "ParamSpec":
        if self.choices is not None:
            if not self.choices:
                raise ValueError("choices must not be empty")
            return self
        if self.low is None and self.high is None:
            if self.value is None:
                raise ValueError("give a value, [low, high], or {choices: [...]}")
            return self
        if self.low is None or self.high is None:
            raise ValueError("a range needs both low and high")
        if self.low > self.high:
            raise ValueError(f"low {self.low} is greater than high {self.high}")
        if self.log is None:
            self.log = self.low > 0
        if self.log and self.low <= 0:
            raise ValueError("a log-uniform range needs low > 0")
        return self

    @property
    def fixed(self) -> bool:
        return self.choices is None and self.low is None

    def bounds(self) -> tuple[float, float] | None:
        """(low, high) of the values this parameter can take, None for choices of non-numbers."""
        if self.fixed:
            return (self.value, self.value) if isinstance(self.value, (int, float)) else None
        if self.choices is not None:
            nums = [c for c in self.choices if isinstance(c, (int, float)) and not isinstance(c, bool)]
            return (min(nums), max(nums)) if len(nums) == len(self.choices) else None
        return self.low, self.high


class GridSpec(_Strict):
    """The axes whose product are the grid cells (each with its own Optuna study)."""

    algorithm: list[str] = Field(default_factory=lambda: ["PPO"])
    optimizer: list[str] = Field(default_factory=lambda: ["adam"])
    max_perturb: list[int] = Field(default_factory=lambda: [2])
    module: list[str] = Field(default_factory=lambda: ["gnn"])

    @field_validator("algorithm", "optimizer", "max_perturb", "module", mode="before")
    @classmethod
    def _lists(cls, v: Any) -> Any:
        return _as_list(v)

    @field_validator("algorithm", "optimizer", "max_perturb", "module")
    @classmethod
    def _non_empty_unique(cls, v: list) -> list:
        if not v:
            raise ValueError("must name at least one value")
        if len(set(v)) != len(v):
            raise ValueError(f"repeats a value: {v}")
        return v


class BudgetSpec(_Strict):
    """Environment steps per trial, all stages together."""

    env_steps: int = Field(20_000, gt=0)


class HPOSpec(_Strict):
    """Optuna per grid cell: how many trials, which sampler, and the search space."""

    trials_per_cell: int = Field(4, ge=1)
    sampler: Literal["tpe", "random"] = "tpe"
    seed: int = Field(0, ge=0)
    n_startup_trials: int = Field(5, ge=0)
    seed_base: int = Field(0, ge=0)
    space: dict[str, dict[str, ParamSpec]] = Field(default_factory=dict)
    extra: dict[str, dict[str, ParamSpec]] = Field(default_factory=dict)


class EarlyStoppingSpec(_Strict):
    """Median stopping within a cell: a trial is compared only with trials of its own cell."""

    enabled: bool = False
    grace_iterations: int = Field(3, ge=1)
    min_trials: int = Field(2, ge=1)


class EvaluationSpec(_Strict):
    """Greedy-policy evaluation on held-out episode seeds during and at the end of a trial."""

    episodes: int = Field(20, ge=1)
    every_iterations: int = Field(5, ge=1)
    seed: int = Field(DEFAULT_EVAL_SEED, ge=0)


class FinalSpec(_Strict):
    """The best configuration of each cell re-trained on seeds disjoint from the tuning seeds."""

    seeds: int = Field(5, ge=0)
    seed_base: int = Field(DEFAULT_FINAL_SEED_BASE, ge=0)
    eval_episodes: int = Field(50, ge=1)


class OracleSpec(_Strict):
    """The reference each cell's optimality gap is measured against, computed before the run.

    The run never waits on it longer than `time_budget_s` per entry: past that the best
    set found so far stands as a lower bound (marked so), and the leaderboard raises it to
    the best final score of any entry when one does better. `n_cells` Monte-Carlo cells per
    perturbation set where the exact chain is out of reach (the leaders are re-estimated on 4x as many).
    """

    time_budget_s: float = Field(60.0, gt=0)
    n_cells: int = Field(500, ge=100)


class ResourcesSpec(_Strict):
    """What one trial uses (Tune reserves it through the algorithm's resource request).

    `trial_timeout_s` (wall seconds) and `trial_memory_mb` (resident memory of the trial's
    process) are budgets checked after every training iteration: a trial over either stops and
    is recorded as failed with the reason, without retries; None = no limit.
    """

    num_env_runners: int = Field(0, ge=0)
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    trial_timeout_s: float | None = Field(None, gt=0)
    trial_memory_mb: float | None = Field(None, gt=0)


class ExecutionSpec(_Strict):
    """Where and how the Tune experiment runs."""

    storage: str = "runs"
    address: str | None = None
    num_cpus: int | None = Field(None, ge=1)
    max_concurrent: int | None = Field(None, ge=1)
    max_failures: int = Field(2, ge=0)
    checkpoint_every: int = Field(5, ge=1)
    # The class that trains one trial, "module:Class" with the TrialRunner interface.
    runner: str = DEFAULT_RUNNER


class TournamentSpec(_Strict):
    """A whole tournament; see the README for every key."""

    name: str
    description: str = ""
    world: list[str] = Field(default_factory=lambda: ["myeloid"])
    task: list[Literal["steer", "predict"]] = Field(default_factory=lambda: ["steer"])
    # steer targets: one fate, a list, or {world: fate(s)}; None = the world's last fate
    target: str | list[str] | dict[str, str | list[str]] | None = None
    kinds: list[str] = Field(default_factory=lambda: ["knockout", "overexpression"])
    env: dict[str, Any] = Field(default_factory=dict)
    grid: GridSpec = Field(default_factory=GridSpec)
    algorithm_settings: dict[str, dict[str, Any]] = Field(default_factory=dict)
    module_settings: dict[str, dict[str, Any]] = Field(default_factory=dict)
    optimizer_settings: dict[str, dict[str, Any]] = Field(default_factory=dict)
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    hpo: HPOSpec = Field(default_factory=HPOSpec)
    early_stopping: EarlyStoppingSpec = Field(default_factory=EarlyStoppingSpec)
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    final: FinalSpec = Field(default_factory=FinalSpec)
    oracle: OracleSpec = Field(default_factory=OracleSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    execution: ExecutionSpec = Field(default_factory=ExecutionSpec)

    @field_validator("world", "task", "kinds", mode="before")
    @classmethod
    def _lists(cls, v: Any) -> Any:
        return _as_list(v)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_PATTERN.match(v):
            raise ValueError("use letters, digits, '_', '.', '-' (it names the run directory)")
        return v

    def targets_for(self, world_key: str, world_fates: tuple[str, ...]) -> list[str]:
        """The steer targets of one world (spec order)."""
        t = self.target
        if isinstance(t, dict):
            t = t.get(world_key)
        if t is None:
            return [world_fates[-1]]
        return list(_as_list(t))

    def to_yaml(self) -> str:
        """The spec as run: every default filled in."""
        return yaml.safe_dump(self.model_dump(mode="json", exclude_none=False), sort_keys=False)


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
    from algorithms.trial import TrialConfig
    from envs.world import load_world

    world = spec.world[0]
    task = spec.task[0]
    target = spec.targets_for(world, load_world(world).fates)[0] if task == "steer" else None
    settings = {k: v for k, v in spec.algorithm_settings.get(algorithm, {}).items() if not k.startswith("_")}
    extra = {k: _probe_value(p) for k, p in spec.hpo.extra.get(algorithm, {}).items()}
    where = f"algorithm_settings.{algorithm}" if not extra else f"algorithm_settings.{algorithm} / hpo.extra.{algorithm}"
    config = TrialConfig(world=world, task=task, target=target, max_perturb=spec.grid.max_perturb[0],
                         kinds=tuple(spec.kinds), env=dict(spec.env), algorithm=algorithm, module=module,
                         module_options=dict(spec.module_settings.get(module, {})),
                         algo_hparams={**settings, **extra}, env_steps=spec.budget.env_steps)
    try:
        first = algorithm_stages(config)[0].config
    except UserInputError as exc:
        raise UserInputError(f"{where}: {exc}") from None
    steps = getattr(first, "train_batch_size_per_learner", None) or getattr(first, "train_batch_size", None)
    return int(steps) if steps else None


# ---- errors ------------------------------------------------------------------------------------


def _loc_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<top>"


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The model class that owns the last key of `loc` (to list its valid keys)."""
    model: Any = TournamentSpec
    for part in loc[:-1]:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None
        ann = field.annotation
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _from_validation_error(exc: ValidationError) -> UserInputError:
    err = exc.errors()[0]
    # dict-of-ParamSpec paths contain pydantic's internal union tags; drop non-key parts
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or "function-" in p)))
    path = _loc_path(loc)
    if err["type"] == "extra_forbidden":
        model = _model_at(loc)
        valid = ", ".join(model.model_fields) if model else ""
        parent = _loc_path(loc[:-1])
        where = f" in {parent}" if loc[:-1] else ""
        return UserInputError(f"unknown key {loc[-1]!r}{where}; valid keys: {valid}")
    if err["type"] == "missing":
        return UserInputError(f"{path}: required key is missing")
    msg = err["msg"].removeprefix("Value error, ")
    return UserInputError(f"{path}: {msg} (got {err.get('input')!r})")


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


def resolved_space(spec: TournamentSpec, optimizer: str) -> dict[str, ParamSpec]:
    """The search space of one optimizer: the defaults with the spec's entries on top."""
    params = {k: ParamSpec.model_validate(v) for k, v in DEFAULT_SPACE[optimizer].items()}
    given = spec.hpo.space.get(optimizer, {})
    if "lr_max" in given:
        params.pop("lr_ratio", None)
    params.update(given)
    return params


def check_spec(spec: TournamentSpec) -> None:
    """Checks that need the worlds and registries; raises UserInputError with the key path."""
    from envs.cell_fate_env import env_settings
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
    n_kinds = len(set(normalize_kind(k) for k in spec.kinds))
    for wkey, world in worlds.items():
        # at most one pin per gene, so the environment's bound is the number of genes
        limit = min(world.n_genes, world.n_genes * n_kinds)
        for i, k in enumerate(spec.grid.max_perturb):
            if not 1 <= k <= limit:
                raise UserInputError(
                    f"grid.max_perturb[{i}]: {k} is out of range for world {world.name} "
                    f"({world.n_genes} genes x {n_kinds} kinds, one perturbation per gene); valid: 1..{limit}"
                )
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


def validate_spec_fields(data: Any, source: str = "spec") -> TournamentSpec:
    """The spec's fields checked (types, ranges, names) without probing RLlib or reading
    checkpoints: enough to compare a run's recorded spec with a new one."""
    if not isinstance(data, dict):
        raise UserInputError(f"{source}: a spec is a mapping of keys (name, world, grid, ...), got {type(data).__name__}")
    try:
        return TournamentSpec.model_validate(data)
    except ValidationError as exc:
        raise _from_validation_error(exc) from None


def parse_spec(data: Any, source: str = "spec") -> TournamentSpec:
    """A validated spec from already-parsed YAML data."""
    spec = validate_spec_fields(data, source)
    # before check_spec: probing LoRA_staged already reads its pretrained checkpoint
    warn_external_checkpoints(spec)
    check_spec(spec)
    return spec


def load_spec(path: "str | Path") -> TournamentSpec:
    """Read and validate a YAML spec file."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"spec file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserInputError(f"{path}: invalid YAML{where}: {problem}") from None
    return parse_spec(data, str(path))


def with_overrides(spec: TournamentSpec, **execution: Any) -> TournamentSpec:
    """A copy with execution settings from the command line (None = keep the spec's)."""
    given = {k: v for k, v in execution.items() if v is not None}
    if not given:
        return spec
    data = spec.model_dump()
    data["execution"].update(given)
    try:
        return TournamentSpec.model_validate(data)
    except ValidationError as exc:
        raise _from_validation_error(exc) from None

