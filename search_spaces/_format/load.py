"""Grammar files -> :class:`~search_spaces.grammar.Grammar`, with errors that cite file, line and column.

Parsing uses Lark (LALR) on ``grammar.lark``; every semantic check (unknown names, wrong arguments, parameter
types, probabilities, categories, rules that can never finish) points at the offending source position.
"""

from __future__ import annotations

import difflib
import graphlib
import itertools
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from search_spaces.builtin import default_registry
from search_spaces.exceptions import GrammarSyntaxError
from search_spaces.grammar import Alternative, Grammar, Rule
from search_spaces.planning import Combinator
from search_spaces.terminals import TerminalRegistry

_TOKEN_NAMES = {"NAME": "a name", "SEMICOLON": "';'", "VBAR": "'|'", "LPAR": "'('", "RPAR": "')'", "COMMA": "','",
                "__ANON_0": "'->'", "AT": "'@'", "EQUAL": "'='", "IN": "'in'", "LBRACE": "'{'", "RBRACE": "'}'",
                "NUMBER": "a number", "SIGNED_INT": "an integer", "SIGNED_FLOAT": "a number",
                "ESCAPED_STRING": "a string", "START": "'start'", "$END": "end of file"}


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark((Path(__file__).parent / "grammar.lark").read_text(), parser="lalr", propagate_positions=True)


@dataclass
class _RawAlt:
    name: str
    slots: list[tuple[str, int, int]]
    fixed: list[tuple[str, Any, int, int]]
    domains: list[tuple[str, list[Any], int, int]]
    weight: float | None
    line: int
    column: int


class _Source:
    def __init__(self, text: str, file: str):
        self.lines, self.file = text.splitlines(), file

    def error(self, message: str, line: int, column: int) -> GrammarSyntaxError:
        context = ""
        if 1 <= line <= len(self.lines):
            context = f"    {self.lines[line - 1]}\n    {' ' * (column - 1)}^"
        return GrammarSyntaxError(message, self.file, line, column, context)


def _did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _value(tree: Any) -> Any:
    if tree.data == "integer":
        return int(tree.children[0])
    if tree.data == "number":
        return float(tree.children[0])
    if tree.data == "string":
        return str(tree.children[0])[1:-1].replace('\\"', '"')
    if tree.data == "tuple":
        return tuple(_value(c) for c in tree.children if c is not None)
    raise AssertionError(tree.data)


def _syntax_error(err: UnexpectedInput, src: _Source) -> GrammarSyntaxError:
    line, column = getattr(err, "line", 0) or 0, getattr(err, "column", 0) or 0
    if isinstance(err, UnexpectedToken):
        expected = sorted({_TOKEN_NAMES.get(e, e) for e in err.expected})
        got = "end of file" if err.token.type == "$END" else repr(str(err.token))
        message = f"unexpected {got}; expected {', '.join(expected[:6])}"
        if err.token.type == "$END":
            line, column = len(src.lines), len(src.lines[-1]) + 1 if src.lines else 1
    elif isinstance(err, UnexpectedCharacters):
        message = f"unexpected character {err.char!r}"
    elif isinstance(err, UnexpectedEOF):
        message = "unexpected end of file (missing ';'?)"
        line, column = len(src.lines), len(src.lines[-1]) + 1 if src.lines else 1
    else:
        message = str(err)
    return src.error(message, line, column)


MAX_GRAMMAR_BYTES = 1024 * 1024
"""Grammar files larger than this are refused before they are parsed (the shipped ones are a few KB; 4,000 rules
take about 400 KB and load in seconds)."""
MAX_ALTERNATIVES = 100_000
"""At most this many alternatives per rule once parameter domains are expanded (their product can explode)."""


def _same_file(file: str) -> str:
    try:
        return str(Path(file).resolve())
    except (OSError, RuntimeError):
        return file


def _read_bytes(path: Path, src: _Source | None = None, tok: Token | None = None) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_GRAMMAR_BYTES:
            message = f"the file has {size:,} bytes, more than grammar files may have ({MAX_GRAMMAR_BYTES:,})"
            if src is not None and tok is not None:
                raise src.error(message, tok.line, tok.column)
            raise GrammarSyntaxError(message, str(path))
        return path.read_bytes()
    except OSError as err:
        message = f"cannot read grammar file: {err.strerror or err}"
        if src is not None and tok is not None:
            raise src.error(f"cannot import {str(path)!r}: {err.strerror or err}", tok.line, tok.column) from None
        raise GrammarSyntaxError(message, str(path)) from None


def _decode(data: bytes, file: str) -> str:
    """Grammar files are UTF-8 text (a BOM is allowed); anything else is a one-line error naming the byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise GrammarSyntaxError(f"not UTF-8 text: byte 0x{data[err.start]:02x} at offset {err.start} "
                                 f"(line {line})", file) from None


def parse_grammar(text: str, *, name: str = "grammar", file: str = "<grammar>",
                  registry: TerminalRegistry | None = None, _imports: tuple[str, ...] = ()) -> Grammar:
    """Parse and validate grammar text; raises :class:`GrammarSyntaxError` with file, line and column.

    Every check is linear (or near linear) in the size of the grammar, so a hostile file is answered in seconds;
    ``_imports`` is the chain of files importing this one (an import cycle is an error).
    """
    registry = registry or default_registry()
    src = _Source(text, file)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as err:
        raise _syntax_error(err, src) from None

    start: tuple[str, int, int] | None = None
    shared: list[tuple[str, int, int]] = []
    raw: dict[str, tuple[list[_RawAlt], int, int]] = {}
    for stmt in tree.children:
        if stmt.data == "import_decl":
            for symbol, entry in _imported_rules(stmt, file, registry, src, (*_imports, file)).items():
                if symbol in raw:
                    raise src.error(f"imported rule {symbol!r} clashes with another rule", entry[1], entry[2])
                raw[symbol] = entry
            continue
        if stmt.data == "shared_decl":
            shared.extend((str(tok), tok.line, tok.column) for tok in stmt.children)
            continue
        if stmt.data == "start_decl":
            tok = stmt.children[0]
            if start is not None:
                raise src.error("second 'start' declaration", tok.line, tok.column)
            start = (str(tok), tok.line, tok.column)
            continue
        name_tok = stmt.children[0]
        if str(name_tok) in raw:
            raise src.error(f"rule {str(name_tok)!r} is defined twice", name_tok.line, name_tok.column)
        raw[str(name_tok)] = ([_raw_alternative(a) for a in stmt.children[1:]], name_tok.line, name_tok.column)
    if start is None:
        if not raw:
            raise src.error("empty grammar: no rules", 1, 1)
        first = next(iter(raw))
        start = (first, raw[first][1], raw[first][2])
    if start[0] not in raw:
        raise src.error(f"start symbol {start[0]!r} has no rule{_did_you_mean(start[0], list(raw))}", start[1],
                        start[2])

    categories = _infer_categories(raw, start[0], registry, src)
    for symbol, line, column in shared:
        if symbol not in raw:
            raise src.error(f"shared symbol {symbol!r} has no rule{_did_you_mean(symbol, list(raw))}", line, column)
        if categories[symbol] != "module" or symbol == start[0]:
            raise src.error(f"only module rules other than the start symbol can be shared, not {symbol!r}", line,
                            column)
    rules = tuple(_build_rule(symbol, alts, categories, registry, raw, src) for symbol, (alts, _, _) in raw.items())
    grammar = Grammar(name=name, start=start[0], rules=rules, source=file, registry=registry,
                      shared=frozenset(s for s, _, _ in shared))
    _check_finite(grammar, raw, src)
    return grammar


def _imported_rules(stmt: Tree[Token], file: str, registry: TerminalRegistry, src: _Source,
                    chain: tuple[str, ...]) -> dict[str, tuple[list[_RawAlt], int, int]]:
    """The rules of an imported grammar, every non-terminal prefixed with ``alias.``, positioned at the import.

    Only ``.grammar`` files are imported (next to the importing file, else a shipped grammar), so that an import
    cannot read, and echo in its error, an arbitrary file; a grammar importing itself, directly or through others,
    is an error naming the cycle.
    """
    path_tok, alias_tok = stmt.children
    relative = str(path_tok)[1:-1]
    alias = str(alias_tok)
    if not relative.endswith(".grammar"):
        raise src.error(f"cannot import {relative!r}: only .grammar files can be imported", path_tok.line,
                        path_tok.column)
    candidate = Path(file).parent / relative
    if candidate.is_file():
        imported_file = str(candidate)
        text = _decode(_read_bytes(candidate, src, path_tok), imported_file)
    else:
        try:
            data = resources.files("search_spaces.grammars").joinpath(relative).read_bytes()
        except (OSError, ValueError):
            raise src.error(f"cannot import {relative!r}: no such file next to {file} nor a shipped grammar",
                            path_tok.line, path_tok.column) from None
        imported_file = f"search_spaces/grammars/{relative}"
        text = _decode(data, imported_file)
    seen = [_same_file(f) for f in chain]
    if _same_file(imported_file) in seen:
        cycle = " -> ".join([*chain[seen.index(_same_file(imported_file)):], imported_file])
        raise src.error(f"import cycle: {cycle}", path_tok.line, path_tok.column)
    # its own errors, at its own positions
    parse_grammar(text, name=alias, file=imported_file, registry=registry, _imports=chain)
    tree = _parser().parse(text)
    inner: dict[str, list[_RawAlt]] = {}
    for child in tree.children:
        if child.data == "import_decl":
            for symbol, entry in _imported_rules(child, imported_file, registry, _Source(text, imported_file),
                                                 (*chain, imported_file)).items():
                inner[symbol] = entry[0]
        elif child.data == "rule":
            inner[str(child.children[0])] = [_raw_alternative(a) for a in child.children[1:]]
    line, column = alias_tok.line, alias_tok.column

    def rename(name: str) -> str:
        return f"{alias}.{name}" if name in inner else name

    out: dict[str, tuple[list[_RawAlt], int, int]] = {}
    for symbol, alts in inner.items():
        renamed = []
        for alt in alts:
            unit = alt.name in inner and not (alt.slots or alt.fixed or alt.domains)
            renamed.append(_RawAlt(rename(alt.name) if unit else alt.name,
                                   [(rename(n), line, column) for n, _, _ in alt.slots], alt.fixed, alt.domains,
                                   alt.weight, line, column))
        out[rename(symbol)] = (renamed, line, column)
    return out


def _raw_alternative(tree: Tree[Token]) -> _RawAlt:
    name_tok: Token = tree.children[0]
    slots, fixed, domains, weight = [], [], [], None
    for child in tree.children[1:]:
        if child is None:
            continue
        if child.data == "arguments":
            for arg in child.children:
                if arg is None:
                    continue
                key: Token = arg.children[0]
                if arg.data == "slot":
                    slots.append((str(key), key.line, key.column))
                elif arg.data == "fixed":
                    fixed.append((str(key), _value(arg.children[1]), key.line, key.column))
                else:
                    domains.append((str(key), [_value(v) for v in arg.children[2:]], key.line, key.column))
        elif child.data == "weight":
            weight = float(child.children[0])
    return _RawAlt(str(name_tok), slots, fixed, domains, weight, name_tok.line, name_tok.column)


def _infer_categories(raw: dict[str, tuple[list[_RawAlt], int, int]], start: str, registry: TerminalRegistry,
                      src: _Source) -> dict[str, str]:
    """Each rule derives one category (module, fork, merge, pre, post): from its terminals and its uses."""
    candidates: dict[str, set[str]] = {}
    all_categories = {"module", "fork", "merge", "pre", "post"}
    for symbol, (alts, _line, _column) in raw.items():
        cats = set(all_categories)
        for alt in alts:
            if alt.name in raw and not (alt.slots or alt.fixed or alt.domains):
                continue  # unit production, resolved below
            found = registry.categories(alt.name)
            if not found:
                known = registry.names() + list(raw)
                raise src.error(f"unknown terminal or non-terminal {alt.name!r}{_did_you_mean(alt.name, known)}",
                                alt.line, alt.column)
            cats &= found
        candidates[symbol] = cats
    candidates[start] &= {"module"}
    # Unit productions make two rules derive the same kind: the rules joined by them (a union-find forest) share
    # one set, the intersection of their own. Near-linear, where pairwise propagation to a fixpoint was quadratic.
    parent = {symbol: symbol for symbol in raw}

    def root(symbol: str) -> str:
        while parent[symbol] != symbol:
            parent[symbol] = parent[parent[symbol]]
            symbol = parent[symbol]
        return symbol

    slot_uses: list[tuple[str, str, str, int, int]] = []  # (slot, category it must derive, combinator, line, col)
    for symbol, (alts, _, _) in raw.items():
        for alt in alts:
            if alt.name in raw and not (alt.slots or alt.fixed or alt.domains):
                a, b = root(symbol), root(alt.name)
                if a != b:
                    parent[b] = a
                    candidates[a] = candidates[a] & candidates.pop(b)
            elif "module" in registry.categories(alt.name):
                term = registry.get(alt.name, "module")
                if isinstance(term, Combinator):
                    for (slot, line, column), cat in zip(alt.slots, term.slot_categories(len(alt.slots))):
                        if slot in raw:
                            slot_uses.append((slot, cat, alt.name, line, column))
    for slot, cat, combinator, line, column in slot_uses:
        group = root(slot)
        if cat not in candidates[group]:
            kinds = "/".join(sorted(candidates[group])) or "nothing consistent"
            raise src.error(f"argument {slot!r} of {combinator!r} must derive {cat}s, but {slot!r} derives {kinds}",
                            line, column)
        candidates[group] = candidates[group] & {cat}
    candidates = {symbol: candidates[root(symbol)] for symbol in raw}
    result = {}
    for symbol, cats in candidates.items():
        _, line, column = raw[symbol]
        if not cats:
            raise src.error(f"rule {symbol!r} mixes alternatives of different kinds (computations, forks, "
                            "aggregations, routings), or is used in a slot of another kind", line, column)
        result[symbol] = "module" if "module" in cats else sorted(cats)[0]
    return result


def _build_rule(symbol: str, alts: list[_RawAlt], categories: dict[str, str], registry: TerminalRegistry,
                raw: dict[str, Any], src: _Source) -> Rule:
    category = categories[symbol]
    expanded: list[tuple[_RawAlt, Alternative]] = []
    for alt in alts:
        if alt.name in raw and not (alt.slots or alt.fixed or alt.domains):
            if categories[alt.name] != category:
                raise src.error(f"{alt.name!r} derives {categories[alt.name]}s but {symbol!r} derives {category}s",
                                alt.line, alt.column)
            expanded.append((alt, Alternative(alt.name, unit=True, line=alt.line, column=alt.column)))
            continue
        try:
            term = registry.get(alt.name, category)
        except KeyError as err:
            raise src.error(str(err), alt.line, alt.column) from None
        _check_slots(alt, term, categories, raw, src)
        for params in _expand_params(alt, term, src):
            if len(expanded) >= MAX_ALTERNATIVES:
                raise src.error(f"rule {symbol!r} expands to more than {MAX_ALTERNATIVES:,} alternatives", alt.line,
                                alt.column)
            expanded.append((alt, Alternative(alt.name, tuple(s for s, _, _ in alt.slots), params,
                                              line=alt.line, column=alt.column)))
    return Rule(symbol, category, _weights(symbol, expanded, src))


def _check_slots(alt: _RawAlt, term: Any, categories: dict[str, str], raw: dict[str, Any], src: _Source) -> None:
    if not isinstance(term, Combinator):
        if alt.slots:
            name, line, column = alt.slots[0]
            raise src.error(f"{alt.name!r} takes no non-terminal arguments (got {name!r}); parameters are written "
                            f"'name = value' or 'name in {{...}}'", line, column)
        return
    n = len(alt.slots)
    if (term.variadic_slots and n < len(term.slots)) or (not term.variadic_slots and n != len(term.slots)):
        wanted = f"at least {len(term.slots)}" if term.variadic_slots else str(len(term.slots))
        raise src.error(f"{alt.name!r} takes {wanted} non-terminal arguments ({', '.join(term.slots)}), got {n}",
                        alt.line, alt.column)
    for (slot, line, column), cat in zip(alt.slots, term.slot_categories(n)):
        if slot not in raw:
            raise src.error(f"unknown non-terminal {slot!r}{_did_you_mean(slot, list(raw))}", line, column)
        if categories[slot] != cat:
            raise src.error(f"argument {slot!r} of {alt.name!r} must derive {cat}s, but derives {categories[slot]}s",
                            line, column)


def _expand_params(alt: _RawAlt, term: Any, src: _Source) -> list[tuple[tuple[str, Any], ...]]:
    declared = {p.name: p for p in term.params}
    seen: dict[str, tuple[int, int]] = {}
    values: dict[str, list[Any]] = {}
    for name, value, line, column in [(n, [v], ln, c) for n, v, ln, c in alt.fixed] + alt.domains:
        if name not in declared:
            hint = _did_you_mean(name, list(declared))
            params = f"; it takes {', '.join(declared)}" if declared else "; it takes no parameters"
            raise src.error(f"{alt.name!r} has no parameter {name!r}{hint}{params}", line, column)
        if name in seen:
            raise src.error(f"parameter {name!r} given twice", line, column)
        seen[name] = (line, column)
        for v in value:
            problem = declared[name].check(v)
            if problem:
                raise src.error(f"{alt.name}: {problem}", line, column)
        if len(set(value)) != len(value):
            raise src.error(f"parameter {name!r} lists a value twice", line, column)
        values[name] = [float(v) if declared[name].kind is float else v for v in value]
    for pname, param in declared.items():
        if pname not in values and param.default is not None:
            values[pname] = [param.default]
    missing = [p for p in declared if p not in values]
    if missing:
        raise src.error(f"{alt.name!r} needs parameter {missing[0]!r}", alt.line, alt.column)
    names = [p.name for p in term.params]
    count = math.prod(len(values[n]) for n in names)
    if count > MAX_ALTERNATIVES:
        raise src.error(f"the parameter domains of {alt.name!r} expand to {count:,} alternatives, more than "
                        f"{MAX_ALTERNATIVES:,}", alt.line, alt.column)
    return [tuple(zip(names, combo)) for combo in itertools.product(*(values[n] for n in names))]


def _weights(symbol: str, expanded: list[tuple[_RawAlt, Alternative]], src: _Source) -> tuple[Alternative, ...]:
    from dataclasses import replace

    groups: dict[int, list[Alternative]] = {}
    raws: dict[int, _RawAlt] = {}
    for raw_alt, alt in expanded:
        groups.setdefault(id(raw_alt), []).append(alt)
        raws[id(raw_alt)] = raw_alt
    explicit = sum(raws[g].weight for g in groups if raws[g].weight is not None)
    free_count = sum(len(alts) for g, alts in groups.items() if raws[g].weight is None)
    first = expanded[0][0]
    if explicit > 1 + 1e-6:
        raise src.error(f"probabilities of {symbol!r} sum to {explicit:g} > 1", first.line, first.column)
    if free_count == 0 and abs(explicit - 1) > 1e-6:
        raise src.error(f"probabilities of {symbol!r} sum to {explicit:g}, not 1", first.line, first.column)
    if free_count and explicit >= 1 - 1e-9:
        raise src.error(f"probabilities of {symbol!r} leave nothing for its alternatives without '@'",
                        first.line, first.column)
    share = (1 - explicit) / free_count if free_count else 0.0
    out = []
    for g, alts in groups.items():
        w = raws[g].weight
        for alt in alts:
            out.append(replace(alt, weight=w / len(alts) if w is not None else share))
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for alt in out:
        if (alt.label(), alt.args) in seen and not alt.unit:
            raise src.error(f"alternative {alt.label()!r} appears twice in {symbol!r}", alt.line, alt.column)
        seen.add((alt.label(), alt.args))
    return tuple(out)


def _check_finite(grammar: Grammar, raw: dict[str, Any], src: _Source) -> None:
    """Every rule must be able to finish (derive a tree without infinite recursion), unit cycles are banned, and
    flattened alternatives must differ. Each check is linear in the grammar (a worklist, a topological sort, and
    ancestor walks only for labels that several rules hold), so large grammars load in seconds."""
    rules = grammar.rules
    # 1. finite rules: Horn-clause propagation; an alternative finishes once all its (distinct) children do
    waiting: dict[str, list[tuple[str, int]]] = {}
    missing: list[int] = []
    finite: set[str] = set()
    queue: list[str] = []
    for rule in rules:
        for alt in rule.alternatives:
            needs = {alt.term} if alt.unit else set(alt.args)
            index = len(missing)
            missing.append(len(needs))
            for child in needs:
                waiting.setdefault(child, []).append((rule.symbol, index))
            if not needs and rule.symbol not in finite:
                finite.add(rule.symbol)
                queue.append(rule.symbol)
    while queue:
        done = queue.pop()
        for symbol, index in waiting.get(done, ()):
            missing[index] -= 1
            if missing[index] == 0 and symbol not in finite:
                finite.add(symbol)
                queue.append(symbol)
    for rule in rules:
        if rule.symbol not in finite:
            _, line, column = raw[rule.symbol]
            raise src.error(f"rule {rule.symbol!r} can never finish: every alternative recurses", line, column)
    # 2. unit cycles (a -> b -> a): a topological sort of the unit-production graph
    units = {rule.symbol: {a.term for a in rule.alternatives if a.unit} for rule in rules}
    try:
        graphlib.TopologicalSorter(units).prepare()
    except graphlib.CycleError as err:
        on_cycle = set(err.args[1])
        first = next(rule.symbol for rule in rules if rule.symbol in on_cycle)
        _, line, column = raw[first]
        raise src.error(f"rule {first!r} reaches itself through unit productions only", line, column) from None
    # 3. flattened alternatives must differ so that derivation strings parse unambiguously: a label (with its slots)
    #    held by two rules is an error when some rule reaches both through unit productions
    holders: dict[tuple[str, tuple[str, ...]], dict[str, None]] = {}  # label -> the rules holding it, in order
    for rule in rules:
        for alt in rule.alternatives:
            if not alt.unit:
                holders.setdefault((alt.label(), alt.args), {})[rule.symbol] = None
    users: dict[str, list[str]] = {}
    for symbol, children in units.items():
        for child in children:
            users.setdefault(child, []).append(symbol)
    for (label, _), held_by in holders.items():
        if len(held_by) < 2:
            continue
        reached_from: dict[str, str] = {}
        for holder in held_by:
            frontier, seen = [holder], {holder}
            while frontier:
                symbol = frontier.pop()
                other = reached_from.setdefault(symbol, holder)
                if other != holder:
                    _, line, column = raw[symbol]
                    raise src.error(f"{label!r} is reachable from {symbol!r} through both {holder!r} and {other!r}; "
                                    "derivation strings would be ambiguous", line, column)
                for user in users.get(symbol, ()):
                    if user not in seen:
                        seen.add(user)
                        frontier.append(user)


def load_grammar(path: str | Path, *, registry: TerminalRegistry | None = None) -> Grammar:
    """Load a grammar file (UTF-8, at most :data:`MAX_GRAMMAR_BYTES`); the grammar is named after the file's stem."""
    path = Path(path)
    text = _decode(_read_bytes(path), str(path))
    return parse_grammar(text, name=path.stem, file=str(path), registry=registry)
