"""The exact optimum of the steer task over timed policies, by dynamic programming on small worlds.

`envs.oracle` scores perturbation sets applied at time 0. A steer policy may instead wait,
look at the cell and perturb at any stage, and with `pulse_stages` its perturbations end;
this module computes the value of the best such policy exactly, so the tournament can
say how far an agent is from the true optimum, not only from the best time-0 set.

The decision process is the environment's (`envs.cell_fate_env`): at each stage boundary
s = 0..n_stages-1 the policy sees the cell's state, its active pins (with the stages
each pulse has left) and the budget, and adds any set of perturbations within budget on
genes not pinned now and not fixed by the background (perturbation steps take no time in
the env, so one set at once is equivalent to several steps). The cell then advances one
stage: `updates_per_stage` general-asynchronous updates, each picking one of the network's
variables uniformly at random (`BooleanNetwork.run_cell`: a pinned variable's draw changes
nothing), i.e. the one-update transition matrix of the pinned chain applied
`updates_per_stage` times. Pulses count down after each stage and are released at zero.
After the last stage the remaining pulses act for their remaining stages, then the cell
runs to its attractor with only the permanent pins; the terminal value of a state is its
exact absorption probability into the target fate (attractors as `envs.markov` treats
them: a cyclic attractor with several fates is split by its stationary law).

Value V(stage, state, pins, budget) = max over added sets of the expected next value,
computed backwards over every cell state (2**variables of them, hence the cap of
MAX_VARIABLES) and memoized per (stage, pins with their remaining times, budget).
The static optimum is the same recursion with the whole budget spent at stage 0 and no
later action: with permanent pins it equals `envs.oracle.best_perturbations`'s optimum.

The objective is the success probability: perturbation_cost, shaping and invalid-action
penalties are ignored. The absorption probabilities are the infinite-time limit; the
simulator stops a final run after 60 updates per variable, which the tests do not notice
on small worlds.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from envs.errors import UserInputError
from envs.markov import DENSE_SOLVE, stationary, sync_image
from envs.network import PERTURBATION_KINDS, codes_to_states, normalize_kind, normalize_kinds, pin_value, states_to_codes
from envs.world import World, load_world

MAX_VARIABLES = 12
# Rough count of elementary array operations past which a solve is refused: about 1e8 run
# per second on one core (12 variables, max_perturb 2, 4 stages, permanent: 2e9, ~20 s).
MAX_WORK = 1e10
PERMANENT = -1  # the "stages left" of a permanent pin
TIE = 1e-12  # actions within this of the best are ties; the first (fewest perturbations) wins

Pin = tuple[int, int, int]  # (gene index, kind index, stages left or PERMANENT)


@dataclass
class DynamicOptimum:
    """The best timed policy's success probability and the best time-0 set's, same machinery."""

    target: str
    value: float  # best policy (mean over the starts)
    static_value: float  # best set at stage 0, no later action
    first_action: list[tuple[str, str]]  # an optimal set to add at stage 0 (first start)
    static_action: list[tuple[str, str]]  # the best time-0 set (first start)
    method: str
    by_start: dict[str, float] = field(default_factory=dict)
    static_by_start: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "target": self.target,
            "value": self.value,
            "static_value": self.static_value,
            "first_action": [list(p) for p in self.first_action],
            "static_action": [list(p) for p in self.static_action],
            "method": self.method,
            "by_start": self.by_start,
            "static_by_start": self.static_by_start,
        }


class DynamicSolver:
    """V(stage, state, pins, budget) of the steer task on one world; see the module docstring.

    `best_action` is the optimal policy, usable in the environment (`CellFateEnv.active_pins`
    gives its pins argument)."""

    def __init__(
        self,
        world: "World | str",
        target: str,
        max_perturb: int,
        n_stages: int,
        updates_per_stage: int,
        kinds=PERTURBATION_KINDS,
        pulse_stages: "int | None" = None,
        condition: "str | None" = None,
        max_work: float = MAX_WORK,
    ):
        world = load_world(world)
        self.world = world
        self.target = target
        self.target_index = world.fate_index(target)
        self.max_perturb = world.check_max_perturb(max_perturb, minimum=0)
        self.kinds = normalize_kinds(kinds)
        if world.scheme != "async":
            raise UserInputError(f"the dynamic optimum is computed for async updates, not world scheme {world.scheme!r}")
        for what, v in (("n_stages", n_stages), ("updates_per_stage", updates_per_stage)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise UserInputError(f"{what} must be a positive integer, got {v!r}")
        if pulse_stages is not None and (
            isinstance(pulse_stages, bool) or not isinstance(pulse_stages, (int, np.integer)) or pulse_stages < 1
        ):
            raise UserInputError(f"pulse_stages must be None (permanent) or an integer >= 1, got {pulse_stages!r}")
        self.n_stages, self.updates = int(n_stages), int(updates_per_stage)
        self.pulse = None if pulse_stages is None else int(pulse_stages)
        self.condition = world.check_condition(condition)
        n = world.network.n_genes
        if n > MAX_VARIABLES:
            raise UserInputError(
                f"the dynamic optimum enumerates every cell state: at most {MAX_VARIABLES} variables, world "
                f"{world.name} has {n}; use envs.oracle.best_perturbations (time-0 sets) instead"
            )
        fixed = set(world.background_genes)
        self.free = tuple(g for g in range(world.n_genes) if world.genes[g] not in fixed)
        if self.max_perturb > len(self.free):
            raise UserInputError(
                f"max_perturb must be at most {len(self.free)} (genes not fixed by the background), got {max_perturb!r}"
            )
        work = self.work_estimate()
        if work > max_work:
            raise UserInputError(
                f"the dynamic optimum would take about {work:.1e} operations (cap {max_work:.0e}); use fewer "
                "variables, a smaller max_perturb, fewer stages or shorter pulses"
            )
        self.n = n
        self.codes = np.arange(1 << n, dtype=np.int64)
        self.image = sync_image(world.network)(self.codes)
        self.bits = np.int64(1) << np.arange(n, dtype=np.int64)
        self.is_target = world.classify(codes_to_states(self.codes, n)) == self.target_index
        # Per (gene, kind): the variables' mask and pinned value as state-code bits.
        self.move_bits: dict[tuple[int, int], tuple[int, int]] = {}
        for g in range(world.n_genes):
            for k, kind in enumerate(self.kinds):
                level = len(world.gene_vars[g]) if pin_value(kind) else 0
                m = v = 0
                for var, bit in world.level_bits(g, level):
                    m |= 1 << var
                    v |= bit << var
                self.move_bits[(g, k)] = (m, v)
        self._values: dict[tuple, np.ndarray] = {}
        self._next: dict[tuple, np.ndarray] = {}
        self._absorb: dict[tuple[int, int], np.ndarray] = {}
        self._sets: dict[tuple, list[tuple[Pin, ...]]] = {}

    # ---- size ---------------------------------------------------------------------------

    def work_estimate(self) -> float:
        """Rough elementary operations: configurations x (actions x states + stage kernels)."""
        n = self.world.network.n_genes
        states = float(1 << n)
        K = len(self.kinds)
        actions = sum(math.comb(len(self.free), j) * K**j for j in range(self.max_perturb + 1))
        d = 1 if self.pulse is None else min(self.pulse, self.n_stages)
        configs = actions * d ** self.max_perturb
        return self.n_stages * configs * states * (actions + self.updates * n)

    # ---- the chain -----------------------------------------------------------------------

    def _pin_bits(self, pins) -> tuple[int, int]:
        mask = value = 0
        for g, k, _ in pins:
            m, v = self.move_bits[(g, k)]
            mask |= m
            value |= v
        return mask, value

    def _successors(self, mask: int, value: int) -> np.ndarray:
        """(states, variables) the state each variable's update leads to, under the pins."""
        diff = ((self.image & ~np.int64(mask)) | np.int64(value)) ^ self.codes
        return self.codes[:, None] ^ (diff[:, None] & self.bits[None, :])

    def _stage(self, pins, v: np.ndarray) -> np.ndarray:
        """E[v(state after one stage)] for every state: the one-update kernel, `updates` times."""
        succ = self._successors(*self._pin_bits(pins))
        for _ in range(self.updates):
            v = v[succ].mean(axis=1)
        return v

    def _absorption(self, mask: int, value: int) -> np.ndarray:
        """Probability of ending in the target fate from every state consistent with the pins."""
        key = (mask, value)
        hit = self._absorb.get(key)
        if hit is not None:
            return hit
        cons = self.codes[(self.codes & mask) == value]
        m = cons.size
        local = np.full(self.codes.size, -1, dtype=np.int64)
        local[cons] = np.arange(m)
        succ = local[self._successors(mask, value)[cons]]
        rows = np.repeat(np.arange(m), self.n)
        P = sp.csr_matrix((np.full(rows.size, 1.0 / self.n), (rows, succ.ravel())), shape=(m, m))
        n_comp, comp = connected_components(P, directed=True, connection="strong")
        cols = succ.ravel()
        cross = comp[rows] != comp[cols]
        leaves = np.zeros(n_comp, dtype=bool)
        leaves[comp[rows[cross]]] = True
        terminal = ~leaves[comp]
        h = np.zeros(m)
        target = self.is_target[cons]
        for c in np.unique(comp[terminal]):
            members = np.flatnonzero(comp == c)
            if target[members].all() or not target[members].any():
                h[members] = float(target[members[0]])
            else:
                block = P[members][:, members].toarray()
                h[members] = float(stationary(block)[target[members]].sum())
        T = np.flatnonzero(~terminal)
        A = np.flatnonzero(terminal)
        if T.size:
            Q = P[T][:, T]
            rhs = P[T][:, A] @ h[A]
            if T.size <= DENSE_SOLVE:
                h[T] = np.linalg.solve(np.eye(T.size) - Q.toarray(), rhs)
            else:
                h[T] = sp.linalg.spsolve((sp.identity(T.size, format="csc") - Q).tocsc(), rhs)
        out = np.zeros(self.codes.size)
        out[cons] = np.clip(h, 0.0, 1.0)
        self._absorb[key] = out
        return out

    # ---- the recursion -----------------------------------------------------------------------

    @staticmethod
    def _countdown(pins) -> tuple[Pin, ...]:
        return tuple(sorted((g, k, PERMANENT if t == PERMANENT else t - 1) for g, k, t in pins if t != 1))

    def _after(self, stage: int, pins: tuple[Pin, ...], budget: int) -> np.ndarray:
        """E[V(stage + 1, ...)] from every state, with `pins` acting during the stage."""
        key = (stage, pins, budget)
        hit = self._next.get(key)
        if hit is None:
            hit = self._next[key] = self._stage(pins, self.value(stage + 1, self._countdown(pins), budget))
        return hit

    def _action_sets(self, pins: tuple[Pin, ...], budget: int) -> list[tuple[Pin, ...]]:
        """Every set of new pins allowed now, the empty set first, then by size."""
        key = (tuple(g for g, _, _ in pins), budget)
        hit = self._sets.get(key)
        if hit is None:
            busy = set(key[0])
            genes = [g for g in self.free if g not in busy]
            left = PERMANENT if self.pulse is None else self.pulse
            hit = []
            for size in range(min(budget, len(genes)) + 1):
                for chosen in itertools.combinations(genes, size):
                    for ks in itertools.product(range(len(self.kinds)), repeat=size):
                        hit.append(tuple((g, k, left) for g, k in zip(chosen, ks)))
            self._sets[key] = hit
        return hit

    def _q_values(self, stage: int, pins: tuple[Pin, ...], budget: int, sets, codes: np.ndarray) -> np.ndarray:
        """(sets, len(codes)) expected value of adding each set at these states."""
        out = np.empty((len(sets), codes.size))
        for i, new in enumerate(sets):
            mask, value = self._pin_bits(new)
            after = self._after(stage, tuple(sorted(pins + new)), budget - len(new))
            out[i] = after[(codes & ~np.int64(mask)) | np.int64(value)]
        return out

    def value(self, stage: int, pins: tuple[Pin, ...] = (), budget: "int | None" = None) -> np.ndarray:
        """V(stage, state, pins, budget) for every state code (meaningful where the pins hold)."""
        budget = self.max_perturb if budget is None else budget
        pins = tuple(sorted(pins))
        if stage >= self.n_stages:
            budget = 0
        key = (stage, pins, budget)
        hit = self._values.get(key)
        if hit is not None:
            return hit
        if stage >= self.n_stages:
            if any(t != PERMANENT for _, _, t in pins):
                # Pulses left at the end act for their remaining stages, then are gone.
                v = self._stage(pins, self.value(stage + 1, self._countdown(pins), 0))
            else:
                v = self._absorption(*self._pin_bits(pins))
        else:
            v = self._q_values(stage, pins, budget, self._action_sets(pins, budget), self.codes).max(axis=0)
        self._values[key] = v
        return v

    def _pins_of(self, pins: "dict[str, tuple[str, int | None]] | None") -> tuple[Pin, ...]:
        out = []
        for gene, (kind, left) in (pins or {}).items():
            k = self.kinds.index(normalize_kind(kind))
            out.append((self.world.gene_index(gene), k, PERMANENT if left is None else int(left)))
        return tuple(sorted(out))

    def best_action(
        self, stage: int, state: np.ndarray, pins: "dict[str, tuple[str, int | None]] | None" = None,
        budget: "int | None" = None,
    ) -> list[tuple[str, str]]:
        """An optimal set of (gene, kind) to add now; ties go to fewer perturbations.

        `pins`: gene -> (kind, stages left, None when permanent), as `CellFateEnv.active_pins`."""
        budget = self.max_perturb if budget is None else budget
        p = self._pins_of(pins)
        code = np.array([int(states_to_codes(np.asarray(state)[None, :])[0])], dtype=np.int64)
        sets = self._action_sets(p, budget)
        q = self._q_values(stage, p, budget, sets, code)[:, 0]
        best = int(np.flatnonzero(q >= q.max() - TIE)[0])
        return [(self.world.genes[g], self.kinds[k]) for g, k, _ in sets[best]]

    def static(self, state: np.ndarray) -> tuple[float, list[tuple[str, str]]]:
        """The best set at stage 0 with no later action: (value, set)."""
        code = np.array([int(states_to_codes(np.asarray(state)[None, :])[0])], dtype=np.int64)
        sets = [s for s in self._action_sets((), self.max_perturb)]
        out = np.empty(len(sets))
        for i, new in enumerate(sets):
            mask, value = self._pin_bits(new)
            # Budget 0 after stage 0: no later action.
            out[i] = self._after(0, tuple(sorted(new)), 0)[(code & ~np.int64(mask)) | np.int64(value)][0]
        best = int(np.flatnonzero(out >= out.max() - TIE)[0])
        return float(out.max()), [(self.world.genes[g], self.kinds[k]) for g, k, _ in sets[best]]


def dynamic_optimum(
    world: "World | str",
    target: str,
    max_perturb: int,
    *,
    n_stages: "int | None" = None,
    updates_per_stage: "int | None" = None,
    pulse_stages: "int | None" = None,
    kinds=PERTURBATION_KINDS,
    start: "str | list[str] | None" = None,
    condition: "str | None" = None,
    background=None,
    max_work: float = MAX_WORK,
) -> DynamicOptimum:
    """The steer task's exact optimum over timed policies, and its static (time-0) optimum.

    Defaults as the environment's: n_stages the world's stages (else 4), updates_per_stage
    one per gene. `start` may be a list (the env draws one uniformly: values are means) or
    `attractor:FATE`; `background` mutations as `World.with_background`.
    """
    world = load_world(world)
    if background:
        world = world.with_background(background)
    n_stages = int(n_stages or len(world.stages) or 4)
    updates_per_stage = int(updates_per_stage or world.n_genes)
    solver = DynamicSolver(world, target, max_perturb, n_stages, updates_per_stage, kinds, pulse_stages, condition,
                           max_work)
    starts = world.start_names(start)
    by_start, static_by_start = {}, {}
    first = static_set = None
    for name in starts:
        state = world.start_state(name, solver.condition)
        code = int(states_to_codes(state[None, :])[0])
        # Solver round-off (~1e-15) would otherwise rank 0.4999999999999993 below 0.5, as in envs.oracle.
        by_start[name] = round(float(solver.value(0)[code]), 12)
        static, chosen = solver.static(state)
        static_by_start[name] = round(static, 12)
        if first is None:
            first, static_set = solver.best_action(0, state), chosen
    pulses = "permanent perturbations" if solver.pulse is None else f"pulses of {solver.pulse} stages"
    return DynamicOptimum(
        target=target,
        value=float(np.mean(list(by_start.values()))),
        static_value=float(np.mean(list(static_by_start.values()))),
        first_action=first,
        static_action=static_set,
        method=(
            f"exact dynamic programming over {1 << solver.n} states x pins x budget ({n_stages} stages of "
            f"{updates_per_stage} async updates, {pulses}, {len(solver._values)} value tables)"
        ),
        by_start=by_start,
        static_by_start=static_by_start,
    )


def env_dynamic_optimum(config: "dict | None" = None, max_work: float = MAX_WORK) -> DynamicOptimum:
    """`dynamic_optimum` for an environment config (steer task), with its checked settings."""
    from envs.cell_fate_env import env_settings

    s = env_settings(config)
    if s["task"] != "steer":
        raise UserInputError(f"the dynamic optimum is for the steer task, not {s['task']!r}")
    if s["scheme"] != "async":
        raise UserInputError(f"the dynamic optimum is computed for async updates, not {s['scheme']!r}")
    return dynamic_optimum(
        s["world"], s["target"], s["max_perturb"], n_stages=s["n_stages"], updates_per_stage=s["updates_per_stage"],
        pulse_stages=s["pulse_stages"], kinds=s["kinds"], start=s["start"], condition=s["condition"],
        max_work=max_work,
    )
