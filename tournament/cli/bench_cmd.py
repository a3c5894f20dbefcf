"""`tournament bench`: run a benchmark, print it, optionally record it in BENCHMARKS.md."""

from __future__ import annotations

import importlib
import json
import shlex
import sys

import click

# target -> (module, function, keyword arguments for --quick)
BENCHES: dict[str, tuple[str, str, dict]] = {
    "env": ("tournament.cli.bench.env_bench", "bench_env", {"seconds": 0.5, "sizes": (10, 30)}),
    "oracle": ("tournament.cli.bench.oracle_bench", "bench_oracle", {}),
    "models": ("tournament.cli.bench.model_bench", "bench_models", {"n_cells": 200, "seconds": 0.5}),
    "train": ("tournament.cli.bench.train_bench", "bench_train", {"env_steps": 4000}),
    "cartpole": ("tournament.cli.bench.cartpole_bench", "bench_cartpole", {"seeds": (0,)}),
    "gnn": ("tournament.cli.bench.gnn_bench", "bench_gnn", {"sizes": (11, 30)}),
    "inference": ("tournament.cli.bench.inference_bench", "bench_inference", {"worlds": ("myeloid",)}),
    "tournament": ("tournament.cli.bench.tournament_bench", "bench_tournament", {"env_steps": 4000}),
    "cluster": ("tournament.cli.bench.cluster_bench", "bench_cluster", {"raylets": (1, 2)}),
    "env_batched": ("tournament.cli.bench.batched_env_bench", "bench_env_batched", {"seconds": 0.5}),
    "load": ("tournament.cli.bench.load_bench", "bench_load", {"trials_per_cell": 1, "targets": ("Mo",), "max_perturb": (1,)}),
    "ode": ("tournament.cli.bench.ode_bench", "bench_ode", {"batch_sizes": (1, 100), "seconds": 0.3}),
    "ode_boolode": ("tournament.cli.bench.ode_bench", "bench_ode_boolode", {"n_traj": 100}),
    "ode_sac": ("tournament.cli.bench.ode_sac_bench", "bench_ode_sac", {"env_steps": 400, "repetitions": 1}),
}


def run_bench(target: str, quick: bool, **options) -> list[dict]:
    """Run one bench; `options` (e.g. beeline=DIR) go to its function as keyword arguments."""
    module_name, func_name, quick_kwargs = BENCHES[target]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise click.ClickException(f"benchmark {target!r} is not available in this build ({exc.name} missing)")
    result = getattr(module, func_name)(**(quick_kwargs if quick else {}), **options)
    return result if isinstance(result, list) else [result]


@click.command("bench")
@click.argument("target", type=click.Choice(sorted(BENCHES) + ["all"]))
@click.option("--json", "as_json", is_flag=True, help="Print rows as JSON.")
@click.option("--record", is_flag=True, help="Write the figures into BENCHMARKS.md with this command.")
@click.option("--quick", is_flag=True, help="Smaller sizes and budgets (a smoke run, not for the record).")
@click.option("--file", "bench_file", default="BENCHMARKS.md", show_default=True)
@click.option("--beeline", type=click.Path(exists=True, file_okay=False), default=None,
              help="inference only: the BEELINE/BoolODE folder to score against (e.g. ../shared/data/beeline-boolode).")
def bench_cmd(target: str, as_json: bool, record: bool, quick: bool, bench_file: str, beeline: "str | None") -> None:
    """Measure speed: env, oracle, models (published networks), train (vs SB3), cartpole (vs SB3/sb3-contrib), gnn, inference, tournament, cluster."""
    from tournament.cli.bench.record import markdown_table, record as record_rows

    targets = sorted(BENCHES) if target == "all" else [target]
    command = "tournament " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    results: dict[str, list[dict]] = {}
    if beeline is not None and target != "inference":
        raise click.UsageError("--beeline applies to `tournament bench inference` only")
    for t in targets:
        rows = run_bench(t, quick, **({"beeline": beeline} if beeline is not None else {}))
        results[t] = rows
        if record:
            record_rows(bench_file, t, command, rows)
        if not as_json:
            click.echo(f"## {t}\n{markdown_table(rows)}")
    if as_json:
        click.echo(json.dumps(results if target == "all" else results[target], indent=2, default=str))


COMMANDS = (bench_cmd,)
