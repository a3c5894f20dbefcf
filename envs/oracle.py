"""The exact oracle: fate probabilities, the best perturbation sets, and the predict-task optimum.

For networks whose reachable state space is moderate (up to `MAX_STATES` states, which
covers networks of about 20 genes) the general-asynchronous dynamics is solved exactly
as an absorbing Markov chain (`envs.markov`). Past the cap every answer falls back to
Monte-Carlo (`envs.simulate.monte_carlo_fates`) and says so in its `method`.

Scope of the optimum: perturbations are applied at time 0 to the start state, as the
chain is solved from there. A steer policy that times its perturbations across stages,
or a predictor that looks at later stages of the cell, can beat these numbers; they
are the best over time-0 perturbation sets and the time-0 Bayes optimum. The exact
probabilities are the infinite-time limit; the simulator stops a run after 60 updates
per gene, which makes no measurable difference on the built-in worlds.
"""

from __future__ import annotations

import itertools
import math
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from envs.errors import UserInputError
from envs.markov import DENSE_GENES, StateSpaceTooLarge, fate_probabilities
from envs.network import PERTURBATION_KINDS, normalize_kinds, states_to_codes
from envs.simulate import FateDistribution, check_perturbations, monte_carlo_fates
from envs.world import World

MAX_STATES = 1 << 20
LARGE_NETWORK_STATES = 1 << 12
EXHAUSTIVE_LIMIT = 5000
BEAM_WIDTH = 32
RECHECK_FACTOR = 4  # the Monte-Carlo leaders are re-estimated on this many times more cells
MIN_STRATUM_SAMPLE = 20  # sets each predict stratum keeps when the time budget cuts it short
SWAP_STARTS = 3  # best searched sets that single-swap hill climbing starts from
_CACHE_SIZE = 50_000

Move = tuple[int, str]  # (gene index, canonical kind)


# ---- one fate distribution, cached ------------------------------------------------------


@dataclass
class _Solved:
    probabilities: np.ndarray  # per fate label
    stderr: np.ndarray
    exact: bool
    n_states: int  # reachable states (0 for Monte-Carlo)
    method: str
    n_samples: int = 0  # simulated cells (0 when exact)


_results: "weakref.WeakKeyDictionary[World, OrderedDict]" = weakref.WeakKeyDictionary()


def clear_cache() -> None:
    """Forget cached fate distributions (the per-network update images stay; they are exact)."""
    _results.clear()


def _start_code(world: World, start: str | None, condition: str | None) -> int:
    return int(states_to_codes(world.start_state(start, condition)[None, :])[0])


def _pin_bits(world: World, perturbations) -> tuple[int, int, tuple]:
    mask_bits, value_bits, edges = world.pin_bits(perturbations)
    mask = value = 0
    for v in np.flatnonzero(mask_bits):
        mask |= 1 << int(v)
        value |= int(value_bits[v]) << int(v)
    return mask, value, edges


def default_max_states(world: World) -> int:
    """The exact solver's state cap: the full cap up to DENSE_GENES variables; past that a
    breadth-first search that will not fit is abandoned early for Monte-Carlo."""
    return MAX_STATES if world.network.n_genes <= DENSE_GENES else LARGE_NETWORK_STATES


def _solve(
    world: World,
    perturbations: list[tuple[str, str]],
    start: str | None,
    max_states: "int | None",
    n_cells: int,
    seed: int,
    allow_monte_carlo: bool,
    condition: str | None = None,
) -> _Solved:
    start_code = _start_code(world, start, condition)
    mask, value, edges = _pin_bits(world, perturbations)
    max_states = default_max_states(world) if max_states is None else max_states
    cache = _results.setdefault(world, OrderedDict())
    # Exact answers do not depend on the cap or the sampling settings; estimates do.
    exact_key = (start_code, mask, value, edges)
    mc_key = (start_code, mask, value, edges, max_states, n_cells, seed)
    for key in (exact_key, mc_key) if allow_monte_carlo else (exact_key,):
        hit = cache.get(key)
        if hit is not None:
            cache.move_to_end(key)
            return hit
    labels = len(world.fate_labels)
    try:
        if world.scheme != "async":
            raise StateSpaceTooLarge(f"the exact chain is solved for async updates, not {world.scheme!r}")
        network = world.network_for(edges)
        p, n_states = fate_probabilities(network, world.classify, labels, start_code, mask, value, max_states)
        # Solver round-off (~1e-14) would otherwise rank 0.4999999999999993 below 0.5.
        p = np.round(p, 12)
        solved = _Solved(p, np.zeros(labels), True, n_states, f"exact (absorbing Markov chain, {n_states} states)")
        key = exact_key
    except StateSpaceTooLarge:
        if not allow_monte_carlo:
            raise
        mc = monte_carlo_fates(world, perturbations, start, n_cells=n_cells, seed=seed, condition=condition)
        why = f"reachable states > {max_states}" if world.scheme == "async" else f"{world.scheme} updates"
        solved = _Solved(
            np.array([mc.probabilities[f] for f in world.fate_labels]),
            np.array([mc.stderr[f] for f in world.fate_labels]),
            False,
            0,
            f"{mc.method}; {why}",
            n_cells,
        )
        key = mc_key
    cache[key] = solved
    if len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return solved


def _distribution(world: World, solved: _Solved) -> FateDistribution:
    return FateDistribution(
        probabilities={f: float(v) for f, v in zip(world.fate_labels, solved.probabilities)},
        stderr={f: float(v) for f, v in zip(world.fate_labels, solved.stderr)},
        method=solved.method,
        n_samples=solved.n_samples,
    )


def exact_fates(
    world: World,
    perturbations=(),
    start: str | None = None,
    max_states: int = MAX_STATES,
    condition: str | None = None,
) -> FateDistribution:
    """Exact fate probabilities from `start` with `perturbations` pinned from time 0.

    Raises StateSpaceTooLarge (a UserInputError) when more than `max_states` states are
    reachable; `fate_distribution` falls back to Monte-Carlo instead. Answers are
    cached per world, start and pinned set; a cached exact answer is returned whatever
    `max_states` says, since the cap only bounds work.
    """
    perturbations = check_perturbations(world, perturbations)
    return _distribution(world, _solve(world, perturbations, start, max_states, 0, 0, False, condition))


def fate_distribution(
    world: World,
    perturbations=(),
    start: str | None = None,
    n_cells: int = 4000,
    seed: int = 0,
    max_states: "int | None" = None,
    condition: str | None = None,
) -> FateDistribution:
    """Exact fate probabilities when the reachable set fits `max_states`, else Monte-Carlo."""
    perturbations = check_perturbations(world, perturbations)
    return _distribution(world, _solve(world, perturbations, start, max_states, n_cells, seed, True, condition))


# ---- enumerating perturbation sets -------------------------------------------------------


def _check_k(world: World, max_perturb: int) -> int:
    return world.check_max_perturb(max_perturb, minimum=0)


def count_sets(n_genes: int, n_kinds: int, size: int) -> int:
    """Perturbation sets of exactly `size` genes, one kind each."""
    return math.comb(n_genes, size) * n_kinds**size


def sets_of_size(genes: "int | tuple[int, ...]", kinds: tuple[str, ...], size: int):
    """Every perturbation set of `size` of the genes (a count means 0..n-1) as ((gene index, kind), ...),
    in a fixed order."""
    pool = range(genes) if isinstance(genes, int) else genes
    for genes in itertools.combinations(pool, size):
        for ks in itertools.product(kinds, repeat=size):
            yield tuple(zip(genes, ks))


def _named(world: World, moves) -> list[tuple[str, str]]:
    return [(world.genes[g], k) for g, k in moves]


@dataclass
class OracleResult:
    """The best time-0 perturbation sets for one target fate."""

    target: str
    max_perturb: int
    baseline: dict[str, float]
    best: list[dict]
    optimum: float
    exact: bool
    method: str
    n_sets_evaluated: int
    states_explored: int = field(default=0)
    stderr: float = 0.0  # of the optimum, when it is a Monte-Carlo estimate

    def to_json(self) -> dict:
        return {
            "target": self.target,
            "max_perturb": self.max_perturb,
            "baseline": self.baseline,
            "best": self.best,
            "optimum": self.optimum,
            "exact": self.exact,
            "method": self.method,
            "n_sets_evaluated": self.n_sets_evaluated,
            "states_explored": self.states_explored,
            "stderr": self.stderr,
        }


class SetEvaluator:
    """Fate probabilities per perturbation set (a tuple of (gene index, kind) moves), each set
    solved once: exactly by the absorbing chain where it fits, else by Monte-Carlo on
    `n_cells` cells with one `seed` for every set (common random numbers, so sets are
    compared on the same cells). The searches of this module and the non-RL baselines
    (algorithms.baselines) share it, so they score sets the same way."""

    def __init__(
        self,
        world: World,
        start: "str | None" = None,
        max_states: "int | None" = None,
        n_cells: int = 4000,
        seed: int = 0,
        condition: "str | None" = None,
    ) -> None:
        self.world, self.start, self.max_states, self.n_cells, self.seed = world, start, max_states, n_cells, seed
        self.condition = condition
        self.solved: dict[tuple, _Solved] = {}

    def seen(self, moves: tuple) -> bool:
        """Whether this set was solved already (asking again costs nothing)."""
        return tuple(sorted(moves)) in self.solved

    def __call__(self, moves: tuple) -> _Solved:
        moves = tuple(sorted(moves))
        hit = self.solved.get(moves)
        if hit is None:
            fixed = set(self.world.background_genes)
            touched = [self.world.genes[g] for g, _ in moves if self.world.genes[g] in fixed]
            if touched:
                raise UserInputError(f"{', '.join(touched)} is fixed by the background mutations and cannot be perturbed")
            hit = self.solved[moves] = _solve(
                self.world, _named(self.world, moves), self.start, self.max_states, self.n_cells, self.seed, True,
                self.condition,
            )
        return hit

    @property
    def exact(self) -> bool:
        return all(s.exact for s in self.solved.values())

    @property
    def states(self) -> int:
        return sum(s.n_states for s in self.solved.values())


def _rank_key(p: float, moves: tuple) -> tuple:
    return (-p, len(moves), moves)


class _OutOfTime(Exception):
    """The oracle's time budget is spent; what was scored so far stands as a lower bound."""


def best_perturbations(
    world: World,
    target: str,
    max_perturb: int,
    kinds=PERTURBATION_KINDS,
    start: str | None = None,
    top: int = 10,
    exhaustive_limit: int = EXHAUSTIVE_LIMIT,
    beam_width: int = BEAM_WIDTH,
    max_states: "int | None" = None,
    n_cells: int = 4000,
    seed: int = 0,
    condition: str | None = None,
    time_budget_s: "float | None" = None,
) -> OracleResult:
    """The time-0 perturbation sets of at most `max_perturb` genes that best reach `target`.

    Every set of each size is enumerated while the running count of sets stays within
    `exhaustive_limit`; larger sizes are searched by a beam (width `beam_width`, grown
    from the best sets of the previous size) followed by single-swap hill climbing, and
    the result is then a lower bound (`exact` False). Ties go to fewer perturbations.
    With `time_budget_s` the search stops when the budget is spent and returns the best
    found so far, as a lower bound that says so. Where the chain is too large the
    probabilities are Monte-Carlo estimates; the best sets are then re-estimated with an
    independent seed, so the reported optimum is not the maximum of noisy estimates.
    """
    t = world.fate_index(target)
    k = _check_k(world, max_perturb)
    kinds = normalize_kinds(kinds)
    if top < 1:
        raise UserInputError(f"top must be at least 1, got {top!r}")
    if time_budget_s is not None and not time_budget_s > 0:
        raise UserInputError(f"time_budget_s must be positive, got {time_budget_s!r}")
    genes = world.perturbable  # not the background's genes
    n = len(genes)
    world.start_state(start, condition)
    evaluate = SetEvaluator(world, start, max_states, n_cells, seed, condition)
    moves = [(g, kind) for g in genes for kind in kinds]
    deadline = None if time_budget_s is None else time.monotonic() + time_budget_s

    scored: dict[tuple, float] = {}

    def score(s: tuple) -> float:
        s = tuple(sorted(s))
        if s not in scored:
            if deadline is not None and scored and time.monotonic() > deadline:
                raise _OutOfTime
            scored[s] = float(evaluate(s).probabilities[t])
        return scored[s]

    exhaustive_upto = -1
    out_of_time = False
    try:
        total = 0
        for size in range(k + 1):
            total += count_sets(n, len(kinds), size)
            if total > exhaustive_limit and size > 0:
                break
            for s in sets_of_size(genes, kinds, size):
                score(s)
            exhaustive_upto = size
        if exhaustive_upto < k:
            beam = sorted((s for s in scored if len(s) == exhaustive_upto), key=lambda s: _rank_key(scored[s], s))
            beam = beam[:beam_width]
            for size in range(exhaustive_upto + 1, k + 1):
                grown = {
                    tuple(sorted(s + (m,)))
                    for s in beam
                    for m in moves
                    if m[0] not in {g for g, _ in s}
                }
                for s in sorted(grown):
                    score(s)
                beam = sorted(grown, key=lambda s: _rank_key(scored[s], s))[:beam_width]
            _swap_climb(score, scored, moves, exhaustive_upto, SWAP_STARTS)
    except _OutOfTime:
        out_of_time = True
    searched = exhaustive_upto < k or out_of_time

    ranked = sorted(scored, key=lambda s: _rank_key(scored[s], s))[:top]
    stderr: dict[tuple, float] = {}
    if not evaluate.exact:
        # Re-estimate the leaders on fresh cells: the winner of many noisy estimates is biased up.
        check = SetEvaluator(world, start, max_states, RECHECK_FACTOR * n_cells, seed + 1, condition)
        for s in ranked:
            solved = check(s)
            scored[s] = float(solved.probabilities[t])
            stderr[s] = float(solved.stderr[t])
        ranked = sorted(ranked, key=lambda s: _rank_key(scored[s], s))
    best = [
        {"perturbations": [[g, kd] for g, kd in _named(world, s)], "probability": scored[s]}
        | ({"stderr": stderr[s]} if s in stderr else {})
        for s in ranked
    ]
    # An exactly computed probability of 1 cannot be beaten, so a search that found one
    # has the exact optimum even though it did not enumerate every set.
    certain = evaluate.exact and max(scored.values()) >= 1.0
    exact = evaluate.exact and (not searched or certain)
    chain = (
        "exact absorbing Markov chain"
        if evaluate.exact
        else f"Monte-Carlo ({n_cells} cells a set; the best {len(ranked)} re-estimated on {RECHECK_FACTOR * n_cells} fresh cells)"
    )
    if out_of_time:
        how = f"time budget of {time_budget_s:g} s spent after {len(scored)} sets; the best found, a lower bound"
    elif searched:
        how = (
            f"exhaustive over sizes 0..{exhaustive_upto}, beam search (width {beam_width}) over sizes "
            f"{exhaustive_upto + 1}..{k} plus single-swap hill climbing; a lower bound"
        )
    else:
        how = f"exhaustive over all {len(scored)} sets of size <= {k}"
    if searched and certain:
        how += " (here certain success was found, which no set can beat: the optimum is exact)"
    baseline = evaluate(())
    return OracleResult(
        target=target,
        max_perturb=k,
        baseline={f: float(v) for f, v in zip(world.fate_labels, baseline.probabilities)},
        best=best,
        optimum=best[0]["probability"],
        exact=exact,
        method=f"{how}; {chain}",
        n_sets_evaluated=len(scored),
        states_explored=evaluate.states,
        stderr=stderr.get(ranked[0], 0.0),
    )


def _swap_climb(score, scored: dict, moves: list[Move], exhaustive_upto: int, n_starts: int, rounds: int = 3) -> None:
    """Improve the best searched sets by replacing one perturbation at a time (first-best climb)."""
    searched = [s for s in scored if len(s) > exhaustive_upto]
    starts = sorted(searched, key=lambda s: _rank_key(scored[s], s))[:n_starts]
    for s in starts:
        for _ in range(rounds):
            best_s, best_p = s, scored[s]
            for i in range(len(s)):
                rest = s[:i] + s[i + 1 :]
                used = {g for g, _ in rest}
                for m in moves:
                    if m[0] in used or m == s[i]:
                        continue
                    cand = tuple(sorted(rest + (m,)))
                    p = score(cand)
                    if p > best_p + 1e-12:
                        best_s, best_p = cand, p
            if best_s == s:
                break
            s = best_s


# ---- predict task ------------------------------------------------------------------------


def bayes_optimal_accuracy(
    world: World,
    max_perturb: int,
    kinds=PERTURBATION_KINDS,
    start: "str | list[str] | None" = None,
    exhaustive_limit: int = EXHAUSTIVE_LIMIT,
    n_sample_sets: int = 500,
    max_states: "int | None" = None,
    n_cells: int = 4000,
    seed: int = 0,
    condition: str | None = None,
    time_budget_s: "float | None" = None,
) -> dict:
    """Accuracy of the best time-0 predictor of the predict task: E_set[max_f P(f | set)].

    The environment draws a set size uniformly in 0..max_perturb, that many genes
    uniformly without replacement and a kind uniformly per gene, and the start uniformly
    among `start` (a name, a list, or None for the default). Knowing the start and the
    set, the best guess is the most likely fate. Each size is enumerated when it has at
    most `exhaustive_limit` sets, otherwise `n_sample_sets` sets of that size are drawn
    (stratified Monte-Carlo, with a standard error). A predictor that watches later
    stages of the cell can score higher: this is the optimum at time 0. With
    `time_budget_s`, strata are visited in random order and cut short when the budget is
    spent (each keeps at least MIN_STRATUM_SAMPLE sets), which widens the stderr.
    """
    k = _check_k(world, max_perturb)
    kinds = normalize_kinds(kinds)
    starts = world.start_names(start)
    pool = world.perturbable
    n = len(pool)
    rng = np.random.default_rng(seed)
    deadline = None if time_budget_s is None else time.monotonic() + time_budget_s
    mean = 0.0
    var = 0.0
    sampled = False
    all_exact = True
    for st in starts:
        evaluate = SetEvaluator(world, st, max_states, n_cells, seed, condition)
        for size in range(k + 1):
            weight = 1.0 / ((k + 1) * len(starts))
            total = count_sets(n, len(kinds), size)
            if total <= exhaustive_limit:
                sets = list(sets_of_size(pool, kinds, size))
                if deadline is not None:
                    # A random order, so a stratum cut short by the budget is a simple random sample.
                    sets = [sets[i] for i in rng.permutation(len(sets))]
            else:
                sets = []
                for _ in range(n_sample_sets):
                    picked = rng.choice(n, size=size, replace=False)
                    ks = rng.integers(len(kinds), size=size)
                    sets.append(tuple((int(pool[g]), kinds[int(j)]) for g, j in zip(picked, ks)))
            values = []
            for s_ in sets:
                if deadline is not None and len(values) >= MIN_STRATUM_SAMPLE and time.monotonic() > deadline:
                    break
                values.append(evaluate(s_).probabilities.max())
            mean += weight * float(np.mean(values))
            if total > exhaustive_limit or len(values) < total:
                sampled = True
                # Finite-population correction for a sample drawn without replacement.
                fpc = 1.0 - len(values) / total if total <= exhaustive_limit else 1.0
                if len(values) > 1:
                    var += weight**2 * float(np.var(values, ddof=1)) / len(values) * fpc
        all_exact = all_exact and evaluate.exact
    parts = []
    parts.append("stratified sample of perturbation sets" if sampled else "every perturbation set enumerated")
    parts.append("exact absorbing Markov chain" if all_exact else "Monte-Carlo fate estimates (their noise not in stderr)")
    return {
        "optimum": mean,
        "exact": all_exact and not sampled,
        "method": "; ".join(parts) + "; time-0 Bayes optimum",
        "stderr": math.sqrt(var),
    }
