"""`tournament plan SPEC`: cells, trials, env steps and estimated core-hours before a run."""

from __future__ import annotations

import json

import click

from envs.errors import UserInputError


@click.command("plan")
@click.argument("spec_file", type=click.Path())
@click.option("--scale", type=float, default=1.0, show_default=True, help="Multiply every trial's env steps by this.")
@click.option("--max-core-hours", type=float, default=None, help="Warn when the estimate is over this.")
@click.option("--calibrate-s", "calibrate_s", type=float, default=None,
              help="Seconds of timed training per algorithm (at least one iteration; default: plan.CALIBRATION_BUDGET_S, 3).")
@click.option("--json", "as_json", is_flag=True)
def plan_cmd(spec_file: str, scale: float, max_core_hours: float | None, calibrate_s: float, as_json: bool) -> None:
    """Estimate what SPEC costs from a short calibration of each algorithm on its world."""
    from tournament.engine.plan import CALIBRATION_BUDGET_S, plan
    from tournament.engine.spec import load_spec, scaled

    if not scale > 0:
        raise UserInputError(f"--scale must be positive, got {scale!r}")
    calibrate_s = CALIBRATION_BUDGET_S if calibrate_s is None else calibrate_s
    if not calibrate_s > 0:
        raise UserInputError(f"--calibrate-s must be positive, got {calibrate_s!r}")
    spec = load_spec(spec_file)
    if scale < 1:
        scaled(spec, scale)  # the reduced grid must be one `tournament run --scale` can run
    result = plan(spec, scale=scale, budget_s=calibrate_s, progress=None if as_json else click.echo)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"{result['spec']}: {result['cells']} cells, {result['trials']} trials, "
                   f"{result['env_steps']:,} env steps (scale {scale:g})")
        for name, cal in result["calibration"].items():
            click.echo(f"  calibration {name}: {cal['env_steps_per_s']:.0f} env steps/s, "
                       f"{cal['eval_episode_s'] * 1000:.1f} ms per evaluation episode")
        worst = sorted(result["per_cell"], key=lambda r: -r["core_hours"])[:5]
        click.echo("most expensive cells:")
        for r in worst:
            click.echo(f"  {r['cell_id']}: {r['trials']} trials x {r['trial_s']:.0f} s = {r['core_hours']:.2f} core-hours")
        click.echo(f"estimated total: {result['core_hours']:.1f} core-hours "
                   f"({result['core_hours'] / 16:.1f} h on 16 cores, {result['core_hours'] / 2:.1f} h on 2)")
    if max_core_hours is not None and result["core_hours"] > max_core_hours:
        click.echo(f"warning: the estimate ({result['core_hours']:.1f} core-hours) is over --max-core-hours "
                   f"{max_core_hours:g}; reduce the grid, the budget or the trials", err=True)


COMMANDS = (plan_cmd,)
