"""The base of every algorithm's settings: a frozen dataclass read from ``algo_hparams``.

Each algorithm keeps its settings, their defaults and their documentation in one
dataclass in its own file (``PPOSettings`` in algorithms/ppo.py, ...), derived from
:class:`CommonSettings`, which holds the keys every algorithm accepts.
:meth:`CommonSettings.from_dict` turns a trial's ``algo_hparams`` into one:

- a key that names no setting is a UserInputError listing the valid keys (a typo
  must never be ignored silently);
- a setting whose user-facing key is not its field name says so in its field
  metadata (``lambda`` is a Python keyword, so the field is ``lambda_``), and a
  class may accept other spellings through ``ALIASES`` (TRPO: ``max_kl``);
- for the predict task ``gamma`` defaults to 0: actions never change what the cell
  does next, so each step is a contextual bandit with the same optimal policy and
  none of the variance of later, action-independent rewards;
- numbers are converted to the field's type (YAML may give ``1e6`` for an int).
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypeVar

from envs.errors import UserInputError, choices_error

S = TypeVar("S", bound="CommonSettings")


def key(name: str) -> dict[str, str]:
    """Field metadata: the user-facing key of a setting whose field name differs."""
    return {"key": name}


@dataclass(frozen=True, kw_only=True)
class CommonSettings:
    """Settings every algorithm accepts.

    torch_threads: torch threads of the trial's process (N trials fill N cores).
    num_envs_per_env_runner: environments stepped in lockstep by each env runner.
    rollout_fragment_length: env steps per environment per sample call ("auto":
        RLlib derives it from the train batch).
    optimizer_hparams_by_group: per optimizer group (SAC: qf, qf_twin, policy,
        alpha; TRPO: critic) hyperparameters on top of the trial's optimizer_hparams.
    """

    NAME: ClassVar[str] = "algorithm"
    ALIASES: ClassVar[Mapping[str, str]] = {}

    torch_threads: int = 1
    num_envs_per_env_runner: int = 32
    rollout_fragment_length: int | str = "auto"
    optimizer_hparams_by_group: Mapping[str, Mapping[str, Any]] | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            kind = _field_types(type(self))[f.name]
            converted = _convert(kind, value)
            if converted is _BAD:
                shown = getattr(kind, "__name__", str(kind))
                raise UserInputError(f"{self.NAME} setting {_user_key(f)} must be {shown}, got {value!r}")
            object.__setattr__(self, f.name, converted)

    @classmethod
    def keys(cls) -> dict[str, str]:
        """User-facing key (and alias) -> field name."""
        out = {_user_key(f): f.name for f in fields(cls)}
        return {**out, **cls.ALIASES}

    @classmethod
    def from_dict(cls: type[S], values: Mapping[str, Any] | None = None, *, task: str = "steer", name: str | None = None) -> S:
        """The settings of `values` (user keys) on top of the defaults; `name` labels errors."""
        values = dict(values or {})
        keys = cls.keys()
        unknown = sorted(set(values) - set(keys))
        if unknown:
            raise choices_error(f"{name or cls.NAME} hyperparameter", unknown[0], sorted(keys))
        given = {keys[k]: v for k, v in values.items()}
        if task == "predict" and "gamma" in {f.name for f in fields(cls)}:
            given.setdefault("gamma", 0.0)
        return cls(**given)

    def common(self) -> dict[str, Any]:
        """The CommonSettings part, under its user keys (what every stage of a staged algorithm receives)."""
        return {f.name: getattr(self, f.name) for f in fields(CommonSettings)}


def _user_key(f: Any) -> str:
    return f.metadata.get("key", f.name)


COMMON_KEYS = frozenset(CommonSettings.keys())


def common_part(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """The CommonSettings keys of an ``algo_hparams`` mapping."""
    return {k: v for k, v in hparams.items() if k in COMMON_KEYS}


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


_BAD = object()


def _convert(kind: Any, value: Any) -> Any:
    """`value` as the scalar type `kind` names (int, float, bool, or X | None); anything else as given."""
    options = typing.get_args(kind) if isinstance(kind, types.UnionType) else (kind,)
    if value is None:
        return None if type(None) in options else _BAD
    if type(value) in options:
        return value
    for target in (bool, int, float):
        if target in options:
            try:
                return target(value)
            except (TypeError, ValueError):
                return _BAD
    return value
