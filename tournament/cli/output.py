"""How the view commands (benchmark, claims) hand out what they built: printed, or written as files."""

from __future__ import annotations

from pathlib import Path

import click


def echo_or_write(markdown: str, out_dir: "str | None", files: dict[str, str]) -> "Path | None":
    """Print `markdown` when there is no `--out`; else write each of `files` (name -> text) into
    `out_dir`, atomically, and return the folder."""
    from envs.files import atomic_write_text

    if out_dir is None:
        click.echo(markdown)
        return None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        atomic_write_text(out / name, text)
    return out
