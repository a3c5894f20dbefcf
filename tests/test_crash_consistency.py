"""Crash consistency of the run directory: what a killed driver, a cut record or a full or
read-only disk leaves, what the readers say about it, and that resume ends where an
uninterrupted run ends without running a finished trial twice.

Engine tests use the scripted runner (no RLlib). Killed drivers are processes forked from a
forkserver that has the project imported, so a kill-and-resume cycle costs no imports; they
join the module's local Ray (its GCS address), and a SIGKILL ends the driver alone.
"""

from __future__ import annotations

import contextlib
import errno
import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import time
import types
from pathlib import Path

import pandas as pd
import pytest

from rundir_factory import FakeCell, write_run_dir
from tournament.engine import rundir
from tournament.cli.main import main
from tournament.engine.repair import repair_for_resume, scan_run
from tournament.engine.rundir import TRIAL_COLUMNS, AppendTable, RunDirWriteError
from tournament.engine.records import read_table
from tournament.engine.journal import RunJournalBackend, scan_journal
from tournament.engine.search import CellSearcher

SCRIPTED = "tournament.engine.scripted:ScriptedRunner"
APPEND_ONLY = ("trials.csv", "curves.csv", "final_scores.csv", "optuna/studies.log")
# leaderboard columns that are measurements of this machine, not results
TIMING_COLUMNS = ("cpu_seconds",)


# ---------------------------------------------------------------- helpers


def cut_last_record(path: Path) -> bytes:
    """Cut the file's last record in half (what a crash or a full disk leaves); returns the cut line."""
    data = path.read_bytes()
    assert data.endswith(b"\n"), f"{path} already ends in a partial record"
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    line = data[start:]
    path.write_bytes(data[: start + max(1, len(line) // 2)])
    return line


def append_partial_copy(path: Path) -> None:
    """Append the first half of the last record again, without its line break."""
    data = path.read_bytes()
    assert data.endswith(b"\n"), f"{path} already ends in a partial record"
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    with path.open("ab") as fh:
        fh.write(data[start: start + max(1, (len(data) - start) // 2)])


def one_line_error(capsys, code: int) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip() and "UserWarning" not in ln and "warn_names" not in ln]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def board(run: Path) -> pd.DataFrame:
    df = pd.read_csv(run / "leaderboard.csv")
    return df.drop(columns=list(TIMING_COLUMNS)).sort_values("cell_id").reset_index(drop=True)


def recorded_rows(run: Path) -> dict[str, dict]:
    return {r["trial_id"]: r for r in read_table(run / "trials.csv", TRIAL_COLUMNS).rows}


def trial_dirs(run: Path) -> set[str]:
    return {p.relative_to(run).as_posix() for p in (run / "tune").glob("attempt-*/*") if p.is_dir()}


def progress_bytes(run: Path) -> int:
    return sum((run / name).stat().st_size for name in APPEND_ONLY if (run / name).is_file())


# ---------------------------------------------------------------- readers: file, line, what


def test_a_row_cut_short_is_reported_with_file_and_line(tmp_path):
    run = write_run_dir(tmp_path / "run", [FakeCell(final_scores=[0.5, 0.6])])
    n = len((run / "trials.csv").read_text().splitlines())
    cut_last_record(run / "trials.csv")
    table = read_table(run / "trials.csv")
    assert len(table.rows) == n - 2 and len(table.damage) == 1
    d = table.damage[0]
    assert d.last and d.line == n and d.file == "trials.csv"
    assert str(d).startswith(f"trials.csv, line {n}: a record cut short (")
    assert "expected a complete record ending in a line break" in str(d)


def test_a_garbage_line_is_named_with_what_was_expected(tmp_path):
    run = write_run_dir(tmp_path / "run", [FakeCell(final_scores=[0.5, 0.6])])
    with (run / "final_scores.csv").open("a") as fh:
        fh.write("garbage,line\n")
    (d,) = read_table(run / "final_scores.csv").damage
    assert d.last and d.line == 4
    assert str(d) == ("final_scores.csv, line 4: 2 of 14 fields: 'garbage,line'; "
                      "expected 14 comma-separated fields ending in a line break")
    # a wrong type in a column of the right count
    text = (run / "trials.csv").read_text().splitlines()
    fields = text[1].split(",")
    fields[TRIAL_COLUMNS.index("max_perturb")] = "two"
    (run / "trials.csv").write_text("\n".join([text[0], ",".join(fields), *text[2:]]) + "\n")
    (d,) = read_table(run / "trials.csv").damage
    assert not d.last and d.line == 2 and "column max_perturb is 'two'" in str(d)
    assert "expected an integer in column max_perturb" in str(d)


def test_journal_damage_last_and_in_the_middle(tmp_path):
    path = tmp_path / "studies.log"
    s = CellSearcher(["a"], 2, path, lambda c, t: {"x": t.suggest_float("x", 0, 1)},
                     lambda *a: {"key": a[4]}, final_seeds=[9])
    s.suggest("t0")
    n, damage, _ = scan_journal(path)
    assert n > 3 and not damage
    good = path.read_bytes()
    cut_last_record(path)
    _, (d,), end = scan_journal(path)
    assert d.last and d.line == n and "a record cut short" in str(d) and end == d.start
    lines = good.splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2] + [b"{not json\n"] + lines[2:]))
    _, (d,), _ = scan_journal(path)
    assert not d.last and d.line == 3 and str(d).startswith("optuna/studies.log, line 3: invalid JSON")


# ---------------------------------------------------------------- the three cases of the issue


def test_report_on_a_cut_trials_csv_reports_what_it_can_and_names_what_it_skipped(tmp_path, capsys):
    run = write_run_dir(tmp_path / "run", [FakeCell(final_scores=[0.5, 0.6]),
                                           FakeCell(optimizer="asgd_adam", final_scores=[0.7, 0.8])])
    cut_last_record(run / "trials.csv")
    assert main(["report", str(run)]) == 0
    out = capsys.readouterr()
    assert "warning: skipped trials.csv, line" in out.err and "Traceback" not in out.err
    assert "1 damaged record(s) left out" in out.out
    for name in ("leaderboard.md", "report.html"):
        assert "Skipped: trials.csv, line" in (run / name).read_text(), name
    assert len(pd.read_csv(run / "leaderboard.csv")) == 2  # both cells still reported


def test_a_garbage_line_in_final_scores_is_named_by_report_and_verify(tmp_path, capsys):
    run = write_run_dir(tmp_path / "run", [FakeCell(final_scores=[0.5, 0.6])])
    with (run / "final_scores.csv").open("a") as fh:
        fh.write("this is not a score\n")
    assert main(["report", str(run)]) == 0
    assert "warning: skipped final_scores.csv, line 4: 1 of 14 fields" in capsys.readouterr().err
    assert "Skipped: final_scores.csv, line 4" in (run / "leaderboard.md").read_text()
    assert main(["verify", str(run)]) == 1
    lines = capsys.readouterr().out.splitlines()
    (bad,) = [ln for ln in lines if ln.startswith("FAIL final_scores.csv")]
    assert "line 4" in bad and "`tournament resume` sets it aside" in bad


def test_repair_sets_aside_a_damaged_last_record_and_the_rows_of_its_trial(tmp_path):
    run = write_run_dir(tmp_path / "run", [FakeCell(final_scores=[0.5, 0.6])])
    cut = cut_last_record(run / "trials.csv")  # the second final trial's row
    warned: list[str] = []
    warnings = repair_for_resume(run, warn=warned.append)
    assert warned == warnings and all(w.startswith("warning: ") and "\n" not in w for w in warnings)
    assert "trials.csv, line" in warnings[0] and "set aside in damaged/" in warnings[0]
    (folder,) = (run / "damaged").iterdir()
    pieces = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert any(name.startswith("trials.csv.line") and data == cut[: len(data)] for name, data in pieces.items())
    assert "curves.csv.rows" in pieces and "final_scores.csv.rows" in pieces  # that trial's other rows
    scan = scan_run(run)
    assert not scan.damage
    trial = cut.decode().split(",")[0]
    assert trial not in {r["trial_id"] for r in scan.tables["curves.csv"].rows}
    assert len(scan.tables["final_scores.csv"].rows) == 1
    assert repair_for_resume(run) == []  # nothing left to repair


def test_damage_in_the_middle_stops_resume_with_exit_2_and_changes_nothing(tmp_path, capsys):
    run = write_run_dir(tmp_path / "runs" / "synthetic", [FakeCell(final_scores=[0.5, 0.6])])
    lines = (run / "curves.csv").read_text().splitlines(keepends=True)
    (run / "curves.csv").write_text("".join(lines[:3] + ["\x00\x00 garbage\n"] + lines[3:]))
    before = tree_bytes(run)
    code = main(["resume", str(run), "--quiet"])
    line = one_line_error(capsys, code)
    assert "curves.csv, line 4:" in line and "nothing was changed" in line
    assert tree_bytes(run) == before and not (run / "damaged").exists()


def test_searcher_trusts_trials_csv_over_the_journal(tmp_path):
    """Told but not recorded: runs again with the same parameters; recorded but not told: told from its row."""
    path = tmp_path / "studies.log"

    def sample(cell, trial):
        return {"x": trial.suggest_float("x", 0.0, 1.0)}

    def config(cell, phase, params, seed, key):
        return {"key": key, "x": params["x"], "seed": seed}

    s = CellSearcher(["a"], 2, path, sample, config, final_seeds=[9], defer_tell=True, sampler="random")
    t0, t1 = s.suggest("t0"), s.suggest("t1")
    s.on_trial_complete("t0", {"score": 0.4, "finished": True})
    s.commit("t0")  # told; its row was then lost (cut and set aside)
    s.on_trial_complete("t1", {"score": 0.7, "finished": True})  # recorded, driver died before the tell
    row = {"status": "ok", "fail_reason": "", "score": "0.7", "normalized_score": "", "env_steps": "800"}
    s2 = CellSearcher(["a"], 2, path, sample, config, final_seeds=[9], defer_tell=True, sampler="random",
                      recorded={"a-t1": row})
    again = s2.suggest("u0")
    assert again["key"] == "a-t0" and again["x"] == pytest.approx(t0["x"]) and again["seed"] == t0["seed"]
    assert s2.suggest("u1") is None  # a-t1 is done: not handed out again
    s2.on_trial_complete("u0", {"score": 0.4, "finished": True})
    s2.commit("u0")
    final = s2.suggest("f0")
    assert final["key"] == "a-s9" and final["x"] == pytest.approx(t1["x"])  # the best, told from its row
    told = [t for t in s2.study("a").trials if t.user_attrs.get("told_from_record")]
    assert len(told) == 1 and told[0].value == pytest.approx(0.7)


# ---------------------------------------------------------------- writers: full disk, read-only


@contextlib.contextmanager
def small_tmpfs(tmp_path: Path, size: str = "64k"):
    """A size-capped tmpfs (root only); skips where mounting is not allowed."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_full_disk_keeps_every_complete_record(tmp_path):
    with small_tmpfs(tmp_path, "64k") as mnt:
        table = AppendTable(mnt / "trials.csv", TRIAL_COLUMNS, root=mnt)
        row = {c: "x" for c in TRIAL_COLUMNS} | {"phase": "tune", "task": "steer", "action": "discrete", "max_perturb": 2, "seed": 1,
                                                 "hparams": json.dumps({"lr": 1e-3, "pad": "p" * 300}), "status": "ok",
                                                 "score": 0.5, "normalized_score": None, "env_steps": 800,
                                                 "steps_to_90": None, "cpu_seconds": 1.5, "wall_seconds": 2.0}
        written = 0
        with pytest.raises(RunDirWriteError) as info:
            for i in range(10_000):
                table.append([{**row, "trial_id": f"t{i}"}] * 7)
                written += 7
        assert "cannot write" in str(info.value) and "the disk is full" in str(info.value)
        assert "tournament resume" in str(info.value) and "\n" not in str(info.value)
        t = read_table(mnt / "trials.csv", TRIAL_COLUMNS)
        assert not t.damage and len(t.rows) == written > 0  # the failed write was cut back
        journal = RunJournalBackend(mnt / "studies.log", root=mnt)
        with pytest.raises(RunDirWriteError, match="studies.log: the disk is full"):
            journal.append_logs([{"op_code": 8, "pad": "p" * 100_000}])
        assert not (mnt / "studies.log").exists() or (mnt / "studies.log").stat().st_size == 0


def test_a_short_write_is_cut_back(tmp_path, monkeypatch):
    path = tmp_path / "curves.csv"
    table = AppendTable(path, ("a", "b"))
    table.append([{"a": 1, "b": 2}])
    real = os.write

    def half_then_full(fd, data):
        real(fd, bytes(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(rundir, "os", types.SimpleNamespace(**{**vars(os), "write": half_then_full}))
    with pytest.raises(RunDirWriteError, match="curves.csv: the disk is full"):
        table.append([{"a": 3, "b": 4}])
    assert path.read_text() == "a,b\n1,2\n"


@contextlib.contextmanager
def read_only_copy(src: Path, tmp_path: Path):
    """`src` copied into a read-only place: a read-only tmpfs as root, file modes otherwise."""
    if os.geteuid() == 0:
        with small_tmpfs(tmp_path, "64m") as mnt:
            dst = mnt / src.name
            shutil.copytree(src, dst)
            if subprocess.run(["mount", "-o", "remount,ro", str(mnt)], capture_output=True).returncode != 0:
                pytest.skip("cannot remount the tmpfs read-only")
            yield dst
        return
    dst = tmp_path / "ro" / src.name
    shutil.copytree(src, dst)
    for p in [dst, *dst.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        yield dst
    finally:
        for p in [dst, *dst.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)


def test_a_read_only_run_directory_gives_one_line_and_loses_nothing(tmp_path, capsys):
    src = write_run_dir(tmp_path / "runs" / "synthetic", [FakeCell(final_scores=[0.5, 0.6])],
                        manifest_status="interrupted")
    cut_last_record(src / "curves.csv")  # something resume would have to repair
    with read_only_copy(src, tmp_path) as run:
        before = tree_bytes(run)
        line = one_line_error(capsys, main(["resume", str(run), "--quiet"]))
        assert f"cannot write {run}" in line and ("read-only" in line or "permission denied" in line)
        assert main(["report", str(run)]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.splitlines()[0].startswith("warning: skipped curves.csv, line")
        assert err.splitlines()[-1].startswith(f"error: cannot write {run / 'leaderboard.csv'}: ")
        assert err.splitlines()[-1].endswith(f"then rebuild it with `tournament report {run}`")
        assert main(["verify", str(run)]) == 1  # reading works; the cut record is named
        assert "FAIL curves.csv: curves.csv, line" in capsys.readouterr().out
        assert tree_bytes(run) == before


# ---------------------------------------------------------------- the engine: kill, cut, resume


def crash_spec(name: str, storage: Path, address: str | None = None) -> dict:
    """Two scripted cells, 3 tuning trials and 2 final seeds each (10 trials of 4 iterations)."""
    work = {"train_batch_size": 200, "work_s": 0.03}
    return {
        "name": name, "world": "myeloid", "target": "Mo",
        "grid": {"algorithm": ["PPO", "A2C"], "optimizer": ["adam"], "max_perturb": [2], "module": ["mlp"]},
        "algorithm_settings": {"PPO": work, "A2C": work},
        "budget": {"env_steps": 800},
        "hpo": {"trials_per_cell": 3, "seed": 0, "sampler": "random"},
        "final": {"seeds": 2, "eval_episodes": 8},
        "evaluation": {"every_iterations": 1, "episodes": 8},
        "execution": {"storage": str(storage), "runner": SCRIPTED, "max_failures": 1, "checkpoint_every": 1,
                      "address": address},
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory, ray_local):
    """An uninterrupted run of the crash spec, and what the killed runs need to join its Ray."""
    import ray

    from tournament.engine.runner import run_tournament
    from tournament.engine.spec import parse_spec

    root = tmp_path_factory.mktemp("reference")
    run = run_tournament(parse_spec(crash_spec("crash", root)), progress=False)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tournament.engine.runner", "tournament.engine.spec", "tournament.engine.trainable",
                                "tournament.engine.scripted", "tournament.report.report"])
    return types.SimpleNamespace(run=run, board=board(run), size=progress_bytes(run), ctx=ctx,
                                 address=ray.get_runtime_context().gcs_address)


def _driver(ref, run: Path, storage: Path):
    """A driver process: the first run of the crash spec, or a resume of it."""
    from tournament.engine.runner import resume_tournament, run_tournament
    from tournament.engine.spec import parse_spec

    if (run / "spec.yaml").is_file():
        return ref.ctx.Process(target=resume_tournament, args=(run,), kwargs={"progress": False,
                                                                              "address": ref.address})
    if not (run / "oracle.json").is_file():  # the oracle is the reference's: no need to wait on it again
        run.mkdir(parents=True, exist_ok=True)
        shutil.copy(ref.run / "oracle.json", run / "oracle.json")
    spec = parse_spec(crash_spec("crash", storage, ref.address))
    return ref.ctx.Process(target=run_tournament, args=(spec,), kwargs={"progress": False})


class KillLog:
    """What each killed session left: the rows recorded so far and the Tune trial folders."""

    def __init__(self, run: Path):
        self.run = run
        self.rows: dict[str, dict] = {}
        self.after: list[tuple[set[str], set[str]]] = []  # (keys recorded, trial folders) after each kill

    def note(self) -> None:
        rows = recorded_rows(self.run)
        for key, row in rows.items():
            if key in self.rows:
                assert row == self.rows[key], f"the row of finished trial {key} changed"
        self.rows.update(rows)
        self.after.append((set(rows), trial_dirs(self.run)))

    def forget(self, keys: set[str]) -> None:
        """Trials whose record the test damaged: they run again, so their rows change."""
        for key in keys:
            self.rows.pop(key, None)
        self.after = [(recorded - keys, folders) for recorded, folders in self.after]

    def reruns(self) -> set[str]:
        """Finished trials that got a Tune trial folder in a later session (ran again)."""
        final = trial_dirs(self.run)
        again = set()
        for keys, folders in self.after:
            for folder in final - folders:
                key = folder.split("/", 1)[1].rsplit("_", 1)[0]
                if key in keys:
                    again.add(key)
        return again


def kill_at(ref, run: Path, storage: Path, target: int, log: KillLog, deadline_s: float = 120) -> bool:
    """Start a driver and SIGKILL it once the append-only files hold `target` bytes; False when it finished."""
    # a point already passed is the next record this session writes, so every session gets somewhere
    target = max(target, (progress_bytes(run) + 1) if run.is_dir() else 0)
    proc = _driver(ref, run, storage)
    proc.start()
    deadline = time.monotonic() + deadline_s
    while proc.is_alive() and time.monotonic() < deadline:
        if run.is_dir() and progress_bytes(run) >= target:
            break
        time.sleep(0.005)
    alive = proc.is_alive()
    if alive:
        os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    assert alive or proc.exitcode == 0, f"the driver failed (exit {proc.exitcode})"
    log.note()
    return alive


def finish(run: Path, log: KillLog) -> None:
    from tournament.engine.runner import resume_tournament

    resume_tournament(run, progress=False)
    log.note()


def check_same_as_reference(ref, run: Path, log: KillLog, allowed_reruns: set[str] = frozenset()) -> None:
    assert json.loads((run / "manifest.json").read_text())["status"] == "finished"
    pd.testing.assert_frame_equal(board(run), ref.board)
    assert set(recorded_rows(run)) == set(recorded_rows(ref.run))
    assert log.reruns() <= set(allowed_reruns), "a finished trial ran twice"
    code = main(["verify", str(run)])
    assert code == 0


def kill_points(seed: int, n: int, size: int) -> list[int]:
    rng = random.Random(seed)
    return sorted(int(rng.uniform(0.02, 0.98) * size) for _ in range(n))


def _kill_loop(ref, tmp_path: Path, n: int, seed: int) -> int:
    storage = tmp_path / "runs"
    run = storage / "crash"
    log = KillLog(run)
    kills = 0
    for target in kill_points(seed, n, ref.size):
        kills += kill_at(ref, run, storage, target, log)
    finish(run, log)
    assert kills >= min(n, 3)
    check_same_as_reference(ref, run, log)
    return kills


def test_driver_killed_at_3_random_points_resumes_to_the_uninterrupted_leaderboard(reference, tmp_path):
    _kill_loop(reference, tmp_path, n=3, seed=3)


@pytest.mark.slow  # about 2-3 minutes: 20 driver sessions
def test_driver_killed_at_20_random_points_resumes_to_the_uninterrupted_leaderboard(reference, tmp_path):
    kills = _kill_loop(reference, tmp_path, n=20, seed=20)
    print(f"{kills} of 20 sessions killed before they finished")


def test_cut_and_partial_last_records_in_every_append_only_file(reference, tmp_path):
    storage = tmp_path / "runs"
    run = storage / "crash"
    log = KillLog(run)
    kill_at(reference, run, storage, int(0.5 * reference.size), log)
    # the last record of three files cut in half: the trials they belong to lose their record
    rerun = set()
    for name in ("trials.csv", "curves.csv", "optuna/studies.log"):
        line = cut_last_record(run / name)
        if name != "optuna/studies.log":
            rerun.add(line.decode().split(",", 1)[0])
    log.forget(rerun)
    kill_at(reference, run, storage, int(0.85 * reference.size), log)
    # a partial copy of a record appended to each file: set aside, nothing lost
    for name in APPEND_ONLY:
        if (run / name).is_file() and (run / name).stat().st_size:
            append_partial_copy(run / name)
    finish(run, log)
    notes = "".join(p.read_text() for p in (run / "damaged").glob("*/notes.txt"))
    for name in APPEND_ONLY:
        assert f"{name}, line" in notes, name
    pieces = [p.name for p in (run / "damaged").glob("*/*")]
    assert sum(p.startswith(("trials.csv.line", "curves.csv.line", "studies.log.line")) for p in pieces) >= 5
    check_same_as_reference(reference, run, log, allowed_reruns=rerun)


def test_a_full_disk_stops_the_run_with_one_line_and_resume_completes_it(reference, tmp_path, monkeypatch):
    from tournament.engine.runner import run_tournament
    from tournament.engine.spec import parse_spec

    storage = tmp_path / "runs"
    run = storage / "crash"
    run.mkdir(parents=True)
    shutil.copy(reference.run / "oracle.json", run / "oracle.json")
    real, calls = os.write, {"n": 0}

    def fills_up(fd, data):
        calls["n"] += 1
        if calls["n"] >= 9:  # a few trials in: the disk is full from here on
            real(fd, bytes(data)[: len(data) // 3])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(rundir, "os", types.SimpleNamespace(**{**vars(os), "write": fills_up}))
    with pytest.raises(RunDirWriteError) as info:
        run_tournament(parse_spec(crash_spec("crash", storage)), progress=False)
    message = str(info.value)
    assert "the disk is full" in message and f"tournament resume {run}" in message and "\n" not in message
    monkeypatch.undo()
    assert json.loads((run / "manifest.json").read_text())["status"] == "interrupted"
    scan = scan_run(run)
    assert not scan.damage  # every failed write was cut back: complete records only
    log = KillLog(run)
    log.note()
    finish(run, log)
    check_same_as_reference(reference, run, log)
