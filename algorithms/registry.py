"""Algorithm names -> RLlib AlgorithmConfig builders, and the stages of multi-stage algorithms.

Two kinds of entries, added with :func:`register_algorithm` by the file that
implements the algorithm (``algorithms/ppo.py`` registers "PPO"):

- a *config builder* ``fn(trial: TrialConfig, hparams: dict) -> AlgorithmConfig``
  for an algorithm that is one RLlib algorithm (PPO, A2C, TRPO, SAC). It starts
  from its RLlib config class, calls :func:`apply_common` (environment, module,
  learner with the optimizer plumbing, runners, seed) and sets its own training
  settings from ``hparams``;
- a *stage builder* ``fn(trial: TrialConfig) -> list[Stage]`` for an algorithm
  that chains several (TRPO_to_PPO, PPO_to_TRPO, LoRA_staged). Each Stage holds
  a ready AlgorithmConfig (usually ``build_algorithm_config(trial, "PPO",
  stage_hparams=...)``), its share of the trial's env-step budget, and an
  optional ``transfer(previous_algo, new_algo)`` hook that moves weights (see
  :func:`copy_module_weights`). A name with only a config builder is one stage.

Each entry declares the ``algo_hparams`` keys it accepts; any other key is a
UserInputError (typos must not be silently ignored). Registering modules are
imported on first use from ``PROVIDERS``; a name whose module does not exist
raises "algorithm X is not available yet".
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from envs.cell_fate_env import env_settings, register_env
from envs.errors import UserInputError, choices_error
from envs.world import load_world

from algorithms.modules import MODULE_KINDS, OBSERVATION, model_config, module_class
from algorithms.optimizer_plumbing import optimizer_settings

if TYPE_CHECKING:
    from ray.rllib.algorithms.algorithm import Algorithm

    from algorithms.trial import TrialConfig

ALGORITHM_NAMES = ("PPO", "A2C", "SAC", "TRPO", "TRPO_to_PPO", "PPO_to_TRPO", "LoRA_staged")
__all__ = [
    "ALGORITHM_NAMES",
    "COMMON_HPARAMS",
    "MODULE_KINDS",
    "PROVIDERS",
    "Stage",
    "algorithm_stages",
    "apply_common",
    "build_algorithm_config",
    "copy_module_weights",
    "env_config",
    "register_algorithm",
]

# Module that registers each name when imported (zoo registers all but PPO, and imports
# each algorithm's own file only when a trial builds it).
PROVIDERS: dict[str, str] = {
    "PPO": "algorithms.ppo",
    "A2C": "algorithms.zoo",
    "SAC": "algorithms.zoo",
    "TRPO": "algorithms.zoo",
    "TRPO_to_PPO": "algorithms.zoo",
    "PPO_to_TRPO": "algorithms.zoo",
    "LoRA_staged": "algorithms.zoo",
}

# Keys every algorithm accepts; apply_common consumes them.
COMMON_HPARAMS = frozenset(
    {"torch_threads", "num_envs_per_env_runner", "rollout_fragment_length", "optimizer_hparams_by_group"}
)
COMMON_DEFAULTS: dict[str, Any] = {"torch_threads": 1, "num_envs_per_env_runner": 32, "rollout_fragment_length": "auto"}

ConfigBuilder = Callable[["TrialConfig", dict], AlgorithmConfig]
StageBuilder = Callable[["TrialConfig"], "list[Stage]"]


@dataclass
class Stage:
    """One RLlib algorithm run inside a trial, for `budget_fraction` of its env steps."""

    name: str
    config: AlgorithmConfig
    budget_fraction: float = 1.0
    # (previous stage's algorithm, this stage's freshly built algorithm) -> None
    transfer: Callable[["Algorithm", "Algorithm"], None] | None = None


@dataclass
class _Entry:
    config_builder: ConfigBuilder | None
    stage_builder: StageBuilder | None
    hparams: frozenset[str]


_REGISTRY: dict[str, _Entry] = {}


def register_algorithm(
    name: str,
    *,
    config_builder: ConfigBuilder | None = None,
    stage_builder: StageBuilder | None = None,
    hparams: Iterable[str] = (),
) -> None:
    """Add (or replace) an algorithm; `hparams` are the algo_hparams keys it accepts."""
    if name not in ALGORITHM_NAMES:
        raise ValueError(f"{name!r} is not in ALGORITHM_NAMES {ALGORITHM_NAMES}")
    if (config_builder is None) == (stage_builder is None):
        raise ValueError("give exactly one of config_builder and stage_builder")
    _REGISTRY[name] = _Entry(config_builder, stage_builder, frozenset(hparams) | COMMON_HPARAMS)


def _entry(name: str) -> _Entry:
    if name not in ALGORITHM_NAMES:
        raise choices_error("algorithm", name, ALGORITHM_NAMES)
    if name not in _REGISTRY:
        provider = PROVIDERS[name]
        if importlib.util.find_spec(provider) is not None:
            importlib.import_module(provider)
        if name not in _REGISTRY:
            raise UserInputError(f"algorithm {name} is not available yet; available: {', '.join(available_algorithms())}")
    return _REGISTRY[name]


def available_algorithms() -> tuple[str, ...]:
    """Names whose implementation is present (imports every provider that exists)."""
    for provider in dict.fromkeys(PROVIDERS.values()):
        if importlib.util.find_spec(provider) is not None:
            importlib.import_module(provider)
    return tuple(n for n in ALGORITHM_NAMES if n in _REGISTRY)


def _check_hparams(name: str, hparams: dict, accepted: frozenset[str]) -> None:
    unknown = sorted(set(hparams) - accepted)
    if unknown:
        raise choices_error(f"{name} hyperparameter", unknown[0], sorted(accepted))


def build_algorithm_config(
    config: "TrialConfig", algorithm: str | None = None, stage_hparams: dict | None = None
) -> AlgorithmConfig:
    """Single-stage RLlib config for `algorithm` (default: config.algorithm).

    Hyperparameters come from `stage_hparams` when given (a stage builder passes
    its stage's settings), else from ``config.algo_hparams``. For a multi-stage
    name this is the first stage's config.
    """
    name = algorithm or config.algorithm
    entry = _entry(name)
    if entry.config_builder is None:
        return algorithm_stages(config)[0].config
    hparams = dict(config.algo_hparams if stage_hparams is None else stage_hparams)
    _check_hparams(name, hparams, entry.hparams)
    return entry.config_builder(config, hparams)


def algorithm_stages(config: "TrialConfig") -> list[Stage]:
    """The stages a trial of `config.algorithm` runs, in order; budget fractions sum to 1."""
    entry = _entry(config.algorithm)
    if entry.stage_builder is None:
        return [Stage(config.algorithm, build_algorithm_config(config), 1.0)]
    _check_hparams(config.algorithm, config.algo_hparams, entry.hparams)
    stages = entry.stage_builder(config)
    total = sum(s.budget_fraction for s in stages)
    if not stages or abs(total - 1.0) > 1e-6 or any(s.budget_fraction <= 0 for s in stages):
        raise UserInputError(f"{config.algorithm}: stage budget fractions must be positive and sum to 1, got {[s.budget_fraction for s in stages]}")
    return stages


# ---- shared pieces for config builders ---------------------------------------------------


def env_config(config: "TrialConfig") -> dict[str, Any]:
    """CellFateEnv settings of a trial; the World object itself travels so workers never reload it."""
    if config.module not in MODULE_KINDS:
        raise choices_error("module", config.module, MODULE_KINDS)
    observation = OBSERVATION[config.module]
    given = config.env.get("observation", observation)
    if given != observation:
        raise UserInputError(f"module {config.module} reads the {observation!r} observation, env sets {given!r}")
    reserved = {"world", "task", "target", "max_perturb", "kinds", "seed"} & set(config.env)
    if reserved:
        raise UserInputError(f"env setting {sorted(reserved)[0]!r} belongs in the trial config itself, not in env")
    cfg = {
        **config.env,
        "world": load_world(config.world),
        "task": config.task,
        "target": config.target,
        "max_perturb": config.max_perturb,
        "kinds": tuple(config.kinds),
        "observation": observation,
    }
    env_settings(cfg)  # every value checked here, in the driver
    return cfg


def resolve_device(device: str) -> str:
    if device not in ("cpu", "cuda", "auto"):
        raise choices_error("device", device, ("cpu", "cuda", "auto"))
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def task_defaults(task: str) -> dict[str, Any]:
    """Predict: actions never change what the cell does next, so gamma = 0 turns each
    step into a contextual bandit with the same optimal policy and none of the variance
    of later, action-independent rewards."""
    return {"gamma": 0.0} if task == "predict" else {}


def algorithm_settings(
    defaults: dict[str, Any], config: "TrialConfig", hparams: dict, aliases: dict[str, str] | None = None
) -> dict[str, Any]:
    """An algorithm's defaults, then the task's (predict: gamma 0), then the trial's own
    values for keys the defaults name (`aliases` maps other spellings onto them)."""
    given = {(aliases or {}).get(k, k): v for k, v in hparams.items()}
    task = {k: v for k, v in task_defaults(config.task).items() if k in defaults}
    return {**defaults, **task, **{k: v for k, v in given.items() if k in defaults}}


def apply_common(
    algo_config: AlgorithmConfig,
    config: "TrialConfig",
    hparams: dict,
    learner_class: type,
    module_overrides: dict | None = None,
) -> AlgorithmConfig:
    """Environment, module, learner + optimizer, env runners, device and seed of a trial.

    `module_overrides` adds model_config entries an algorithm needs (SAC: {"q_heads": 2}).
    The COMMON_HPARAMS keys are read here; defaults in COMMON_DEFAULTS.
    """
    register_env()
    env_cfg = env_config(config)
    world = env_cfg["world"]
    settings = env_settings(env_cfg)
    options = {**config.module_options, **(module_overrides or {})}
    common = {**COMMON_DEFAULTS, **{k: v for k, v in hparams.items() if k in COMMON_HPARAMS}}
    gpu = resolve_device(config.device) == "cuda"
    return (
        algo_config.environment("CellFate-v0", env_config=env_cfg)
        .framework("torch")
        .rl_module(
            rl_module_spec=RLModuleSpec(
                module_class=module_class(config.module),
                model_config=model_config(world, config.task, settings["kinds"], config.module, options),
            )
        )
        .env_runners(
            num_env_runners=config.num_env_runners,
            num_envs_per_env_runner=int(common["num_envs_per_env_runner"]),
            rollout_fragment_length=common["rollout_fragment_length"],
            # Gymnasium's sync vector env: the cell-fate env is far too cheap for subprocesses.
            gym_env_vectorize_mode="sync",
        )
        .learners(
            num_learners=0,
            num_gpus_per_learner=1 if gpu else 0,
            learner_class=learner_class,
            learner_config_dict=optimizer_settings(
                config.optimizer, config.optimizer_hparams, hparams.get("optimizer_hparams_by_group")
            ),
        )
        .debugging(seed=config.seed)
    )


def learner_module(algo: "Algorithm") -> Any:
    """The default RLModule of the algorithm's local learner: the copy being trained."""
    from ray.rllib.core import DEFAULT_MODULE_ID

    return algo.learner_group._learner.module[DEFAULT_MODULE_ID]


def as_array(value: Any) -> np.ndarray:
    """A weight (torch tensor or array-like) as a numpy array, for comparing module states."""
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def copy_module_weights(source: "Algorithm", target: "Algorithm", prefixes: Iterable[str] = ("",)) -> list[str]:
    """Copy the default module's weights whose names start with one of `prefixes` from
    `source` to `target` (learner and env runners), asserting that every copied key
    exists with the same shape (RLlib's set_state is strict=False). Returns the keys."""
    src = learner_module(source).get_state()
    dst_module = learner_module(target)
    dst = dst_module.get_state()
    keys = [k for k in src if any(k.startswith(p) for p in prefixes)]
    missing = [k for k in keys if k not in dst or tuple(dst[k].shape) != tuple(src[k].shape)]
    if missing:
        raise ValueError(f"weights do not fit the next stage's module: {missing[:5]}")
    dst_module.set_state({**dst, **{k: src[k] for k in keys}})
    target.env_runner_group.sync_weights(from_worker_or_learner_group=target.learner_group, inference_only=True)
    return keys
