"""Read and write networks: bnet (PyBoolNet, BoolNet, GINsim) and scanpy's sim-model text."""

from __future__ import annotations

from pathlib import Path

from envs.errors import UserInputError
from envs.network import BooleanNetwork


def parse_bnet(text: str, where: str = "bnet") -> BooleanNetwork:
    """Parse `target, rule` lines; '#' starts a comment; a 'targets, factors' header is skipped."""
    rules: list[tuple[str, str]] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if "," not in line:
            raise UserInputError(f"{where} line {lineno}: expected 'target, rule', got {line!r}")
        target, rule = (part.strip() for part in line.split(",", 1))
        if target.lower() == "targets" and rule.lower() == "factors":
            continue
        if not target:
            raise UserInputError(f"{where} line {lineno}: missing target gene")
        rules.append((target, rule))
    # The .bnet format allows free inputs: a regulator without a rule of its own.
    return BooleanNetwork.from_rules(rules, where=where, free_inputs=True)


def parse_sim_model(text: str, where: str = "sim model") -> BooleanNetwork:
    """Parse scanpy's sim-model format: `Gene = python-style rule` lines, then a coupling list.

    The coupling list (weights for scanpy's continuous simulation) follows the
    '# coupling list' comment; the Boolean model is the rule block only.
    """
    rules: list[tuple[str, str]] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.lower().startswith("# coupling list"):
            break
        line = stripped.split("#", 1)[0].strip()
        if not line:
            continue
        if "=" not in line:
            raise UserInputError(f"{where} line {lineno}: expected 'Gene = rule', got {line!r}")
        target, rule = (part.strip() for part in line.split("=", 1))
        # scanpy allows an empty right-hand side for a gene that keeps its value.
        rules.append((target, rule or target))
    return BooleanNetwork.from_rules(rules, where=where)


def read_network(path: "str | Path") -> BooleanNetwork:
    """Read a .bnet file, or a scanpy sim-model .txt file."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"network file not found: {path}")
    text = path.read_text()
    if path.suffix == ".bnet":
        return parse_bnet(text, where=str(path))
    if path.suffix == ".txt":
        return parse_sim_model(text, where=str(path))
    raise UserInputError(f"unknown network format {path.suffix!r} for {path}; valid choices: .bnet, .txt")

