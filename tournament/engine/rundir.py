"""The run directory: its paths, table columns, crash-safe writers and the manifest.

Layout and columns are the contract with the leaderboard and report (see the README). Crash
safety: a file that is rewritten (spec.yaml, manifest.json, status.json, oracle.json, baselines.json, the
report) is written whole to a temporary file in the same directory and renamed over the old
one, so a crash at any instant leaves the old or the new version. The tables trials.csv,
curves.csv and final_scores.csv are append-only logs: each append is whole lines in one write,
flushed and fsynced, and a write that fails (a full disk) is cut back to the file's previous
end. The only damage a crash can leave is a partial last record, which `read_table` reports
with its file and line (tournament.engine.records) and `tournament resume` sets aside (tournament.engine.repair).
A write that fails raises RunDirWriteError, a one-line user error naming the file and the cause.
"""

from __future__ import annotations

import csv
import datetime as dt
import errno
import hashlib
import io
import json
import math
import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from envs.errors import UserInputError
from envs.files import atomic_write_text as _atomic_write_text
from envs.ode.metrics import METRIC_NAMES as TRAJECTORY_METRICS

TRIAL_COLUMNS = (
    "trial_id", "phase", "cell_id", "world", "task", "target", "algorithm", "optimizer", "max_perturb",
    "module", "action", "seed", "hparams", "status", "fail_reason", "score", "normalized_score", "env_steps",
    "steps_to_90", "cpu_seconds", "wall_seconds", "node_id",
)
CURVE_COLUMNS = (
    "trial_id", "phase", "cell_id", "seed", "iteration", "env_steps", "stage", "episode_return_mean",
    "eval_score", "frac_lr_max", "lr_mean",
)
# A final seed's task metrics beside its score (empty for the other tasks): predict, each metric's
# mean over the stages; trajectory, the fraction of the distance closed and the seed's metrics.
PREDICT_COLUMNS = ("predict_accuracy", "predict_macro_f1", "predict_auprc")
TRAJECTORY_COLUMNS = tuple(f"trajectory_{m}" for m in ("distance_closed", *TRAJECTORY_METRICS))
FINAL_COLUMNS = (
    "cell_id", "world", "task", "target", "algorithm", "optimizer", "max_perturb", "module", "action", "seed",
    "score", "normalized_score", "steps_to_90", "cpu_seconds", "perturbation_sets", *PREDICT_COLUMNS,
    *TRAJECTORY_COLUMNS,
)

# Columns added to the tables after run directories were first written, with the value a table
# without them means: such a table reads with it filled in and is rewritten with the column before
# its next append (AppendTable), so a run started by an older version resumes.
ADDED_COLUMNS = {"action": "discrete", **{c: "" for c in (*PREDICT_COLUMNS, *TRAJECTORY_COLUMNS)}}


def legacy_columns(columns: tuple[str, ...]) -> tuple[str, ...]:
    """`columns` without the ADDED_COLUMNS: the header an older run directory's table has."""
    return tuple(c for c in columns if c not in ADDED_COLUMNS)


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


# ---- errors ---------------------------------------------------------------------------------------

_WRITE_CAUSES = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}


class RunDirWriteError(UserInputError):
    """A run-directory file could not be written (full disk, read-only, permissions).

    One line: the file, the cause, and that nothing finished is lost (every record already on
    disk stays as it was), so the run continues with `tournament resume` once the cause is gone.
    """

    def __init__(self, path: "str | Path", exc: OSError, root: "str | Path | None" = None, then: str | None = None):
        self.path, self.errno = Path(path), exc.errno
        cause = _WRITE_CAUSES.get(exc.errno, "write failed")
        where = Path(root) if root is not None else self.path.parent
        then = then or f"continue with `tournament resume {where}`"
        super().__init__(
            f"cannot write {self.path}: {cause} ({exc.strerror or exc}); every record already on disk "
            f"is kept: fix that, then {then}")


def write_error(path: "str | Path", exc: OSError, root: "str | Path | None" = None,
                then: str | None = None) -> RunDirWriteError:
    return exc if isinstance(exc, RunDirWriteError) else RunDirWriteError(path, exc, root, then)


def atomic_write_text(path: "str | Path", text: str) -> None:
    """envs.files.atomic_write_text (old or new version, never half), failures as RunDirWriteError."""
    try:
        _atomic_write_text(path, text)
    except OSError as exc:
        raise write_error(path, exc) from exc


def atomic_write_json(path: "str | Path", data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=str, allow_nan=False) + "\n")


def read_json(path: "str | Path", default: Any = None) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return default


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def oracle_key(world: str, task: str, target: str | None, max_perturb: int) -> str:
    """A cell's key in oracle.json: world|task|target|max_perturb, target "-" for predict."""
    shown = target if task == "steer" and target else "-"
    return f"{world}|{task}|{shown}|{int(max_perturb)}"


def is_finite_number(x: Any) -> bool:
    """A real, finite number (bools excluded): what a score, time or memory figure must be to count."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def cell_text(value: Any) -> str:
    """How a value appears in a CSV cell: NaN/None/inf empty, floats in full precision.

    Line breaks become spaces, so one record is one line (what makes the tables append-only logs
    whose damage can be located by line).
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "" if not math.isfinite(value) else repr(value)
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(value)
    text = str(value)
    return text.replace("\r", " ").replace("\n", " ") if ("\n" in text or "\r" in text) else text


def csv_lines(columns: tuple[str, ...], rows: Iterable[dict], header: bool = False) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if header:
        writer.writerow(columns)
    for row in rows:
        writer.writerow([cell_text(row.get(c)) for c in columns])
    return buf.getvalue()


def atomic_write_csv(path: "str | Path", columns: tuple[str, ...], rows: list[dict]) -> None:
    atomic_write_text(path, csv_lines(columns, rows, header=True))


def read_csv(path: "str | Path") -> list[dict[str, str]]:
    """The rows of a table without checks (missing file: none); see read_table for checked reads."""
    try:
        with open(path, newline="") as fh:
            return list(csv.DictReader(fh))
    except FileNotFoundError:
        return []


# ---- append-only tables ---------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def append_bytes(path: "str | Path", data: bytes, header: bytes = b"", root: "str | Path | None" = None) -> None:
    """Append whole records in one write, flushed and fsynced; `header` first when the file is new.

    A failed write (ENOSPC halfway through) is cut back to the file's previous end, so the file
    holds the records it had; the failure is raised as RunDirWriteError.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise write_error(path, exc, root) from exc
    try:
        size = os.fstat(fd).st_size
        chunk = (header + data) if size == 0 else data
        try:
            view = memoryview(chunk)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        except OSError as exc:
            try:
                os.ftruncate(fd, size)
            except OSError:
                pass
            raise write_error(path, exc, root) from exc
    finally:
        os.close(fd)
    if size == 0:
        _fsync_dir(path.parent)


class AppendTable:
    """One append-only table of the run directory (trials.csv, curves.csv, final_scores.csv)."""

    def __init__(self, path: "str | Path", columns: tuple[str, ...], root: "str | Path | None" = None):
        self.path, self.columns, self.root = Path(path), tuple(columns), root
        self._header = (",".join(self.columns) + "\n").encode("utf-8")

        self._checked = False

    def _upgrade_legacy(self) -> None:
        """Rewrite (atomically) a table an older version wrote without the ADDED_COLUMNS."""
        self._checked = True
        legacy = legacy_columns(self.columns)
        if legacy == self.columns or not self.path.is_file():
            return
        with open(self.path, "rb") as fh:
            first = fh.readline().rstrip(b"\r\n").decode("utf-8", errors="replace")
        if first != ",".join(legacy):
            return
        atomic_write_csv(self.path, self.columns, [{**ADDED_COLUMNS, **row} for row in read_csv(self.path)])

    def append(self, rows: list[dict]) -> None:
        if not self._checked:
            self._upgrade_legacy()
        if rows:
            append_bytes(self.path, csv_lines(self.columns, rows).encode("utf-8"), self._header, self.root)

    def append_header(self) -> None:
        """Create the table with its header when it does not exist or is empty."""
        if not self._checked:
            self._upgrade_legacy()
        if not self.path.is_file() or self.path.stat().st_size == 0:
            append_bytes(self.path, b"", self._header, self.root)


class RunPaths:
    """Paths inside one run directory."""

    def __init__(self, root: "str | Path"):
        self.root = Path(root)

    spec = property(lambda self: self.root / "spec.yaml")
    manifest = property(lambda self: self.root / "manifest.json")
    status = property(lambda self: self.root / "status.json")
    oracle = property(lambda self: self.root / "oracle.json")
    baselines = property(lambda self: self.root / "baselines.json")
    trials = property(lambda self: self.root / "trials.csv")
    curves = property(lambda self: self.root / "curves.csv")
    final_scores = property(lambda self: self.root / "final_scores.csv")
    optuna_dir = property(lambda self: self.root / "optuna")
    studies = property(lambda self: self.root / "optuna" / "studies.log")
    tune_dir = property(lambda self: self.root / "tune")


# ---- manifest -----------------------------------------------------------------------------------


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return None


def git_commit(cwd: "str | Path | None" = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd or Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def hardware() -> dict[str, Any]:
    cpu_model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = None
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        memory_gb = round(pages * size / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return {"cpu_count": os.cpu_count(), "cpu_model": cpu_model, "memory_gb": memory_gb, "gpu": gpu,
            "platform": platform.platform()}


def new_manifest(command: list[str] | None = None) -> dict[str, Any]:
    packages = {m: _version(m) for m in ("ray", "torch", "torch_geometric", "optuna", "gymnasium", "numpy")}
    packages["python"] = platform.python_version()
    return {
        "packages": packages,
        "git_commit": git_commit(),
        "hardware": hardware(),
        "start_time": now_iso(),
        "end_time": None,
        "command": command if command is not None else sys.argv,
        "status": "running",
        "sessions": [],
    }
