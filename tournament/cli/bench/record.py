"""Render benchmark rows as markdown and record them in BENCHMARKS.md under their own heading."""

from __future__ import annotations

import datetime as dt
import platform
import re
from pathlib import Path

from tournament.engine.rundir import atomic_write_text, hardware


def machine_line() -> str:
    h = hardware()
    return f"{h['cpu_count']} CPUs ({h['cpu_model']}), {h['gpu'] or 'no GPU'}, Python {platform.python_version()}"


def markdown_table(rows: list[dict]) -> str:
    if not rows:
        return "(no rows)\n"
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]

    def fmt(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.0f}" if abs(v) >= 1000 else f"{v:.4g}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def record(path: "str | Path", name: str, command: str, rows: list[dict], notes: str = "") -> Path:
    """Replace (or append) the section `## bench: <name>` of BENCHMARKS.md, atomically."""
    path = Path(path)
    text = path.read_text() if path.exists() else "# Benchmarks\n\nFigures recorded by `tournament bench ... --record`; each section names the command that produced it.\n"
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"## bench: {name}\n\n"
        f"Command: `{command}`  \nMachine: {machine_line()}  \nRecorded: {when}\n\n"
        f"{markdown_table(rows)}"
        + (f"\n{notes.strip()}\n" if notes.strip() else "")
        + "\n"
    )
    pattern = re.compile(rf"^## bench: {re.escape(name)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    atomic_write_text(path, text)
    return path
