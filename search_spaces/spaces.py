"""Built-in search spaces: a grammar file, a description, and the input kinds it accepts.

:func:`get_space` returns a :class:`Space` bound to one input shape: it samples, parses, mutates and crosses over
derivations with one shared :class:`~search_spaces.sampler.Sampler` (whose reachability caches make repeated
sampling fast).
"""

from __future__ import annotations

import difflib
import random
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Callable, Mapping, Sequence

from search_spaces._format.load import load_grammar, parse_grammar
from search_spaces.derivation import Derivation
from search_spaces.exceptions import InputShapeError, UnknownSpaceError
from search_spaces.grammar import Grammar
from search_spaces.operators import Offspring, crossover, mutate
from search_spaces.sampler import Limits, Sampler
from search_spaces.sexpr import DerivationParser
from search_spaces.types import TensorType, input_type


@dataclass(frozen=True)
class SpaceSpec:
    """A named space: its grammar file (package data), what it is, and which input modes it accepts.

    ``arch_codec`` optionally maps the space's standard architecture strings to derivation strings and back
    (``(to_derivation, from_derivation)``), for spaces such as NAS-Bench-201.
    """

    name: str
    grammar_file: str
    description: str
    input_modes: tuple[str, ...]
    arch_codec: tuple[Callable[[str], str], Callable[[str], str | None]] | None = None
    default_limits: Limits = field(default_factory=Limits)


SPACES: dict[str, SpaceSpec] = {
    spec.name: spec
    for spec in [
        SpaceSpec("einspace", "einspace.grammar",
                  "einspace 2-D (Ericsson et al., NeurIPS 2024): branching, aggregation, routing, computation "
                  "over image inputs C,H,W", ("image",)),
        SpaceSpec("einspace-1d", "einspace-1d.grammar",
                  "einspace 1-D variant: as einspace without im2col, plus conv1d; sequence inputs C,L", ("signal",)),
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


@lru_cache(maxsize=None)
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

    @property
    def name(self) -> str:
        return self.spec.name

    def sample(self, seed: int | random.Random) -> Derivation:
        """One random derivation; the same seed gives the same derivation."""
        return Derivation(self.name, self.sampler.sample(seed))

    def parse(self, text: str) -> Derivation:
        """Type-check a derivation string on this space's input (raises with the column of the problem)."""
        return Derivation(self.name, self._parser.parse(text))

    def mutate(self, parent: Derivation, seed: int | random.Random) -> tuple[Derivation, Offspring]:
        child = mutate(self.sampler, parent.root, seed)
        return Derivation(self.name, child.root), child

    def crossover(self, a: Derivation, b: Derivation, seed: int | random.Random) -> tuple[Derivation, Offspring]:
        child = crossover(self.sampler, a.root, b.root, seed)
        return Derivation(self.name, child.root), child

    def from_arch(self, arch: str) -> Derivation:
        """Build the space's named architecture from its standard string."""
        if self.spec.arch_codec is None:
            return self.parse(arch)
        return self.parse(self.spec.arch_codec[0](arch))

    def arch_string(self, derivation: Derivation) -> str | None:
        """The space's standard architecture string for ``derivation``, where the space has one."""
        if self.spec.arch_codec is None:
            return None
        return self.spec.arch_codec[1](str(derivation))


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
    if probabilities:
        grammar = grammar.with_probabilities(probabilities)
    return Space(spec, grammar, in_type, limits or spec.default_limits)
