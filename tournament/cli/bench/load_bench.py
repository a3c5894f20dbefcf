"""Load: the engine at the size a cluster-scale grid needs, with instant scripted trials.

`bench_load()` runs one tournament of at least 500 cells and 5,000 trials on this machine: the
scripted runner (tournament.engine.scripted, no RLlib), one training iteration and one evaluation a
trial, so what is measured is the engine (the composite searcher's per-cell Optuna studies, the
journal, the Tune driver, the run-directory callback, status.json), not learning. The driver
runs in a child process so its own peak memory (ru_maxrss) and CPU time are its alone.

Figures: trials per second through the whole engine (Tune included; the Tune experiment's wall
time, first trial start to last trial end, from the driver), the driver's peak resident memory
and its CPU share (driver CPU seconds / wall seconds, of one core and of the machine), the
journal's size, and the time of `tournament status`, `tournament report` and `tournament verify`
on the finished run, each a fresh CLI process (imports included). `bench_engine()` measures the
engine's own share without Ray: the searcher and the callback driven in a loop as Tune drives
them (suggest, result, complete, tell), writing a real run directory.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GOAL_TRIALS_PER_S = 20.0
GOAL_DRIVER_MIB = 1024.0
GOAL_REPORT_S = 60.0
SCRIPTED = "tournament.engine.scripted:ScriptedRunner"


def load_spec(name: str, storage: str, trials_per_cell: int = 8, final_seeds: int = 1,
              targets: tuple[str, ...] = ("Ery", "Mk", "Mo", "Neu"), max_perturb: tuple[int, ...] = (1, 2, 3),
              cpus_per_trial: float = 0.5, num_cpus: int | None = None,
              tune_logs: tuple[str, ...] = ("csv", "tensorboard")) -> dict[str, Any]:
    """6 algorithms x 4 optimizers x 2 modules x 4 targets x 3 MAX_PERTURB = 576 cells of instant trials."""
    algorithms = ["PPO", "A2C", "SAC", "TRPO", "TRPO_to_PPO", "PPO_to_TRPO"]
    instant = {"train_batch_size": 100, "cpus_per_trial": cpus_per_trial}
    return {
        "name": name,
        "world": "myeloid",
        "task": "steer",
        "target": list(targets),
        "grid": {"algorithm": algorithms, "optimizer": ["adam", "amsgrad", "asgd_adam", "asgd_amsgrad"],
                 "max_perturb": list(max_perturb), "module": ["gnn", "mlp"]},
        "algorithm_settings": {a: dict(instant) for a in algorithms},
        "budget": {"env_steps": 100},
        "hpo": {"trials_per_cell": trials_per_cell, "seed": 0, "sampler": "tpe", "n_startup_trials": 4},
        "evaluation": {"episodes": 4, "every_iterations": 1},
        "final": {"seeds": final_seeds, "eval_episodes": 4},
        "oracle": {"time_budget_s": 2.0},
        "baselines": {"names": []},
        "execution": {"storage": storage, "runner": SCRIPTED, "checkpoint_every": 1000, "max_failures": 0,
                      "num_cpus": num_cpus, "tune_logs": list(tune_logs)},
    }


def _child(spec_file: str, out_file: str) -> None:
    """The driver process: run the tournament, then write its own figures as JSON."""
    import tournament.engine.runner as runner
    from tournament.engine.spec import load_spec as read_spec

    fit: dict[str, float] = {}
    real_fit = runner.fit_experiment

    def timed_fit(*args: Any, **kwargs: Any) -> Any:
        fit["start"] = time.perf_counter()
        try:
            return real_fit(*args, **kwargs)
        finally:
            fit["end"] = time.perf_counter()

    runner.fit_experiment = timed_fit  # the name runner.py calls
    spec = read_spec(spec_file)  # imports what the driver needs before its baseline is taken
    with open("/proc/self/statm") as fh:
        baseline = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    t0, c0 = time.perf_counter(), os.times()
    root = runner.run_tournament(spec, progress=False, build_report=False)
    wall, c1 = time.perf_counter() - t0, os.times()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    Path(out_file).write_text(json.dumps({
        "run_dir": str(root), "wall_s": wall, "fit_s": fit["end"] - fit["start"],
        "cpu_s": (c1.user - c0.user) + (c1.system - c0.system), "maxrss_mib": usage.ru_maxrss / 1024,
        "baseline_mib": baseline, "load_average": os.getloadavg()[1],
    }))


def _cli_seconds(args: list[str], repeats: int = 1) -> float:
    """Median wall seconds of `tournament ARGS` as a fresh process (imports included)."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "tournament.cli.main", *args], capture_output=True, text=True)
        times.append(time.perf_counter() - t)
        if out.returncode not in (0, 1):
            raise RuntimeError(f"tournament {' '.join(args)} failed: {out.stderr[-2000:]}")
    return statistics.median(times)


def _display_ms(status: dict, repeats: int = 20) -> float:
    from tournament.engine.progress import ProgressDisplay, format_status

    display = ProgressDisplay("load", enabled=False)
    t = time.perf_counter()
    for _ in range(repeats):
        display.render(status)
        format_status(status)
    return 1000 * (time.perf_counter() - t) / repeats


def bench_engine(trials_per_cell: int = 8, final_seeds: int = 1, **spec_kw: Any) -> dict[str, Any]:
    """The engine without Ray: searcher + run-directory callback driven as Tune drives them."""
    from tournament.engine.cells import expand_grid
    from tournament.engine.progress import ProgressDisplay, ProgressTracker
    from tournament.engine.rundir import RunPaths
    from tournament.engine.recorder import RunDirCallback
    from tournament.engine.tune_experiment import make_searcher
    from tournament.engine.spec import parse_spec

    with tempfile.TemporaryDirectory(prefix="engine-bench-") as tmp:
        spec = parse_spec(load_spec("engine", tmp, trials_per_cell, final_seeds, **spec_kw))
        paths = RunPaths(Path(tmp) / spec.name)
        paths.optuna_dir.mkdir(parents=True)
        cells = expand_grid(spec)
        by_id = {c.cell_id: c for c in cells}
        t0 = time.perf_counter()
        searcher = make_searcher(spec, cells, by_id, {}, paths)
        open_s = time.perf_counter() - t0
        tracker = ProgressTracker(planned=searcher.counts()["planned"])
        callback = RunDirCallback(paths, by_id, tracker, searcher, ProgressDisplay("engine", enabled=False))

        class Trial:
            def __init__(self, tid: str, config: dict):
                self.trial_id, self.config, self.last_result = tid, config, None
                self.error_file, self.num_failures = None, 0

        n, t0 = 0, time.perf_counter()
        while True:
            tid = f"t{n:06d}"
            config = searcher.suggest(tid)
            if config is None or config == searcher.FINISHED:
                break
            trial = Trial(tid, config)
            callback.on_trial_start(0, [], trial)
            seed = config["trial"]["seed"]
            score = (seed % 97) / 97
            result = {"iteration": 1, "env_steps": 100, "stage": "main", "episode_return_mean": score,
                      "eval_score": score, "score": score, "normalized_score": score, "cpu_seconds": 0.01,
                      "wall_seconds": 0.01, "finished": True, "node_id": "n0", "perturbation_sets": "[]"}
            callback.on_trial_result(0, [], trial, result)
            trial.last_result = result
            searcher.on_trial_complete(tid, result)
            callback.on_trial_complete(0, [], trial)
            n += 1
        seconds = time.perf_counter() - t0
        callback.flush(force=True)
        return {"cells": len(cells), "trials": n, "open_s": open_s, "seconds": seconds,
                "journal_mib": paths.studies.stat().st_size / 2**20}


def bench_load(trials_per_cell: int = 8, final_seeds: int = 1, cpus_per_trial: float = 0.5,
               num_cpus: int | None = None, keep: str | None = None, engine: bool = True,
               **spec_kw: Any) -> list[dict[str, Any]]:
    """Run the load tournament and measure it; one row per figure (with its goal where there is one)."""
    with tempfile.TemporaryDirectory(prefix="load-bench-") as tmp:
        storage = keep or tmp
        spec = load_spec("load", storage, trials_per_cell, final_seeds, cpus_per_trial=cpus_per_trial,
                         num_cpus=num_cpus, **spec_kw)
        spec_file, out_file = Path(tmp) / "load.yaml", Path(tmp) / "driver.json"
        import yaml

        spec_file.write_text(yaml.safe_dump(spec))
        child = subprocess.run([sys.executable, "-c",
                                f"from tournament.cli.bench.load_bench import _child; _child({str(spec_file)!r}, "
                                f"{str(out_file)!r})"], capture_output=True, text=True)
        if child.returncode != 0:
            raise RuntimeError(f"the load tournament failed: {child.stderr[-3000:]}")
        driver = json.loads(out_file.read_text())
        run = Path(driver["run_dir"])
        from tournament.engine.rundir import RunPaths
        from tournament.engine.records import read_table

        paths = RunPaths(run)
        trials = read_table(paths.trials).rows
        cells = len({r["cell_id"] for r in trials})
        status = json.loads(paths.status.read_text())
        journal_lines = sum(1 for _ in paths.studies.open("rb"))
        status_s = _cli_seconds(["status", str(run)], repeats=3)
        report_s = _cli_seconds(["report", str(run)])
        verify_s = _cli_seconds(["verify", str(run)])
        plots = sorted(p.name for p in (run / "plots").glob("*.png"))
        n = len(trials)
        rate = n / driver["fit_s"]
        cpus = os.cpu_count() or 1
        rows = [
            {"figure": "grid", "value": f"{cells} cells, {n} trials ({trials_per_cell} tuning + {final_seeds} final "
                                         f"a cell), {sum(r['status'] == 'failed' for r in trials)} failed",
             "goal": ">= 500 cells, >= 5000 trials", "met": _met(cells >= 500 and n >= 5000)},
            {"figure": "trials per second (Tune experiment)", "value": round(rate, 1),
             "goal": f">= {GOAL_TRIALS_PER_S:g}", "met": _met(rate >= GOAL_TRIALS_PER_S)},
            {"figure": "Tune experiment wall s / driver wall s", "value": f"{driver['fit_s']:.0f} / {driver['wall_s']:.0f}",
             "goal": "", "met": ""},
            {"figure": "driver peak memory MiB (after imports, before the run)",
             "value": f"{driver['maxrss_mib']:.0f} ({driver['baseline_mib']:.0f})",
             "goal": f"< {GOAL_DRIVER_MIB:g}", "met": _met(driver["maxrss_mib"] < GOAL_DRIVER_MIB)},
            {"figure": "machine load average (5 min, at the end; other jobs share it)",
             "value": round(driver["load_average"], 1), "goal": "", "met": ""},
            {"figure": "driver CPU share (of one core / of the machine)",
             "value": f"{driver['cpu_s'] / driver['wall_s']:.2f} / {driver['cpu_s'] / (driver['wall_s'] * cpus):.2f}",
             "goal": "", "met": ""},
            {"figure": "journal size MiB (records)", "value": f"{paths.studies.stat().st_size / 2**20:.1f} "
                                                            f"({journal_lines})", "goal": "", "met": ""},
            {"figure": "status.json KiB / display render ms", "value": f"{paths.status.stat().st_size / 1024:.1f} / "
                                                                     f"{_display_ms(status):.1f}", "goal": "", "met": ""},
            {"figure": "tournament status s (fresh process)", "value": round(status_s, 2), "goal": "", "met": ""},
            {"figure": "tournament report s (fresh process)", "value": round(report_s, 1),
             "goal": f"< {GOAL_REPORT_S:g}", "met": _met(report_s < GOAL_REPORT_S)},
            {"figure": "report figures", "value": ", ".join(plots), "goal": "bounded panels", "met": ""},
            {"figure": "tournament verify s (fresh process)", "value": round(verify_s, 1), "goal": "", "met": ""},
        ]
    if engine:
        e = bench_engine(trials_per_cell, final_seeds, **spec_kw)
        rows.append({"figure": "engine alone, no Ray: trials per second", "value": round(e["trials"] / e["seconds"], 1),
                     "goal": f">= {GOAL_TRIALS_PER_S:g}", "met": _met(e["trials"] / e["seconds"] >= GOAL_TRIALS_PER_S)})
        rows.append({"figure": "engine alone: opening the studies s / journal MiB",
                     "value": f"{e['open_s']:.1f} / {e['journal_mib']:.1f}", "goal": "", "met": ""})
    return rows


def _met(ok: bool) -> str:
    return "yes" if ok else "NO"
