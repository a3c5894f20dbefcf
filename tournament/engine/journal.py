"""The Optuna journal of a run (`optuna/studies.log`): checked on read, appended whole, fsynced.

`RunJournalBackend` keeps Optuna's line format (optuna-dashboard opens the file), checks each line
as it is read (damage raises JournalDamage naming the line), and appends the records of one
suggest or one tell together in one write, fsynced, so a crash leaves at most a partial last
record, which `tournament resume` sets aside (tournament.engine.repair).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from optuna.storages import JournalStorage
from optuna.storages.journal import BaseJournalBackend

from envs.errors import UserInputError
from tournament.engine.records import Damage
from tournament.engine.rundir import append_bytes

JOURNAL_NAME = "optuna/studies.log"


class JournalDamage(UserInputError):
    """A journal line that is not a complete JSON record (`damage` says where and what)."""

    def __init__(self, damage: Damage):
        self.damage = damage
        super().__init__(str(damage))


def _journal_record(line: bytes) -> str | None:
    """What is wrong with one journal line (without its line break), or None."""
    try:
        log = json.loads(line)
    except ValueError as exc:
        return f"invalid JSON ({exc})"[:120]
    if not isinstance(log, dict) or not isinstance(log.get("op_code"), int):
        return "a JSON value without an op_code"
    return None


def scan_journal(path: "str | Path", name: str = JOURNAL_NAME) -> tuple[int, list[Damage], int]:
    """(complete records, damage found, byte offset past the last good record) of a journal file."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return 0, [], 0
    damage: list[Damage] = []
    pieces = data.split(b"\n")
    terminated_last = pieces[-1] == b""
    if terminated_last:
        pieces.pop()
    good, offset, good_end = 0, 0, 0
    for i, raw in enumerate(pieces):
        last, start = i == len(pieces) - 1, offset
        offset += len(raw) + 1
        if last and not terminated_last:
            damage.append(Damage(name, i + 1, f"a record cut short ({len(raw)} bytes, no line break)",
                                 "a complete JSON record ending in a line break", True, start))
            continue
        problem = _journal_record(raw)
        if problem is not None:
            damage.append(Damage(name, i + 1, f"{problem}: {raw[:60]!r}", "one JSON record per line", last, start))
            continue
        good += 1
        if not damage:
            good_end = offset
    return good, damage, good_end


class RunJournalBackend(BaseJournalBackend):
    """The run's Optuna journal file: Optuna's format, checked reads, batched fsynced appends.

    Inside `batch()`, records are kept in memory (and served to the storage's own reads) and
    appended in one write when the outermost batch ends; outside one they are appended at once.
    A damaged line raises JournalDamage; `tournament resume` repairs a damaged last line first.
    One driver writes a run's journal (the runner refuses a second), so there is no file lock.
    """

    def __init__(self, file_path: "str | Path", name: str = JOURNAL_NAME, root: "str | Path | None" = None):
        self.path = Path(file_path)
        self.name = name
        self.root = root  # the run directory, named in write errors
        self._offsets = [0]  # byte offset of the start of each record read from the file
        self._pending: list[dict[str, Any]] = []
        self._depth = 0

    def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
        known = len(self._offsets) - 1
        number = min(log_number_from, known)
        try:
            fh = open(self.path, "rb")
        except FileNotFoundError:
            fh = None
        if fh is not None:
            with fh:
                fh.seek(self._offsets[number])
                for line in fh:
                    if not line.endswith(b"\n"):
                        raise JournalDamage(Damage(self.name, number + 1, f"a record cut short ({len(line)} bytes, "
                                                   "no line break)", "a complete JSON record ending in a line break",
                                                   True, self._offsets[number]))
                    problem = _journal_record(line[:-1])
                    if problem is not None:
                        last = not fh.read(1)
                        raise JournalDamage(Damage(self.name, number + 1, f"{problem}: {line[:60]!r}",
                                                   "one JSON record per line", last, self._offsets[number]))
                    if number == len(self._offsets) - 1:
                        self._offsets.append(self._offsets[-1] + len(line))
                    if number >= log_number_from:
                        yield json.loads(line)
                    number += 1
        base = len(self._offsets) - 1
        for i, log in enumerate(self._pending):
            if base + i >= log_number_from:
                yield log

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        self._pending.extend(logs)
        if self._depth == 0:
            self.flush()

    def flush(self) -> None:
        """Append the pending records in one write (fsynced); a failed write leaves the file as it was."""
        if not self._pending:
            return
        data = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in self._pending).encode("utf-8")
        self._pending = []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        append_bytes(self.path, data, root=self.root)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.flush()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_pending": [], "_depth": 0}


def journal_storage(path: "str | Path", root: "str | Path | None" = None) -> JournalStorage:
    """The JournalStorage at `path` (a .log file; `optuna-dashboard path` opens it)."""
    path = Path(path)
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(RunJournalBackend(path, root=root))
