"""Derivation trees: typed, costed, printable as s-expressions.

Every :class:`DNode` records the non-terminal it derives, the concrete alternative chosen, its input and output
:class:`~search_spaces.types.TensorType` and its :class:`Cost`. A combinator node's children are its slot
derivations in order: ``(sequential A B)``, ``(routing PRE BODY POST)``, ``(branching FORK BODY... MERGE)``.
The string form is exactly that s-expression, with leaves written ``name`` or ``name[param=value,...]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from search_spaces.grammar import Alternative
from search_spaces.types import TensorType


class Cost(NamedTuple):
    """Size of a derivation: trainable parameters, FLOPs per sample, and module nodes.

    A NamedTuple (not a dataclass) because the sampler adds millions of them; ``+``/``-`` are element-wise.
    """

    params: int = 0
    flops: int = 0
    nodes: int = 0

    def __add__(self, other: Cost) -> Cost:  # type: ignore[override]
        return Cost(self[0] + other[0], self[1] + other[1], self[2] + other[2])

    def __sub__(self, other: Cost) -> Cost:
        return Cost(self[0] - other[0], self[1] - other[1], self[2] - other[2])

    def times(self, k: int) -> Cost:
        return Cost(self[0] * k, self[1] * k, self[2] * k)

    def divided(self, k: int) -> Cost:
        return Cost(self[0] // k, self[1] // k, self[2] // k)

    def fits(self, budget: Cost) -> bool:
        return self[0] <= budget[0] and self[1] <= budget[1] and self[2] <= budget[2]

    def min(self, other: Cost) -> Cost:
        """The cheaper of two achievable costs (by params, then FLOPs, then nodes).

        Not a component-wise minimum: that could mix two paths into a cost no single derivation achieves.
        """
        return self if tuple(self) <= tuple(other) else other


@dataclass(frozen=True)
class DNode:
    """One node of a derivation tree (see module docstring)."""

    symbol: str
    alt: Alternative
    in_type: TensorType
    out_type: TensorType
    cost: Cost
    children: tuple[DNode, ...] = ()
    context: Any = field(default=None, compare=False)  # e.g. the grid an im2col saved for its col2im

    def to_sexpr(self) -> str:
        if not self.children:
            return self.alt.label()
        return "(" + " ".join([self.alt.label()] + [c.to_sexpr() for c in self.children]) + ")"

    def walk(self, path: tuple[int, ...] = ()) -> Iterator[tuple[tuple[int, ...], DNode]]:
        """Pre-order ``(path, node)`` pairs; a path is the child indices from the root."""
        yield path, self
        for i, child in enumerate(self.children):
            yield from child.walk(path + (i,))

    def at(self, path: tuple[int, ...]) -> DNode:
        node = self
        for i in path:
            node = node.children[i]
        return node

    def depth(self) -> int:
        """Nesting depth in combinators (a single leaf has depth 0)."""
        return 0 if not self.children else 1 + max(c.depth() for c in self.children)


@dataclass(frozen=True)
class Derivation:
    """A complete derivation of a grammar's start symbol for one input type."""

    space: str
    root: DNode

    def __str__(self) -> str:
        return self.root.to_sexpr()

    @property
    def input_type(self) -> TensorType:
        return self.root.in_type

    @property
    def output_type(self) -> TensorType:
        return self.root.out_type

    @property
    def cost(self) -> Cost:
        return self.root.cost

    @property
    def depth(self) -> int:
        return self.root.depth()

    @property
    def size(self) -> int:
        return sum(1 for _ in self.root.walk())


def replace_at(root: DNode, path: tuple[int, ...], new: DNode) -> DNode:
    """A copy of ``root`` with the subtree at ``path`` replaced by ``new`` (costs of ancestors updated)."""
    if not path:
        return new
    i = path[0]
    child = replace_at(root.children[i], path[1:], new)
    delta = child.cost - root.children[i].cost
    multiplier = _copies_of_child(root)
    children = root.children[:i] + (child,) + root.children[i + 1:]
    return DNode(root.symbol, root.alt, root.in_type, root.out_type, root.cost + delta.times(multiplier), children,
                 root.context)


def _copies_of_child(node: DNode) -> int:
    """How many times a child's cost counts in its parent: ``k`` for a shared branching child, else 1."""
    return int(node.context) if isinstance(node.context, int) else 1
