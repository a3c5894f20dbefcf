"""Published models at real size: attractor search, Monte-Carlo simulate and env steps/s.

Two models: the Cacace 2020 T-cell model (58 rules, 61 variables with its inputs, read
from ../shared/data when present) and the largest model of pyboolnet's repository. Each
row times symbolic attractor search (biodivine-aeon) from the model's start, a
Monte-Carlo fate estimate, and the environment stepping random valid actions.
"""

from __future__ import annotations

import time
from pathlib import Path

from envs.attractors import reachable_attractors
from envs.cell_fate_env import CellFateEnv
from envs.model_files import read_model, repository_models
from envs.simulate import monte_carlo_fates
from envs.world import World, make_world
from tournament.bench.env_bench import _steps_per_second

CACACE = Path(__file__).resolve().parents[3] / "shared" / "data" / "cacace2020-tcell" / "bbm196_model.bnet"


def _largest_repository_model() -> str:
    sizes = {name: read_model(f"pyboolnet:{name}").network.n_genes for name in repository_models("pyboolnet")}
    return "pyboolnet:" + max(sizes, key=sizes.get)


def _bare_world(source: str) -> World:
    """The model with one catch-all fate (every state), started from all genes off."""
    model = read_model(source)
    fates = {"any": {}}
    return make_world(model.name, model.network, fates, {"off": []}, genes=model.genes or None, source=source)


def bench_models(n_cells: int = 1000, seconds: float = 2.0) -> list[dict]:
    sources = ([str(CACACE)] if CACACE.is_file() else []) + [_largest_repository_model()]
    rows: list[dict] = []
    for source in sources:
        world = _bare_world(source)
        start = world.start_state()
        t0 = time.perf_counter()
        found = reachable_attractors(world.network, start)
        t_attractors = time.perf_counter() - t0
        t0 = time.perf_counter()
        monte_carlo_fates(world, n_cells=n_cells, seed=0)
        t_simulate = time.perf_counter() - t0
        env = CellFateEnv({"world": world, "target": "any", "max_perturb": 4, "n_stages": 4})
        rows.append(
            {
                "model": Path(source).name if not source.startswith("pyboolnet:") else source,
                "variables": world.network.n_genes,
                "genes": world.n_genes,
                "attractors_from_start": len(found),
                "attractor_search_s": round(t_attractors, 3),
                f"simulate_{n_cells}_cells_s": round(t_simulate, 3),
                "env_steps_per_s": round(_steps_per_second(env, seconds), 1),
            }
        )
    return rows
