"""Non-RL baselines for the steer task: the sets a biologist would try before RL, scored like
the oracle scores them, so every RL entry has a cheap, honest reference to beat.

`BASELINES` maps a name to `fn(world, target, max_perturb, *, kinds, start, condition,
budget_cells, n_cells, seed, max_states, ...) -> BaselineResult`; budget accounting is
described in `algorithms.baselines.common`.
"""

from __future__ import annotations

from collections.abc import Callable

from envs.errors import choices_error

from algorithms.baselines.common import BaselineResult
from algorithms.baselines.control import aeon_control
from algorithms.baselines.search import annealing, beam, greedy, random_search

BASELINES: dict[str, Callable[..., BaselineResult]] = {
    "random": random_search,
    "greedy": greedy,
    "beam": beam,
    "annealing": annealing,
    "aeon_control": aeon_control,
}


def run_baseline(name: str, world, target: str, max_perturb: int, **kw) -> BaselineResult:
    """Run the baseline called `name` (one of BASELINES)."""
    if name not in BASELINES:
        raise choices_error("baseline", name, list(BASELINES))
    return BASELINES[name](world, target, max_perturb, **kw)


__all__ = ["BASELINES", "BaselineResult", "run_baseline"]
