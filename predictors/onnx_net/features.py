"""Global features of an ONNX graph: log parameters, log FLOPs, depth, size and an operator histogram.

These are the optional "global" inputs of :class:`~predictors.OnnxNetPredictor` next to its text embedding, and
the GRAF-style baseline's graph features (:func:`graph_features`). Everything is computed from the ONNX file
alone (after shape inference), so it works for any space.

FLOPs convention (as ``torch.utils.flop_counter``): 2 x multiply-accumulates of Conv, ConvTranspose, Gemm and
MatMul, for one sample (a dynamic batch dimension counts as 1); every other operator counts 0.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

#: Operators whose counts form the histogram (anything else counts as ``other``). Fixed, so that feature
#: vectors of models from different spaces line up.
OP_VOCABULARY: tuple[str, ...] = (
    "Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization", "LayerNormalization", "InstanceNormalization",
    "GroupNormalization", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSwish", "HardSigmoid", "Gelu", "Mish",
    "Softmax", "Elu", "Selu", "Add", "Sub", "Mul", "Div", "Concat", "Split", "Slice", "Reshape", "Transpose",
    "Flatten", "Squeeze", "Unsqueeze", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
    "ReduceMean", "ReduceSum", "Pad", "Identity", "Erf", "Sqrt", "Pow", "Resize", "Gather", "Expand",
)


@dataclass(frozen=True)
class GlobalFeatures:
    """Size and shape of one graph (see the module docstring for the FLOPs convention)."""

    params: int
    flops: int
    depth: int
    num_nodes: int
    op_counts: dict[str, int]

    def vector(self) -> np.ndarray:
        """``[log1p params, log1p FLOPs, depth, log1p nodes, log1p count per OP_VOCABULARY op, log1p other]``."""
        hist = [self.op_counts.get(op, 0) for op in OP_VOCABULARY]
        other = sum(self.op_counts.values()) - sum(hist)
        values = [math.log1p(self.params), math.log1p(self.flops), float(self.depth), math.log1p(self.num_nodes)]
        values += [math.log1p(c) for c in hist] + [math.log1p(other)]
        return np.asarray(values, dtype=np.float64)


def global_feature_names() -> list[str]:
    """Names of :meth:`GlobalFeatures.vector`'s entries."""
    return ["log_params", "log_flops", "depth", "log_nodes"] + [f"n_{op}" for op in OP_VOCABULARY] + ["n_other"]


#: Names of :func:`width_features`' entries.
WIDTH_FEATURES: tuple[str, ...] = ("width_min", "width_mean", "width_max")
_WEIGHTED = re.compile(r"^(Conv|ConvTranspose|Gemm|MatMul)\((?:[^()]*?)Param\[([\d,]+)\]")


def _layer_width(op: str, dims: list[int], segment: str) -> int | None:
    """The hidden width a weighted layer stands for: a convolution's output channels, a matrix product's input
    features (so the classifier contributes the width of the features it reads, not the number of classes)."""
    if op == "Conv":
        return dims[0]
    if op == "ConvTranspose":
        return dims[1] if len(dims) > 1 else None
    if op == "Gemm":
        trans_b = "transB=1" in segment
        return (dims[1] if trans_b else dims[0]) if len(dims) > 1 else None
    return dims[0] if len(dims) > 1 else None  # MatMul(x, W[in, out])


def width_features(lines: Sequence[str], counts: Sequence[int]) -> np.ndarray:
    """``[min, mean, max]`` of log2 of the hidden widths of a graph's weighted layers (see :func:`_layer_width`),
    each layer counted as often as its line occurs; zeros without weighted layers.

    Read from the text lines of the ``relative`` encoding (``Conv(V-1, Param[48,16,3,3])...``), so it needs
    no more than the encoded graph. Widths are scale-free across spaces in a way parameter counts are not: the
    mean log width alone ranks NATS-Bench SSS (Kendall tau 0.76 on CIFAR-10) better than its parameter count
    (0.70), and einspace/digits (0.47) better than params (0.31)."""
    values: list[float] = []
    weights: list[int] = []
    for line, count in zip(lines, counts):
        if "=>" in line:  # a pair of consecutive lines: its layers are counted by the lines themselves
            continue
        for segment in line.split(" --> "):
            match = _WEIGHTED.match(segment)
            if match is None:
                continue
            dims = [int(d) for d in match.group(2).split(",") if d]
            width = _layer_width(match.group(1), dims, segment) if dims else None
            if width and width > 0:
                values.append(math.log2(width))
                weights.append(int(count))
    if not values:
        return np.zeros(len(WIDTH_FEATURES))
    v, w = np.asarray(values), np.asarray(weights, dtype=np.float64)
    return np.asarray([v.min(), float(np.average(v, weights=w)), v.max()])


def _dims(value_info: Any) -> list[int] | None:
    tensor = value_info.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else 1 for d in tensor.shape.dim]


def _shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    graph = model.graph
    shapes: dict[str, list[int]] = {}
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        dims = _dims(vi)
        if dims is not None:
            shapes[vi.name] = dims
    for init in graph.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


def _node_flops(node: onnx.NodeProto, shapes: dict[str, list[int]] | _LazyShapes) -> int:
    out = shapes.get(node.output[0]) if node.output else None
    if node.op_type in ("Conv", "ConvTranspose") and len(node.input) > 1:
        weight = shapes.get(node.input[1])
        if out is None or weight is None:
            return 0
        # Conv weight [C_out, C_in/group, k...]: each output element costs C_in/group * prod(k) MACs.
        macs_per_output = math.prod(weight[1:]) if node.op_type == "Conv" else weight[0] * math.prod(weight[2:])
        return 2 * math.prod(out) * macs_per_output
    if node.op_type in ("Gemm", "MatMul") and len(node.input) > 1:
        a = shapes.get(node.input[0])
        if out is None or a is None or not a:
            return 0
        k = a[-1]
        if node.op_type == "Gemm":
            trans_a = next((attr.i for attr in node.attribute if attr.name == "transA"), 0)
            k = a[0] if trans_a else a[-1]
        return 2 * math.prod(out) * k
    return 0


def _depth(model: onnx.ModelProto) -> int:
    producer: dict[str, int] = {}
    depth: list[int] = []
    for i, node in enumerate(model.graph.node):  # ONNX requires topological node order
        d = 1 + max((depth[producer[name]] for name in node.input if name in producer), default=0)
        depth.append(d)
        for name in node.output:
            producer[name] = i
    return max(depth, default=0)


def _parse_shape_text(text: str) -> list[int] | None:
    if text in ("*", ""):
        return None
    if text == "scalar":
        return []
    return [int(d) if d.isdigit() else 1 for d in text.split("x")]


_FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16)
_FLOP_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


class _LazyShapes:
    """``name -> dims`` as :func:`global_features` builds it from ``shape_text`` (initializer dims win), parsing a
    shape text only when it is asked for: the FLOPs need the shapes of a few values, not of all of them."""

    def __init__(self, shape_text: dict[str, str], initializer_keys: dict[str, tuple[int, ...]]) -> None:
        self.shape_text, self.initializer_keys = shape_text, initializer_keys

    def get(self, name: str) -> list[int] | None:
        key = self.initializer_keys.get(name)
        if key is not None:
            return list(key[1:])
        text = self.shape_text.get(name)
        return None if text is None else _parse_shape_text(text)


def _from_graph(graph: Any, shape_text: dict[str, str]) -> tuple[int, int]:
    """Parameters and FLOPs from an analysed graph (:class:`predictors.onnx_text.analysis.Graph`, which holds every
    initializer's (type, dims...)) and its shape texts: what :func:`global_features` computes from the model,
    without reading the protobuf again."""
    initializer_keys = {name: key for _, name, _, key in graph.initializers}
    elements: dict[tuple[int, ...], int] = {}     # (type, dims...) -> elements, for the keys met in this graph
    params = 0
    for _, _, _, key in graph.initializers:
        n = elements.get(key)
        if n is None:
            n = elements[key] = math.prod(key[1:]) if len(key) > 1 and key[0] in _FLOAT_TYPES else 0
        params += n
    shapes = _LazyShapes(shape_text, initializer_keys)
    flops = 0
    for node, op in zip(graph.nodes, graph.ops):
        if op.endswith(_FLOP_OPS) and node.op_type in _FLOP_OPS:
            flops += _node_flops(node, shapes)
    return params, flops


def global_features(model: onnx.ModelProto, *, inferred: bool = False,
                    shape_text: dict[str, str] | None = None, stats: Any = None, graph: Any = None) -> GlobalFeatures:
    """:class:`GlobalFeatures` of ``model``; ``inferred=True`` when shape inference has already been run, or
    ``shape_text`` (``{value: "?x16x8x8"}``, from :meth:`predictors.onnx_text.OnnxTextEncoder.encode`). With
    ``stats`` (that encoding's :class:`~predictors.onnx_text.GraphStats`), depth, node count and op counts are
    taken from it (``Constant`` nodes excluded) instead of walking the graph again; with ``graph`` too (that
    encoding's analysed graph, :attr:`~predictors.onnx_text.TextEncoding.graph`), so are parameters and FLOPs."""
    if graph is not None and shape_text is not None and stats is not None:
        params, flops = _from_graph(graph, shape_text)
        return GlobalFeatures(int(params), int(flops), stats.depth, stats.num_nodes, dict(stats.op_histogram))
    if shape_text is not None:
        shapes = {name: dims for name, text in shape_text.items() if (dims := _parse_shape_text(text)) is not None}
        for init in model.graph.initializer:
            shapes[init.name] = list(init.dims)
    else:
        if not inferred:
            try:
                model = onnx.shape_inference.infer_shapes(model)
            except Exception:  # noqa: BLE001 - fall back to the declared shapes
                pass
        shapes = _shapes(model)
    params = sum(math.prod(init.dims) for init in model.graph.initializer if len(init.dims) > 0
                 and init.data_type in _FLOAT_TYPES)
    flops = sum(_node_flops(node, shapes) for node in model.graph.node if node.op_type in _FLOP_OPS)
    if stats is not None:
        return GlobalFeatures(int(params), int(flops), stats.depth, stats.num_nodes, dict(stats.op_histogram))
    counts = Counter(node.op_type for node in model.graph.node)
    return GlobalFeatures(int(params), int(flops), _depth(model), len(model.graph.node), dict(counts))


def graph_features(model: onnx.ModelProto) -> np.ndarray:
    """GRAF-style hand-made features (Kadlecova et al., 2024, "Surprisingly Strong Performance Prediction with
    Neural Graph Features"): the global features plus path statistics of the operator DAG (longest path,
    mean depth of nodes, fraction of nodes on multi-input joins, mean fan-out)."""
    model_inferred = model
    try:
        model_inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001
        pass
    base = global_features(model_inferred, inferred=True).vector()
    nodes = model.graph.node
    initializers = {init.name for init in model.graph.initializer}
    producer: dict[str, int] = {}
    consumers: Counter[str] = Counter()
    depth: list[int] = []
    joins = 0
    for i, node in enumerate(nodes):
        activations = [n for n in node.input if n and n not in initializers]
        joins += len([n for n in activations if n in producer or n in {x.name for x in model.graph.input}]) > 1
        depth.append(1 + max((depth[producer[n]] for n in activations if n in producer), default=0))
        for n in activations:
            consumers[n] += 1
        for n in node.output:
            producer[n] = i
    n = max(len(nodes), 1)
    fan_out = float(np.mean([consumers[o] for node in nodes for o in node.output])) if nodes else 0.0
    extra = [float(np.mean(depth)) if depth else 0.0, joins / n, fan_out, math.log1p(sum(consumers.values()))]
    return np.concatenate([base, np.asarray(extra)])
