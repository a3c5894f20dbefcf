"""Built-in worlds, by name. Each entry builds its World on first use (then cached)."""

from __future__ import annotations

from typing import Callable

from envs.worlds.myeloid import myeloid_world
from envs.worlds.tcell import tcell_world

BUILTIN_WORLDS: dict[str, Callable] = {"myeloid": myeloid_world, "tcell": tcell_world}
