"""A world: a gene network plus named fates, start states and stages; loads by name or path."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from envs.errors import UserInputError, choices_error
from envs.files import atomic_write_text
from envs.formats import read_network
from envs.network import (
    EDGE_KNOCKOUT,
    KNOCKOUT,
    LEVEL_PREFIX,
    OVEREXPRESSION,
    UPDATE_SCHEMES,
    BooleanNetwork,
    normalize_any_kind,
)

ABERRANT = "aberrant"
OTHER = ABERRANT  # the label of a state that matches no fate
DONT_CARE = -1
# A start named `attractor:FATE` starts the cell on an attractor of that fate (reprogramming).
ATTRACTOR_START = "attractor:"
# Reachable states searched for an attractor start before falling back to simulation.
ATTRACTOR_START_STATES = 1 << 18
ATTRACTOR_START_CELLS = 256
_KIND_TEXT = {KNOCKOUT: "KO", OVEREXPRESSION: "OE", EDGE_KNOCKOUT: "cut"}


@dataclass(frozen=True, eq=False)
class World:
    """Everything a simulation needs, as plain arrays and names.

    The network's variables are bits. A user-level gene is one variable, or several for
    a multi-valued gene (`gene_vars`, in thermometer order: bit j on means level > j, the
    `_b1`/`_b2` convention of Booleanized models). Perturbations, observations and
    reports speak of genes; the simulator works on bits.

    `markers[f, v]` is 1/0 where fate f requires variable v on/off, -1 where it does not
    care: a state is fate f only if every defining marker matches (ties go to the fate
    with more markers, then to the first). A state that matches no fate is `aberrant`
    and never counts as a target. `signatures[f, v]` adds informative genes (shown, used
    for shaping and by the fate head of the GNN), never decisive.
    """

    name: str
    network: BooleanNetwork
    fates: tuple[str, ...]
    markers: np.ndarray = field(repr=False)
    start_states: dict[str, np.ndarray] = field(repr=False)
    signatures: "np.ndarray | None" = field(default=None, repr=False)
    default_start: str = ""
    stages: tuple[str, ...] = ()
    description: str = ""
    source: str = "built-in"
    gene_names: tuple[str, ...] = ()
    gene_vars: tuple[tuple[int, ...], ...] = ()
    conditions: dict[str, dict[str, int]] = field(default_factory=dict, repr=False)
    default_condition: str = ""
    scheme: str = "async"
    # Background mutations baked into `network` (constant rules, edges cut): (gene or
    # SRC->DST, canonical kind), in the order given; see `with_background`.
    background: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        n_vars = self.network.n_genes
        if self.markers.shape != (len(self.fates), n_vars):
            raise UserInputError(f"world {self.name}: markers must be (fates, variables)")
        if self.signatures is None:
            object.__setattr__(self, "signatures", self.markers.copy())
        if not self.start_states:
            raise UserInputError(f"world {self.name}: at least one start state is needed")
        if not self.default_start:
            object.__setattr__(self, "default_start", next(iter(self.start_states)))
        if not self.gene_names:
            object.__setattr__(self, "gene_names", self.network.genes)
            object.__setattr__(self, "gene_vars", tuple((v,) for v in range(n_vars)))
        if self.conditions and not self.default_condition:
            object.__setattr__(self, "default_condition", next(iter(self.conditions)))

    # ---- genes and variables -------------------------------------------------------------

    @property
    def genes(self) -> tuple[str, ...]:
        """User-level genes (a multi-valued gene is one gene)."""
        return self.gene_names

    @property
    def n_genes(self) -> int:
        return len(self.gene_names)

    @property
    def variables(self) -> tuple[str, ...]:
        """The network's Boolean variables (bits)."""
        return self.network.genes

    @functools.cached_property
    def is_multivalued(self) -> bool:
        return any(len(v) > 1 for v in self.gene_vars)

    def gene_index(self, gene: str) -> int:
        try:
            return self.gene_names.index(gene)
        except ValueError:
            raise choices_error(f"gene of world {self.name!r}", gene, self.gene_names) from None

    def check_max_perturb(self, k, minimum: int = 1, what: str = "max_perturb") -> int:
        """The one range check of MAX_PERTURB: an integer in minimum..genes (one pin per gene;
        the environment needs at least 1, the oracle also takes 0)."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not minimum <= k <= self.n_genes:
            raise UserInputError(
                f"{what} must be an integer in {minimum}..{self.n_genes} (one perturbation per gene of world "
                f"{self.name}), got {k!r}"
            )
        return int(k)

    def max_level(self, gene: "int | str") -> int:
        g = gene if isinstance(gene, (int, np.integer)) else self.gene_index(gene)
        return len(self.gene_vars[g])

    @functools.cached_property
    def level_matrix(self) -> np.ndarray:
        """(genes, variables) 0/1: a gene's level is the sum of its bits."""
        m = np.zeros((self.n_genes, self.network.n_genes), dtype=np.float32)
        for g, vs in enumerate(self.gene_vars):
            m[g, list(vs)] = 1
        return m

    def gene_levels(self, states: np.ndarray) -> np.ndarray:
        """(B, variables) bits -> (B, genes) levels."""
        states = np.atleast_2d(states)
        if not self.is_multivalued:
            return states
        return (states @ self.level_matrix.T).astype(np.int64)

    def gene_edges(self) -> list[tuple[str, str, int]]:
        """Regulator -> target edges between genes (bits of one gene merged), with signs."""
        owner = {self.network.genes[v]: self.gene_names[g] for g, vs in enumerate(self.gene_vars) for v in vs}
        merged: dict[tuple[str, str], int] = {}
        for src, dst, sign in self.network.edges:
            key = (owner[src], owner[dst])
            if key[0] == key[1] and src != dst and self.is_multivalued:
                continue  # the thermometer coupling of one gene's own bits
            merged[key] = sign if key not in merged or merged[key] == sign else 0
        return [(s, t, sign) for (s, t), sign in merged.items()]

    def edge_index(self) -> tuple[np.ndarray, np.ndarray]:
        """(2, E) regulator -> target gene indices and (E,) signs, for graph neural networks."""
        edges = self.gene_edges()
        if not edges:
            return np.zeros((2, 0), dtype=np.int64), np.zeros(0, dtype=np.float32)
        idx = {g: i for i, g in enumerate(self.gene_names)}
        pairs = np.array([[idx[s], idx[t]] for s, t, _ in edges], dtype=np.int64).T
        return pairs, np.array([sign for *_, sign in edges], dtype=np.float32)

    @property
    def inputs(self) -> tuple[str, ...]:
        """Genes whose every bit is constant (rule `x = x` or no rule): set by a condition."""
        const = set(self.network.constant_genes)
        return tuple(
            g for g, vs in zip(self.gene_names, self.gene_vars) if all(self.network.genes[v] in const for v in vs)
        )

    def level_bits(self, gene: int, level: int) -> list[tuple[int, int]]:
        """(variable, value) pairs that set gene `gene` to `level` (thermometer code)."""
        top = len(self.gene_vars[gene])
        if not 0 <= level <= top:
            raise UserInputError(
                f"level {level} of gene {self.gene_names[gene]} is out of range; valid levels: 0..{top}"
            )
        return [(v, int(j < level)) for j, v in enumerate(self.gene_vars[gene])]

    # ---- fates ---------------------------------------------------------------------------

    @property
    def fate_labels(self) -> tuple[str, ...]:
        """Fate names plus `aberrant`, in classification index order."""
        return self.fates + (ABERRANT,)

    def fate_index(self, fate: str) -> int:
        if fate not in self.fates:
            raise choices_error(f"fate of world {self.name!r}", fate, self.fates)
        return self.fates.index(fate)

    @functools.cached_property
    def care(self) -> np.ndarray:
        """(F, variables) the variables each fate's markers specify."""
        return self.markers != DONT_CARE

    @functools.cached_property
    def _marker_rank(self) -> np.ndarray:
        # More markers first, then declaration order.
        f = len(self.fates)
        return self.care.sum(axis=1) * (f + 1) + (f - np.arange(f))

    def classify(self, states: np.ndarray) -> np.ndarray:
        """Fate index per state; len(fates) means `aberrant` (no fate's markers all match)."""
        states = np.atleast_2d(states)
        ok = ((states[:, None, :] == self.markers[None, :, :]) | ~self.care[None]).all(axis=2)
        score = np.where(ok, self._marker_rank[None, :], -1)
        best = score.argmax(axis=1)
        return np.where(ok.any(axis=1), best, len(self.fates))

    def agreement(self, states: np.ndarray) -> np.ndarray:
        """(B, F) fraction of each fate's signature genes (markers and informative) matched."""
        sig = self.signatures
        care = sig != DONT_CARE
        match = (np.atleast_2d(states)[:, None, :] == sig[None, :, :]) & care[None]
        return match.sum(axis=2) / np.maximum(care.sum(axis=1), 1)[None, :]

    @functools.cached_property
    def gene_signatures(self) -> np.ndarray:
        """(F, genes) in {-1, 0, 1}: a gene's signature is on where any of its bits must be on."""
        out = np.full((len(self.fates), self.n_genes), DONT_CARE, dtype=np.int8)
        for g, vs in enumerate(self.gene_vars):
            sig = self.signatures[:, list(vs)]
            out[(sig == 0).any(axis=1), g] = 0
            out[(sig == 1).any(axis=1), g] = 1
        return out

    # ---- starts and conditions -------------------------------------------------------------

    def condition_names(self) -> list[str]:
        return list(self.conditions)

    def check_condition(self, condition: "str | None") -> "str | None":
        """The condition's name (the default when None); None for a world without conditions."""
        if condition is None:
            return self.default_condition or None
        if condition not in self.conditions:
            raise choices_error(f"input condition of world {self.name!r}", condition, list(self.conditions) or ["(none)"])
        return condition

    def start_state(self, name: str | None = None, condition: str | None = None) -> np.ndarray:
        """The start state's bits, with the inputs set by `condition` (default: the world's)
        and the background mutations forced. `attractor:FATE` is an attractor start, see
        `attractor_start`."""
        name = name or self.default_start
        if name.startswith(ATTRACTOR_START):
            return self.attractor_start(name[len(ATTRACTOR_START):], condition)
        if name not in self.start_states:
            raise choices_error(
                f"start state of world {self.name!r}", name, list(self.start_states) + [f"{ATTRACTOR_START}<fate>"]
            )
        state = self.start_states[name].copy()
        condition = self.check_condition(condition)
        if condition is not None:
            for gene, level in self.conditions[condition].items():
                for v, value in self.level_bits(self.gene_index(gene), level):
                    state[v] = value
        mask, value = self._background_bits
        state[mask] = value[mask]
        return state

    def start_names(self, start: "str | list[str] | None") -> list[str]:
        """A start name, a list of them, or None (the default start) as a checked list.

        An `attractor:FATE` name is checked for its fate only; which attractor it is
        depends on the condition and is resolved by `start_state`."""
        names = [self.default_start] if start is None else ([start] if isinstance(start, str) else list(start))
        for name in names:
            if isinstance(name, str) and name.startswith(ATTRACTOR_START):
                self.fate_index(name[len(ATTRACTOR_START):])
            else:
                self.start_state(name)
        return names

    def attractor_start(self, fate: str, condition: str | None = None) -> np.ndarray:
        """A state on an attractor of `fate`, for reprogramming tasks (start `attractor:FATE`).

        Which one, deterministically: the world's start states are tried in order, the
        default first, each under `condition` (and the background); the first from which
        the unperturbed asynchronous dynamics reaches an attractor of `fate` gives it. Of
        that start's reachable attractor states whose fate is `fate`, a fixed point is
        preferred to a state of a cyclic attractor, then the smallest state code (gene g
        is bit g). Exact over the async chain up to ATTRACTOR_START_STATES reachable
        states; past that, the fixed points that ATTRACTOR_START_CELLS simulated cells
        (seed 0) end on. Cached per (fate, condition).
        """
        f = self.fate_index(fate)
        condition = self.check_condition(condition)
        cache = self.__dict__.setdefault("_attractor_starts", {})
        key = (fate, condition)
        if key not in cache:
            reached: list[str] = []
            found = None
            for name in [self.default_start] + [k for k in self.start_states if k != self.default_start]:
                states, fixed = self._reachable_attractor_states(self.start_state(name, condition))
                fates = self.classify(states) if len(states) else np.zeros(0, dtype=np.int64)
                reached += [self.fate_labels[i] for i in np.unique(fates)]
                hit = np.flatnonzero(fates == f)
                if hit.size:
                    # fixed points first, then the smallest code (lexicographic from the last bit)
                    order = np.lexsort(tuple(states[hit].T) + (~fixed[hit],))
                    found = states[hit[order[0]]].copy()
                    break
            if found is None:
                shown = sorted(set(reached), key=self.fate_labels.index)
                under = f" under condition {condition!r}" if condition else ""
                raise UserInputError(
                    f"no attractor of fate {fate!r} is reachable from the starts of world {self.name!r}{under}; "
                    f"reachable fates: {', '.join(shown) or 'none'}"
                )
            cache[key] = found
        return cache[key].copy()

    def _reachable_attractor_states(self, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(states, is_fixed_point) of the attractor states reachable from `start`, unperturbed."""
        from envs.markov import StateSpaceTooLarge, attractor_codes, reachable_chain
        from envs.network import codes_to_states, states_to_codes

        n = self.network.n_genes
        try:
            chain = reachable_chain(self.network, int(states_to_codes(start[None, :])[0]), max_states=ATTRACTOR_START_STATES)
            codes, fixed = attractor_codes(chain)
            return codes_to_states(codes, n), fixed
        except StateSpaceTooLarge:
            rng = np.random.default_rng(0)
            final = self.network.run_to_attractor(np.repeat(start[None, :], ATTRACTOR_START_CELLS, axis=0), rng)
            final = np.unique(final[self.network.is_fixed_point(final)], axis=0)
            return final, np.ones(len(final), dtype=bool)

    # ---- background mutations --------------------------------------------------------------

    def with_background(self, mutations) -> "World":
        """This world with background mutations fixed: a rescue task's mutant cell.

        `mutations`: one string or a sequence of strings in the CLI's perturbation syntax
        (`GENE=ko`, `GENE=oe`, `GENE=2` for a level, `SRC->DST=cut`) or (name, kind) pairs. A
        mutated gene's rules become constants (every start state is forced too), a cut edge is
        removed from the rules; the result is a plain World, so the simulator and oracles work
        on it unchanged. Its name says what was mutated (`tcell+Notch1=KO`), so caches keyed by
        name do not collide. Background genes cannot be perturbed in the environment.
        """
        pairs = [_parse_mutation(m) for m in ([mutations] if isinstance(mutations, str) else mutations)]
        if not pairs:
            return self
        pairs = self.check_perturbations(list(self.background) + pairs)[len(self.background):]
        mask, value, edges = self.pin_bits(pairs)
        network = self.network_for(edges)
        tables, inputs, n_inputs = network.tables.copy(), network.inputs.copy(), network.n_inputs.copy()
        rules = list(network.rules)
        names = set()
        for v in np.flatnonzero(mask):
            tables[v] = value[v]
            inputs[v] = network.n_genes  # the constant-0 padding column: no regulators
            n_inputs[v] = 0
            rules[v] = str(int(value[v]))
            names.add(network.genes[v])
        network = replace(
            network, rules=tuple(rules), tables=tables, inputs=inputs, n_inputs=n_inputs,
            edges=tuple(e for e in network.edges if e[1] not in names),
        )
        starts = {k: np.where(mask, value, s).astype(np.uint8) for k, s in self.start_states.items()}
        label = "+".join(f"{g}={_KIND_TEXT.get(k, k[len(LEVEL_PREFIX):] if k.startswith(LEVEL_PREFIX) else k)}"
                         for g, k in pairs)
        return replace(self, name=f"{self.name}+{label}", network=network, start_states=starts,
                       background=self.background + tuple(pairs))

    @functools.cached_property
    def _background_bits(self) -> tuple[np.ndarray, np.ndarray]:
        mask, value, _ = self.pin_bits([p for p in self.background if p[1] != EDGE_KNOCKOUT])
        return mask, value

    @functools.cached_property
    def background_genes(self) -> tuple[str, ...]:
        """Genes fixed by background mutations (not perturbable)."""
        return tuple(g for g, k in self.background if k != EDGE_KNOCKOUT)

    @functools.cached_property
    def perturbable(self) -> tuple[int, ...]:
        """Indices of the genes a perturbation may touch: all but the background's (a rescue set that
        undid the mutation would not be a rescue)."""
        fixed = set(self.background_genes)
        return tuple(i for i, g in enumerate(self.gene_names) if g not in fixed)

    # ---- perturbations -----------------------------------------------------------------------

    def check_perturbations(self, perturbations) -> list[tuple[str, str]]:
        """Canonical (gene, kind) pairs: genes and kinds checked, one perturbation per gene.

        Kinds: knockout, overexpression (the top level), `levelL` (a multi-valued gene held
        at level L) and edge_knockout, whose name is `SRC->DST`.
        """
        out: list[tuple[str, str]] = []
        seen: set[str] = set()
        for name, kind in perturbations:
            kind = normalize_any_kind(kind)
            if kind == EDGE_KNOCKOUT:
                self.edge_pairs(name)
            else:
                g = self.gene_index(name)
                if kind.startswith(LEVEL_PREFIX):
                    self.level_bits(g, int(kind[len(LEVEL_PREFIX):]))
            if name in seen:
                raise UserInputError(f"{name!r} is perturbed twice; at most one perturbation per gene or edge")
            seen.add(name)
            out.append((name, kind))
        return out

    def edge_pairs(self, edge: str) -> list[tuple[int, int]]:
        """(src variable, dst variable) pairs of an edge `SRC->DST` between genes."""
        if "->" not in edge:
            raise UserInputError(f"bad edge {edge!r}; write REGULATOR->TARGET, e.g. Nrarp->Notch_gene")
        src, dst = (part.strip() for part in edge.split("->", 1))
        s, d = self.gene_index(src), self.gene_index(dst)
        regs = self.network.inputs
        pairs = [
            (a, b) for b in self.gene_vars[d] for a in self.gene_vars[s]
            if a in regs[b, : self.network.n_inputs[b]]
        ]
        if not pairs:
            regulators = sorted({s_ for s_, t, _ in self.gene_edges() if t == dst})
            raise UserInputError(f"{src} does not regulate {dst}; regulators of {dst}: {', '.join(regulators) or 'none'}")
        return pairs

    def pin_bits(self, perturbations) -> tuple[np.ndarray, np.ndarray, tuple]:
        """(mask, value) over variables, and the edge knockouts, of a checked perturbation set."""
        n = self.network.n_genes
        mask = np.zeros(n, dtype=bool)
        value = np.zeros(n, dtype=np.uint8)
        edges: list[tuple[int, int]] = []
        for name, kind in perturbations:
            if kind == EDGE_KNOCKOUT:
                edges += self.edge_pairs(name)
                continue
            g = self.gene_index(name)
            level = 0 if kind == KNOCKOUT else len(self.gene_vars[g]) if kind == OVEREXPRESSION else int(kind[len(LEVEL_PREFIX):])
            for v, bit in self.level_bits(g, level):
                mask[v] = True
                value[v] = bit
        return mask, value, tuple(sorted(set(edges)))

    def network_for(self, edges: tuple) -> BooleanNetwork:
        """The network with these edge knockouts applied (cached; the base network for none)."""
        if not edges:
            return self.network
        cache = self.__dict__.setdefault("_edge_networks", {})
        if edges not in cache:
            cache[edges] = self.network.without_edges(edges)
        return cache[edges]

    # ---- description ----------------------------------------------------------------------

    def _named(self, row: np.ndarray) -> dict[str, int]:
        """A (variables,) marker row as {gene: level}: 0 = off, L = at least level L."""
        out: dict[str, int] = {}
        for g, vs in enumerate(self.gene_vars):
            vals = row[list(vs)]
            on = np.flatnonzero(vals == 1)
            if on.size:
                out[self.gene_names[g]] = int(on.max()) + 1
            elif vals[0] == 0:
                out[self.gene_names[g]] = 0
        return out

    def summary(self) -> dict:
        """JSON-ready description for `tournament worlds`."""
        informative = {}
        for i, f in enumerate(self.fates):
            extra = np.where(self.care[i], DONT_CARE, self.signatures[i])
            informative[f] = self._named(extra)
        return {
            "name": self.name,
            "source": self.source,
            "genes": list(self.genes),
            "levels": {g: len(vs) for g, vs in zip(self.gene_names, self.gene_vars) if len(vs) > 1},
            "inputs": list(self.inputs),
            "fates": {f: self._named(self.markers[i]) for i, f in enumerate(self.fates)},
            "signatures": {f: v for f, v in informative.items() if v},
            "stages": list(self.stages),
            "start_states": {k: self._levels_on(s) for k, s in self.start_states.items()},
            "default_start": self.default_start,
            "conditions": {k: dict(v) for k, v in self.conditions.items()},
            "default_condition": self.default_condition,
            "scheme": self.scheme,
            "description": self.description.strip().splitlines()[0] if self.description else "",
        }

    def _levels_on(self, state: np.ndarray) -> "list[str] | dict[str, int]":
        levels = self.gene_levels(state[None, :])[0]
        if not self.is_multivalued:
            return [g for g, v in zip(self.gene_names, levels) if v]
        return {g: int(v) for g, v in zip(self.gene_names, levels) if v}


def _parse_mutation(item) -> tuple[str, str]:
    """`GENE=ko` (or a (name, kind) pair) as (name, canonical kind)."""
    if not isinstance(item, str):
        name, kind = item
        return str(name), normalize_any_kind(kind)
    if "=" not in item:
        raise UserInputError(f"bad background mutation {item!r}; write GENE=ko, GENE=oe, GENE=2 (a level) or SRC->DST=cut")
    name, kind = item.rsplit("=", 1)
    return name.strip(), normalize_any_kind(kind.strip())


def make_world(
    name: str,
    network: BooleanNetwork,
    fates: dict[str, dict[str, int]],
    start_states: dict[str, "list[str] | dict[str, int]"],
    *,
    signatures: "dict[str, dict[str, int]] | None" = None,
    genes: "dict[str, list[str]] | None" = None,
    conditions: "dict[str, dict[str, int]] | None" = None,
    default_condition: str = "",
    default_start: str = "",
    stages: "tuple[str, ...] | list[str]" = (),
    scheme: str = "async",
    description: str = "",
    source: str = "built-in",
) -> World:
    """Build a World from gene-name dictionaries.

    `fates`: fate -> defining markers {gene: level} (0 = off, 1 = on, L = at least level L);
    `signatures`: fate -> informative genes, same form; `start_states`: name -> genes on
    (a list; a multi-valued gene at its top level) or {gene: level}; `genes`: the
    multi-valued genes as {gene: [bit variables, lowest level first]} (every other
    variable is a gene of its own); `conditions`: name -> {input gene: level}.
    """
    if scheme not in UPDATE_SCHEMES:
        raise choices_error("update scheme", scheme, UPDATE_SCHEMES)
    var_index = {g: i for i, g in enumerate(network.genes)}
    gene_names, gene_vars = _gene_groups(network, genes or {}, var_index)
    shell = World(
        name=name, network=network, fates=tuple(fates),
        markers=np.full((len(fates), network.n_genes), DONT_CARE, dtype=np.int8),
        start_states={"_": np.zeros(network.n_genes, dtype=np.uint8)},
        gene_names=gene_names, gene_vars=gene_vars,
    )

    def marker_rows(spec: dict[str, dict[str, int]], what: str) -> np.ndarray:
        rows = np.full((len(fates), network.n_genes), DONT_CARE, dtype=np.int8)
        for fate, genes_ in spec.items():
            if fate not in fates:
                raise choices_error(f"fate in {what}", fate, list(fates))
            f = list(fates).index(fate)
            for gene, level in genes_.items():
                g = _gene_of(shell, gene, f"{what} of fate {fate!r}")
                level = _level_value(shell, g, level, f"{what} of fate {fate!r}")
                vs = gene_vars[g]
                if level == 0:
                    rows[f, vs[0]] = 0
                else:
                    rows[f, vs[level - 1]] = 1
        return rows

    markers = marker_rows(fates, "markers")
    extra = marker_rows(signatures or {}, "signature")
    sig = np.where(markers != DONT_CARE, markers, extra).astype(np.int8)
    starts: dict[str, np.ndarray] = {}
    for key, on in start_states.items():
        state = np.zeros(network.n_genes, dtype=np.uint8)
        items = on.items() if isinstance(on, dict) else ((g, None) for g in on)
        for gene, level in items:
            g = _gene_of(shell, gene, f"start state {key!r}")
            level = len(gene_vars[g]) if level is None else _level_value(shell, g, level, f"start state {key!r}")
            for v, bit in shell.level_bits(g, level):
                state[v] = bit
        starts[key] = state
    for stage in stages:
        if stage not in fates:
            raise choices_error("stage (must be a fate)", stage, list(fates))
    checked_conditions: dict[str, dict[str, int]] = {}
    inputs = shell.inputs
    for cname, values in (conditions or {}).items():
        checked: dict[str, int] = {}
        for gene, level in values.items():
            g = _gene_of(shell, gene, f"condition {cname!r}")
            if gene not in inputs:
                raise choices_error(f"input gene in condition {cname!r} (it must be an input)", gene, list(inputs) or ["(no inputs)"])
            checked[gene] = _level_value(shell, g, level, f"condition {cname!r}")
        checked_conditions[cname] = checked
    if default_condition and default_condition not in checked_conditions:
        raise choices_error("default condition", default_condition, list(checked_conditions))
    return World(
        name=name,
        network=network,
        fates=tuple(fates),
        markers=markers,
        signatures=sig,
        start_states=starts,
        default_start=default_start,
        stages=tuple(stages),
        description=description,
        source=source,
        gene_names=gene_names,
        gene_vars=gene_vars,
        conditions=checked_conditions,
        default_condition=default_condition,
        scheme=scheme,
    )


def _gene_groups(network: BooleanNetwork, genes: dict[str, list[str]], var_index: dict[str, int]):
    """User-level genes in variable order: a multi-valued gene sits where its first bit is."""
    owner: dict[int, str] = {}
    for gene, bits in genes.items():
        if not bits:
            raise UserInputError(f"multi-valued gene {gene!r} lists no variables")
        for b in bits:
            if b not in var_index:
                raise choices_error(f"variable of multi-valued gene {gene!r}", b, network.genes)
            if var_index[b] in owner:
                raise UserInputError(f"variable {b!r} belongs to two genes: {owner[var_index[b]]!r} and {gene!r}")
            owner[var_index[b]] = gene
    names: list[str] = []
    groups: list[tuple[int, ...]] = []
    for v, var in enumerate(network.genes):
        if v not in owner:
            names.append(var)
            groups.append((v,))
        elif names.count(owner[v]) == 0:
            names.append(owner[v])
            groups.append(tuple(var_index[b] for b in genes[owner[v]]))
    if len(set(names)) != len(names):
        raise UserInputError(f"gene names clash with variable names: {sorted(n for n in names if names.count(n) > 1)}")
    return tuple(names), tuple(groups)


def _gene_of(world: World, gene: str, where: str) -> int:
    if gene not in world.gene_names:
        raise choices_error(f"gene in {where}", gene, world.gene_names)
    return world.gene_names.index(gene)


def _level_value(world: World, g: int, level, where: str) -> int:
    top = len(world.gene_vars[g])
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or not 0 <= int(level) <= top:
        raise UserInputError(
            f"{where}: level {level!r} of gene {world.gene_names[g]} is out of range; valid levels: 0..{top}"
        )
    return int(level)


# ---- files ------------------------------------------------------------------------------

WORLD_FILE = "world.json"


def save_world(world: World, directory: "str | Path") -> Path:
    """Write `<dir>/network.bnet` and `<dir>/world.json` (fates, starts, conditions, genes)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    summary = world.summary()
    meta = {
        "name": world.name,
        "network": "network.bnet",
        "fates": summary["fates"],
        "signatures": summary["signatures"],
        "start_states": summary["start_states"],
        "default_start": world.default_start,
        "stages": list(world.stages),
        "genes": {
            g: [world.variables[v] for v in vs]
            for g, vs in zip(world.gene_names, world.gene_vars) if len(vs) > 1 or g != world.variables[vs[0]]
        },
        "conditions": summary["conditions"],
        "default_condition": world.default_condition,
        "scheme": world.scheme,
        "description": world.description,
    }
    if world.background:
        meta["background"] = [f"{g}={k}" for g, k in world.background]
    if world.network.priority is not None:
        meta["priority"] = {g: int(c) for g, c in zip(world.variables, world.network.priority)}
    atomic_write_text(directory / "network.bnet", world.network.to_bnet())
    atomic_write_text(directory / WORLD_FILE, json.dumps(meta, indent=2) + "\n")
    return directory


WORLD_KEYS = (
    "name", "network", "fates", "signatures", "start_states", "default_start", "stages", "genes",
    "conditions", "default_condition", "scheme", "priority", "description", "background",
)


def read_world(path: "str | Path") -> World:
    """Read a world directory (or its world.json) written by `save_world`, `tournament import` or by hand."""
    path = Path(path)
    meta_path = path / WORLD_FILE if path.is_dir() else path
    if not meta_path.is_file():
        raise UserInputError(f"world file not found: {meta_path}")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{meta_path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    for key in ("network", "fates", "start_states"):
        if key not in meta:
            raise UserInputError(f"{meta_path}: missing key {key!r}")
    if "fate_threshold" in meta:
        raise UserInputError(
            f"{meta_path}: 'fate_threshold' is no longer used: a fate is defined by its markers, which must all "
            "match (remove the key; move genes that should not be decisive to 'signatures')"
        )
    unknown = sorted(set(meta) - set(WORLD_KEYS))
    if unknown:
        raise choices_error(f"key in {meta_path}", unknown[0], WORLD_KEYS)
    network = read_network(meta_path.parent / meta["network"])
    if meta.get("priority"):
        network = network.with_priority(meta["priority"])
    world = make_world(
        meta.get("name", meta_path.parent.name),
        network,
        meta["fates"],
        meta["start_states"],
        signatures=meta.get("signatures") or None,
        genes=meta.get("genes") or None,
        conditions=meta.get("conditions") or None,
        default_condition=meta.get("default_condition", ""),
        default_start=meta.get("default_start", ""),
        stages=meta.get("stages", ()),
        scheme=meta.get("scheme", "async"),
        description=meta.get("description", ""),
        source=str(meta_path.parent),
    )
    if meta.get("background"):
        # The rules already hold the gene mutations (constants); a cut edge lives in the truth
        # tables only, so it is cut again.
        pairs = tuple(world.check_perturbations([_parse_mutation(m) for m in meta["background"]]))
        world = replace(world, network=world.network_for(world.pin_bits(pairs)[2]), background=pairs)
    return world


# ---- loading by name ---------------------------------------------------------------------


def builtin_world_names() -> tuple[str, ...]:
    from envs.worlds import BUILTIN_WORLDS

    return tuple(BUILTIN_WORLDS)


@functools.lru_cache(maxsize=32)
def _load_cached(name: str) -> World:
    from envs.worlds import BUILTIN_WORLDS

    if name in BUILTIN_WORLDS:
        return BUILTIN_WORLDS[name]()
    path = Path(name)
    if name.endswith(".world.yaml"):
        # A recipe: how to import a published model kept in ../shared/data (envs.world_recipe).
        from envs.world_recipe import load_recipe

        return load_recipe(path)
    if path.is_dir() or (path.is_file() and path.suffix == ".json"):
        return read_world(path)
    if path.is_file() or (":" in name and name.split(":", 1)[0].lower() in ("pyboolnet", "cana")):
        # A model file (.bnet, SBML-qual, BooleanNet, ...): imported with defaults, its attractors as fates.
        from envs.importer import import_model

        return import_model(name, n_cells=0).world
    raise choices_error(
        "world", name,
        list(BUILTIN_WORLDS) + ["<path to a world directory or world.json>", "<recipe: NAME.world.yaml>", "<model file: .bnet, .sbml, ...>", "pyboolnet:NAME", "cana:NAME"],
    )


def portable_world_name(name: str) -> str:
    """`name` as any process can load it: a built-in name or a package model as given, a file or
    folder made absolute (Ray Tune runs each trial in its own working directory)."""
    from envs.worlds import BUILTIN_WORLDS

    if name in BUILTIN_WORLDS or not Path(name).exists():
        return name
    return str(Path(name).resolve())


def load_world(name_or_path: "str | Path | World") -> World:
    """A built-in world by name, a world directory / world.json by path, a recipe (`NAME.world.yaml`,
    `envs.world_recipe`), or a model file (imported with defaults: `envs.importer`); Worlds pass through."""
    if isinstance(name_or_path, World):
        return name_or_path
    return _load_cached(str(name_or_path))


def find_worlds(directory: "str | Path") -> list[Path]:
    """World directories below `directory` (those holding a world.json)."""
    root = Path(directory)
    found = (p.parent for p in root.rglob(WORLD_FILE))
    # Hidden folders are skipped: `tournament import` writes into `.NAME.tmp*` before renaming it.
    return sorted(p for p in found if not any(part.startswith(".") for part in p.relative_to(root).parts))
