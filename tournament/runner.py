"""Run a tournament: one Ray Tune experiment of grid x Optuna tuning and the final seeds.

`run_tournament(spec)` validates nothing itself (the spec is already valid), prepares the run
directory (spec.yaml, manifest.json, oracle.json), starts or joins Ray, and runs one Tune
experiment whose searcher (tournament.search.CellSearcher) hands out tuning trials cell by cell
and, as each cell finishes tuning, its best configuration once per final seed. A Tune callback
on the driver (`RunDirCallback`) appends trials.csv / curves.csv / final_scores.csv and keeps
status.json and the terminal progress display current.

Ray: embedded local Ray by default (`ray.init(num_cpus=...)`), or `execution.address`
(auto, ray://..., host:port) to join a cluster; a Ray already initialised in this process is
used as it is. Storage: a local path (the run directory is `<storage>/<name>`) or a URI (s3://,
gs://, file://, any pyarrow filesystem): the Tune experiment goes to `<uri>/<name>/tune` and the
tables are written to a local mirror `runs/<name>` and uploaded to `<uri>/<name>` at the end.

Resume (`resume=True`, `tournament resume RUN`): a new Tune experiment (`tune/attempt-N`) over
the same run directory. Our own bookkeeping, not Tuner.restore, decides what is left: tuning
trials from the Optuna journal (finished trials count; a trial running when the driver died is
re-run with the same parameters and seed) and final trials from trials.csv. Tuner.restore
would depend on Tune's periodic experiment snapshot, which a SIGKILL can leave older than the
journal, so finished trials could run twice; the journal is written at every ask and tell.
A trial's curve rows reach curves.csv only when it ends (an interrupted trial re-runs under the
same id). Before anything reads the records, tournament.repair sets aside what a crash left
half-written (a partial last record), so resume re-runs only trials whose record is incomplete.
A write that fails (full disk, read-only directory) stops the run with one line naming the file
(RunDirWriteError); every record already written stays.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from envs.errors import UserInputError
from tournament.cells import Cell, expand_grid
from tournament.progress import ProgressDisplay, ProgressTracker
from tournament.rundir import (
    TRIAL_COLUMNS,
    RunDirWriteError,
    RunPaths,
    atomic_write_json,
    atomic_write_text,
    new_manifest,
    now_iso,
    read_json,
    read_json_checked,
    read_table,
    text_sha256,
    write_error,
)
from tournament.spec import TournamentSpec, parse_spec, validate_spec_fields

from tournament.oracle_table import compute_oracle
from tournament.ray_session import _storage, _trial_dirname, _upload, init_ray, is_uri
from tournament.recorder import RunDirCallback, write_status
DEFAULT_LOCAL_ROOT = "runs"
log = logging.getLogger("tournament")
_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def run_dir_for(spec: TournamentSpec) -> Path:
    """The local run directory: `<storage>/<name>`, or `runs/<name>` mirroring a URI."""
    storage = spec.execution.storage
    return Path(DEFAULT_LOCAL_ROOT if is_uri(storage) else storage) / spec.name


def _grid_part(spec: TournamentSpec) -> dict:
    data = spec.model_dump(mode="json")
    data.pop("execution", None)
    return data


def _first_difference(a: Any, b: Any, path: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            d = _first_difference(a.get(k), b.get(k), f"{path}.{k}" if path else k)
            if d:
                return d
        return None
    return None if a == b else (path or "<top>")


# ---- the tournament --------------------------------------------------------------------------------


def run_tournament(
    spec: TournamentSpec,
    resume: bool = False,
    run_dir: "str | Path | None" = None,
    progress: bool = True,
    build_report: bool = True,
    command: list[str] | None = None,
) -> Path:
    """Run (or resume) a tournament to completion; returns the local run directory."""
    t_start = time.monotonic()
    root = Path(run_dir) if run_dir is not None else run_dir_for(spec)
    paths = RunPaths(root)
    if paths.spec.exists():
        if not resume:
            raise UserInputError(
                f"run directory {root} already exists; continue it with `tournament resume {root}` "
                f"(or `tournament run SPEC --resume`), or give the spec another name"
            )
        import yaml

        # The recorded spec passed check_spec when the run started; its fields are enough here.
        old = validate_spec_fields(yaml.safe_load(paths.spec.read_text()), str(paths.spec))
        diff = _first_difference(_grid_part(old), _grid_part(spec))
        if diff:
            raise UserInputError(f"{diff}: the spec differs from the one run {root} started with; "
                                 "only execution settings may change on resume")
        _probe_writable(root)
        recorded_manifest, _ = read_json_checked(paths.manifest)
        if isinstance(recorded_manifest, dict):
            _check_not_running(root, recorded_manifest)
        # what a crash left half-written is set aside before anything reads the records
        from tournament.repair import repair_for_resume

        repair_for_resume(root, warn=lambda line: print(line, file=sys.stderr))
    manifest = read_json(paths.manifest) or new_manifest(command)
    _check_not_running(root, manifest)
    try:
        root.mkdir(parents=True, exist_ok=True)
        paths.optuna_dir.mkdir(exist_ok=True)
    except OSError as exc:
        raise write_error(root, exc, root) from exc
    _probe_writable(root)
    spec_text = spec.to_yaml()
    atomic_write_text(paths.spec, spec_text)
    # a driver killed while it held the journal's lock leaves the lock behind; Optuna would
    # wait 30 s before breaking it, and no other driver is running (checked above)
    Path(str(paths.studies) + ".lock").unlink(missing_ok=True)
    attempt = max(len(manifest.get("sessions", [])), _next_attempt(paths.tune_dir))
    manifest["sessions"] = manifest.get("sessions", []) + [{"start": now_iso(), "command": command or sys.argv,
                                                            "spec_sha256": text_sha256(spec_text)}]
    # `tournament verify` checks spec.yaml against this hash
    manifest.update(status="running", end_time=None, driver={"host": socket.gethostname(), "pid": os.getpid()},
                    spec_sha256=text_sha256(spec_text))
    atomic_write_json(paths.manifest, manifest)

    cells = expand_grid(spec)
    cells_by_id = {c.cell_id: c for c in cells}
    status = "failed"
    started_ray = False
    storage_fs = uri_run_path = None
    display = ProgressDisplay(spec.name, enabled=progress)
    try:
        write_status(paths, "tune")
        oracle = compute_oracle(spec, cells, paths.oracle)
        started_ray = init_ray(spec.execution.address, spec.execution.num_cpus)
        storage_path, storage_fs, uri_run_path = _storage(spec, root)
        searcher = _make_searcher(spec, cells, cells_by_id, oracle, paths)
        counts = searcher.counts()
        previous = read_table(paths.trials, TRIAL_COLUMNS).rows
        best: dict[str, float] = {}
        for r in previous:
            if r["status"] == "ok" and r["score"]:
                best[r["cell_id"]] = max(best.get(r["cell_id"], -math.inf), float(r["score"]))
        old_status = read_json(paths.status, {}) or {}
        tracker = ProgressTracker(
            planned=counts["planned"],
            done=sum(r["status"] == "ok" for r in previous),
            failed=sum(r["status"] == "failed" for r in previous),
            best=best,
            elapsed_before=float(old_status.get("elapsed_s") or 0.0) if resume else 0.0,
            started=t_start,
        )
        tracker.phase = "final" if searcher.tuning_done else "tune"
        callback = RunDirCallback(paths, cells_by_id, tracker, searcher, display)
        with display:
            display.update(tracker.status(), force=True)
            _fit(spec, searcher, callback, storage_path, storage_fs, f"attempt-{attempt}", cells)
            callback.raise_write_failure()
            callback.flush(force=True)
            display.update(tracker.status(), force=True)
        complete = searcher._all_handed_out() and not tracker.running and tracker.remaining == 0
        status = "finished" if complete else "interrupted"
        if complete and build_report:
            write_status(paths, "report", tracker)
            _build_report(root)
        tracker.phase = "done" if complete else tracker.phase
        tracker.write(paths.status)
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except Exception as exc:
        failure = _write_failure(exc, root)
        if failure is None:
            raise
        status = "interrupted"  # nothing finished is lost: resume once the disk has room again
        raise failure from exc
    finally:
        try:
            manifest = read_json(paths.manifest) or manifest
            manifest.update(status=status, end_time=now_iso())
            manifest["sessions"][-1]["end"] = now_iso()
            manifest["sessions"][-1]["status"] = status
            atomic_write_json(paths.manifest, manifest)
        except (OSError, ValueError) as exc:  # a full disk: the error above says so already
            print(f"warning: the manifest could not be updated ({exc})", file=sys.stderr)
        if started_ray:
            import ray

            ray.shutdown()
    if uri_run_path is not None:  # after the manifest's last update, so the URI's copy has it
        _upload(root, storage_fs, uri_run_path)
    return root


def _probe_writable(root: Path) -> None:
    """Fail early, changing nothing, when the run directory cannot be written (read-only, full)."""
    import tempfile

    for folder in (root, RunPaths(root).optuna_dir):
        if not folder.is_dir():
            continue
        try:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-probe-") as fh:
                fh.write(b"probe")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise write_error(folder, exc, root) from exc


def _write_failure(exc: BaseException, root: Path) -> RunDirWriteError | None:
    """The RunDirWriteError behind an exception Tune may have wrapped, or a bare write OSError."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, RunDirWriteError):
            return exc
        if isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS:
            return write_error(getattr(exc, "filename", None) or root, exc, root)
        exc = exc.__cause__ or exc.__context__
    return None


def _next_attempt(tune_dir: Path) -> int:
    """One past the highest tune/attempt-N folder (a set-aside manifest forgets the sessions)."""
    numbers = [int(p.name.split("-", 1)[1]) for p in tune_dir.glob("attempt-*") if p.name.split("-", 1)[1].isdigit()]
    return max(numbers, default=-1) + 1


def _check_not_running(root: Path, manifest: dict) -> None:
    """Refuse to run two drivers on one run directory (only detectable on the same host)."""
    driver = manifest.get("driver") or {}
    if manifest.get("status") != "running" or driver.get("host") != socket.gethostname():
        return
    pid = int(driver.get("pid") or 0)
    if pid <= 0 or pid == os.getpid():
        return
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return
    except PermissionError:
        pass
    raise UserInputError(f"run {root} is still running (driver pid {pid} on this host); "
                         "watch it with `tournament status`, or stop that driver first")


def _make_searcher(spec: TournamentSpec, cells: list[Cell], cells_by_id: dict[str, Cell], oracle: dict,
                   paths: RunPaths) -> Any:
    from tournament.search import CellSearcher, spec_sampler

    def make_config(cid: str, phase: str, params: dict, seed: int, key: str) -> dict:
        cell = cells_by_id[cid]
        optimum = (oracle.get(cell.oracle_key) or {}).get("optimum")
        hparams = {**params["optimizer_hparams"], **params["algo_hparams"]}
        return {
            "trial": cell.trial_config(spec, params["optimizer_hparams"], params["algo_hparams"], seed),
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


def _max_concurrent(spec: TournamentSpec, example_config: dict) -> int:
    import ray

    from tournament.trainable import resource_request

    if spec.execution.max_concurrent:
        return spec.execution.max_concurrent
    need = resource_request(example_config).required_resources.get("CPU", 1.0) or 1.0
    have = ray.cluster_resources().get("CPU", 1.0)
    return max(1, int(have // need))


def _fit(spec: TournamentSpec, searcher: Any, callback: RunDirCallback, storage_path: str, storage_fs: Any,
         name: str, cells: list[Cell]) -> None:
    from ray import tune

    from tournament.early_stopping import CellMedianStopping
    from tournament.trainable import resource_request, train_trial

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
            max_concurrent_trials=_max_concurrent(spec, example),
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
            callbacks=[callback],
            verbose=0,
            progress_reporter=None,
        ),
    )
    tuner.fit()


def _build_report(root: Path) -> None:
    try:
        from tournament.report import build_report
    except ImportError as exc:
        print(f"note: the report is not available in this build ({exc}); tables are in {root}", file=sys.stderr)
        return
    try:
        build_report(root)
    except Exception as exc:  # the tournament's data is safe; the report can be rebuilt later
        print(f"warning: building the report failed ({type(exc).__name__}: {exc}); "
              f"rebuild it with `tournament report {root}`", file=sys.stderr)


def resume_tournament(run_dir: "str | Path", progress: bool = True, **execution: Any) -> Path:
    """Continue a stopped or killed tournament from its run directory."""
    import yaml

    from tournament.spec import with_overrides

    root = Path(run_dir)
    spec_path = RunPaths(root).spec
    if not spec_path.is_file():
        raise UserInputError(f"{root} is not a run directory (no spec.yaml)")
    try:
        data = yaml.safe_load(spec_path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        where = getattr(exc, "problem_mark", None)
        line = f", line {where.line + 1}" if where is not None else ""
        raise UserInputError(f"{spec_path}{line}: not valid YAML; the run's spec is needed to resume it "
                             "(restore spec.yaml; nothing was changed)") from None
    spec = parse_spec(data, str(spec_path))
    spec = with_overrides(spec, **execution)
    return run_tournament(spec, resume=True, run_dir=root, progress=progress)
