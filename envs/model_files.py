"""Read a published logical model (a file, or a package's model repository by name) into one LogicalModel.

Formats: bnet, SBML-qual (Boolean or multi-valued), BooleanNet rule text, CANA/BNS truth tables,
scanpy's sim-model text; repositories: PyBoolNet's (`pyboolnet:NAME`) and CANA's Cell Collective
models (`cana:NAME`). Multi-valued genes become Boolean variables in the thermometer code of
Booleanized models (`X_b1` = level >= 1, `X_b2` = level >= 2, ...), so every model runs on the
same Boolean engine; `LogicalModel.genes` says which variables belong to one gene.
"""

from __future__ import annotations

import importlib.util
import operator
import re
from dataclasses import dataclass
from pathlib import Path

from envs.errors import UserInputError, choices_error
from envs.formats import parse_bnet, parse_sim_model
from envs.network import BooleanNetwork

PACKAGES = ("pyboolnet", "cana")
SUFFIXES = (".bnet", ".sbml", ".xml", ".booleannet", ".txt")
_BIT = re.compile(r"^(?P<gene>.+)_b(?P<level>[1-9][0-9]*)$")
# Words the rule parser reads as operators or constants: a gene may not be called that.
_RESERVED = {"and", "or", "not", "True", "False", "true", "false"}
_RELATIONS = {
    "eq": operator.eq, "neq": operator.ne, "lt": operator.lt, "leq": operator.le, "gt": operator.gt, "geq": operator.ge
}
_TRUTH_TABLES = re.compile(r"^\s*\.v\s+\d+", re.M)


@dataclass(frozen=True)
class LogicalModel:
    """A model as the engine runs it: Boolean variables, plus which of them form one multi-valued gene."""

    name: str
    network: BooleanNetwork  # Boolean variables (bits), free inputs as constant genes
    genes: dict[str, list[str]]  # multi-valued gene -> its bit variables, lowest level first (empty if none)
    source: str  # path or "pyboolnet:NAME" / "cana:NAME"
    notes: tuple[str, ...] = ()  # what the reader changed (renamed variables, ignored blocks), for the user


def read_model(source: "str | Path") -> LogicalModel:
    """Read a model file (by suffix) or `PACKAGE:NAME` from an installed package's repository."""
    text = str(source)
    package, sep, name = text.partition(":")
    # A one-letter prefix is a Windows drive; an existing path, or one with a model suffix, is a path.
    named = package.lower() in PACKAGES or Path(text).suffix.lower() not in SUFFIXES
    if sep and named and re.fullmatch(r"[A-Za-z_]\w+", package) and not Path(text).exists():
        return _read_repository(package.lower(), name.strip().strip("'\""))
    path = Path(source)
    if not path.is_file():
        raise UserInputError(f"model file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise choices_error("model format", suffix or path.name, SUFFIXES)
    return _read_file(path, name=path.stem, source=str(path))


def repository_models(package: str) -> list[str]:
    """The model names `read_model(f"{package}:NAME")` accepts."""
    return sorted(_repository(package))


# ---- repositories ------------------------------------------------------------------


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)  # finds the files without importing the package
    if spec is None or not spec.submodule_search_locations:
        raise UserInputError(f"package {package!r} is not installed (pip install {package}); it holds the models")
    return Path(list(spec.submodule_search_locations)[0])


def _repository(package: str) -> dict[str, Path]:
    """Model name -> file, for one package."""
    if package == "pyboolnet":
        root = _package_dir(package) / "repository"
        return {d.name: d / f"{d.name}.bnet" for d in root.iterdir() if (d / f"{d.name}.bnet").is_file()}
    if package == "cana":
        root = _package_dir(package) / "datasets" / "cell_collective"
        return {f.stem: f for f in root.glob("*.txt")}
    raise choices_error("model package", package, PACKAGES)


def _read_repository(package: str, name: str) -> LogicalModel:
    models = _repository(package)
    # Names with spaces are easier typed with underscores, and in any case.
    key = lambda s: s.lower().replace(" ", "_")  # noqa: E731
    found = {key(n): n for n in models}.get(key(name))
    if found is None:
        raise choices_error(f"{package} model", name, sorted(models))
    return _read_file(models[found], name=found, source=f"{package}:{found}")


# ---- files ---------------------------------------------------------------------------


def _read_file(path: Path, name: str, source: str) -> LogicalModel:
    suffix, where = path.suffix.lower(), str(path)
    genes, notes = None, []
    if suffix in (".sbml", ".xml"):
        network, genes, notes = _read_sbml(path)
    else:
        text = path.read_text(errors="replace")
        if suffix == ".bnet":
            network = parse_bnet(text, where=where)
        elif suffix == ".booleannet" or _is_booleannet(text):
            network, notes = _parse_booleannet(text, where)
        elif _TRUTH_TABLES.search(text):
            network, notes = _read_truth_tables(path)
        else:
            network = parse_sim_model(text, where=where)
    return LogicalModel(name, network, _bit_groups(network.genes) if genes is None else genes, source, tuple(notes))


def _bit_groups(variables: "tuple[str, ...] | list[str]") -> dict[str, list[str]]:
    """Genes of a Booleanized model: variables X_b1, X_b2, ... (consecutive from b1) form gene X."""
    levels: dict[str, set[int]] = {}
    for v in variables:
        m = _BIT.match(v)
        if m:
            levels.setdefault(m["gene"], set()).add(int(m["level"]))
    present = set(variables)
    return {
        gene: [f"{gene}_b{j}" for j in range(1, len(found) + 1)]
        for gene, found in levels.items()
        # X_b1, X_b3 without X_b2, or a variable X of its own, is not the convention: leave them alone.
        if found == set(range(1, len(found) + 1)) and gene not in present
    }


def _is_booleannet(text: str) -> bool:
    return re.search(r"^\s*(\d+\s*:\s*)?[^#\s*=]+\s*\*\s*=", text, re.M) is not None


def _parse_booleannet(text: str, where: str) -> tuple[BooleanNetwork, list[str]]:
    """BooleanNet rules `A* = B and not C` ('#' comments); initial values `A = True` are not dynamics."""
    rules: list[tuple[str, str]] = []
    initial: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        rule = re.fullmatch(r"(?:\d+\s*:\s*)?(\S+?)\s*\*\s*=\s*(.*)", line)
        if rule:
            rules.append((rule[1], rule[2]))
        elif re.fullmatch(r"[^=]+=\s*(True|False|Random|[01])", line):
            initial.append(line.split("=", 1)[0].strip())
        else:
            raise UserInputError(f"{where} line {lineno}: expected 'Gene* = rule' or 'Gene = True', got {line!r}")
    notes = [f"ignored the initial values of {len(initial)} genes (the model's start state is not read)"] if initial else []
    return BooleanNetwork.from_rules(rules, where=where, free_inputs=True), notes


def _sanitized(names: list[str]) -> tuple[list[str], list[str]]:
    """Names the rule parser and the bnet tools (AEON, PyBoolNet) accept: letters, digits, '_',
    not starting with a digit, unique; and one note listing the renames."""
    valid = [re.fullmatch(r"[A-Za-z_]\w*", n, re.ASCII) is not None and n not in _RESERVED for n in names]
    taken = {n for n, ok in zip(names, valid) if ok}
    out: list[str] = []
    renamed: list[str] = []
    for name, ok in zip(names, valid):
        if not ok:
            base = re.sub(r"[^A-Za-z0-9_]", "_", name) or "_"
            base = "_" + base if base[0].isdigit() or base in _RESERVED else base
            new, k = base, 2
            while new in taken:
                new, k = f"{base}_{k}", k + 1
            taken.add(new)
            renamed.append(f"{name!r} -> {new}")
            name = new
        out.append(name)
    notes = [f"renamed {len(renamed)} variables: {', '.join(renamed)}"] if renamed else []
    return out, notes


def _read_truth_tables(path: Path) -> tuple[BooleanNetwork, list[str]]:
    """CANA / BNS `.v/.l/.n` truth tables, read by CANA's own loader, each table written as a DNF."""
    from cana.boolean_network import BooleanNetwork as CanaNetwork

    logic = CanaNetwork.from_file(str(path), type="cnet", keep_constants=True).logic
    names, notes = _sanitized([logic[i]["name"] for i in range(len(logic))])
    rules = [(names[i], _table_to_rule([names[j] for j in logic[i]["in"]], logic[i]["out"])) for i in range(len(logic))]
    return BooleanNetwork.from_rules(rules, where=str(path)), notes


def _table_to_rule(inputs: list[str], outputs: list[int]) -> str:
    """A short DNF for a truth table (CANA's order: the first input is the most significant bit)."""
    if not inputs:
        return str(int(outputs[0]))
    import biodivine_aeon as aeon

    k = len(inputs)
    ctx = aeon.BddVariableSet(inputs)
    on = [{v: bool((code >> (k - 1 - j)) & 1) for j, v in enumerate(inputs)} for code, out in enumerate(outputs) if out]
    clauses = ctx.mk_dnf(on).to_dnf(optimize=True) if on else []
    terms = [
        " & ".join(("" if val else "!") + ctx.get_variable_name(v) for v, val in c.items()) or "1" for c in clauses
    ]
    return " | ".join(f"({t})" if len(terms) > 1 and "&" in t else t for t in terms) or "0"


# ---- SBML-qual -------------------------------------------------------------------------


def _and(parts: list[str]) -> str:
    if "0" in parts:
        return "0"
    parts = [p for p in parts if p != "1"]
    return "1" if not parts else parts[0] if len(parts) == 1 else " & ".join(f"({p})" for p in parts)


def _or(parts: list[str]) -> str:
    if "1" in parts:
        return "1"
    parts = [p for p in dict.fromkeys(parts) if p != "0"]
    return "0" if not parts else parts[0] if len(parts) == 1 else " | ".join(f"({p})" for p in parts)


def _not(part: str) -> str:
    return {"0": "1", "1": "0"}.get(part, f"!({part})")


class _QualModel:
    """The qualitative species of one SBML-qual model as thermometer bits, and its MathML as rules over them."""

    def __init__(self, qual):
        listed = list(qual.getListOfQualitativeSpecies())
        self.max = {s.getId(): s.getMaxLevel() if s.isSetMaxLevel() else 1 for s in listed}
        self.constant = {s.getId() for s in listed if s.getConstant()}
        # A Boolean species keeps its name; a multi-valued one becomes X_b1 .. X_bm.
        self.bits = {s: [s] if m == 1 else [f"{s}_b{j}" for j in range(1, m + 1)] for s, m in self.max.items()}

    def at_least(self, species: str, level: int) -> str:
        """level(species) >= level, read as the number of leading ones of its bits, as bioLQM's
        Booleanization does (it agrees with `X_bk` wherever the bits are in thermometer code)."""
        if level <= 0:
            return "1"
        return "0" if level > self.max[species] else _and(self.bits[species][:level])

    def level_in(self, species: str, levels: set[int]) -> str:
        """level(species) is one of `levels`, as runs of consecutive levels."""
        runs: list[str] = []
        for lo in sorted(levels):
            if lo - 1 not in levels:
                hi = lo
                while hi + 1 in levels:
                    hi += 1
                runs.append(_and([self.at_least(species, lo), _not(self.at_least(species, hi + 1))]))
        return _or(runs)

    def condition(self, node, thresholds: dict[str, int], where: str) -> str:
        """A MathML condition (relations on levels, and/or/not/xor/implies) as a rule over the bits."""
        op = node.getName()
        args = [node.getChild(i) for i in range(node.getNumChildren())]
        if op in ("true", "false") and not args:
            return "1" if op == "true" else "0"
        if node.isRelational() and len(args) >= 2:
            # a < b < c means a < b and b < c.
            return _and([self.relation(_RELATIONS[op], a, b, thresholds, where) for a, b in zip(args, args[1:])])
        if not node.isLogical() or not args:
            raise UserInputError(f"{where}: unsupported MathML {_formula(node)!r}")
        parts = [self.condition(a, thresholds, where) for a in args]
        if op == "not" and len(parts) == 1:
            return _not(parts[0])
        if op == "and":
            return _and(parts)
        if op == "or":
            return _or(parts)
        if op == "implies" and len(parts) == 2:
            return _or([_not(parts[0]), parts[1]])
        if op == "xor":
            odd = parts[0]
            for p in parts[1:]:
                odd = _or([_and([odd, _not(p)]), _and([_not(odd), p])])
            return odd
        raise UserInputError(f"{where}: unsupported MathML {_formula(node)!r}")

    def relation(self, op, left, right, thresholds: dict[str, int], where: str) -> str:
        """A comparison of levels and numbers, by enumerating the levels of the species it names."""
        sides = [self.operand(x, thresholds, where) for x in (left, right)]
        species = [s for s in sides if isinstance(s, str)]
        ranges = [range(self.max[s] + 1) if isinstance(s, str) else [s] for s in sides]
        holds = [(a, b) for a in ranges[0] for b in ranges[1] if op(a, b)]
        if len(species) < 2:
            if not species:
                return "1" if holds else "0"
            return self.level_in(species[0], {pair[sides.index(species[0])] for pair in holds})
        return _or([_and([self.level_in(sides[0], {a}), self.level_in(sides[1], {b})]) for a, b in holds])

    def operand(self, node, thresholds: dict[str, int], where: str) -> "str | int | float":
        """A species id (its level) or a number; an input's id stands for its threshold level."""
        if node.isName():
            name = node.getName().strip()
            if name in self.max:
                return name
            if name in thresholds:
                return thresholds[name]
            raise UserInputError(f"{where}: {choices_error('species', name, sorted(self.max))}")
        if node.isInteger():
            return node.getInteger()
        if node.isReal():
            return node.getReal()
        raise UserInputError(f"{where}: unsupported MathML operand {_formula(node)!r}")

    def bit_rules(self, species: str, terms: list[tuple[int, str]], default: int) -> list[tuple[str, str]]:
        """Rules of a species' bits from its function terms (the first that holds gives the target
        level, else the default). Bit j is "the level after one step towards the target is >= j":
        a multi-valued gene moves one level at a time, so asynchronous updates of single bits
        never leave the thermometer code (bioLQM's Booleanization)."""

        def target_at_least(j: int) -> str:
            fires, earlier = [], []
            for level, cond in terms:
                if level >= j:
                    fires.append(_and([cond] + [_not(c) for c in earlier]))
                earlier.append(cond)
            if default >= j:
                fires.append(_and([_not(c) for c in earlier]))
            return _or(fires)

        return [
            (bit, _or([self.at_least(species, j + 1), _and([self.at_least(species, j - 1), target_at_least(j)])]))
            for j, bit in enumerate(self.bits[species], start=1)
        ]


def _first_sentence(message: str) -> str:
    return " ".join(message.split()).split(". ")[0].rstrip(".")


def _formula(node) -> str:
    import libsbml

    return libsbml.formulaToL3String(node)


def _read_sbml(path: Path) -> tuple[BooleanNetwork, dict[str, list[str]], list[str]]:
    """SBML-qual through libsbml: Boolean species become rules, multi-valued ones thermometer bits."""
    import libsbml

    doc = libsbml.readSBMLFromFile(str(path))
    errors = [e for e in map(doc.getError, range(doc.getNumErrors())) if e.getSeverity() >= libsbml.LIBSBML_SEV_ERROR]
    first = f"libsbml: {_first_sentence(errors[0].getMessage())}" if errors else ""
    model = doc.getModel()
    qual = model.getPlugin("qual") if model is not None else None
    if model is None:
        raise UserInputError(f"{path}: not SBML-qual ({first or 'no model'})")
    if qual is None or qual.getNumQualitativeSpecies() == 0:
        why = "no qual package: an SBML core model" if qual is None else "no qualitative species"
        raise UserInputError(f"{path}: not SBML-qual ({why})")
    # Published files often break SBML rules that do not touch the logic (a species without a
    # compartment, say): read them, and tell the user.
    notes = [f"read despite {len(errors)} SBML validity errors ({first})"] if errors else []
    species = _QualModel(qual)
    rules: dict[str, list[tuple[str, str]]] = {}
    for tr in qual.getListOfTransitions():
        where = f"{path}: transition {tr.getId()}"
        thresholds = {
            i.getId(): i.getThresholdLevel() for i in tr.getListOfInputs() if i.isSetId() and i.isSetThresholdLevel()
        }
        terms = [
            (ft.getResultLevel(), species.condition(ft.getMath(), thresholds, where))
            for ft in tr.getListOfFunctionTerms()
            if ft.getMath() is not None
        ]
        default_term = tr.getDefaultTerm()
        if not terms and default_term is None:
            continue  # a transition without a function (AEON writes free inputs so): an input
        default = default_term.getResultLevel() if default_term is not None else 0
        for out in tr.getListOfOutputs():
            target = out.getQualitativeSpecies()
            if target not in species.max:
                raise UserInputError(f"{where}: {choices_error('output species', target, sorted(species.max))}")
            if target in rules:
                raise UserInputError(f"{where}: species {target!r} is the output of two transitions")
            rules[target] = species.bit_rules(target, terms, default)
    # A species no transition sets, or declared constant, is an input: it keeps its value.
    rules = {s: r for s, r in rules.items() if s not in species.constant}
    inputs = [s for s in species.max if s not in rules]
    items = [r for s in species.max for r in rules.get(s, [(bit, bit) for bit in species.bits[s]])]
    multi = {s: bits for s, bits in species.bits.items() if len(bits) > 1}
    if inputs:
        notes.append(f"inputs (no transition, or constant), kept constant: {', '.join(inputs)}")
    if multi:
        notes.append(f"Booleanized {len(multi)} multi-valued genes into thermometer bits X_b1..X_bm: {', '.join(multi)}")
    network = BooleanNetwork.from_rules(items, where=str(path))
    return network, multi or _bit_groups(network.genes), notes
