"""Built-in search spaces: a grammar file, a description, and the input kinds it accepts.

:func:`get_space` returns a :class:`Space` bound to one input shape: it samples, parses, mutates and crosses over
derivations with one shared :class:`~search_spaces.sampler.Sampler` (whose reachability caches make repeated
sampling fast).
"""

from __future__ import annotations

import difflib
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from typing import Any

from search_spaces._format.load import load_grammar, parse_grammar
from search_spaces.codecs import ChoiceCodec, NB201Codec, WidthCodec
from search_spaces.derivation import Derivation
from search_spaces.exceptions import BudgetError, InputShapeError, SearchSpaceError, UnknownSpaceError
from search_spaces.grammar import Grammar
from search_spaces.operators import Offspring, crossover, mutate
from search_spaces.sampler import Limits, Sampler
from search_spaces.sexpr import DerivationParser
from search_spaces.types import TensorType, input_type


@dataclass(frozen=True)
class SpaceSpec:
    """A named space: its grammar file (package data), what it is, and which input modes it accepts.

    Attributes:
        arch_codec: maps the space's standard architecture strings to derivations and back, and enumerates
            finite spaces (see :mod:`search_spaces.codecs`).
        shared: extra non-terminals to share (one motif reused everywhere), on top of the grammar's own.
        template_symbols: the space's top-level template choices (HHNAS-AM's template bits), which a search
            strategy may mutate separately.
        example_input: an input shape the space is meant for.
    """

    name: str
    grammar_file: str
    description: str
    input_modes: tuple[str, ...]
    arch_codec: Any = None
    default_limits: Limits = field(default_factory=Limits)
    shared: tuple[str, ...] = ()
    template_symbols: tuple[str, ...] = ()
    example_input: tuple[int, ...] = (3, 32, 32)


PARSE_CACHE = 1 << 16
"""Derivation strings a :class:`Space` keeps parsed."""

_TEMPLATE_LIMITS = Limits(max_depth=8, max_nodes=3000, max_params=5_000_000, max_flops=2_000_000_000,
                          max_elements=1 << 20)

SPACES: dict[str, SpaceSpec] = {
    spec.name: spec
    for spec in [
        SpaceSpec("einspace", "einspace.grammar",
                  "einspace 2-D (Ericsson et al., NeurIPS 2024): branching, aggregation, routing, computation "
                  "over image inputs C,H,W", ("image",)),
        SpaceSpec("einspace-1d", "einspace-1d.grammar",
                  "einspace 1-D variant: as einspace without im2col, plus conv1d; sequence inputs C,L", ("signal",),
                  example_input=(1, 40)),
        SpaceSpec("nb201", "nb201.grammar",
                  "NAS-Bench-201 (Dong & Yang, ICLR 2020): one 4-node cell with 6 edge ops, C=16, N=5; "
                  "15,625 architectures, strings |op~0|+|op~0|op~1|+|op~0|op~1|op~2|", ("image",),
                  arch_codec=NB201Codec(), default_limits=Limits(6, 400, 20_000_000, 20_000_000_000, 1 << 20)),
        SpaceSpec("nb-macro", "nb-macro.grammar",
                  "NAS-Bench-Macro (Su et al., CVPR 2021): 8 layers of identity / MBConv e3k3 / e6k5; "
                  "6,561 architectures, strings like 02012100", ("image",),
                  arch_codec=ChoiceCodec(), default_limits=Limits(4, 64, 50_000_000, 20_000_000_000, 1 << 21)),
        SpaceSpec("nats-sss", "nats-sss.grammar",
                  "NATS-Bench size search space (Dong et al., TPAMI 2021): NB201 skeleton with one fixed cell per "
                  "stage, 5 layer widths in {8,...,64}; 32,768 architectures, strings like 8:16:24:32:40",
                  ("image",), arch_codec=WidthCodec(),
                  default_limits=Limits(4, 16, 4_000_000, 20_000_000_000, 1 << 20)),  # all-64: 0.71M, 0.55 GFLOPs
        SpaceSpec("hnb201", "hnb201.grammar",
                  "hierarchical NB201 (after Schrodi et al., NeurIPS 2023): resolutions -> stack topologies -> "
                  "cell topologies -> NB201 cells -> conv blocks (act x conv x norm)", ("image",),
                  default_limits=_TEMPLATE_LIMITS),
        SpaceSpec("hnb201-shared", "hnb201.grammar",
                  "hnb201 with one shared cell reused at every position", ("image",),
                  default_limits=Limits(8, 3000, 100_000_000, 100_000_000_000, 1 << 20), shared=("cell",)),
        SpaceSpec("hnb201-einspace", "hnb201-einspace.grammar",
                  "hnb201 macro structure with einspace micro structure in the cell edges (holes)", ("image",),
                  default_limits=Limits(9, 400, 5_000_000, 2_000_000_000, 1 << 20)),
        SpaceSpec("seq-templates", "seq-templates.grammar",
                  "sequence templates (after HHNAS-AM): 3 template bits (stem, mixer, ffn) x micro choices; "
                  "sequence inputs C,L", ("signal",), default_limits=_TEMPLATE_LIMITS,
                  template_symbols=("embed", "mixer", "ffn"), example_input=(1, 40)),
    ]
}


def list_spaces() -> list[SpaceSpec]:
    return list(SPACES.values())


def space_spec(name: str) -> SpaceSpec:
    try:
        return SPACES[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(SPACES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownSpaceError(f"unknown space {name!r}{hint}; known: {', '.join(SPACES)}") from None


@cache
def builtin_grammar(filename: str) -> Grammar:
    """A shipped grammar, parsed once per process."""
    text = resources.files("search_spaces.grammars").joinpath(filename).read_text()
    return parse_grammar(text, name=filename.rsplit(".", 1)[0], file=f"search_spaces/grammars/{filename}")


class Space:
    """A search space bound to one input shape (see module docstring)."""

    def __init__(self, spec: SpaceSpec, grammar: Grammar, in_type: TensorType, limits: Limits):
        self.spec, self.grammar, self.input_type, self.limits = spec, grammar, in_type, limits
        self.sampler = Sampler(grammar, in_type, limits)
        self._parser = DerivationParser(self.sampler)
        self._parsed: dict[str, Derivation] = {}  # derivations are immutable: parse each string once

    @property
    def name(self) -> str:
        return self.spec.name

    def sample(self, seed: int | random.Random) -> Derivation:
        """One random derivation; the same seed gives the same derivation.

        In spaces whose codec sets ``mutates_slots`` (``nats-sss``) every choice slot takes a uniformly drawn value
        and draws over the limits are rejected, so a sample is uniform over the architectures within the limits
        (the grammar sampler's budget reservation assumes a later slot's cost does not depend on an earlier slot's
        width, which is false there).
        """
        if getattr(self.spec.arch_codec, "mutates_slots", False):
            return self._sample_slots(seed)
        return Derivation(self.name, self.sampler.sample(seed))

    def _sample_slots(self, seed: int | random.Random, tries: int = 10_000) -> Derivation:
        rng = seed if isinstance(seed, random.Random) else random.Random(seed)
        codec, limits = self.spec.arch_codec, self.limits
        values = [sorted(v) for _, v in codec.choices(self)]
        for _ in range(tries):
            d = self.from_arch(codec.sep.join(str(rng.choice(v)) for v in values))
            if d.cost.params <= limits.max_params and d.cost.flops <= limits.max_flops and \
                    d.cost.nodes <= limits.max_nodes:
                return d
        raise BudgetError(f"no architecture of space {self.name!r} within the limits (params <= "
                          f"{limits.max_params:,}, flops <= {limits.max_flops:,}) in {tries} uniform draws")

    def parse(self, text: str) -> Derivation:
        """Type-check a derivation string on this space's input (raises with the column of the problem).

        Results are kept (up to :data:`PARSE_CACHE` strings): strategies and the search driver parse the same
        strings again and again, and a derivation is immutable."""
        derivation = self._parsed.get(text)
        if derivation is None:
            derivation = Derivation(self.name, self._parser.parse(text))
            if len(self._parsed) >= PARSE_CACHE:
                self._parsed.clear()
            self._parsed[text] = derivation
        return derivation

    def mutate(self, parent: Derivation, seed: int | random.Random,
               symbols: set[str] | frozenset[str] | None = None) -> tuple[Derivation, Offspring]:
        """A type-preserving mutant; ``symbols`` limits it to nodes of those non-terminals (template bits).

        In spaces whose codec sets ``mutates_slots`` (``nats-sss``: a slot's choice is its output width, which a
        type-preserving resampling cannot change) a mutant changes one choice slot to another of its values,
        picked uniformly among the slots (of ``symbols``) and values that stay within the space's limits.
        """
        if getattr(self.spec.arch_codec, "mutates_slots", False):
            return self._mutate_slot(parent, seed, symbols)
        child = mutate(self.sampler, parent.root, seed, symbols)
        return Derivation(self.name, child.root), child

    def _mutate_slot(self, parent: Derivation, seed: int | random.Random,
                     symbols: set[str] | frozenset[str] | None) -> tuple[Derivation, Offspring]:
        rng = seed if isinstance(seed, random.Random) else random.Random(seed)
        codec = self.spec.arch_codec
        choices = codec.choices(self)
        root_symbols = [c.symbol for c in parent.root.children]
        slots = [i for i, (symbol, _) in enumerate(choices) if symbols is None or symbol in symbols]
        rng.shuffle(slots)
        budget = self.limits
        for i in slots:
            options = [d for d in codec.neighbours(self, parent, i)
                       if d.cost.params <= budget.max_params and d.cost.flops <= budget.max_flops
                       and d.cost.nodes <= budget.max_nodes]
            if options:
                child = rng.choice(options)
                k = root_symbols.index(choices[i][0])
                return child, Offspring(child.root, "mutation", (k,), parent.root.children[k].to_sexpr())
        return parent, Offspring(parent.root, "copy", ())

    def crossover(self, a: Derivation, b: Derivation, seed: int | random.Random) -> tuple[Derivation, Offspring]:
        child = crossover(self.sampler, a.root, b.root, seed)
        return Derivation(self.name, child.root), child

    def from_arch(self, arch: str) -> Derivation:
        """Build the space's named architecture from its standard string (or a derivation string)."""
        if self.spec.arch_codec is None or arch.lstrip().startswith("("):
            return self.parse(arch)
        return self.parse(self.spec.arch_codec.to_derivation(self, arch))

    def arch_string(self, derivation: Derivation) -> str | None:
        """The space's standard architecture string for ``derivation``, where the space has one."""
        if self.spec.arch_codec is None:
            return None
        return self.spec.arch_codec.from_derivation(self, derivation)

    def enumerate(self) -> Iterator[str]:
        """Every architecture string of a finite benchmark space (raises for spaces without an enumeration)."""
        if self.spec.arch_codec is None:
            raise SearchSpaceError(f"space {self.name!r} has no enumeration; count it with derivation_count()")
        return self.spec.arch_codec.enumerate(self)

    # --- template choices (HHNAS-AM's template bits) --------------------------------------------------------------

    def template_choices(self) -> dict[str, list[str]]:
        """For each template symbol, the labels of its top-level alternatives (the values a template bit takes)."""
        return {s: [a.term if a.unit else a.label() for a in self.grammar.rule(s).alternatives]
                for s in self.spec.template_symbols}

    def template_of(self, derivation: Derivation) -> dict[str, int]:
        """Which alternative each template symbol took (its first use in the derivation)."""
        found: dict[str, int] = {}
        for _, node in derivation.root.walk():
            if node.symbol in self.spec.template_symbols and node.symbol not in found:
                (fa,) = [f for f in self.sampler.by_label(node.symbol, node.alt.label()) if f.alt == node.alt]
                found[node.symbol] = fa.branch
        return found

    def derivation_count(self) -> int | None:
        """Number of derivations the grammar allows (None when unbounded), ignoring budgets and shape checks.

        A shared symbol counts once however often it is used.
        """
        return count_derivations(self.sampler)


def count_derivations(sampler: Sampler) -> int | None:
    """Derivations of the start symbol, by dynamic programming over the grammar (None when recursive)."""
    grammar = sampler.grammar
    memo: dict[str, int | None] = {}
    visiting: set[str] = set()

    def count(symbol: str, inside_shared: bool = False) -> int | None:
        if symbol in grammar.shared and not inside_shared:
            return 1  # counted once, at the top
        if symbol in memo:
            return memo[symbol]
        if symbol in visiting:
            return None
        visiting.add(symbol)
        total: int | None = 0
        for fa in sampler.alternatives(symbol):
            term = fa.terminal
            if not fa.alt.args:
                n: int | None = 1
            else:
                symbols = term.child_symbols(fa) if hasattr(term, "child_symbols") else list(fa.alt.args)
                n = 1
                for s in symbols:
                    c = count(s)
                    n = None if c is None or n is None else n * c
            total = None if n is None or total is None else total + n
        visiting.discard(symbol)
        memo[symbol] = total
        return total

    result = count(grammar.start)
    for symbol in grammar.shared:
        c = count(symbol, inside_shared=True)
        result = None if c is None or result is None else result * c
    return result


def get_space(name: str, input_shape: Sequence[int], *, limits: Limits | None = None,
              probabilities: Mapping[str, Mapping[str, float]] | None = None,
              grammar_path: str | None = None) -> Space:
    """The built-in space ``name`` for ``input_shape`` (``C,H,W`` image or ``C,L`` sequence).

    ``probabilities`` overrides production probabilities (``{"module": {"computation": 0.5}}``);
    ``grammar_path`` replaces the shipped grammar by a user file.
    """
    spec = space_spec(name)
    try:
        in_type = input_type(tuple(input_shape))
    except ValueError as err:
        raise InputShapeError(str(err)) from None
    if in_type.mode not in spec.input_modes:
        shapes = {"image": "C,H,W", "signal": "C,L"}
        wanted = " or ".join(shapes[m] for m in spec.input_modes)
        raise InputShapeError(f"space {name!r} takes {wanted} inputs, got {','.join(map(str, input_shape))}")
    grammar = load_grammar(grammar_path) if grammar_path else builtin_grammar(spec.grammar_file)
    if spec.shared:
        grammar = replace(grammar, shared=grammar.shared | frozenset(spec.shared))
    if probabilities:
        grammar = grammar.with_probabilities(probabilities)
    return Space(spec, grammar, in_type, limits or spec.default_limits)
