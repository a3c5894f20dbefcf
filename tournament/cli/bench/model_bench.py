"""Published models at real size: attractor search, Monte-Carlo simulate and env steps/s.

Two models: the Cacace 2020 T-cell model (58 rules, 61 variables with its inputs, read
from ../shared/data when present) and the largest model of pyboolnet's repository. Each
row times symbolic attractor search (biodivine-aeon) from the model's start, a
Monte-Carlo fate estimate, and the environment stepping random valid actions. For the
Cacace model it also times the oracle at MAX_PERTURB 1 towards DN3 from the authors' ETP
state under Delta + IL7 (Monte-Carlo: 113 sets, the best re-estimated on fresh cells).
"""

from __future__ import annotations

import time
from pathlib import Path

from envs.attractors import reachable_attractors
from envs.cell_fate_env import CellFateEnv
from envs.model_files import read_model, repository_models
from envs.simulate import monte_carlo_fates
from envs.world import World, make_world
from tournament.cli.bench.env_bench import _steps_per_second

CACACE = Path(__file__).resolve().parents[3] / "shared" / "data" / "cacace2020-tcell" / "bbm196_model.bnet"
# Fate markers from the authors' stage states in ginsim/initialState.xml (DN3: Bcl11b+ pTa+
# Rag1+ CD3e+ Kit-); B, myeloid and NK-like by their lineage factors without Bcl11b.
CACACE_MARKERS = {
    "DN3": {"Bcl11b": 1, "pTa": 1, "Rag1": 1, "CD3e": 1, "Kit": 0},
    "B": {"EBF1": 1, "Pax5": 1, "Bcl11b": 0},
    "Myeloid": {"CEBPa": 1, "Bcl11b": 0},
    "NK_like": {"Id2": 1, "Bcl11b": 0, "TCF1": 0, "CEBPa": 0},
}


def cacace_world(folder: Path, priority: bool = False) -> World:
    """The Cacace model with the authors' GINsim starts and conditions and CACACE_MARKERS."""
    from envs.importer import import_model

    return import_model(
        folder / "bbm196_model.bnet",
        ginsim_states=folder / "ginsim" / "initialState.xml",
        ginsim_priority=folder / "ginsim" / "reg2dyn_parameters.xml" if priority else None,
        default_start="ETP",
        default_condition="input_T_commit_Delta_IL7",
        markers=CACACE_MARKERS,
        n_cells=0,
    ).world


def _largest_repository_model() -> str:
    sizes = {name: read_model(f"pyboolnet:{name}").network.n_genes for name in repository_models("pyboolnet")}
    return "pyboolnet:" + max(sizes, key=sizes.get)


def _bare_world(source: str) -> World:
    """The model with one catch-all fate (every state), started from all genes off."""
    model = read_model(source)
    fates = {"any": {}}
    return make_world(model.name, model.network, fates, {"off": []}, genes=model.genes or None, source=source)


def _oracle_seconds(n_cells: int) -> dict:
    from envs.oracle import best_perturbations

    world = cacace_world(CACACE.parent)
    t0 = time.perf_counter()
    res = best_perturbations(world, "DN3", 1, n_cells=n_cells, top=5)
    best = ", ".join(f"{g} {k}" for g, k in res.best[0]["perturbations"])
    return {"oracle_k1_s": round(time.perf_counter() - t0, 1), "oracle_k1_best": f"{best}: {res.optimum:.3f}"}


def bench_models(n_cells: int = 1000, seconds: float = 2.0, oracle_cells: int = 1000) -> list[dict]:
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
        oracle = _oracle_seconds(oracle_cells) if source == str(CACACE) else {}
        rows.append(
            {
                "model": Path(source).name if not source.startswith("pyboolnet:") else source,
                "variables": world.network.n_genes,
                "genes": world.n_genes,
                "attractors_from_start": len(found),
                "attractor_search_s": round(t_attractors, 3),
                f"simulate_{n_cells}_cells_s": round(t_simulate, 3),
                "env_steps_per_s": round(_steps_per_second(env, seconds), 1),
                **oracle,
            }
        )
    return rows
