"""The fixed set of primitive operations of the architecture graph IR.

Every node of an architecture graph (:class:`nas.ir.graph.ArchGraph`) is one of these ops, and the terminals of
:mod:`search_spaces` emit them. Each op states, in pure Python (no torch), its shape rule, its trainable-parameter
count and its FLOPs, so that a derivation can be sized without building it; the catalogue lives here, in the
bottom layer, so that the sampler needs nothing from :mod:`nas` (:mod:`nas.ir.ops` re-exports it). The torch
compiler (:mod:`nas.compile.torch`) and the ONNX emitter (:mod:`nas.export.onnx`) implement the same ops, and tests
check both against these formulas.

Shapes never include the batch dimension: ``(C, H, W)`` for an image, ``(S, D)`` for tokens, ``(C, L)`` for a 1-D
signal. A tensor at run time has shape ``(B, *shape)``.

FLOPs follow :class:`torch.utils.flop_counter.FlopCounterMode`'s convention, so they can be checked against it:
only matrix products and convolutions count, each multiply-accumulate as 2 FLOPs, bias additions,
normalisations, pooling and element-wise ops as 0. Values are per sample (batch size 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from search_spaces.exceptions import SearchSpaceError

__all__ = ["FREE_OPS", "OPS", "OpSpec", "Shape", "ShapeError", "im2col_grid", "infer_shapes", "op_cost", "op_spec",
           "window_out_len"]

Shape = tuple[int, ...]


class ShapeError(SearchSpaceError, ValueError):
    """An op was applied to input shapes it does not accept."""


def _prod(values: Sequence[int]) -> int:
    return math.prod(values) if values else 1


@dataclass(frozen=True)
class OpSpec:
    """How one primitive op types, sizes and costs.

    Attributes:
        name: the op's name in graphs, derivations and ONNX metadata.
        arity: number of inputs (``None`` = variadic, at least 2).
        infer: ``(attrs, in_shapes) -> out_shapes``; raises :class:`ShapeError` when inputs don't fit.
        params: ``(attrs, in_shapes) -> int``, trainable parameters as torch counts them.
        flops: ``(attrs, in_shapes, out_shapes) -> int``.
        doc: one line on what the op computes.
    """

    name: str
    arity: int | None
    infer: Callable[[Mapping[str, Any], Sequence[Shape]], list[Shape]]
    params: Callable[[Mapping[str, Any], Sequence[Shape]], int]
    flops: Callable[[Mapping[str, Any], Sequence[Shape], Sequence[Shape]], int]
    doc: str


def _zero_params(attrs: Mapping[str, Any], ins: Sequence[Shape]) -> int:
    return 0


def _zero_flops(attrs: Mapping[str, Any], ins: Sequence[Shape], outs: Sequence[Shape]) -> int:
    return 0


def _same(attrs: Mapping[str, Any], ins: Sequence[Shape]) -> list[Shape]:
    return [tuple(ins[0])]


# --- shape rules -------------------------------------------------------------------------------------------------


def _linear_infer(attrs: Mapping[str, Any], ins: Sequence[Shape]) -> list[Shape]:
    (x,) = ins
    if x[-1] != attrs["in_features"]:
        raise ShapeError(f"linear expects last dim {attrs['in_features']}, got shape {x}")
    return [tuple(x[:-1]) + (int(attrs["out_features"]),)]


def _conv1d_out_len(length: int, attrs: Mapping[str, Any]) -> int:
    return length + attrs["pad_left"] + attrs["pad_right"] - attrs["kernel"] + 1


def _conv1d_infer(attrs: Mapping[str, Any], ins: Sequence[Shape]) -> list[Shape]:
    (x,) = ins
    if len(x) != 2 or x[0] != attrs["in_channels"]:
        raise ShapeError(f"conv1d expects (C={attrs['in_channels']}, L), got {x}")
    out_len = _conv1d_out_len(x[1], attrs)
    if out_len < 1:
        raise ShapeError(f"conv1d kernel {attrs['kernel']} longer than padded input {x}")
    return [(int(attrs["out_channels"]), out_len)]


def _batchnorm_infer(attrs: Mapping[str, Any], ins: Sequence[Shape]) -> list[Shape]:
    (x,) = ins
    if len(x) not in (2, 3) or x[0] != attrs["num_features"]:
        raise ShapeError(f"batchnorm expects (C={attrs['num_features']}, ...) of rank 2 or 3, got {x}")
    return [tuple(x)]


def _layernorm_infer(attrs: Mapping[str, Any], ins: Sequence[Shape]) -> list[Shape]:
    (x,) = ins
    if x[-1] != attrs["dim"]:
        raise ShapeError(f"layernorm expects last dim {attrs['dim']}, got {x}")
    return [tuple(x)]


def _pos_enc_infer(attrs: Mapping[str, Any], ins: Sequence[Shape]) -> list[Shape]:
    (x,) = ins
    if tuple(attrs["shape"]) != tuple(x):
        raise ShapeError(f"pos_enc of shape {tuple(attrs['shape'])} applied to {x}")
    return [tuple(x)]


def _permute_infer(attrs: Mapping[str, Any], ins: Sequence[Shape]) -> list[Shape]:
    (x,) = ins
    perm = tuple(attrs["perm"])
    if sorted(perm) != list(range(len(x))):
        raise ShapeError(f"permutation {perm} does not fit rank-{len(x)} shape {x}")
    return [tuple(x[p] for p in perm)]


def im2col_grid(shape: Shape, kernel: int, stride: int, padding: int) -> tuple[int, int]:
    """Output grid (Ho, Wo) of an unfold with a square kernel: ``floor((H + 2p - k) / s) + 1``."""
    _, h, w = shape
    return (h + 2 * padding - kernel) // stride + 1, (w + 2 * padding - kernel) // stride + 1


def _im2col_infer(attrs: Mapping[str, Any], ins: Sequence[Shape]) -> list[Shape]:
    (x,) = ins
    if len(x) != 3:
        raise ShapeError(f"im2col expects an image (C, H, W), got {x}")
    k, s, p = attrs["kernel"], attrs["stride"], attrs["padding"]
    if x[1] + 2 * p < k or x[2] + 2 * p < k:
        raise ShapeError(f"im2col kernel {k} larger than padded image {x}")
    ho, wo = im2col_grid(x, k, s, p)
    return [(ho * wo, x[0] * k * k)]


def _col2im_infer(attrs: Mapping[str, Any], ins: Sequence[Shape]) -> list[Shape]:
    (x,) = ins
    h, w = attrs["height"], attrs["width"]
    if len(x) != 2 or (x[0] * x[1]) % (h * w) != 0:
        raise ShapeError(f"col2im to a {h}x{w} grid needs tokens (S, D) with S*D divisible by {h * w}, got {x}")
    return [((x[0] * x[1]) // (h * w), h, w)]


def _split_infer(attrs: Mapping[str, Any], ins: Sequence[Shape]) -> list[Shape]:
    (x,) = ins
    dim, k = attrs["dim"], attrs["k"]
    if not 0 <= dim < len(x) or x[dim] % k != 0:
        raise ShapeError(f"cannot split dim {dim} of {x} into {k} equal groups")
    part = list(x)
    part[dim] = x[dim] // k
    return [tuple(part)] * k


def _add_infer(attrs: Mapping[str, Any], ins: Sequence[Shape]) -> list[Shape]:
    if len(ins) < 2 or any(tuple(s) != tuple(ins[0]) for s in ins):
        raise ShapeError(f"add needs >= 2 equal shapes, got {list(ins)}")
    return [tuple(ins[0])]


def _concat_infer(attrs: Mapping[str, Any], ins: Sequence[Shape]) -> list[Shape]:
    dim = attrs["dim"]
    first = ins[0]
    if len(ins) < 2 or not 0 <= dim < len(first):
        raise ShapeError(f"concat along dim {dim} of {list(ins)}")
    for s in ins:
        if len(s) != len(first) or any(a != b for i, (a, b) in enumerate(zip(s, first)) if i != dim):
            raise ShapeError(f"concat along dim {dim} needs equal other dims, got {list(ins)}")
    out = list(first)
    out[dim] = sum(s[dim] for s in ins)
    return [tuple(out)]


def _matmul_infer(attrs: Mapping[str, Any], ins: Sequence[Shape]) -> list[Shape]:
    a, b = ins
    if len(a) != len(b) or len(a) < 2 or a[:-2] != b[:-2] or a[-1] != b[-2]:
        raise ShapeError(f"matmul needs (..., n, m) @ (..., m, p) with equal leading dims, got {a} @ {b}")
    return [tuple(a[:-1]) + (b[-1],)]


def _pool_infer(attrs: Mapping[str, Any], ins: Sequence[Shape]) -> list[Shape]:
    (x,) = ins
    axes = tuple(attrs["axes"])
    if not axes or any(not 0 <= a < len(x) for a in axes):
        raise ShapeError(f"cannot average axes {axes} of {x}")
    return [tuple(d for i, d in enumerate(x) if i not in axes)]


def window_out_len(length: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution or pooling window (no dilation, floor mode): ``(L + 2p - k) // s + 1``."""
    return (length + 2 * padding - kernel) // stride + 1


def _check_window(op: str, kernel: int, stride: int, padding: int) -> None:
    if kernel < 1 or stride < 1 or padding < 0:
        raise ShapeError(f"{op} needs kernel >= 1, stride >= 1, padding >= 0, got k={kernel} s={stride} p={padding}")


def _conv2d_infer(attrs: Mapping[str, Any], ins: Sequence[Shape]) -> list[Shape]:
    (x,) = ins
    c_in, c_out, groups = attrs["in_channels"], attrs["out_channels"], attrs["groups"]
    k, s, p = attrs["kernel"], attrs["stride"], attrs["padding"]
    if len(x) != 3 or x[0] != c_in:
        raise ShapeError(f"conv2d expects an image (C={c_in}, H, W), got {x}")
    if groups < 1 or c_in % groups or c_out % groups:
        raise ShapeError(f"conv2d channels {c_in} -> {c_out} not divisible by groups={groups}")
    _check_window("conv2d", k, s, p)
    ho, wo = window_out_len(x[1], k, s, p), window_out_len(x[2], k, s, p)
    if ho < 1 or wo < 1:
        raise ShapeError(f"conv2d kernel {k} larger than padded image {x} (padding {p})")
    return [(int(c_out), ho, wo)]


def _window_pool_infer(attrs: Mapping[str, Any], ins: Sequence[Shape], op: str) -> list[Shape]:
    (x,) = ins
    k, s, p = attrs["kernel"], attrs["stride"], attrs["padding"]
    if len(x) not in (2, 3):
        raise ShapeError(f"{op} expects (C, L) or (C, H, W), got {x}")
    _check_window(op, k, s, p)
    if 2 * p > k:  # torch's pooling rejects padding above half the kernel
        raise ShapeError(f"{op} padding {p} is more than half the kernel {k}")
    spatial = tuple(window_out_len(d, k, s, p) for d in x[1:])
    if min(spatial) < 1:
        raise ShapeError(f"{op} kernel {k} larger than padded input {x} (padding {p})")
    return [(x[0], *spatial)]


def _avg_pool_infer(attrs: Mapping[str, Any], ins: Sequence[Shape]) -> list[Shape]:
    return _window_pool_infer(attrs, ins, "avg_pool")


def _max_pool_infer(attrs: Mapping[str, Any], ins: Sequence[Shape]) -> list[Shape]:
    return _window_pool_infer(attrs, ins, "max_pool")


def _instancenorm_infer(attrs: Mapping[str, Any], ins: Sequence[Shape]) -> list[Shape]:
    (x,) = ins
    if len(x) not in (2, 3) or x[0] != attrs["num_features"]:
        raise ShapeError(f"instancenorm expects (C={attrs['num_features']}, ...) of rank 2 or 3, got {x}")
    return [tuple(x)]


def _groupnorm_infer(attrs: Mapping[str, Any], ins: Sequence[Shape]) -> list[Shape]:
    (x,) = ins
    groups, channels = attrs["num_groups"], attrs["num_channels"]
    if len(x) not in (2, 3) or x[0] != channels:
        raise ShapeError(f"groupnorm expects (C={channels}, ...) of rank 2 or 3, got {x}")
    if groups < 1 or channels % groups:
        raise ShapeError(f"groupnorm: {channels} channels not divisible into {groups} groups")
    return [tuple(x)]


# --- parameters and FLOPs ----------------------------------------------------------------------------------------


def _linear_params(attrs: Mapping[str, Any], ins: Sequence[Shape]) -> int:
    return attrs["in_features"] * attrs["out_features"] + attrs["out_features"]


def _linear_flops(attrs: Mapping[str, Any], ins: Sequence[Shape], outs: Sequence[Shape]) -> int:
    return 2 * _prod(ins[0][:-1]) * attrs["in_features"] * attrs["out_features"]


def _conv1d_params(attrs: Mapping[str, Any], ins: Sequence[Shape]) -> int:
    return attrs["in_channels"] * attrs["out_channels"] * attrs["kernel"] + attrs["out_channels"]


def _conv1d_flops(attrs: Mapping[str, Any], ins: Sequence[Shape], outs: Sequence[Shape]) -> int:
    return 2 * _prod(outs[0]) * attrs["in_channels"] * attrs["kernel"]


def _conv2d_params(attrs: Mapping[str, Any], ins: Sequence[Shape]) -> int:
    weight = attrs["out_channels"] * (attrs["in_channels"] // attrs["groups"]) * attrs["kernel"] ** 2
    return weight + (attrs["out_channels"] if attrs["bias"] else 0)


def _conv2d_flops(attrs: Mapping[str, Any], ins: Sequence[Shape], outs: Sequence[Shape]) -> int:
    # FlopCounterMode: 2 * numel(output) * numel(weight[0]); the bias is not counted.
    return 2 * _prod(outs[0]) * (attrs["in_channels"] // attrs["groups"]) * attrs["kernel"] ** 2


def _matmul_flops(attrs: Mapping[str, Any], ins: Sequence[Shape], outs: Sequence[Shape]) -> int:
    a, b = ins
    return 2 * _prod(a) * b[-1]


OPS: dict[str, OpSpec] = {
    spec.name: spec
    for spec in [
        OpSpec("linear", 1, _linear_infer, _linear_params, _linear_flops,
               "y = x W^T + b over the last dim (attrs in_features, out_features)"),
        OpSpec("conv1d", 1, _conv1d_infer, _conv1d_params, _conv1d_flops,
               "1-D convolution over (C, L), zero padding pad_left/pad_right (attrs in/out_channels, kernel)"),
        OpSpec("batchnorm", 1, _batchnorm_infer, lambda a, i: 2 * a["num_features"], _zero_flops,
               "BatchNorm over dim 0 of (C, H, W) or (C, L), affine, eps 1e-5 (attr num_features)"),
        OpSpec("layernorm", 1, _layernorm_infer, lambda a, i: 2 * a["dim"], _zero_flops,
               "LayerNorm over the last dim, affine, eps 1e-5 (attr dim)"),
        OpSpec("leaky_relu", 1, _same, _zero_params, _zero_flops, "LeakyReLU, negative slope 0.01"),
        OpSpec("softmax", 1, _same, _zero_params, _zero_flops, "softmax over the last dim"),
        OpSpec("pos_enc", 1, _pos_enc_infer, lambda a, i: _prod(a["shape"]), _zero_flops,
               "x + P with a learnable P of the input's shape (attr shape)"),
        OpSpec("permute", 1, _permute_infer, _zero_params, _zero_flops,
               "permute the non-batch dims (attr perm, 0-based over non-batch dims)"),
        OpSpec("im2col", 1, _im2col_infer, _zero_params, _zero_flops,
               "unfold (C, H, W) into tokens (Ho*Wo, C*k*k), channel-major patches (attrs kernel, stride, padding)"),
        OpSpec("col2im", 1, _col2im_infer, _zero_params, _zero_flops,
               "tokens (S, D) -> transpose -> reshape to (S*D/(h*w), h, w) (attrs height, width)"),
        OpSpec("split", 1, _split_infer, _zero_params, _zero_flops,
               "split a dim into k equal groups, k outputs (attrs dim (non-batch, 0-based), k)"),
        OpSpec("add", None, _add_infer, _zero_params, _zero_flops, "sum of k equal-shaped inputs"),
        OpSpec("concat", None, _concat_infer, _zero_params, _zero_flops,
               "concatenate along a non-batch dim (attr dim)"),
        OpSpec("matmul", 2, _matmul_infer, _zero_params, _matmul_flops,
               "(a @ b) * scale over the last two dims (attr scale: float, 1.0 for a plain dot product)"),
        OpSpec("global_avg_pool", 1, _pool_infer, _zero_params, _zero_flops,
               "mean over the given non-batch axes (attr axes, 0-based over non-batch dims)"),
        OpSpec("conv2d", 1, _conv2d_infer, _conv2d_params, _conv2d_flops,
               "2-D convolution over (C, H, W), square kernel, zero padding on all sides "
               "(attrs in_channels, out_channels, kernel, stride, padding, groups, bias: bool)"),
        OpSpec("relu", 1, _same, _zero_params, _zero_flops, "ReLU"),
        OpSpec("hardswish", 1, _same, _zero_params, _zero_flops, "Hardswish: x * relu6(x + 3) / 6"),
        OpSpec("mish", 1, _same, _zero_params, _zero_flops, "Mish: x * tanh(softplus(x))"),
        OpSpec("gelu", 1, _same, _zero_params, _zero_flops, "GELU, exact (erf) form"),
        OpSpec("sigmoid", 1, _same, _zero_params, _zero_flops, "logistic sigmoid"),
        OpSpec("avg_pool", 1, _avg_pool_infer, _zero_params, _zero_flops,
               "average pooling, 1-D over (C, L) or 2-D (square window) over (C, H, W), floor mode, zero padding "
               "(attrs kernel, stride, padding <= kernel // 2, count_include_pad: bool)"),
        OpSpec("max_pool", 1, _max_pool_infer, _zero_params, _zero_flops,
               "max pooling, 1-D over (C, L) or 2-D (square window) over (C, H, W), floor mode, -inf padding "
               "(attrs kernel, stride, padding <= kernel // 2)"),
        OpSpec("zero", 1, _same, _zero_params, _zero_flops, "x * 0: zeros of the input's shape (NAS-Bench-201 'none')"),
        OpSpec("instancenorm", 1, _instancenorm_infer, lambda a, i: 2 * a["num_features"] if a["affine"] else 0,
               _zero_flops, "InstanceNorm over the spatial dims of (C, H, W) or (C, L), eps 1e-5, no running "
               "stats (attrs num_features, affine: bool)"),
        OpSpec("groupnorm", 1, _groupnorm_infer, lambda a, i: 2 * a["num_channels"], _zero_flops,
               "GroupNorm of (C, H, W) or (C, L), per-channel affine, eps 1e-5 (attrs num_groups, num_channels)"),
    ]
}


FREE_OPS: frozenset[str] = frozenset(name for name, spec in OPS.items()
                                     if spec.params is _zero_params and spec.flops is _zero_flops)
"""Ops that never have parameters or FLOPs (routing, activations, pooling): costing them can be skipped."""


def op_spec(name: str) -> OpSpec:
    """The spec of op ``name``; raises KeyError naming the known ops."""
    try:
        return OPS[name]
    except KeyError:
        raise KeyError(f"unknown IR op {name!r}; known: {', '.join(sorted(OPS))}") from None


def infer_shapes(op: str, attrs: Mapping[str, Any], in_shapes: Sequence[Shape]) -> list[Shape]:
    """Output shapes of ``op`` on ``in_shapes`` (raises :class:`ShapeError`)."""
    spec = op_spec(op)
    if spec.arity is not None and len(in_shapes) != spec.arity:
        raise ShapeError(f"{op} takes {spec.arity} input(s), got {len(in_shapes)}")
    return spec.infer(attrs, [tuple(s) for s in in_shapes])


def op_cost(op: str, attrs: Mapping[str, Any], in_shapes: Sequence[Shape]) -> tuple[int, int]:
    """``(params, flops)`` of one op application."""
    spec = op_spec(op)
    outs = spec.infer(attrs, in_shapes)
    return spec.params(attrs, in_shapes), spec.flops(attrs, in_shapes, outs)
