"""Compile an :class:`~nas.ir.graph.ArchGraph` into a ``torch.nn.Module`` that interprets it.

:func:`compile_graph` builds a :class:`GraphModule`: one standard torch layer per parametrised node, held in an
``nn.ModuleDict`` keyed by ``str(node_id)``, and a precomputed plan (a list of :class:`Step` tuples) that
``forward`` walks in topological order. No source code is generated or evaluated.

The plan stores only plain data (op names, ints, tuples) and the per-op forward functions are looked up by name in
a module-level table at run time, so a ``GraphModule`` deep-copies and pickles like any other module.

All ``dim``/``axes``/``perm`` attributes in the IR are 0-based over the non-batch dims; at run time the batch dim
comes first, so each is shifted by one here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nas.ir.graph import ArchGraph
from nas.ir.ops import Shape

__all__ = ["GraphModule", "PosEnc", "Step", "compile_graph", "build_layer"]

ValueRef = tuple[int, int]  # (node, port)


class PosEnc(nn.Module):
    """A learnable additive positional encoding: ``x + P`` with ``P`` of shape ``(1, *shape)``."""

    def __init__(self, shape: Sequence[int]):
        super().__init__()
        self.pos = nn.Parameter(torch.randn(1, *shape) * 0.02)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.pos


class Step(NamedTuple):
    """One node of the plan.

    Attributes:
        node: the graph node id.
        op: the IR op name.
        args: static arguments of the op, already shifted to torch dims.
        inputs: the ``(node, port)`` values read, in order.
        num_outputs: how many values the op produces.
        release: values no longer needed after this step (freed to save memory).
    """

    node: int
    op: str
    args: tuple[Any, ...]
    inputs: tuple[ValueRef, ...]
    num_outputs: int
    release: tuple[ValueRef, ...]


# --- layers -------------------------------------------------------------------------------------------------------


def _make_linear(attrs: Mapping[str, Any], in_shapes: Sequence[Shape]) -> nn.Module:
    return nn.Linear(attrs["in_features"], attrs["out_features"])


def _make_conv1d(attrs: Mapping[str, Any], in_shapes: Sequence[Shape]) -> nn.Module:
    left, right = attrs["pad_left"], attrs["pad_right"]
    return nn.Conv1d(attrs["in_channels"], attrs["out_channels"], attrs["kernel"],
                     padding=left if left == right else 0)


def _make_batchnorm(attrs: Mapping[str, Any], in_shapes: Sequence[Shape]) -> nn.Module:
    cls = nn.BatchNorm1d if len(in_shapes[0]) == 2 else nn.BatchNorm2d
    return cls(attrs["num_features"], eps=1e-5, affine=True)


def _make_layernorm(attrs: Mapping[str, Any], in_shapes: Sequence[Shape]) -> nn.Module:
    return nn.LayerNorm(attrs["dim"], eps=1e-5)


def _make_pos_enc(attrs: Mapping[str, Any], in_shapes: Sequence[Shape]) -> nn.Module:
    return PosEnc(attrs["shape"])


def _make_conv2d(attrs: Mapping[str, Any], in_shapes: Sequence[Shape]) -> nn.Module:
    return nn.Conv2d(attrs["in_channels"], attrs["out_channels"], attrs["kernel"], stride=attrs["stride"],
                     padding=attrs["padding"], groups=attrs["groups"], bias=bool(attrs["bias"]))


def _make_instancenorm(attrs: Mapping[str, Any], in_shapes: Sequence[Shape]) -> nn.Module:
    cls = nn.InstanceNorm1d if len(in_shapes[0]) == 2 else nn.InstanceNorm2d
    return cls(attrs["num_features"], eps=1e-5, affine=bool(attrs["affine"]), track_running_stats=False)


def _make_groupnorm(attrs: Mapping[str, Any], in_shapes: Sequence[Shape]) -> nn.Module:
    return nn.GroupNorm(attrs["num_groups"], attrs["num_channels"], eps=1e-5, affine=True)


_LAYER_BUILDERS: dict[str, Callable[[Mapping[str, Any], Sequence[Shape]], nn.Module]] = {
    "linear": _make_linear,
    "conv1d": _make_conv1d,
    "batchnorm": _make_batchnorm,
    "layernorm": _make_layernorm,
    "pos_enc": _make_pos_enc,
    "conv2d": _make_conv2d,
    "instancenorm": _make_instancenorm,
    "groupnorm": _make_groupnorm,
}


def build_layer(op: str, attrs: Mapping[str, Any], in_shapes: Sequence[Shape]) -> nn.Module | None:
    """The torch layer holding the parameters of one node, or ``None`` for a parameter-free op."""
    builder = _LAYER_BUILDERS.get(op)
    return builder(attrs, in_shapes) if builder is not None else None


# --- static arguments ---------------------------------------------------------------------------------------------


def _static_args(op: str, attrs: Mapping[str, Any]) -> tuple[Any, ...]:
    """Attributes the forward function needs, shifted past the batch dim where they name dims."""
    if op == "conv1d":
        left, right = attrs["pad_left"], attrs["pad_right"]
        return ((left, right) if left != right else None,)
    if op == "permute":
        return ((0, *(p + 1 for p in attrs["perm"])),)
    if op == "im2col":
        return (attrs["kernel"], attrs["stride"], attrs["padding"])
    if op == "col2im":
        return (attrs["height"], attrs["width"])
    if op == "split":
        return (attrs["dim"] + 1, attrs["k"])
    if op == "concat":
        return (attrs["dim"] + 1,)
    if op == "matmul":
        return (float(attrs.get("scale", 1.0)),)
    if op == "global_avg_pool":
        return (tuple(a + 1 for a in attrs["axes"]),)
    if op == "avg_pool":
        return (attrs["kernel"], attrs["stride"], attrs["padding"], bool(attrs["count_include_pad"]))
    if op == "max_pool":
        return (attrs["kernel"], attrs["stride"], attrs["padding"])
    return ()


# --- per-op forward functions: (layer, args, inputs) -> outputs ----------------------------------------------------

Inputs = list[Tensor]
Outputs = tuple[Tensor, ...]


def _fw_layer(layer: nn.Module, args: tuple, xs: Inputs) -> Outputs:
    return (layer(xs[0]),)


def _fw_conv1d(layer: nn.Module, args: tuple, xs: Inputs) -> Outputs:
    (pads,) = args
    x = xs[0] if pads is None else F.pad(xs[0], pads)
    return (layer(x),)


def _fw_leaky_relu(layer: None, args: tuple, xs: Inputs) -> Outputs:
    return (F.leaky_relu(xs[0], 0.01),)


def _fw_softmax(layer: None, args: tuple, xs: Inputs) -> Outputs:
    return (torch.softmax(xs[0], dim=-1),)


def _fw_permute(layer: None, args: tuple, xs: Inputs) -> Outputs:
    return (xs[0].permute(*args[0]),)


def _fw_im2col(layer: None, args: tuple, xs: Inputs) -> Outputs:
    kernel, stride, padding = args
    return (F.unfold(xs[0], kernel, padding=padding, stride=stride).transpose(1, 2),)


def _fw_col2im(layer: None, args: tuple, xs: Inputs) -> Outputs:
    height, width = args
    x = xs[0]
    return (x.transpose(1, 2).reshape(x.shape[0], -1, height, width),)


def _fw_split(layer: None, args: tuple, xs: Inputs) -> Outputs:
    dim, k = args
    x = xs[0]
    return tuple(torch.split(x, x.shape[dim] // k, dim=dim))


def _fw_add(layer: None, args: tuple, xs: Inputs) -> Outputs:
    total = xs[0] + xs[1]
    for x in xs[2:]:
        total = total + x
    return (total,)


def _fw_concat(layer: None, args: tuple, xs: Inputs) -> Outputs:
    return (torch.cat(xs, dim=args[0]),)


def _fw_matmul(layer: None, args: tuple, xs: Inputs) -> Outputs:
    (scale,) = args
    y = xs[0] @ xs[1]
    return (y if scale == 1.0 else y * scale,)


def _fw_global_avg_pool(layer: None, args: tuple, xs: Inputs) -> Outputs:
    return (xs[0].mean(dim=args[0]),)


def _fw_relu(layer: None, args: tuple, xs: Inputs) -> Outputs:
    return (F.relu(xs[0]),)


def _fw_hardswish(layer: None, args: tuple, xs: Inputs) -> Outputs:
    return (F.hardswish(xs[0]),)


def _fw_mish(layer: None, args: tuple, xs: Inputs) -> Outputs:
    return (F.mish(xs[0]),)


def _fw_gelu(layer: None, args: tuple, xs: Inputs) -> Outputs:
    return (F.gelu(xs[0]),)  # exact erf form


def _fw_sigmoid(layer: None, args: tuple, xs: Inputs) -> Outputs:
    return (torch.sigmoid(xs[0]),)


def _fw_avg_pool(layer: None, args: tuple, xs: Inputs) -> Outputs:
    kernel, stride, padding, count_include_pad = args
    x = xs[0]
    pool = F.avg_pool1d if x.dim() == 3 else F.avg_pool2d
    return (pool(x, kernel, stride, padding, ceil_mode=False, count_include_pad=count_include_pad),)


def _fw_max_pool(layer: None, args: tuple, xs: Inputs) -> Outputs:
    kernel, stride, padding = args
    x = xs[0]
    pool = F.max_pool1d if x.dim() == 3 else F.max_pool2d
    return (pool(x, kernel, stride, padding, ceil_mode=False),)


def _fw_zero(layer: None, args: tuple, xs: Inputs) -> Outputs:
    return (xs[0] * 0.0,)  # as NAS-Bench-201's Zero op; keeps the graph connected for autograd


_FORWARD: dict[str, Callable[[Any, tuple, Inputs], Outputs]] = {
    "linear": _fw_layer,
    "conv1d": _fw_conv1d,
    "batchnorm": _fw_layer,
    "layernorm": _fw_layer,
    "leaky_relu": _fw_leaky_relu,
    "softmax": _fw_softmax,
    "pos_enc": _fw_layer,
    "permute": _fw_permute,
    "im2col": _fw_im2col,
    "col2im": _fw_col2im,
    "split": _fw_split,
    "add": _fw_add,
    "concat": _fw_concat,
    "matmul": _fw_matmul,
    "global_avg_pool": _fw_global_avg_pool,
    "conv2d": _fw_layer,
    "relu": _fw_relu,
    "hardswish": _fw_hardswish,
    "mish": _fw_mish,
    "gelu": _fw_gelu,
    "sigmoid": _fw_sigmoid,
    "avg_pool": _fw_avg_pool,
    "max_pool": _fw_max_pool,
    "zero": _fw_zero,
    "instancenorm": _fw_layer,
    "groupnorm": _fw_layer,
}


# --- the module ---------------------------------------------------------------------------------------------------


def _build_plan(graph: ArchGraph) -> tuple[list[Step], ValueRef]:
    """The steps in topological order and the value returned, with each value released after its last use."""
    output_value: ValueRef = tuple(graph.g.nodes[graph.output_node]["inputs"][0])
    nodes = list(graph.op_nodes())
    last_use: dict[ValueRef, int] = {}
    for index, (_, data) in enumerate(nodes):
        for ref in data["inputs"]:
            last_use[tuple(ref)] = index
    plan = []
    for index, (node, data) in enumerate(nodes):
        op = data["op"]
        if op not in _FORWARD:
            raise NotImplementedError(f"node {node}: op {op!r} has no torch implementation")
        inputs = tuple(tuple(ref) for ref in data["inputs"])
        release = tuple(ref for ref in dict.fromkeys(inputs) if last_use[ref] == index and ref != output_value)
        plan.append(Step(node, op, _static_args(op, data["attrs"]), inputs,
                         len(data["out_shapes"]), release))
    return plan, output_value


class GraphModule(nn.Module):
    """A torch module that runs an :class:`~nas.ir.graph.ArchGraph`.

    Attributes:
        layers: one submodule per parametrised node, keyed by ``str(node_id)``.
        plan: the :class:`Step` list ``forward`` walks.
        input_shape / output_shape: per-sample shapes (no batch dim).
    """

    def __init__(self, graph: ArchGraph):
        super().__init__()
        graph.output_node  # noqa: B018 - raises GraphLintError when the graph has no output
        self.input_shape: Shape = graph.input_shape
        self.output_shape: Shape = graph.output_shape
        self.layers = nn.ModuleDict()
        for node, data in graph.op_nodes():
            layer = build_layer(data["op"], data["attrs"], data["in_shapes"])
            if layer is not None:
                self.layers[str(node)] = layer
        self.plan, self.output_value = _build_plan(graph)

    def forward(self, x: Tensor) -> Tensor:
        """Run the graph on a batch ``x`` of shape ``(B, *input_shape)``."""
        env: dict[ValueRef, Tensor] = {(0, 0): x}
        layers = self.layers
        for step in self.plan:
            layer = layers[str(step.node)] if step.op in _LAYER_BUILDERS else None
            outs = _FORWARD[step.op](layer, step.args, [env[ref] for ref in step.inputs])
            for port, out in enumerate(outs):
                env[(step.node, port)] = out
            for ref in step.release:
                del env[ref]
        return env[self.output_value]

    def extra_repr(self) -> str:
        return f"input_shape={self.input_shape}, output_shape={self.output_shape}, steps={len(self.plan)}"


def compile_graph(graph: ArchGraph, device: torch.device | str | None = None) -> GraphModule:
    """Build a :class:`GraphModule` for ``graph`` (parameters initialised from torch's global RNG).

    Args:
        graph: a finished graph (with an output node).
        device: where to put the parameters; ``None`` leaves them on the CPU.
    """
    module = GraphModule(graph)
    return module.to(device) if device is not None else module
