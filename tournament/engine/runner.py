"""Run a tournament: one Ray Tune experiment of grid x Optuna tuning and the final seeds.

`run_tournament(spec)` validates nothing itself (the spec is already valid), prepares the run
directory (spec.yaml, manifest.json, oracle.json, baselines.json), starts or joins Ray, and runs one Tune
experiment whose searcher (tournament.engine.search.CellSearcher) hands out tuning trials cell by cell
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
same id). Before anything reads the records, tournament.engine.repair sets aside what a crash left
half-written (a partial last record), so resume re-runs only trials whose record is incomplete.
A write that fails (full disk, read-only directory) stops the run with one line naming the file
(RunDirWriteError); every record already written stays.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from envs.errors import UserInputError
from tournament.engine.cells import expand_grid
from tournament.engine.progress import ProgressDisplay, ProgressTracker, cost_group
from tournament.engine.rundir import (
    TRIAL_COLUMNS,
    RunPaths,
    atomic_write_json,
    atomic_write_text,
    new_manifest,
    now_iso,
    read_json,
    text_sha256,
    write_error,
)
from tournament.engine.records import read_json_checked, read_table
from tournament.engine.baseline_table import compute_baselines
from tournament.engine.oracle_table import compute_oracle
from tournament.engine.ray_session import _storage, _upload, init_ray, is_uri
from tournament.engine.recorder import RunDirCallback, write_status
from tournament.engine.run_guards import check_not_running, next_attempt, probe_writable, spec_difference, write_failure
from tournament.engine.spec import TournamentSpec, parse_spec, validate_spec_fields
from tournament.engine.tune_experiment import fit_experiment, make_searcher

DEFAULT_LOCAL_ROOT = "runs"
log = logging.getLogger("tournament")


def run_dir_for(spec: TournamentSpec) -> Path:
    """The local run directory: `<storage>/<name>`, or `runs/<name>` mirroring a URI."""
    storage = spec.execution.storage
    return Path(DEFAULT_LOCAL_ROOT if is_uri(storage) else storage) / spec.name


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
        diff = spec_difference(old, spec)
        if diff:
            raise UserInputError(f"{diff}: the spec differs from the one run {root} started with; "
                                 "only execution settings may change on resume")
        probe_writable(root)
        recorded_manifest, _ = read_json_checked(paths.manifest)
        if isinstance(recorded_manifest, dict):
            check_not_running(root, recorded_manifest)
        # what a crash left half-written is set aside before anything reads the records
        from tournament.engine.repair import repair_for_resume

        repair_for_resume(root, warn=lambda line: print(line, file=sys.stderr))
    manifest = read_json(paths.manifest) or new_manifest(command)
    check_not_running(root, manifest)
    try:
        root.mkdir(parents=True, exist_ok=True)
        paths.optuna_dir.mkdir(exist_ok=True)
    except OSError as exc:
        raise write_error(root, exc, root) from exc
    probe_writable(root)
    spec_text = spec.to_yaml()
    atomic_write_text(paths.spec, spec_text)
    # a driver killed while it held the journal's lock leaves the lock behind; Optuna would
    # wait 30 s before breaking it, and no other driver is running (checked above)
    Path(str(paths.studies) + ".lock").unlink(missing_ok=True)
    attempt = max(len(manifest.get("sessions", [])), next_attempt(paths.tune_dir))
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
        compute_baselines(spec, cells, paths.baselines)
        started_ray = init_ray(spec.execution.address, spec.execution.num_cpus)
        storage_path, storage_fs, uri_run_path = _storage(spec, root)
        searcher = make_searcher(spec, cells, cells_by_id, oracle, paths)
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
            planned_by_group=_trials_by_group(cells, spec.hpo.trials_per_cell + spec.final.seeds),
            finished_by_group=_finished_by_group(previous),
            trial_env_steps=spec.budget.env_steps,
        )
        tracker.phase = "final" if searcher.tuning_done else "tune"
        callback = RunDirCallback(paths, cells_by_id, tracker, searcher, display)
        with display:
            display.update(tracker.status(), force=True)
            fit_experiment(spec, searcher, callback, storage_path, storage_fs, f"attempt-{attempt}", cells)
            callback.raise_write_failure()
            callback.flush(force=True)
            display.update(tracker.status(), force=True)
        complete = searcher.all_handed_out() and not tracker.running and tracker.remaining == 0
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
        failure = write_failure(exc, root)
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


def _build_report(root: Path) -> None:
    try:
        from tournament.report.report import build_report
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

    from tournament.engine.spec import with_overrides

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


def _trials_by_group(cells: list, trials_per_cell: int) -> dict[str, int]:
    """Planned trials per (algorithm, module): the groups of the ETA's cost model."""
    out: dict[str, int] = {}
    for c in cells:
        g = cost_group(c.algorithm, c.module)
        out[g] = out.get(g, 0) + trials_per_cell
    return out


def _finished_by_group(rows: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        g = cost_group(r["algorithm"], r["module"])
        out[g] = out.get(g, 0) + 1
    return out

