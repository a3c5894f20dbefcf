"""Ray for a run: start or join a cluster, quiet logs, the storage path (a local path or a
URI) and the upload of a URI run's local mirror."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any, Iterator

from tournament.engine.rundir import RunPaths
from tournament.engine.spec import TournamentSpec


def is_uri(storage: str) -> bool:
    return "://" in storage



# ---- Ray ------------------------------------------------------------------------------------------


def _quiet_ray_logs() -> None:
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # legacy reporter: honours verbose=0
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    for name in ("ray", "ray.train", "ray.rllib", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # Tune logs every failed trial with its traceback; those go to trials.csv and the trial's
    # error.txt instead, so the terminal stays a progress display
    logging.getLogger("ray.tune").setLevel(logging.CRITICAL)


def init_ray(address: str | None, num_cpus: int | None) -> bool:
    """Start (or join) Ray unless this process already has it; True when started here.

    With an address the cluster's own settings apply. Without one the embedded instance is
    private to this driver: `address="local"` so that it never joins a cluster another process
    left in Ray's temp dir, servers on loopback only, no dashboard. Ray's token authentication
    (on by default) is left as it is.
    """
    import ray

    _quiet_ray_logs()
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
    if address:
        ray.init(address=address, **kwargs)
    else:
        with _loopback_node_address():
            ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1, **kwargs)
    return True


@contextlib.contextmanager
def _loopback_node_address() -> Iterator[None]:
    """Let a local Ray node take 127.0.0.1 as its address, so its servers listen on loopback.

    Ray 2.60 swaps a loopback `_node_ip_address` for the machine's routable address, and its
    gRPC servers then listen on every interface. It keeps 127.0.0.1 only where clusters are
    off (`ray_constants.ENABLE_RAY_CLUSTER`, false by default on macOS and Windows), which it
    reads while the node starts.
    """
    from ray._private import ray_constants

    if not hasattr(ray_constants, "ENABLE_RAY_CLUSTER"):
        yield
        return
    saved = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


def _storage(spec: TournamentSpec, local_root: Path) -> tuple[str, Any, str | None]:
    """(Tune storage_path, storage_filesystem or None, URI of the run dir or None)."""
    storage = spec.execution.storage
    if not is_uri(storage):
        return str(RunPaths(local_root).tune_dir.resolve()), None, None
    import pyarrow.fs as pafs

    fs, path = pafs.FileSystem.from_uri(storage.rstrip("/"))
    run_path = f"{path.rstrip('/')}/{spec.name}"
    return f"{run_path}/{RunPaths(local_root).tune_dir.name}", fs, run_path


def _upload(local_root: Path, fs: Any, run_path: str) -> None:
    """Copy the local mirror's tables to the storage URI (the Tune experiment is already there)."""
    import pyarrow.fs as pafs

    fs.create_dir(run_path, recursive=True)
    for item in sorted(local_root.rglob("*")):
        rel = item.relative_to(local_root)
        if rel.parts and rel.parts[0] == RunPaths(local_root).tune_dir.name:
            continue
        if item.is_dir():
            fs.create_dir(f"{run_path}/{rel.as_posix()}", recursive=True)
        else:
            pafs.copy_files(str(item), f"{run_path}/{rel.as_posix()}", source_filesystem=pafs.LocalFileSystem(),
                            destination_filesystem=fs)


def _trial_dirname(trial: Any) -> str:
    key = trial.config.get("meta", {}).get("trial_key", "trial")
    return f"{key}_{trial.trial_id}"[:120]
