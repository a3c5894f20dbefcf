"""A world: a gene network plus named fates, start states and stages; loads by name or path."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from envs.errors import UserInputError, choices_error
from envs.files import atomic_write_text
from envs.formats import read_network
from envs.network import BooleanNetwork

OTHER = "other"
DONT_CARE = -1


@dataclass(frozen=True, eq=False)
class World:
    """Everything a simulation needs, as plain arrays and names.

    `signatures[f, g]` is 1/0 where fate f requires gene g on/off and -1 where it does
    not care. A state is named by the fate with the highest agreement over the genes
    that fate cares about, or `other` when no agreement reaches `fate_threshold`.
    """

    name: str
    network: BooleanNetwork
    fates: tuple[str, ...]
    signatures: np.ndarray = field(repr=False)
    start_states: dict[str, np.ndarray] = field(repr=False)
    default_start: str = ""
    stages: tuple[str, ...] = ()
    fate_threshold: float = 0.8
    description: str = ""
    source: str = "built-in"

    def __post_init__(self) -> None:
        if self.signatures.shape != (len(self.fates), self.network.n_genes):
            raise UserInputError(f"world {self.name}: signatures must be (fates, genes)")
        if not self.start_states:
            raise UserInputError(f"world {self.name}: at least one start state is needed")
        if not self.default_start:
            object.__setattr__(self, "default_start", next(iter(self.start_states)))

    @property
    def genes(self) -> tuple[str, ...]:
        return self.network.genes

    @property
    def n_genes(self) -> int:
        return self.network.n_genes

    @property
    def fate_labels(self) -> tuple[str, ...]:
        """Fate names plus `other`, in classification index order."""
        return self.fates + (OTHER,)

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.network.constant_genes

    def fate_index(self, fate: str) -> int:
        if fate not in self.fates:
            raise choices_error(f"fate of world {self.name!r}", fate, self.fates)
        return self.fates.index(fate)

    def start_state(self, name: str | None = None) -> np.ndarray:
        name = name or self.default_start
        if name not in self.start_states:
            raise choices_error(f"start state of world {self.name!r}", name, list(self.start_states))
        return self.start_states[name].copy()

    @functools.cached_property
    def care(self) -> np.ndarray:
        """(F, n) the genes each fate's signature specifies."""
        return self.signatures != DONT_CARE

    def start_names(self, start: "str | list[str] | None") -> list[str]:
        """A start name, a list of them, or None (the default start) as a checked list."""
        names = [self.default_start] if start is None else ([start] if isinstance(start, str) else list(start))
        for name in names:
            self.start_state(name)
        return names

    def agreement(self, states: np.ndarray) -> np.ndarray:
        """(B, F) fraction of each fate's specified genes that the state matches."""
        match = (states[:, None, :] == self.signatures[None, :, :]) & self.care[None]
        return match.sum(axis=2) / np.maximum(self.care.sum(axis=1), 1)[None, :]

    def classify(self, states: np.ndarray) -> np.ndarray:
        """Fate index per state; len(fates) means `other`. Ties go to the more specific fate."""
        agree = self.agreement(np.atleast_2d(states))
        specificity = self.care.sum(axis=1)
        # Tie-break towards fates that specify more genes: a full match on a detailed
        # signature is stronger evidence than on a vague one.
        score = agree + 1e-6 * specificity[None, :]
        best = score.argmax(axis=1)
        best_agree = agree[np.arange(len(best)), best]
        return np.where(best_agree >= self.fate_threshold, best, len(self.fates))

    def summary(self) -> dict:
        """JSON-ready description for `tournament worlds`."""
        def signature(f: int) -> dict[str, int]:
            return {g: int(v) for g, v in zip(self.genes, self.signatures[f]) if v != DONT_CARE}

        return {
            "name": self.name,
            "source": self.source,
            "genes": list(self.genes),
            "inputs": list(self.inputs),
            "fates": {f: signature(i) for i, f in enumerate(self.fates)},
            "stages": list(self.stages),
            "start_states": {
                k: [g for g, v in zip(self.genes, s) if v] for k, s in self.start_states.items()
            },
            "default_start": self.default_start,
            "description": self.description.strip().splitlines()[0] if self.description else "",
        }


def make_world(
    name: str,
    network: BooleanNetwork,
    fates: dict[str, dict[str, int]],
    start_states: dict[str, "list[str] | dict[str, int]"],
    *,
    default_start: str = "",
    stages: "tuple[str, ...] | list[str]" = (),
    fate_threshold: float = 0.8,
    description: str = "",
    source: str = "built-in",
) -> World:
    """Build a World from gene-name dictionaries (fate -> {gene: 0/1}, start -> genes on)."""
    index = {g: i for i, g in enumerate(network.genes)}
    sig = np.full((len(fates), network.n_genes), DONT_CARE, dtype=np.int8)
    for f, (fate, genes) in enumerate(fates.items()):
        for gene, value in genes.items():
            if gene not in index:
                raise choices_error(f"gene in signature of fate {fate!r}", gene, network.genes)
            if int(value) not in (0, 1):
                raise UserInputError(f"fate {fate!r}: gene {gene} must be 0 or 1, got {value!r}")
            sig[f, index[gene]] = int(value)
    starts: dict[str, np.ndarray] = {}
    for key, on in start_states.items():
        state = np.zeros(network.n_genes, dtype=np.uint8)
        items = on.items() if isinstance(on, dict) else ((g, 1) for g in on)
        for gene, value in items:
            if gene not in index:
                raise choices_error(f"gene in start state {key!r}", gene, network.genes)
            state[index[gene]] = int(value)
        starts[key] = state
    for stage in stages:
        if stage not in fates:
            raise choices_error("stage (must be a fate)", stage, list(fates))
    return World(
        name=name,
        network=network,
        fates=tuple(fates),
        signatures=sig,
        start_states=starts,
        default_start=default_start,
        stages=tuple(stages),
        fate_threshold=fate_threshold,
        description=description,
        source=source,
    )


# ---- files ------------------------------------------------------------------------------

WORLD_FILE = "world.json"


def save_world(world: World, directory: "str | Path") -> Path:
    """Write `<dir>/network.bnet` and `<dir>/world.json` (fates, start states, stages)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    summary = world.summary()
    meta = {
        "name": world.name,
        "network": "network.bnet",
        "fates": summary["fates"],
        "start_states": summary["start_states"],
        "default_start": world.default_start,
        "stages": list(world.stages),
        "fate_threshold": world.fate_threshold,
        "description": world.description,
    }
    atomic_write_text(directory / "network.bnet", world.network.to_bnet())
    atomic_write_text(directory / WORLD_FILE, json.dumps(meta, indent=2) + "\n")
    return directory


def read_world(path: "str | Path") -> World:
    """Read a world directory (or its world.json) written by `save_world` or by hand."""
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
    network = read_network(meta_path.parent / meta["network"])
    return make_world(
        meta.get("name", meta_path.parent.name),
        network,
        meta["fates"],
        meta["start_states"],
        default_start=meta.get("default_start", ""),
        stages=meta.get("stages", ()),
        fate_threshold=float(meta.get("fate_threshold", 0.8)),
        description=meta.get("description", ""),
        source=str(meta_path.parent),
    )


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
    if path.exists():
        return read_world(path)
    raise choices_error("world", name, list(BUILTIN_WORLDS) + ["<path to a world directory or world.json>"])


def load_world(name_or_path: "str | Path | World") -> World:
    """A built-in world by name, or a world directory / world.json by path; Worlds pass through."""
    if isinstance(name_or_path, World):
        return name_or_path
    return _load_cached(str(name_or_path))


def find_worlds(directory: "str | Path") -> list[Path]:
    """World directories below `directory` (those holding a world.json)."""
    return sorted(p.parent for p in Path(directory).rglob(WORLD_FILE))
