"""Convolutional building blocks for the benchmark and template spaces (NAS-Bench-201, NATS-Bench SSS,
NAS-Bench-Macro, hNB201).

Every block is a leaf computation on an image ``(C, H, W)``; composite blocks (residual, inverted bottleneck) lower
to a small DAG of IR ops. Convolutions have no bias (a BatchNorm follows), as in the benchmarks' code.
"""

from __future__ import annotations

from typing import Any, ClassVar

from search_spaces.terminals.base import IrChain, Leaf, Param, Params
from search_spaces.types import TensorType


def _conv(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, padding: int | None = None,
          bias: bool = False) -> tuple[str, dict[str, Any]]:
    pad = kernel // 2 if padding is None else padding
    return "conv2d", {"in_channels": c_in, "out_channels": c_out, "kernel": kernel, "stride": stride,
                      "padding": pad, "groups": groups, "bias": bias}


def _bn(c: int) -> tuple[str, dict[str, Any]]:
    return "batchnorm", {"num_features": c}


def _spatial(t: TensorType, kernel: int, stride: int, padding: int) -> tuple[int, int] | None:
    h = (t.shape[1] + 2 * padding - kernel) // stride + 1
    w = (t.shape[2] + 2 * padding - kernel) // stride + 1
    return (h, w) if h >= 1 and w >= 1 else None


class _ImageLeaf(Leaf):
    """A leaf that only accepts images and keeps their shape."""

    def out_type(self, p: Params, t: TensorType) -> TensorType | None:
        return t if t.mode == "image" else None


# --- NAS-Bench-201 operations (Dong & Yang, ICLR 2020) ---------------------------------------------------------------


class NoneOp(_ImageLeaf):
    """NAS-Bench-201's ``none``: the edge outputs zeros."""

    name = "none"

    def ir_chain(self, p: Params, t: TensorType) -> IrChain:
        return [("zero", {})]


class SkipConnect(_ImageLeaf):
    """NAS-Bench-201's ``skip_connect`` (identity at stride 1)."""

    name = "skip_connect"

    def ir_chain(self, p: Params, t: TensorType) -> IrChain:
        return []


class NorConv(_ImageLeaf):
    """NAS-Bench-201's ``nor_conv_kxk``: ReLU -> Conv(C, C, k, padding k//2, no bias) -> BatchNorm."""

    params: ClassVar[tuple[Param, ...]] = (Param("kernel", int, (1, 3)),)
    name = "nor_conv"

    def ir_chain(self, p: Params, t: TensorType) -> IrChain:
        c = t.shape[0]
        return [("relu", {}), _conv(c, c, p["kernel"]), _bn(c)]


class NorConv1x1(NorConv):
    name = "nor_conv_1x1"
    params: ClassVar[tuple[Param, ...]] = ()

    def ir_chain(self, p: Params, t: TensorType) -> IrChain:
        return super().ir_chain({"kernel": 1}, t)


class NorConv3x3(NorConv):
    name = "nor_conv_3x3"
    params: ClassVar[tuple[Param, ...]] = ()

    def ir_chain(self, p: Params, t: TensorType) -> IrChain:
        return super().ir_chain({"kernel": 3}, t)


class AvgPool3x3(_ImageLeaf):
    """NAS-Bench-201's ``avg_pool_3x3``: 3x3 average pooling, stride 1, padding 1, padding not counted."""

    name = "avg_pool_3x3"

    def ir_chain(self, p: Params, t: TensorType) -> IrChain:
        return [("avg_pool", {"kernel": 3, "stride": 1, "padding": 1, "count_include_pad": False})]


class ConvBn(Leaf):
    """Conv(k, stride, no bias) -> BatchNorm [-> ReLU]; ``width`` 0 keeps the channel count."""

    name = "conv_bn"
    params = (Param("kernel", int, minimum=1), Param("width", int, default=0, minimum=0),
              Param("stride", int, default=1, minimum=1),
              Param("relu", int, (0, 1), default=0, doc="1: ReLU after the BatchNorm"))

    def out_type(self, p: Params, t: TensorType) -> TensorType | None:
        if t.mode != "image":
            return None
        hw = _spatial(t, p["kernel"], p["stride"], p["kernel"] // 2)
        width = p["width"] or t.shape[0]
        return None if hw is None else TensorType("image", (width, *hw))

    def ir_chain(self, p: Params, t: TensorType) -> IrChain:
        width = p["width"] or t.shape[0]
        chain = [_conv(t.shape[0], width, p["kernel"], p["stride"]), _bn(width)]
        return chain + ([("relu", {})] if p["relu"] else [])


class BnRelu(_ImageLeaf):
    """BatchNorm -> ReLU (NAS-Bench-201's ``lastact``)."""

    name = "bn_relu"

    def ir_chain(self, p: Params, t: TensorType) -> IrChain:
        return [_bn(t.shape[0]), ("relu", {})]


class ResBlock(Leaf):
    """NAS-Bench-201's reduction block (ResNet basic block, stride 2, channels times ``factor``):
    ``ReLUConvBN(3, s2) -> ReLUConvBN(3)`` plus the shortcut ``AvgPool(2, 2) -> Conv1x1`` (no BN), summed."""

    name = "resblock"
    params = (Param("factor", int, (1, 2), default=2, doc="channel multiplier"),)

    def out_type(self, p: Params, t: TensorType) -> TensorType | None:
        if t.mode != "image" or t.shape[1] < 2 or t.shape[2] < 2:
            return None
        return TensorType("image", (t.shape[0] * p["factor"], (t.shape[1] - 1) // 2 + 1, (t.shape[2] - 1) // 2 + 1))

    def lower(self, p: Params, builder: Any, value: Any, t: TensorType) -> Any:
        c_in, c_out = t.shape[0], t.shape[0] * p["factor"]
        main = builder.add_chain([("relu", {}), _conv(c_in, c_out, 3, 2), _bn(c_out),
                                  ("relu", {}), _conv(c_out, c_out, 3, 1), _bn(c_out)], value)
        pool = {"kernel": 2, "stride": 2, "padding": 0, "count_include_pad": True}
        if t.shape[1] % 2 or t.shape[2] % 2:  # odd sizes: pad-and-pool keeps the shortcut on the main grid
            pool = {"kernel": 2, "stride": 2, "padding": 1, "count_include_pad": False}
        short = builder.add_chain([("avg_pool", pool), _conv(c_in, c_out, 1, 1)], value)
        (out,) = builder.add_op("add", {}, [main, short])
        return out


# --- NATS-Bench size search space (Dong et al., TPAMI 2021) ---------------------------------------------------------


def _relu_conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> IrChain:
    return [("relu", {}), _conv(c_in, c_out, kernel, stride), _bn(c_out)]


class ResBlockTo(ResBlock):
    """NAS-Bench-201's reduction block to ``width`` channels (NATS-Bench SSS, where each block has its own width):
    ``ReLUConvBN(3, s2) -> ReLUConvBN(3)`` plus the shortcut ``AvgPool(2, 2) -> Conv1x1`` (no BN), summed. The
    input width is read from the incoming tensor, so any width may precede it."""

    name = "resblock_to"
    params = (Param("width", int, doc="output channels", minimum=1),)

    def out_type(self, p: Params, t: TensorType) -> TensorType | None:
        out = super().out_type({"factor": 1}, t)
        return None if out is None or p["width"] < 1 else TensorType("image", (p["width"], *out.shape[1:]))

    def lower(self, p: Params, builder: Any, value: Any, t: TensorType) -> Any:
        c_in, c_out = t.shape[0], p["width"]
        main = builder.add_chain(_relu_conv_bn(c_in, c_out, 3, 2) + _relu_conv_bn(c_out, c_out, 3), value)
        pool = {"kernel": 2, "stride": 2, "padding": 0, "count_include_pad": True}
        if t.shape[1] % 2 or t.shape[2] % 2:  # odd sizes: as ResBlock
            pool = {"kernel": 2, "stride": 2, "padding": 1, "count_include_pad": False}
        short = builder.add_chain([("avg_pool", pool), _conv(c_in, c_out, 1, 1)], value)
        (out,) = builder.add_op("add", {}, [main, short])
        return out


class NatsCell(Leaf):
    """NATS-Bench SSS's fixed cell (Dong et al., TPAMI 2021), the NAS-Bench-201 genotype
    ``|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|`` from the
    input's width ``c_in`` to ``width`` channels (0 = keep): node j is the sum of its incoming edges, the output is
    node 3. Edges leaving node 0 map ``c_in -> width`` (``skip_connect`` becomes Conv1x1 + BN when the widths
    differ, xautodl's stride-1 FactorizedReduce); the others map ``width -> width``. nor_conv = ReLU -> Conv -> BN.
    """

    name = "nats_cell"
    params = (Param("width", int, default=0, doc="output channels, 0 = same as input", minimum=0),)

    def out_type(self, p: Params, t: TensorType) -> TensorType | None:
        if t.mode != "image" or p["width"] < 0:
            return None
        return TensorType("image", (p["width"] or t.shape[0], *t.shape[1:]))

    def lower(self, p: Params, builder: Any, value: Any, t: TensorType) -> Any:
        c_in = t.shape[0]
        c = p["width"] or c_in
        n1 = builder.add_chain(_relu_conv_bn(c_in, c, 3), value)
        (n2,) = builder.add_op("add", {}, [builder.add_chain(_relu_conv_bn(c_in, c, 3), value),
                                           builder.add_chain(_relu_conv_bn(c, c, 3), n1)])
        skip = value if c_in == c else builder.add_chain([_conv(c_in, c, 1), _bn(c)], value)
        (n3,) = builder.add_op("add", {}, [skip, builder.add_chain(_relu_conv_bn(c, c, 3), n1),
                                           builder.add_chain(_relu_conv_bn(c, c, 3), n2)])
        return n3


# --- NAS-Bench-Macro (Su et al., CVPR 2021) --------------------------------------------------------------------------


class MBConv(Leaf):
    """MobileNetV2 inverted residual: Conv1x1 to round(expand*C) -> BN -> ReLU -> depthwise kxk (stride) -> BN ->
    ReLU -> Conv1x1 to ``width`` -> BN, plus the input when stride is 1 and channels are unchanged."""

    name = "mbconv"
    params = (Param("expand", int, minimum=1), Param("kernel", int, minimum=1),
              Param("stride", int, default=1, minimum=1),
              Param("width", int, default=0, doc="output channels, 0 = same as input", minimum=0))

    def out_type(self, p: Params, t: TensorType) -> TensorType | None:
        if t.mode != "image":
            return None
        hw = _spatial(t, p["kernel"], p["stride"], p["kernel"] // 2)
        return None if hw is None else TensorType("image", (p["width"] or t.shape[0], *hw))

    def lower(self, p: Params, builder: Any, value: Any, t: TensorType) -> Any:
        c_in = t.shape[0]
        c_out, hidden = p["width"] or c_in, round(p["expand"] * c_in)
        out = builder.add_chain([_conv(c_in, hidden, 1), _bn(hidden), ("relu", {}),
                                 _conv(hidden, hidden, p["kernel"], p["stride"], groups=hidden), _bn(hidden),
                                 ("relu", {}), _conv(hidden, c_out, 1), _bn(c_out)], value)
        if p["stride"] == 1 and c_in == c_out:
            (out,) = builder.add_op("add", {}, [out, value])
        return out


# --- hierarchical NB201 conv blocks (Schrodi et al., NeurIPS 2023) ---------------------------------------------------

_NORMS = ("batch", "instance", "layer")
_CONVS = ("conv3x3", "conv1x1", "dconv3x3")
_ACTS = ("relu", "hardswish", "mish")


class ConvBlock(_ImageLeaf):
    """activation -> conv (3x3, 1x1 or depthwise 3x3; channels kept) -> norm (batch, instance or layer)."""

    name = "conv_block"
    params = (Param("act", str, _ACTS), Param("conv", str, _CONVS), Param("norm", str, _NORMS))

    def ir_chain(self, p: Params, t: TensorType) -> IrChain:
        c = t.shape[0]
        conv = {"conv3x3": _conv(c, c, 3), "conv1x1": _conv(c, c, 1), "dconv3x3": _conv(c, c, 3, groups=c)}[p["conv"]]
        norm = {"batch": _bn(c), "instance": ("instancenorm", {"num_features": c, "affine": True}),
                "layer": ("groupnorm", {"num_groups": 1, "num_channels": c})}[p["norm"]]
        return [(p["act"], {}), conv, norm]


CONVOLUTIONAL_TERMINALS = (NoneOp(), SkipConnect(), NorConv1x1(), NorConv3x3(), AvgPool3x3(), ConvBn(), BnRelu(),
                           ResBlock(), ResBlockTo(), NatsCell(), MBConv(), ConvBlock())
