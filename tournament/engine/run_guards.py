"""What must hold before a driver writes into a run directory: writable, no other driver, the same spec.

Each check fails early with one line and changes nothing, so a refused resume leaves the run as
it was.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path
from typing import Any

from envs.errors import UserInputError
from tournament.engine.rundir import RunDirWriteError, RunPaths, write_error
from tournament.engine.spec import TournamentSpec

_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def spec_difference(old: TournamentSpec, new: TournamentSpec) -> str | None:
    """The first setting outside `execution` where two specs differ (dotted path), or None."""
    return _first_difference(_grid_part(old), _grid_part(new))


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


def probe_writable(root: Path) -> None:
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


def write_failure(exc: BaseException, root: Path) -> RunDirWriteError | None:
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


def next_attempt(tune_dir: Path) -> int:
    """One past the highest tune/attempt-N folder (a set-aside manifest forgets the sessions)."""
    numbers = [int(p.name.split("-", 1)[1]) for p in tune_dir.glob("attempt-*") if p.name.split("-", 1)[1].isdigit()]
    return max(numbers, default=-1) + 1


def check_not_running(root: Path, manifest: dict) -> None:
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
