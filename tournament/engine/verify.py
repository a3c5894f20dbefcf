"""`tournament verify RUN`: check a whole run directory and give a one-line verdict per check.

Checks: the spec against the hash the driver recorded, the manifest and the other JSON files,
each table and the Optuna journal record by record (tournament.engine.rundir / tournament.engine.search
readers), the journal against trials.csv (per cell and tuning slot, the trial that counts and
its row agree on state and score), trials.csv against final_scores.csv and curves.csv, every
finished trial's Tune result (its score) and checkpoint in the Tune experiment, and the report
against the current records (leaderboard.csv rebuilt in memory must be byte-identical).
Verdicts: ok, warn (nothing wrong, something not checkable or unusual), FAIL.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from envs.errors import UserInputError
from tournament.engine.repair import RunScan, scan_run
from tournament.engine.rundir import RunPaths, text_sha256
from tournament.engine.records import Damage

OK, WARN, FAIL = "ok", "warn", "FAIL"
SHOWN = 3


@dataclass(frozen=True)
class Check:
    name: str
    verdict: str
    message: str

    def line(self) -> str:
        return f"{self.verdict:<4} {self.name}: {self.message}"


def _first(items: list, more: str = "more") -> str:
    shown = "; ".join(str(i) for i in items[:SHOWN])
    return shown + (f" (and {len(items) - SHOWN} {more})" if len(items) > SHOWN else "")


def _damage_check(name: str, damage: list[Damage], good: str) -> Check:
    if not damage:
        return Check(name, OK, good)
    hint = ("a partial last record, what a crash leaves: `tournament resume` sets it aside"
            if all(d.last for d in damage) else "damage before the last record: restore the file")
    return Check(name, FAIL, f"{_first(damage)} ({hint})")


def _spec_check(paths: RunPaths, manifest: Any) -> Check:
    from tournament.engine.spec import validate_spec_fields

    if not paths.spec.is_file():
        return Check("spec", FAIL, "spec.yaml is missing")
    text = paths.spec.read_text(errors="replace")
    try:
        validate_spec_fields(yaml.safe_load(text), str(paths.spec))
    except (yaml.YAMLError, UserInputError) as exc:
        return Check("spec", FAIL, f"spec.yaml does not parse as a spec: {str(exc).splitlines()[0]}")
    digest = text_sha256(text)
    recorded = manifest.get("spec_sha256") if isinstance(manifest, dict) else None
    if not recorded:
        return Check("spec", WARN, f"spec.yaml parses (sha256 {digest[:12]}); the manifest records no hash "
                                   "(a run started before hashes were kept)")
    if recorded != digest:
        return Check("spec", FAIL, f"spec.yaml has sha256 {digest[:12]}, the driver wrote {recorded[:12]}: "
                                   "it was changed after the run started")
    return Check("spec", OK, f"spec.yaml matches the hash the driver recorded (sha256 {digest[:12]})")


def _documents_check(scan: RunScan) -> list[Check]:
    out = []
    manifest = scan.documents.get("manifest.json")
    if "manifest.json" in scan.document_damage:
        out.append(_damage_check("manifest", [scan.document_damage["manifest.json"]], ""))
    elif not isinstance(manifest, dict):
        out.append(Check("manifest", FAIL, "manifest.json is missing"))
    else:
        sessions = manifest.get("sessions") or []
        out.append(Check("manifest", OK, f"status {manifest.get('status', '?')}, {len(sessions)} driver session(s)"))
    for name in ("status.json", "oracle.json", "baselines.json"):
        label = name.split(".")[0]
        if name in scan.document_damage:
            out.append(_damage_check(label, [scan.document_damage[name]], ""))
        elif scan.documents.get(name) is None:
            out.append(Check(label, WARN, f"{name} is missing"))
        else:
            out.append(Check(label, OK, f"{name} parses"))
    return out


def _slot_trials(study: Any) -> dict[int, Any]:
    """Per tuning slot the trial that counts: the latest finished one not marked interrupted."""
    counted: dict[int, Any] = {}
    for t in study.get_trials(deepcopy=False):
        slot = t.user_attrs.get("slot")
        if slot is None or t.user_attrs.get("interrupted") or not t.state.is_finished():
            continue
        if int(slot) not in counted or t.number > counted[int(slot)].number:
            counted[int(slot)] = t
    return counted


def _journal_vs_trials(paths: RunPaths, scan: RunScan, finished_run: bool) -> Check:
    import optuna

    from tournament.engine.journal import JournalDamage, journal_storage
    from tournament.engine.search import outcome_from_row

    name = "journal vs trials.csv"
    if scan.journal_damage or not paths.studies.is_file():
        return Check(name, WARN, "not checked (the journal is damaged or missing)")
    try:
        storage = journal_storage(paths.studies)
        studies = {s.study_name: optuna.load_study(study_name=s.study_name, storage=storage)
                   for s in storage.get_all_studies()}
    except (JournalDamage, ValueError, KeyError) as exc:
        return Check(name, FAIL, f"the journal does not replay: {exc}")
    rows = {r["trial_id"]: r for r in scan.tables["trials.csv"].rows if r["phase"] == "tune"}
    problems: list[str] = []
    told, running = set(), 0
    for cid, study in sorted(studies.items()):
        running += sum(t.state.name in ("RUNNING", "WAITING") for t in study.get_trials(deepcopy=False))
        for slot, t in sorted(_slot_trials(study).items()):
            key = f"{cid}-t{slot}"
            told.add(key)
            row = rows.get(key)
            if row is None:
                problems.append(f"{key} finished in the journal, no trials.csv row (resume runs it again)")
                continue
            state, value = outcome_from_row(row)
            if t.state != state:
                problems.append(f"{key}: journal {t.state.name}, trials.csv {state.name}")
            elif state.name == "COMPLETE" and not math.isclose(t.value, value, rel_tol=1e-9, abs_tol=1e-12):
                problems.append(f"{key}: journal score {t.value!r}, trials.csv {value!r}")
    missing = sorted(set(rows) - told)
    problems += [f"{key} in trials.csv, not told in the journal" for key in missing]
    cells = {r["cell_id"] for r in scan.tables["trials.csv"].rows}
    problems += [f"cell {c} has no study in the journal" for c in sorted(cells - set(studies))]
    if running and finished_run:
        problems.append(f"{running} trial(s) still running or waiting in the journal of a finished run")
    if problems:
        return Check(name, FAIL, _first(problems, "more inconsistencies"))
    extra = f"; {running} trial(s) running or waiting (the run is not finished)" if running else ""
    return Check(name, OK, f"{len(studies)} studies, {len(told)} counted tuning trials, each with its row{extra}")


def _tables_consistent(scan: RunScan) -> list[Check]:
    trials = scan.tables["trials.csv"].rows
    finals = scan.tables["final_scores.csv"].rows
    curves = scan.tables["curves.csv"].rows
    out = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for r in trials:
        seen[r["trial_id"]] = seen.get(r["trial_id"], 0) + 1
    problems += [f"trial {k} recorded {n} times" for k, n in sorted(seen.items()) if n > 1]
    ok_finals = {(r["cell_id"], r["seed"]): r for r in trials if r["phase"] == "final" and r["status"] == "ok"}
    by_key: dict[tuple[str, str], list[dict]] = {}
    for r in finals:
        by_key.setdefault((r["cell_id"], r["seed"]), []).append(r)
    for key, r in sorted(ok_finals.items()):
        got = by_key.get(key)
        if not got:
            problems.append(f"final trial {r['trial_id']} has no final_scores.csv row")
        elif (got[0]["score"] or "") != (r["score"] or "") and not (
                got[0]["score"] and r["score"] and math.isclose(float(got[0]["score"]), float(r["score"]))):
            problems.append(f"final trial {r['trial_id']}: score {r['score']} in trials.csv, {got[0]['score']} in "
                            "final_scores.csv")
    for key, got in sorted(by_key.items()):
        if key not in ok_finals:
            problems.append(f"final_scores.csv row of cell {key[0]}, seed {key[1]} without a finished final trial "
                            "(`tournament resume` sets it aside and runs the trial)")
        elif len(got) > 1:
            problems.append(f"final_scores.csv holds cell {key[0]}, seed {key[1]} {len(got)} times")
    out.append(Check("trials vs final_scores", FAIL if problems else OK,
                     _first(problems, "more inconsistencies") if problems else
                     f"{len(trials)} trials once each, {len(ok_finals)} final scores, one row each"))
    problems = []
    ids = set(seen)
    steps: dict[str, float] = {}
    iters: dict[str, set[str]] = {}
    orphans = set()
    for c in curves:
        tid = c["trial_id"]
        if tid not in ids:
            orphans.add(tid)
            continue
        if c["iteration"] in iters.setdefault(tid, set()):
            problems.append(f"curves.csv: trial {tid} iteration {c['iteration']} twice")
        iters[tid].add(c["iteration"])
        if c["env_steps"]:
            steps[tid] = max(steps.get(tid, -math.inf), float(c["env_steps"]))
    problems += [f"curves.csv: rows of trial {t} without a trials.csv row (a driver stopped mid-record: "
                 "`tournament resume` sets them aside)" for t in sorted(orphans)]
    for r in trials:
        if r["trial_id"] in steps and r["env_steps"] and float(r["env_steps"]) != steps[r["trial_id"]]:
            problems.append(f"trial {r['trial_id']}: {r['env_steps']} env steps in trials.csv, its curve ends at "
                            f"{steps[r['trial_id']]:g}")
    out.append(Check("curves vs trials", FAIL if problems else OK,
                     _first(problems, "more inconsistencies") if problems else
                     f"{len(curves)} curve points of {len(iters)} trials, each ending where its trial ended"))
    return out


def _tune_results(paths: RunPaths, scan: RunScan, spec: dict) -> Check:
    """Each finished trial's Tune folder, its checkpoint (when it trained past checkpoint_every
    iterations) and, where Tune's result log reaches the trial's end, the same score."""
    name = "checkpoints and scores"
    storage = str((spec.get("execution") or {}).get("storage", ""))
    if "://" in storage:
        return Check(name, WARN, f"not checked: the Tune experiment is at {storage} (only a local one is read)")
    if not paths.tune_dir.is_dir():
        return Check(name, FAIL if scan.tables["trials.csv"].rows else WARN, "no Tune experiment (tune/)")
    every = int((spec.get("execution") or {}).get("checkpoint_every", 5) or 5)
    dirs: dict[str, list[Path]] = {}
    for attempt in paths.tune_dir.glob("attempt-*"):
        for d in attempt.iterdir():
            if d.is_dir() and "_" in d.name:
                dirs.setdefault(d.name.rsplit("_", 1)[0], []).append(d)
    iterations: dict[str, int] = {}
    for c in scan.tables["curves.csv"].rows:
        iterations[c["trial_id"]] = max(iterations.get(c["trial_id"], 0), int(c["iteration"]))
    problems: list[str] = []
    n_ckpt = n_checked = n_behind = 0
    for r in scan.tables["trials.csv"].rows:
        if r["status"] != "ok" or not r["score"]:
            continue
        key = r["trial_id"]
        candidates = dirs.get(key) or [d for k, ds in dirs.items() if key.startswith(k) for d in ds]  # cut names
        if not candidates:
            problems.append(f"trial {key}: no Tune trial folder in tune/")
            continue
        n_checked += 1
        if iterations.get(key, 0) > every:
            if any(any(d.glob("checkpoint_*")) for d in candidates):
                n_ckpt += 1
            else:
                problems.append(f"trial {key}: {iterations[key]} iterations, no checkpoint in tune/")
        ended = None
        for d in sorted(candidates, key=_attempt_number):  # a trial that ran again: its latest run counts
            last = _last_result(d / "result.json")
            # the run that ended the trial: finished, or stopped early by the median rule
            if last is not None and last.get("trial_key") == key and not last.get("failed") and (
                    last.get("finished") or r["fail_reason"]):
                ended = (d, last)
        if ended is None:
            n_behind += 1  # Tune's log of a stopped driver can end before the trial did
            continue
        d, last = ended
        score = last.get("score")
        if not (isinstance(score, (int, float)) and math.isclose(float(score), float(r["score"]), rel_tol=1e-9)):
            problems.append(f"trial {key}: score {r['score']} in trials.csv, {score} in {d.name}/result.json")
    if problems:
        return Check(name, FAIL, _first(problems, "more"))
    text = (f"{n_checked} finished trials have their Tune folder; {n_ckpt} that trained past {every} "
            f"iteration(s) have their checkpoint; scores agree with Tune's result log")
    if n_behind:
        return Check(name, WARN, text + f" ({n_behind} trial(s) not in it: Tune's log of a stopped driver ends "
                                        "early; trials.csv holds their scores)")
    return Check(name, OK, text)


def _attempt_number(trial_dir: Path) -> int:
    tail = trial_dir.parent.name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def _last_result(path: Path) -> dict | None:
    """The last complete line of a Tune result.json (a killed trial can leave a partial one)."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return None
    for raw in reversed(lines):
        try:
            return json.loads(raw)
        except ValueError:
            continue
    return None


def _report_check(paths: RunPaths, finished_run: bool) -> Check:
    from tournament.report.leaderboard import build_leaderboard, load_run
    from tournament.report.report import _csv

    name = "report"
    board = paths.root / "leaderboard.csv"
    missing = [n for n in ("leaderboard.csv", "leaderboard.md", "report.html") if not (paths.root / n).is_file()]
    if missing:
        return Check(name, FAIL if finished_run else WARN,
                     f"{', '.join(missing)} missing: build it with `tournament report {paths.root}`")
    run = load_run(paths.root)
    expected = _csv(build_leaderboard(run)).encode("utf-8")
    if board.read_bytes() != expected:
        return Check(name, FAIL, f"leaderboard.csv is not what the current records give: rebuild it with "
                                 f"`tournament report {paths.root}`")
    note = f" ({len(run.skipped)} damaged record(s) left out, as the report says)" if run.skipped else ""
    return Check(name, OK, f"leaderboard.csv equals the leaderboard rebuilt from the current records{note}")


def verify_run(root: "str | Path") -> list[Check]:
    """Every check of a run directory, in order."""
    paths = RunPaths(root)
    if not paths.spec.is_file():
        raise UserInputError(f"{paths.root} is not a run directory (no spec.yaml)")
    scan = scan_run(paths.root)
    manifest = scan.documents.get("manifest.json")
    finished_run = isinstance(manifest, dict) and manifest.get("status") == "finished"
    checks = [_spec_check(paths, manifest), *_documents_check(scan)]
    for table, t in scan.tables.items():
        what = f"{len(t.rows)} record(s), each complete" if t.exists else "not written yet"
        checks.append(_damage_check(table, t.damage, what))
    checks.append(_damage_check("optuna/studies.log", scan.journal_damage,
                                f"{scan.journal_records} journal records, each complete"))
    checks.append(_journal_vs_trials(paths, scan, finished_run))
    checks += _tables_consistent(scan)
    try:
        spec = yaml.safe_load(paths.spec.read_text(errors="replace")) or {}
    except yaml.YAMLError:
        spec = {}
    checks.append(_tune_results(paths, scan, spec if isinstance(spec, dict) else {}))
    checks.append(_report_check(paths, finished_run))
    return checks
