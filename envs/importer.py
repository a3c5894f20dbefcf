"""Import a published logical model as a World: starts, input conditions, fates named by marker sets, checked against its attractors.

`import_model(source, conditions=..., starts=..., markers=...)` reads the model
(`envs.model_files.read_model`: .bnet, SBML-qual, BooleanNet, `pyboolnet:NAME`, `cana:NAME`),
builds a World, and lists, for every (start, condition), the attractors a cell can reach
(`envs.attractors`, symbolic: real-size models, no state enumeration) with the fraction of
simulated cells that end in each. Each attractor is named by the markers: a fate's markers must
all hold in every state of the attractor; an attractor where they hold in only some states is
reported as "matches in k of n states", one that matches two fates as ambiguous, one that matches
none as unnamed, with its genes, so the user can name it. A fate whose markers match no reachable
attractor is refused. Without markers every reachable attractor becomes a fate `attractor_K`
whose markers are its stable genes (inputs aside).

Names: a model whose every variable carries one prefix (BBM writes `v_Gata3`) can be addressed
without it (`Gata3`). GINsim's own files give the authors' starts, input conditions
(`initialState.xml`) and priority classes (`reg2dyn_parameters.xml`); names in them that map to
no gene are reported, not refused, since the files come from a different export of the model.

Priority classes: the attractors listed are those of general asynchronous updating (AEON has no
priority classes); under the "priority" scheme the simulated cells say which of them priority
updates reach (see `envs.attractors`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from envs.attractors import Attractor, reachable_attractors
from envs.errors import UserInputError, choices_error
from envs.network import UPDATE_SCHEMES
from envs.world import DONT_CARE, World, make_world, save_world

DEFAULT_START = "all_off"
DEFAULT_CELLS = 200
AUTO_FATE = "attractor_{}"


class FileState(dict):
    """{gene: level} read from a model's companion file: names that map to no gene are reported, not refused."""


@dataclass
class GinsimStates:
    """GINsim's initialState.xml: named states (starts) and named input states (conditions), {gene: level}."""

    states: dict[str, FileState]
    inputs: dict[str, FileState]


def read_ginsim_states(path: "str | Path") -> GinsimStates:
    """Parse `<initialState name=... value="Gene;level ...">` and `<input name=... value=...>` entries."""
    root = _xml_root(path)
    out = GinsimStates({}, {})
    for tag, target in (("initialState", out.states), ("input", out.inputs)):
        for el in root.iter(tag):
            name = (el.get("name") or "").strip()
            if not name:
                continue
            target[name] = FileState(_ginsim_values(el.get("value", ""), f"{path}: {tag} {name!r}"))
    if not out.states and not out.inputs:
        raise UserInputError(f"{path}: no <initialState> or <input> entries (is it GINsim's initialState file?)")
    return out


def _ginsim_values(text: str, where: str) -> dict[str, int]:
    values: dict[str, int] = {}
    for token in text.split():
        gene, sep, level = token.partition(";")
        if not sep or not level.strip().lstrip("-").isdigit():
            raise UserInputError(f"{where}: expected 'Gene;level', got {token!r}")
        values[gene.strip()] = int(level)
    return values


def read_ginsim_priority(path: "str | Path") -> tuple[FileState, list[str]]:
    """GINsim reg2dyn_parameters.xml priority classes as {gene: class} (0 = fastest), and notes.

    Classes are ordered by their `rank` (1 = fastest in GINsim). A gene whose increase and
    decrease sit in different classes (`Gene[+]`, `Gene,-`) gets the faster one: the priority
    scheme here ranks genes, not transitions.
    """
    root = _xml_root(path)
    lists = list(root.iter("priorityClassList"))
    if not lists:
        raise UserInputError(f"{path}: no <priorityClassList> (is it GINsim's reg2dyn_parameters file?)")
    if len(lists) > 1:
        raise UserInputError(f"{path}: {len(lists)} priority class lists; keep the one to use")
    classes = sorted(lists[0].iter("class"), key=lambda c: int(c.get("rank", "0") or 0))
    priority: FileState = FileState()
    notes: list[str] = []
    split: list[str] = []
    for rank, cls in enumerate(classes):
        if cls.get("mode", "1") not in ("1",):
            notes.append(f"priority class {cls.get('name')!r} has GINsim mode {cls.get('mode')}; "
                         "genes of one class update one at a time here")
        for token in (cls.get("content") or "").split():
            gene = token.split("[")[0].split(",")[0].strip()
            if gene != token:
                split.append(gene)
            priority[gene] = min(rank, priority.get(gene, rank))
    if split:
        notes.append(f"GINsim splits the transitions of {', '.join(sorted(set(split)))} between classes; each gets its fastest")
    names = ", ".join(f"{c.get('name', i)!r} ({sum(1 for v in priority.values() if v == i)} genes)" for i, c in enumerate(classes))
    notes.insert(0, f"priority classes from {Path(path).name}, fastest first: {names}")
    return priority, notes


def _xml_root(path: "str | Path"):
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"file not found: {path}")
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise UserInputError(f"{path}: not valid XML ({exc})") from None


# ---- the report -----------------------------------------------------------------------------


@dataclass
class FoundAttractor:
    """One attractor, numbered across the whole import, with its name and marker matches."""

    number: int
    attractor: Attractor
    levels: dict[str, "int | str"]  # gene -> stable level, or "~" where it oscillates
    fate: "str | None" = None  # the fate it is (all markers hold in every state)
    status: str = "unnamed"  # named | ambiguous | unnamed
    matches: dict[str, int] = field(default_factory=dict)  # fate -> states where all its markers hold
    fates_all: list[str] = field(default_factory=list)  # fates matched in every state
    condition: "str | None" = None

    def kind(self) -> str:
        a = self.attractor
        return "fixed point" if a.is_fixed_point else f"cyclic, {a.size} states"

    def label(self) -> str:
        if self.status == "named":
            return self.fate or ""
        if self.status == "ambiguous":
            return "ambiguous (" + " / ".join(self.fates_all) + ")"
        return "unnamed"

    def to_json(self) -> dict:
        a = self.attractor
        return {
            "number": self.number,
            "fate": self.fate,
            "status": self.status,
            "fixed_point": a.is_fixed_point,
            "size": a.size,
            "levels": self.levels,
            "oscillating": [g for g, v in self.levels.items() if v == "~"],
            "matches": {f: [k, a.size] for f, k in self.matches.items()},
            "condition": self.condition,
        }


@dataclass
class Reached:
    """The attractors reachable from one start under one condition, with simulated cell fractions."""

    start: str
    condition: "str | None"
    attractors: list[int]  # numbers of FoundAttractor
    cells: dict[int, float] = field(default_factory=dict)  # number -> fraction of simulated cells
    unsettled: float = 0.0  # fraction of cells in none of them when the simulation stopped
    n_cells: int = 0


@dataclass
class ImportReport:
    """What `import_model` built: the World, the reachable attractors per (start, condition), and notes."""

    world: World
    found: list[FoundAttractor]
    reached: list[Reached]
    notes: list[str]
    method: str
    auto: bool = False  # fates made from the attractors (no markers given)

    def attractor(self, number: int) -> FoundAttractor:
        return self.found[number - 1]

    def reachable(self, start: str, condition: "str | None" = None) -> list[FoundAttractor]:
        """The attractors reachable from `start` under `condition` (default: the world's)."""
        condition = self.world.check_condition(condition)
        for r in self.reached:
            if r.start == start and r.condition == condition:
                return [self.attractor(n) for n in r.attractors]
        raise choices_error("start", start, sorted({r.start for r in self.reached}))

    def to_json(self) -> dict:
        return {
            "world": self.world.name,
            "source": self.world.source,
            "method": self.method,
            "fates": self.world.summary()["fates"],
            "attractors": [f.to_json() for f in self.found],
            "reached": [
                {
                    "start": r.start,
                    "condition": r.condition,
                    "attractors": [{"number": n, "fate": self.attractor(n).fate, "cells": r.cells.get(n)} for n in r.attractors],
                    "unsettled": r.unsettled,
                    "n_cells": r.n_cells,
                }
                for r in self.reached
            ],
            "notes": list(self.notes),
        }

    def text(self) -> str:
        w = self.world
        s = w.summary()
        lines = [f"{w.name}: {w.n_genes} genes ({w.network.n_genes} Boolean variables) from {w.source}"]
        if s["levels"]:
            lines.append("  multi-valued: " + ", ".join(f"{g} (0..{m})" for g, m in s["levels"].items()))
        lines.append(f"  inputs: {', '.join(w.inputs) or '-'}")
        for name, values in w.conditions.items():
            mark = " (default)" if name == w.default_condition else ""
            lines.append(f"  condition {name}{mark}: {_levels_text(values)}")
        lines.append(f"  starts: {', '.join(w.start_states)} (default {w.default_start})")
        lines.append(f"  scheme: {w.scheme}; {self.method}")
        lines.append("fates (markers: all must hold; G=0 off, G=L at least level L):")
        for fate, markers in s["fates"].items():
            if self.auto:
                numbers = ", ".join(f"#{f.number}" for f in self.found if f.fate == fate)
                lines.append(f"  {fate}: the {len(markers)} stable genes of {numbers}")
            else:
                lines.append(f"  {fate}: {_levels_text(markers)}")
        lines.append(f"attractors ({len(self.found)}):")
        for f in self.found:
            extra = ""
            partial = {k: v for k, v in f.matches.items() if 0 < v < f.attractor.size}
            if partial:
                extra = "; " + ", ".join(f"{k} matches in {v} of {f.attractor.size} states" for k, v in partial.items())
            lines.append(f"  #{f.number} {f.label()} ({f.kind()}{extra}; condition {f.condition or '-'})")
            lines.append(f"      {_attractor_text(f)}")
        lines.append("reachable (fraction of simulated cells):")
        for r in self.reached:
            parts = []
            for n in r.attractors:
                p = r.cells.get(n)
                parts.append(f"#{n} {self.attractor(n).label()}" + ("" if p is None else f" {_fraction(p, r.n_cells)}"))
            if r.n_cells and r.unsettled:
                parts.append(f"unsettled {r.unsettled:.2f}")
            lines.append(f"  {r.start} | {r.condition or '-'}: " + ", ".join(parts))
        if self.notes:
            lines.append("notes:")
            lines += [f"  - {n}" for n in self.notes]
        return "\n".join(lines)


def _fraction(p: float, n_cells: int) -> str:
    if p == 0:
        return f"0 of {n_cells} cells"
    return f"{p:.2f}" if p >= 0.005 else f"{round(p * n_cells)} of {n_cells} cells"


def _levels_text(values: dict) -> str:
    return ", ".join(f"{g}={v}" for g, v in values.items()) or "(none)"


def _attractor_text(f: FoundAttractor) -> str:
    on = [g if v == 1 else f"{g}={v}" for g, v in f.levels.items() if v not in (0, "~")]
    osc = [g for g, v in f.levels.items() if v == "~"]
    text = "on: " + (", ".join(on) or "none")
    return text + (f"; oscillating: {', '.join(osc)}" if osc else "")


# ---- import ----------------------------------------------------------------------------------


class _Names:
    """Resolves user and file names to the model's genes: exact, or with the model's common prefix."""

    def __init__(self, genes: tuple[str, ...], strip: str = ""):
        self.genes = genes
        self.known = set(genes)
        self.strip = strip  # a prefix the genes were renamed without (v_ in BBM models)
        common = os.path.commonprefix(list(genes)) if len(genes) > 1 else ""
        cut = common.rfind("_")
        self.prefix = common[: cut + 1] if cut >= 0 else ""

    def __call__(self, name: str) -> "str | None":
        name = str(name).strip()
        if name in self.known:
            return name
        if self.prefix and self.prefix + name in self.known:
            return self.prefix + name
        if self.strip and name.startswith(self.strip) and name[len(self.strip):] in self.known:
            return name[len(self.strip):]
        return None

    def strict(self, values: dict) -> dict:
        """Names mapped where they can be; the rest left for the World to refuse, with choices."""
        return {self(g) or g: v for g, v in values.items()}

    def lenient(self, values: dict, where: str, notes: list[str]) -> dict:
        out, missing = {}, []
        for g, v in values.items():
            r = self(g)
            if r is None:
                missing.append(g)
            else:
                out[r] = v
        if missing:
            notes.append(f"{where}: {len(missing)} name(s) map to no gene of the model, ignored: {', '.join(missing)}")
        return out

    def resolve(self, values: "dict | list", where: str, notes: list[str]) -> "dict | list":
        if isinstance(values, (list, tuple)):  # genes on (a multi-valued one at its top level)
            return [self(g) or g for g in values]
        return self.lenient(values, where, notes) if isinstance(values, FileState) else self.strict(values)


def import_model(
    source,
    *,
    conditions: "dict[str, dict[str, int]] | None" = None,
    starts: "dict[str, dict[str, int]] | None" = None,
    markers: "dict[str, dict[str, int]] | None" = None,
    default_condition: "str | None" = None,
    default_start: "str | None" = None,
    stages: "tuple[str, ...] | list[str]" = (),
    priority: "dict[str, int] | None" = None,
    scheme: "str | None" = None,
    name: "str | None" = None,
    ginsim_states: "str | Path | None" = None,
    ginsim_priority: "str | Path | None" = None,
    n_cells: int = DEFAULT_CELLS,
    seed: int = 0,
) -> ImportReport:
    """Read a model and build a checked World; see the module docstring.

    `conditions`: name -> {input gene: level}; `starts`: name -> {gene: level} (every other
    gene 0); `markers`: fate -> {gene: level} (0 off, L at least level L); `priority`: gene ->
    class (0 fastest). `ginsim_states` adds every named GINsim state as a start and every named
    input state as a condition; `ginsim_priority` reads the classes from reg2dyn_parameters.xml.
    `scheme` defaults to "priority" when classes are given, else "async". `n_cells` simulated
    cells per (start, condition) give the fractions (0: none).
    """
    from envs.model_files import read_model

    model = read_model(source)
    notes: list[str] = list(model.notes)
    network = model.network
    genes_map = dict(model.genes)
    shell = make_world(model.name, network, {}, {"_": []}, genes=genes_map or None)
    prefix = _Names(shell.genes).prefix
    if prefix:
        # BBM names every variable v_...: the user speaks of Gata3, the variables keep v_Gata3_b1.
        genes_map = {g[len(prefix):]: [network.genes[v] for v in vs] for g, vs in zip(shell.gene_names, shell.gene_vars)}
        shell = make_world(model.name, network, {}, {"_": []}, genes=genes_map)
        notes.append(f"genes are named without the model's common prefix {prefix!r} (its variables keep it)")
    names = _Names(shell.genes, strip=prefix)

    starts = dict(starts or {})
    conditions = dict(conditions or {})
    if ginsim_states is not None:
        gs = read_ginsim_states(ginsim_states)
        for k, v in gs.states.items():
            starts.setdefault(k, v)
        for k, v in gs.inputs.items():
            conditions.setdefault(k, v)
    starts = {k: names.resolve(v, f"start {k!r}", notes) for k, v in starts.items()}
    conditions = {k: names.resolve(v, f"condition {k!r}", notes) for k, v in conditions.items()}
    markers = {k: names.strict(v) for k, v in (markers or {}).items()}
    if not starts:
        starts = {DEFAULT_START: {}}
        notes.append(f"no start given: start {DEFAULT_START!r} has every variable 0 except the condition's inputs")
    if not conditions and shell.inputs:
        notes.append(f"no condition given: the inputs ({', '.join(shell.inputs)}) keep their start values")

    classes: dict[str, int] = {}
    if ginsim_priority is not None:
        file_classes, pnotes = read_ginsim_priority(ginsim_priority)
        notes += pnotes
        classes.update(names.lenient(file_classes, Path(ginsim_priority).name, notes))
    if priority:
        classes.update(names.resolve(priority, "priority", notes))
        notes.append("priority classes: " + "; ".join(
            f"class {c}: {', '.join(g for g, k in priority.items() if k == c)}" for c in sorted(set(priority.values())))
            + "; every other gene after them")
    if classes:
        var_classes = {}
        for gene, c in classes.items():
            for v in shell.gene_vars[shell.gene_index(gene)]:
                var_classes[network.genes[v]] = int(c)
        network = network.with_priority(var_classes)
    scheme = scheme or ("priority" if classes else "async")
    if scheme not in UPDATE_SCHEMES:
        raise choices_error("update scheme", scheme, UPDATE_SCHEMES)
    if scheme == "priority" and not classes:
        notes.append("scheme 'priority' without classes: every gene in one class (asynchronous updating)")
    if classes and scheme != "priority":
        notes.append(f"priority classes are stored but scheme {scheme!r} ignores them")

    def build(fates: dict[str, dict[str, int]], stages_=()) -> World:
        return make_world(
            name or model.name, network, fates, starts, genes=genes_map or None,
            conditions=conditions or None, default_condition=default_condition or "",
            default_start=default_start or "", stages=stages_, scheme=scheme,
            description=f"imported from {model.source} by tournament import", source=str(model.source),
        )

    world = build(markers, stages)  # checks every gene, level, input and default
    if default_start and default_start not in world.start_states:
        raise choices_error("default start", default_start, list(world.start_states))

    found, reached = _search(world, n_cells, seed)
    if markers:
        _name_by_markers(world, found, reached)
    else:
        world = _auto_fates(world, found, build, notes)
    method = (
        "attractors: symbolic (biodivine_aeon), general asynchronous updating"
        + ("; fractions: simulated cells under priority classes" if scheme == "priority" else "")
        + (f"; {n_cells} simulated cells per start and condition (seed {seed})" if n_cells else "")
    )
    if scheme == "priority":
        notes.append("priority classes: the attractors are computed for general asynchronous updating; every state "
                     "priority updates reach is reachable asynchronously, but priorities can make an attractor "
                     "unreachable (or change a cyclic one): the simulated fractions, under priorities, say which are reached")
    return ImportReport(world=world, found=found, reached=reached, notes=notes, method=method, auto=not markers)


def _search(world: World, n_cells: int, seed: int) -> tuple[list[FoundAttractor], list[Reached]]:
    found: list[FoundAttractor] = []
    by_key: dict[bytes, int] = {}
    reached: list[Reached] = []
    rng = np.random.default_rng(seed)
    for condition in list(world.conditions) or [None]:
        for start in world.start_states:
            state = world.start_state(start, condition)
            numbers = []
            for a in reachable_attractors(world.network, state, scheme=world.scheme):
                key = a.key()
                if key not in by_key:
                    by_key[key] = len(found) + 1
                    found.append(FoundAttractor(len(found) + 1, a, _stable_levels(world, a), condition=condition))
                numbers.append(by_key[key])
            r = Reached(start, condition, numbers)
            if n_cells:
                _simulate(world, state, [found[n - 1] for n in numbers], r, n_cells, rng)
            reached.append(r)
    return found, reached


def _simulate(world: World, state: np.ndarray, candidates: list[FoundAttractor], r: Reached, n_cells: int, rng) -> None:
    """Fraction of `n_cells` simulated cells (the world's scheme) that end in each attractor."""
    final = world.network.run_to_attractor(np.repeat(state[None, :], n_cells, axis=0), rng, None, world.scheme)
    rows, counts = np.unique(final, axis=0, return_counts=True)
    owner = np.full(len(rows), -1)
    for f in candidates:
        free = owner < 0
        if free.any():
            hit = f.attractor.contains(rows[free])
            owner[np.flatnonzero(free)[hit]] = f.number
    r.n_cells = n_cells
    r.cells = {f.number: float(counts[owner == f.number].sum() / n_cells) for f in candidates}
    r.unsettled = float(counts[owner < 0].sum() / n_cells)


def _stable_levels(world: World, a: Attractor) -> dict[str, "int | str"]:
    out: dict[str, "int | str"] = {}
    for g, vs in zip(world.genes, world.gene_vars):
        bits = a.stable[list(vs)]
        out[g] = "~" if (bits < 0).any() else int(bits.sum())
    return out


def _pattern(world: World, f: int) -> dict[int, int]:
    return {int(v): int(world.markers[f, v]) for v in np.flatnonzero(world.markers[f] != DONT_CARE)}


def _name_by_markers(world: World, found: list[FoundAttractor], reached: list[Reached]) -> None:
    patterns = [_pattern(world, f) for f in range(len(world.fates))]
    for fa in found:
        fa.matches = {}
        for fate, pattern in zip(world.fates, patterns):
            k = fa.attractor.count_matching(pattern)
            if k:
                fa.matches[fate] = k
        fa.fates_all = [f for f, k in fa.matches.items() if k == fa.attractor.size]
        if len(fa.fates_all) == 1:
            fa.fate, fa.status = fa.fates_all[0], "named"
        elif len(fa.fates_all) > 1:
            fa.status = "ambiguous"
    for fate in world.fates:
        if any(fate in fa.fates_all for fa in found):
            continue
        raise UserInputError(_no_match_message(world, fate, found, reached))


def _no_match_message(world: World, fate: str, found: list[FoundAttractor], reached: list[Reached]) -> str:
    f = world.fates.index(fate)
    want = world._named(world.markers[f])
    starts = sorted({r.start for r in reached})
    conds = sorted({r.condition for r in reached if r.condition})
    where = f"start(s) {', '.join(starts)}" + (f" under condition(s) {', '.join(conds)}" if conds else "")

    def misses(fa: FoundAttractor) -> list[str]:
        out = []
        for gene, level in want.items():
            have = fa.levels[gene]
            ok = have != "~" and (have == 0 if level == 0 else have >= level)
            if not ok:
                out.append(f"{gene}={have} (wants {'0' if level == 0 else f'>={level}'})")
        return out

    if not found:
        return f"marker set of fate {fate} matches no attractor reachable from {where}; no attractor found"
    best = min(found, key=lambda fa: (len(misses(fa)), fa.number))
    miss = misses(best)
    shown = ", ".join(miss[:4]) + (f" and {len(miss) - 4} more" if len(miss) > 4 else "")
    names = ", ".join(f"#{fa.number} {fa.label()}" for fa in found[:6]) + (", ..." if len(found) > 6 else "")
    return (f"marker set of fate {fate} matches no attractor reachable from {where}; attractors found: {names}; "
            f"closest #{best.number} ({best.kind()}) has {shown}")


def _auto_markers(world: World, fa: FoundAttractor) -> dict[str, int]:
    """An attractor's stable genes as markers (inputs aside): 0, or the level it sits at (read: at least)."""
    out = {}
    inputs = set(world.inputs)
    for g, vs in zip(world.genes, world.gene_vars):
        if g in inputs:
            continue
        bits = fa.attractor.stable[list(vs)]
        if bits[0] == 0:
            out[g] = 0
        else:
            ones = np.flatnonzero(bits == 1)
            if ones.size:
                out[g] = int(ones.max()) + 1
    return out


def _auto_fates(world: World, found: list[FoundAttractor], build, notes: list[str]) -> World:
    """One fate `attractor_K` per distinct marker set; the order makes every attractor classify as its own fate."""
    sets: list[dict[str, int]] = []
    owner: list[int] = []
    for fa in found:
        m = _auto_markers(world, fa)
        if m not in sets:
            sets.append(m)
        owner.append(sets.index(m))
    if not sets:
        raise UserInputError(f"model {world.name}: no attractor reachable from {', '.join(world.start_states)}")
    fates = {AUTO_FATE.format(i + 1): m for i, m in enumerate(sets)}
    candidate = build(fates)
    if not _classifies(candidate, found, owner):
        # "At least level L" cannot say "exactly L": list fuller marker sets (higher levels) first.
        order = sorted(range(len(sets)), key=lambda i: (-len(sets[i]), -sum(sets[i].values()), i))
        candidate = build({AUTO_FATE.format(i + 1): sets[i] for i in order})
        if not _classifies(candidate, found, owner):
            notes.append("some attractors share their stable genes with another: their cells may be named as the other fate")
    for fa, i in zip(found, owner):
        fa.fate, fa.status = AUTO_FATE.format(i + 1), "named"
        fa.fates_all = [fa.fate]
        fa.matches = {fa.fate: fa.attractor.size}
    notes.append(f"no markers given: each reachable attractor is a fate attractor_K whose markers are its stable genes "
                 f"(inputs aside); {len(sets)} fate(s) from {len(found)} attractor(s)")
    return candidate


def _classifies(world: World, found: list[FoundAttractor], owner: list[int]) -> bool:
    for fa, i in zip(found, owner):
        want = world.fates.index(AUTO_FATE.format(i + 1))
        if not (world.classify(fa.attractor.states) == want).all():
            return False
    return True


# ---- writing ---------------------------------------------------------------------------------


def write_world(world: World, out: "str | Path", force: bool = False) -> Path:
    """Write the world directory atomically: into a hidden temporary folder beside `out`, then renamed.

    An existing `out` is refused unless it is empty, or a world directory and `force` is set.
    """
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise UserInputError(f"--out {out} exists and is not a directory")
        if any(out.iterdir()):
            if not (out / "world.json").is_file():
                raise UserInputError(f"--out {out} exists and is not empty; choose a new directory")
            if not force:
                raise UserInputError(f"--out {out} already holds a world; pass --force to replace it")
    parent = out.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out.name}.tmp"))
    umask = os.umask(0)
    os.umask(umask)
    try:
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; a world directory is an ordinary one
        save_world(world, tmp)
        if out.exists():
            old = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out.name}.old"))
            os.replace(out, old / "w")
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
