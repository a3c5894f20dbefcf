"""A uniform replay buffer of single transitions in flat numpy arrays, and the SAC train batch built from it.

RLlib's ``EpisodeReplayBuffer`` keeps ``SingleAgentEpisode`` objects and, for every
gradient step, slices ``batch_size`` of them and runs the learner connector over the
slices; at one gradient step per env step that is most of SAC's time. Here a
transition (obs, action, reward, next obs, terminated) is one row of preallocated
arrays, a batch is one fancy-indexing gather per column, and the batch goes to the
learner as tensors, past the learner connector.

- :func:`transitions_from_episodes`: the rows of the episode chunks an env runner
  returns (n_step = 1: the next observation is the episode's next one; a chunk's last
  row is terminated only when its episode terminated; a truncated episode's last row
  bootstraps from the final observation, as RLlib's buffer does).
- :class:`FlatReplayBuffer`: a ring of ``capacity`` rows. Memory grows by doubling
  as rows arrive (a trial of 20k env steps never holds the 1e6-row default), then
  the oldest rows are overwritten. Sampling is uniform with replacement over the
  rows held, from the buffer's own seeded generator (as SB3's and RLlib's uniform
  buffers sample).
- :func:`sac_train_batch`: the columns RLlib's SAC loss reads (``Columns.OBS``,
  ``NEXT_OBS``, ``ACTIONS``, ``REWARDS``, ``TERMINATEDS``, ``TRUNCATEDS`` and the
  buffer's ``weights`` = 1 and ``n_step`` = 1) with the dtypes its learner
  connector gives them, as a ``MultiAgentBatch`` for ``LearnerGroup.update``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

# Replay columns besides the observation dicts, with their storage dtypes.
# Actions are stored as sampled (`_actions`): int64 for a Discrete space, float32 rows for a Box.
SCALARS = {"actions": None, "rewards": np.float32, "terminateds": np.bool_, "truncateds": np.bool_}
INITIAL_ROWS = 4096


def _stack(value: Any) -> dict[str, np.ndarray]:
    """An episode's observations (a dict of arrays, or a list of dicts) as a dict of arrays."""
    if isinstance(value, Mapping):
        return {k: np.asarray(v) for k, v in value.items()}
    return {k: np.stack([np.asarray(o[k]) for o in value]) for k in value[0]}


def _actions(episode: Any, length: int) -> np.ndarray:
    """An episode's actions: (T,) int64 for a Discrete space, (T, dims) float32 for a Box."""
    a = np.asarray(episode.get_actions())
    if np.issubdtype(a.dtype, np.integer):
        return a.reshape(length).astype(np.int64, copy=False)
    return a.reshape(length, -1).astype(np.float32, copy=False)


def transitions_from_episodes(episodes: Iterable[Any]) -> dict[str, Any] | None:
    """The (obs, actions, rewards, next_obs, terminateds, truncateds) rows of episode chunks, in order.

    Each chunk of length T gives T rows: obs[t], action[t], reward[t], obs[t + 1];
    row T - 1 is terminated (truncated) when the chunk ends its episode that way.
    None when the chunks hold no step."""
    parts: list[dict[str, Any]] = []
    for episode in episodes:
        length = len(episode)
        if length == 0:
            continue
        obs = _stack(episode.get_observations())
        last = np.zeros(length, dtype=np.bool_)
        terminated, truncated = last.copy(), last.copy()
        terminated[-1] = bool(episode.is_terminated)
        truncated[-1] = bool(episode.is_truncated)
        parts.append(
            {
                "obs": {k: v[:length] for k, v in obs.items()},
                "next_obs": {k: v[1 : length + 1] for k, v in obs.items()},
                "actions": _actions(episode, length),
                "rewards": np.asarray(episode.get_rewards(), dtype=np.float32).reshape(length),
                "terminateds": terminated,
                "truncateds": truncated,
            }
        )
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    keys = parts[0]["obs"].keys()
    return {
        "obs": {k: np.concatenate([p["obs"][k] for p in parts]) for k in keys},
        "next_obs": {k: np.concatenate([p["next_obs"][k] for p in parts]) for k in keys},
        **{c: np.concatenate([p[c] for p in parts]) for c in SCALARS},
    }


class FlatReplayBuffer:
    """Uniform replay of transitions in numpy arrays: a ring of `capacity` rows.

    Arrays are allocated on the first :meth:`add` from the rows' shapes and dtypes
    and double in length as rows arrive, up to `capacity`; from then on each new row
    overwrites the oldest one."""

    def __init__(self, capacity: int, seed: int | None = None, initial_rows: int = INITIAL_ROWS):
        if capacity < 1:
            raise ValueError(f"replay capacity must be at least 1, got {capacity}")
        self.capacity = int(capacity)
        self._initial = max(1, min(int(initial_rows), self.capacity))
        self.rng = np.random.default_rng(seed)
        self.obs: dict[str, np.ndarray] = {}
        self.next_obs: dict[str, np.ndarray] = {}
        self.columns: dict[str, np.ndarray] = {}
        self.size = 0  # rows held
        self.pos = 0  # row the next add writes first
        self.added = 0  # rows ever added

    def __len__(self) -> int:
        return self.size

    @property
    def allocated(self) -> int:
        """Rows the arrays hold room for (at most `capacity`)."""
        return len(self.columns["rewards"]) if self.columns else 0

    def _allocate(self, rows: int, like: Mapping[str, Any]) -> None:
        def grow(old: np.ndarray | None, sample: np.ndarray) -> np.ndarray:
            new = np.zeros((rows, *sample.shape[1:]), dtype=sample.dtype)
            if old is not None:
                new[: self.size] = old[: self.size]
            return new

        self.obs = {k: grow(self.obs.get(k), v) for k, v in like["obs"].items()}
        self.next_obs = {k: grow(self.next_obs.get(k), v) for k, v in like["next_obs"].items()}
        self.columns = {c: grow(self.columns.get(c), np.asarray(like[c], dtype=t)) for c, t in SCALARS.items()}

    def add(self, rows: Mapping[str, Any]) -> int:
        """Append the rows of :func:`transitions_from_episodes`; returns how many were added."""
        n = len(rows["rewards"])
        if n == 0:
            return 0
        if self.allocated < self.capacity and self.size + n > self.allocated:
            # Still growing (pos == size): double until the new rows fit or capacity is reached.
            target = max(self.allocated, self._initial)
            while target < self.size + n and target < self.capacity:
                target *= 2
            self._allocate(min(target, self.capacity), rows)
        if n > self.capacity:  # more rows than the ring holds: only the newest survive
            rows = _tail(rows, self.capacity)
            self.added += n - self.capacity
            n = self.capacity
        where = (self.pos + np.arange(n)) % self.capacity
        for k, v in rows["obs"].items():
            self.obs[k][where] = v
        for k, v in rows["next_obs"].items():
            self.next_obs[k][where] = v
        for c in SCALARS:
            self.columns[c][where] = rows[c]
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)
        self.added += n
        return n

    def sample_indices(self, n: int) -> np.ndarray:
        """`n` row indices drawn uniformly, with replacement, from the rows held."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        return self.rng.integers(0, self.size, size=n)

    def rows(self, indices: np.ndarray) -> dict[str, Any]:
        """The rows at `indices`, one gather per column."""
        return {
            "obs": {k: v[indices] for k, v in self.obs.items()},
            "next_obs": {k: v[indices] for k, v in self.next_obs.items()},
            **{c: v[indices] for c, v in self.columns.items()},
        }

    def sample(self, n: int) -> dict[str, Any]:
        return self.rows(self.sample_indices(n))

    # ---- checkpoints ----------------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        """The rows held (oldest first) and the generator's state."""
        order = (np.arange(self.size) + (self.pos if self.size == self.capacity else 0)) % max(self.capacity, 1)
        held = self.rows(order) if self.size else None
        return {"capacity": self.capacity, "added": self.added, "rows": held, "rng": self.rng.bit_generator.state}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.obs, self.next_obs, self.columns = {}, {}, {}
        self.size = self.pos = self.added = 0
        if state.get("rows") is not None:
            self.add(state["rows"])
        self.added = int(state["added"])
        self.rng.bit_generator.state = state["rng"]


def _tail(rows: Mapping[str, Any], n: int) -> dict[str, Any]:
    return {
        "obs": {k: v[-n:] for k, v in rows["obs"].items()},
        "next_obs": {k: v[-n:] for k, v in rows["next_obs"].items()},
        **{c: np.asarray(rows[c])[-n:] for c in SCALARS},
    }


def sac_train_batch(rows: Mapping[str, Any], device: torch.device | str = "cpu") -> MultiAgentBatch:
    """A MultiAgentBatch of the default module holding what RLlib's SAC loss reads, as tensors on `device`.

    Dtypes as RLlib's SAC learner connector makes them (discrete actions int64 here, the loss
    casts them to int64 anyway; continuous ones float32); ``weights`` (importance weights of a prioritised
    buffer) are 1 and ``n_step`` is 1, as from RLlib's uniform buffer with n_step=1."""
    n = len(rows["rewards"])

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(device)

    columns = {
        Columns.OBS: {k: tensor(v) for k, v in rows["obs"].items()},
        Columns.NEXT_OBS: {k: tensor(v) for k, v in rows["next_obs"].items()},
        Columns.ACTIONS: tensor(rows["actions"]),
        Columns.REWARDS: tensor(rows["rewards"]),
        Columns.TERMINATEDS: tensor(rows["terminateds"]),
        Columns.TRUNCATEDS: tensor(rows["truncateds"]),
        "weights": torch.ones(n, dtype=torch.float32, device=device),
        "n_step": torch.ones(n, dtype=torch.int64, device=device),
    }
    return MultiAgentBatch({DEFAULT_MODULE_ID: SampleBatch(columns)}, env_steps=n)
