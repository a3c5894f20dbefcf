"""Search baselines a biologist tries before RL: random sets, greedy forward selection, beam
search and simulated annealing over time-0 perturbation sets.

Each takes (world, target, max_perturb) and the keywords of `common.Scorer` (kinds, start,
condition, budget_cells, n_cells, seed, max_states) and returns a `BaselineResult`. All
score sets with the oracle's `SetEvaluator` and count cost as `common` describes: every new
set costs n_cells cells (exact ones too), repeats are free, and a search stops before the
set that would pass `budget_cells`. Every search scores the empty set first, so a result
is never worse than doing nothing and its trace starts at the unperturbed value.
"""

from __future__ import annotations

import math

import numpy as np

from envs.errors import UserInputError, choices_error
from envs.oracle import count_sets

from algorithms.baselines.common import OutOfBudget, Scorer, add_move, better, rank_key

RANDOM_SIZES = ("full", "any")
BEAM_WIDTH = 8
T_START, T_END = 0.1, 0.001  # annealing temperatures, in units of target probability


def random_search(world, target: str, max_perturb: int, *, sizes: str = "full", **kw):
    """Uniformly random sets, each new one scored, until the budget is spent.

    `sizes="full"` draws sets of exactly max_perturb genes (extra pins rarely hurt a
    search that can choose them well, and the largest size holds most sets); `"any"`
    draws the size uniformly in 1..max_perturb first. Genes are drawn without
    replacement, a kind uniformly per gene. Stops early once every set of the allowed
    sizes has been scored.
    """
    if sizes not in RANDOM_SIZES:
        raise choices_error("random-search sizes", sizes, RANDOM_SIZES)
    score = Scorer("random", world, target, max_perturb, **kw)
    rng = np.random.default_rng(score.seed)
    pool, kinds, k = score.genes, score.kinds, score.k
    n = len(pool)
    allowed = [k] if sizes == "full" else list(range(1, k + 1))
    total = 1 + sum(count_sets(n, len(kinds), s) for s in allowed)
    try:
        score(())
        while len(score.values) < total:
            size = k if sizes == "full" else int(rng.integers(1, k + 1))
            genes = rng.choice(n, size=size, replace=False)
            ks = rng.integers(len(kinds), size=size)
            score(tuple((int(pool[g]), kinds[int(j)]) for g, j in zip(genes, ks)))
    except OutOfBudget:
        pass
    return score.finish({"sizes": sizes})


def greedy(world, target: str, max_perturb: int, **kw):
    """Forward selection: add the single perturbation that helps most, repeat up to
    max_perturb, stop when no addition improves the target probability.

    `details["values_by_size"]` lists the greedy set's value at each size reached (size 0
    is the unperturbed cell). Two perturbations that help only together trap it: that is
    what beam search and annealing are for. Under Monte-Carlo "improves" means a higher
    estimate on the shared cells, without a significance margin.
    """
    score = Scorer("greedy", world, target, max_perturb, **kw)
    current: tuple = ()
    path: list[dict] = []
    stopped = "max_perturb reached"
    try:
        value = score(())
        path.append({"size": 0, "set": [], "value": value})
        for size in range(1, score.k + 1):
            best_s, best_p = None, -math.inf
            for m in score.moves:
                s = add_move(current, m)
                if s is None:
                    continue
                p = score(s)
                if best_s is None or rank_key(p, s) < rank_key(best_p, best_s):
                    best_s, best_p = s, p
            if best_s is None or not better(best_p, value):
                stopped = f"no single addition improves on size {size - 1}"
                break
            current, value = best_s, best_p
            path.append({"size": size, "set": _names(score, current), "value": value})
    except OutOfBudget:
        stopped = "budget spent"
    return score.finish({"values_by_size": path, "stopped": stopped})


def beam(world, target: str, max_perturb: int, *, width: int = BEAM_WIDTH, **kw):
    """Beam search: grow the `width` best sets of each size by one perturbation, score every
    child, keep the `width` best children, up to max_perturb. Width 1 is greedy without
    its stopping rule."""
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise UserInputError(f"beam width must be an integer >= 1, got {width!r}")
    score = Scorer("beam", world, target, max_perturb, **kw)
    frontier: list[tuple] = [()]
    try:
        score(())
        for _ in range(score.k):
            children = sorted({c for s in frontier for m in score.moves if (c := add_move(s, m)) is not None})
            if not children:
                break
            for c in children:
                score(c)
            frontier = sorted(children, key=lambda c: rank_key(score.values[c], c))[:width]
    except OutOfBudget:
        pass
    return score.finish({"width": width})


def annealing(
    world, target: str, max_perturb: int, *, t_start: float = T_START, t_end: float = T_END, **kw
):
    """Simulated annealing over sets of at most max_perturb perturbations.

    A step proposes one move uniformly among those possible: add a perturbation (if the
    set has room), remove one (if any), or swap one for another gene or kind. A better
    set is always taken, a worse one with probability exp(delta / T). T falls
    geometrically from `t_start` to `t_end` as the budget is spent (so the schedule does
    not depend on the world's size); revisits are free, so the walk also stops after
    50 steps per set the budget buys. Seeded: the same seed walks the same path.
    """
    if not (isinstance(t_start, (int, float)) and isinstance(t_end, (int, float)) and t_start >= t_end > 0):
        raise UserInputError(f"annealing temperatures need t_start >= t_end > 0, got {t_start!r} and {t_end!r}")
    score = Scorer("annealing", world, target, max_perturb, **kw)
    rng = np.random.default_rng(score.seed)
    pool, kinds, k = score.genes, score.kinds, score.k
    max_steps = 50 * (score.budget // score.n_cells)
    current: tuple = ()
    accepted = steps = 0
    try:
        value = score(())
        for steps in range(1, max_steps + 1):
            cand = _neighbour(current, rng, pool, kinds, k)
            if cand is None:
                break
            p = score(cand)
            temp = t_start * (t_end / t_start) ** min(1.0, score.used / score.budget)
            if p >= value or rng.random() < math.exp((p - value) / temp):
                current, value = cand, p
                accepted += 1
    except OutOfBudget:
        pass
    return score.finish({"steps": steps, "accepted": accepted, "t_start": t_start, "t_end": t_end})


def _neighbour(s: tuple, rng: np.random.Generator, pool: tuple, kinds: tuple, k: int) -> "tuple | None":
    """One random add / remove / swap move from s over the genes of `pool` (None when no move exists)."""
    used = {g for g, _ in s}
    n = len(pool)
    options = []
    if len(s) < k and len(used) < n:
        options.append("add")
    if s:
        options.append("remove")
    if s and (len(kinds) > 1 or len(used) < n):
        options.append("swap")
    if not options:
        return None
    move = options[int(rng.integers(len(options)))]
    if move == "remove":
        i = int(rng.integers(len(s)))
        return s[:i] + s[i + 1 :]
    free = [g for g in pool if g not in used]
    if move == "add":
        g = free[int(rng.integers(len(free)))]
        return tuple(sorted(s + ((g, kinds[int(rng.integers(len(kinds)))]),)))
    i = int(rng.integers(len(s)))
    rest = s[:i] + s[i + 1 :]
    # Any other (gene, kind) for slot i: a free gene, or the same gene with another kind.
    choices = [(g, kd) for g in free for kd in kinds] + [(s[i][0], kd) for kd in kinds if kd != s[i][1]]
    return tuple(sorted(rest + (choices[int(rng.integers(len(choices)))],)))


def _names(score: Scorer, s: tuple) -> list[list[str]]:
    return [[score.world.genes[g], kd] for g, kd in s]
