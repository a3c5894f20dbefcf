"""A stand-in trial runner with a synthetic learning curve, to exercise the engine without RLlib.

It has the TrialRunner interface of the trial contract, so a spec can name it
(`execution.runner: tournament.engine.scripted:ScriptedRunner`) to test search, early stopping,
checkpointing, resume and the run directory in seconds. The score rises with env steps toward a
ceiling that peaks at lr = 3e-4, so Optuna has something to find. `algo_hparams` keys it reads:
`train_batch_size` (env steps per iteration, default 200), `work_s` (CPU seconds to burn per
iteration, default 0) and `cpus_per_trial` (the CPUs Tune reserves for a trial, default 1; a
fraction lets instant trials run many at a time, as the load bench does).
"""

from __future__ import annotations

import json
import math
import time

import numpy as np

from algorithms.trial_plan import TrialPlan


class ScriptedRunner:
    """Deterministic given the config; see the module docstring."""

    def __init__(self, config: TrialPlan):
        self.config = config
        self.batch = int(config.algo_hparams.get("train_batch_size", 200))
        self.work_s = float(config.algo_hparams.get("work_s", 0.0))
        hp = config.optimizer_hparams
        lr = hp.get("lr") or math.sqrt(float(hp.get("lr_min", 3e-4)) * float(hp.get("lr_max", 3e-4)))
        self.ceiling = 0.9 * math.exp(-((math.log10(float(lr)) - math.log10(3e-4)) ** 2) / 2.0)
        self.env_steps = 0
        self.iteration = 0

    def _curve(self, steps: int) -> float:
        return self.ceiling * (1.0 - math.exp(-3.0 * steps / max(1, self.config.env_steps)))

    def train_iteration(self) -> dict:
        if self.work_s > 0:
            end = time.process_time() + self.work_s
            x = 0.0
            while time.process_time() < end:
                x += math.sin(x + 1.0)
        self.env_steps += self.batch
        self.iteration += 1
        return {
            "env_steps": self.env_steps,
            "stage": self.config.algorithm,
            "episode_return_mean": self._curve(self.env_steps),
            "policy_loss": 1.0 / self.iteration,
            "frac_lr_max": float("nan"),
            "lr_mean": float(self.config.optimizer_hparams.get("lr", self.config.optimizer_hparams.get("lr_min", 0.0))),
            "nan_loss": False,
        }

    @property
    def done(self) -> bool:
        return self.env_steps >= self.config.env_steps

    def evaluate(self, n_episodes: int, seed: int) -> dict:
        rng = np.random.default_rng([seed, self.config.seed])
        p = self._curve(self.env_steps)
        hits = rng.random(n_episodes) < p
        sets = [[["GATA1", "knockout"]] if h else [] for h in hits]
        return {"score": float(hits.mean()), "episode_return_mean": float(hits.mean()),
                "perturbation_sets": sets, "fates": ["Mo" if h else "other" for h in hits]}

    def save(self, path: str) -> None:
        import os

        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "scripted.json"), "w") as fh:
            json.dump({"env_steps": self.env_steps, "iteration": self.iteration, "config": self.config.to_dict()}, fh)

    def restore(self, path: str) -> None:
        import os

        with open(os.path.join(path, "scripted.json")) as fh:
            state = json.load(fh)
        self.env_steps, self.iteration = int(state["env_steps"]), int(state["iteration"])

    def stop(self) -> None:
        pass

    @staticmethod
    def resource_request(config: TrialPlan) -> dict:
        return {"CPU": float(config.algo_hparams.get("cpus_per_trial", 1))}


class InjectedFault(RuntimeError):
    """Raised by FaultInjectingRunner."""


class FaultInjectingRunner(ScriptedRunner):
    """The scripted runner with faults on demand, for the engine's failure-handling tests.

    Selected like any runner (`execution.runner: tournament.engine.scripted:FaultInjectingRunner`),
    so no production module carries a test hook. `algo_hparams["fault"]` picks the fault:
    `raise_once` raises in the second iteration of the first attempt (after the first was
    reported; with `checkpoint_every: 1` Tune restarts it from that checkpoint), `raise` raises in
    the first iteration of every attempt, `nan` reports a NaN loss at the first iteration, and
    `memory` holds `ballast_mb` MiB (default 1088) from the first iteration on.
    """

    FAULTS = ("raise_once", "raise", "nan", "memory")

    def __init__(self, config: TrialPlan):
        super().__init__(config)
        self.fault = config.algo_hparams.get("fault")
        if self.fault is not None and self.fault not in self.FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}; choose from {', '.join(self.FAULTS)}")
        self.restored = False
        self.calls = 0
        self.ballast = b""

    def restore(self, path: str) -> None:
        super().restore(path)
        self.restored = True

    def train_iteration(self) -> dict:
        self.calls += 1
        if self.fault == "raise" or (self.fault == "raise_once" and self.calls == 2 and not self.restored):
            raise InjectedFault(f"injected fault ({self.fault}) at iteration {self.iteration + 1}")
        if self.fault == "memory" and not self.ballast:
            self.ballast = b"\x01" * int(float(self.config.algo_hparams.get("ballast_mb", 1088)) * 2**20)
        metrics = super().train_iteration()
        metrics["nan_loss"] = self.fault == "nan" and self.iteration == 1
        return metrics
