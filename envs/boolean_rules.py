"""Parse Boolean rule text (bnet or python-style) and compile it into a truth table.

Rules are parsed once into a small AST, then evaluated over every combination of
their inputs, so the simulator never evaluates text again: a gene's update is one
table look-up indexed by the bits of its regulators.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from envs.errors import UserInputError

# Gene names in the wild contain dots (Pu.1), dashes (Nkx2-5) and digits.
_TOKEN = re.compile(r"\s*(?:(?P<op>[()!&|~])|(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*|[01]))")
_WORD_OPS = {"and": "&", "or": "|", "not": "!", "True": "1", "False": "0", "true": "1", "false": "0"}
MAX_RULE_INPUTS = 16


@dataclass(frozen=True)
class Node:
    """AST node: op in {'var', 'const', '!', '&', '|'}."""

    op: str
    args: tuple = ()
    name: str = ""
    value: int = 0


def tokenize(text: str, where: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise UserInputError(f"{where}: cannot parse rule near {text[pos:pos + 20]!r}")
        tok = m.group("op") or m.group("name")
        tokens.append(_WORD_OPS.get(tok, "!" if tok == "~" else tok))
        pos = m.end()
    return tokens


class _Parser:
    """Recursive descent: or-expr := and-expr ('|' and-expr)*; and-expr := unary ('&' unary)*."""

    def __init__(self, tokens: list[str], where: str):
        self.tokens, self.pos, self.where = tokens, 0, where

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise UserInputError(f"{self.where}: rule ends unexpectedly")
        self.pos += 1
        return tok

    def parse(self) -> Node:
        if not self.tokens:
            raise UserInputError(f"{self.where}: empty rule")
        node = self.or_expr()
        if self.peek() is not None:
            raise UserInputError(f"{self.where}: unexpected {self.peek()!r} in rule")
        return node

    def or_expr(self) -> Node:
        args = [self.and_expr()]
        while self.peek() == "|":
            self.take()
            args.append(self.and_expr())
        return args[0] if len(args) == 1 else Node("|", tuple(args))

    def and_expr(self) -> Node:
        args = [self.unary()]
        while self.peek() == "&":
            self.take()
            args.append(self.unary())
        return args[0] if len(args) == 1 else Node("&", tuple(args))

    def unary(self) -> Node:
        tok = self.take()
        if tok == "!":
            return Node("!", (self.unary(),))
        if tok == "(":
            node = self.or_expr()
            if self.peek() != ")":
                raise UserInputError(f"{self.where}: missing ')' in rule")
            self.take()
            return node
        if tok in ("0", "1"):
            return Node("const", value=int(tok))
        if tok in (")", "&", "|"):
            raise UserInputError(f"{self.where}: unexpected {tok!r} in rule")
        return Node("var", name=tok)


def parse_rule(text: str, where: str = "rule") -> Node:
    """Parse rule text into an AST; `where` prefixes error messages (e.g. 'rule of Gata1')."""
    return _Parser(tokenize(text, where), where).parse()


def rule_inputs(node: Node) -> list[str]:
    """Variables a rule reads, in first-appearance order, without duplicates."""
    seen: dict[str, None] = {}

    def walk(n: Node) -> None:
        if n.op == "var":
            seen.setdefault(n.name, None)
        for a in n.args:
            walk(a)

    walk(node)
    return list(seen)


def _evaluate(node: Node, columns: dict[str, np.ndarray], size: int) -> np.ndarray:
    if node.op == "var":
        return columns[node.name]
    if node.op == "const":
        return np.full(size, bool(node.value))
    vals = [_evaluate(a, columns, size) for a in node.args]
    if node.op == "!":
        return ~vals[0]
    out = vals[0].copy()
    for v in vals[1:]:
        out = (out & v) if node.op == "&" else (out | v)
    return out


def truth_table(node: Node, inputs: list[str]) -> np.ndarray:
    """Output of the rule for every input combination; bit j of the index is inputs[j]."""
    k = len(inputs)
    if k > MAX_RULE_INPUTS:
        raise UserInputError(f"rule has {k} inputs; at most {MAX_RULE_INPUTS} are supported")
    codes = np.arange(1 << k, dtype=np.int64)
    columns = {name: ((codes >> j) & 1).astype(bool) for j, name in enumerate(inputs)}
    return _evaluate(node, columns, 1 << k).astype(np.uint8)


def to_text(node: Node, top: bool = True) -> str:
    """Render an AST in bnet syntax (&, |, !), parenthesised only where needed."""
    if node.op == "var":
        return node.name
    if node.op == "const":
        return str(node.value)
    if node.op == "!":
        return "!" + to_text(node.args[0], top=False)
    body = f" {node.op} ".join(to_text(a, top=False) for a in node.args)
    return body if top else f"({body})"


def signed_edges(node: Node) -> dict[str, int]:
    """Sign of each input's influence from its literal polarity: +1, -1, or 0 (both)."""
    signs: dict[str, set[int]] = {}

    def walk(n: Node, sign: int) -> None:
        if n.op == "var":
            signs.setdefault(n.name, set()).add(sign)
        elif n.op == "!":
            walk(n.args[0], -sign)
        else:
            for a in n.args:
                walk(a, sign)

    walk(node, 1)
    return {name: (next(iter(s)) if len(s) == 1 else 0) for name, s in signs.items()}
