"""BatchedCellFateEnv: many CellFateEnv copies stepped as arrays, bit-identical to the single env.

`BatchedCellFateEnv(config, num_envs)` is a `gymnasium.vector.VectorEnv` that behaves
exactly like `gymnasium.vector.SyncVectorEnv([lambda: CellFateEnv(config)] * num_envs)`
(gymnasium 1.2.2, default NEXT_STEP autoreset): for the same seeds and actions, env i
gives the same observations, rewards, terminations, truncations and infos. What differs
is how the work is done: the states of all cells are one (num_envs, n_variables) uint8
array, pins, perturbation flags, stages and budgets are arrays, and observations and
masks are built once per step for the whole batch.

Randomness. Each env keeps its own `np.random.Generator` (seeded as gymnasium seeds an
env's `np_random`: `seed + i` for `reset(seed=int)`) and gets exactly the numbers the
single env draws, in the same order: the start choice, the predict task's perturbations,
`integers(0, n, size=updates)` per stage of `BooleanNetwork.run_cell`, and `n` more per
round of `run_cell_to_attractor` only while the cell is not yet fixed. The gene draws
come from a per-env stream: a Generator's `integers(0, n)` are the same numbers, and
leave it in the same state, whether drawn in one call or in pieces, so each env draws a
chunk in one call and its updates consume it; before any other kind of draw (a start
among several, predict's perturbations, `np_random` read from outside) the generator is
rewound to the chunk's start and advanced by exactly what was consumed. The per-env
draws are a Python loop over envs; the updates they select are applied to all cells
together.

Update engines (async scheme). `numba` (default when numba imports; it ships with
scanpy, and compiles once, cached on disk): one compiled loop over (cell, update)
through the truth tables of `network.tables` and regulators of `network.inputs`, the
run to the attractor included. `numpy`: a loop over the update index t, each update of
every cell one gather through the truth tables (pinned genes are skipped, as in
`run_cell`, by writing into a scratch column). Both give the same states for the same
draws. The sync and priority schemes run the network's own batch dynamics
(`network.run`, `network.is_fixed_point`) on the rows of the envs that move, with a
per-row random source standing in for each env's generator, and the run to the
attractor of `run_to_attractor` on a batch of one per env: a cell stops as soon as its
own round ends on a fixed point.

Pulses (`pulse_stages`) end per env at the stage boundaries where CellFateEnv releases them
(a (num_envs, genes) array of release stages); the pulses left when an episode's last stage
ends run their remaining stages, then the cell runs to its attractor, as in the single env.

Speed: `tournament bench env_batched` (SyncVectorEnv of 32 CellFateEnvs against this).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.cell_fate_env import (
    N_NODE_FEATURES,
    NO_PERTURBATION,
    CellFateEnv,
    env_layout,
    env_settings,
    perturbable_genes,
)
from envs.errors import UserInputError, choices_error
from envs.network import Pins, normalize_kind, pin_value

ENGINES = ("auto", "numba", "numpy")


def _advance_kernel(state, rows, buf, pos, count, frozen, inputs, n_inputs, tables):
    """`count` async updates of each row's cell, genes read from its stream at pos
    (run_cell: a pinned gene keeps its value). Plain Python; compiled by numba."""
    for a in range(rows.shape[0]):
        e = rows[a]
        p = pos[e]
        for t in range(p, p + count):
            g = buf[e, t]
            if frozen[e, g]:
                continue
            code = 0
            for j in range(n_inputs[g]):
                code |= np.int64(state[e, inputs[g, j]]) << j
            state[e, g] = tables[g, code]
        pos[e] = p + count


def _finish_kernel(state, rows, buf, pos, fill, done, max_updates, frozen, inputs, n_inputs, tables, starved):
    """run_cell_to_attractor per row: while `done` < max_updates and the cell is not fixed,
    a round of n updates. A row whose stream holds less than a round stops with
    starved=True, `done` kept, to be refilled and resumed. Plain Python; compiled by numba."""
    n = inputs.shape[0]
    for a in range(rows.shape[0]):
        e = rows[a]
        starved[a] = False
        while done[a] < max_updates:
            fixed = True
            for g in range(n):
                if frozen[e, g]:
                    continue
                code = 0
                for j in range(n_inputs[g]):
                    code |= np.int64(state[e, inputs[g, j]]) << j
                if tables[g, code] != state[e, g]:
                    fixed = False
                    break
            if fixed:
                break
            p = pos[e]
            if p + n > fill[e]:
                starved[a] = True
                break
            for t in range(p, p + n):
                g = buf[e, t]
                if frozen[e, g]:
                    continue
                code = 0
                for j in range(n_inputs[g]):
                    code |= np.int64(state[e, inputs[g, j]]) << j
                state[e, g] = tables[g, code]
            pos[e] = p + n
            done[a] += n


_NUMBA_KERNELS: "tuple | None | bool" = False  # False: not tried yet; None: numba unavailable


def _numba_kernels():
    """(advance, finish) compiled with numba (cached on disk), or None without numba.

    numba is imported on first use, not with this module (it takes half a second)."""
    global _NUMBA_KERNELS
    if _NUMBA_KERNELS is False:
        try:
            import numba

            jit = numba.njit(cache=True, nogil=True)
            _NUMBA_KERNELS = (jit(_advance_kernel), jit(_finish_kernel))
        except Exception:  # pragma: no cover - numba comes with scanpy
            _NUMBA_KERNELS = None
    return _NUMBA_KERNELS


class _RowRandom:
    """Stands in for a Generator in `network.run` on a batch: row b draws from env b's
    generator, `random((B, n))` returning one `random((1, n))` per row, in order.

    The draws of `n_steps` updates are taken up front (one call per env): a Generator's
    doubles come one 64-bit output each, so `random((k, n))` is `k` calls of
    `random((1, n))` back to back (the tests check the resulting trajectories)."""

    def __init__(self, rngs: Sequence[np.random.Generator], n_steps: int, width: int, draws: bool):
        self._buf = np.stack([r.random((n_steps, width)) for r in rngs], axis=0) if draws else None
        self._t = 0

    def random(self, shape):
        if self._buf is None:
            raise RuntimeError("this update scheme draws no random numbers")
        out = self._buf[:, self._t, :]
        self._t += 1
        return out


class BatchedCellFateEnv(VectorEnv):
    """`num_envs` CellFateEnvs with the same config as one array simulation.

    Same config keys and semantics as `CellFateEnv` (validated by `env_settings`).
    `engine` picks the async update loop: "numba", "numpy", or "auto" (numba if it imports).
    """

    def __init__(self, config: dict | None = None, num_envs: int = 1, *, engine: str = "auto"):
        super().__init__()
        # RLlib's vector_entry_point hands the env class its env_config with num_envs added.
        config = dict(config or {})
        num_envs = config.pop("num_envs", num_envs)
        if not isinstance(num_envs, (int, np.integer)) or isinstance(num_envs, bool) or num_envs < 1:
            raise UserInputError(f"num_envs must be a positive integer, got {num_envs!r}")
        if engine not in ENGINES:
            raise choices_error("engine", engine, ENGINES)
        kernels = _numba_kernels() if engine in ("auto", "numba") else None
        if engine == "numba" and kernels is None:
            raise UserInputError("engine 'numba' needs numba, which does not import here; use engine='numpy'")
        self._kernels = kernels
        self.engine = "numba" if kernels is not None else "numpy"

        s = env_settings(config)
        self.settings = s
        self.world = s["world"]
        self.network = self.world.network
        self.condition = s["condition"]
        self.task: str = s["task"]
        self.kinds: tuple[str, ...] = s["kinds"]
        self.max_perturb: int = int(s["max_perturb"])
        self.n_stages: int = s["n_stages"]
        self.updates_per_stage: int = s["updates_per_stage"]
        self.pulse_stages: "int | None" = s["pulse_stages"]
        self.scheme: str = s["scheme"]
        self.num_envs = int(num_envs)
        n = self.world.n_genes
        nv = self.network.n_genes
        self.n_genes = n
        self.n_variables = nv
        layout = env_layout(s)
        self.target_index = layout.target_index
        self.n_actions = layout.n_actions
        self.single_action_space = layout.action_space
        self.single_observation_space = layout.observation_space
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.metadata = {**CellFateEnv.metadata, "autoreset_mode": AutoresetMode.NEXT_STEP}
        self.render_mode = None
        self.autoreset_mode = AutoresetMode.NEXT_STEP

        self._static = layout.static
        self._max_level = layout.max_level
        # (bits per gene, genes) variable of a gene's j-th bit, padded with the 0 column.
        self._level_vars = np.full((max(len(v) for v in self.world.gene_vars), n), nv, dtype=np.int64)
        for g, vs in enumerate(self.world.gene_vars):
            self._level_vars[: len(vs), g] = vs
        self._care, self._care_values = layout.care, layout.care_values
        # Per steer action: the variables it pins and their values, padded with the
        # scratch column (a multi-valued gene pins every bit).
        K = len(self.kinds)
        width = max(len(v) for v in self.world.gene_vars)
        self._action_vars = np.full((1 + n * K, width), nv + 1, dtype=np.int64)
        self._action_bits = np.zeros((1 + n * K, width), dtype=np.uint8)
        for g in range(n):
            for k, kind in enumerate(self.kinds):
                level = self._max_level[g] if pin_value(kind) else 0
                for j, (v, bit) in enumerate(self.world.level_bits(g, int(level))):
                    self._action_vars[1 + g * K + k, j] = v
                    self._action_bits[1 + g * K + k, j] = bit
        self._start_cache: dict[str, np.ndarray] = {}
        self._perturbable = perturbable_genes(self.world)
        self._free_genes = np.flatnonzero(self._perturbable) if not self._perturbable.all() else None
        # (genes, bits) each gene's variables, padded with the scratch column (pulse release).
        self._gene_vars = np.full((n, width), nv + 1, dtype=np.int64)
        for g, vs in enumerate(self.world.gene_vars):
            self._gene_vars[g, : len(vs)] = vs

        # Simulator tables: contiguous, fixed dtypes (the compiled loop is typed on them).
        net = self.network
        self._inputs = np.ascontiguousarray(net.inputs, dtype=np.int64)
        self._n_inputs = np.ascontiguousarray(net.n_inputs, dtype=np.int64)
        self._tables = np.ascontiguousarray(net.tables, dtype=np.uint8)
        self._tables_flat = self._tables.reshape(-1)
        self._table_width = self._tables.shape[1]
        self._weights = (np.int64(1) << np.arange(self._inputs.shape[1], dtype=np.int64)).astype(np.int64)

        # Batch state. Column nv reads 0 (the padding regulator of `network.inputs`),
        # column nv + 1 is a scratch cell that skipped updates and padded pins write.
        E = self.num_envs
        self._state = np.zeros((E, nv + 2), dtype=np.uint8)
        self._pin_mask = np.zeros((E, nv + 2), dtype=bool)
        self._pin_value = np.zeros((E, nv + 2), dtype=np.uint8)
        self._perturbed = np.zeros((E, n), dtype=bool)
        self._perturbed_kind = np.zeros((E, n), dtype=np.int8)
        self._release = np.zeros((E, n), dtype=np.int64)  # stage a pulse ends; 0: permanent
        self._stage = np.zeros(E, dtype=np.int64)
        self._n_perturbed = np.zeros(E, dtype=np.int64)
        self._perturbations: list[list[tuple[str, str, int]]] = [[] for _ in range(E)]
        self._predictions = np.full((E, self.n_stages), -1, dtype=np.int64)  # per stage; -1 invalid
        self._realized = np.zeros(E, dtype=np.int64)
        self._stage_states = np.zeros((E, self.n_stages, nv), dtype=np.uint8) if self.task == "predict" else None
        self.start_names: list[str | None] = [None] * E
        self._rngs: list[np.random.Generator | None] = [None] * E
        self._rng_seeds: list[int | None] = [None] * E
        self._autoreset = np.zeros(E, dtype=bool)

        # Gene streams (async scheme): the genes each env's updates pick are
        # `integers(0, nv)` draws, and a Generator gives the same numbers (and ends in
        # the same state) whether they are drawn in one call or in pieces. So each env
        # draws a chunk of them in one call and its updates consume it; `_sync` puts the
        # generator back where the single env's would be before any other kind of draw.
        U = self.updates_per_stage
        episode = self.n_stages * U + 4 * nv
        self._chunk = max(episode, 1024 if self.task == "steer" else 0)
        self._gbuf = np.zeros((E, self._chunk), dtype=np.int64)
        self._gpos = np.zeros(E, dtype=np.int64)
        self._gfill = np.zeros(E, dtype=np.int64)
        self._ganchor: list[dict | None] = [None] * E
        if s["seed"] is not None:
            # CellFateEnv resets itself with config["seed"] when built; so do its copies.
            self.reset(seed=[int(s["seed"])] * E)

    # ---- views ---------------------------------------------------------------------------

    @property
    def states(self) -> np.ndarray:
        """(num_envs, n_variables) uint8 view of every cell's bits."""
        return self._state[:, : self.n_variables]

    @property
    def np_random(self) -> tuple[np.random.Generator, ...]:
        """Each env's generator (as `SyncVectorEnv.np_random`), in the single env's state."""
        for e in range(self.num_envs):
            self._sync(e)
        return tuple(self._rng(e) for e in range(self.num_envs))

    @property
    def np_random_seed(self) -> tuple[int | None, ...]:
        return tuple(self._rng_seeds)

    def decode_action(self, action: int) -> tuple[str, str] | None:
        """(gene, kind) for a perturbation action, None for 'no perturbation'."""
        if self.task != "steer" or action == NO_PERTURBATION:
            return None
        g, k = divmod(int(action) - 1, len(self.kinds))
        return self.world.genes[g], self.kinds[k]

    def encode_action(self, gene: str, kind: str) -> int:
        return 1 + self.world.gene_index(gene) * len(self.kinds) + self.kinds.index(normalize_kind(kind))

    def _rng(self, e: int) -> np.random.Generator:
        if self._rngs[e] is None:  # as gymnasium's Env.np_random: a random seed on first use
            self._rngs[e], self._rng_seeds[e] = seeding.np_random()
        return self._rngs[e]

    # ---- gene streams ----------------------------------------------------------------------

    def _sync(self, e: int) -> None:
        """Env e's generator to exactly the draws its updates consumed; the stream emptied."""
        anchor = self._ganchor[e]
        if anchor is None:
            return
        rng = self._rngs[e]
        rng.bit_generator.state = anchor
        if self._gpos[e]:
            rng.integers(0, self.n_variables, size=int(self._gpos[e]))
        self._ganchor[e] = None
        self._gpos[e] = self._gfill[e] = 0

    def _drop_stream(self, e: int) -> None:
        self._ganchor[e] = None
        self._gpos[e] = self._gfill[e] = 0

    def _ensure(self, rows: np.ndarray, need: int) -> None:
        """At least `need` genes left in the stream of every env of `rows`."""
        short = rows[self._gfill[rows] - self._gpos[rows] < need]
        for e in short.tolist():
            self._sync(e)
            rng = self._rng(e)
            size = max(self._chunk, need)
            if size > self._gbuf.shape[1]:
                grown = np.zeros((self.num_envs, size), dtype=np.int64)
                grown[:, : self._gbuf.shape[1]] = self._gbuf
                self._gbuf = grown
            self._ganchor[e] = rng.bit_generator.state
            self._gbuf[e, :size] = rng.integers(0, self.n_variables, size=size)
            self._gpos[e] = 0
            self._gfill[e] = size

    def _take(self, rows: np.ndarray, count: int) -> np.ndarray:
        """(len(rows), count) next genes of each env's stream, consumed."""
        self._ensure(rows, count)
        pos = self._gpos[rows]
        genes = self._gbuf[rows[:, None], pos[:, None] + np.arange(count)]
        self._gpos[rows] = pos + count
        return genes

    # ---- simulation ------------------------------------------------------------------------

    def _advance(self, rows: np.ndarray, n_updates: int) -> None:
        """`n_updates` updates of the cells of envs `rows` (each env draws its own genes)."""
        if len(rows) == 0:
            return
        if self.scheme == "async":
            if self._kernels is not None:
                self._ensure(rows, n_updates)
                self._kernels[0](
                    self._state, rows, self._gbuf, self._gpos, n_updates,
                    self._pin_mask, self._inputs, self._n_inputs, self._tables,
                )
            else:
                self._async_updates(rows, self._take(rows, n_updates))
        else:
            nv = self.n_variables
            pins = Pins(self._pin_mask[rows, :nv], self._pin_value[rows, :nv])
            rng = _RowRandom([self._rng(e) for e in rows.tolist()], n_updates, nv, self.scheme == "priority")
            self.states[rows] = self.network.run(self.states[rows], n_updates, rng, pins, self.scheme)

    def _async_updates(self, rows: np.ndarray, genes: np.ndarray) -> None:
        """numpy engine: loop over the update index, every cell's update one gather."""
        nv = self.n_variables
        width = nv + 2
        flat = self._state.reshape(-1)
        offsets = (rows * width)[:, None]
        reads = np.ascontiguousarray((offsets[:, :, None] + self._inputs[genes]).transpose(1, 0, 2))  # (U, A, k)
        frozen = self._pin_mask[rows[:, None], genes]
        writes = np.ascontiguousarray(np.where(frozen, offsets + nv + 1, offsets + genes).T)  # (U, A)
        base = np.ascontiguousarray((genes * self._table_width).T)
        tables, weights = self._tables_flat, self._weights
        for t in range(genes.shape[1]):
            flat[writes[t]] = tables[base[t] + flat[reads[t]] @ weights]

    def _is_fixed(self, rows: np.ndarray) -> np.ndarray:
        """Async fixed points (`cell_is_fixed`): no unpinned gene's rule changes it."""
        cells = self.states[rows]
        return (self._pin_mask[rows, : self.n_variables] | (self.network.sync_update(cells) == cells)).all(axis=1)

    def _finish(self, rows: np.ndarray) -> np.ndarray:
        """Run the cells of `rows` to their attractors; their fate indices."""
        if len(rows) == 0:
            return np.zeros(0, dtype=np.int64)
        nv = self.n_variables
        max_updates = 60 * nv
        if self.scheme == "async" and self._kernels is not None:
            active = rows
            done = np.zeros(len(rows), dtype=np.int64)
            starved = np.zeros(len(rows), dtype=bool)
            while len(active):
                self._ensure(active, nv)
                self._kernels[1](
                    self._state, active, self._gbuf, self._gpos, self._gfill, done, max_updates,
                    self._pin_mask, self._inputs, self._n_inputs, self._tables, starved,
                )
                active, done, starved = active[starved], done[starved], starved[starved]
        elif self.scheme == "async":
            # run_cell_to_attractor: check, then a round of n updates, while not fixed.
            active = rows
            done = 0
            while done < max_updates:
                active = active[~self._is_fixed(active)]
                if len(active) == 0:
                    break
                self._async_updates(active, self._take(active, nv))
                done += nv
        else:
            # run_to_attractor on a batch of one: a round of n updates, then check.
            active = rows
            done = 0
            while done < max_updates and len(active):
                self._advance(active, nv)
                done += nv
                pins = Pins(self._pin_mask[active, :nv], self._pin_value[active, :nv])
                active = active[~self.network.is_fixed_point(self.states[active], pins)]
        return self.world.classify(self.states[rows]).astype(np.int64)

    def _apply(self, e: int, gene: int, kind: str) -> None:
        """Pin every bit of one env's gene (any kind, as CellFateEnv._apply)."""
        level = self._max_level[gene] if pin_value(kind) else 0
        for v, bit in self.world.level_bits(gene, int(level)):
            self._pin_mask[e, v] = True
            self._pin_value[e, v] = bit
            self._state[e, v] = bit
        self._perturbed[e, gene] = True
        self._perturbed_kind[e, gene] = 1 + pin_value(kind)
        if self.pulse_stages is not None:
            self._release[e, gene] = self._stage[e] + self.pulse_stages
        self._n_perturbed[e] += 1
        self._perturbations[e].append((self.world.genes[gene], kind, int(self._stage[e])))

    def _apply_actions(self, rows: np.ndarray, actions: np.ndarray) -> None:
        """Perturbation actions (steer encoding), one per entry; an env may repeat with
        distinct genes (in order)."""
        K = len(self.kinds)
        genes, kinds = np.divmod(actions - 1, K)
        vs, bits = self._action_vars[actions], self._action_bits[actions]
        r = rows[:, None]
        self._pin_mask[r, vs] = True
        self._pin_value[r, vs] = bits
        self._state[r, vs] = bits
        self._perturbed[rows, genes] = True
        oe = np.array([pin_value(k) for k in self.kinds], dtype=np.int8)[kinds]
        self._perturbed_kind[rows, genes] = 1 + oe
        if self.pulse_stages is not None:
            self._release[rows, genes] = self._stage[rows] + self.pulse_stages
        np.add.at(self._n_perturbed, rows, 1)
        names, kind_names = self.world.genes, self.kinds
        for e, g, k in zip(rows.tolist(), genes.tolist(), kinds.tolist()):
            self._perturbations[e].append((names[g], kind_names[k], int(self._stage[e])))

    def _release_due(self, rows: np.ndarray, stage: "np.ndarray | int") -> None:
        """Release the pulses of `rows` that end at `stage` (CellFateEnv._release_due)."""
        if self.pulse_stages is None or len(rows) == 0:
            return
        stage = np.broadcast_to(np.asarray(stage, dtype=np.int64), rows.shape)
        due = self._perturbed[rows] & (self._release[rows] == stage[:, None])
        if not due.any():
            return
        r, g = np.nonzero(due)
        e = rows[r]
        vs = self._gene_vars[g]
        self._pin_mask[e[:, None], vs] = False
        self._pin_value[e[:, None], vs] = 0
        self._perturbed[e, g] = False
        self._perturbed_kind[e, g] = 0
        self._release[e, g] = 0

    def _play_out_pulses(self, rows: np.ndarray) -> None:
        """After the last stage the still-active pulses of `rows` act for their remaining stages."""
        if self.pulse_stages is None:
            return
        stage = self.n_stages
        while True:
            active = rows[(self._perturbed[rows] & (self._release[rows] > stage)).any(axis=1)]
            if len(active) == 0:
                return
            self._advance(active, self.updates_per_stage)
            stage += 1
            self._release_due(active, stage)

    def _start_state(self, name: str) -> np.ndarray:
        if name not in self._start_cache:
            self._start_cache[name] = self.world.start_state(name, self.condition)
        return self._start_cache[name]

    def _reset_rows(self, rows: np.ndarray, options: dict | None) -> list[dict]:
        """Reset the envs of `rows` (their generators already seeded); their reset infos."""
        options = options or {}
        starts = self.settings["start"]
        given = options.get("perturbations")
        predict = self.task == "predict"
        self._pin_mask[rows] = False
        self._pin_value[rows] = 0
        self._perturbed[rows] = False
        self._perturbed_kind[rows] = 0
        self._release[rows] = 0
        self._stage[rows] = 0
        self._n_perturbed[rows] = 0
        names: list[str] = []
        for e in rows.tolist():
            start = options.get("start")
            if not start:
                if len(starts) > 1:
                    self._sync(e)  # a draw other than the stream's comes next
                    start = starts[int(self._rng(e).integers(len(starts)))]
                else:
                    start = starts[0]  # integers(1) draws nothing
            names.append(start)
            self.start_names[e] = start
            self._perturbations[e] = []
        if len(set(names)) == 1:
            self.states[rows] = self._start_state(names[0])
        else:
            for e, start in zip(rows.tolist(), names):
                self.states[e] = self._start_state(start)
        if predict and len(rows):
            if given is None:
                pert_rows, pert_actions = [], []
                K = len(self.kinds)
                for e in rows.tolist():
                    self._sync(e)
                    rng = self._rng(e)
                    size = int(rng.integers(0, self.max_perturb + 1))
                    pool = self.n_genes if self._free_genes is None else self._free_genes
                    for g in rng.choice(pool, size=size, replace=False).tolist():
                        pert_rows.append(e)
                        pert_actions.append(1 + g * K + int(rng.integers(K)))
                if pert_rows:
                    self._apply_actions(np.array(pert_rows, dtype=np.int64), np.array(pert_actions, dtype=np.int64))
            else:
                for e in rows.tolist():
                    self._sync(e)
                    for gene, kind in given:
                        self._apply(e, self.world.gene_index(gene), normalize_kind(kind))
            # The whole trajectory is drawn now, as CellFateEnv does.
            for k in range(self.n_stages):
                self._stage_states[rows, k] = self.states[rows]
                self._advance(rows, self.updates_per_stage)
            self._realized[rows] = self._finish(rows)
            self.states[rows] = self._stage_states[rows, 0]
        return [{"start": start} for start in names]

    # ---- observations and infos -------------------------------------------------------

    def _potential(self, rows: np.ndarray) -> np.ndarray:
        return (self.states[rows][:, self._care] == self._care_values).mean(axis=1)

    def _masks(self) -> np.ndarray:
        mask = np.ones((self.num_envs, self.n_actions), dtype=np.float32)
        if self.task == "steer":
            allowed = ~self._perturbed & self._perturbable[None, :] & (self._n_perturbed < self.max_perturb)[:, None]
            mask[:, 1:] = np.repeat(allowed, len(self.kinds), axis=1)
        return mask

    def _levels(self) -> np.ndarray:
        """(num_envs, genes) int64 levels (the sum of a gene's bits), as `world.gene_levels`."""
        levels = self._state[:, self._level_vars[0]].astype(np.int64)
        for row in self._level_vars[1:]:
            levels += self._state[:, row]
        return levels

    def _obs(self) -> dict[str, np.ndarray]:
        E = self.num_envs
        x = np.empty((E, self.n_genes, N_NODE_FEATURES), dtype=np.float32)
        x[:] = self._static
        if self.world.is_multivalued:
            x[:, :, 0] = self._levels() / self._max_level
        else:
            x[:, :, 0] = self.states
        x[:, :, 1] = self._perturbed_kind == 1
        x[:, :, 2] = self._perturbed_kind == 2
        x[:, :, 5] = (self._stage / self.n_stages)[:, None]
        if self.task == "steer":
            x[:, :, 6] = ((self.max_perturb - self._n_perturbed) / self.max_perturb)[:, None]
        if self.settings["observation"] == "flat":
            x = x.reshape(E, -1)
        return {"x": x, "action_mask": self._masks()}

    def _infos(self, env_infos: "list[tuple[int, dict]]") -> dict[str, Any]:
        """Per-env info dicts (in env order) as SyncVectorEnv batches them (`_add_info`)."""
        E = self.num_envs
        infos: dict[str, Any] = {}
        for e, info in env_infos:
            for key, value in info.items():
                if isinstance(value, (dict, np.ndarray)) or key == "final_obs":
                    infos = self._add_info(infos, {key: value}, e)
                    continue
                column = infos.get(key)
                if column is None:
                    if type(value) in (int, float, bool) or issubclass(type(value), np.number):
                        column = np.zeros(E, dtype=type(value))
                    else:
                        column = np.full(E, None, dtype=object)
                    infos[key] = column
                    infos["_" + key] = np.zeros(E, dtype=np.bool_)
                column[e] = value
                infos["_" + key][e] = True
        return infos

    # ---- gymnasium VectorEnv API -------------------------------------------------------

    def reset(self, *, seed: "int | list[int | None] | None" = None, options: dict | None = None):
        E = self.num_envs
        if seed is None:
            seeds: list = [None] * E
        elif isinstance(seed, (int, np.integer)):
            seeds = [int(seed) + i for i in range(E)]
        else:
            seeds = list(seed)
        if len(seeds) != E:
            raise ValueError(f"reset: {len(seeds)} seeds for {E} environments")
        options = dict(options) if options else None
        reset_mask = options.pop("reset_mask", None) if options else None
        if reset_mask is not None:
            reset_mask = np.asarray(reset_mask, dtype=bool)
            if reset_mask.shape != (E,) or not reset_mask.any():
                raise ValueError(f"options['reset_mask'] must be a ({E},) bool array with at least one True")
            rows = np.flatnonzero(reset_mask)
        else:
            rows = np.arange(E)
        for e in rows.tolist():
            if seeds[e] is not None:
                self._rngs[e], self._rng_seeds[e] = seeding.np_random(int(seeds[e]))
                self._drop_stream(e)
        self._autoreset[rows] = False
        env_infos = self._reset_rows(rows, options)
        return self._obs(), self._infos(list(zip(rows.tolist(), env_infos)))

    def step(self, actions):
        E = self.num_envs
        actions = np.asarray(actions).reshape(E).astype(np.int64)
        rewards = np.zeros(E, dtype=np.float64)
        terminated = np.zeros(E, dtype=bool)
        env_infos: dict[int, dict[str, Any]] = {}
        resetting = np.flatnonzero(self._autoreset)
        stepping = np.flatnonzero(~self._autoreset)
        if len(stepping):
            if self.task == "steer":
                self._step_steer(stepping, actions[stepping], rewards, terminated, env_infos)
            else:
                self._step_predict(stepping, actions[stepping], rewards, terminated, env_infos)
        if len(resetting):
            for e, info in zip(resetting.tolist(), self._reset_rows(resetting, None)):
                env_infos[e] = info
        truncated = np.zeros(E, dtype=bool)
        self._autoreset = terminated | truncated
        return self._obs(), rewards, terminated, truncated, self._infos(sorted(env_infos.items()))

    def _step_steer(self, rows, actions, rewards, terminated, env_infos) -> None:
        s = self.settings
        K = len(self.kinds)
        in_range = (actions >= 0) & (actions < self.n_actions)
        gene = np.where(in_range & (actions > 0), (actions - 1) // K, 0)
        allowed = ~self._perturbed[rows, gene] & self._perturbable[gene] & (self._n_perturbed[rows] < self.max_perturb)
        valid = in_range & ((actions == NO_PERTURBATION) | allowed)
        r = np.zeros(len(rows), dtype=np.float64)
        if not valid.all():
            r[~valid] -= s["invalid_action_penalty"]
            for e in rows[~valid].tolist():
                env_infos[e] = {"invalid_action": True}
        before = self._potential(rows) if s["shaping"] else None
        perturb = valid & (actions != NO_PERTURBATION)
        if perturb.any():
            self._apply_actions(rows[perturb], actions[perturb])
            r[perturb] -= s["perturbation_cost"]
        moving = rows[~perturb]
        self._advance(moving, self.updates_per_stage)
        self._stage[moving] += 1
        self._release_due(moving, self._stage[moving])
        done = self._stage[rows] >= self.n_stages
        ending = rows[done]
        if len(ending):
            self._play_out_pulses(ending)
            fates = self._finish(ending)
            success = fates == self.target_index
            r[done] += success.astype(np.float64)
            labels = self.world.fate_labels
            for e, fate, ok in zip(ending.tolist(), fates.tolist(), success.tolist()):
                perts = self._perturbations[e]
                env_infos.setdefault(e, {}).update(
                    fate=labels[fate],
                    success=bool(ok),
                    perturbations=[(g, k) for g, k, _ in perts],
                    perturbation_stages=[st for *_, st in perts],
                )
        if s["shaping"]:
            after = np.zeros(len(rows), dtype=np.float64)
            if not done.all():
                after[~done] = self._potential(rows[~done])
            r += after - before
        rewards[rows] = r
        terminated[rows] = done

    def _step_predict(self, rows, actions, rewards, terminated, env_infos) -> None:
        valid = (actions >= 0) & (actions < self.n_actions)
        self._predictions[rows, self._stage[rows]] = np.where(valid, actions, -1)
        r = np.where(actions == self._realized[rows], 1.0 / self.n_stages, 0.0)
        r[~valid] -= self.settings["invalid_action_penalty"]
        self._stage[rows] += 1
        done = self._stage[rows] >= self.n_stages
        labels = self.world.fate_labels
        for e in rows[done].tolist():
            realized = int(self._realized[e])
            predictions = self._predictions[e].tolist()
            env_infos[e] = dict(
                fate=labels[realized],
                predictions=[labels[p] if p >= 0 else None for p in predictions],
                accuracy=predictions.count(realized) / len(predictions),  # np.mean's value, exactly
                perturbations=[(g, k) for g, k, _ in self._perturbations[e]],
            )
        going = rows[~done]
        self.states[going] = self._stage_states[going, self._stage[going]]
        rewards[rows] = r
        terminated[rows] = done

    def render(self) -> tuple[str, ...]:
        out = []
        levels = self.world.gene_levels(self.states)
        fates = self.world.classify(self.states)
        for e in range(self.num_envs):
            on = [g for g, v in zip(self.world.genes, levels[e]) if v]
            out.append(
                f"stage {int(self._stage[e])}/{self.n_stages} nearest={self.world.fate_labels[int(fates[e])]} "
                f"on={on} perturbed={self._perturbations[e]}"
            )
        return tuple(out)
