"""What every algorithm's build shares: the Stage, the trial's env / module / learner / runners, weights.

An algorithm file (algorithms/ppo.py, ...) starts from its RLlib config class, calls
:func:`apply_common` (environment, module, learner with the optimizer plumbing,
env runners, device and seed) and sets its own training settings. A multi-stage
algorithm returns several :class:`Stage` objects and moves weights between them
with :func:`copy_module_weights`. The algorithm files import this module and the
registry imports the algorithm files, so nothing here imports an algorithm.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from envs.batched_env import BatchedCellFateEnv
from envs.cell_fate_env import CellFateEnv, env_settings
from envs.errors import UserInputError, choices_error
from envs.network import normalize_kinds
from envs.ode.env import OdeCellFateEnv, ode_env_settings
from envs.ode.integrate import check_step
from envs.ode.world import ode_world
from envs.world import load_world

from algorithms.modules import MODULE_KINDS, OBSERVATION, model_config, module_class
from algorithms.optimizer_plumbing import optimizer_settings
from algorithms.settings import CommonSettings
from algorithms.trial_plan import DYNAMICS

if TYPE_CHECKING:
    from ray.rllib.algorithms.algorithm import Algorithm
    from ray.rllib.core.learner.learner import Learner

    from algorithms.trial_plan import TrialPlan

# A TrialRunner.save directory: this file plus one algorithm checkpoint per stage.
STATE_FILE = "trial_runner.json"


@dataclass
class Stage:
    """One RLlib algorithm run inside a trial, for `budget_fraction` of its env steps."""

    name: str
    config: AlgorithmConfig
    budget_fraction: float = 1.0
    # (previous stage's algorithm, this stage's freshly built algorithm) -> None
    transfer: Callable[["Algorithm", "Algorithm"], None] | None = None


def env_class(config: "TrialPlan", vectorised: bool = True) -> type:
    """The environment class of a trial's dynamics (a Boolean world or its stochastic ODEs): what
    the env runners step (`vectorised`), or one cell's env, for evaluation."""
    if config.dynamics not in DYNAMICS:
        raise choices_error("dynamics", config.dynamics, DYNAMICS)
    if config.dynamics == "ode":
        return OdeCellFateEnv
    return BatchedCellFateEnv if vectorised else CellFateEnv


def env_config(config: "TrialPlan") -> dict[str, Any]:
    """The env settings of a trial; the World (ODE: the OdeWorld) object itself travels so
    workers never rebuild it."""
    if config.module not in MODULE_KINDS:
        raise choices_error("module", config.module, MODULE_KINDS)
    observation = OBSERVATION[config.module]
    given = config.env.get("observation", observation)
    if given != observation:
        raise UserInputError(f"module {config.module} reads the {observation!r} observation, env sets {given!r}")
    reserved = {"world", "task", "target", "max_perturb", "kinds", "seed", "action"} & set(config.env)
    if reserved:
        raise UserInputError(f"env setting {sorted(reserved)[0]!r} belongs in the trial config itself, not in env")
    ode = env_class(config) is OdeCellFateEnv
    if config.action != "discrete" and not ode:
        raise UserInputError(f"action {config.action!r} needs dynamics 'ode' (Boolean worlds have discrete perturbations)")
    cfg = {
        **config.env,
        "world": load_world(config.world),
        "task": config.task,
        "target": config.target,
        "max_perturb": config.max_perturb,
        "kinds": tuple(config.kinds),
        "observation": observation,
    }
    if ode:
        cfg["action"] = config.action
        checked = ode_env_settings(cfg)  # every value checked here, in the driver
        cfg["world"] = ode_world(checked["world"], checked["ode"])
        check_step(cfg["world"].model)  # an unstable time step is refused here, not found as NaN in a trial
        cfg.pop("background", None)  # already in the OdeWorld's world
    else:
        env_settings(cfg)  # every value checked here, in the driver
    return cfg


def resolve_device(device: str) -> str:
    if device not in ("cpu", "cuda", "auto"):
        raise choices_error("device", device, ("cpu", "cuda", "auto"))
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def apply_common(
    algo_config: AlgorithmConfig,
    config: "TrialPlan",
    settings: CommonSettings,
    learner_class: type,
    module_overrides: dict | None = None,
) -> AlgorithmConfig:
    """Environment, module, learner + optimizer, env runners, device and seed of a trial.

    `module_overrides` adds model_config entries an algorithm needs (SAC: {"q_heads": 2});
    `settings` supplies the CommonSettings part.
    """
    env_cfg = env_config(config)
    cls = env_class(config)
    world = env_cfg["world"].world if cls is OdeCellFateEnv else env_cfg["world"]
    options = {**config.module_options, **(module_overrides or {})}
    gpu = resolve_device(config.device) == "cuda"
    return (
        # The class itself, not a registry name: RLlib's vector_entry_point hands it
        # num_envs, so all of a runner's envs advance in one BatchedCellFateEnv (the ODE
        # env is one cell, vectorised by gymnasium).
        algo_config.environment(env=cls, env_config=env_cfg)
        .framework("torch")
        .rl_module(
            rl_module_spec=RLModuleSpec(
                module_class=module_class(config.module),
                model_config=model_config(world, config.task, normalize_kinds(config.kinds), config.module, options,
                                          action=config.action),
            )
        )
        .env_runners(
            num_env_runners=config.num_env_runners,
            num_envs_per_env_runner=settings.num_envs_per_env_runner,
            rollout_fragment_length=settings.rollout_fragment_length,
            # All envs of a runner advance in one array operation (envs.batched_env).
            gym_env_vectorize_mode="vector_entry_point" if cls is BatchedCellFateEnv else "sync",
        )
        .learners(
            num_learners=0,
            num_gpus_per_learner=1 if gpu else 0,
            learner_class=learner_class,
            learner_config_dict=optimizer_settings(
                config.optimizer, config.optimizer_hparams, settings.optimizer_hparams_by_group
            ),
        )
        .debugging(seed=config.seed)
    )


# ---- the learner and its weights ------------------------------------------------------------


def local_learner(algo: "Algorithm") -> "Learner":
    """The algorithm's learner; trials build one, local to the trial's process (num_learners=0)."""
    group = algo.learner_group
    if not group.is_local:
        raise ValueError("the algorithm's learners are remote actors; trials train with one local learner")
    (result,) = group.foreach_learner(lambda learner: learner)
    return result.get()


def learner_module(algo: "Algorithm") -> Any:
    """The default RLModule of the algorithm's local learner: the copy being trained."""
    return local_learner(algo).module[DEFAULT_MODULE_ID]


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


# ---- where a trial checkpoint keeps its stages ------------------------------------------------


def stage_dir(path: str, stage_index: int) -> str:
    """Where TrialRunner.save puts the algorithm checkpoint of stage `stage_index`."""
    return os.path.abspath(os.path.join(path, f"stage_{stage_index}"))


def saved_stage_dir(path: str) -> str | None:
    """The current stage's checkpoint inside a TrialRunner.save directory; None for any other path."""
    if not (os.path.isdir(path) and os.path.exists(os.path.join(path, STATE_FILE))):
        return None
    with open(os.path.join(path, STATE_FILE)) as fh:
        return stage_dir(path, int(json.load(fh)["stage_index"]))
