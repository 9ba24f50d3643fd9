"""Size control for sampling: the depth, parameter, FLOP, node and tensor-size limits of a space."""

from __future__ import annotations

from dataclasses import dataclass

from search_spaces.derivation import Cost
from search_spaces.exceptions import LimitsError

MAX_DEPTH = 200
"""The deepest combinator nesting a space may allow (and a derivation string may have): deeper ones would exhaust
Python's recursion while they are sampled, parsed or built."""


@dataclass(frozen=True)
class Limits:
    """Size control for sampling (all checked statically on symbolic types).

    Attributes:
        max_depth: maximum nesting of combinators.
        max_nodes: maximum module nodes (combinators and leaves; a shared branch counts once per copy).
        max_params: maximum trainable parameters of the body (the classifier head comes on top).
        max_flops: maximum FLOPs per sample of the body.
        max_elements: maximum elements of any intermediate tensor, per sample (bounds activation memory).
    """

    max_depth: int = 12
    max_nodes: int = 40
    max_params: int = 4_000_000
    max_flops: int = 1_000_000_000
    max_elements: int = 1 << 19

    def __post_init__(self) -> None:
        for name in ("max_depth", "max_nodes", "max_params", "max_flops", "max_elements"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise LimitsError(f"limit {name} must be an integer, got {value!r}")
            if value < 0:
                raise LimitsError(f"limit {name} must not be negative, got {value}")
        if self.max_depth > MAX_DEPTH:
            raise LimitsError(f"limit max_depth must be at most {MAX_DEPTH}, got {self.max_depth}")

    def budget(self) -> Cost:
        """The limits as a cost budget (params, FLOPs, module nodes)."""
        return Cost(self.max_params, self.max_flops, self.max_nodes)
