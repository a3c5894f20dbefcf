"""`tournament compare RUN_A RUN_B`: the grid cells two runs share, side by side, with B - A."""

from __future__ import annotations

import click


@click.command("compare")
@click.argument("run_a", metavar="RUN_A", type=click.Path())
@click.argument("run_b", metavar="RUN_B", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON instead of a table.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False), default=None,
              help="Also write the comparison as markdown to this file (e.g. compare.md).")
@click.option("--reps", type=click.IntRange(min=100), default=2000, show_default=True,
              help="Bootstrap resamples per interval.")
def compare_cmd(run_a, run_b, as_json, out_file, reps) -> None:
    """Final-seed mean [95% CI] of each cell in both runs, the difference B - A, and the cells of one run only."""
    from pathlib import Path

    from envs.errors import UserInputError
    from envs.files import atomic_write_text
    from tournament.report.compare import comparison_json, comparison_markdown, comparison_text, compare_runs

    cmp = compare_runs(run_a, run_b, reps=reps)
    click.echo(comparison_json(cmp) if as_json else comparison_text(cmp), nl=False)
    if out_file is not None:
        out = Path(out_file)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out, comparison_markdown(cmp))
        except OSError as exc:
            raise UserInputError(f"cannot write {out}: {exc.strerror or exc}") from exc
        if not as_json:
            click.echo(f"written: {out}")


COMMANDS = (compare_cmd,)
