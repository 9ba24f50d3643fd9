"""Blocks for sequence templates: activations and multi-head self-attention over a signal's positions."""

from __future__ import annotations

import math
from typing import Any

from search_spaces.terminals.base import IrChain, Leaf, Param, Params
from search_spaces.types import TensorType

_ACTIVATIONS = ("relu", "gelu", "leaky_relu", "hardswish", "mish", "sigmoid")


class Activation(Leaf):
    """An element-wise activation chosen by name."""

    name = "activation"
    params = (Param("fn", str, _ACTIVATIONS),)

    def out_type(self, p: Params, t: TensorType) -> TensorType:
        return t

    def ir_chain(self, p: Params, t: TensorType) -> IrChain:
        return [(p["fn"], {})]


class Attention(Leaf):
    """Multi-head self-attention (Vaswani et al., 2017) over positions, features kept:
    ``softmax(Q_h K_h^T / sqrt(d_h)) V_h`` per head, heads concatenated, then an output projection.

    Signals ``(C, L)`` are transposed to tokens ``(L, C)`` and back; tokens ``(S, D)`` are used as they are.
    Q, K, V and the output are linear maps ``D -> D`` with bias; ``heads`` must divide ``D``.
    """

    name = "attention"
    params = (Param("heads", int, minimum=1),)

    def out_type(self, p: Params, t: TensorType) -> TensorType | None:
        if t.mode not in ("signal", "token"):
            return None
        features = t.shape[0] if t.mode == "signal" else t.shape[1]
        return t if p["heads"] >= 1 and features % p["heads"] == 0 else None

    def lower(self, p: Params, builder: Any, value: Any, t: TensorType) -> Any:
        signal = t.mode == "signal"
        dim = t.shape[0] if signal else t.shape[1]
        heads, head_dim = p["heads"], dim // p["heads"]
        transpose = [("permute", {"perm": (1, 0)})]
        x = builder.add_chain(transpose, value) if signal else value
        linear = {"in_features": dim, "out_features": dim}
        q, k, v = (builder.add_chain([("linear", linear)], x) for _ in range(3))
        split = {"dim": 1, "k": heads}
        qs, ks, vs = ((builder.add_op("split", split, [z]) if heads > 1 else [z]) for z in (q, k, v))
        outs = []
        for qh, kh, vh in zip(qs, ks, vs):
            (scores,) = builder.add_op("matmul", {"scale": 1.0 / math.sqrt(head_dim)},
                                       [qh, builder.add_chain(transpose, kh)])
            weights = builder.add_chain([("softmax", {})], scores)
            (out,) = builder.add_op("matmul", {"scale": 1.0}, [weights, vh])
            outs.append(out)
        if heads > 1:
            (merged,) = builder.add_op("concat", {"dim": 1}, outs)
        else:
            merged = outs[0]
        y = builder.add_chain([("linear", linear)], merged)
        return builder.add_chain(transpose, y) if signal else y


SEQUENCE_TERMINALS = (Activation(), Attention())
