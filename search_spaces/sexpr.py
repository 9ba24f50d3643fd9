"""Derivation strings: tokenising, parsing and type-checking s-expressions against a grammar.

``(sequential (routing im2col[kernel=3,stride=1,padding=1] linear[width=64] col2im) norm)`` parses to the same
:class:`~search_spaces.derivation.DNode` tree that printed it. Errors name the column and show it.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any, Protocol

from search_spaces.derivation import Cost, DNode
from search_spaces.exceptions import DerivationSyntaxError, DerivationTypeError
from search_spaces.grammar import format_value
from search_spaces.limits import MAX_DEPTH
from search_spaces.planning import FlatAlternative, SamplingContext
from search_spaces.terminals.base import Leaf
from search_spaces.types import TensorType

_TOKEN = re.compile(r"\s*(?:(?P<open>\()|(?P<close>\))|(?P<atom>[A-Za-z_][A-Za-z0-9_\-]*(?:\[[^\[\]]*\])?))")
_PARAM = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\([^()]*\)|\"(?:[^\"\\]|\\.)*\"|[^,\]]+)\s*(?:,|$)")


MAX_NESTING = MAX_DEPTH + 1
"""Derivation strings nested deeper than this are refused before they are type-checked (recursively)."""


@dataclass(frozen=True)
class Atom:
    text: str
    column: int


@dataclass(frozen=True)
class SList:
    items: tuple[Expr, ...]
    column: int


Expr = Atom | SList


def read_sexpr(text: str) -> Expr:
    """Parse the bracket structure of a derivation string (no grammar needed)."""
    stack: list[tuple[int, list[Expr]]] = []
    result: Expr | None = None
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None:
            col = pos + len(text[pos:]) - len(text[pos:].lstrip()) + 1
            raise DerivationSyntaxError(f"unexpected character {text[col - 1]!r}", text, col)
        column = m.start(m.lastgroup) + 1  # type: ignore[arg-type]
        if result is not None:
            raise DerivationSyntaxError("text after the end of the derivation", text, column)
        if m.group("open"):
            if len(stack) >= MAX_NESTING:
                raise DerivationSyntaxError(f"nested deeper than {MAX_NESTING} levels", text, column)
            stack.append((column, []))
        elif m.group("close"):
            if not stack:
                raise DerivationSyntaxError("unbalanced ')'", text, column)
            start, items = stack.pop()
            if not items:
                raise DerivationSyntaxError("empty '()'", text, start)
            node: Expr = SList(tuple(items), start)
            if stack:
                stack[-1][1].append(node)
            else:
                result = node
        else:
            atom = Atom(m.group("atom"), column)
            if stack:
                stack[-1][1].append(atom)
            else:
                result = atom
        pos = m.end()
    if stack:
        raise DerivationSyntaxError("missing ')' at the end", text, stack[-1][0])
    if result is None:
        raise DerivationSyntaxError("empty derivation string", text, 1)
    return result


def _parse_value(raw: str) -> Any:
    raw = raw.strip()
    if raw.startswith("(") and raw.endswith(")"):
        inner = raw[1:-1].strip()
        return tuple(int(v) for v in inner.split(",") if v.strip()) if inner else ()
    if raw.startswith('"'):
        return raw[1:-1].replace('\\"', '"')
    try:
        return int(raw)
    except ValueError:
        return float(raw)


def canonical_label(atom: Atom, text: str) -> str:
    """``linear[ width = 64 ]`` -> ``linear[width=64]`` (values re-printed canonically)."""
    if "[" not in atom.text:
        return atom.text
    name, _, rest = atom.text.partition("[")
    body = rest[:-1]
    parts, pos = [], 0
    while pos < len(body):
        m = _PARAM.match(body, pos)
        if m is None:
            raise DerivationSyntaxError(f"malformed parameters in {atom.text!r}", text, atom.column)
        try:
            value = _parse_value(m.group(2))
        except ValueError:
            raise DerivationSyntaxError(f"bad parameter value {m.group(2).strip()!r} in {atom.text!r}", text,
                                        atom.column) from None
        parts.append(f"{m.group(1)}={format_value(value)}")
        pos = m.end()
    return f"{name}[{','.join(parts)}]"


class ParsingContext(SamplingContext, Protocol):
    """What the parser asks of the sampler (:class:`search_spaces.sampler.Sampler` implements it): the
    combinators' context, plus the input type, the alternatives by printed label and leaf costs."""

    input_type: TensorType

    def by_label(self, symbol: str, label: str) -> list[FlatAlternative]: ...

    def leaf_cost(self, term: Leaf, params: Any, t: TensorType, out: TensorType) -> Cost: ...


class DerivationParser:
    """Type-checks s-expressions against the grammar of ``sampler`` for its input type."""

    def __init__(self, sampler: ParsingContext):
        self.sampler = sampler
        self._text = ""
        self._motifs: dict[str, tuple[str, int]] = {}

    def parse(self, text: str) -> DNode:
        expr = read_sexpr(text)
        self._text, self._motifs = text, {}
        return self.parse_child(self.sampler.grammar.start, expr, self.sampler.input_type)

    def parse_symbol(self, symbol: str, expr: Expr, t: TensorType, text: str = "") -> DNode:
        """Type-check ``expr`` as a derivation of ``symbol`` on input ``t``."""
        self._text, self._motifs = text, {}
        return self.parse_child(symbol, expr, t)

    def _lookup(self, symbol: str, atom: Atom) -> FlatAlternative:
        return self._lookup_all(symbol, atom)[0]

    def _lookup_all(self, symbol: str, atom: Atom) -> list[FlatAlternative]:
        label = canonical_label(atom, self._text)
        found = self.sampler.by_label(symbol, label)
        if not found:
            known = [fa.alt.label() for fa in self.sampler.alternatives(symbol)]
            close = difflib.get_close_matches(label, known, n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DerivationSyntaxError(f"{label!r} is not an alternative of {symbol!r}{hint}", self._text,
                                        atom.column)
        return found

    def parse_atom(self, symbol: str, expr: Expr) -> FlatAlternative:
        if not isinstance(expr, Atom):
            raise DerivationSyntaxError(f"expected a single {symbol!r} function here, got a list", self._text,
                                        expr.column)
        return self._lookup(symbol, expr)

    def parse_child(self, symbol: str, expr: Expr, t: TensorType) -> DNode:
        node = self._parse_child(symbol, expr, t)
        if symbol in self.sampler.grammar.shared:
            first = self._motifs.setdefault(symbol, (node.to_sexpr(), expr.column))
            if first[0] != node.to_sexpr():
                raise DerivationTypeError(f"shared {symbol!r} must be the same everywhere; it differs from its first "
                                          f"use at column {first[1]}", self._text, expr.column)
        return node

    def _parse_child(self, symbol: str, expr: Expr, t: TensorType) -> DNode:
        if isinstance(expr, Atom):
            fa = self._lookup(symbol, expr)
            if not isinstance(fa.terminal, Leaf):
                raise DerivationSyntaxError(f"{fa.alt.label()!r} needs arguments: write ({fa.alt.label()} ...)",
                                            self._text, expr.column)
            params = fa.alt.param_dict
            out = fa.terminal.out_type(params, t)
            if out is None:
                raise DerivationTypeError(f"{fa.alt.label()} does not accept input {t}", self._text, expr.column)
            try:
                cost = self.sampler.leaf_cost(fa.terminal, params, t, out)
            except ValueError as err:
                raise DerivationTypeError(f"{fa.alt.label()} on {t}: {err}", self._text, expr.column) from None
            return DNode(symbol, fa.alt, t, out, cost)
        head = expr.items[0]
        if not isinstance(head, Atom):
            raise DerivationSyntaxError("a list must start with a name", self._text, expr.column)
        candidates = self._lookup_all(symbol, head)
        if candidates[0].combinator is None:
            raise DerivationSyntaxError(f"{candidates[0].alt.label()!r} takes no arguments; drop the parentheses",
                                        self._text, expr.column)
        first_error: DerivationSyntaxError | None = None
        parsed: list[tuple[DNode, dict[str, tuple[str, int]]]] = []
        motifs = dict(self._motifs)
        for fa in candidates:  # same label, different slots: exactly one must parse
            comb = fa.combinator
            assert comb is not None, "one label names one kind of terminal"
            self._motifs = dict(motifs)
            try:
                node = comb.parse(self.sampler, symbol, fa, expr.items[1:], t, self.parse_child, self.parse_atom)
                parsed.append((node, self._motifs))
            except DerivationSyntaxError as err:
                first_error = first_error or err
            except ValueError as err:
                first_error = first_error or DerivationTypeError(f"{err} (input {t})", self._text, expr.column)
        if len(parsed) > 1:
            raise DerivationSyntaxError(f"ambiguous: {symbol!r} derives this {head.text!r} in {len(parsed)} ways "
                                        "(the grammar reaches it through different unit productions)", self._text,
                                        expr.column)
        if parsed:
            self._motifs = parsed[0][1]
            return parsed[0][0]
        self._motifs = motifs
        assert first_error is not None
        raise first_error
