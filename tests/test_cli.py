"""The run / resume / status / report commands: one-line errors with exit 2, and status output."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import run_cli
from tournament.engine.progress import ProgressTracker, format_status

SPEC = """\
name: clitest
world: myeloid
target: Mo
grid: {algorithm: [PPO], optimizer: [adam], max_perturb: [2]}
algorithm_settings: {PPO: {train_batch_size: 200}}
budget: {env_steps: 400}
hpo: {trials_per_cell: 1}
final: {seeds: 1}
execution: {runner: "tournament.engine.scripted:ScriptedRunner"}
"""


def one_line_error(code: int, err: str) -> str:
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip() and "UserWarning" not in ln and "warn_names" not in ln]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def cli_error(args: list[str], capsys) -> str:
    code, _, err = run_cli(args, capsys)
    return one_line_error(code, err)


def fake_run(tmp_path: Path, status: dict | None, manifest: dict | None = None) -> Path:
    run = tmp_path / "runs" / "clitest"
    run.mkdir(parents=True)
    (run / "spec.yaml").write_text(SPEC)
    if status is not None:
        (run / "status.json").write_text(json.dumps(status))
    (run / "manifest.json").write_text(json.dumps(manifest or {"status": "interrupted", "sessions": []}))
    return run


def test_status_prints_counts_best_cells_and_eta(tmp_path, capsys):
    tracker = ProgressTracker(planned=10, done=3, failed=1, best={"cell-a": 0.25, "cell-b": 0.75})
    tracker.start("x")
    status = tracker.status()
    run = fake_run(tmp_path, status)
    code, out, err = run_cli(["status", str(run)], capsys)
    assert code == 0, err
    assert "3 done, 1 running, 1 failed, 5 remaining (of 10)" in out
    assert out.index("cell-b") < out.index("cell-a")  # best first
    assert "run " in out and "interrupted" in out
    code, out, _ = run_cli(["status", str(run), "--json"], capsys)
    assert code == 0 and json.loads(out)["trials"] == status["trials"]
    assert format_status({"phase": "done", "trials": {}}).startswith("phase: done")


def test_status_errors(tmp_path, capsys):
    assert "run directory not found" in cli_error(["status", str(tmp_path / "nope")], capsys)
    run = fake_run(tmp_path, None)
    assert "has no status.json" in cli_error(["status", str(run)], capsys)
    (run / "status.json").write_text("{broken")
    assert "not valid JSON" in cli_error(["status", str(run)], capsys)


def test_run_bad_spec_is_one_line(tmp_path, capsys):
    spec = tmp_path / "bad.yaml"
    spec.write_text(SPEC.replace("[PPO]", "[PPO, Q]"))
    line = cli_error(["run", str(spec), "--storage", str(tmp_path / "runs")], capsys)
    assert "grid.algorithm[1]: unknown algorithm 'Q'; valid choices: PPO" in line
    assert not (tmp_path / "runs").exists()
    line = cli_error(["run", str(tmp_path / "none.yaml")], capsys)
    assert "spec file not found" in line


def test_run_refuses_an_existing_run_without_resume(tmp_path, capsys):
    run = fake_run(tmp_path, {"phase": "tune"})
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    line = cli_error(["run", str(spec), "--storage", str(tmp_path / "runs")], capsys)
    assert "already exists" in line and "tournament resume" in line
    # a different grid cannot resume the run
    spec.write_text(SPEC.replace("env_steps: 400", "env_steps: 600"))
    line = cli_error(["run", str(spec), "--resume", "--storage", str(tmp_path / "runs")], capsys)
    assert line.startswith("error: budget.env_steps: the spec differs")
    assert (run / "spec.yaml").read_text() == SPEC


def test_resume_errors(tmp_path, capsys):
    line = cli_error(["resume", str(tmp_path)], capsys)
    assert "is not a run directory" in line
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run = fake_run(tmp_path, {"phase": "tune"},
                       {"status": "running", "sessions": [], "driver": {"host": socket.gethostname(), "pid": live.pid}})
        line = cli_error(["resume", str(run)], capsys)
        assert "is still running" in line and str(live.pid) in line
    finally:
        live.kill()
        live.wait()


def test_report_needs_a_run_directory(tmp_path, capsys):
    line = cli_error(["report", str(tmp_path)], capsys)
    assert "is not a run directory" in line


@pytest.mark.parametrize("args", [["run"], ["status"], ["frobnicate"]])
def test_usage_errors_exit_2(args, capsys):
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "Usage" in err
