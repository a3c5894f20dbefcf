"""Choose among near-best rules a network whose dynamics reach the fates the data show.

Per-gene agreement cannot see the network: each rule may fit its gene's next states
while the rules together never leave the start state. On scanpy's krumsiek11 data the
best-scoring rules are Gata1 = SCL and SCL = Gata1, both off in the progenitor, so the
erythroid and megakaryocyte fates, half of the data, are unreachable. IQCELL chose among
accepted rules at the network level (by mutual information between genes); here the
network-level criterion is the observation itself: every observed end fate (a cell
type whose latest cells stay put, not a stage that later cells leave) should be
reachable from the start state, and little probability should end in attractors no cell
type matches (wild-type cells end in the observed types).

A greedy search swaps one gene's rule for one of its runners-up (`RuleFit.alternatives`,
within the search's alternative margin) at a time, taking the swap that most improves
(fates reached, probability of unmatched attractors), and among equally good swaps the
one that loses the least agreement. It stops when nothing improves; a network that is
already consistent is left as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from envs.inference.rules import RuleFit
from envs.world import OTHER, World

# Fate probabilities come from the exact oracle up to this many reachable states, else Monte-Carlo.
# Kept small: the greedy search solves a few hundred candidate networks.
SELECTION_MAX_STATES = 20_000
SELECTION_CELLS = 300


@dataclass(frozen=True)
class Consistency:
    """How well a network's wild-type dynamics match the observed fates."""

    reached: tuple[str, ...]  # observed fates with probability >= p_min from the start state
    missing: tuple[str, ...]  # observed fates the network does not reach
    p_unmatched: float  # probability of ending in an attractor no fate matches

    def key(self) -> tuple[int, float]:
        """Larger is better: fates reached first, then less unmatched probability (to 0.01)."""
        return len(self.reached), -round(self.p_unmatched, 2)


@dataclass(frozen=True)
class RuleSwap:
    gene: str
    old: str
    new: str
    agreement_loss: float
    before: Consistency
    after: Consistency

    def describe(self) -> str:
        return (
            f"{self.gene}: {self.old} -> {self.new} (agreement {-self.agreement_loss:+.3f}; fates reached "
            f"{len(self.before.reached)} -> {len(self.after.reached)}, unmatched "
            f"{self.before.p_unmatched:.2f} -> {self.after.p_unmatched:.2f})"
        )


def consistency(
    world: World, required: "Sequence[str] | None" = None, p_min: float = 0.01, seed: int = 0
) -> Consistency:
    """Which `required` fates (default: all) the world reaches from its default start state, unperturbed."""
    from envs.oracle import fate_distribution

    probs = fate_distribution(world, n_cells=SELECTION_CELLS, seed=seed, max_states=SELECTION_MAX_STATES).probabilities
    required = world.fates if required is None else tuple(required)
    reached = tuple(f for f in required if probs[f] >= p_min)
    missing = tuple(f for f in required if probs[f] < p_min)
    return Consistency(reached, missing, float(probs[OTHER]))


@dataclass
class Selection:
    """The rules chosen, the swaps made in order, how the result reaches the fates, and its world."""

    rules: dict[str, RuleFit]
    swaps: list[RuleSwap]
    reach: Consistency
    world: World


def select_consistent_rules(
    rules: dict[str, RuleFit],
    build: Callable[[dict[str, RuleFit]], World],
    required: "Sequence[str] | None" = None,
    p_min: float = 0.01,
    seed: int = 0,
    solved: "dict[tuple[str, ...], Consistency] | None" = None,
) -> Selection:
    """Greedy rule swaps until the network reaches the observed fates (module docstring).

    `build` turns a gene -> rule mapping into a world (same fates and start state);
    `required` names the fates that must be reached (default: all; transient stages,
    such as early T-cell stages that later cells leave, are not end points). `solved`
    caches the verdicts on networks already judged, by their rule texts (pass one dict to
    calls that share `build`): later rounds meet most of the earlier rounds' networks
    again. Only verdicts are kept: a world holds its solver's caches, megabytes each.
    """
    solved = {} if solved is None else solved

    def judge(chosen: dict[str, RuleFit]) -> Consistency:
        key = tuple(fit.text for fit in chosen.values())
        if key not in solved:
            solved[key] = consistency(build(chosen), required, p_min, seed)
        return solved[key]

    current = dict(rules)
    state = judge(current)
    swaps: list[RuleSwap] = []
    while len(swaps) < len(rules) and (state.missing or state.p_unmatched >= p_min):
        best: tuple | None = None
        for gene, fit in current.items():
            original = rules[gene]
            for alternative in (original, *original.alternatives):
                if alternative.text == fit.text:
                    continue
                result = judge({**current, gene: alternative})
                if result.key() <= state.key():
                    continue
                loss = original.agreement - alternative.agreement
                rank = (result.key(), -loss, -alternative.n_regulators)
                if best is None or rank > best[0]:
                    best = (rank, gene, alternative, result, loss)
        if best is None:
            break
        _, gene, alternative, result, loss = best
        swaps.append(RuleSwap(gene, current[gene].text, alternative.text, loss, state, result))
        current[gene] = alternative
        state = result
    return Selection(current, swaps, state, build(current))
