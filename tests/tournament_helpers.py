"""Helpers the tournament, fault and cluster tests share: run-table rows, spec overrides,
and a driver killed once some trials have finished."""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def with_changes(data: dict, changes: dict) -> dict:
    """Override top-level spec keys; a dict value updates a dict section instead of replacing it."""
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and isinstance(data.get(key), dict) else value
    return data


def kill_driver_after_trials(spec_file: Path, run: Path, min_trials: int = 2, timeout: float = 400) -> None:
    """Run `tournament run SPEC` in its own process group and SIGKILL it once `min_trials`
    rows are in trials.csv; fails if the driver ended by itself first."""
    driver = subprocess.Popen([sys.executable, "-m", "tournament.cli", "run", str(spec_file), "--quiet"],
                              start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and driver.poll() is None:
            if (run / "trials.csv").is_file() and len(rows(run / "trials.csv")) >= min_trials:
                break
            time.sleep(0.2)
        assert driver.poll() is None, driver.stderr.read().decode()[-2000:]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
        driver.stderr.close()
