"""The tournament spec's schema: pydantic models for every section, with their defaults.

A spec names the worlds, their dynamics (Boolean or ODE), tasks and targets, the grid axes
(algorithm x optimizer x MAX_PERTURB x module x action), the step budget of a trial, the Optuna search per cell, early stopping,
the final multi-seed phase, the oracle's budget, and where and how to run. Everything not
given takes a default; `TournamentSpec.model_dump()` is the spec as run (written to
`spec.yaml`). Checks that need other layers live in `checks`, YAML reading in `loading`.
"""


from __future__ import annotations

import re
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from algorithms.baselines import BASELINES
from optim.registry import TUNABLE_HPARAMS

BASELINE_NAMES = tuple(BASELINES)

# Seeds: tuning trial n of a cell trains with hpo.seed_base + n, final seed j with
# final.seed_base + j. The ranges are checked to be disjoint (Eimer et al., ICML 2023: tune on
# other seeds than those you report). Evaluation episodes use yet other seeds (evaluation.seed).
DEFAULT_FINAL_SEED_BASE = 1_000_000
DEFAULT_EVAL_SEED = 2_000_000_000

TASKS = ("steer", "predict", "trajectory")  # trajectory: ODE worlds only (envs.ode.env)
SAMPLERS = ("tpe", "random")
DEVICES = ("cpu", "cuda", "auto")
ADAM_FAMILY = ("adam", "amsgrad")
# Optimizer hyperparameters the search space may name, per optimizer family. asgd_* search
# lr_min and lr_ratio = lr_max / lr_min >= 1, so lr_min <= lr_max holds for every sample.
ADAM_PARAMS = TUNABLE_HPARAMS["adam"]
ASGD_PARAMS = ("lr_ratio",) + TUNABLE_HPARAMS["asgd_adam"]  # lr_ratio: the search's reparametrization
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
    # discrete (perturbation kind per gene) | continuous (a Box of gene weights; dynamics: ode)
    action: list[str] = Field(default_factory=lambda: ["discrete"])

    @field_validator("algorithm", "optimizer", "max_perturb", "module", "action", mode="before")
    @classmethod
    def _lists(cls, v: Any) -> Any:
        return _as_list(v)

    @field_validator("algorithm", "optimizer", "max_perturb", "module", "action")
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
    n_cells: int = Field(1000, ge=100)


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


class BaselinesSpec(_Strict):
    """The non-RL baselines scored beside the RL entries of every steer cell, before the run.

    Each name is a baseline of `algorithms.baselines.BASELINES` (random sets, greedy forward
    selection, beam search, simulated annealing, AEON's permanent phenotype control); each gets
    `budget_cells` simulated cells (an exact evaluation counts as `n_cells`), AEON at most
    `control_time_s` seconds. Their rows join the leaderboard (entry "baseline"). An empty list
    turns them off.
    """

    names: list[str] = Field(default_factory=lambda: list(BASELINE_NAMES))
    budget_cells: int = Field(400_000, ge=100)
    n_cells: int = Field(1000, ge=100)
    control_time_s: float = Field(60.0, gt=0)
    seed: int = 0

    @field_validator("names", mode="before")
    @classmethod
    def _names(cls, v: Any) -> Any:
        v = _as_list(v) if v is not None else []
        for name in v:
            if name not in BASELINE_NAMES:
                raise ValueError(f"unknown baseline {name!r}; valid choices: {', '.join(BASELINE_NAMES)}")
        return v


class ExecutionSpec(_Strict):
    """Where and how the Tune experiment runs."""

    storage: str = "runs"
    address: str | None = None
    num_cpus: int | None = Field(None, ge=1)
    max_concurrent: int | None = Field(None, ge=1)
    max_failures: int = Field(2, ge=0)
    checkpoint_every: int = Field(5, ge=1)
    # Tune's own logs of each trial besides result.json (always written; verify reads it):
    # progress.csv and TensorBoard event files in tune/. Each costs driver time per result.
    tune_logs: list[Literal["csv", "tensorboard"]] = Field(default_factory=lambda: ["csv", "tensorboard"])
    # The class that trains one trial, "module:Class" with the TrialRunner interface.
    runner: str = DEFAULT_RUNNER


class TournamentSpec(_Strict):
    """A whole tournament; see the README for every key."""

    name: str
    description: str = ""
    world: list[str] = Field(default_factory=lambda: ["myeloid"])
    # boolean: the world's own logical rules; ode: the same rules as BoolODE-style stochastic ODEs
    # (env.ode holds their parameters), with graded perturbations and the trajectory task
    dynamics: Literal["boolean", "ode"] = "boolean"
    task: list[Literal["steer", "predict", "trajectory"]] = Field(default_factory=lambda: ["steer"])
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
    baselines: BaselinesSpec = Field(default_factory=BaselinesSpec)
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
