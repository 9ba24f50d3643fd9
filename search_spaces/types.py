"""Symbolic tensor types carried by every derivation node.

A type is a feature *mode* plus a shape without the batch dim. Modes say where the features live:

- ``image``: ``(C, H, W)``, channels first (2-D einspace's image mode);
- ``signal``: ``(C, L)``, channels first (the 1-D variant's input mode);
- ``token``: ``(S, D)``, features last (einspace's token / "col" mode, reached by im2col or a transpose).

Types are computed statically by each terminal's shape rule; no tensor is ever run to find them.
"""

from __future__ import annotations

import math
from typing import NamedTuple

MODES = ("image", "signal", "token")
_RANKS = {"image": 3, "signal": 2, "token": 2}


class _TensorTypeFields(NamedTuple):
    mode: str
    shape: tuple[int, ...]


class TensorType(_TensorTypeFields):
    """A feature mode and a shape (batch dim excluded). Immutable and hashable.

    A validated NamedTuple rather than a dataclass: the sampler hashes millions of types, and a tuple's hash is
    computed in C.
    """

    __slots__ = ()

    def __new__(cls, mode: str, shape: tuple[int, ...]) -> TensorType:
        rank = _RANKS.get(mode)
        if rank is None:
            raise ValueError(f"unknown feature mode {mode!r}; known: {', '.join(MODES)}")
        if len(shape) != rank:
            raise ValueError(f"{mode} tensors have rank {rank}, got shape {shape}")
        if min(shape) < 1:
            raise ValueError(f"dimensions must be positive, got {shape}")
        return super().__new__(cls, mode, tuple(shape))

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def feature_axis(self) -> int:
        """The axis holding features: 0 for channels-first modes, the last for tokens."""
        return len(self.shape) - 1 if self.mode == "token" else 0

    def with_shape(self, shape: tuple[int, ...], mode: str | None = None) -> TensorType:
        return TensorType(mode or self.mode, tuple(shape))

    def __repr__(self) -> str:
        return f"TensorType({self.mode!r}, {self.shape!r})"

    def __str__(self) -> str:
        return f"{self.mode}[{'x'.join(map(str, self.shape))}]"


def input_type(shape: tuple[int, ...] | list[int]) -> TensorType:
    """The type of a network input: rank 3 -> image ``(C, H, W)``, rank 2 -> signal ``(C, L)``."""
    shape = tuple(int(d) for d in shape)
    if len(shape) == 3:
        return TensorType("image", shape)
    if len(shape) == 2:
        return TensorType("signal", shape)
    raise ValueError(f"input shape must be C,H,W (image) or C,L (sequence), got {','.join(map(str, shape))}")
