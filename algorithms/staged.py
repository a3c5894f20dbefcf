"""TRPO_to_PPO (the seed's "Algorithm 2") and its reversed ablation PPO_to_TRPO.

A short first stage with one algorithm, then the rest of the budget with the
other, warm-started from exactly the first stage's weights, inside one trial
(one Tune trial, one learning curve; ``TrialRunner`` marks the stage in every
result and checkpoints whichever stage is running).

Why: TRPO's trust-region steps are conservative and monotone, a safe way to get
out of the initial policy; PPO's many cheap minibatch epochs then exploit. The
seed ran TRPO for 1,000 of 100,000 steps, hence the default first share of 1%.

``algo_hparams`` (all optional)::

    stages: [["TRPO", 0.01], ["PPO", 0.99]]   # order and budget shares (sum to 1)
    first_stage_share: 0.01                   # shorthand when the order is the default
    TRPO: {...}, PPO: {...}                   # each stage's own algo_hparams

plus the registry's common keys (torch_threads, num_envs_per_env_runner, ...),
which every stage receives. Unless a stage's ``train_batch_size`` is given, a
stage whose share is smaller than its default batch samples its whole share in
one iteration (at least 64 steps), so a 1% stage is not rounded up to a full
1024-step TRPO batch.

Moving weights: RLlib's ``set_state`` loads with strict=False and ignores unknown
keys silently, so :func:`transfer_weights` asserts that both modules have the
same parameter keys and that every one of them holds the source's value
afterwards, in the learner and in the local env runner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from envs.errors import UserInputError, choices_error

from algorithms.ppo import PPO_DEFAULTS
from algorithms.registry import (
    COMMON_HPARAMS,
    Stage,
    as_array,
    build_algorithm_config,
    copy_module_weights,
    learner_module,
)
from algorithms.zoo import A2C_DEFAULTS, TRPO_DEFAULTS

if TYPE_CHECKING:
    from ray.rllib.algorithms.algorithm import Algorithm

    from algorithms.trial import TrialConfig

STAGE_ALGORITHMS = ("TRPO", "PPO", "A2C")
DEFAULT_ORDER = {"TRPO_to_PPO": ("TRPO", "PPO"), "PPO_to_TRPO": ("PPO", "TRPO")}
DEFAULT_FIRST_SHARE = 0.01
DEFAULT_BATCH = {
    "TRPO": TRPO_DEFAULTS["train_batch_size"],
    "PPO": PPO_DEFAULTS["train_batch_size"],
    "A2C": A2C_DEFAULTS["train_batch_size"],
}
MIN_STAGE_BATCH = 64


def transfer_weights(source: "Algorithm", target: "Algorithm") -> list[str]:
    """Copy every weight of `source`'s module into `target`'s and prove it arrived.

    Raises ValueError when the key sets differ or a value did not land (learner, and
    every key of the local env runner's module). Returns the copied keys.
    """
    src = learner_module(source).get_state()
    dst_keys = set(learner_module(target).get_state())
    if set(src) != dst_keys:
        raise ValueError(
            f"stage modules differ: only in source {sorted(set(src) - dst_keys)[:5]}, "
            f"only in target {sorted(dst_keys - set(src))[:5]}"
        )
    keys = copy_module_weights(source, target)
    wrong = [k for k, v in learner_module(target).get_state().items() if not _equal(v, src[k])]
    runner = target.env_runner
    if runner is not None and runner.module is not None:
        # An inference-only runner module holds the actor only: every key it has must match.
        runner_state = runner.module.get_state()
        wrong += [k for k, v in runner_state.items() if k not in src or not _equal(v, src[k])]
    if wrong:
        raise ValueError(f"weights did not arrive in the next stage: {wrong[:5]}")
    return keys


def _equal(a: Any, b: Any) -> bool:
    a, b = as_array(a), as_array(b)
    return a.shape == b.shape and bool(np.array_equal(a, b))


def stage_plan(name: str, hparams: dict) -> list[tuple[str, float]]:
    """[(algorithm, budget share), ...] from ``stages`` / ``first_stage_share``."""
    if "stages" in hparams and "first_stage_share" in hparams:
        raise UserInputError(f"{name}: give either 'stages' or 'first_stage_share', not both")
    if "stages" in hparams:
        plan = []
        for item in hparams["stages"]:
            if not isinstance(item, (list, tuple)) or len(item) != 2:
                raise UserInputError(f"{name}: each stage is [algorithm, share], got {item!r}")
            algo, share = item
            if algo not in STAGE_ALGORITHMS:
                raise choices_error(f"{name} stage algorithm", algo, STAGE_ALGORITHMS)
            plan.append((str(algo), float(share)))
        if len(plan) < 2:
            raise UserInputError(f"{name}: 'stages' needs at least two stages, got {len(plan)}")
        return plan
    share = float(hparams.get("first_stage_share", DEFAULT_FIRST_SHARE))
    if not 0.0 < share < 1.0:
        raise UserInputError(f"{name}: first_stage_share must be in (0, 1), got {share}")
    first, second = DEFAULT_ORDER[name]
    return [(first, share), (second, 1.0 - share)]


def _stage_hparams(trial: "TrialConfig", algo: str, share: float, hparams: dict) -> dict:
    own = dict(hparams.get(algo) or {})
    if not isinstance(own, dict):
        raise UserInputError(f"{trial.algorithm}: hyperparameters of stage {algo} must be a mapping")
    common = {k: v for k, v in hparams.items() if k in COMMON_HPARAMS}
    if "train_batch_size" not in own:
        budget = max(MIN_STAGE_BATCH, int(round(share * trial.env_steps)))
        own["train_batch_size"] = min(DEFAULT_BATCH[algo], budget)
        if algo == "PPO":
            own.setdefault("minibatch_size", min(128, own["train_batch_size"]))
        if algo == "TRPO":
            own.setdefault("batch_size", min(128, own["train_batch_size"]))
    return {**common, **own}


def staged_stages(trial: "TrialConfig") -> list[Stage]:
    """The stages of trial.algorithm (TRPO_to_PPO or PPO_to_TRPO), weights carried forward."""
    hparams = dict(trial.algo_hparams)
    stages = []
    for i, (algo, share) in enumerate(stage_plan(trial.algorithm, hparams)):
        config = build_algorithm_config(trial, algo, stage_hparams=_stage_hparams(trial, algo, share, hparams))
        stages.append(Stage(algo, config, share, transfer=transfer_weights if i > 0 else None))
    return stages
