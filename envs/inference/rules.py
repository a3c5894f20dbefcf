"""Logic-rule search per gene: next-state targets along pseudotime, then exhaustive rule scoring.

Next state. Snapshot data of a branching, asynchronous process does not give a cell its
successor: its nearest later cell is usually in the same state, which makes "stay as you
are" the best rule for every gene (a forward-in-time kNN target was tried and fails this
way). Instead the binarized cells are pooled into their distinct states, and states one
gene apart are linked, as an asynchronous update changes one gene at a time. A link is
directed by two cues: the states' mean pseudotime (decisive when it differs by at least
`tie_window` of its range) and the number of gene switches from the start state (the
earliest cells' state) through observed states, which orders states that a per-lineage
pseudotime leaves level. When the cues contradict each other the link says nothing.
When state s has a later neighbour differing in gene g, g's next value in s is the
neighbour's; otherwise g keeps its value. The fates' latest states are steady (every
gene keeps its value there) unless a well-populated state follows them. Data that
skipped a step (sparse sampling, or genes that switch together, as in continuous
simulations) are bridged by a two-gene link when no observed state lies in between and
both cues agree. Every cell inherits its state's next values: a rule's score is the (weighted)
share of cells where the rule, applied to the cell's current regulators, gives the
gene's next value.

Rules. IQCELL's form: at most `max_activators` activators combined by any monotone
AND/OR function, and at most `max_repressors` repressors, any monotone combination of
which silences the gene: rule = A(activators) & !R(repressors); a gene does not regulate
itself unless `allow_self` (its own value would predict its persistence). Candidates are
the genes that switch no later than the target (transition points) with the most mutual
information about its next value; every subset and form over them is scored exactly by
counting. The best score sets the bar and the rule with the fewest regulators within
`tolerance` of it wins (IQCELL lowered the required agreement step by step; this is
the same trade-off in one pass).
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Sequence

import numpy as np

from envs.errors import UserInputError

MAX_PER_SIDE = 3
# A state following a fate's latest state must hold this share of its cells to count (not a dropout shadow).
END_SHADOW_RATIO = 0.2


@dataclass(frozen=True)
class RuleFit:
    """One gene's inferred rule, its regulators and its agreement with the next states."""

    gene: str
    text: str
    activators: tuple[str, ...]
    repressors: tuple[str, ...]
    agreement: float
    candidates: tuple[str, ...] = field(default=())
    # Runners-up within the search's alternative margin, best first (for network-level selection).
    alternatives: tuple["RuleFit", ...] = field(default=(), repr=False, compare=False)

    @property
    def n_regulators(self) -> int:
        return len(self.activators) + len(self.repressors)

    @property
    def edges(self) -> list[tuple[str, str, int]]:
        return [(a, self.gene, 1) for a in self.activators] + [(r, self.gene, -1) for r in self.repressors]


# ---- next-state targets -------------------------------------------------------------


@dataclass
class StateGraph:
    """Distinct binarized states, their cells, mean pseudotime and gene steps from the start state."""

    states: np.ndarray  # (S, n) uint8
    cell_state: np.ndarray  # (N,) state index of each cell
    counts: np.ndarray  # (S,)
    mean_time: np.ndarray  # (S,)
    steps: np.ndarray  # (S,) fewest gene switches from the start state via observed states (inf: none)
    start: int
    index: dict[bytes, int] = field(default_factory=dict, repr=False)  # state bytes -> row
    steady: np.ndarray | None = None  # (S,) end states taken as steady by next_state_targets

    def index_of(self, state: np.ndarray) -> int | None:
        """Row of an observed state, None if no cell is in it."""
        return self.index.get(np.asarray(state, dtype=np.uint8).tobytes())


def _flipped(states, index, counts, i, genes, min_cells) -> int | None:
    """Row of state i with `genes` flipped, if observed in at least min_cells cells."""
    flipped = states[i].copy()
    flipped[list(genes)] ^= 1
    j = index.get(flipped.tobytes())
    return j if j is not None and counts[j] >= min_cells else None


def _neighbours(states, index, counts, i, min_cells, jump=1):
    """Observed states exactly `jump` genes away from state i, both with at least min_cells cells."""
    if counts[i] < min_cells:
        return
    for genes in itertools.combinations(range(states.shape[1]), jump):
        j = _flipped(states, index, counts, i, genes, min_cells)
        if j is not None:
            yield j, genes


def state_graph(
    binary: np.ndarray, pseudotime: np.ndarray, start: np.ndarray, min_cells: int = 2, max_jump: int = 2
) -> StateGraph:
    """Pool cells into states; count gene switches from the start state along observed states."""
    states, cell_state, counts = np.unique(binary, axis=0, return_inverse=True, return_counts=True)
    cell_state = cell_state.ravel()
    mean_time = np.bincount(cell_state, pseudotime, minlength=len(states)) / counts
    # The start node is the observed state closest to the earliest cells' consensus.
    distance = np.abs(states.astype(int) - start[None, :].astype(int)).sum(axis=1)
    start_idx = int(np.lexsort((-counts, distance))[0])
    index = {s.tobytes(): i for i, s in enumerate(states)}
    steps = np.full(len(states), np.inf)
    steps[start_idx] = 0
    heap = [(0, start_idx)]
    while heap:  # Dijkstra: a jump over k genes costs k switches
        d, i = heapq.heappop(heap)
        if d > steps[i]:
            continue
        for jump in range(1, max_jump + 1):
            for j, _ in _neighbours(states, index, counts, i, min_cells, jump):
                if d + jump < steps[j]:
                    steps[j] = d + jump
                    heapq.heappush(heap, (d + jump, j))
    return StateGraph(states, cell_state, counts, mean_time, steps, start_idx, index)


def next_state_targets(
    binary: np.ndarray,
    pseudotime: np.ndarray,
    start: np.ndarray,
    end_states: np.ndarray | None = None,
    min_cells: int = 2,
    min_ratio: float = 0.05,
    tie_window: float = 0.1,
    max_jump: int = 2,
) -> tuple[np.ndarray, np.ndarray, StateGraph]:
    """(cells, genes) next value of each gene in each cell, and the weight of that evidence.

    See the module docstring. Two states one gene apart are ordered by mean pseudotime
    (when it differs by `tie_window` of its range) and by gene steps from the start; when
    the two cues disagree, or neither decides, that gene carries no evidence (weight 0)
    in either state. A later neighbour must hold `min_ratio` of the state's cells, so that
    the rare dropout shadows of a common state do not pass for its successors. End
    states (the fates' mature states) are steady: every gene keeps its value there, and a
    link into an end state points into it. States up to `max_jump` genes apart are linked
    when no observed state lies between them (a skipped step), both cues agree, and the
    later one holds `END_SHADOW_RATIO` of the earlier one's cells.
    """
    graph = state_graph(binary, pseudotime, start, min_cells, max_jump)
    span = float(np.ptp(pseudotime)) or 1.0
    index = graph.index
    is_end = np.zeros(len(graph.states), dtype=bool)
    if end_states is not None:
        for e in np.atleast_2d(end_states):
            i = graph.index_of(e)
            if i is None:
                continue
            # A fate's latest state is steady unless a well-populated state follows it
            # (a stage on the way, such as an early T-cell stage, rather than an end point).
            followed = any(
                graph.mean_time[j] > graph.mean_time[i]
                and (graph.mean_time[j] - graph.mean_time[i] >= tie_window * span or graph.steps[j] > graph.steps[i])
                and graph.counts[j] >= END_SHADOW_RATIO * graph.counts[i]
                for jump in range(1, max_jump + 1)
                for j, _ in _neighbours(graph.states, index, graph.counts, i, min_cells, jump)
            )
            is_end[i] = not followed
    graph.steady = is_end

    def later(i: int, j: int, both: bool = False) -> int:
        """+1: j follows i; -1: j precedes i; 0: undecided or contradictory (or, with `both`, one cue silent)."""
        if is_end[j] or is_end[i]:
            return 1 if is_end[j] and not is_end[i] else -1 if is_end[i] and not is_end[j] else 0
        dt = (graph.mean_time[j] - graph.mean_time[i]) / span
        si, sj = graph.steps[i], graph.steps[j]
        by_time = 0 if abs(dt) < tie_window else int(np.sign(dt))
        # Two states both unreachable from the start carry no order by steps.
        by_steps = 0 if np.isinf(si) and np.isinf(sj) else int(np.sign(sj - si))
        if both:
            return by_time if by_time == by_steps else 0
        return 0 if by_time * by_steps < 0 else by_time or by_steps

    def bridged(i: int, genes: tuple[int, ...]) -> bool:
        """No observed state lies between i and i with `genes` flipped: the data skipped the steps."""
        return all(
            _flipped(graph.states, index, graph.counts, i, part, min_cells) is None
            for k in range(1, len(genes))
            for part in itertools.combinations(genes, k)
        )

    nxt = graph.states.astype(np.float64).copy()
    weight = np.ones_like(nxt)
    for i in np.nonzero(~is_end)[0]:
        for jump in range(1, max_jump + 1):
            for j, genes in _neighbours(graph.states, index, graph.counts, i, min_cells, jump):
                if jump > 1 and not bridged(i, genes):
                    continue
                order = later(i, j, both=jump > 1)
                if order == 0 and jump == 1:
                    weight[i, list(genes)] = 0.0
                # A skipped step must lead somewhere well populated, not to a noise state.
                ratio = min_ratio if jump == 1 else END_SHADOW_RATIO
                if order > 0 and graph.counts[j] >= ratio * graph.counts[i]:
                    nxt[i, list(genes)] = graph.states[j, list(genes)]
    return nxt[graph.cell_state], weight[graph.cell_state], graph


# ---- rule forms ---------------------------------------------------------------------


@lru_cache(maxsize=None)
def monotone_forms(k: int) -> tuple[np.ndarray, ...]:
    """Truth tables of the monotone Boolean functions that depend on all k inputs (bit j = input j)."""
    if k == 0:
        return (np.ones(1, dtype=bool),)
    codes = np.arange(1 << k)
    forms = []
    for t in range(1 << (1 << k)):
        table = ((t >> codes) & 1).astype(bool)
        monotone = all(
            not table[c] or table[c | (1 << j)] for c in codes for j in range(k) if not (c >> j) & 1
        )
        depends = all((table != table[codes ^ (1 << j)]).any() for j in range(k))
        if monotone and depends:
            forms.append(table)
    return tuple(forms)


@lru_cache(maxsize=None)
def rule_tables(a: int, r: int) -> np.ndarray:
    """(forms, 2**(a+r)) tables of A & !R; activator bits low, repressor bits high."""
    codes = np.arange(1 << (a + r))
    act, rep = codes & ((1 << a) - 1), codes >> a
    rep_forms = monotone_forms(r) if r else (np.zeros(1, dtype=bool),)
    return np.array([fa[act] & ~fr[rep] for fa in monotone_forms(a) for fr in rep_forms])


def _form_text(table: np.ndarray, names: Sequence[str]) -> str:
    """Shortest of the minimal DNF and CNF of a monotone function."""
    k = len(names)
    codes = np.arange(1 << k)
    true = [c for c in codes if table[c]]
    minimal_true = [c for c in true if not any(o != c and (o & c) == o for o in true)]
    false = [c for c in codes if not table[c]]
    maximal_false = [c for c in false if not any(o != c and (o & c) == c for o in false)]

    def join(groups, inner, outer):
        parts = []
        for members in groups:
            body = f" {inner} ".join(members)
            parts.append(f"({body})" if len(members) > 1 and len(groups) > 1 else body)
        return f" {outer} ".join(parts)

    dnf = join([[names[j] for j in range(k) if c >> j & 1] for c in minimal_true], "&", "|")
    cnf = join([[names[j] for j in range(k) if not c >> j & 1] for c in maximal_false], "|", "&")
    return min((dnf, cnf), key=len)


def rule_text(activators: Sequence[str], repressors: Sequence[str], form: int) -> str:
    """bnet text of form `form` of rule_tables(len(activators), len(repressors))."""
    a, r = len(activators), len(repressors)
    n_rep_forms = len(monotone_forms(r)) if r else 1
    fa, fr = divmod(form, n_rep_forms)
    parts = []
    if a:
        text = _form_text(monotone_forms(a)[fa], activators)
        parts.append(f"({text})" if r and "|" in text else text)
    if r:
        table = monotone_forms(r)[fr]
        if all(table[1 << j] for j in range(r)):  # any repressor alone silences the gene
            parts.extend(f"!{name}" for name in repressors)
        else:
            parts.append(f"!({_form_text(table, repressors)})")
    return " & ".join(parts) if parts else "1"


# ---- search -------------------------------------------------------------------------


def mutual_information(x: np.ndarray, y: np.ndarray) -> float:
    """MI (nats) between a binary x and a target y in [0, 1] (soft counts)."""
    mi = 0.0
    for xv in (0, 1):
        px = float((x == xv).mean())
        for py_cell in (y, 1.0 - y):
            joint = float((py_cell * (x == xv)).mean())
            marg = float(py_cell.mean())
            if joint > 0 and px > 0 and marg > 0:
                mi += joint * np.log(joint / (px * marg))
    return mi


def _set_agreements(states: np.ndarray, t1: np.ndarray, t0: np.ndarray, sets: np.ndarray, a: int, r: int):
    """(sets, forms) agreement weight of every form of A & !R over each regulator set."""
    k = a + r
    tables = rule_tables(a, r).astype(np.float64)
    out = np.empty((len(sets), len(tables)))
    chunk = max(1, 4_000_000 // max(len(states), 1))
    powers = (1 << np.arange(k)).astype(np.int64)
    for lo in range(0, len(sets), chunk):
        block = sets[lo : lo + chunk]
        codes = (states[:, block].astype(np.int64) * powers).sum(axis=2)  # (states, sets)
        offsets = (codes + (np.arange(len(block)) << k)[None, :]).ravel()
        size = len(block) << k
        n1 = np.bincount(offsets, np.repeat(t1, len(block)), minlength=size).reshape(len(block), -1)
        n0 = np.bincount(offsets, np.repeat(t0, len(block)), minlength=size).reshape(len(block), -1)
        out[lo : lo + len(block)] = n1 @ tables.T + n0 @ (1.0 - tables).T
    return out


def search_rule(
    gene: int,
    binary: np.ndarray,
    target: np.ndarray,
    candidates: Sequence[int],
    names: Sequence[str],
    max_activators: int = 3,
    max_repressors: int = 2,
    tolerance: float = 0.02,
    weight: np.ndarray | None = None,
    n_alternatives: int = 0,
    alternative_margin: float = 0.05,
) -> RuleFit:
    """Exhaustive search of A & !R rules over `candidates` for one gene (module docstring).

    Score = weighted share of cells whose next value the rule gives. The best score
    over all rules sets the bar; the fewest regulators reaching bar - tolerance win, and
    among those the best score (the first in candidate order on exact ties). With
    `n_alternatives` > 0 the fit also carries up to that many runners-up scoring within
    `alternative_margin` of the bar, best first, for a choice at the network level
    (`envs.inference.consistency`).
    """
    weight = np.ones_like(target, dtype=np.float64) if weight is None else weight
    candidates = list(candidates)
    # Only the candidates' values matter: score their distinct patterns, not cells.
    patterns, inverse = np.unique(binary[:, candidates], axis=0, return_inverse=True)
    inverse = inverse.ravel()
    t1 = np.bincount(inverse, weight * target, minlength=len(patterns))
    t0 = np.bincount(inverse, weight * (1.0 - target), minlength=len(patterns))
    total = float(weight.sum()) or 1.0
    self_pos = candidates.index(gene) if gene in candidates else -1
    # best[k] = (score, activator positions, repressor positions, form) with k regulators
    # The constant rules "1" (form -1) and "0" (form -2); runners-up also collects the others.
    runners_up: list[tuple[float, tuple, tuple, int]] = [(t1.sum() / total, (), (), -1), (t0.sum() / total, (), (), -2)]
    best: dict[int, tuple[float, tuple, tuple, int]] = {0: max(runners_up, key=lambda f: f[0])}
    positions = range(len(candidates))
    for a in range(min(max_activators, len(candidates)) + 1):
        for r in range(min(max_repressors, len(candidates) - a) + 1):
            if a + r == 0:
                continue
            combos = [
                acts + reps
                for acts in itertools.combinations(positions, a)
                for reps in itertools.combinations([p for p in positions if p not in acts and p != self_pos], r)
            ]
            if not combos:
                continue
            scores = _set_agreements(patterns, t1, t0, np.array(combos, dtype=np.int64), a, r) / total
            flat = int(np.argmax(scores))
            i, form = divmod(flat, scores.shape[1])
            if a + r not in best or scores[i, form] > best[a + r][0] + 1e-12:
                best[a + r] = (float(scores[i, form]), combos[i][:a], combos[i][a:], form)
            if n_alternatives:
                flat_scores = scores.ravel()
                keep = min(n_alternatives + 1, flat_scores.size)
                for f in np.argpartition(-flat_scores, keep - 1)[:keep]:
                    i, form = divmod(int(f), scores.shape[1])
                    runners_up.append((float(scores[i, form]), combos[i][:a], combos[i][a:], form))
    top = max(f[0] for f in best.values())
    k = min(k for k, f in best.items() if f[0] >= top - tolerance - 1e-12)

    def fit(entry, alternatives=()) -> RuleFit:
        score, acts, reps, form = entry
        act_names = tuple(names[candidates[p]] for p in acts)
        rep_names = tuple(names[candidates[p]] for p in reps)
        text = "1" if form == -1 else "0" if form == -2 else rule_text(act_names, rep_names, form)
        pool = tuple(names[c] for c in candidates)
        return RuleFit(names[gene], text, act_names, rep_names, score, pool, alternatives)

    chosen = best[k]
    others = sorted(
        (e for e in runners_up if e[0] >= top - alternative_margin - 1e-12 and e[1:] != chosen[1:]),
        key=lambda e: (-e[0], len(e[1]) + len(e[2]), e[1], e[2], e[3]),
    )
    return fit(chosen, tuple(fit(e) for e in others[:n_alternatives]))


def infer_rules(
    binary: np.ndarray,
    targets: np.ndarray,
    names: Sequence[str],
    allowed: np.ndarray | None = None,
    max_activators: int = 3,
    max_repressors: int = 2,
    max_candidates: int = 8,
    tolerance: float = 0.02,
    allow_self: bool = False,
    weights: np.ndarray | None = None,
    n_alternatives: int = 0,
    alternative_margin: float = 0.05,
) -> dict[str, RuleFit]:
    """One rule per gene; a gene that never varies keeps its value (rule = itself).

    `allowed[r, g]` says regulator r may act on gene g (transition-point order, see
    `envs.inference.binarize.regulation_allowed`); all pairs by default.
    `n_alternatives` / `alternative_margin`: runners-up kept per gene (`search_rule`).
    """
    for what, value in (("max_activators", max_activators), ("max_repressors", max_repressors)):
        if not 0 <= value <= MAX_PER_SIDE:
            raise UserInputError(f"{what}={value}; valid choices: 0..{MAX_PER_SIDE}")
    n = binary.shape[1]
    allowed = np.ones((n, n), dtype=bool) if allowed is None else allowed
    weights = np.ones_like(targets) if weights is None else weights
    varies = binary.min(axis=0) != binary.max(axis=0)
    fits: dict[str, RuleFit] = {}
    for g in range(n):
        if not varies[g] and (targets[:, g] == binary[:, g]).all():
            fits[names[g]] = RuleFit(names[g], names[g], (), (), 1.0)
            continue
        pool = [c for c in range(n) if varies[c] and allowed[c, g] and (c != g or allow_self)]
        scored = weights[:, g] > 0
        info = {c: mutual_information(binary[scored, c], targets[scored, g]) for c in pool}
        ranked = sorted(pool, key=lambda c: (-info[c], c))[:max_candidates]
        fits[names[g]] = search_rule(
            g,
            binary,
            targets[:, g],
            sorted(ranked),
            names,
            max_activators,
            max_repressors,
            tolerance,
            weights[:, g],
            n_alternatives,
            alternative_margin,
        )
    return fits
