"""What the sampler and the combinators share: alternatives, reachability entries, and the two contracts between
them.

- :class:`SamplingContext` is what a combinator may ask of the sampler (reachability tables, costs, child
  expansion, and a cache of its own per sampler);
- :class:`Combinator` is what the sampler (and the derivation parser and graph builder) may ask of a combinator.

This module imports neither the sampler nor the combinators, so neither imports the other: the sampler drives
combinators through :class:`Combinator`, and combinators see the sampler only as a :class:`SamplingContext`.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Protocol, TypeVar

from search_spaces.derivation import Cost, DNode
from search_spaces.exceptions import SearchSpaceError
from search_spaces.grammar import Alternative, Grammar
from search_spaces.limits import Limits
from search_spaces.terminals.base import IrChain, Leaf, Terminal
from search_spaces.types import TensorType

NODE = Cost(nodes=1)
"""The cost of one module node (a combinator or a leaf)."""

CacheT = TypeVar("CacheT")


@dataclass(frozen=True, eq=False)
class FlatAlternative:
    """An alternative reached from a symbol through unit productions, with its total probability.

    Compared and hashed by identity: one sampler makes each exactly once, and cache keys hash them often.
    """

    alt: Alternative
    prob: float
    category: str
    terminal: Terminal
    branch: int = 0  # index of the symbol's own alternative this one was reached through (template choices)

    @cached_property
    def leaf(self) -> Leaf | None:
        """The terminal when it is a leaf computation, else None."""
        return self.terminal if isinstance(self.terminal, Leaf) else None

    @cached_property
    def combinator(self) -> Combinator | None:
        """The terminal when it is a combinator, else None."""
        return self.terminal if isinstance(self.terminal, Combinator) else None


@dataclass(frozen=True)
class Reach:
    """A reachable output type: its minimum cost and its probability mass (for weighting target choices)."""

    cost: Cost
    mass: float


ReachTable = dict[TensorType, Reach]
"""Output types reachable from one input type, each with its cheapest cost and probability mass."""


class SamplingBugError(SearchSpaceError):
    """The invariant was broken: no alternative is feasible where one was proved to be. Please report."""


def weighted_choice(rng: random.Random, options: Sequence[tuple[float, Any]]) -> Any:
    """Pick one payload with probability proportional to its weight (weights are renormalised)."""
    total = sum(w for w, _ in options)
    if total <= 0:
        return options[rng.randrange(len(options))][1]
    x = rng.random() * total
    for w, payload in options:
        x -= w
        if x < 0:
            return payload
    return options[-1][1]


ParseChild = Callable[[str, Any, TensorType], DNode]
"""``(symbol, expression, input type) -> node``: type-checks a written child derivation."""
ParseAtom = Callable[[str, Any], FlatAlternative]
"""``(symbol, expression) -> alternative``: looks up a written fork, merge or routing atom."""


class SamplingContext(Protocol):
    """What a combinator may ask of the sampler (:class:`search_spaces.sampler.Sampler` implements it)."""

    grammar: Grammar
    limits: Limits

    def alternatives(self, symbol: str) -> list[FlatAlternative]: ...

    def admissible(self, t: TensorType | None) -> bool: ...

    def chain_cost(self, chain: IrChain, t: TensorType) -> Cost: ...

    def reach0(self, symbol: str, t: TensorType) -> ReachTable: ...

    def reach1(self, symbol: str, t: TensorType) -> ReachTable: ...

    def min_cost_to(self, symbol: str, t: TensorType, target: TensorType, depth: int) -> Cost | None: ...

    def sole_output(self, symbol: str, t: TensorType, depth: int) -> tuple[TensorType, Cost] | None: ...

    def expand(self, symbol: str, t: TensorType, target: TensorType | None, depth: int, budget: Cost,
               rng: random.Random, exclude: Alternative | None = None) -> DNode: ...

    def cache(self, owner: object, factory: Callable[[], CacheT]) -> CacheT:
        """The cache ``owner`` keeps in this sampler (made by ``factory`` on first use); it lives and dies with
        the sampler, so a combinator (shared by every grammar) holds no state of its own."""
        ...


class Combinator(Terminal, ABC):
    """Base of combinators: terminals whose arguments are non-terminals.

    The sampler calls :meth:`min_free_cost` / :meth:`feasible_free` and :meth:`expand_free` to derive with any
    output type; :meth:`min_plan_cost`, :meth:`plans` and :meth:`expand_planned` to derive towards an exact
    output type; :meth:`sole_output` to reserve budget for later siblings; :meth:`shallow_outputs` (when
    ``in_reach1``) for its ``reach1`` table. The derivation parser calls :meth:`parse` and the graph builder
    :meth:`lower`. ``slot_categories(n)`` gives the category each of ``n`` arguments must derive.
    """

    category = "module"
    slot_roles: ClassVar[tuple[str, ...]] = ()
    in_reach1: ClassVar[bool] = False  # whether its shallow outputs join the sampler's reach1 table

    def slot_categories(self, n: int) -> tuple[str, ...]:
        return self.slot_roles

    def type_error(self, message: str) -> ValueError:
        return ValueError(f"{self.name}: {message}")

    @abstractmethod
    def min_free_cost(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType, depth: int) -> Cost | None:
        """A cost within which a free derivation from ``t`` surely exists (None: none exists)."""

    def feasible_free(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType, depth: int,
                      budget: Cost) -> bool:
        """Whether a free derivation from ``t`` surely fits ``budget``."""
        cost = self.min_free_cost(ctx, fa, t, depth)
        return cost is not None and cost.fits(budget)

    @abstractmethod
    def expand_free(self, ctx: SamplingContext, symbol: str, fa: FlatAlternative, t: TensorType, depth: int,
                    budget: Cost, rng: random.Random) -> DNode:
        """Derive from ``t`` with any output type within ``budget``."""

    @abstractmethod
    def min_plan_cost(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType, target: TensorType,
                      depth: int) -> Cost | None:
        """The cheapest plan towards ``target`` (None when there is none)."""

    @abstractmethod
    def plans(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType, target: TensorType, depth: int,
              budget: Cost) -> list[tuple[float, Any]]:
        """Weighted plans (child targets, merges, ...) that derive ``target`` from ``t`` within ``budget``."""

    @abstractmethod
    def expand_planned(self, ctx: SamplingContext, symbol: str, fa: FlatAlternative, t: TensorType,
                       target: TensorType, plans: Any, depth: int, budget: Cost, rng: random.Random) -> DNode:
        """Derive ``target`` from ``t`` by one of ``plans`` (as :meth:`plans` returned them)."""

    def sole_output(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType, depth: int) -> TensorType | None:
        """The output type every derivation of this alternative has from ``t``, if there is exactly one."""
        return None

    @abstractmethod
    def shallow_outputs(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType) -> ReachTable:
        """What it produces from ``t`` when its children are single leaves (the sampler's ``reach1``)."""

    @abstractmethod
    def parse(self, ctx: SamplingContext, symbol: str, fa: FlatAlternative, items: Sequence[Any], t: TensorType,
              parse_child: ParseChild, parse_atom: ParseAtom) -> DNode:
        """Type-check a written derivation of this alternative on input ``t``."""

    @abstractmethod
    def lower(self, ctx: SamplingContext, node: DNode, builder: Any, value: Any,
              lower_child: Callable[[DNode, Any], Any]) -> Any:
        """Emit the IR ops of ``node`` after ``value`` through ``builder``; returns the output value."""
