"""One trial: a TrialPlan trained to its env-step budget, single- or multi-stage, then scored.

The tournament's trainable drives a :class:`TrialRunner` (train_iteration until
done, evaluate, save / restore); how many RLlib algorithms a trial chains is
hidden here (see algorithms.registry.Stage).

Threads: a trial samples and learns in its own process by default
(``num_env_runners=0``, one local learner), and torch uses
``algo_hparams["torch_threads"]`` threads there (algorithms.settings.CommonSettings), so N trials fill
N cores without oversubscription; remote env runners get Ray's default of one
OMP thread per 1-CPU actor.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict
from typing import Any

import torch
from ray.rllib.core import DEFAULT_MODULE_ID

from algorithms.common import STATE_FILE, Stage, env_class, env_config, learner_module, saved_stage_dir, stage_dir
from algorithms.evaluation import evaluate_module
from algorithms.registry import algorithm_stages
from algorithms.settings import CommonSettings, common_part
from algorithms.trial_plan import TrialPlan

__all__ = ["STATE_FILE", "TrialPlan", "TrialRunner", "saved_stage_dir", "stage_dir"]


def _get(result: dict, *path: str, default: float = math.nan) -> Any:
    for key in path:
        if not isinstance(result, dict) or key not in result:
            return default
        result = result[key]
    return result


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True


class TrialRunner:
    """Trains one TrialPlan to its budget; hides single- vs multi-stage algorithms."""

    def __init__(self, config: TrialPlan):
        self.config = config
        torch.set_num_threads(CommonSettings.from_dict(common_part(config.algo_hparams)).torch_threads)
        self.stages: list[Stage] = algorithm_stages(config)
        self._env_config = env_config(config)
        fractions = [s.budget_fraction for s in self.stages]
        # Cumulative env-step mark at which each stage ends.
        self._stage_ends = [round(sum(fractions[: i + 1]) * config.env_steps) for i in range(len(fractions))]
        self._stage_ends[-1] = config.env_steps
        self.stage_index = 0
        self._steps_before_stage = 0  # env steps of all finished stages
        self._stage_steps = 0  # env steps sampled by the current stage's algorithm
        self.iteration = 0
        self.algo = self.stages[0].config.build_algo()

    # ---- budget ----------------------------------------------------------------------

    @property
    def env_steps(self) -> int:
        return self._steps_before_stage + self._stage_steps

    @property
    def stage(self) -> Stage:
        return self.stages[self.stage_index]

    @property
    def done(self) -> bool:
        return self.stage_index == len(self.stages) - 1 and self.env_steps >= self.config.env_steps

    def _advance_stage(self) -> None:
        previous = self.algo
        self._steps_before_stage = self.env_steps
        self._stage_steps = 0
        self.stage_index += 1
        self.algo = self.stage.config.build_algo()
        if self.stage.transfer is not None:
            self.stage.transfer(previous, self.algo)
        previous.stop()

    # ---- training ---------------------------------------------------------------------

    def train_iteration(self) -> dict[str, Any]:
        """One training iteration of the current stage, moving on to the next stage first
        when this one's share of the budget is spent. Returns flat metrics."""
        if self.done:
            raise RuntimeError("the trial's env-step budget is already spent")
        if self.env_steps >= self._stage_ends[self.stage_index]:
            self._advance_stage()
        result = self.algo.train()
        self.iteration += 1
        self._stage_steps = int(_get(result, "env_runners", "num_env_steps_sampled_lifetime", default=0))
        learner = _get(result, "learners", DEFAULT_MODULE_ID, default={})
        losses = {k: v for k, v in learner.items() if k.endswith("loss")} if isinstance(learner, dict) else {}
        return {
            "env_steps": self.env_steps,
            "stage": self.stage.name,
            "iteration": self.iteration,
            "episode_return_mean": float(_get(result, "env_runners", "episode_return_mean")),
            "episode_len_mean": float(_get(result, "env_runners", "episode_len_mean")),
            "policy_loss": float(_get(learner, "policy_loss")),
            "vf_loss": float(_get(learner, "vf_loss")),
            "entropy": float(_get(learner, "entropy")),
            "frac_lr_max": float(_get(learner, "frac_lr_max")),
            "lr_mean": float(_get(learner, "lr_mean")),
            "nan_loss": not all(_finite(v) for v in losses.values()),
            "time_this_iter_s": float(_get(result, "time_this_iter_s")),
        }

    # ---- evaluation -------------------------------------------------------------------

    def module(self) -> Any:
        """The trained module of the current stage (the local learner's copy)."""
        return learner_module(self.algo)

    def evaluate(self, n_episodes: int, seed: int) -> dict[str, Any]:
        """Greedy policy (arg max, or the Gaussian mean) on fresh episodes seeded seed, seed + 1, ..."""
        return evaluate_module(self.module(), self._env_config, n_episodes, seed, env_class(self.config, vectorised=False))

    # ---- checkpoints ------------------------------------------------------------------

    def save(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)
        self.algo.save_to_path(stage_dir(path, self.stage_index))
        state = {
            "stage_index": self.stage_index,
            "stage": self.stage.name,
            "steps_before_stage": self._steps_before_stage,
            "stage_steps": self._stage_steps,
            "iteration": self.iteration,
            "config": {k: v for k, v in asdict(self.config).items() if k != "world"},
        }
        with open(os.path.join(path, STATE_FILE), "w") as fh:
            json.dump(state, fh, indent=1, default=str)

    def restore(self, path: str) -> None:
        with open(os.path.join(path, STATE_FILE)) as fh:
            state = json.load(fh)
        index = int(state["stage_index"])
        if not 0 <= index < len(self.stages) or self.stages[index].name != state["stage"]:
            raise ValueError(f"checkpoint {path} is stage {state['stage']!r}, not a stage of this trial")
        if index != self.stage_index:
            self.algo.stop()
            self.stage_index = index
            self.algo = self.stage.config.build_algo()
        self.algo.restore_from_path(stage_dir(path, index))
        self._steps_before_stage = int(state["steps_before_stage"])
        self._stage_steps = int(state["stage_steps"])
        self.iteration = int(state["iteration"])

    def stop(self) -> None:
        self.algo.stop()

    @staticmethod
    def resource_request(config: TrialPlan) -> Any:
        """Resources of the first stage's algorithm, for tune.with_resources."""
        first = algorithm_stages(config)[0].config
        return first.algo_class.default_resource_request(first)
