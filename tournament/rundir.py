"""The run directory: its paths, table columns, atomic writers and the manifest.

Layout and columns are the contract with the leaderboard and report (see the README): every
file is written whole to a temporary file in the same directory and then renamed over the old
one, so a reader (or a killed driver) never sees half a file.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from envs.files import atomic_write_text

TRIAL_COLUMNS = (
    "trial_id", "phase", "cell_id", "world", "task", "target", "algorithm", "optimizer", "max_perturb",
    "module", "seed", "hparams", "status", "fail_reason", "score", "normalized_score", "env_steps",
    "steps_to_90", "cpu_seconds", "wall_seconds", "node_id",
)
CURVE_COLUMNS = (
    "trial_id", "phase", "cell_id", "seed", "iteration", "env_steps", "stage", "episode_return_mean",
    "eval_score", "frac_lr_max", "lr_mean",
)
FINAL_COLUMNS = (
    "cell_id", "world", "task", "target", "algorithm", "optimizer", "max_perturb", "module", "seed",
    "score", "normalized_score", "steps_to_90", "cpu_seconds", "perturbation_sets",
)


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def atomic_write_json(path: "str | Path", data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=str, allow_nan=False) + "\n")


def read_json(path: "str | Path", default: Any = None) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return default


def oracle_key(world: str, task: str, target: str | None, max_perturb: int) -> str:
    """A cell's key in oracle.json: world|task|target|max_perturb, target "-" for predict."""
    shown = target if task == "steer" and target else "-"
    return f"{world}|{task}|{shown}|{int(max_perturb)}"


def is_finite_number(x: Any) -> bool:
    """A real, finite number (bools excluded): what a score, time or memory figure must be to count."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def cell_text(value: Any) -> str:
    """How a value appears in a CSV cell: NaN/None/inf empty, floats in full precision."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "" if not math.isfinite(value) else repr(value)
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(value)
    return str(value)


def atomic_write_csv(path: "str | Path", columns: tuple[str, ...], rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell_text(row.get(c)) for c in columns])
    atomic_write_text(path, buf.getvalue())


def read_csv(path: "str | Path") -> list[dict[str, str]]:
    try:
        with open(path, newline="") as fh:
            return list(csv.DictReader(fh))
    except FileNotFoundError:
        return []


class RunPaths:
    """Paths inside one run directory."""

    def __init__(self, root: "str | Path"):
        self.root = Path(root)

    spec = property(lambda self: self.root / "spec.yaml")
    manifest = property(lambda self: self.root / "manifest.json")
    status = property(lambda self: self.root / "status.json")
    oracle = property(lambda self: self.root / "oracle.json")
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
