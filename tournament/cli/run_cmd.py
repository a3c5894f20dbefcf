"""CLI commands that run tournaments: run, resume, status, report, verify, benchmark."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from envs.errors import UserInputError


def _execution_overrides(address, storage, max_concurrent, num_cpus) -> dict:
    return {"address": address, "storage": storage, "max_concurrent": max_concurrent, "num_cpus": num_cpus}


_address = click.option("--address", default=None, help="Join a Ray cluster: auto, ray://host:port or host:port.")
_max_conc = click.option("--max-concurrent", type=int, default=None, help="At most this many trials at once.")
_num_cpus = click.option("--num-cpus", type=int, default=None, help="CPUs of the embedded local Ray.")
_quiet = click.option("--quiet", is_flag=True, help="No progress display (status.json is still written).")


@click.command("run")
@click.argument("spec_file", metavar="SPEC", type=click.Path())
@click.option("--resume", is_flag=True, help="Continue the run directory of this spec if it exists.")
@_address
@click.option("--storage", default=None, help="Run storage: a local directory or a URI (s3://, gs://, file://).")
@_max_conc
@_num_cpus
@_quiet
@click.option("--scale", type=float, default=1.0, show_default=True,
              help="Run every trial with this fraction of its env steps, as SPEC_x<scale> (checks `tournament plan --scale`).")
def run_cmd(spec_file, resume, address, storage, max_concurrent, num_cpus, quiet, scale) -> None:
    """Run the tournament of SPEC: tuning, final seeds, leaderboard and report."""
    from tournament.engine.runner import run_tournament
    from tournament.engine.spec import load_spec, scaled, with_overrides

    spec = with_overrides(scaled(load_spec(spec_file), scale),
                          **_execution_overrides(address, storage, max_concurrent, num_cpus))
    root = run_tournament(spec, resume=resume, progress=not quiet, command=["tournament", *sys.argv[1:]])
    _summary(root)


@click.command("resume")
@click.argument("run_dir", metavar="RUN", type=click.Path())
@_address
@_max_conc
@_num_cpus
@_quiet
def resume_cmd(run_dir, address, max_concurrent, num_cpus, quiet) -> None:
    """Continue a stopped or killed tournament; finished trials are not run again."""
    from tournament.engine.runner import resume_tournament

    root = resume_tournament(run_dir, progress=not quiet, address=address, max_concurrent=max_concurrent,
                             num_cpus=num_cpus)
    _summary(root)


def _summary(root: Path) -> None:
    from tournament.engine.progress import format_status, read_status
    from tournament.engine.rundir import RunPaths, read_json

    status = read_status(root)
    manifest = read_json(RunPaths(root).manifest, {}) or {}
    click.echo(f"run {root}: {manifest.get('status', '?')}")
    if status:
        click.echo(format_status(status))
    if (Path(root) / "report.html").is_file():
        click.echo(f"leaderboard: {Path(root) / 'leaderboard.md'}\nreport: {Path(root) / 'report.html'}")


@click.command("status")
@click.argument("run_dir", metavar="RUN", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print status.json as it is.")
def status_cmd(run_dir, as_json) -> None:
    """Progress of a tournament (also while it runs, from another terminal)."""
    from tournament.engine.progress import format_status, read_status
    from tournament.engine.rundir import RunPaths, read_json

    root = Path(run_dir)
    if not root.is_dir():
        raise UserInputError(f"run directory not found: {root}")
    try:
        status = read_status(root)
    except json.JSONDecodeError:
        raise UserInputError(f"{root}/status.json is not valid JSON") from None
    if status is None:
        raise UserInputError(f"{root} has no status.json (not a tournament run directory, or not started yet)")
    if as_json:
        click.echo(json.dumps(status, indent=2))
        return
    manifest = read_json(RunPaths(root).manifest, {}) or {}
    click.echo(f"run {root}: {manifest.get('status', '?')}")
    click.echo(format_status(status))


@click.command("report")
@click.argument("run_dir", metavar="RUN", type=click.Path())
def report_cmd(run_dir) -> None:
    """Rebuild the leaderboard and report from a run directory."""
    from tournament.engine.rundir import RunPaths

    root = Path(run_dir)
    if not RunPaths(root).spec.is_file():
        raise UserInputError(f"{root} is not a run directory (no spec.yaml)")
    try:
        from tournament.report.leaderboard import load_run
        from tournament.report.report import MAX_SHOWN_DAMAGE, build_report
    except ImportError as exc:
        raise click.ClickException(f"the report is not available in this build ({exc})")
    run = load_run(root)
    for line in run.skipped[:MAX_SHOWN_DAMAGE]:
        click.echo(f"warning: skipped {line}", err=True)
    if len(run.skipped) > MAX_SHOWN_DAMAGE:
        click.echo(f"warning: skipped {len(run.skipped) - MAX_SHOWN_DAMAGE} more damaged record(s)", err=True)
    written = build_report(root, run=run) or {}
    click.echo(f"report rebuilt in {root}: {len(written)} files"
               + (f", {len(run.skipped)} damaged record(s) left out (see the report)" if run.skipped else ""))
    for name in ("leaderboard.md", "report.html"):
        if (root / name).is_file():
            click.echo(f"  {root / name}")


@click.command("verify")
@click.argument("run_dir", metavar="RUN", type=click.Path())
def verify_cmd(run_dir) -> None:
    """Check a run directory: spec hash, records, checkpoints, journal vs tables, the report."""
    from tournament.engine.verify import verify_run

    checks = verify_run(Path(run_dir))
    for check in checks:
        click.echo(check.line())
    failed = [c for c in checks if c.verdict == "FAIL"]
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(checks)} checks failed")


@click.command("benchmark")
@click.argument("run_dirs", metavar="RUN...", nargs=-1, required=True, type=click.Path())
@click.option("--out", "out_dir", type=click.Path(), default=None,
              help="Folder for benchmark.md and benchmark.csv (default: print the markdown).")
def benchmark_cmd(run_dirs, out_dir) -> None:
    """The benchmark view of steer runs: per task the optimum, each baseline, the best RL entry per algorithm."""
    from tournament.cli.output import echo_or_write
    from tournament.engine.rundir import RunPaths
    from tournament.report.benchmark_view import benchmark_csv, benchmark_markdown, task_rows

    rows = []
    for run_dir in run_dirs:
        if not RunPaths(run_dir).spec.is_file():
            raise UserInputError(f"{run_dir} is not a run directory (no spec.yaml)")
        rows += task_rows(run_dir)
    if not rows:
        raise UserInputError("no steer task with results in " + ", ".join(run_dirs))
    text = benchmark_markdown(rows)
    out = echo_or_write(text, out_dir, {"benchmark.md": text, "benchmark.csv": benchmark_csv(rows)})
    if out is not None:
        click.echo(f"benchmark of {len(rows)} task(s): {out / 'benchmark.md'}")


COMMANDS = (run_cmd, resume_cmd, status_cmd, report_cmd, verify_cmd, benchmark_cmd)
