"""Terminal kinds of the grammar and how each declares its typed parameters.

A terminal is what a grammar production applies: a leaf computation, a routing function, a branching (fork)
or aggregation (merge) function, or a combinator whose arguments are non-terminals. Each terminal states its
shape rule statically; the sampler prunes choices whose rule returns ``None`` before choosing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import NotImplementedType
from typing import Any, ClassVar

from search_spaces.types import TensorType

Params = Mapping[str, Any]
IrChain = list[tuple[str, dict[str, Any]]]


@dataclass(frozen=True)
class Param:
    """A typed parameter of a terminal; ``choices`` restricts the values a grammar may give it.

    A parameter with a ``default`` may be left out in grammar files (it is still printed in derivations).
    """

    name: str
    kind: type
    choices: tuple[Any, ...] | None = None
    doc: str = ""
    default: Any = None
    minimum: int | None = None  # the smallest admissible number (widths, kernels, strides, counts)

    def check(self, value: Any) -> str | None:
        """An error message when ``value`` is not admissible, else None."""
        if self.kind is tuple:
            if not (isinstance(value, tuple) and all(isinstance(v, int) for v in value)):
                return f"parameter {self.name!r} must be a tuple of ints, got {value!r}"
        elif self.kind is float:
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                return f"parameter {self.name!r} must be a number, got {value!r}"
        elif not isinstance(value, self.kind) or isinstance(value, bool):
            return f"parameter {self.name!r} must be {self.kind.__name__}, got {value!r}"
        if self.minimum is not None and not isinstance(value, tuple) and value < self.minimum:
            return f"parameter {self.name!r} must be >= {self.minimum}, got {value!r}"
        if self.choices is not None and value not in self.choices:
            return f"parameter {self.name!r} must be one of {', '.join(map(repr, self.choices))}, got {value!r}"
        return None


class Terminal:
    """Base of all terminals. Subclasses set ``name``, ``category``, ``params`` and ``slots``."""

    name: ClassVar[str]
    category: ClassVar[str]  # module | fork | merge | pre | post
    params: ClassVar[tuple[Param, ...]] = ()
    slots: ClassVar[tuple[str, ...]] = ()  # roles of non-terminal arguments (combinators only)
    variadic_slots: ClassVar[bool] = False  # True: any number >= len(slots) of same-role arguments

    def __repr__(self) -> str:
        return f"<terminal {self.name}>"


class Leaf(Terminal):
    """A computation: one tensor in, one out, lowered to IR ops.

    Simple leaves give a chain of ops (:meth:`ir_chain`); composite leaves (a residual block, an inverted
    bottleneck) override :meth:`lower` and emit a small DAG through the builder instead.
    """

    category = "module"

    def out_type(self, p: Params, t: TensorType) -> TensorType | None:
        raise NotImplementedError

    def ir_chain(self, p: Params, t: TensorType) -> IrChain:
        """IR ops (name, attrs) applied in order; empty for identity."""
        raise NotImplementedError

    def lower(self, p: Params, builder: Any, value: Any, t: TensorType) -> Any:
        """Emit the leaf's ops after ``value`` (builder: ``add_op``, ``add_chain``); returns the output value."""
        return builder.add_chain(self.ir_chain(p, t), value)


class PreRoute(Terminal):
    """Routing before a module. Returns the routed type and a context handed to the matching post-routing."""

    category = "pre"

    def route(self, p: Params, t: TensorType) -> tuple[TensorType, Any] | None:
        raise NotImplementedError

    def ir_chain(self, p: Params, t: TensorType) -> IrChain:
        raise NotImplementedError


class PostRoute(Terminal):
    """Routing after a module; may depend on the context its pre-routing saved (col2im restores a grid)."""

    category = "post"

    def route_back(self, p: Params, t: TensorType, pre_context: Any) -> TensorType | None:
        raise NotImplementedError

    def ir_chain(self, p: Params, t: TensorType, pre_context: Any) -> IrChain:
        raise NotImplementedError


class Fork(Terminal):
    """Branching function: one tensor in, ``k`` equal-typed branches out."""

    category = "fork"

    def branches(self, p: Params, t: TensorType) -> list[TensorType] | None:
        raise NotImplementedError

    def shares_child(self, p: Params) -> bool:
        """True when one sampled child is copied into every branch (einspace's prior for k = 4, 8)."""
        return False


class Merge(Terminal):
    """Aggregation function: ``k`` tensors in, one out."""

    category = "merge"

    def merge(self, p: Params, types: Sequence[TensorType]) -> TensorType | None:
        raise NotImplementedError

    def ir_op(self, p: Params, types: Sequence[TensorType]) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def operand_key(self, p: Params, t: TensorType, position: int) -> Any:
        """A key such that two operands merge iff ``operand_key(a, 0) == operand_key(b, 1)`` (lets the sampler
        index candidates instead of trying every pair), or NotImplemented."""
        return NotImplemented

    def first_key(self, p: Params, t: TensorType) -> Any:
        """With :meth:`target_key`: ``merge([a, b]) == target`` is only possible when
        ``first_key(a) == target_key(target)``; lets the sampler index first operands (NotImplemented: none)."""
        return NotImplemented

    def target_key(self, p: Params, target: TensorType) -> Any:
        return NotImplemented

    def identical_operand(self, p: Params, target: TensorType, k: int) -> TensorType | None | NotImplementedType:
        """The ``t`` with ``merge([t] * k) == target`` (None if none), or NotImplemented to enumerate."""
        return NotImplemented

    def partners(self, p: Params, first: TensorType, target: TensorType) -> list[TensorType] | NotImplementedType:
        """Every second operand ``b`` with ``merge([first, b]) == target``, or NotImplemented when the merge has
        no closed form and candidates must be enumerated."""
        return NotImplemented
