"""Render benchmark rows as markdown and record them in BENCHMARKS.md under their own heading."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import tempfile
from pathlib import Path


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = "no GPU"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return f"{os.cpu_count()} CPUs ({cpu}), {gpu}, Python {platform.python_version()}"


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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".BENCHMARKS.")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return path
