"""Grammar: a parameterised probabilistic context-free grammar, as frozen data.

A :class:`Grammar` maps each non-terminal to a :class:`Rule`, a list of concrete :class:`Alternative` s with
probabilities that sum to 1. Parameter domains of the text format are already expanded (``linear(width in
{16, 32})`` is two alternatives), so an alternative is exactly one choice the sampler can make. Grammars are
frozen and hashable so that they work as cache keys; load one with :func:`search_spaces.load_grammar`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from search_spaces.exceptions import GrammarSyntaxError
from search_spaces.terminals import TerminalRegistry
from search_spaces.terminals.base import Terminal


@dataclass(frozen=True)
class Alternative:
    """One production: ``term`` applied to non-terminal ``args`` with fixed ``params``, chosen with ``weight``.

    ``unit`` alternatives name another non-terminal (``module -> computation``) and have no args or params.
    """

    term: str
    args: tuple[str, ...] = ()
    params: tuple[tuple[str, Any], ...] = ()
    weight: float = 1.0
    unit: bool = False
    line: int = field(default=0, compare=False)
    column: int = field(default=0, compare=False)

    @cached_property
    def param_dict(self) -> dict[str, Any]:
        """The parameters as a dict (cached; do not mutate)."""
        return dict(self.params)

    def label(self) -> str:
        """The alternative as a derivation atom: ``linear[width=64]``."""
        if not self.params:
            return self.term
        return f"{self.term}[{','.join(f'{k}={format_value(v)}' for k, v in self.params)}]"


@dataclass(frozen=True)
class Rule:
    """All alternatives of one non-terminal; ``category`` is what it derives (module, fork, merge, pre, post)."""

    symbol: str
    category: str
    alternatives: tuple[Alternative, ...]


@dataclass(frozen=True)
class Grammar:
    """A typed PCFG. ``rules`` are in file order; ``registry`` resolves terminal names (keyword-only, not part of
    equality; :func:`search_spaces.load_grammar` passes :func:`search_spaces.builtin.default_registry`'s).

    ``shared`` names non-terminals whose expansions are one motif reused everywhere within a derivation (e.g.
    NAS-Bench-201's cell): they are derived once, towards their input type, and re-typed at every other use.
    """

    name: str
    start: str
    rules: tuple[Rule, ...]
    source: str = field(default="<grammar>", compare=False)
    shared: frozenset[str] = frozenset()
    registry: TerminalRegistry = field(kw_only=True, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_symbol", {r.symbol: r for r in self.rules})

    def rule(self, symbol: str) -> Rule:
        return self._by_symbol[symbol]  # type: ignore[attr-defined]

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(r.symbol for r in self.rules)

    def terminal(self, alt: Alternative, category: str) -> Terminal:
        """The terminal object an alternative applies, in the category its rule derives."""
        return self.registry.get(alt.term, category)

    def with_probabilities(self, overrides: Mapping[str, Mapping[str, float]]) -> Grammar:
        """A copy where, for ``overrides[symbol][term] = p``, the alternatives applying ``term`` in ``symbol``
        get total probability ``p`` (split equally among them); the other alternatives of that rule share the rest
        in proportion to their previous weights. Example: ``{"module": {"computation": 0.5}}``.
        """
        rules = []
        for rule in self.rules:
            wanted = overrides.get(rule.symbol)
            if not wanted:
                rules.append(rule)
                continue
            unknown = set(wanted) - {a.term for a in rule.alternatives}
            if unknown:
                raise GrammarSyntaxError(f"rule {rule.symbol!r} has no alternative {sorted(unknown)[0]!r}", self.source)
            fixed_total = sum(wanted.values())
            if not 0 <= fixed_total <= 1 + 1e-9 or any(p < 0 for p in wanted.values()):
                raise GrammarSyntaxError(f"probabilities for {rule.symbol!r} must be in [0, 1] and sum to <= 1",
                                         self.source)
            rest = [a for a in rule.alternatives if a.term not in wanted]
            rest_weight = sum(a.weight for a in rest)
            if not rest and abs(fixed_total - 1) > 1e-6:
                raise GrammarSyntaxError(f"probabilities for {rule.symbol!r} must sum to 1", self.source)
            alts = []
            for a in rule.alternatives:
                if a.term in wanted:
                    count = sum(1 for b in rule.alternatives if b.term == a.term)
                    alts.append(replace(a, weight=wanted[a.term] / count))
                else:
                    alts.append(replace(a, weight=(1 - fixed_total) * a.weight / rest_weight if rest_weight else 0.0))
            rules.append(replace(rule, alternatives=tuple(alts)))
        return replace(self, rules=tuple(rules))


def format_value(value: Any) -> str:
    """A parameter value as written in grammars and derivations: ``3``, ``0.5``, ``(1,0)``, ``"x"``."""
    if isinstance(value, tuple):
        return "(" + ",".join(format_value(v) for v in value) + ")"
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    return repr(value)
