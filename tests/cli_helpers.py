"""Run the `tournament` CLI in-process and check its one-line errors."""

from __future__ import annotations

from pathlib import Path

from tournament.cli.main import main


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `tournament ARGS`."""
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def files_under(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


def one_line_error(code: int, err: str, needle: str) -> str:
    """Exit 2 with one `error: ...` line that names `needle` (case-insensitive), no traceback."""
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error:") and "Traceback" not in err
    assert needle.lower() in lines[0].lower(), lines[0]
    return lines[0]
