"""Checked readers of the run directory's tables and JSON files: good rows, and damage named exactly.

A record that breaks its file's contract (a cut-short line, a wrong number of fields, a value of
the wrong kind, bytes that are not UTF-8) becomes a `Damage` with the file, the line, what was
found and what was expected; the good rows are still returned, so a report can be built from what
exists and `tournament resume` can set aside a damaged last record (tournament.engine.repair).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tournament.engine.rundir import ADDED_COLUMNS, PREDICT_COLUMNS, TRAJECTORY_COLUMNS, legacy_columns


@dataclass(frozen=True)
class Damage:
    """A record that is not what its file's contract says: where, what was found, what was expected.

    `last` marks the file's last record: what a crash or a full disk can leave, and what
    `tournament resume` sets aside. `start` is the byte offset where the damaged line begins.
    """

    file: str
    line: int
    found: str
    expected: str
    last: bool
    start: int = 0

    def __str__(self) -> str:
        return f"{self.file}, line {self.line}: {self.found}; expected {self.expected}"


@dataclass
class Table:
    """A table as read: the good rows (with their line numbers) and the damage found."""

    path: Path
    columns: tuple[str, ...]
    rows: list[dict[str, str]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    damage: list[Damage] = field(default_factory=list)
    exists: bool = False
    good_end: int = 0  # byte offset just past the last good line (header included)
    filled: dict[str, str] = field(default_factory=dict)  # added columns an older table lacks, with their values


def _is_float(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def _is_int(v: str) -> bool:
    try:
        int(v)
        return True
    except ValueError:
        return False


def _is_json(v: str) -> bool:
    try:
        json.loads(v)
        return True
    except ValueError:
        return False


# kind -> (check of a non-empty value, whether empty is allowed, what is expected)
_KINDS: dict[str, tuple[Callable[[str], bool], bool, str]] = {
    "id": (lambda v: True, False, "a non-empty name"),
    "str": (lambda v: True, True, "text"),
    "int": (_is_int, False, "an integer"),
    "num?": (_is_float, True, "a number or empty"),
    "json": (_is_json, False, "JSON"),
    "json?": (_is_json, True, "JSON or empty"),
    "phase": (lambda v: v in ("tune", "final"), False, "tune or final"),
    "task": (lambda v: v in ("steer", "predict", "trajectory"), False, "steer, predict or trajectory"),
    "action": (lambda v: v in ("discrete", "continuous"), False, "discrete or continuous"),
    "status": (lambda v: v in ("ok", "failed"), False, "ok or failed"),
}

_CELL_KINDS = {"world": "id", "task": "task", "target": "str", "algorithm": "id", "optimizer": "id",
               "max_perturb": "int", "module": "id", "action": "action"}
TABLE_KINDS: dict[str, dict[str, str]] = {
    "trials.csv": {"trial_id": "id", "phase": "phase", "cell_id": "id", **_CELL_KINDS, "seed": "int",
                   "hparams": "json", "status": "status", "fail_reason": "str", "score": "num?",
                   "normalized_score": "num?", "env_steps": "num?", "steps_to_90": "num?", "cpu_seconds": "num?",
                   "wall_seconds": "num?", "node_id": "str"},
    "curves.csv": {"trial_id": "id", "phase": "phase", "cell_id": "id", "seed": "int", "iteration": "int",
                   "env_steps": "num?", "stage": "str", "episode_return_mean": "num?", "eval_score": "num?",
                   "frac_lr_max": "num?", "lr_mean": "num?"},
    "final_scores.csv": {"cell_id": "id", **_CELL_KINDS, "seed": "int", "score": "num?", "normalized_score": "num?",
                         "steps_to_90": "num?", "cpu_seconds": "num?", "perturbation_sets": "json?",
                         **{c: "num?" for c in (*PREDICT_COLUMNS, *TRAJECTORY_COLUMNS)}},
}


def _show(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _check_row(fields: list[str], columns: tuple[str, ...], kinds: dict[str, str]) -> str | None:
    """What is wrong with one record, or None."""
    if len(fields) != len(columns):
        return f"{len(fields)} of {len(columns)} fields"
    for name, value in zip(columns, fields):
        check, empty_ok, _ = _KINDS[kinds.get(name, "str")]
        if value == "":
            if not empty_ok:
                return f"column {name} is empty"
        elif not check(value):
            return f"column {name} is {_show(value)}"
    return None


def _expected_row(fields: list[str], columns: tuple[str, ...], kinds: dict[str, str]) -> str:
    if len(fields) != len(columns):
        return f"{len(columns)} comma-separated fields ending in a line break"
    for name, value in zip(columns, fields):
        check, empty_ok, what = _KINDS[kinds.get(name, "str")]
        if (value == "" and not empty_ok) or (value != "" and not check(value)):
            return f"{what} in column {name}"
    return "a complete record"


def _split(line: str) -> list[str]:
    if '"' not in line:
        return line.split(",")
    try:
        return next(csv.reader([line], strict=True))
    except (csv.Error, StopIteration):
        return [line]  # an unbalanced quote: reported as a wrong field count


def read_table(path: "str | Path", columns: tuple[str, ...] | None = None, name: str | None = None) -> Table:
    """Read a run table line by line, checking the header, each record's fields and their types.

    Damaged records are left out of `rows` and listed in `damage` with file, line, what was
    found and what was expected. A missing or empty file is an empty table without damage.
    """
    path = Path(path)
    name = name or path.name
    kinds = TABLE_KINDS.get(path.name, {})
    columns = tuple(columns) if columns is not None else tuple(kinds)
    table = Table(path, columns)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return table
    table.exists = True
    if not data:
        return table
    header = ",".join(columns)
    pieces = data.split(b"\n")
    ends_with_break = pieces[-1] == b""
    if ends_with_break:
        pieces.pop()
    n = len(pieces)
    offset = 0
    for i, raw in enumerate(pieces):
        lineno, last = i + 1, i == n - 1
        start = offset
        offset += len(raw) + 1
        terminated = not last or ends_with_break
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            table.damage.append(Damage(name, lineno, f"bytes that are not UTF-8 text (at column {exc.start + 1})",
                                       "a UTF-8 text line", last, start))
            continue
        if text.endswith("\r"):
            text = text[:-1]
        if i == 0:
            if text == ",".join(legacy_columns(columns)) and terminated and legacy_columns(columns) != columns:
                # an older version's table: its records read with the added columns' values
                columns = legacy_columns(columns)
                table.filled = {c: v for c, v in ADDED_COLUMNS.items() if c in table.columns}
                table.good_end = offset
                continue
            if text != header or not terminated:
                found = "a header cut short" if header.startswith(text) and not terminated else f"header {_show(text)}"
                # a wrong header makes every record after it suspect: nothing is read
                table.damage.append(Damage(name, 1, found, f"the header {_show(header, 80)}", last, start))
                return table
            table.good_end = offset
            continue
        if not terminated:
            fields = _split(text)
            table.damage.append(Damage(name, lineno, f"a record cut short ({len(fields)} of {len(columns)} fields, "
                                       "no line break)", "a complete record ending in a line break", last, start))
            continue
        fields = _split(text)
        problem = _check_row(fields, columns, kinds)
        if problem is not None:
            table.damage.append(Damage(name, lineno, f"{problem}: {_show(text)}", _expected_row(fields, columns, kinds),
                                       last, start))
            continue
        table.rows.append({**table.filled, **dict(zip(columns, fields))} if table.filled else dict(zip(columns, fields)))
        table.lines.append(lineno)
        if not table.damage:
            table.good_end = offset
    return table


def read_json_checked(path: "str | Path", name: str | None = None) -> tuple[Any, Damage | None]:
    """(the document, None), (None, None) when missing, or (None, the damage) when it does not parse."""
    path = Path(path)
    name = name or path.name
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None, None
    except UnicodeDecodeError:
        return None, Damage(name, 1, "bytes that are not UTF-8 text", "a JSON document", False)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, Damage(name, exc.lineno, f"invalid JSON ({exc.msg}, column {exc.colno})",
                            "a complete JSON document", False)
    return data, None
