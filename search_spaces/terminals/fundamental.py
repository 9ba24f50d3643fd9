"""einspace's fundamental operations (Ericsson et al., NeurIPS 2024) as typed terminals.

Semantics follow the reference implementation: ``linear`` acts on the last dim whatever the mode; ``norm`` is
BatchNorm for channels-first modes (image, signal) and LayerNorm for tokens; ``softmax`` is over the last dim;
the positional encoding is a learnable tensor of the input's shape; ``dot_product`` is ``a @ b`` over the last
two dims (``scaled_dot_product`` multiplies by ``1/sqrt(a.shape[-1])``); ``im2col`` unfolds an image into tokens
``(Ho*Wo, C*k*k)`` and the matching ``col2im`` transposes and reshapes tokens back onto that ``Ho x Wo`` grid.
Dimension parameters of ``split`` and ``concat`` count the batch dim as 0, as torch does (1 = C or S).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from search_spaces.ops import im2col_grid
from search_spaces.terminals.base import Fork, IrChain, Leaf, Merge, Param, Params, PostRoute, PreRoute
from search_spaces.types import TensorType

# --- computation ---------------------------------------------------------------------------------------------------


class Identity(Leaf):
    name = "identity"

    def out_type(self, p: Params, t: TensorType) -> TensorType:
        return t

    def ir_chain(self, p: Params, t: TensorType) -> IrChain:
        return []


class Linear(Leaf):
    """``y = x W^T + b`` over the last dim, to ``width`` features."""

    name = "linear"
    params = (Param("width", int, doc="output features", minimum=1),)

    def out_type(self, p: Params, t: TensorType) -> TensorType:
        return t.with_shape(t.shape[:-1] + (p["width"],))

    def ir_chain(self, p: Params, t: TensorType) -> IrChain:
        return [("linear", {"in_features": t.shape[-1], "out_features": p["width"]})]


class Conv1d(Leaf):
    """1-D convolution of a channels-first signal ``(C, L)``, length kept (einspace pads kernel 8 as 3 + 4)."""

    name = "conv1d"
    params = (Param("kernel", int, (1, 3, 5, 8)), Param("width", int, doc="output channels", minimum=1))

    def out_type(self, p: Params, t: TensorType) -> TensorType | None:
        if t.mode != "signal":
            return None
        return t.with_shape((p["width"], t.shape[1]))

    def ir_chain(self, p: Params, t: TensorType) -> IrChain:
        k = p["kernel"]
        left = (k - 1) // 2
        return [("conv1d", {"in_channels": t.shape[0], "out_channels": p["width"], "kernel": k,
                            "pad_left": left, "pad_right": k - 1 - left})]


class Norm(Leaf):
    """BatchNorm over channels (image, signal) or LayerNorm over features (token)."""

    name = "norm"

    def out_type(self, p: Params, t: TensorType) -> TensorType:
        return t

    def ir_chain(self, p: Params, t: TensorType) -> IrChain:
        if t.mode == "token":
            return [("layernorm", {"dim": t.shape[-1]})]
        return [("batchnorm", {"num_features": t.shape[0]})]


class LeakyRelu(Leaf):
    name = "leaky_relu"

    def out_type(self, p: Params, t: TensorType) -> TensorType:
        return t

    def ir_chain(self, p: Params, t: TensorType) -> IrChain:
        return [("leaky_relu", {})]


class Softmax(Leaf):
    name = "softmax"

    def out_type(self, p: Params, t: TensorType) -> TensorType:
        return t

    def ir_chain(self, p: Params, t: TensorType) -> IrChain:
        return [("softmax", {})]


class PosEnc(Leaf):
    """Learnable positional encoding: ``x + P``, ``P`` of the input's shape."""

    name = "pos_enc"

    def out_type(self, p: Params, t: TensorType) -> TensorType:
        return t

    def ir_chain(self, p: Params, t: TensorType) -> IrChain:
        return [("pos_enc", {"shape": t.shape})]


# --- routing -------------------------------------------------------------------------------------------------------


def _permuted(order: tuple[int, ...], t: TensorType) -> TensorType | None:
    if sorted(order) != list(range(len(t.shape))) or order == tuple(range(len(t.shape))):
        return None
    mode = t.mode
    if len(t.shape) == 2:  # a transpose moves features between first and last: signal <-> token
        mode = "token" if t.mode == "signal" else "signal"
    return TensorType(mode, tuple(t.shape[i] for i in order))


class RouteIdentity(PreRoute):
    name = "identity"

    def route(self, p: Params, t: TensorType) -> tuple[TensorType, Any]:
        return t, None

    def ir_chain(self, p: Params, t: TensorType) -> IrChain:
        return []


class PostIdentity(PostRoute):
    name = "identity"

    def route_back(self, p: Params, t: TensorType, pre_context: Any) -> TensorType:
        return t

    def ir_chain(self, p: Params, t: TensorType, pre_context: Any) -> IrChain:
        return []


class Permute(PreRoute):
    """Permute the non-batch dims; ``order`` is 0-based over them, e.g. ``(1, 0)`` transposes tokens."""

    name = "permute"
    params = (Param("order", tuple),)

    def route(self, p: Params, t: TensorType) -> tuple[TensorType, Any] | None:
        out = _permuted(p["order"], t)
        return None if out is None else (out, None)

    def ir_chain(self, p: Params, t: TensorType) -> IrChain:
        return [("permute", {"perm": p["order"]})]


class PostPermute(PostRoute):
    name = "permute"
    params = (Param("order", tuple),)

    def route_back(self, p: Params, t: TensorType, pre_context: Any) -> TensorType | None:
        return _permuted(p["order"], t)

    def ir_chain(self, p: Params, t: TensorType, pre_context: Any) -> IrChain:
        return [("permute", {"perm": p["order"]})]


class Im2Col(PreRoute):
    """Unfold an image into patch tokens ``(Ho*Wo, C*k*k)``; saves the grid ``(Ho, Wo)`` for col2im."""

    name = "im2col"
    params = (Param("kernel", int, minimum=1), Param("stride", int, minimum=1), Param("padding", int, minimum=0))

    def route(self, p: Params, t: TensorType) -> tuple[TensorType, Any] | None:
        k, s, pad = p["kernel"], p["stride"], p["padding"]
        if t.mode != "image" or t.shape[1] + 2 * pad < k or t.shape[2] + 2 * pad < k:
            return None
        ho, wo = im2col_grid(t.shape, k, s, pad)
        return TensorType("token", (ho * wo, t.shape[0] * k * k)), (ho, wo)

    def ir_chain(self, p: Params, t: TensorType) -> IrChain:
        return [("im2col", {"kernel": p["kernel"], "stride": p["stride"], "padding": p["padding"]})]


class Col2Im(PostRoute):
    """Tokens back onto the grid saved by the matching im2col: transpose, reshape to ``(S*D/(Ho*Wo), Ho, Wo)``."""

    name = "col2im"

    def route_back(self, p: Params, t: TensorType, pre_context: Any) -> TensorType | None:
        if pre_context is None or t.mode != "token":
            return None
        ho, wo = pre_context
        if t.numel % (ho * wo):
            return None
        return TensorType("image", (t.numel // (ho * wo), ho, wo))

    def ir_chain(self, p: Params, t: TensorType, pre_context: Any) -> IrChain:
        return [("col2im", {"height": pre_context[0], "width": pre_context[1]})]


# --- branching and aggregation -------------------------------------------------------------------------------------


class Clone(Fork):
    name = "clone"
    params = (Param("k", int, (2, 4, 8)),)

    def branches(self, p: Params, t: TensorType) -> list[TensorType]:
        return [t] * p["k"]

    def shares_child(self, p: Params) -> bool:
        return p["k"] > 2


class Split(Fork):
    """Split dim ``dim`` (torch numbering, 1 = first non-batch dim) into ``k`` equal groups."""

    name = "split"
    params = (Param("k", int, (2, 4, 8)), Param("dim", int, (1, 2, 3)))

    def branches(self, p: Params, t: TensorType) -> list[TensorType] | None:
        axis, k = p["dim"] - 1, p["k"]
        if axis >= len(t.shape) or t.shape[axis] % k:
            return None
        shape = list(t.shape)
        shape[axis] //= k
        return [t.with_shape(tuple(shape))] * k

    def shares_child(self, p: Params) -> bool:
        return p["k"] > 2


class Add(Merge):
    name = "add"

    def merge(self, p: Params, types: Sequence[TensorType]) -> TensorType | None:
        return types[0] if all(t == types[0] for t in types) else None

    def ir_op(self, p: Params, types: Sequence[TensorType]) -> tuple[str, dict[str, Any]]:
        return "add", {}

    def partners(self, p: Params, first: TensorType, target: TensorType) -> list[TensorType]:
        return [first] if first == target else []

    def operand_key(self, p: Params, t: TensorType, position: int) -> Any:
        return t

    def identical_operand(self, p: Params, target: TensorType, k: int) -> TensorType | None:
        return target

    def first_key(self, p: Params, t: TensorType) -> Any:
        return t

    def target_key(self, p: Params, target: TensorType) -> Any:
        return target


class Concat(Merge):
    """Concatenate along ``dim`` (torch numbering, 1 = first non-batch dim)."""

    name = "concat"
    params = (Param("dim", int, (1, 2, 3)),)

    def merge(self, p: Params, types: Sequence[TensorType]) -> TensorType | None:
        axis, first = p["dim"] - 1, types[0]
        rank = len(first.shape)
        if axis >= rank:
            return None
        total = 0
        for t in types:
            if t.mode != first.mode or len(t.shape) != rank:
                return None
            for i in range(rank):
                if i != axis and t.shape[i] != first.shape[i]:
                    return None
            total += t.shape[axis]
        shape = list(first.shape)
        shape[axis] = total
        return TensorType(first.mode, tuple(shape))

    def ir_op(self, p: Params, types: Sequence[TensorType]) -> tuple[str, dict[str, Any]]:
        return "concat", {"dim": p["dim"] - 1}

    def identical_operand(self, p: Params, target: TensorType, k: int) -> TensorType | None:
        axis = p["dim"] - 1
        if axis >= len(target.shape) or target.shape[axis] % k:
            return None
        shape = list(target.shape)
        shape[axis] //= k
        return target.with_shape(tuple(shape))

    def operand_key(self, p: Params, t: TensorType, position: int) -> Any:
        axis = p["dim"] - 1
        if axis >= len(t.shape):
            return None
        return t.mode, t.shape[:axis] + (-1,) + t.shape[axis + 1:]

    def first_key(self, p: Params, t: TensorType) -> Any:
        return self.operand_key(p, t, 0)

    def target_key(self, p: Params, target: TensorType) -> Any:
        return self.operand_key(p, target, 0)

    def partners(self, p: Params, first: TensorType, target: TensorType) -> list[TensorType]:
        axis = p["dim"] - 1
        if first.mode != target.mode or axis >= len(first.shape) or len(first.shape) != len(target.shape):
            return []
        rest = target.shape[axis] - first.shape[axis]
        if rest < 1 or any(a != b for i, (a, b) in enumerate(zip(first.shape, target.shape)) if i != axis):
            return []
        shape = list(first.shape)
        shape[axis] = rest
        return [first.with_shape(tuple(shape))]


class DotProduct(Merge):
    """``a @ b`` over the last two dims of two branches: ``(..., n, m) @ (..., m, p) -> (..., n, p)``."""

    name = "dot_product"
    scaled = False

    def merge(self, p: Params, types: Sequence[TensorType]) -> TensorType | None:
        if len(types) != 2:
            return None
        a, b = types  # b may be in another mode of the same rank (a transposed token is a channels-first signal)
        if len(a.shape) != len(b.shape) or a.shape[:-2] != b.shape[:-2] or a.shape[-1] != b.shape[-2]:
            return None
        return a.with_shape(a.shape[:-1] + (b.shape[-1],))

    def ir_op(self, p: Params, types: Sequence[TensorType]) -> tuple[str, dict[str, Any]]:
        scale = 1.0 / math.sqrt(types[0].shape[-1]) if self.scaled else 1.0
        return "matmul", {"scale": scale}

    def identical_operand(self, p: Params, target: TensorType, k: int) -> TensorType | None:
        # t @ t == target only for a square t equal in shape to the target
        return target if k == 2 and target.shape[-1] == target.shape[-2] else None

    def operand_key(self, p: Params, t: TensorType, position: int) -> Any:
        inner = t.shape[-1] if position == 0 else t.shape[-2]
        return len(t.shape), t.shape[:-2], inner

    def first_key(self, p: Params, t: TensorType) -> Any:
        return t.mode, t.shape[:-1]

    def target_key(self, p: Params, target: TensorType) -> Any:
        return target.mode, target.shape[:-1]

    def partners(self, p: Params, first: TensorType, target: TensorType) -> list[TensorType]:
        if first.mode != target.mode or first.shape[:-1] != target.shape[:-1]:
            return []
        shape = first.shape[:-2] + (first.shape[-1], target.shape[-1])
        modes = ("image",) if len(shape) == 3 else ("token", "signal")
        return [TensorType(m, shape) for m in modes]


class ScaledDotProduct(DotProduct):
    """``(a @ b) / sqrt(a.shape[-1])``, attention's scaling."""

    name = "scaled_dot_product"
    scaled = True


FUNDAMENTAL_TERMINALS = (Identity(), Linear(), Conv1d(), Norm(), LeakyRelu(), Softmax(), PosEnc(),
                         RouteIdentity(), PostIdentity(), Permute(), PostPermute(), Im2Col(), Col2Im(),
                         Clone(), Split(), Add(), Concat(), DotProduct(), ScaledDotProduct())
