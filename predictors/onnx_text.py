"""A deterministic, renaming-invariant text encoding of any ONNX graph (after ONNX-Net, Qin et al. 2025).

::

    from predictors.onnx_text import encode_onnx, encode_lines, graph_stats, load_model, OnnxTextError

    text = encode_onnx("cand.onnx")                    # a path, raw bytes or an onnx.ModelProto
    text = encode_onnx(model, variant="compact")       # repeated lines / blocks collapsed
    graph_stats(model)                                 # GraphStats(num_nodes=..., depth=..., num_params=..., ...)

The text says what the network computes and nothing about how its file happens to be written: renaming every
tensor and node, or reordering the node list, gives the same text. Only ``numpy`` and ``onnx`` are needed.

Encoding rules ("chain" variant)
--------------------------------
1. **Shapes.** ``onnx.shape_inference.infer_shapes`` runs first (on a copy without the large weights, so it costs
   well under a millisecond); if it fails, the declared ``value_info`` is used and values without one are written
   with the unknown shape ``*``. A shape is written ``1x16x32x32``; a dynamic / symbolic dim (the exporter's batch
   dim ``batch``) is written ``?``; a rank-0 tensor is written ``scalar``.
2. **Graph input.** Written as its shape wherever it is used: ``Input:?x3x32x32`` (``Input1:...``, ``Input2:...``
   in graph order when there are several).
3. **Constants.** Initializers and ``Constant``-node outputs are folded into the arguments of the node that uses
   them; ``Constant`` nodes are not nodes of the text. A weight is written ``Param[16,3,3,3]`` (its dims). A
   constant whose *value* shapes the architecture is written by value: every rank-0 tensor (``Const(0.5)``) and
   every integer or bool tensor with at most 8 elements (Reshape's shape, Unsqueeze's axes, Pad's pads:
   ``Const[0,-1]``, nested brackets for rank >= 2); an empty tensor is ``Const[]``. Larger integer tensors
   are ``Param[...]``, and so is a small constant whose data cannot be read (external or stripped:
   ``Param[]`` for a scalar). An absent optional input (``""``) is ``None``; trailing absent inputs are dropped. Tensor
   names are never written.
4. **Order.** Nodes are sorted topologically (Kahn's algorithm). A chain is always continued first (rule 5).
   Otherwise, among the ready nodes the one consuming the most recently produced value goes first (a
   depth-first walk), ties broken by a canonical key: the node's op, attributes and constant arguments; the
   positions of its inputs in the order so far; a Weisfeiler-Lehman colour of its downstream structure up to 6
   hops (order-preserving, so repeated cells are ordered alike); a stable hash of its whole downstream
   structure. Only nodes identical under all of that (in practice, interchangeable ones) fall back to their
   position in the file. Written values get canonical ids ``V1, V2, ...`` in the order they are written, so
   the text depends neither on tensor/node names nor on the node order of the file.
5. **Chains.** A node with exactly one non-constant input and one output continues the chain of the node just
   before it when its input is that node's output and nothing else uses that value (and it is not a graph
   output). A chain's first node names its input (``V2`` or ``Input:...``), the following nodes omit it
   (``--> Relu -->``; if the chained value is not the node's first input, its slot is written ``_``, as in
   ``Sub(Const(1), _)``). A chain ends with its output value and shape, ``--> V3:?x16x32x32``. Every other node
   (several non-constant inputs: Add, Concat, MatMul of two activations; none; several outputs) is a line of
   its own: ``Add(V3, V5) --> V6:?x16x32x32``, ``Split(V6, Const[8,8]){axis=1} --> V7:?x8x4x4, V8:?x8x4x4``.
6. **Attributes.** All of them, sorted by name, in braces after the arguments: ints as ints, floats with
   ``format(x, ".6g")`` (so a float32 ``1e-5`` is ``1e-05``), lists in brackets, strings as they are, tensors
   as in rule 3, a subgraph as ``Graph(nodes=K,ops=[...])`` (its op types, sorted; subgraphs are summarised,
   not encoded). Ops outside the default domain are written ``domain.Op``.
7. **Outputs.** One last line per graph output, in graph order: ``Output(V9) --> ?x10``.

Worked example (the network of ``tests/test_onnx_text.py``: a Conv-BN-Relu stem, a Conv-BN branch added back
to the stem, global average pooling and a classifier)::

    Conv(Input:?x3x8x8, Param[8,3,3,3], Param[8]){dilations=[1,1],group=1,kernel_shape=[3,3],pads=[1,1,1,1],strides=[1,1]} --> BatchNormalization(Param[8], Param[8], Param[8], Param[8]){epsilon=1e-05,momentum=0.9} --> Relu --> V1:?x8x8x8
    Conv(V1, Param[8,8,3,3]){dilations=[1,1],group=1,kernel_shape=[3,3],pads=[1,1,1,1],strides=[1,1]} --> BatchNormalization(Param[8], Param[8], Param[8], Param[8]){epsilon=1e-05,momentum=0.9} --> V2:?x8x8x8
    Add(V1, V2) --> V3:?x8x8x8
    GlobalAveragePool(V3) --> Flatten{axis=1} --> Gemm(Param[10,8], Param[10]){alpha=1,beta=1,transB=1} --> V4:?x10
    Output(V4) --> ?x10

"compact" variant
-----------------
The same lines with *relative* value ids, so that a repeated cell reads the same every time it occurs: in a
line, ``V-1`` is the value most recently defined before that line, ``V-2`` the one before it, and the values
the line itself defines are ``V+1``, ``V+2`` (``Input:...`` and constants are unchanged). Then, scanning
greedily from the top, a block of 1 to 32 consecutive lines that repeats back-to-back ``n >= 2`` times is
written once: a single line as ``n x [line]``, a longer block as ``n x [``, its lines indented by two spaces
(blocks are compacted again inside), ``]``. At each position the repeat saving the most lines wins (ties: the
shorter block), unless a repeat starting inside it would save more. Expanding every group and turning the
relative ids back into ``V1, V2, ...`` gives the chain text exactly. For example, a stem and six identical
residual blocks (two Conv-BN-Relu branches summed, plus a skip) become (attributes shortened here)::

    Conv(Input:?x3x8x8, Param[8,3,3,3]){...} --> BatchNormalization(...){epsilon=1e-05,momentum=0.9} --> Relu --> V+1:?x8x8x8
    6 x [
      Conv(V-1, Param[8,8,1,1]){...} --> BatchNormalization(...){epsilon=1e-05,momentum=0.9} --> Relu --> V+1:?x8x8x8
      Conv(V-2, Param[8,8,3,3]){...} --> BatchNormalization(...){epsilon=1e-05,momentum=0.9} --> Relu --> V+1:?x8x8x8
      Add(V-1, V-2) --> V+1:?x8x8x8
      Add(V-1, V-4) --> V+1:?x8x8x8
    ]
    Output(V-1) --> ?x8x8x8

where the chain variant has 26 lines. An NB-201 network (3 stages of 5 identical cells) shrinks about 3x.

Errors
------
:class:`OnnxTextError` (a ``ValueError``) names the problem: bytes or a file that do not parse as an ONNX
ModelProto (``not an ONNX model: ...``), a path that does not exist, a model without a graph or without nodes,
a node that consumes a tensor nothing defines, a tensor defined twice, a cycle, and an argument that is not a
path, bytes or ModelProto.
"""

from __future__ import annotations

import hashlib
import heapq
import os
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, numpy_helper

__all__ = ["VARIANTS", "GraphStats", "ModelLike", "OnnxTextError", "encode_lines", "encode_onnx", "graph_stats",
           "load_model"]

#: The text variants :func:`encode_onnx` writes.
VARIANTS: tuple[str, ...] = ("chain", "compact")

#: A model as the functions of this module accept it.
ModelLike = str | os.PathLike | bytes | bytearray | memoryview | onnx.ModelProto

_MAX_CONST_ELEMENTS = 8      # integer tensors up to this size are written by value
_INFER_KEEP_ELEMENTS = 64    # initializers up to this size keep their data for shape inference
_DOWNSTREAM_HOPS = 6         # depth of the downstream signature used to break ordering ties
_MAX_PERIOD = 32             # longest repeated block the compact variant collapses
_INT_TYPES = frozenset({TensorProto.INT8, TensorProto.INT16, TensorProto.INT32, TensorProto.INT64,
                        TensorProto.UINT8, TensorProto.UINT16, TensorProto.UINT32, TensorProto.UINT64,
                        TensorProto.BOOL})
_DEFAULT_DOMAINS = ("", "ai.onnx")


class OnnxTextError(ValueError):
    """A model could not be encoded: not an ONNX model, a missing file, or a graph that is not a valid DAG."""


@dataclass(frozen=True)
class GraphStats:
    """Cheap structural numbers of an ONNX graph (no shape inference).

    Attributes:
        num_nodes: nodes of the graph, not counting ``Constant`` nodes (folded into arguments, as in the text).
        depth: the number of nodes on the longest input-to-output path (``Constant`` nodes excluded).
        num_params: elements of every tensor the text writes as ``Param[...]`` (initializers and ``Constant``
            values); the small constants written by value (``Const...``) are excluded. BatchNorm running
            statistics count, so this exceeds torch's trainable parameter count for networks with BatchNorm.
        op_histogram: node count per op type (``domain.Op`` outside the default domain), sorted by op.
    """

    num_nodes: int
    depth: int
    num_params: int
    op_histogram: dict[str, int]


# --- loading ------------------------------------------------------------------------------------------------------


def load_model(model: ModelLike) -> onnx.ModelProto:
    """Return ``model`` as an ``onnx.ModelProto``: a file path, the serialized bytes, or a ModelProto as is.

    Raises :class:`OnnxTextError` for a missing file, bytes that are not an ONNX model, a model without a graph
    or without nodes, and any other type of argument.
    """
    if isinstance(model, onnx.ModelProto):
        proto = model
    elif isinstance(model, (bytes, bytearray, memoryview)):
        proto = onnx.ModelProto()
        try:
            proto.ParseFromString(bytes(model))
        except Exception as exc:  # noqa: BLE001 - google.protobuf.message.DecodeError and friends
            raise OnnxTextError(f"not an ONNX model: {len(model)} bytes do not parse as a ModelProto "
                                f"({type(exc).__name__}: {exc})") from None
        if not proto.HasField("graph"):
            raise OnnxTextError(f"not an ONNX model: {len(model)} bytes parse to a ModelProto without a graph")
    elif isinstance(model, (str, os.PathLike)):
        path = Path(os.fspath(model))
        if not path.exists():
            raise OnnxTextError(f"ONNX file not found: {path}")
        if not path.is_file():
            raise OnnxTextError(f"not an ONNX model: {path} is not a file")
        try:
            proto = onnx.load(os.fspath(path))
        except Exception as exc:  # noqa: BLE001 - whatever onnx.load raises on a corrupt file
            raise OnnxTextError(f"not an ONNX model: {path} ({type(exc).__name__}: {exc})") from None
        if not proto.HasField("graph"):
            raise OnnxTextError(f"not an ONNX model: {path} parses to a ModelProto without a graph")
    else:
        raise OnnxTextError(f"expected a path, bytes or onnx.ModelProto, got {type(model).__name__}")
    if not proto.HasField("graph"):
        raise OnnxTextError("ONNX model has no graph")
    if len(proto.graph.node) == 0:
        raise OnnxTextError("ONNX model's graph has no nodes")
    return proto


# --- small renderers ----------------------------------------------------------------------------------------------


def _fmt_float(x: float) -> str:
    return format(float(x), ".6g")


def _fmt_scalar(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(int(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return _fmt_float(v)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


def _fmt_nested(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ",".join(_fmt_nested(x) for x in v) + "]"
    return _fmt_scalar(v)


def _dims_text(dims: Any) -> str:
    return "[" + ",".join(str(int(d)) for d in dims) + "]"


def _numel(dims: Any) -> int:
    n = 1
    for d in dims:
        n *= int(d)
    return n


def _value_text(array: np.ndarray) -> str:
    """``Const(v)`` for a rank-0 array, else ``Const[...]`` with nested brackets."""
    if array.ndim == 0:
        return f"Const({_fmt_scalar(array.item())})"
    return "Const" + _fmt_nested(array.tolist())


def _tensor_text(t: TensorProto) -> tuple[str, int]:
    """The text of a constant tensor and the number of elements it contributes to ``num_params``."""
    dims = list(t.dims)
    n = _numel(dims)
    if n == 0:
        return "Const[]", 0
    if not dims or (t.data_type in _INT_TYPES and n <= _MAX_CONST_ELEMENTS):
        try:
            return _value_text(numpy_helper.to_array(t)), 0
        except Exception:  # noqa: BLE001, S110 - external, stripped or malformed data: write its dims
            pass
    return "Param" + _dims_text(dims), n


def _array_text(array: np.ndarray) -> tuple[str, int]:
    if array.size == 0:
        return "Const[]", 0
    if array.ndim == 0 or ((array.dtype.kind in "iub" or array.dtype.kind in "OSU") and
                           array.size <= _MAX_CONST_ELEMENTS):
        return _value_text(array), 0
    return "Param" + _dims_text(array.shape), int(array.size)


def _constant_node_text(node: onnx.NodeProto) -> tuple[str, int]:
    """The text of a ``Constant`` node's value."""
    for a in node.attribute:
        if a.name == "value":
            return _tensor_text(a.t)
        if a.name == "sparse_value":
            return "Param" + _dims_text(a.sparse_tensor.dims), _numel(a.sparse_tensor.dims)
        if a.name == "value_float":
            return _array_text(np.array(a.f, dtype=np.float32))
        if a.name == "value_floats":
            return _array_text(np.array(list(a.floats), dtype=np.float32))
        if a.name == "value_int":
            return _array_text(np.array(a.i, dtype=np.int64))
        if a.name == "value_ints":
            return _array_text(np.array(list(a.ints), dtype=np.int64))
        if a.name == "value_string":
            return f"Const({a.s.decode('utf-8', 'replace')})", 0
        if a.name == "value_strings":
            return "Const" + _fmt_nested(list(a.strings)), 0
    raise OnnxTextError("Constant node without a value attribute")


def _graph_summary(g: onnx.GraphProto) -> str:
    return f"Graph(nodes={len(g.node)},ops=[{','.join(sorted({n.op_type for n in g.node}))}])"


def _attr_text(a: AttributeProto) -> str:
    t = a.type
    if t == AttributeProto.FLOAT:
        return _fmt_float(a.f)
    if t == AttributeProto.INT:
        return str(a.i)
    if t == AttributeProto.STRING:
        return a.s.decode("utf-8", "replace")
    if t == AttributeProto.TENSOR:
        return _tensor_text(a.t)[0]
    if t == AttributeProto.GRAPH:
        return _graph_summary(a.g)
    if t == AttributeProto.SPARSE_TENSOR:
        return "Param" + _dims_text(a.sparse_tensor.dims)
    if t == AttributeProto.TYPE_PROTO:
        return str(a.tp).replace("\n", " ").strip()
    if t == AttributeProto.FLOATS:
        return "[" + ",".join(_fmt_float(x) for x in a.floats) + "]"
    if t == AttributeProto.INTS:
        return "[" + ",".join(str(x) for x in a.ints) + "]"
    if t == AttributeProto.STRINGS:
        return "[" + ",".join(s.decode("utf-8", "replace") for s in a.strings) + "]"
    if t == AttributeProto.TENSORS:
        return "[" + ",".join(_tensor_text(x)[0] for x in a.tensors) + "]"
    if t == AttributeProto.GRAPHS:
        return "[" + ",".join(_graph_summary(g) for g in a.graphs) + "]"
    if t == AttributeProto.SPARSE_TENSORS:
        return "[" + ",".join("Param" + _dims_text(x.dims) for x in a.sparse_tensors) + "]"
    if t == AttributeProto.TYPE_PROTOS:
        return "[" + ",".join(str(x).replace("\n", " ").strip() for x in a.type_protos) + "]"
    if a.ref_attr_name:
        return "@" + a.ref_attr_name
    return ""


def _attrs_text(node: onnx.NodeProto) -> str:
    if not node.attribute:
        return ""
    items = sorted((a.name, _attr_text(a)) for a in node.attribute)
    return "{" + ",".join(f"{k}={v}" for k, v in items) + "}"


def _op_text(node: onnx.NodeProto) -> str:
    return node.op_type if node.domain in _DEFAULT_DOMAINS else f"{node.domain}.{node.op_type}"


def _is_constant(node: onnx.NodeProto) -> bool:
    return node.op_type == "Constant" and node.domain in _DEFAULT_DOMAINS


def _shape_text(tp: onnx.TypeProto) -> str:
    if not tp.HasField("tensor_type") or not tp.tensor_type.HasField("shape"):
        return "*"
    dims = tp.tensor_type.shape.dim
    if len(dims) == 0:
        return "scalar"
    return "x".join(str(d.dim_value) if d.HasField("dim_value") else "?" for d in dims)


def _infer_shapes(model: onnx.ModelProto, nodes: list[onnx.NodeProto]) -> dict[str, str]:
    """Shape text per value name, from shape inference on a weight-free copy (declared shapes on failure).

    ``nodes`` are the non-Constant nodes in a topological order (inference needs one; the file may not be).
    """
    g = model.graph
    light = onnx.ModelProto()
    light.ir_version = model.ir_version
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    lg = light.graph
    lg.node.extend(node for node in g.node if _is_constant(node))
    lg.node.extend(nodes)
    lg.input.extend(g.input)
    lg.output.extend(g.output)
    lg.value_info.extend(g.value_info)
    for t in g.initializer:
        if _numel(t.dims) <= _INFER_KEEP_ELEMENTS:
            lg.initializer.append(t)
        else:
            stub = lg.initializer.add()
            stub.name, stub.data_type = t.name, t.data_type
            stub.dims.extend(t.dims)
    try:
        inferred = onnx.shape_inference.infer_shapes(light).graph
    except Exception:  # noqa: BLE001 - invalid or unsupported: the declared value_info is all we have
        inferred = g
    shapes: dict[str, str] = {}
    for source in (g.value_info, g.input, g.output, inferred.value_info, inferred.input, inferred.output):
        for vi in source:
            text = _shape_text(vi.type)
            if text != "*" or vi.name not in shapes:
                shapes[vi.name] = text
    return shapes


# --- graph analysis -----------------------------------------------------------------------------------------------

# An argument slot: ("v", node, port) a node's output, ("i", k) graph input k, ("c", text) a constant,
# ("n",) an absent optional input.
_Arg = tuple


@dataclass
class _Graph:
    nodes: list[onnx.NodeProto]          # non-Constant nodes, in file order
    ops: list[str]
    attrs: list[str]
    args: list[list[_Arg]]
    outputs: list[list[str]]             # trailing "" removed
    labels: list[str]                    # op, constant arguments and attributes; activations as "*"
    consumers: list[list[list[tuple[int, int]]]]   # [node][port] -> (consumer, slot)
    output_ports: list[list[tuple[int, ...]]]      # [node][port] -> graph output indices
    graph_inputs: list[str]
    graph_outputs: list[_Arg]
    num_params: int


def _analyse(model: onnx.ModelProto) -> _Graph:
    g = model.graph
    consts: dict[str, str] = {}
    num_params = 0
    for t in g.initializer:
        consts[t.name], n = _tensor_text(t)
        num_params += n
    for st in g.sparse_initializer:
        consts[st.values.name] = "Param" + _dims_text(st.dims)
        num_params += _numel(st.dims)
    graph_inputs = [vi.name for vi in g.input if vi.name not in consts]
    defined: dict[str, _Arg] = {name: ("i", k) for k, name in enumerate(graph_inputs)}
    if len(defined) != len(graph_inputs):
        raise OnnxTextError("graph input names are not unique")

    nodes = []
    for node in g.node:
        if _is_constant(node):
            for out in node.output:
                if out:
                    if out in consts or out in defined:
                        raise OnnxTextError(f"tensor {out!r} is defined twice")
                    consts[out], n = _constant_node_text(node)
                    num_params += n
        else:
            nodes.append(node)
    if not nodes:
        raise OnnxTextError("ONNX graph has no nodes besides Constant nodes")

    outputs: list[list[str]] = []
    for i, node in enumerate(nodes):
        outs = list(node.output)
        while outs and not outs[-1]:
            outs.pop()
        outputs.append(outs)
        for p, out in enumerate(outs):
            if not out:
                continue
            if out in defined or out in consts:
                raise OnnxTextError(f"tensor {out!r} is defined twice (node {i}, {node.op_type})")
            defined[out] = ("v", i, p)

    def resolve(name: str, where: str) -> _Arg:
        if not name:
            return ("n",)
        if name in defined:
            return defined[name]
        if name in consts:
            return ("c", consts[name])
        raise OnnxTextError(f"{where} uses tensor {name!r}, which no node, initializer or graph input defines")

    args: list[list[_Arg]] = []
    labels: list[str] = []
    ops: list[str] = []
    attrs: list[str] = []
    consumers = [[[] for _ in outs] for outs in outputs]
    for i, node in enumerate(nodes):
        ins = list(node.input)
        while ins and not ins[-1]:
            ins.pop()
        row = [resolve(name, f"node {i} ({node.op_type})") for name in ins]
        args.append(row)
        for slot, a in enumerate(row):
            if a[0] == "v":
                consumers[a[1]][a[2]].append((i, slot))
        ops.append(_op_text(node))
        attrs.append(_attrs_text(node))
        labels.append(ops[-1] + "(" + ", ".join(a[1] if a[0] == "c" else "None" if a[0] == "n" else "*"
                                                for a in row) + ")" + attrs[-1])

    output_ports: list[list[list[int]]] = [[[] for _ in outs] for outs in outputs]
    graph_outputs = []
    for k, vi in enumerate(g.output):
        a = resolve(vi.name, f"graph output {k}")
        graph_outputs.append(a)
        if a[0] == "v":
            output_ports[a[1]][a[2]].append(k)
    return _Graph(nodes, ops, attrs, args, outputs, labels, consumers,
                  [[tuple(x) for x in ports] for ports in output_ports], graph_inputs, graph_outputs, num_params)


def _file_topo_order(gr: _Graph) -> list[int]:
    """Any topological order (file order among ready nodes); raises on a cycle."""
    n = len(gr.nodes)
    indeg = [sum(1 for a in gr.args[i] if a[0] == "v") for i in range(n)]
    ready = [i for i in range(n) if indeg[i] == 0]
    order = []
    while ready:
        i = ready.pop()
        order.append(i)
        for port in gr.consumers[i]:
            for c, _ in port:
                indeg[c] -= 1
                if indeg[c] == 0:
                    ready.append(c)
    if len(order) != n:
        stuck = sorted({gr.ops[i] for i in range(n) if indeg[i] > 0})
        raise OnnxTextError(f"ONNX graph is not a DAG: {n - len(order)} nodes lie on or after a cycle "
                            f"(ops: {', '.join(stuck)})")
    return order


def _downstream_ranks(gr: _Graph) -> list[int]:
    """Weisfeiler-Lehman colours of each node's downstream structure up to ``_DOWNSTREAM_HOPS`` hops.

    Colours are ranks of sorted signatures, so comparing two colours compares the nested structures; they depend
    on nothing but ops, attributes, constants and wiring.
    """
    label_rank = {lab: r for r, lab in enumerate(sorted(set(gr.labels)))}
    colour = [label_rank[lab] for lab in gr.labels]
    for _ in range(_DOWNSTREAM_HOPS):
        sigs = []
        for i in range(len(gr.nodes)):
            sigs.append((colour[i], tuple((gr.output_ports[i][p], tuple(sorted((s, colour[c]) for c, s in port)))
                                          for p, port in enumerate(gr.consumers[i]))))
        rank = {s: r for r, s in enumerate(sorted(set(sigs)))}
        colour = [rank[s] for s in sigs]
    return colour


def _downstream_hashes(gr: _Graph, topo: list[int]) -> list[int]:
    """A stable 64-bit hash of each node's whole downstream structure (label, consumers and their slots, graph
    outputs, recursively). Compared only after the bounded, order-preserving ranks of
    :func:`_downstream_ranks` tie, to split nodes whose difference lies farther downstream."""
    h = [0] * len(gr.nodes)
    for i in reversed(topo):
        parts = [gr.labels[i]]
        for p, port in enumerate(gr.consumers[i]):
            parts.append(f"|{p}:{gr.output_ports[i][p]}:" + ",".join(sorted(f"{s}.{h[c]}" for c, s in port)))
        h[i] = int.from_bytes(hashlib.blake2b("".join(parts).encode(), digest_size=8).digest(), "big")
    return h


def _chain_successors(gr: _Graph) -> list[int | None]:
    """For each node, the node that continues its chain (rule 5), or None."""
    single = [len(gr.outputs[i]) == 1 and sum(1 for a in gr.args[i] if a[0] in "vi") == 1
              for i in range(len(gr.nodes))]
    succ: list[int | None] = [None] * len(gr.nodes)
    for i in range(len(gr.nodes)):
        if single[i] and not gr.output_ports[i][0] and len(gr.consumers[i][0]) == 1:
            m = gr.consumers[i][0][0][0]
            if single[m]:
                succ[i] = m
    return succ


def _canonical_order(gr: _Graph) -> tuple[list[int], list[int | None]]:
    """Kahn's algorithm with chain continuation first, then a name- and file-order-independent key.

    Returns the order and each node's chain successor (:func:`_chain_successors`).
    """
    topo = _file_topo_order(gr)
    colour = _downstream_ranks(gr)
    whole = _downstream_hashes(gr, topo)
    succ = _chain_successors(gr)
    n = len(gr.nodes)
    indeg = [sum(1 for a in gr.args[i] if a[0] == "v") for i in range(n)]
    step = [0] * n
    done = [False] * n
    heap: list[tuple] = []

    def push(i: int) -> None:
        refs = []
        latest = -2
        for a in gr.args[i]:
            if a[0] == "v":
                refs.append((2, step[a[1]], a[2]))
                latest = max(latest, step[a[1]])
            elif a[0] == "i":
                refs.append((1, a[1], 0))
                latest = max(latest, -1)
            else:
                refs.append((0, 0, 0))
        heapq.heappush(heap, (-latest, gr.labels[i], tuple(refs), colour[i], whole[i], i))

    for i in range(n):
        if indeg[i] == 0:
            push(i)
    order: list[int] = []
    forced: int | None = None
    while len(order) < n:
        if forced is not None:
            i, forced = forced, None
        else:
            while True:
                i = heapq.heappop(heap)[-1]
                if not done[i]:
                    break
        done[i] = True
        step[i] = len(order)
        order.append(i)
        for port in gr.consumers[i]:
            for c, _ in port:
                indeg[c] -= 1
                if indeg[c] == 0:
                    push(c)
        forced = succ[i]
    return order, succ


# --- lines --------------------------------------------------------------------------------------------------------

# A line is a list of pieces: a string, ("ref", id) or ("def", id, shape).
_Line = list


def _build_lines(model: onnx.ModelProto, shapes_out: dict[str, str] | None = None) -> list[_Line]:
    gr = _analyse(model)
    order, succ = _canonical_order(gr)
    shapes = _infer_shapes(model, [gr.nodes[i] for i in order])
    if shapes_out is not None:
        shapes_out.update(shapes)
    input_names = ["Input"] if len(gr.graph_inputs) == 1 else [f"Input{k + 1}" for k in range(len(gr.graph_inputs))]
    input_text = [f"{input_names[k]}:{shapes.get(name, '*')}" for k, name in enumerate(gr.graph_inputs)]
    ids: dict[tuple[int, int], int] = {}

    def ref(a: _Arg) -> Any:
        if a[0] == "v":
            return ("ref", ids[(a[1], a[2])])
        if a[0] == "i":
            return input_text[a[1]]
        if a[0] == "c":
            return a[1]
        return "None"

    def call(i: int, pieces: list[Any]) -> list[Any]:
        out: list[Any] = [gr.ops[i]]
        if pieces is not None:
            out.append("(")
            for k, p in enumerate(pieces):
                if k:
                    out.append(", ")
                out.append(p)
            out.append(")")
        out.append(gr.attrs[i])
        return out

    lines: list[_Line] = []
    pos = 0
    while pos < len(order):
        run = [order[pos]]
        while pos + len(run) < len(order) and succ[run[-1]] == order[pos + len(run)]:
            run.append(order[pos + len(run)])
        pos += len(run)
        line: _Line = call(run[0], [ref(a) for a in gr.args[run[0]]])
        for prev, i in pairwise(run):
            (slot,) = [s for s, a in enumerate(gr.args[i]) if a[0] == "v" and a[1] == prev]
            pieces = [ref(a) if s != slot else "_" for s, a in enumerate(gr.args[i])]
            if slot == 0:
                pieces = pieces[1:] or None
            line += [" --> "] + call(i, pieces)
        last = run[-1]
        if gr.outputs[last]:
            line.append(" --> ")
            for p, name in enumerate(gr.outputs[last]):
                if p:
                    line.append(", ")
                if not name:
                    line.append("None")
                    continue
                ids[(last, p)] = len(ids) + 1
                line.append(("def", ids[(last, p)], shapes.get(name, "*")))
        lines.append(line)
    for k, a in enumerate(gr.graph_outputs):
        name = model.graph.output[k].name
        lines.append(["Output(", ref(a), ") --> ", shapes.get(name, "*")])
    return lines


def _render_absolute(line: _Line) -> str:
    parts = []
    for p in line:
        if isinstance(p, str):
            parts.append(p)
        elif p[0] == "ref":
            parts.append(f"V{p[1]}")
        else:
            parts.append(f"V{p[1]}:{p[2]}")
    return "".join(parts)


def _render_relative(line: _Line, defined_before: int) -> str:
    parts = []
    for p in line:
        if isinstance(p, str):
            parts.append(p)
        elif p[0] == "ref":
            parts.append(f"V-{defined_before + 1 - p[1]}")
        else:
            parts.append(f"V+{p[1] - defined_before}:{p[2]}")
    return "".join(parts)


def _compress(lines: list[str], indent: str = "") -> list[str]:
    """Collapse back-to-back repeats of blocks of 1..``_MAX_PERIOD`` lines (see the module docstring)."""
    intern: dict[str, int] = {}
    code = [intern.setdefault(s, len(intern)) for s in lines]
    n = len(code)
    memo: dict[int, tuple[int, int]] = {}

    def best(i: int) -> tuple[int, int]:
        """(period, repeats) of the repeat starting at ``i`` that saves the most lines; (1, 1) if none."""
        if i in memo:
            return memo[i]
        found = (1, 1)
        for p in range(1, min(_MAX_PERIOD, (n - i) // 2) + 1):
            block = code[i:i + p]
            r = 1
            while i + (r + 1) * p <= n and code[i + r * p:i + (r + 1) * p] == block:
                r += 1
            if r > 1 and p * (r - 1) > found[0] * (found[1] - 1):
                found = (p, r)
        memo[i] = found
        return found

    out: list[str] = []
    i = 0
    while i < n:
        p, r = best(i)
        saving = p * (r - 1)
        if r > 1 and not any(q * (s - 1) > saving for q, s in (best(j) for j in range(i + 1, i + p * r))):
            if p == 1:
                out.append(f"{indent}{r} x [{lines[i]}]")
            else:
                out.append(f"{indent}{r} x [")
                out.extend(_compress(lines[i:i + p], indent + "  "))
                out.append(f"{indent}]")
            i += p * r
        else:
            out.append(indent + lines[i])
            i += 1
    return out


# --- public API ---------------------------------------------------------------------------------------------------


def encode_lines(model: ModelLike, *, variant: str = "chain") -> list[str]:
    """The text of ``model`` as a list of lines (see the module docstring for the rules).

    Args:
        model: a file path, the serialized bytes, or an ``onnx.ModelProto`` (not modified).
        variant: ``"chain"`` (one line per chain of nodes) or ``"compact"`` (relative value ids, repeated lines
            and blocks collapsed into ``n x [...]``).

    Raises:
        OnnxTextError: the model cannot be read or its graph is not a valid DAG.
        ValueError: unknown ``variant``.
    """
    return encode_with_shapes(model, variant=variant)[0]


def encode_with_shapes(model: ModelLike, *, variant: str = "chain") -> tuple[list[str], dict[str, str]]:
    """:func:`encode_lines` and the inferred shape text of every value (``{name: "?x16x8x8"}``), from one
    shape inference (the predictor computes FLOPs from these shapes)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    shapes: dict[str, str] = {}
    lines = _build_lines(load_model(model), shapes)
    return _render(lines, variant), shapes


def _render(lines: list[_Line], variant: str) -> list[str]:
    if variant == "chain":
        return [_render_absolute(line) for line in lines]
    relative = []
    defined = 0
    for line in lines:
        relative.append(_render_relative(line, defined))
        defined += sum(1 for p in line if not isinstance(p, str) and p[0] == "def")
    return _compress(relative)


def encode_onnx(model: ModelLike, *, variant: str = "chain") -> str:
    """The text of ``model``: ``"\\n".join(encode_lines(model, variant=variant))``."""
    return "\n".join(encode_lines(model, variant=variant))


def graph_stats(model: ModelLike) -> GraphStats:
    """Node count, depth, parameter count and op histogram of ``model`` (no shape inference; cheap)."""
    gr = _analyse(load_model(model))
    topo = _file_topo_order(gr)
    longest = [0] * len(gr.nodes)
    for i in topo:
        preds = [longest[a[1]] for a in gr.args[i] if a[0] == "v"]
        longest[i] = 1 + max(preds, default=0)
    hist: dict[str, int] = {}
    for op in gr.ops:
        hist[op] = hist.get(op, 0) + 1
    return GraphStats(num_nodes=len(gr.nodes), depth=max(longest), num_params=gr.num_params,
                      op_histogram=dict(sorted(hist.items())))
