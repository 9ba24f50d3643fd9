"""Emit ONNX directly from an :class:`~nas.ir.graph.ArchGraph` and its compiled module's weights.

:func:`export_onnx` walks the graph once and writes one or a few ONNX nodes per IR node with ``onnx.helper``;
weights come from the :class:`~nas.compile.torch.GraphModule`'s parameters and BatchNorm running statistics. It
does not trace the module, so it takes milliseconds where ``torch.onnx.export`` takes seconds. The model computes
what the module computes in eval mode.

Names are deterministic: the value of node ``n`` port ``p`` is ``n{n}_{p}``, a node's initializers and internal
values are ``n{n}_<what>``; the graph input is ``input`` and the output ``logits``, both with a dynamic ``batch``
dim. :func:`export_onnx_dynamo` wraps torch's own exporter, for speed comparisons only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from nas.errors import NasError
from nas.ir.graph import ArchGraph
from nas.ir.ops import Shape

__all__ = ["OnnxLoadError", "export_onnx", "export_onnx_dynamo", "load_onnx", "save_onnx", "INPUT_NAME",
           "OUTPUT_NAME", "BATCH_DIM"]

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
BATCH_DIM = "batch"
PRODUCER = "nas-platform"


class OnnxLoadError(NasError, ValueError):
    """An ONNX file could not be read: missing, corrupt, or not an ONNX model."""


WEIGHTS_NOT_STORED = "weights-not-stored"
"""The external-data ``location`` of weight initializers written without their data (:func:`strip_weights`,
``export_onnx(..., weights=False)``)."""
STRIP_KEEP_ELEMENTS = 64
"""Initializers up to this many elements (shapes, axes, small constants) keep their data when weights are not
written."""


# --- emission context ---------------------------------------------------------------------------------------------


@dataclass
class _Emitter:
    """Collects the ONNX nodes and initializers of one graph node (names prefixed ``n{node}_``)."""

    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[onnx.TensorProto] = field(default_factory=list)
    node: int = 0
    weights: bool = True
    _count: int = 0

    def name(self, what: str) -> str:
        """A tensor name private to the current graph node."""
        return f"n{self.node}_{what}"

    def op(self, op_type: str, inputs: Sequence[str], outputs: Sequence[str], **attrs: Any) -> None:
        """Append one ONNX node."""
        self.nodes.append(helper.make_node(op_type, list(inputs), list(outputs),
                                           name=f"n{self.node}_{op_type}_{self._count}", **attrs))
        self._count += 1

    def tensor(self, what: str, array: np.ndarray) -> str:
        """Add an initializer holding ``array`` (without ``weights``, a large one as a data-less placeholder,
        see :func:`strip_weights`); returns its name."""
        name = self.name(what)
        if not self.weights and array.size > STRIP_KEEP_ELEMENTS:
            self.initializers.append(_placeholder(name, array.shape, array.dtype))
        else:
            self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def ints(self, what: str, values: Sequence[int]) -> str:
        """Add a 1-D int64 initializer (shapes, axes, split sizes)."""
        return self.tensor(what, np.asarray(values, dtype=np.int64))

    def start(self, node: int) -> None:
        """Begin emitting the ONNX nodes of graph node ``node``."""
        self.node, self._count = node, 0


def _f32(tensor: Any) -> np.ndarray:
    """A torch tensor as a float32 numpy array on the CPU (zeros, without memory, for a meta tensor)."""
    if tensor.device.type == "meta":
        return np.broadcast_to(np.float32(0.0), tuple(tensor.shape))
    return tensor.detach().cpu().float().numpy()


@dataclass(frozen=True)
class _NodeArgs:
    """What an emitter gets for one IR node."""

    attrs: Mapping[str, Any]
    inputs: list[str]
    outputs: list[str]
    in_shapes: Sequence[Shape]
    node: int
    module_layer: Any  # the node's torch submodule, or None

    @property
    def layer(self) -> Any:
        """The node's torch submodule; raises ValueError when the module has none (not compiled from this graph)."""
        if self.module_layer is None:
            raise ValueError(f"module has no layer for node {self.node}; was it compiled from this graph?")
        return self.module_layer


# --- emitters: one per IR op --------------------------------------------------------------------------------------


def _emit_linear(e: _Emitter, a: _NodeArgs) -> None:
    weight = e.tensor("weight", _f32(a.layer.weight).T)
    bias = e.tensor("bias", _f32(a.layer.bias))
    e.op("MatMul", [a.inputs[0], weight], [e.name("mm")])
    e.op("Add", [e.name("mm"), bias], a.outputs)


def _emit_conv1d(e: _Emitter, a: _NodeArgs) -> None:
    weight = e.tensor("weight", _f32(a.layer.weight))
    bias = e.tensor("bias", _f32(a.layer.bias))
    e.op("Conv", [a.inputs[0], weight, bias], a.outputs, kernel_shape=[a.attrs["kernel"]],
         pads=[a.attrs["pad_left"], a.attrs["pad_right"]], strides=[1], dilations=[1], group=1)


def _emit_batchnorm(e: _Emitter, a: _NodeArgs) -> None:
    bn = a.layer
    names = [e.tensor(what, _f32(t)) for what, t in
             (("scale", bn.weight), ("bias", bn.bias), ("mean", bn.running_mean), ("var", bn.running_var))]
    e.op("BatchNormalization", [a.inputs[0], *names], a.outputs, epsilon=float(bn.eps))


def _emit_layernorm(e: _Emitter, a: _NodeArgs) -> None:
    ln = a.layer
    scale, bias = e.tensor("scale", _f32(ln.weight)), e.tensor("bias", _f32(ln.bias))
    e.op("LayerNormalization", [a.inputs[0], scale, bias], a.outputs, axis=-1, epsilon=float(ln.eps))


def _emit_leaky_relu(e: _Emitter, a: _NodeArgs) -> None:
    e.op("LeakyRelu", a.inputs, a.outputs, alpha=0.01)


def _emit_softmax(e: _Emitter, a: _NodeArgs) -> None:
    e.op("Softmax", a.inputs, a.outputs, axis=-1)


def _emit_pos_enc(e: _Emitter, a: _NodeArgs) -> None:
    e.op("Add", [a.inputs[0], e.tensor("pos", _f32(a.layer.pos))], a.outputs)


def _emit_permute(e: _Emitter, a: _NodeArgs) -> None:
    e.op("Transpose", a.inputs, a.outputs, perm=[0, *(p + 1 for p in a.attrs["perm"])])


def _im2col_weight(channels: int, kernel: int) -> np.ndarray:
    """One-hot grouped-conv weight ``[C*k*k, 1, k, k]``: out channel ``c*k*k + i*k + j`` picks pixel ``(i, j)``."""
    eye = np.eye(kernel * kernel, dtype=np.float32).reshape(kernel * kernel, 1, kernel, kernel)
    return np.tile(eye, (channels, 1, 1, 1))


def _emit_im2col(e: _Emitter, a: _NodeArgs) -> None:
    channels, height, width = a.in_shapes[0]
    k, s, p = a.attrs["kernel"], a.attrs["stride"], a.attrs["padding"]
    features = channels * k * k
    if k == s and p == 0:
        # Non-overlapping patches: a pure reshape/transpose, no arithmetic. Like unfold, the rows and columns that
        # do not fill a whole patch are dropped first (a one-hot Conv would need C*k^4 weights, 200 MB at k = 16).
        ho, wo = height // k, width // k
        source = a.inputs[0]
        if height % k or width % k:
            e.op("Slice", [source, e.ints("crop_starts", [0, 0]), e.ints("crop_ends", [ho * k, wo * k]),
                           e.ints("crop_axes", [2, 3])], [e.name("cropped")])
            source = e.name("cropped")
        e.op("Reshape", [source, e.ints("grid_shape", [0, channels, ho, k, wo, k])], [e.name("grid")])
        e.op("Transpose", [e.name("grid")], [e.name("patches")], perm=[0, 2, 4, 1, 3, 5])
        e.op("Reshape", [e.name("patches"), e.ints("shape", [0, ho * wo, features])], a.outputs)
        return
    weight = e.tensor("onehot", _im2col_weight(channels, k))
    e.op("Conv", [a.inputs[0], weight], [e.name("cols")], kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p],
         dilations=[1, 1], group=channels)
    e.op("Reshape", [e.name("cols"), e.ints("shape", [0, features, -1])], [e.name("flat")])
    e.op("Transpose", [e.name("flat")], a.outputs, perm=[0, 2, 1])


def _emit_col2im(e: _Emitter, a: _NodeArgs) -> None:
    e.op("Transpose", a.inputs, [e.name("t")], perm=[0, 2, 1])
    e.op("Reshape", [e.name("t"), e.ints("shape", [0, -1, a.attrs["height"], a.attrs["width"]])], a.outputs)


def _emit_split(e: _Emitter, a: _NodeArgs) -> None:
    dim, k = a.attrs["dim"], a.attrs["k"]
    sizes = e.ints("sizes", [a.in_shapes[0][dim] // k] * k)
    e.op("Split", [a.inputs[0], sizes], a.outputs, axis=dim + 1)


def _emit_add(e: _Emitter, a: _NodeArgs) -> None:
    # A chain of binary Adds, left to right, rounds exactly like torch's ``((x0 + x1) + x2) + ...``.
    total = a.inputs[0]
    for index, x in enumerate(a.inputs[1:], start=1):
        out = a.outputs[0] if index == len(a.inputs) - 1 else e.name(f"sum{index}")
        e.op("Add", [total, x], [out])
        total = out


def _emit_concat(e: _Emitter, a: _NodeArgs) -> None:
    e.op("Concat", a.inputs, a.outputs, axis=a.attrs["dim"] + 1)


def _emit_matmul(e: _Emitter, a: _NodeArgs) -> None:
    scale = float(a.attrs.get("scale", 1.0))
    if scale == 1.0:
        e.op("MatMul", a.inputs, a.outputs)
        return
    e.op("MatMul", a.inputs, [e.name("mm")])
    e.op("Mul", [e.name("mm"), e.tensor("scale", np.array(scale, dtype=np.float32))], a.outputs)


def _emit_global_avg_pool(e: _Emitter, a: _NodeArgs) -> None:
    axes = e.ints("axes", [ax + 1 for ax in a.attrs["axes"]])
    e.op("ReduceMean", [a.inputs[0], axes], a.outputs, keepdims=0)


def _emit_conv2d(e: _Emitter, a: _NodeArgs) -> None:
    conv = a.layer
    k, s, p = a.attrs["kernel"], a.attrs["stride"], a.attrs["padding"]
    inputs = [a.inputs[0], e.tensor("weight", _f32(conv.weight))]
    if conv.bias is not None:
        inputs.append(e.tensor("bias", _f32(conv.bias)))
    e.op("Conv", inputs, a.outputs, kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p], dilations=[1, 1],
         group=a.attrs["groups"])


def _emit_relu(e: _Emitter, a: _NodeArgs) -> None:
    e.op("Relu", a.inputs, a.outputs)


def _emit_hardswish(e: _Emitter, a: _NodeArgs) -> None:
    e.op("HardSwish", a.inputs, a.outputs)  # x * max(0, min(1, x/6 + 1/2)) == x * relu6(x + 3) / 6


def _emit_mish(e: _Emitter, a: _NodeArgs) -> None:
    e.op("Mish", a.inputs, a.outputs)  # opset 18


def _emit_gelu(e: _Emitter, a: _NodeArgs) -> None:
    # Opset 18 has no Gelu (added in 20): x * 0.5 * (1 + erf(x / sqrt(2))), in torch's order of operations.
    x = a.inputs[0]
    e.op("Mul", [x, e.tensor("rsqrt2", np.array(np.sqrt(0.5), dtype=np.float32))], [e.name("scaled")])
    e.op("Erf", [e.name("scaled")], [e.name("erf")])
    e.op("Add", [e.name("erf"), e.tensor("one", np.array(1.0, dtype=np.float32))], [e.name("cdf2")])
    e.op("Mul", [x, e.tensor("half", np.array(0.5, dtype=np.float32))], [e.name("xhalf")])
    e.op("Mul", [e.name("xhalf"), e.name("cdf2")], a.outputs)


def _emit_sigmoid(e: _Emitter, a: _NodeArgs) -> None:
    e.op("Sigmoid", a.inputs, a.outputs)


def _pool_window(a: _NodeArgs) -> dict[str, Any]:
    """Kernel/stride/pads attributes of a 1-D or 2-D pooling node (square window)."""
    spatial = len(a.in_shapes[0]) - 1
    k, s, p = a.attrs["kernel"], a.attrs["stride"], a.attrs["padding"]
    return {"kernel_shape": [k] * spatial, "strides": [s] * spatial, "pads": [p] * (2 * spatial), "ceil_mode": 0}


def _emit_avg_pool(e: _Emitter, a: _NodeArgs) -> None:
    e.op("AveragePool", a.inputs, a.outputs, count_include_pad=int(bool(a.attrs["count_include_pad"])),
         **_pool_window(a))


def _emit_max_pool(e: _Emitter, a: _NodeArgs) -> None:
    e.op("MaxPool", a.inputs, a.outputs, **_pool_window(a))


def _emit_zero(e: _Emitter, a: _NodeArgs) -> None:
    e.op("Mul", [a.inputs[0], e.tensor("zero", np.array(0.0, dtype=np.float32))], a.outputs)


def _emit_instancenorm(e: _Emitter, a: _NodeArgs) -> None:
    norm = a.layer
    channels = a.attrs["num_features"]
    if norm.affine:
        scale, bias = _f32(norm.weight), _f32(norm.bias)
    else:
        scale, bias = np.ones(channels, dtype=np.float32), np.zeros(channels, dtype=np.float32)
    e.op("InstanceNormalization", [a.inputs[0], e.tensor("scale", scale), e.tensor("bias", bias)], a.outputs,
         epsilon=float(norm.eps))


def _emit_groupnorm(e: _Emitter, a: _NodeArgs) -> None:
    # Opset 18's GroupNormalization takes per-group scale/bias (per-channel only from opset 21), so: normalise
    # (B, G, C/G * spatial) with InstanceNormalization, reshape back, then the per-channel affine.
    gn = a.layer
    shape = tuple(a.in_shapes[0])
    groups = a.attrs["num_groups"]
    e.op("Reshape", [a.inputs[0], e.ints("group_shape", [0, groups, -1])], [e.name("grouped")])
    e.op("InstanceNormalization", [e.name("grouped"), e.tensor("ones", np.ones(groups, dtype=np.float32)),
                                   e.tensor("zeros", np.zeros(groups, dtype=np.float32))], [e.name("normed")],
         epsilon=float(gn.eps))
    e.op("Reshape", [e.name("normed"), e.ints("shape", [0, *shape])], [e.name("flat")])
    affine_shape = (shape[0],) + (1,) * (len(shape) - 1)
    e.op("Mul", [e.name("flat"), e.tensor("scale", _f32(gn.weight).reshape(affine_shape))], [e.name("scaled")])
    e.op("Add", [e.name("scaled"), e.tensor("bias", _f32(gn.bias).reshape(affine_shape))], a.outputs)


_EMITTERS: dict[str, Callable[[_Emitter, _NodeArgs], None]] = {
    "linear": _emit_linear,
    "conv1d": _emit_conv1d,
    "batchnorm": _emit_batchnorm,
    "layernorm": _emit_layernorm,
    "leaky_relu": _emit_leaky_relu,
    "softmax": _emit_softmax,
    "pos_enc": _emit_pos_enc,
    "permute": _emit_permute,
    "im2col": _emit_im2col,
    "col2im": _emit_col2im,
    "split": _emit_split,
    "add": _emit_add,
    "concat": _emit_concat,
    "matmul": _emit_matmul,
    "global_avg_pool": _emit_global_avg_pool,
    "conv2d": _emit_conv2d,
    "relu": _emit_relu,
    "hardswish": _emit_hardswish,
    "mish": _emit_mish,
    "gelu": _emit_gelu,
    "sigmoid": _emit_sigmoid,
    "avg_pool": _emit_avg_pool,
    "max_pool": _emit_max_pool,
    "zero": _emit_zero,
    "instancenorm": _emit_instancenorm,
    "groupnorm": _emit_groupnorm,
}


# --- export -------------------------------------------------------------------------------------------------------


def _value_name(ref: tuple[int, int], output_ref: tuple[int, int]) -> str:
    if ref == (0, 0):
        return INPUT_NAME
    return OUTPUT_NAME if ref == output_ref else f"n{ref[0]}_{ref[1]}"


def _value_info(name: str, shape: Shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [BATCH_DIM, *shape])


def export_onnx(graph: ArchGraph, module: Any, *, opset: int = 18,
                metadata: Mapping[str, str] | None = None, weights: bool = True) -> onnx.ModelProto:
    """Emit an ONNX model computing ``module`` (a :class:`~nas.compile.torch.GraphModule` of ``graph``) in eval mode.

    Args:
        graph: the architecture; its node ids name the ONNX tensors.
        module: the compiled module whose parameters and BatchNorm running stats become initializers.
        opset: the default-domain opset; the emitted ops follow opset 18 (>= 18 required).
        metadata: string key/values stored in the model's ``metadata_props``.
        weights: write the weights; ``False`` writes data-less placeholders instead (as :func:`strip_weights`
            does), e.g. for a module built on the ``meta`` device: kilobytes, readable, not runnable.

    Returns:
        A model with input ``input`` and output ``logits``, both float32 with a dynamic ``batch`` first dim.
    """
    if opset < 18:
        raise ValueError(f"export_onnx emits opset-18 operators (Split/ReduceMean inputs); got opset={opset}")
    output_ref = tuple(graph.g.nodes[graph.output_node]["inputs"][0])
    layers = getattr(module, "layers", {})
    e = _Emitter(weights=weights)
    for node, data in graph.op_nodes():
        emitter = _EMITTERS.get(data["op"])
        if emitter is None:
            raise NotImplementedError(f"node {node}: op {data['op']!r} has no ONNX emitter")
        e.start(node)
        args = _NodeArgs(data["attrs"], [_value_name(tuple(r), output_ref) for r in data["inputs"]],
                         [_value_name((node, port), output_ref) for port in range(len(data["out_shapes"]))],
                         data["in_shapes"], node, layers[str(node)] if str(node) in layers else None)
        emitter(e, args)
    if output_ref == (0, 0):  # the network is the identity
        e.start(graph.output_node)
        e.op("Identity", [INPUT_NAME], [OUTPUT_NAME])
    onnx_graph = helper.make_graph(e.nodes, "nas_graph", [_value_info(INPUT_NAME, graph.input_shape)],
                                   [_value_info(OUTPUT_NAME, graph.output_shape)], initializer=e.initializers)
    opset_ids = [helper.make_opsetid("", opset)]
    model = helper.make_model(onnx_graph, opset_imports=opset_ids, producer_name=PRODUCER,
                              producer_version=_version(),
                              ir_version=helper.find_min_ir_version_for(opset_ids, ignore_unknown=True))
    if metadata:
        helper.set_model_props(model, {str(k): str(v) for k, v in metadata.items()})
    return model


def _version() -> str:
    from nas import __version__

    return __version__


# --- files --------------------------------------------------------------------------------------------------------


def save_onnx(model: onnx.ModelProto, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` to ``path`` (creating parent directories) atomically: a temporary file renamed over
    ``path``, so a full disk or a kill never leaves a truncated model; returns the path.

    Raises:
        OutputError: the file cannot be written (the message names it and the cause).
    """
    from nas.util.atomic import atomic_path

    target = Path(path)
    with atomic_path(target) as temporary:
        onnx.save_model(model, os.fspath(temporary))
    return target


def load_onnx(path: str | os.PathLike[str]) -> onnx.ModelProto:
    """Read an ONNX model; raises :class:`OnnxLoadError` naming ``path`` if it is missing, corrupt or not ONNX."""
    source = Path(path)
    if not source.is_file():
        raise OnnxLoadError(f"cannot load ONNX model {source}: no such file")
    try:
        model = onnx.load_model(os.fspath(source))
    except Exception as err:  # protobuf DecodeError, OSError, external-data errors, ...
        raise OnnxLoadError(f"cannot load ONNX model {source}: {type(err).__name__}: {err}") from err
    # Protobuf parses many byte strings (the empty one included) as a valid but empty message.
    if not model.ir_version or not model.opset_import or not model.graph.output:
        raise OnnxLoadError(f"cannot load ONNX model {source}: not an ONNX model (no IR version, opset or outputs)")
    try:
        onnx.checker.check_model(model)
    except Exception as err:
        raise OnnxLoadError(f"cannot load ONNX model {source}: invalid model: {err}") from err
    return model


# --- torch's exporter, for benchmarks -----------------------------------------------------------------------------


def export_onnx_dynamo(module: Any, input_shape: Sequence[int], path: str | os.PathLike[str]) -> None:
    """Export ``module`` with ``torch.onnx.export(..., dynamo=True)`` and a dynamic batch dim (benchmarks only)."""
    import torch

    was_training = module.training
    module.eval()
    try:
        device = next((p.device for p in module.parameters()), torch.device("cpu"))
        example = torch.randn(2, *input_shape, device=device)
        batch = torch.export.Dim("batch", min=1, max=1 << 16)
        torch.onnx.export(module, (example,), os.fspath(path), dynamo=True, input_names=[INPUT_NAME],
                          output_names=[OUTPUT_NAME], dynamic_shapes=({0: batch},), external_data=False,
                          verbose=False)
    finally:
        module.train(was_training)


def _placeholder(name: str, shape: Sequence[int], dtype: Any) -> onnx.TensorProto:
    """An initializer with name, dtype and dims but no data (external, at :data:`WEIGHTS_NOT_STORED`)."""
    tensor = onnx.TensorProto(name=name, dims=[int(d) for d in shape],
                              data_type=helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))
    tensor.data_location = onnx.TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value=WEIGHTS_NOT_STORED)
    return tensor


def strip_weights(model: onnx.ModelProto, keep_elements: int = STRIP_KEEP_ELEMENTS) -> onnx.ModelProto:
    """A copy of ``model`` without its weights: every initializer with more than ``keep_elements`` elements keeps
    its name, dtype and dims but its data is marked external at :data:`WEIGHTS_NOT_STORED` (so the file is
    kilobytes). The architecture stays readable (graph, attributes, shapes; the predictor's ONNX text is the same)
    but not runnable: rebuild the candidate from its derivation for that. Table searches store their candidates so.
    """
    stripped = onnx.ModelProto()
    stripped.CopyFrom(model)
    for init in stripped.graph.initializer:
        if int(np.prod(init.dims, dtype=np.int64)) <= keep_elements:
            continue
        for name in ("raw_data", "float_data", "int64_data", "int32_data", "double_data"):
            init.ClearField(name)
        init.data_location = onnx.TensorProto.EXTERNAL
        del init.external_data[:]
        init.external_data.add(key="location", value=WEIGHTS_NOT_STORED)
    return stripped
