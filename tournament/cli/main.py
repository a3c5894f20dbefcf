"""The `tournament` command: a click group that gathers the commands of the *_cmd modules.

Each *_cmd module exports COMMANDS, a tuple of click commands; add a module to COMMAND_MODULES
to add its commands. `main()` turns mistakes a user can make (UserInputError, bad YAML, a spec
that fails validation) into one line `error: ...` on stderr and exit code 2, without a traceback.
"""

from __future__ import annotations

import sys

import click

from envs.errors import UserInputError
from tournament.cli import bench_cmd, claims_cmd, compare_cmd, import_cmd, infer_cmd, plan_cmd, run_cmd, world_cmd

# run / resume / status / report; worlds / oracle / simulate / infer; bench
COMMAND_MODULES = (run_cmd, plan_cmd, world_cmd, infer_cmd, bench_cmd, import_cmd, claims_cmd, compare_cmd)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Distributed RL tournament on cell-fate worlds: tune, compare and report algorithms."""


def _register() -> None:
    for module in COMMAND_MODULES:
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    try:
        cli.main(args=argv, prog_name="tournament", standalone_mode=False)
    except UserInputError as exc:
        click.echo(f"error: {_one_line(exc)}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return 2 if isinstance(exc, click.UsageError) else exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted; continue with `tournament resume RUN`", err=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
