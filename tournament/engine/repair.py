"""Damage in a run directory: find it (`scan_run`) and, before a resume, repair what can be repaired.

What a crash or a full disk can leave (see tournament.engine.rundir): a partial last record in an
append-only file (trials.csv, curves.csv, final_scores.csv, the Optuna journal), and tables that
are a trial apart (a trial's curve rows written, its trials.csv row not). `repair_for_resume`
sets such records aside in `damaged/<time>/` (never deleted), prints one warning line for each,
and leaves the tables consistent with each other, so the resumed run re-runs exactly the trials
whose record is incomplete and nothing that finished:

- a damaged last record is cut off (its bytes kept in damaged/);
- curve rows and final scores of a trial without a trials.csv row are set aside (the trial runs
  again under the same id; before this version the driver could leave such rows);
- a final trial whose final score row is missing or damaged, and a trial whose curve does not
  reach the env steps of its row (the end of curves.csv was cut), run again: their rows are set
  aside;
- status.json, oracle.json and baselines.json that do not parse are set aside (each is rebuilt), and so is
  manifest.json (a new one is started; the old one is kept).

Damage before the last record of a file cannot come from a crash of the driver: it is an error
naming the file and line (UserInputError, exit 2), and nothing is changed. The journal's relation
to trials.csv (a trial told but not recorded, or recorded but not told) is settled by the
searcher, which treats trials.csv as the record (tournament.engine.search).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envs.errors import UserInputError
from envs.files import atomic_write_bytes
from tournament.engine.rundir import (
    CURVE_COLUMNS,
    FINAL_COLUMNS,
    TRIAL_COLUMNS,
    RunPaths,
    csv_lines,
    write_error,
)
from tournament.engine.records import Damage, Table, read_json_checked, read_table
from tournament.engine.journal import JOURNAL_NAME, scan_journal

TABLES = {"trials.csv": TRIAL_COLUMNS, "curves.csv": CURVE_COLUMNS, "final_scores.csv": FINAL_COLUMNS}
DOCUMENTS = ("manifest.json", "status.json", "oracle.json", "baselines.json")
DAMAGED_DIR = "damaged"


@dataclass
class RunScan:
    """Every checked record of a run directory."""

    root: Path
    tables: dict[str, Table] = field(default_factory=dict)
    journal_records: int = 0
    journal_damage: list[Damage] = field(default_factory=list)
    journal_good_end: int = 0
    documents: dict[str, Any] = field(default_factory=dict)
    document_damage: dict[str, Damage] = field(default_factory=dict)

    @property
    def damage(self) -> list[Damage]:
        found = [d for t in self.tables.values() for d in t.damage] + self.journal_damage
        return found + list(self.document_damage.values())

    @property
    def middle_damage(self) -> list[Damage]:
        """Damage a crash cannot leave: before a file's last record, or in a whole-file document."""
        return [d for t in self.tables.values() for d in t.damage if not d.last] + \
            [d for d in self.journal_damage if not d.last]


def scan_run(root: "str | Path") -> RunScan:
    paths = RunPaths(root)
    scan = RunScan(paths.root)
    for name, columns in TABLES.items():
        scan.tables[name] = read_table(paths.root / name, columns)
    scan.journal_records, scan.journal_damage, scan.journal_good_end = scan_journal(paths.studies, JOURNAL_NAME)
    for name in DOCUMENTS:
        data, damage = read_json_checked(paths.root / name)
        scan.documents[name] = data
        if damage is not None:
            scan.document_damage[name] = damage
    return scan


def _incomplete_curves(trials: list[dict], curves: list[dict]) -> set[str]:
    """Recorded trials whose curve does not reach the env steps their row says they ended at.

    A trial's curve rows are appended before its row, so this only happens when the end of
    curves.csv was lost (its last record cut); such a trial runs again.
    """
    reached: dict[str, float] = {}
    for c in curves:
        if c["env_steps"]:
            reached[c["trial_id"]] = max(reached.get(c["trial_id"], -1.0), float(c["env_steps"]))
    return {r["trial_id"] for r in trials if r["env_steps"] and reached.get(r["trial_id"]) != float(r["env_steps"])}


class _SetAside:
    """Collects what goes to damaged/<time>/, then writes it (before any file is changed)."""

    def __init__(self, root: Path):
        self.root = root
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        self.rel = Path(DAMAGED_DIR) / stamp
        self.files: dict[str, bytes] = {}
        self.notes: list[str] = []

    def add(self, name: str, data: bytes) -> str:
        self.files[name] = self.files.get(name, b"") + data
        return (self.rel / name).as_posix()

    def write(self) -> None:
        if not self.files:
            return
        self.files["notes.txt"] = ("\n".join(self.notes) + "\n").encode("utf-8")
        for name, data in self.files.items():
            path = self.root / self.rel / name
            try:
                atomic_write_bytes(path, data)
            except OSError as exc:
                raise write_error(path, exc, self.root) from exc


def _rows_text(columns: tuple[str, ...], rows: list[dict]) -> bytes:
    return csv_lines(columns, rows, header=True).encode("utf-8")


def repair_for_resume(root: "str | Path", warn: Callable[[str], None] | None = None) -> list[str]:
    """Set aside what a crash left half-written and make the tables consistent; returns the warnings.

    Raises UserInputError, changing nothing, when a file is damaged before its last record.
    """
    paths = RunPaths(root)
    root = paths.root
    scan = scan_run(root)
    middle = scan.middle_damage
    if middle:
        more = f" (and {len(middle) - 1} more)" if len(middle) > 1 else ""
        raise UserInputError(
            f"{middle[0]}{more}: damage before a file's last record is not what a crash leaves and cannot be "
            f"repaired without losing records; nothing was changed (restore the file, or remove the line "
            f"yourself), then resume")

    aside = _SetAside(root)
    warnings: list[str] = []
    rewrite: dict[str, bytes] = {}  # file (relative) -> its new content
    moved: list[str] = []  # whole documents moved into damaged/

    def note(text: str) -> None:
        warnings.append(f"warning: {text}")
        aside.notes.append(text)

    # 1. partial last records
    tables = scan.tables
    for name, table in tables.items():
        for d in table.damage:  # only last-record damage is left here
            data = (root / name).read_bytes()
            where = aside.add(f"{name}.line{d.line}", data[d.start:])
            if d.line == 1:
                note(f"{d}; the file is set aside in {where} and starts again")
            else:
                note(f"{d}; set aside in {where}")
            rewrite[name] = b""  # rebuilt below from the good rows
    for d in scan.journal_damage:
        data = paths.studies.read_bytes()
        where = aside.add(f"{Path(JOURNAL_NAME).name}.line{d.line}", data[d.start:])
        note(f"{d}; set aside in {where}; its trial is read from trials.csv or runs again")
        rewrite[JOURNAL_NAME] = data[:scan.journal_good_end]
    for name, d in scan.document_damage.items():
        where = aside.add(name, (root / name).read_bytes())
        rebuilt = {"manifest.json": "a new manifest is started", "status.json": "it is rebuilt",
                   "oracle.json": "the oracle is computed again",
                   "baselines.json": "the baselines are computed again"}[name]
        note(f"{d}; set aside in {where}; {rebuilt}")
        moved.append(name)

    # 2. the tables a trial apart: trials.csv rows are the record of what finished
    trials, curves, finals = tables["trials.csv"].rows, tables["curves.csv"].rows, tables["final_scores.csv"].rows
    cut_curve_trials = _incomplete_curves(trials, curves)
    keep_trials: list[dict] = []
    seen: set[str] = set()
    dropped_trials: list[dict] = []
    final_keys = {(r["cell_id"], r["seed"]) for r in finals}
    for r, line in zip(trials, tables["trials.csv"].lines):
        tid = r["trial_id"]
        if tid in seen:
            note(f"trials.csv, line {line}: trial {tid} recorded twice; the later row is set aside")
            dropped_trials.append(r)
            continue
        seen.add(tid)
        if r["phase"] == "final" and r["status"] == "ok" and (r["cell_id"], r["seed"]) not in final_keys:
            note(f"final_scores.csv has no row for final trial {tid}; it runs again (its trials.csv row is set aside)")
            dropped_trials.append(r)
            continue
        if tid in cut_curve_trials:
            note(f"curves.csv: the curve of trial {tid} is incomplete; it runs again (its rows are set aside)")
            dropped_trials.append(r)
            continue
        keep_trials.append(r)
    kept_ids = {r["trial_id"] for r in keep_trials}
    ok_finals = {(r["cell_id"], r["seed"]) for r in keep_trials if r["phase"] == "final" and r["status"] == "ok"}
    keep_curves = [r for r in curves if r["trial_id"] in kept_ids]
    orphan_curves = [r for r in curves if r["trial_id"] not in kept_ids]
    keep_finals, orphan_finals, seen_finals = [], [], set()
    for r in finals:
        key = (r["cell_id"], r["seed"])
        if key in ok_finals and key not in seen_finals:
            keep_finals.append(r)
            seen_finals.add(key)
        else:
            orphan_finals.append(r)
    if orphan_curves:
        ids = sorted({r["trial_id"] for r in orphan_curves})
        shown = ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
        note(f"curves.csv: {len(orphan_curves)} rows of {len(ids)} trial(s) without a trials.csv row ({shown}) "
             "set aside; those trials run again")
    if orphan_finals:
        note(f"final_scores.csv: {len(orphan_finals)} row(s) without a finished final trial in trials.csv set aside")
    for name, columns, dropped, kept in (("trials.csv", TRIAL_COLUMNS, dropped_trials, keep_trials),
                                         ("curves.csv", CURVE_COLUMNS, orphan_curves, keep_curves),
                                         ("final_scores.csv", FINAL_COLUMNS, orphan_finals, keep_finals)):
        if dropped:
            aside.add(f"{name}.rows", _rows_text(columns, dropped))
        if dropped or name in rewrite:
            rewrite[name] = _rows_text(columns, kept) if (kept or tables[name].exists) else b""

    if not warnings:
        return []
    # 3. write: first what is set aside, then the repaired files (each atomically)
    aside.write()
    for rel, data in rewrite.items():
        path = root / rel
        try:
            atomic_write_bytes(path, data)
        except OSError as exc:
            raise write_error(path, exc, root) from exc
    for name in moved:
        (root / name).unlink(missing_ok=True)  # its bytes are in damaged/ already
    for line in warnings:
        (warn or (lambda _: None))(line)
    return warnings
