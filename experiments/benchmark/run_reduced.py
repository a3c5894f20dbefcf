"""Run the benchmark at budgets this machine can afford, then build its benchmark view.

Each spec of this folder is run with the overrides below (one MAX_PERTURB value, two
algorithms, small training budgets, 3 final seeds), under a `_reduced` name, and the runs are
summarized by `tournament benchmark`. Usage:

    .venv/bin/python experiments/benchmark/run_reduced.py [--storage runs] [--out docs/benchmark] [SPEC ...]

The figures are a smoke-scale benchmark: they show what the tasks separate and where RL stands
at a few thousand environment steps, not what the cluster budgets in the specs would reach.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
# MAX_PERTURB per spec: the value where the task is hard (TASKS.md); otherwise the spec's first
K = {"myeloid_reprogram": 2, "myeloid_timing": 1}
OVERRIDES = {
    "grid": {"algorithm": ["PPO", "TRPO_to_PPO"], "optimizer": ["adam"], "module": ["gnn"]},
    "algorithm_settings": {"PPO": {"train_batch_size": 500, "minibatch_size": 125, "num_epochs": 4},
                           "TRPO_to_PPO": {"first_stage_share": 0.125, "TRPO": {"train_batch_size": 500},
                                           "PPO": {"train_batch_size": 500, "minibatch_size": 125, "num_epochs": 4}}},
    "budget": {"env_steps": 4000},
    # one configuration a cell at a fixed learning rate: every entry on the same footing, no tuning luck
    "hpo": {"trials_per_cell": 1, "sampler": "random", "seed": 0, "space": {"adam": {"lr": 0.001}}},
    "early_stopping": {"enabled": False},
    "evaluation": {"episodes": 10, "every_iterations": 2},
    "final": {"seeds": 3, "eval_episodes": 100},
    "oracle": {"time_budget_s": 30, "n_cells": 500},
    "baselines": {"budget_cells": 60000, "n_cells": 500, "control_time_s": 20},
    "execution": {"max_failures": 1, "checkpoint_every": 5},
}


def reduced_spec(path: Path) -> dict:
    spec = yaml.safe_load(path.read_text())
    stem = path.stem
    spec.update({k: v for k, v in OVERRIDES.items() if k != "grid"})
    spec["grid"] = {**OVERRIDES["grid"], "max_perturb": [K.get(stem, spec["grid"]["max_perturb"][0])]}
    spec["name"] = f"{spec['name']}_reduced"
    return spec


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("specs", nargs="*", type=Path, help="benchmark specs (default: every *.yaml here)")
    ap.add_argument("--storage", default="runs")
    ap.add_argument("--out", default="docs/benchmark", help="folder for benchmark.md / benchmark.csv")
    ap.add_argument("--num-cpus", type=int, default=None)
    args = ap.parse_args(argv)
    specs = args.specs or sorted(HERE.glob("*.yaml"))
    tmp = Path(args.storage) / "_reduced_specs"
    tmp.mkdir(parents=True, exist_ok=True)
    runs = []
    for path in specs:
        spec = reduced_spec(path)
        spec.setdefault("execution", {})["storage"] = args.storage
        if args.num_cpus:
            spec["execution"]["num_cpus"] = args.num_cpus
        out = tmp / f"{spec['name']}.yaml"
        out.write_text(yaml.safe_dump(spec, sort_keys=False))
        run_dir = Path(args.storage) / spec["name"]
        cmd = [sys.executable, "-m", "tournament.cli.main", "run", str(out), "--quiet"]
        if run_dir.exists():
            cmd = [sys.executable, "-m", "tournament.cli.main", "resume", str(run_dir), "--quiet"]
        t0 = time.perf_counter()
        code = subprocess.call(cmd)
        print(f"{spec['name']}: exit {code} in {time.perf_counter() - t0:.0f} s", flush=True)
        if code == 0:
            runs.append(str(run_dir))
    if runs:
        subprocess.call([sys.executable, "-m", "tournament.cli.main", "benchmark", *runs, "--out", args.out])
    return 0 if len(runs) == len(specs) else 1


if __name__ == "__main__":
    sys.exit(main())
