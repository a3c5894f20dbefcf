"""Oracle speed: the best perturbation sets for every target fate, per world and MAX_PERTURB.

Each row times `best_perturbations` for every fate of the world as target, from a cold
cache (one fate distribution per perturbation set serves all targets, as it would in a
tournament). The myeloid MAX_PERTURB=2 row is compared with the 260 s that a naive
implementation needed for the same job (4 targets x 243 sets); that implementation is
not in the repository, so `naive_reference_time` re-creates one (pure-Python dicts,
power iteration, every (target, set) solved on its own) and times it on a few sets,
so that a speed-up is also measured side by side in the same run.
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict

from envs.network import PERTURBATION_KINDS, pin_value
from envs.oracle import best_perturbations, clear_cache, count_sets, sets_of_size
from envs.world import World, load_world

REFERENCE_SECONDS = 260.0  # naive reference: myeloid, 4 targets x every set of size <= 2
REFERENCE_CASE = ("myeloid", 2)


def bench_oracle(
    worlds: tuple[str, ...] = ("myeloid",),
    max_k: tuple[int, ...] = (1, 2),
    repeats: int = 1,
    naive_sample: int = 3,
    naive_worlds: tuple[str, ...] = ("myeloid",),
) -> list[dict]:
    """One row per (world, k): wall time for all targets, sets, states, speed-ups.

    For worlds in `naive_worlds`, `naive_sample` sets are timed with the naive
    implementation to extrapolate its time for the row (it takes minutes per set on
    worlds with thousands of reachable states, hence only the small world by default).
    """
    rows: list[dict] = []
    for name in worlds:
        world = load_world(name)
        for k in max_k:
            seconds = float("inf")
            for _ in range(max(1, repeats)):
                clear_cache()
                start = time.perf_counter()
                results = [best_perturbations(world, fate, k) for fate in world.fates]
                seconds = min(seconds, time.perf_counter() - start)
            n_sets = results[0].n_sets_evaluated
            row = {
                "world": name,
                "genes": world.n_genes,
                "max_perturb": k,
                "targets": len(world.fates),
                "seconds": round(seconds, 3),
                "sets_evaluated": n_sets,
                "states_explored": results[0].states_explored,
                "ms_per_set": round(1000 * seconds / max(n_sets, 1), 2),
                "exact": all(r.exact for r in results),
                "vs_reference_260s": None,
                "naive_s_estimate": None,
                "speedup_vs_naive": None,
            }
            if (name, k) == REFERENCE_CASE:
                row["vs_reference_260s"] = round(REFERENCE_SECONDS / seconds, 1)
            if naive_sample > 0 and name in naive_worlds:
                naive = naive_reference_time(world, n_sets * len(world.fates), sample=naive_sample, max_perturb=k)
                row["naive_s_estimate"] = round(naive, 1)
                row["speedup_vs_naive"] = round(naive / seconds, 1)
            rows.append(row)
    return rows


# ---- the naive reference ---------------------------------------------------------------------


def _naive_fates(world: World, perturbations: list[tuple[str, str]], tol: float = 1e-10) -> dict[str, float]:
    """Fate probabilities by power iteration over a dict of reachable states (tuples)."""
    net = world.network
    n = net.n_genes
    inputs = [[int(i) for i in row] for row in net.inputs]
    tables = [[int(v) for v in row] for row in net.tables]
    pins = {net.gene_index(g): pin_value(k) for g, k in perturbations}

    def successor(state: tuple, g: int) -> tuple:
        if g in pins:
            value = pins[g]
        else:
            padded = state + (0,)
            code = sum(padded[i] << j for j, i in enumerate(inputs[g]))
            value = tables[g][code]
        return state if state[g] == value else state[:g] + (value,) + state[g + 1 :]

    start = tuple(pins.get(g, int(v)) for g, v in enumerate(world.start_state()))
    dist = {start: 1.0}
    for _ in range(100_000):
        nxt: dict[tuple, float] = defaultdict(float)
        for state, p in dist.items():
            for g in range(n):
                nxt[successor(state, g)] += p / n
        change = sum(abs(nxt[s] - dist.get(s, 0.0)) for s in nxt)
        dist = nxt
        if change < tol:
            break
    import numpy as np

    states = list(dist)
    labels = world.classify(np.array(states, dtype=np.uint8))
    out = {f: 0.0 for f in world.fate_labels}
    for label, state in zip(labels, states):
        out[world.fate_labels[int(label)]] += dist[state]
    return out


def naive_reference_time(
    world: World, n_sets: int, sample: int = 3, max_perturb: int = 2, kinds=PERTURBATION_KINDS
) -> float:
    """Seconds the naive implementation would take for `n_sets` solves, from `sample` timed ones.

    The timed sets are spread evenly over all sets of size <= max_perturb so that
    small and large sets both count.
    """
    n = world.n_genes
    total = sum(count_sets(n, len(kinds), s) for s in range(max_perturb + 1))
    wanted = {round(i * (total - 1) / max(sample - 1, 1)) for i in range(sample)}
    chosen = []
    all_sets = itertools.chain.from_iterable(sets_of_size(n, kinds, size) for size in range(max_perturb + 1))
    for i, moves in enumerate(all_sets):
        if i in wanted:
            chosen.append([(world.genes[g], kind) for g, kind in moves])
        if len(chosen) == len(wanted):
            break
    start = time.perf_counter()
    for s in chosen:
        _naive_fates(world, s)
    return (time.perf_counter() - start) / len(chosen) * n_sets
