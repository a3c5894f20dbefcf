"""What every non-RL baseline shares: input checks, the budgeted scorer, and the result row.

Budget accounting, the same for every baseline: the unit is the simulated cell. Scoring a
set that this run has not scored before costs `n_cells` cells, whether the set is solved
by Monte-Carlo on `n_cells` cells or exactly by the absorbing chain (an exact evaluation
is counted as the Monte-Carlo cells it stands in for), so a budget buys the same number
of sets on a small world as on a large one. Asking for a set again costs nothing. A
baseline stops before the evaluation that would pass its budget, so it never spends more
than `budget_cells`. When the sets were scored by Monte-Carlo, the best set is scored
again on RECHECK_FACTOR * n_cells fresh cells (another seed), as the oracle does, so the
reported value is not the maximum of noisy estimates; those cells are reported apart
(`recheck_cells`), outside the search budget.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from envs.errors import UserInputError
from envs.network import PERTURBATION_KINDS, normalize_kinds
from envs.oracle import RECHECK_FACTOR, SetEvaluator
from envs.world import World, load_world

Move = tuple[int, str]  # (gene index, canonical kind)
DEFAULT_N_CELLS = 2000
DEFAULT_BUDGET_CELLS = 400 * DEFAULT_N_CELLS
_TIE = 1e-12  # exact probabilities are rounded to 1e-12 by the oracle


@dataclass(frozen=True)
class BaselineResult:
    """One baseline's answer for one target: its best set, how good it is, and what it cost.

    `value` is the target probability of `best` (exact, or a fresh Monte-Carlo estimate
    with `stderr`); `search_value` is the value the search saw. `trace` holds
    (cells used, best value so far) after every improvement and at the end, for anytime
    plots. `value` is NaN and `reason` says why when the baseline proposed no set.
    """

    name: str
    world: str
    target: str
    max_perturb: int
    best: tuple[tuple[str, str], ...]
    value: float
    stderr: float
    exact: bool
    scoring: str
    n_cells: int
    budget_cells: int
    used_cells: int
    sets_evaluated: int
    recheck_cells: int
    trace: tuple[tuple[int, float], ...]
    wall_s: float
    search_value: float = math.nan
    reason: str = ""
    details: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "world": self.world,
            "target": self.target,
            "max_perturb": self.max_perturb,
            "best": [list(p) for p in self.best],
            "value": None if math.isnan(self.value) else self.value,
            "stderr": self.stderr,
            "exact": self.exact,
            "scoring": self.scoring,
            "n_cells": self.n_cells,
            "budget_cells": self.budget_cells,
            "used_cells": self.used_cells,
            "sets_evaluated": self.sets_evaluated,
            "recheck_cells": self.recheck_cells,
            "trace": [list(t) for t in self.trace],
            "wall_s": self.wall_s,
            "search_value": None if math.isnan(self.search_value) else self.search_value,
            "reason": self.reason,
            "details": self.details,
        }


class OutOfBudget(Exception):
    """The next new set would pass the budget; the search stops with what it has."""


def _check_int(what: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserInputError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return value


class Scorer:
    """The budgeted view of one SetEvaluator for one target: scores sets, counts cells,
    keeps the best set so far and the anytime trace."""

    def __init__(
        self,
        name: str,
        world: "World | str",
        target: str,
        max_perturb: int,
        *,
        kinds=PERTURBATION_KINDS,
        start: "str | None" = None,
        condition: "str | None" = None,
        budget_cells: int = DEFAULT_BUDGET_CELLS,
        n_cells: int = DEFAULT_N_CELLS,
        seed: int = 0,
        max_states: "int | None" = None,
    ) -> None:
        self.t0 = time.perf_counter()
        self.name = name
        self.world = load_world(world)
        self.target = target
        self.t = self.world.fate_index(target)
        self.k = self.world.check_max_perturb(max_perturb, minimum=1)
        self.kinds = normalize_kinds(kinds)
        self.n_cells = _check_int("n_cells", n_cells, 1)
        if isinstance(budget_cells, bool) or not isinstance(budget_cells, int) or budget_cells < self.n_cells:
            raise UserInputError(
                f"budget_cells must be an integer >= n_cells ({self.n_cells}, the cost of one set), got {budget_cells!r}"
            )
        self.budget = budget_cells
        self.seed = _check_int("seed", seed, 0)
        self.start, self.condition, self.max_states = start, condition, max_states
        self.world.start_state(start, condition)  # a bad start or condition fails here, before any work
        self.evaluate = SetEvaluator(self.world, start, max_states, self.n_cells, self.seed, condition)
        # the background's genes are fixed: a rescue set may not undo the mutation
        self.genes: tuple[int, ...] = self.world.perturbable
        self.moves: list[Move] = [(g, kd) for g in self.genes for kd in self.kinds]
        self.values: dict[tuple, float] = {}
        self.used = 0
        self.best: "tuple | None" = None
        self.trace: list[tuple[int, float]] = []

    @property
    def left(self) -> int:
        return self.budget - self.used

    def can_score(self) -> bool:
        return self.left >= self.n_cells

    def __call__(self, moves) -> float:
        """Target probability of a set; raises OutOfBudget instead of passing the budget."""
        s = tuple(sorted(moves))
        if s in self.values:
            return self.values[s]
        if not self.can_score():
            raise OutOfBudget
        p = float(self.evaluate(s).probabilities[self.t])
        self.used += self.n_cells
        self.values[s] = p
        if self.best is None or rank_key(p, s) < rank_key(self.values[self.best], self.best):
            self.best = s
            self.trace.append((self.used, p))
        return p

    def finish(self, details: "dict | None" = None, reason: str = "") -> BaselineResult:
        """The result row: the best set, re-estimated on fresh cells when it was sampled."""
        world, details = self.world, dict(details or {})
        if self.best is None:
            return BaselineResult(
                name=self.name, world=world.name, target=self.target, max_perturb=self.k, best=(),
                value=math.nan, stderr=math.nan, exact=False, scoring="no set scored", n_cells=self.n_cells,
                budget_cells=self.budget, used_cells=self.used, sets_evaluated=0, recheck_cells=0,
                trace=tuple(self.trace), wall_s=time.perf_counter() - self.t0,
                reason=reason or "no set was proposed", details=details,
            )
        solved = self.evaluate(self.best)
        search_value = self.values[self.best]
        if solved.exact:
            value, stderr, recheck = search_value, 0.0, 0
            scoring = "exact absorbing Markov chain"
        else:
            n = RECHECK_FACTOR * self.n_cells
            check = SetEvaluator(world, self.start, self.max_states, n, self.seed + 1, self.condition)
            fresh = check(self.best)
            value, stderr, recheck = float(fresh.probabilities[self.t]), float(fresh.stderr[self.t]), n
            scoring = (
                f"Monte-Carlo, {self.n_cells} cells a set (seed {self.seed}); the best re-estimated on "
                f"{n} fresh cells (seed {self.seed + 1})"
            )
        if self.trace and self.trace[-1][0] != self.used:
            self.trace.append((self.used, self.trace[-1][1]))
        return BaselineResult(
            name=self.name, world=world.name, target=self.target, max_perturb=self.k,
            best=tuple((world.genes[g], kd) for g, kd in self.best), value=value, stderr=stderr,
            exact=solved.exact, scoring=scoring, n_cells=self.n_cells, budget_cells=self.budget,
            used_cells=self.used, sets_evaluated=len(self.values), recheck_cells=recheck,
            trace=tuple(self.trace), wall_s=time.perf_counter() - self.t0, search_value=search_value,
            reason=reason, details=details,
        )


def rank_key(p: float, moves: tuple) -> tuple:
    """Higher probability first, then fewer perturbations, then a fixed order (as the oracle ranks)."""
    return (-round(p, 12), len(moves), moves)


def better(p: float, q: float) -> bool:
    """p beats q by more than round-off."""
    return p > q + _TIE


def add_move(s: tuple, m: Move) -> "tuple | None":
    """The set with move m added, or None when m's gene is already pinned in s."""
    if any(g == m[0] for g, _ in s):
        return None
    return tuple(sorted(s + (m,)))
