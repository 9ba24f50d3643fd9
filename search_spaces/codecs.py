"""Standard architecture strings of benchmark spaces <-> derivation strings, and enumeration of finite spaces.

- :class:`NB201Codec`: NAS-Bench-201's ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (Dong & Yang, ICLR 2020).
- :class:`ChoiceCodec`: one digit per choice of a fixed skeleton, e.g. NAS-Bench-Macro's ``02012100`` (the digit
  is the index of the alternative, in grammar order, of each root slot that has a choice).
- :class:`WidthCodec`: one parameter value per choice slot of a fixed skeleton, e.g. NATS-Bench SSS's channel
  widths ``8:16:24:32:40`` (Dong et al., TPAMI 2021).

Codecs build derivations from the grammar's own alternatives, so they follow the grammar file.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Protocol

from search_spaces.derivation import Derivation, DNode
from search_spaces.exceptions import DerivationSyntaxError
from search_spaces.grammar import Grammar


class Space(Protocol):
    """What a codec reads of its space (:class:`search_spaces.spaces.Space` implements it; typed structurally so
    that the spaces, which hold codecs, and the codecs do not import each other)."""

    grammar: Grammar

    @property
    def name(self) -> str: ...

    def from_arch(self, arch: str) -> Derivation: ...


def only_label(space: Space, symbol: str) -> str:
    """The label of a rule's only alternative (a fixed part of a skeleton)."""
    alts = space.grammar.rule(symbol).alternatives
    if len(alts) != 1:
        raise ValueError(f"rule {symbol!r} has {len(alts)} alternatives, expected one")
    return alts[0].label()


class NB201Codec:
    """NAS-Bench-201 cell strings; the grammar's skeleton must be ``sequential(stem, stage, reduce, stage, reduce,
    stage, lastact)`` with ``stage -> repeat(cell, n=N)`` and ``cell -> cell201(edge x 6)``."""

    OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    _NODE = re.compile(r"^\|(?:[a-z0-9_]+~[0-9]+\|)+$")

    def parse_arch(self, arch: str) -> list[str]:
        """The 6 edge ops, in the order 0->1, 0->2, 1->2, 0->3, 1->3, 2->3."""
        nodes = arch.strip().split("+")
        if len(nodes) != 3 or not all(self._NODE.match(n) for n in nodes):
            raise DerivationSyntaxError(f"not a NAS-Bench-201 architecture string (|op~0|+|op~0|op~1|+|op~0|op~1|"
                                        f"op~2|): {arch!r}")
        ops = []
        for j, node in enumerate(nodes, start=1):
            edges = [e.split("~") for e in node.strip("|").split("|")]
            if [int(i) for _, i in edges] != list(range(j)):
                raise DerivationSyntaxError(f"node {j} of {arch!r} must list inputs ~0..~{j - 1} in order")
            for op, _ in edges:
                if op not in self.OPS:
                    raise DerivationSyntaxError(f"unknown NAS-Bench-201 op {op!r} in {arch!r}; known: "
                                                f"{', '.join(self.OPS)}")
                ops.append(op)
        return ops

    def to_derivation(self, space: Space, arch: str) -> str:
        ops = self.parse_arch(arch)
        cell = "(cell201 " + " ".join(ops) + ")"
        stage_alt = space.grammar.rule("stage").alternatives[0]
        stage = f"({stage_alt.label()} " + " ".join([cell] * stage_alt.param_dict["n"]) + ")"
        parts = [only_label(space, "stem"), stage, only_label(space, "reduce"), stage, only_label(space, "reduce"),
                 stage, only_label(space, "lastact")]
        return "(sequential " + " ".join(parts) + ")"

    def from_derivation(self, space: Space, derivation: Derivation) -> str | None:
        cell = next((n for _, n in derivation.root.walk() if n.alt.term == "cell201"), None)
        if cell is None:
            return None
        e = [c.alt.label() for c in cell.children]
        return f"|{e[0]}~0|+|{e[1]}~0|{e[2]}~1|+|{e[3]}~0|{e[4]}~1|{e[5]}~2|"

    def enumerate(self, space: Space) -> Iterator[str]:
        for e in itertools.product(self.OPS, repeat=6):
            yield f"|{e[0]}~0|+|{e[1]}~0|{e[2]}~1|+|{e[3]}~0|{e[4]}~1|{e[5]}~2|"


class ChoiceCodec:
    """One digit per root slot with a choice: the index of the chosen alternative in grammar order."""

    def _slots(self, space: Space) -> list[str]:
        (alt,) = space.grammar.rule(space.grammar.start).alternatives
        return list(alt.args)

    def _choice_slots(self, space: Space) -> list[int]:
        return [i for i, s in enumerate(self._slots(space)) if len(space.grammar.rule(s).alternatives) > 1]

    def to_derivation(self, space: Space, arch: str) -> str:
        slots, choices = self._slots(space), self._choice_slots(space)
        digits = arch.strip()
        if len(digits) != len(choices) or not (digits.isascii() and digits.isdigit()):  # not "²"
            raise DerivationSyntaxError(f"{space.name} architecture strings have {len(choices)} digits, got {arch!r}")
        labels = []
        digit_of = dict(zip(choices, digits))
        for i, symbol in enumerate(slots):
            alts = space.grammar.rule(symbol).alternatives
            index = int(digit_of.get(i, "0"))
            if index >= len(alts):
                raise DerivationSyntaxError(f"digit {index} at position {choices.index(i) + 1} of {arch!r} is out "
                                            f"of range 0..{len(alts) - 1}")
            labels.append(alts[index].label())
        (alt,) = space.grammar.rule(space.grammar.start).alternatives
        return f"({alt.label()} " + " ".join(labels) + ")"

    def from_derivation(self, space: Space, derivation: Derivation) -> str | None:
        root: DNode = derivation.root
        digits = []
        for i in self._choice_slots(space):
            child = root.children[i]
            labels = [a.label() for a in space.grammar.rule(child.symbol).alternatives]
            digits.append(str(labels.index(child.alt.label())))
        return "".join(digits)

    def enumerate(self, space: Space) -> Iterator[str]:
        sizes = [len(space.grammar.rule(self._slots(space)[i]).alternatives) for i in self._choice_slots(space)]
        for combo in itertools.product(*(range(n) for n in sizes)):
            yield "".join(map(str, combo))


class WidthCodec:
    """One parameter value per root slot with a choice, joined by ``sep``: NATS-Bench SSS's ``c0:c1:c2:c3:c4``.

    The start rule must be a single combinator over slots (``sequential(stem, layer0, ..., lastact)``); every slot
    with more than one alternative is a choice, and each of its alternatives must carry a distinct value of the
    parameter ``param`` (a domain such as ``width in {8, 16, ..., 64}``). Slots with one alternative are fixed.
    Enumeration is in grammar order, the last slot varying fastest (``8:8:8:8:8``, ``8:8:8:8:16``, ...).
    """

    def __init__(self, param: str = "width", sep: str = ":"):
        self.param, self.sep = param, sep
        self._cache: dict[int, tuple[object, list[tuple[str, dict[int, str]]]]] = {}

    def _slots(self, space: Space) -> list[str]:
        (alt,) = space.grammar.rule(space.grammar.start).alternatives
        return list(alt.args)

    def choices(self, space: Space) -> list[tuple[str, dict[int, str]]]:
        """For each choice slot, in order: its non-terminal and ``{value: alternative label}``."""
        cached = self._cache.get(id(space.grammar))
        if cached is not None and cached[0] is space.grammar:
            return cached[1]
        found = []
        for symbol in self._slots(space):
            alts = space.grammar.rule(symbol).alternatives
            if len(alts) > 1:
                values = {a.param_dict[self.param]: a.label() for a in alts}
                if len(values) != len(alts):
                    raise ValueError(f"rule {symbol!r}: alternatives must have distinct {self.param!r} values")
                found.append((symbol, values))
        if len(self._cache) > 16:  # grammars with overridden probabilities are new objects
            self._cache.clear()
        self._cache[id(space.grammar)] = (space.grammar, found)
        return found

    def values(self, space: Space, arch: str) -> list[int]:
        """The slot values of ``arch`` (raises DerivationSyntaxError naming what is wrong)."""
        choices = self.choices(space)
        example = self.sep.join(str(next(iter(v))) for _, v in choices)
        parts = arch.strip().split(self.sep)
        if len(parts) != len(choices):
            raise DerivationSyntaxError(f"{space.name} architecture strings have {len(choices)} {self.param}s "
                                        f"joined by {self.sep!r} (e.g. {example!r}), got {len(parts)} in {arch!r}")
        out = []
        for i, (part, (symbol, values)) in enumerate(zip(parts, choices), start=1):
            try:
                value = int(part.strip()) if part.strip().isascii() else None  # not "٨"
            except ValueError:
                value = None
            if value not in values:
                raise DerivationSyntaxError(f"{self.param} {part.strip()!r} at position {i} ({symbol}) of {arch!r} "
                                            f"is not one of {', '.join(map(str, values))}")
            out.append(value)
        return out

    def to_derivation(self, space: Space, arch: str) -> str:
        choices = dict(self.choices(space))
        value_of = dict(zip(choices, self.values(space, arch)))
        labels = [choices[s][value_of[s]] if s in choices else only_label(space, s) for s in self._slots(space)]
        (alt,) = space.grammar.rule(space.grammar.start).alternatives
        return f"({alt.label()} " + " ".join(labels) + ")"

    def from_derivation(self, space: Space, derivation: Derivation) -> str | None:
        slots = self._slots(space)
        values = [str(derivation.root.children[slots.index(s)].alt.param_dict[self.param])
                  for s, _ in self.choices(space)]
        return self.sep.join(values)

    def enumerate(self, space: Space) -> Iterator[str]:
        for combo in itertools.product(*(list(values) for _, values in self.choices(space))):
            yield self.sep.join(map(str, combo))

    #: :meth:`~search_spaces.spaces.Space.mutate` uses :meth:`neighbours` instead of subtree resampling.
    mutates_slots = True

    def neighbours(self, space: Space, derivation: Derivation, slot: int) -> list[Derivation]:
        """Every derivation that differs from ``derivation`` in choice slot ``slot`` (an index into
        :meth:`choices`) only: the one-width steps of that slot.

        :meth:`~search_spaces.spaces.Space.mutate` re-derives a node towards its own output type, and a slot's
        width *is* its output type, so a subtree resampling would keep the width; the space mutates such slots
        through this instead.
        """
        values = self.values(space, self.from_derivation(space, derivation) or "")
        out = []
        for value in self.choices(space)[slot][1]:
            if value != values[slot]:
                changed = list(values)
                changed[slot] = value
                out.append(space.from_arch(self.sep.join(map(str, changed))))
        return out
