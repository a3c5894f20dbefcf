"""The general-asynchronous dynamics of a Boolean network as a finite Markov chain, solved exactly.

A state is an integer code (gene g is bit g, as in `envs.network.states_to_codes`). One
update picks a gene uniformly at random and applies its rule, so from state s the chain
moves to s with bit g set to f_g(s) with probability 1/n per gene g. Genes whose update
changes nothing give the self-loop weight. Pinned genes keep their pinned value: their
rule is replaced by the constant pin, and the start state is pinned too.

The synchronous image F(s) (every bit replaced by its rule) holds everything the async
chain needs: the successors of s are s with one bit of F(s) ^ s flipped. A pin only
rewrites bits of F(s), so F is memoized per network and shared by every perturbation
set; a set only redoes the breadth-first search over its reachable states.

Fates: terminal strongly connected components are the attractors (fixed points or
cyclic attractors). Attractors are lumped by outcome (the fate label of their states);
a transient state from which only one outcome is reachable is settled by graph search,
and absorption into the outcomes from the start takes one linear solve on the states
left undecided. A cyclic attractor whose states carry different fates is split over
them by its stationary distribution: the long-run share of time spent in states of each
fate, which is what a snapshot of a cell on that attractor shows (and what Monte-Carlo
classification of the last state of a long run estimates).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, connected_components
from scipy.sparse.linalg import gmres, spsolve

from envs.errors import UserInputError
from envs.network import BooleanNetwork, codes_to_states

# Dense per-network arrays (2**n entries: the memoized image and a BFS scratch index)
# up to this many genes, 2 x 16 MiB at 22; beyond, sorted arrays and no memo.
DENSE_GENES = 22
MAX_CODE_GENES = 62
_CHUNK = 1 << 15
# Linear systems up to this size are solved dense: numpy beats scipy.sparse's per-call
# overhead there, and larger dense solves go multi-threaded and slow on busy machines.
DENSE_SOLVE = 80
# Cyclic attractors up to this size get their stationary law by sparse LU, larger
# ones by power iteration (LU fill-in explodes on hypercube-like state graphs).
DIRECT_LIMIT = 3000
SERIES_STEPS = 2000  # jump-chain steps before the absorption solve switches to GMRES
SETTLE_MIN = 2000  # transient states beyond which single-outcome states are settled first
MAX_ITER = 20_000


class StateSpaceTooLarge(UserInputError):
    """The reachable state space exceeds the cap; use Monte-Carlo instead."""


class SyncImage:
    """F(codes): the synchronous-update image of state codes, memoized for small networks."""

    def __init__(self, network: BooleanNetwork):
        n = network.n_genes
        if n > MAX_CODE_GENES:
            raise StateSpaceTooLarge(f"{n} genes do not fit a 64-bit state code (at most {MAX_CODE_GENES})")
        self.n = n
        self.inputs = network.inputs.astype(np.int64)
        self.tables = network.tables
        self.gene_shifts = np.arange(n, dtype=np.int64)
        self.gene_bits = np.int64(1) << self.gene_shifts
        self.dense = n <= DENSE_GENES
        if self.dense:
            self.image = np.full(1 << n, -1, dtype=np.int64)
            # code -> local index during one BFS, reset after each search (so one search
            # at a time per network object: processes, not threads, run in parallel).
            self.local = np.full(1 << n, -1, dtype=np.int64)

    def evaluate(self, codes: np.ndarray) -> np.ndarray:
        out = np.empty(codes.size, dtype=np.int64)
        rows = np.arange(self.n)[None, :]
        for lo in range(0, codes.size, _CHUNK):
            c = codes[lo : lo + _CHUNK]
            # Padded inputs point at index n, bit n of a code is always 0: the constant column.
            idx = np.zeros((c.size, self.n), dtype=np.int64)
            for j in range(self.inputs.shape[1]):
                idx |= ((c[:, None] >> self.inputs[:, j]) & 1) << j
            vals = self.tables[rows, idx].astype(np.int64)
            out[lo : lo + _CHUNK] = np.bitwise_or.reduce(vals << self.gene_shifts, axis=1)
        return out

    def __call__(self, codes: np.ndarray) -> np.ndarray:
        if not self.dense:
            return self.evaluate(codes)
        img = self.image[codes]
        missing = img < 0
        if missing.any():
            todo = codes[missing]
            img[missing] = self.image[todo] = self.evaluate(todo)
        return img


_images: "weakref.WeakKeyDictionary[BooleanNetwork, SyncImage]" = weakref.WeakKeyDictionary()


def sync_image(network: BooleanNetwork) -> SyncImage:
    """The memoized image of a network (one per network object, freed with it)."""
    img = _images.get(network)
    if img is None:
        img = _images[network] = SyncImage(network)
    return img


@dataclass
class Chain:
    """Reachable states (codes[0] is the start) and each state's successor per gene."""

    codes: np.ndarray  # (N,)
    successors: np.ndarray  # (N, n) local indices; equal to the row index for a self-loop


def reachable_chain(
    network: BooleanNetwork, start_code: int, mask: int = 0, value: int = 0, max_states: int = 1 << 20
) -> Chain:
    """Breadth-first search over states reachable from `start_code` with genes in `mask` pinned.

    Each level's successors are computed at once: F of the whole frontier, then every
    one-bit flip of F(s) ^ s. Raises StateSpaceTooLarge past `max_states`.
    """
    img = sync_image(network)
    keep = np.int64(~mask)
    pinned = np.int64(value & mask)
    start = np.array([(start_code & ~mask) | pinned], dtype=np.int64)
    levels = [start]
    succ_levels = []
    count = 1
    if img.dense:
        local = img.local
        local[start] = 0
    else:
        seen = start.copy()
    frontier = start
    pending = start[:0]
    try:
        while frontier.size:
            diff = ((img(frontier) & keep) | pinned) ^ frontier
            succ = frontier[:, None] ^ (diff[:, None] & img.gene_bits[None, :])
            succ_levels.append(succ)
            if img.dense:
                # Dedupe through the scratch index: for each unseen code the last write
                # wins, and only that writer keeps it (np.unique is far slower here).
                cand = succ.ravel()
                cand = cand[local[cand] < 0]
                slot = np.arange(cand.size)
                pending = cand
                local[cand] = slot
                new = cand[local[cand] == slot]
            else:
                cand = np.unique(succ)
                pos = np.minimum(np.searchsorted(seen, cand), seen.size - 1)
                new = cand[seen[pos] != cand]
            if count + new.size > max_states:
                raise StateSpaceTooLarge(
                    f"more than {max_states} reachable states; raise max_states or use Monte-Carlo"
                )
            if img.dense:
                # Every code in `pending` is in `new`, so this overwrites all the slots.
                local[new] = np.arange(count, count + new.size)
                pending = start[:0]
            else:
                seen = np.union1d(seen, new)
            count += new.size
            if new.size:
                levels.append(new)
            frontier = new
        codes = np.concatenate(levels)
        succ = np.concatenate(succ_levels)
        if img.dense:
            succ_local = local[succ]
        else:
            order = np.argsort(codes)
            succ_local = order[np.searchsorted(codes[order], succ)]
    finally:
        if img.dense:
            local[pending] = -1
            for lv in levels:
                local[lv] = -1
    return Chain(codes=codes, successors=succ_local)


def _stationary_power(P: sp.csr_matrix, max_iter: int) -> np.ndarray:
    # Half-lazy chain: same stationary distribution, and aperiodic.
    PT = (0.5 * (P + sp.identity(P.shape[0], format="csr"))).T.tocsr()
    pi = np.full(P.shape[0], 1.0 / P.shape[0])
    for _ in range(max_iter):
        nxt = PT @ pi
        if np.abs(nxt - pi).sum() < 1e-13:
            return nxt
        pi = nxt
    raise StateSpaceTooLarge(f"a cyclic attractor of {P.shape[0]} states did not mix in {max_iter} steps")


def stationary(P, max_iter: int = MAX_ITER) -> np.ndarray:
    """Stationary distribution of an irreducible stochastic matrix (dense or sparse)."""
    m = P.shape[0]
    if m == 1:
        return np.ones(1)
    b = np.zeros(m)
    b[-1] = 1.0
    # pi (P - I) = 0 with its last equation swapped for sum(pi) = 1.
    if not sp.issparse(P):
        A = P.T - np.eye(m)
        A[-1] = 1.0
        pi = np.linalg.solve(A, b)
    elif m > DIRECT_LIMIT:
        pi = _stationary_power(P, max_iter)
    else:
        A = (P.T - sp.identity(m, format="csr")).tocsr()[:-1]
        pi = np.atleast_1d(spsolve(sp.vstack([A, sp.csr_matrix(np.ones((1, m)))]).tocsc(), b))
    pi = np.clip(pi, 0.0, None)
    return pi / pi.sum()


def expected_visits(Q, max_iter: int = MAX_ITER) -> np.ndarray:
    """y = e_0 (I - Q)^-1: expected visits to each transient state, starting at state 0.

    Beyond dense sizes: the series sum_t e_0 J^t on the jump chain J (Q without its
    self-loops, which only delay absorption) until less than 1e-12 of the mass is
    still transient, then GMRES from that partial sum if the series is slow
    (metastable states). Sparse LU was tried and lost: its fill-in on hypercube-like
    state graphs costs 0.1 s at 2000 states and minutes at 20 000.
    """
    m = Q.shape[0]
    e = np.zeros(m)
    e[0] = 1.0
    if not sp.issparse(Q):
        return np.linalg.solve((np.eye(m) - Q).T, e)
    stay = Q.diagonal()
    hold = 1.0 / (1.0 - stay)  # mean holding time of a visit; stay < 1 off attractors
    J = ((Q - sp.diags(stay)).T @ sp.diags(hold)).tocsr()
    z = np.zeros(m)
    x = e
    for _ in range(min(max_iter, SERIES_STEPS)):
        z += x
        x = J @ x
        if x.sum() < 1e-12:
            return z * hold
    # z solves (I - J) z = e: go on from the partial sum.
    z, info = gmres(sp.identity(m, format="csr") - J, e, x0=z, rtol=1e-12, restart=100, maxiter=max_iter // 100)
    if info != 0:
        raise StateSpaceTooLarge(f"{m} undecided transient states: the absorption solve did not converge")
    return z * hold


def outcome_probabilities(chain: Chain, label_codes, n_labels: int, max_iter: int = MAX_ITER) -> np.ndarray:
    """Long-run probability of each outcome label from the start (chain.codes[0]).

    `label_codes(codes)` names the outcome (0..n_labels-1) of attractor states. A
    fixed point, or a cyclic attractor whose states share one label, counts wholly for
    that label; a cyclic attractor with several labels is split by its stationary law.
    """
    N, n = chain.successors.shape
    rows = np.repeat(np.arange(N), n)
    cols = chain.successors.ravel()
    # Exactly n entries per row; repeated self-loops are summed into one.
    P = sp.csr_matrix((np.full(cols.size, 1.0 / n), cols, np.arange(0, cols.size + 1, n)), shape=(N, N))
    P.sum_duplicates()
    n_comp, labels = connected_components(P, directed=True, connection="strong")
    cross = labels[rows] != labels[cols]
    leaves = np.zeros(n_comp, dtype=bool)
    leaves[labels[rows[cross]]] = True
    A = np.flatnonzero(~leaves[labels])
    out_A = np.asarray(label_codes(chain.codes[A]), dtype=np.int64)
    # Outcome groups: labels 0..n_labels-1, then one group per mixed-label attractor.
    cls = labels[A]
    lo = np.full(n_comp, n_labels)
    hi = np.full(n_comp, -1)
    np.minimum.at(lo, cls, out_A)
    np.maximum.at(hi, cls, out_A)
    mixed_classes = np.flatnonzero((lo != hi) & (hi >= 0))
    group_A = out_A.copy()
    for k, c in enumerate(mixed_classes):
        group_A[cls == c] = n_labels + k
    n_groups = n_labels + mixed_classes.size
    group = np.full(N, -1)
    group[A] = group_A
    present = np.unique(group_A)
    if group[0] < 0 and present.size > 1 and N - A.size > SETTLE_MIN:
        moves = rows != cols
        group = _settle(rows[moves], cols[moves], N, group, present, n_groups)
    group_mass = np.zeros(n_groups)
    if group[0] >= 0:
        group_mass[group[0]] = 1.0
    elif present.size == 1:
        group_mass[present[0]] = 1.0
    else:
        U = np.flatnonzero(group < 0)  # undecided; U[0] == 0, the start
        settled = np.flatnonzero(group >= 0)
        y = expected_visits(_block(P, U, U), max_iter)
        into = _block(P, U, settled).T @ y  # probability of entering each settled state
        group_mass = np.bincount(group[settled], weights=into, minlength=n_groups)
    probs = group_mass[:n_labels].copy()
    for k, c in enumerate(mixed_classes):
        if group_mass[n_labels + k] <= 0.0:
            continue
        members = cls == c
        pi = stationary(_block(P, A[members], A[members]), max_iter)
        probs += group_mass[n_labels + k] * np.bincount(out_A[members], weights=pi, minlength=n_labels)
    probs = np.clip(probs, 0.0, None)
    return probs / probs.sum()


def _block(P: sp.csr_matrix, r: np.ndarray, c: np.ndarray):
    if r.size <= DENSE_SOLVE and c.size <= DENSE_SOLVE:
        return P[r][:, c].toarray()
    return P[r][:, c].tocsr()


def _settle(
    src: np.ndarray, dst: np.ndarray, N: int, group: np.ndarray, present: np.ndarray, n_groups: int
) -> np.ndarray:
    """Group of each state that can reach only one outcome group (attractors included), else -1."""
    # Reverse graph plus one virtual node per group pointing at its attractor states.
    members = np.flatnonzero(group >= 0)
    r = np.concatenate([dst, N + group[members]])
    c = np.concatenate([src, members])
    G = sp.csr_matrix((np.ones(r.size, dtype=np.int8), (r, c)), shape=(N + n_groups, N + n_groups))
    reach_count = np.zeros(N + n_groups, dtype=np.int64)
    reach_group = np.full(N + n_groups, -1)
    for g in present:
        reached = breadth_first_order(G, N + g, directed=True, return_predecessors=False)
        reach_count[reached] += 1
        reach_group[reached] = g
    return np.where(reach_count[:N] == 1, reach_group[:N], -1)


def fate_probabilities(
    network: BooleanNetwork,
    classify,
    n_labels: int,
    start_code: int,
    mask: int = 0,
    value: int = 0,
    max_states: int = 1 << 20,
) -> tuple[np.ndarray, int]:
    """(probability per fate label, number of reachable states); `classify` maps states to labels."""
    chain = reachable_chain(network, start_code, mask, value, max_states)
    probs = outcome_probabilities(chain, lambda codes: classify(codes_to_states(codes, network.n_genes)), n_labels)
    return probs, int(chain.codes.size)


def attractor_codes(chain: Chain) -> tuple[np.ndarray, np.ndarray]:
    """(codes, is_fixed_point) of the attractor states of a chain (its terminal strongly
    connected components), sorted by code."""
    N, n = chain.successors.shape
    rows = np.repeat(np.arange(N), n)
    cols = chain.successors.ravel()
    P = sp.csr_matrix((np.ones(cols.size, dtype=np.int8), (rows, cols)), shape=(N, N))
    n_comp, labels = connected_components(P, directed=True, connection="strong")
    cross = labels[rows] != labels[cols]
    leaves = np.zeros(n_comp, dtype=bool)
    leaves[labels[rows[cross]]] = True
    members = np.flatnonzero(~leaves[labels])
    sizes = np.bincount(labels[members], minlength=n_comp)
    order = np.argsort(chain.codes[members])
    members = members[order]
    return chain.codes[members], sizes[labels[members]] == 1
