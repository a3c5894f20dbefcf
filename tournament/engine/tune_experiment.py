"""The Tune experiment of a tournament: the searcher, the concurrency and `Tuner.fit`."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from tournament.engine.cells import Cell
from tournament.engine.ray_session import _trial_dirname
from tournament.engine.recorder import RunDirCallback
from tournament.engine.rundir import TRIAL_COLUMNS, RunPaths
from tournament.engine.records import read_table
from tournament.engine.spec import TournamentSpec


def make_searcher(spec: TournamentSpec, cells: list[Cell], cells_by_id: dict[str, Cell], oracle: dict,
                   paths: RunPaths) -> Any:
    from tournament.engine.search import CellSearcher, spec_sampler

    def make_config(cid: str, phase: str, params: dict, seed: int, key: str) -> dict:
        cell = cells_by_id[cid]
        optimum = (oracle.get(cell.oracle_key) or {}).get("optimum")
        hparams = {**params["optimizer_hparams"], **params["algo_hparams"]}
        return {
            "trial": cell.trial_plan(spec, params["optimizer_hparams"], params["algo_hparams"], seed).to_dict(),
            "meta": {
                "phase": phase, "cell_id": cid, "trial_key": key, "runner": spec.execution.runner,
                "eval_every": spec.evaluation.every_iterations, "eval_episodes": spec.evaluation.episodes,
                "final_eval_episodes": spec.final.eval_episodes, "eval_seed": spec.evaluation.seed,
                "checkpoint_every": spec.execution.checkpoint_every, "optimum": optimum, "hparams": hparams,
                "timeout_s": spec.resources.trial_timeout_s, "memory_mb": spec.resources.trial_memory_mb,
            },
        }

    rows = read_table(paths.trials, TRIAL_COLUMNS).rows
    final_done = {(r["cell_id"], int(r["seed"])) for r in rows if r["phase"] == "final"}
    return CellSearcher(
        [c.cell_id for c in cells],
        spec.hpo.trials_per_cell,
        paths.studies,
        spec_sampler(spec, cells_by_id),
        make_config,
        final_seeds=[spec.final.seed_base + j for j in range(spec.final.seeds)],
        tune_seed=lambda slot: spec.hpo.seed_base + slot,
        sampler=spec.hpo.sampler,
        seed=spec.hpo.seed,
        n_startup_trials=spec.hpo.n_startup_trials,
        final_done=final_done,
        defer_tell=True,
        recorded={r["trial_id"]: r for r in rows if r["phase"] == "tune"},
        run_dir=paths.root,
    )


def max_concurrent(spec: TournamentSpec, example_config: dict) -> int:
    import ray

    from tournament.engine.trainable import resource_request

    if spec.execution.max_concurrent:
        return spec.execution.max_concurrent
    need = resource_request(example_config).required_resources.get("CPU", 1.0) or 1.0
    have = ray.cluster_resources().get("CPU", 1.0)
    return max(1, int(have // need))


def fit_experiment(spec: TournamentSpec, searcher: Any, callback: RunDirCallback, storage_path: str, storage_fs: Any,
         name: str, cells: list[Cell]) -> None:
    from ray import tune

    from tournament.engine.early_stopping import CellMedianStopping
    from tournament.engine.trainable import resource_request, train_trial

    example = searcher.config_fn(cells[0].cell_id, "tune",
                                 {"optimizer_hparams": {"lr": 1e-3, "lr_min": 1e-3, "lr_max": 1e-3}, "algo_hparams": {}},
                                 0, "probe")
    scheduler = None
    if spec.early_stopping.enabled:
        scheduler = CellMedianStopping(grace_iterations=spec.early_stopping.grace_iterations,
                                       min_trials=spec.early_stopping.min_trials)
    tuner = tune.Tuner(
        tune.with_resources(train_trial, resource_request),
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=-1,
            max_concurrent_trials=max_concurrent(spec, example),
            reuse_actors=True,
            trial_dirname_creator=_trial_dirname,
            trial_name_creator=lambda t: t.config.get("meta", {}).get("trial_key", t.trial_id),
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage_path,
            storage_filesystem=storage_fs,
            failure_config=tune.FailureConfig(max_failures=spec.execution.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            callbacks=[callback, *tune_loggers(spec.execution.tune_logs)],
            verbose=0,
            progress_reporter=None,
        ),
    )
    with _no_auto_loggers():
        tuner.fit()


def tune_loggers(names: list[str]) -> list[Any]:
    """result.json always (verify and the report's checks read it), plus the logs the spec asks for."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback

    chosen = {"csv": CSVLoggerCallback, "tensorboard": TBXLoggerCallback}
    return [JsonLoggerCallback(), *(chosen[n]() for n in names)]


@contextlib.contextmanager
def _no_auto_loggers() -> Iterator[None]:
    """Tune adds every logger it knows unless told not to; the spec chose them (`tune_loggers`)."""
    key = "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"
    saved = os.environ.get(key)
    os.environ[key] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = saved
