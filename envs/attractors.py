"""Attractors of a network at real size, computed symbolically (BDDs, biodivine_aeon), never by enumerating states.

`reachable_attractors(network, start)` lists the attractors a cell can reach from one start state
with some variables pinned; `all_attractors(network, fixed)` lists every attractor of the state
space with some variables fixed (input conditions, perturbations). An `Attractor` holds its
states as a (k, variables) uint8 array (every state of a small attractor, a bounded uniform
sample of a large cyclic one), its size, and its stable and oscillating variables.

How: the network is handed to AEON with every fixed variable's rule replaced by its constant
(and every constant gene, rule `x = x`, fixed at its start value: it never changes). AEON finds
all attractors of that space (`Attractors.attractors`, 61-variable Cacace model: about 0.6 s),
then each attractor's basin by backward reachability (milliseconds); an attractor is reachable
from the start exactly when the start lies in its basin. Forward reachability from the start
would give the same answer but is far slower on such models (16 s for Cacace's ETP state,
4e13 reachable states). Results are cached per (network, fixed values), so the many starts of
one condition cost one attractor search.

Update schemes:
- "async" (general asynchronous, the project's default): exact.
- "sync": deterministic; the trajectory is followed until it repeats (exact, pure numpy).
- "priority" (GINsim priority classes): AEON has no priority classes, so attractors are those
  of general asynchronous updating. Every priority transition is an asynchronous transition,
  so fixed points are the same and every state a priority run reaches is reachable
  asynchronously; but priorities can make an asynchronous attractor unreachable, and a cyclic
  priority attractor need not coincide with an asynchronous one. Which attractors priority
  updates reach, and how often, comes from Monte-Carlo (`envs.simulate`, or
  `envs.importer`, which runs it and matches cells to these attractors).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from envs.boolean_rules import Node, parse_rule, to_text, truth_table
from envs.errors import UserInputError, choices_error
from envs.network import UPDATE_SCHEMES, BooleanNetwork

DEFAULT_LIMIT = 256  # states an Attractor keeps (all of them when it has no more)
MAX_ATTRACTORS = 4096  # more than this under one set of fixed values is refused (fix more inputs)
SYNC_MAX_STEPS = 1 << 20


@dataclass(frozen=True, eq=False)
class Attractor:
    """A terminal strongly connected component of the state graph.

    `states`: (k, n_vars) uint8, every state when `complete`, else a uniform sample of `size`.
    `stable[v]` is the value variable v keeps in every state, -1 where it oscillates.
    """

    states: np.ndarray = field(repr=False)
    size: int
    stable: np.ndarray = field(repr=False)
    complete: bool
    variables: tuple[str, ...] = field(repr=False, default=())
    _vertices: object = field(default=None, repr=False, compare=False)  # AEON VertexSet
    _graph: object = field(default=None, repr=False, compare=False)  # its AsynchronousGraph

    @property
    def is_fixed_point(self) -> bool:
        return self.size == 1

    @property
    def oscillating(self) -> tuple[int, ...]:
        """Variable indices that take both values in the attractor."""
        return tuple(int(v) for v in np.flatnonzero(self.stable < 0))

    @property
    def oscillating_names(self) -> tuple[str, ...]:
        return tuple(self.variables[v] for v in self.oscillating) if self.variables else ()

    def count_matching(self, pattern: "dict[int, int]") -> int:
        """How many of the attractor's states give every variable v the value pattern[v] (exact)."""
        if not pattern:
            return self.size
        if any(self.stable[v] >= 0 and self.stable[v] != val for v, val in pattern.items()):
            return 0
        if all(self.stable[v] >= 0 for v in pattern):
            return self.size
        if self._vertices is not None:
            sub = self._graph.mk_subspace_vertices({_var_name(v): bool(val) for v, val in pattern.items()})
            return int(self._vertices.intersect(sub).cardinality())
        idx = np.fromiter(pattern, dtype=np.int64)
        val = np.fromiter(pattern.values(), dtype=np.uint8)
        hits = int((self.states[:, idx] == val).all(axis=1).sum())
        return hits if self.complete else round(hits * self.size / len(self.states))

    def contains(self, states: np.ndarray) -> np.ndarray:
        """(B,) bool: which of these (B, n_vars) states belong to the attractor."""
        states = np.atleast_2d(states)
        ok = ((states == self.stable[None, :]) | (self.stable[None, :] < 0)).all(axis=1)
        if self.is_fixed_point or not ok.any():
            return ok
        if self.complete:
            known = {s.tobytes() for s in self.states}
            return ok & np.array([s.tobytes() in known for s in states])
        if self._vertices is None:  # unpickled: the stable pattern is all that is left
            return ok
        out = ok.copy()
        for b in np.flatnonzero(ok):
            point = self._graph.mk_subspace_vertices({_var_name(v): bool(x) for v, x in enumerate(states[b])})
            out[b] = not self._vertices.intersect(point).is_empty()
        return out

    def on(self, genes: "tuple[str, ...] | None" = None) -> list[str]:
        """Variables on in every state (the stable on-variables), by name."""
        names = genes or self.variables
        return [names[v] for v in np.flatnonzero(self.stable == 1)]

    def key(self) -> bytes:
        """Identity across searches: stable pattern, size and states (a seeded sample for large ones)."""
        return self.stable.tobytes() + str(self.size).encode() + self.states.tobytes()

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_vertices"] = state["_graph"] = None  # AEON objects do not pickle
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)


# ---- AEON bridge ------------------------------------------------------------------------


def _var_name(v: int) -> str:
    # Zero-padded so that AEON's alphabetical variable order is the network's order.
    return f"v{v:05d}"


def _rename(node: Node, index: dict[str, int]) -> Node:
    if node.op == "var":
        return Node("var", name=_var_name(index[node.name]))
    return Node(node.op, tuple(_rename(a, index) for a in node.args), node.name, node.value)


def _shannon(table: np.ndarray, inputs: list[int]) -> str:
    """An expression of a truth table (bit j of the index = inputs[j]) by Shannon expansion."""
    if (table == table[0]).all():
        return "true" if table[0] else "false"
    half = len(table) // 2  # the top input splits the table in halves
    low, high = table[:half], table[half:]
    x = _var_name(inputs[-1])
    if np.array_equal(low, high):
        return _shannon(low, inputs[:-1])
    lo, hi = _shannon(low, inputs[:-1]), _shannon(high, inputs[:-1])
    return f"(({x} & {hi}) | (!{x} & {lo}))"


def _update_text(network: BooleanNetwork, g: int, index: dict[str, int]) -> str:
    """Gene g's rule for AEON: its own text when that is what the table says, else the table.

    Tables and texts differ after `without_edges` (an edge knockout rewrites the table only).
    """
    k = int(network.n_inputs[g])
    ins = [int(i) for i in network.inputs[g, :k]]
    table = network.tables[g, : 1 << k]
    node = parse_rule(network.rules[g], where=f"rule of {network.genes[g]}")
    names = [network.genes[i] for i in ins]
    try:
        same = np.array_equal(truth_table(node, names), table)
    except (KeyError, UserInputError):
        same = False
    if same:
        return to_text(_rename(node, index))
    return _shannon(table, ins)


@functools.lru_cache(maxsize=16)
def _aeon_graph(network: BooleanNetwork, fixed: tuple[tuple[int, int], ...]):
    """AEON AsynchronousGraph of the network with each (variable, value) in `fixed` constant."""
    import biodivine_aeon as ba

    index = {g: i for i, g in enumerate(network.genes)}
    const = dict(fixed)
    lines = ["targets, factors"]
    for g in range(network.n_genes):
        text = ("true" if const[g] else "false") if g in const else _update_text(network, g, index)
        lines.append(f"{_var_name(g)}, {text}")
    # repair_graph: a regulator that a rule names but does not depend on (SBML exports have them) is dropped.
    bn = ba.BooleanNetwork.from_bnet("\n".join(lines) + "\n", repair_graph=True)
    names = [_var_name(g) for g in range(network.n_genes)]
    if list(bn.variable_names()) != names:
        raise RuntimeError("AEON reordered the network's variables")  # the zero padding guards this
    return ba.AsynchronousGraph(bn)


def _to_attractor(network: BooleanNetwork, graph, colored, limit: int, seed: int = 0) -> Attractor:
    vertices = colored.vertices()
    size = int(vertices.cardinality())
    n = network.n_genes
    stable = np.full(n, -1, dtype=np.int8)
    for name, value in vertices.enclosing_named_subspace().items():
        stable[int(name[1:])] = int(bool(value))
    if size <= limit:
        rows = [m.values() for m in vertices.items()]
        complete = True
    else:
        rows, seen = [], set()
        sampler = iter(vertices.sample_items(seed=seed))
        for _ in range(limit * 4):  # uniform with replacement: drop repeats
            row = tuple(next(sampler).values())
            if row not in seen:
                seen.add(row)
                rows.append(row)
            if len(rows) == limit:
                break
        complete = False
    states = np.array(rows, dtype=np.uint8).reshape(len(rows), n)
    order = np.lexsort(states.T[::-1]) if len(states) > 1 else np.arange(len(states))
    return Attractor(
        states=states[order], size=size, stable=stable, complete=complete,
        variables=network.genes, _vertices=vertices, _graph=graph,
    )


@functools.lru_cache(maxsize=16)
def _attractors_and_basins(network: BooleanNetwork, fixed: tuple[tuple[int, int], ...], limit: int):
    import biodivine_aeon as ba

    graph = _aeon_graph(network, fixed)
    found = ba.Attractors.attractors({"graph": graph, "solution_count": MAX_ATTRACTORS + 1})
    if len(found) > MAX_ATTRACTORS:
        raise UserInputError(
            f"more than {MAX_ATTRACTORS} attractors with {len(fixed)} variables fixed; fix more inputs (a condition)"
        )
    out = []
    for colored in found:
        out.append((_to_attractor(network, graph, colored, limit), ba.Reachability.reach_bwd(graph, colored)))
    out.sort(key=lambda ab: tuple(ab[0].states[0]))
    return graph, out


def _fixed_items(network: BooleanNetwork, fixed: "dict[int | str, int]") -> tuple[tuple[int, int], ...]:
    items: dict[int, int] = {}
    for key, value in fixed.items():
        v = network.gene_index(key) if isinstance(key, str) else int(key)
        if not 0 <= v < network.n_genes:
            raise choices_error("variable index", key, [f"0..{network.n_genes - 1}"])
        if int(value) not in (0, 1):
            raise UserInputError(f"fixed value of {network.genes[v]} must be 0 or 1, got {value!r}")
        items[v] = int(value)
    return tuple(sorted(items.items()))


def all_attractors(network: BooleanNetwork, fixed: "dict[int | str, int] | None" = None, limit: int = DEFAULT_LIMIT) -> list[Attractor]:
    """Every asynchronous attractor of the state space with `fixed` variables (name or index -> 0/1) held constant.

    Constant genes (inputs, rule `x = x`) that `fixed` does not name are free: the answer
    spans all their values.
    """
    _, pairs = _attractors_and_basins(network, _fixed_items(network, fixed or {}), limit)
    return [a for a, _ in pairs]


def reachable_attractors(
    network: BooleanNetwork,
    start_state: np.ndarray,
    pins_mask: "np.ndarray | None" = None,
    pins_value: "np.ndarray | None" = None,
    scheme: str = "async",
    limit: int = DEFAULT_LIMIT,
) -> list[Attractor]:
    """The attractors reachable from `start_state` (bits) with the pinned variables held.

    Pins apply to the start state first (as in the simulator). Under "priority" these are the
    general asynchronous attractors (see the module docstring).
    """
    if scheme not in UPDATE_SCHEMES:
        raise choices_error("update scheme", scheme, UPDATE_SCHEMES)
    n = network.n_genes
    start = np.asarray(start_state, dtype=np.uint8).reshape(n).copy()
    mask = np.zeros(n, dtype=bool) if pins_mask is None else np.asarray(pins_mask, dtype=bool).reshape(n)
    if mask.any():
        start[mask] = np.asarray(pins_value, dtype=np.uint8).reshape(n)[mask]
    if scheme == "sync":
        return [_sync_attractor(network, start, mask)]
    fixed = {int(v): int(start[v]) for v in np.flatnonzero(mask)}
    for g in network.constant_genes:  # they never change: fixing them shrinks the search
        fixed.setdefault(network.gene_index(g), int(start[network.gene_index(g)]))
    graph, pairs = _attractors_and_basins(network, tuple(sorted(fixed.items())), limit)
    point = graph.mk_subspace({_var_name(v): bool(x) for v, x in enumerate(start)})
    return [a for a, basin in pairs if not basin.intersect(point).is_empty()]


def _sync_attractor(network: BooleanNetwork, start: np.ndarray, mask: np.ndarray) -> Attractor:
    """Synchronous updating is deterministic: follow the trajectory until a state repeats."""
    seen: dict[bytes, int] = {}
    trajectory: list[np.ndarray] = []
    state = start
    value = start.copy()
    while state.tobytes() not in seen:
        if len(trajectory) >= SYNC_MAX_STEPS:
            raise UserInputError(f"synchronous trajectory longer than {SYNC_MAX_STEPS} steps without repeating")
        seen[state.tobytes()] = len(trajectory)
        trajectory.append(state)
        nxt = network.sync_update(state[None, :])[0]
        state = np.where(mask, value, nxt).astype(np.uint8)
    cycle = np.array(trajectory[seen[state.tobytes()]:], dtype=np.uint8)
    stable = np.where((cycle == cycle[0]).all(axis=0), cycle[0], -1).astype(np.int8)
    order = np.lexsort(cycle.T[::-1]) if len(cycle) > 1 else np.arange(1)
    return Attractor(states=cycle[order], size=len(cycle), stable=stable, complete=True, variables=network.genes)
