"""Cell-fate worlds: Boolean gene networks, exact oracle, and the perturbation environment."""

from envs.errors import UserInputError
from envs.network import PERTURBATION_KINDS, BooleanNetwork, Pins
from envs.world import World, builtin_world_names, load_world, make_world, read_world, save_world
from envs.cell_fate_env import CellFateEnv  # noqa: E402  (after world: it builds on it)

__all__ = [
    "PERTURBATION_KINDS",
    "BooleanNetwork",
    "CellFateEnv",
    "Pins",
    "UserInputError",
    "World",
    "builtin_world_names",
    "load_world",
    "make_world",
    "read_world",
    "save_world",
]
