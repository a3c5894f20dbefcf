"""`tournament claims RUN...`: verdicts on the seed talk's claims from the runs' final seeds."""

from __future__ import annotations

import click


@click.command("claims")
@click.argument("run_dirs", metavar="RUN...", nargs=-1, required=True, type=click.Path())
@click.option("--out", "out_dir", type=click.Path(), default=None,
              help="Folder for claims.md and claims.csv (default: print the markdown).")
@click.option("--reps", type=click.IntRange(min=100), default=2000, show_default=True,
              help="Bootstrap resamples per interval.")
def claims_cmd(run_dirs, out_dir, reps) -> None:
    """Test the talk's four claims (TRPO_to_PPO, ASGD optimizers, LoRA_staged, MAX_PERTURB) as paired comparisons."""
    from tournament.cli.output import echo_or_write
    from tournament.report.claims import claims_csv, claims_markdown, evaluate_claims

    results = evaluate_claims(list(run_dirs), reps=reps)
    text = claims_markdown(results, list(run_dirs))
    out = echo_or_write(text, out_dir, {"claims.md": text, "claims.csv": claims_csv(results)})
    if out is None:
        return
    verdicts = ", ".join(f"{r.claim} {r.verdict}" for r in results)
    click.echo(f"claims ({verdicts}): {out / 'claims.md'}")


COMMANDS = (claims_cmd,)
