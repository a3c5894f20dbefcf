"""Reference networks and published rankings to score inference against, read from their files.

BEELINE writes a ground truth as `refNetwork.csv` (`Gene1,Gene2,Type`, Type `+` or `-`)
and each method's output as `rankedEdges.csv` (tab-separated `Gene1 Gene2 EdgeWeight`).
SCNS / GenYsis write a Boolean network as `.net` clauses, `A&^B&C -> Target` (`^` = NOT),
one conjunction a line, OR-ed per target; a regulator that appears both plain and negated
for one target acts both ways (sign 0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from envs.errors import UserInputError

SignedEdge = tuple[str, str, int]


def read_ref_network(path: "str | Path") -> list[SignedEdge]:
    """BEELINE's refNetwork.csv as (regulator, target, sign) triples, self-loops included."""
    path = Path(path)
    table = pd.read_csv(path)
    missing = [c for c in ("Gene1", "Gene2") if c not in table.columns]
    if missing:
        raise UserInputError(f"{path}: no column {missing[0]!r}; expected Gene1,Gene2,Type")
    types = table["Type"].astype(str) if "Type" in table.columns else pd.Series(["+"] * len(table))
    signs = types.map(lambda t: -1 if t.strip() == "-" else 1 if t.strip() == "+" else 0)
    return [(str(a), str(b), int(s)) for a, b, s in zip(table["Gene1"], table["Gene2"], signs)]


def read_ranked_edges(path: "str | Path") -> list[tuple[str, str, float]]:
    """BEELINE's rankedEdges.csv (tab-separated Gene1, Gene2, EdgeWeight) in file order."""
    path = Path(path)
    table = pd.read_csv(path, sep="\t")
    if not {"Gene1", "Gene2", "EdgeWeight"} <= set(table.columns):
        raise UserInputError(f"{path}: expected the columns Gene1, Gene2, EdgeWeight; got {list(table.columns)}")
    weights = pd.to_numeric(table["EdgeWeight"], errors="coerce").fillna(0.0).to_numpy(dtype=np.float64)
    return [(str(a), str(b), float(w)) for a, b, w in zip(table["Gene1"], table["Gene2"], weights)]


def read_genysis_edges(path: "str | Path", aliases: "dict[str, str] | None" = None) -> list[SignedEdge]:
    """Signed edges of a GenYsis / SCNS `.net` network; `aliases` renames genes (e.g. Eto2 -> Cbfa2t3h)."""
    path = Path(path)
    aliases = aliases or {}
    signs: dict[tuple[str, str], set[int]] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "->" not in line:
            raise UserInputError(f"{path} line {number}: {line!r} is not a clause 'A&^B -> Target'")
        body, target = (part.strip() for part in line.split("->", 1))
        target = aliases.get(target, target)
        for literal in body.split("&"):
            literal = literal.strip()
            negated = literal.startswith("^")
            name = aliases.get(literal.lstrip("^").strip(), literal.lstrip("^").strip())
            signs.setdefault((name, target), set()).add(-1 if negated else 1)
    return [(a, b, next(iter(s)) if len(s) == 1 else 0) for (a, b), s in signs.items()]
