"""The same tiny tournament on 1, 2 and 3 raylets of a local multi-node cluster.

Each raylet is a Ray node with one CPU (ray.cluster_utils.Cluster), and the driver joins the
cluster by its address, as `tournament run --address` does on a real cluster. All raylets
share this machine's cores, so the figures show what the multi-node machinery costs (node
start, scheduling across raylets, results and checkpoints through the storage), not a
speed-up: that needs raylets on separate machines.

Per-trial overhead = (wall x raylets - sum of trial wall seconds) / trials: the slot time a
trial costs beyond its own run. `cluster_start_s` (starting the raylets) is not in `wall_s`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from typing import Any

from tournament.cli.bench.tournament_bench import bench_spec, read_trials

NOTE = "raylets share one machine: overhead, not speed-up"


def bench_cluster(
    raylets: tuple[int, ...] = (1, 2, 3),
    env_steps: int = 2000,
    trials_per_cell: int = 2,
    seeds: int = 1,
    runner: str | None = None,
) -> list[dict[str, Any]]:
    """One row per cluster size; the tournament is tournament_bench's two PPO cells."""
    from ray.cluster_utils import Cluster

    from tournament.engine.runner import run_tournament
    from tournament.engine.spec import parse_spec, with_overrides

    # validated before any cluster exists in this process: building RLlib configs while this
    # process holds a Cluster but is not connected to it makes Tune's registry connect midway
    spec_data = bench_spec("cluster", "runs", env_steps, trials_per_cell, seeds, 1, runner)
    spec_data["execution"].pop("num_cpus")
    base_spec = parse_spec(spec_data)
    rows: list[dict[str, Any]] = []
    saved = os.environ.get("RAY_TMPDIR")
    # a private Ray temp dir: a plain ray.init() elsewhere on the machine must not join this cluster
    ray_tmp = tempfile.mkdtemp(prefix="rb", dir="/tmp")
    os.environ["RAY_TMPDIR"] = ray_tmp
    try:
        for n in raylets:
            with tempfile.TemporaryDirectory(prefix="cluster-bench-") as storage:
                t0 = time.perf_counter()
                cluster = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 1})
                try:
                    for _ in range(n - 1):
                        cluster.add_node(num_cpus=1)
                    cluster.wait_for_nodes()
                    started = time.perf_counter() - t0
                    spec = with_overrides(base_spec, address=cluster.address, storage=storage)
                    t1 = time.perf_counter()
                    run_dir = run_tournament(spec, progress=False, build_report=False)
                    wall = time.perf_counter() - t1
                finally:
                    cluster.shutdown()
                trials = read_trials(run_dir)
                trial_wall = sum(float(r["wall_seconds"] or 0) for r in trials)
                rows.append({
                    "raylets": n,
                    "trials": len(trials),
                    "failed": sum(r["status"] == "failed" for r in trials),
                    "nodes_used": len({r["node_id"] for r in trials}),
                    "cluster_start_s": round(started, 1),
                    "wall_s": round(wall, 1),
                    "mean_trial_wall_s": round(trial_wall / max(1, len(trials)), 1),
                    "overhead_per_trial_s": round((wall * n - trial_wall) / max(1, len(trials)), 2),
                    "cpus_on_machine": os.cpu_count(),
                    "note": NOTE,
                })
    finally:
        if saved is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = saved
        shutil.rmtree(ray_tmp, ignore_errors=True)
    return rows
