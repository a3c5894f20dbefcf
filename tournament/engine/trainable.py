"""The Ray Tune function trainable: one trial = one TrialRunner trained to its budget.

Each iteration reports flat metrics through `ray.tune.report`: env_steps, stage, the training
return, `score` (the latest greedy evaluation on held-out episode seeds, carried forward between
evaluations), `eval_score` (NaN when not evaluated this iteration), `normalized_score` (score /
oracle optimum), steps_to_90, CPU and wall seconds, the node. Evaluations run every
`eval_every` iterations and always at the end (with `final_eval_episodes` in the final phase).
The last report carries `finished=True`, the evaluation's perturbation sets (JSON), the
fates reached and, on the predict task, the per-stage prediction metrics (JSON).

Checkpoints: every `checkpoint_every` iterations a `tune.Checkpoint` holds the runner's state
(TrialRunner.save) and the trainable's counters; after a failure Tune restarts the trial from
`tune.get_checkpoint()` (FailureConfig max_failures).

Divergence: when an iteration reports a NaN/inf loss the trial reports `failed=True` with the
reason and returns normally, so Tune does NOT retry it (a retry would replay the same seed into
the same NaN) and the tournament goes on; the trial is recorded as failed. Exceptions, in
contrast, are retried by Tune up to `max_failures` times.

Budgets: `meta["timeout_s"]` (the trial's wall seconds, all attempts together) and
`meta["memory_mb"]` (resident memory of this process, which holds the learner and, with
num_env_runners=0, the environments) are checked after every iteration that does not end the
trial; a trial over either stops the same way as a diverged one, failed with the reason and
not retried (a retry would hit the same limit). An iteration that hangs is not cut short.

Failures are tested with `tournament.engine.scripted.FaultInjectingRunner`, a runner chosen by
the spec, so this module has no test hook.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import shutil
import tempfile
import time
from typing import Any

from ray import tune

from algorithms.trial_plan import TrialPlan
from tournament.engine.rundir import is_finite_number

TRAINABLE_STATE = "trainable.json"
RUNNER_DIR = "runner"


def load_runner(path: str) -> type:
    """The runner class named "module:Class" (`execution.runner`); it takes a TrialPlan."""
    module_name, _, cls_name = path.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, cls_name or "TrialRunner")


def resource_request(config: dict) -> Any:
    """What Tune reserves for a trial: the runner's resource request (placement group factory)."""
    from ray.tune.execution.placement_groups import PlacementGroupFactory, resource_dict_to_pg_factory

    runner_cls = load_runner(config["meta"]["runner"])
    request = runner_cls.resource_request(TrialPlan.from_dict(config["trial"]))
    if isinstance(request, PlacementGroupFactory):
        return request
    return resource_dict_to_pg_factory(dict(request))


def _float(x: Any) -> float:
    return float(x) if is_finite_number(x) else math.nan


def _node_id() -> str:
    try:
        import ray

        return ray.get_runtime_context().get_node_id()
    except Exception:
        return ""


def _rss_mb() -> float:
    """Resident memory of this process in MiB."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def over_budget(meta: dict, wall_seconds: float, iteration: int) -> str | None:
    """Why the trial must stop for its memory or time budget, or None (memory first: it is
    the one that endangers the node, and a slow allocation must not hide it)."""
    memory = meta.get("memory_mb")
    if is_finite_number(memory):
        rss = _rss_mb()
        if rss > memory:
            return (f"memory budget exceeded: {rss:.0f} MiB resident > resources.trial_memory_mb = {memory:g} "
                    f"at iteration {iteration}; not retried")
    timeout = meta.get("timeout_s")
    if is_finite_number(timeout) and wall_seconds > timeout:
        return (f"time budget exceeded: {wall_seconds:.1f} s > resources.trial_timeout_s = {timeout:g} s "
                f"at iteration {iteration}; not retried")
    return None


def train_trial(config: dict) -> None:
    """Tune function trainable; `config` = {"trial": TrialPlan.to_dict(), "meta": {...}}."""
    # building the algorithm is part of a trial's cost, so the clocks start here
    cpu0, wall0 = time.process_time(), time.perf_counter()
    meta = config["meta"]
    runner_cls = load_runner(meta["runner"])
    plan = TrialPlan.from_dict(config["trial"])
    eval_every = int(meta.get("eval_every", 5))
    ckpt_every = int(meta.get("checkpoint_every", 5))
    eval_seed = int(meta.get("eval_seed", 2_000_000_000))
    episodes = int(meta.get("eval_episodes", 20))
    if meta.get("phase") == "final":
        episodes = int(meta.get("final_eval_episodes", episodes))
    optimum = meta.get("optimum")
    optimum = float(optimum) if is_finite_number(optimum) and optimum > 0 else None

    state: dict[str, Any] = {"iteration": 0, "cpu_seconds": 0.0, "wall_seconds": 0.0, "score": math.nan,
                             "steps_to_90": None, "attempt": 0}
    runner = runner_cls(plan)
    checkpoint = tune.get_checkpoint()
    resumed = checkpoint is not None
    if resumed:
        with checkpoint.as_directory() as d:
            runner.restore(os.path.join(d, RUNNER_DIR))
            with open(os.path.join(d, TRAINABLE_STATE)) as fh:
                state = json.load(fh)
        state["attempt"] += 1
    base = {"trial_key": meta.get("trial_key", ""), "cell_id": meta.get("cell_id", ""),
            "phase": meta.get("phase", "tune"), "seed": plan.seed, "node_id": _node_id()}

    def spent() -> tuple[float, float]:
        return (state["cpu_seconds"] + time.process_time() - cpu0, state["wall_seconds"] + time.perf_counter() - wall0)

    def checkpoint_now() -> tune.Checkpoint:
        d = tempfile.mkdtemp(prefix="trial-ckpt-")
        runner.save(os.path.join(d, RUNNER_DIR))
        cpu, wall = spent()
        with open(os.path.join(d, TRAINABLE_STATE), "w") as fh:
            json.dump({**state, "cpu_seconds": cpu, "wall_seconds": wall}, fh)
        return tune.Checkpoint.from_directory(d)

    try:
        while not runner.done:
            m = runner.train_iteration()
            state["iteration"] += 1
            it = state["iteration"]
            env_steps = int(m.get("env_steps", 0))
            nan = bool(m.get("nan_loss", False))
            reason = f"NaN/inf loss at iteration {it} (env step {env_steps}); not retried" if nan else None
            if reason is None and not runner.done:
                reason = over_budget(meta, spent()[1], it)
            failed = reason is not None
            last = runner.done and not failed
            ev: dict[str, Any] | None = None
            if not failed and (last or it % eval_every == 0):
                ev = runner.evaluate(episodes, eval_seed)
                state["score"] = float(ev["score"])
                if optimum is not None and state["steps_to_90"] is None and state["score"] >= 0.9 * optimum:
                    state["steps_to_90"] = env_steps
            cpu, wall = spent()
            score = state["score"]
            metrics = {
                **base,
                "iteration": it,
                "env_steps": env_steps,
                "stage": str(m.get("stage", "")),
                "episode_return_mean": _float(m.get("episode_return_mean")),
                "policy_loss": _float(m.get("policy_loss")),
                "frac_lr_max": _float(m.get("frac_lr_max")),
                "lr_mean": _float(m.get("lr_mean")),
                "eval_score": float(ev["score"]) if ev else math.nan,
                "score": score,
                "normalized_score": score / optimum if optimum and is_finite_number(score) else math.nan,
                "steps_to_90": state["steps_to_90"] if state["steps_to_90"] is not None else math.nan,
                "cpu_seconds": cpu,
                "wall_seconds": wall,
                "finished": bool(last),
                "failed": failed,
                "fail_reason": reason or "",
                "attempt": state["attempt"],
            }
            if last and ev is not None:
                metrics["perturbation_sets"] = json.dumps(ev.get("perturbation_sets") or [])
                metrics["fates"] = json.dumps(ev.get("fates") or [])
                metrics["eval_return_mean"] = _float(ev.get("episode_return_mean"))
                if ev.get("predict_metrics"):  # per-stage accuracy, macro-F1, AUPRC (the report reads it)
                    metrics["predict_metrics"] = json.dumps(ev["predict_metrics"])
                if ev.get("trajectory_metrics"):  # the seed's expression-level metrics (ODE worlds)
                    metrics["trajectory_metrics"] = json.dumps(ev["trajectory_metrics"])
            ckpt = None
            if not failed and not last and it % ckpt_every == 0:
                ckpt = checkpoint_now()
            try:
                tune.report(metrics, checkpoint=ckpt)
            finally:
                if ckpt is not None:
                    shutil.rmtree(ckpt.path, ignore_errors=True)
            if failed:
                return
    finally:
        runner.stop()
