"""TRPO_to_PPO (the seed's "Algorithm 2") and its reversed ablation PPO_to_TRPO.

A short first stage with one algorithm, then the rest of the budget with the
other, warm-started from exactly the first stage's weights, inside one trial
(one Tune trial, one learning curve; ``TrialRunner`` marks the stage in every
result and checkpoints whichever stage is running).

Why: TRPO's trust-region steps are conservative and monotone, a safe way to get
out of the initial policy; PPO's many cheap minibatch epochs then exploit. The
seed ran TRPO for 1,000 of 100,000 steps, hence the default first share of 1%.

Settings: :class:`StagedSettings`. Unless a stage's ``train_batch_size`` is given,
a stage whose share is smaller than its algorithm's default batch samples its whole
share in one iteration (at least MIN_STAGE_BATCH steps), so a 1% stage is not
rounded up to a full TRPO batch.

Moving weights: RLlib's ``set_state`` loads with strict=False and ignores unknown
keys silently, so :func:`transfer_weights` asserts that both modules have the
same parameter keys and that every one of them holds the source's value
afterwards, in the learner and in the local env runner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from envs.errors import UserInputError, choices_error

from algorithms import a2c, ppo, trpo
from algorithms.common import Stage, as_array, copy_module_weights, learner_module
from algorithms.settings import CommonSettings

if TYPE_CHECKING:
    from ray.rllib.algorithms.algorithm import Algorithm

    from algorithms.trial_plan import TrialPlan

# The single-stage algorithms a stage may run: name -> (settings class, config builder).
STAGE_ALGORITHMS: dict[str, tuple[type[CommonSettings], Any]] = {
    "TRPO": (trpo.TRPOSettings, trpo.algorithm_config),
    "PPO": (ppo.PPOSettings, ppo.algorithm_config),
    "A2C": (a2c.A2CSettings, a2c.algorithm_config),
}
DEFAULT_ORDER = {"TRPO_to_PPO": ("TRPO", "PPO"), "PPO_to_TRPO": ("PPO", "TRPO")}
MIN_STAGE_BATCH = 64
# A stage cut down to a small batch also gets minibatches (PPO) of at most this many rows.
SMALL_STAGE_MINIBATCH = 128


@dataclass(frozen=True, kw_only=True)
class StagedSettings(CommonSettings):
    """TRPO_to_PPO's and PPO_to_TRPO's ``algo_hparams`` (all optional): TRPO (Schulman et
    al. 2015) then PPO (Schulman et al. 2017), or the reverse, in one trial.

    stages: the order and budget shares, e.g. ``[["TRPO", 0.01], ["PPO", 0.99]]``
        (at least two stages of TRPO, PPO or A2C; shares sum to 1).
    first_stage_share: shorthand for the default order: the first algorithm's share
        (the seed ran TRPO for 1,000 of 100,000 steps). Not together with ``stages``.
    TRPO, PPO, A2C: each stage algorithm's own algo_hparams (its settings class's keys).

    The common keys (torch_threads, num_envs_per_env_runner, ...) reach every stage.
    """

    NAME: ClassVar[str] = "TRPO_to_PPO / PPO_to_TRPO"

    stages: Sequence[Any] | None = None
    first_stage_share: float = 0.01
    TRPO: Mapping[str, Any] | None = field(default_factory=dict)
    PPO: Mapping[str, Any] | None = field(default_factory=dict)
    A2C: Mapping[str, Any] | None = field(default_factory=dict)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None = None, *, task: str = "steer", name: str | None = None) -> "StagedSettings":
        values = dict(values or {})
        if "stages" in values and "first_stage_share" in values:
            raise UserInputError(f"{name or cls.NAME}: give either 'stages' or 'first_stage_share', not both")
        for algo in STAGE_ALGORITHMS:
            if not isinstance(values.get(algo) or {}, Mapping):
                raise UserInputError(f"{name or cls.NAME}: hyperparameters of stage {algo} must be a mapping")
        return super().from_dict(values, task=task, name=name)


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


def stage_plan(name: str, hparams: Mapping[str, Any] | StagedSettings) -> list[tuple[str, float]]:
    """[(algorithm, budget share), ...] from ``stages`` / ``first_stage_share``."""
    settings = hparams if isinstance(hparams, StagedSettings) else StagedSettings.from_dict(hparams, name=name)
    if settings.stages is not None:
        plan = []
        for item in settings.stages:
            if not isinstance(item, (list, tuple)) or len(item) != 2:
                raise UserInputError(f"{name}: each stage is [algorithm, share], got {item!r}")
            algo, share = item
            if algo not in STAGE_ALGORITHMS:
                raise choices_error(f"{name} stage algorithm", algo, tuple(STAGE_ALGORITHMS))
            plan.append((str(algo), float(share)))
        if len(plan) < 2:
            raise UserInputError(f"{name}: 'stages' needs at least two stages, got {len(plan)}")
        return plan
    share = settings.first_stage_share
    if not 0.0 < share < 1.0:
        raise UserInputError(f"{name}: first_stage_share must be in (0, 1), got {share}")
    first, second = DEFAULT_ORDER[name]
    return [(first, share), (second, 1.0 - share)]


def stage_config(trial: "TrialPlan", algo: str, share: float, settings: StagedSettings) -> Any:
    """The RLlib config of one stage: its algorithm's own settings plus the common ones."""
    settings_class, algorithm_config = STAGE_ALGORITHMS[algo]
    own = dict(getattr(settings, algo) or {})
    if "train_batch_size" not in own:
        budget = max(MIN_STAGE_BATCH, int(round(share * trial.env_steps)))
        own["train_batch_size"] = min(settings_class().train_batch_size, budget)
        if algo == "PPO":
            own.setdefault("minibatch_size", min(SMALL_STAGE_MINIBATCH, own["train_batch_size"]))
        if algo == "TRPO":
            own.setdefault("batch_size", min(trpo.TRPOSettings().batch_size, own["train_batch_size"]))
    own = {**settings.common(), **own}
    return algorithm_config(trial, settings_class.from_dict(own, task=trial.task))


def build(trial: "TrialPlan", hparams: Mapping[str, Any], name: str) -> list[Stage]:
    """The stages of `name` (TRPO_to_PPO or PPO_to_TRPO), weights carried forward."""
    settings = StagedSettings.from_dict(hparams, task=trial.task, name=name)
    return [
        Stage(algo, stage_config(trial, algo, share, settings), share, transfer=transfer_weights if i > 0 else None)
        for i, (algo, share) in enumerate(stage_plan(name, settings))
    ]


def build_trpo_to_ppo(trial: "TrialPlan", hparams: Mapping[str, Any]) -> list[Stage]:
    return build(trial, hparams, "TRPO_to_PPO")


def build_ppo_to_trpo(trial: "TrialPlan", hparams: Mapping[str, Any]) -> list[Stage]:
    return build(trial, hparams, "PPO_to_TRPO")
