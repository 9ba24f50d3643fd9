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
from itertools import accumulate
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


# Memo tables of texts that depend only on a small protobuf message. Reading a message field by field from
# Python costs far more than serializing it, and the same attribute sets, shapes and constants recur across the
# nodes of a network and across networks, so the texts are kept, keyed by the message's serialized bytes (equal
# bytes are equal messages, hence equal texts), or by the (type, dims...) of a tensor whose text is its dims.
# Each table is cleared when it reaches ``_MEMO_ENTRIES``; keys of more than ``_MEMO_KEY_BYTES`` are not kept.
_MEMO_ENTRIES = 4096
_MEMO_KEY_BYTES = 1024
_ATTRS_MEMO: dict[tuple[bytes, ...], str] = {}                          # attributes -> "{...}"
_SHAPE_MEMO: dict[bytes, str] = {}                                      # TypeProto -> "?x16x8x8"
_VALUE_MEMO: dict[bytes, tuple[str, int, tuple[int, ...]]] = {}         # unnamed small tensor -> _tensor_info
_PARAM_MEMO: dict[tuple[int, ...], tuple[str, int, tuple[int, ...]]] = {}   # (type, dims...) -> _tensor_info
_STUB_MEMO: dict[tuple[int, ...], bytes] = {}                           # (type, dims...) -> unnamed stub tensor
_serialize_attribute = AttributeProto.SerializeToString
_serialize_type = onnx.TypeProto.SerializeToString


def _memo_put(memo: dict, key: Any, size: int, value: Any) -> Any:
    """Keep ``value`` under ``key`` (of ``size`` bytes) in ``memo``, within the limits above; return it."""
    if size <= _MEMO_KEY_BYTES:
        if len(memo) >= _MEMO_ENTRIES:
            memo.clear()
        memo[key] = value
    return value


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
    return "[" + ",".join([str(int(d)) for d in dims]) + "]"


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
    """The text of a constant tensor and the number of elements it contributes to ``num_params``.

    A tensor written by value (``Const...``) has at most ``_MAX_CONST_ELEMENTS`` elements; a ``Param[...]``
    contributes all its elements.
    """
    text, n, _ = _tensor_info(t)
    return text, n


def _tensor_info(t: TensorProto) -> tuple[str, int, tuple[int, ...]]:
    """:func:`_tensor_text` and the tensor's (type, dims...).

    Memoised: a ``Param`` on (type, dims), a small tensor written by value on its serialized content (name
    cleared), unless its data lies in an external file.
    """
    dims = t.dims[:]
    key = (t.data_type, *dims)
    hit = _PARAM_MEMO.get(key)
    if hit is not None:
        return hit
    n = 1
    for d in dims:
        n *= d
    if n == 0:
        return "Const[]", 0, key
    if not dims or (n <= _MAX_CONST_ELEMENTS and key[0] in _INT_TYPES):
        content = None
        if t.data_location != TensorProto.EXTERNAL:
            unnamed = TensorProto()
            unnamed.CopyFrom(t)
            unnamed.ClearField("name")
            content = unnamed.SerializeToString()
            hit = _VALUE_MEMO.get(content)
            if hit is not None:
                return hit
        try:
            info = _value_text(numpy_helper.to_array(t)), 0, key
        except Exception:  # noqa: BLE001 - external, stripped or malformed data: write its dims
            info = "Param" + _dims_text(dims), n, key
        return info if content is None else _memo_put(_VALUE_MEMO, content, len(content), info)
    return _memo_put(_PARAM_MEMO, key, 0, ("Param" + _dims_text(dims), n, key))


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


def _attrs_text(attributes: Any) -> str:
    """``{name=value,...}`` for a node's attributes (rule 6), or ``""`` for none; memoised."""
    if not attributes:
        return ""
    key = tuple(map(_serialize_attribute, attributes))
    text = _ATTRS_MEMO.get(key)
    if text is None:
        items = sorted((a.name, _attr_text(a)) for a in attributes)
        text = _memo_put(_ATTRS_MEMO, key, sum(map(len, key)),
                         "{" + ",".join(f"{k}={v}" for k, v in items) + "}")
    return text


def _shape_text(tp: onnx.TypeProto) -> str:
    """``1x16x32x32``, ``?`` for a dynamic dim, ``scalar`` for rank 0, ``*`` for an unknown shape; memoised."""
    key = _serialize_type(tp)
    text = _SHAPE_MEMO.get(key)
    if text is None:
        if not tp.HasField("tensor_type") or not tp.tensor_type.HasField("shape"):
            text = "*"
        elif len(tp.tensor_type.shape.dim) == 0:
            text = "scalar"
        else:
            text = "x".join(str(d.dim_value) if d.HasField("dim_value") else "?" for d in tp.tensor_type.shape.dim)
        _memo_put(_SHAPE_MEMO, key, len(key), text)
    return text


def _varint(n: int) -> bytes:
    """``n >= 0`` in protobuf's base-128 varint encoding."""
    digits = bytearray()
    while n > 0x7F:
        digits.append(n & 0x7F | 0x80)
        n >>= 7
    digits.append(n)
    return bytes(digits)


_VARINTS = [_varint(n) for n in range(2048)]   # the common lengths, encoded once


def _framed(number: int, payloads: Any) -> list[bytes]:
    """The pieces of a length-delimited protobuf field (a string or a message) holding each payload in turn, in
    wire format: the tag ``number << 3 | 2`` (one byte, as every field number used here is below 16), the
    payload's length as a varint, the payload."""
    tag = bytes((number << 3 | 2,))
    out: list[bytes] = []
    for payload in payloads:
        n = len(payload)
        out += (tag, _VARINTS[n] if n < 2048 else _varint(n), payload)
    return out


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field in wire format (see :func:`_framed`)."""
    return b"".join(_framed(number, (payload,)))


def _light_model(model: onnx.ModelProto, gr: _Graph, order: list[int]) -> bytes:
    """The serialized weight-free copy of ``model`` that shape inference runs on.

    It holds the ``Constant`` nodes, then the other nodes in ``order`` (a topological order: inference needs
    one, and the file may not be in one); initializers with more than ``_INFER_KEEP_ELEMENTS`` elements are
    replaced by stubs that keep only their name, type and dims. It is written in protobuf's wire format
    directly, from the serialized parts: a message is the concatenation of its fields in any order, and the
    elements of a repeated field are read in the order they come. That avoids copying every node into a new
    ModelProto and serializing it again.
    """
    g = model.graph
    nodes = gr.nodes
    initializers = []
    for t, name, n, key in gr.initializers:
        if n <= _INFER_KEEP_ELEMENTS:  # n is 0 for a tensor written by value: small, kept
            initializers.append(t.SerializeToString())
        else:
            stub = _STUB_MEMO.get(key)
            if stub is None:
                stub = _memo_put(_STUB_MEMO, key, 0, TensorProto(data_type=key[0], dims=key[1:]).SerializeToString())
            initializers.append(stub + _field(8, name.encode()))                           # TensorProto.name
    graph = _framed(1, [node.SerializeToString() for node in gr.constant_nodes])        # GraphProto.node
    graph += _framed(1, [nodes[i].SerializeToString() for i in order])
    graph += _framed(5, initializers)                                                   # GraphProto.initializer
    graph += _framed(11, [vi.SerializeToString() for vi in g.input])                    # GraphProto.input
    graph += _framed(12, [vi.SerializeToString() for vi in g.output])                   # GraphProto.output
    graph += _framed(13, [vi.SerializeToString() for vi in g.value_info])               # GraphProto.value_info
    header = onnx.ModelProto(ir_version=model.ir_version, opset_import=model.opset_import,
                             functions=model.functions)
    return header.SerializeToString() + _field(7, b"".join(graph))                     # ModelProto.graph


def _infer_shapes(model: onnx.ModelProto, gr: _Graph, order: list[int]) -> dict[str, str]:
    """Shape text per value name, from shape inference on a weight-free copy (:func:`_light_model`), or from the
    declared shapes alone when inference fails."""
    g = model.graph
    light = _light_model(model, gr, order)
    try:
        inferred = onnx.shape_inference.infer_shapes(light).graph
    except Exception:  # noqa: BLE001 - invalid or unsupported: the declared value_info is all we have
        inferred = g
    shapes: dict[str, str] = {}
    memo_get = _SHAPE_MEMO.get
    for source in (g.value_info, g.input, g.output, inferred.value_info, inferred.input, inferred.output):
        for vi in source:
            tp = vi.type
            text = memo_get(_serialize_type(tp)) or _shape_text(tp)   # the memo inlined: most shapes recur
            name = vi.name
            if text != "*" or name not in shapes:
                shapes[name] = text
    return shapes


# --- graph analysis -----------------------------------------------------------------------------------------------

# An argument slot: ("v", node, port) a node's output, ("i", k) graph input k, ("c", text) a constant,
# ("n",) an absent optional input.
_Arg = tuple
_ABSENT: _Arg = ("n",)


def _literal(a: _Arg) -> str:
    """An argument's text in a node's label: a constant's text, ``None``, or ``*`` for an activation."""
    kind = a[0]
    return a[1] if kind == "c" else "None" if kind == "n" else "*"


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
    indegree: list[int]                  # [node] -> number of arguments that are node outputs ("v")
    active: list[int]                    # [node] -> number of arguments that are node outputs or graph inputs
    constant_nodes: list[onnx.NodeProto]  # the Constant nodes, in file order
    # per graph initializer, in file order: (tensor, name, its num_params (0 for one written by value, which has
    # at most _MAX_CONST_ELEMENTS elements), (type, dims...))
    initializers: list[tuple[TensorProto, str, int, tuple[int, ...]]]


def _analyse(model: onnx.ModelProto) -> _Graph:
    """Read the graph once into plain Python lists (protobuf field access is slow), checking that it is valid."""
    g = model.graph
    consts: dict[str, _Arg] = {}        # name -> ("c", text)
    num_params = 0
    initializers = []
    for t in g.initializer:
        text, n, key = _tensor_info(t)
        name = t.name
        consts[name] = ("c", text)
        num_params += n
        initializers.append((t, name, n, key))
    for st in g.sparse_initializer:
        consts[st.values.name] = ("c", "Param" + _dims_text(st.dims))
        num_params += _numel(st.dims)
    graph_inputs = [name for name in (vi.name for vi in g.input) if name not in consts]
    defined: dict[str, _Arg] = {name: ("i", k) for k, name in enumerate(graph_inputs)}
    if len(defined) != len(graph_inputs):
        raise OnnxTextError("graph input names are not unique")

    nodes: list[onnx.NodeProto] = []
    ops: list[str] = []
    attrs: list[str] = []
    inputs: list[list[str]] = []
    outputs: list[list[str]] = []
    constant_nodes: list[onnx.NodeProto] = []
    attrs_get = _ATTRS_MEMO.get
    for node in g.node:
        op_type = node.op_type
        domain = node.domain
        default_domain = domain in _DEFAULT_DOMAINS
        if op_type == "Constant" and default_domain:      # folded into the arguments of its consumers
            constant_nodes.append(node)
            for out in node.output:
                if out:
                    if out in consts or out in defined:
                        raise OnnxTextError(f"tensor {out!r} is defined twice")
                    text, n = _constant_node_text(node)
                    consts[out] = ("c", text)
                    num_params += n
            continue
        nodes.append(node)
        ops.append(op_type if default_domain else f"{domain}.{op_type}")   # rule 6: domain.Op
        attributes = node.attribute
        attrs.append((attrs_get(tuple(map(_serialize_attribute, attributes))) or _attrs_text(attributes))
                     if attributes else "")   # the memo of _attrs_text inlined
        ins = node.input[:]
        while ins and not ins[-1]:
            ins.pop()
        inputs.append(ins)
        outs = node.output[:]
        while outs and not outs[-1]:
            outs.pop()
        outputs.append(outs)
    if not nodes:
        raise OnnxTextError("ONNX graph has no nodes besides Constant nodes")

    for i, outs in enumerate(outputs):
        for p, out in enumerate(outs):
            if not out:
                continue
            if out in defined or out in consts:
                raise OnnxTextError(f"tensor {out!r} is defined twice (node {i}, {nodes[i].op_type})")
            defined[out] = ("v", i, p)

    def resolve(name: str, where: str) -> _Arg:
        if not name:
            return _ABSENT
        if name in defined:
            return defined[name]
        if name in consts:
            return consts[name]
        raise OnnxTextError(f"{where} uses tensor {name!r}, which no node, initializer or graph input defines")

    args: list[list[_Arg]] = []
    labels: list[str] = []
    indegree: list[int] = []
    active: list[int] = []
    consumers: list[list[list[tuple[int, int]]]] = [[[] for _ in outs] for outs in outputs]
    lookup = consts | defined           # as resolve (the two are disjoint), without the error
    lookup[""] = _ABSENT
    lookup_get = lookup.get
    for i, ins in enumerate(inputs):
        row = list(map(lookup_get, ins))
        if None in row:
            resolve(ins[row.index(None)], f"node {i} ({nodes[i].op_type})")  # raises
        n_v = n_i = 0
        for slot, a in enumerate(row):
            kind = a[0]
            if kind == "v":
                consumers[a[1]][a[2]].append((i, slot))
                n_v += 1
            elif kind == "i":
                n_i += 1
        args.append(row)
        labels.append(ops[i] + "(" + ", ".join([a[1] if a[0] == "c" else "None" if a[0] == "n" else "*" for a in row])
                      + ")" + attrs[i])   # as _literal
        indegree.append(n_v)
        active.append(n_v + n_i)

    output_ports: list[list[tuple[int, ...]]] = [[()] * len(outs) for outs in outputs]
    graph_outputs = []
    for k, vi in enumerate(g.output):
        a = resolve(vi.name, f"graph output {k}")
        graph_outputs.append(a)
        if a[0] == "v":
            output_ports[a[1]][a[2]] += (k,)
    return _Graph(nodes, ops, attrs, args, outputs, labels, consumers, output_ports, graph_inputs, graph_outputs,
                  num_params, indegree, active, constant_nodes, initializers)


def _file_topo_order(gr: _Graph) -> list[int]:
    """Any topological order (file order among ready nodes); raises on a cycle."""
    n = len(gr.nodes)
    indeg = gr.indegree[:]
    consumers = gr.consumers
    ready = [i for i in range(n) if indeg[i] == 0]
    order = []
    while ready:
        i = ready.pop()
        order.append(i)
        for port in consumers[i]:
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
    on nothing but ops, attributes, constants and wiring. A node's signature is its colour followed by, per
    output port, the graph outputs it feeds and the sorted (slot, colour) of its consumers; its new colour is
    the rank of its signature among all distinct signatures of the round.

    The rounds are computed class by class, which gives the same colours with much less work:

    * Colours are dense ranks and a signature starts with the old colour, so a node's new colour is its old
      colour, plus the number of extra parts the classes of lower colours split into, plus the rank of its
      signature within its own class.
    * A class of one node cannot split, so only classes of two or more nodes are kept (``multi``).
    * The members of a class had equal signatures under the previous colours (from the second round on).
      When a class splits, call its members outside its largest part *moved*. For a node none of whose
      consumers moved, the new colours of its consumers follow from their previous colours by one map (a class
      that did not split to its colour, a class that split to its largest part), so all such members of a
      class still have equal signatures: it is built once, for one of them. A class without a member that has
      a moved consumer does not split, and no signature of it is built.
    * When no class splits, every colour stays the same, and so it stays in all later rounds: the loop stops.
    """
    labels, args = gr.labels, gr.args
    n = len(labels)
    label_rank = {lab: r for r, lab in enumerate(sorted(set(labels)))}
    colour = [label_rank[lab] for lab in labels]
    n_colours = len(label_rank)
    multi: dict[int, list[int]] = {}
    for i, c in enumerate(colour):
        multi.setdefault(c, []).append(i)
    multi = {c: members for c, members in multi.items() if len(members) > 1}
    output_ports, consumers = gr.output_ports, gr.consumers
    dirty: set[int] | None = None   # nodes with a consumer that moved last round; None: all nodes

    def tail(i: int) -> tuple:
        """Node ``i``'s signature without its own colour. A consumer's (slot, colour) is written as the int
        ``slot * n + colour``, which orders like the pair (colours are below ``n``)."""
        out = []
        for outs, port in zip(output_ports[i], consumers[i]):
            if len(port) == 1:
                c, s = port[0]
                out.append((outs, (s * n + colour[c],)))
            else:
                out.append((outs, tuple(sorted([s * n + colour[c] for c, s in port]))))
        return tuple(out)

    for _ in range(_DOWNSTREAM_HOPS):
        extra = [0] * n_colours             # [colour] -> how many more parts than one its class splits into
        splits: list[tuple[int, list[int], list[int]]] = []   # (colour, members, rank of each in its class)
        for c, members in multi.items():
            if dirty is None:
                tails = [tail(i) for i in members]
            elif dirty.isdisjoint(members):
                continue
            else:
                common = None               # the signature shared by the members without a moved consumer
                tails = []
                for i in members:
                    if i in dirty:
                        tails.append(tail(i))
                    else:
                        if common is None:
                            common = tail(i)
                        tails.append(common)
            distinct = sorted(set(tails))
            if len(distinct) > 1:
                rank = {t: r for r, t in enumerate(distinct)}
                extra[c] = len(distinct) - 1
                splits.append((c, members, [rank[t] for t in tails]))
        if not splits:
            break
        shift = list(accumulate(extra, initial=0))
        new = [c + shift[c] for c in colour]
        next_multi = {c + shift[c]: members for c, members in multi.items() if not extra[c]}
        moved: list[int] = []
        for c, members, ranks in splits:
            parts: dict[int, list[int]] = {}
            for i, r in zip(members, ranks):
                parts.setdefault(r, []).append(i)
            largest = max(parts.values(), key=len)
            for r, part in parts.items():
                for i in part:
                    new[i] += r
                if len(part) > 1:
                    next_multi[c + shift[c] + r] = part
                if part is not largest:
                    moved.extend(part)
        colour, n_colours, multi = new, n_colours + shift[-1], next_multi
        dirty = {a[1] for i in moved for a in args[i] if a[0] == "v"}
    return colour


def _downstream_hashes(gr: _Graph, topo: list[int]) -> list[int]:
    """A stable 64-bit hash of each node's whole downstream structure (label, consumers and their slots, graph
    outputs, recursively). Compared only after the bounded, order-preserving ranks of
    :func:`_downstream_ranks` tie, to split nodes whose difference lies farther downstream."""
    labels, consumers, output_ports = gr.labels, gr.consumers, gr.output_ports
    h = [0] * len(labels)
    for i in reversed(topo):
        parts = [labels[i]]
        for p, port in enumerate(consumers[i]):
            parts.append(f"|{p}:{output_ports[i][p]}:" + ",".join(sorted([f"{s}.{h[c]}" for c, s in port])))
        h[i] = int.from_bytes(hashlib.blake2b("".join(parts).encode(), digest_size=8).digest(), "big")
    return h


def _chain_successors(gr: _Graph) -> list[int | None]:
    """For each node, the node that continues its chain (rule 5), or None."""
    outputs, active, consumers, output_ports = gr.outputs, gr.active, gr.consumers, gr.output_ports
    single = [len(outs) == 1 and k == 1 for outs, k in zip(outputs, active)]
    succ: list[int | None] = [None] * len(single)
    for i, is_single in enumerate(single):
        if is_single and not output_ports[i][0] and len(consumers[i][0]) == 1:
            m = consumers[i][0][0][0]
            if single[m]:
                succ[i] = m
    return succ


def _canonical_order(gr: _Graph) -> tuple[list[int], list[int | None]]:
    """Kahn's algorithm with chain continuation first, then a name- and file-order-independent key.

    Among the ready nodes the smallest key ``(-latest, label, input refs, downstream colour, whole downstream
    hash, file position)`` goes first. The heap holds the key without colour and hash: when several ready nodes
    tie on everything before them, they are taken off the heap together, and the colour, then the hash decide.
    Ties are rare outside repeated branches, so the colours (:func:`_downstream_ranks`) are computed the first
    time one occurs, and the hashes (:func:`_downstream_hashes`) the first time colours tie. A cycle leaves
    nodes that never become ready, and :func:`_file_topo_order` then raises the error. Returns the order and
    each node's chain successor (:func:`_chain_successors`).
    """
    succ = _chain_successors(gr)
    colour: list[int] = []
    whole: list[int] = []
    labels, args, consumers = gr.labels, gr.args, gr.consumers
    n = len(labels)
    indeg = gr.indegree[:]
    step = [0] * n
    done = [False] * n
    heap: list[tuple] = []
    heappush, heappop = heapq.heappush, heapq.heappop

    def push(i: int) -> None:
        refs = []
        latest = -2
        for a in args[i]:
            kind = a[0]
            if kind == "v":
                s = step[a[1]]
                refs.append((2, s, a[2]))
                latest = max(latest, s)
            elif kind == "i":
                refs.append((1, a[1], 0))
                latest = max(latest, -1)
            else:
                refs.append((0, 0, 0))
        heappush(heap, (-latest, labels[i], tuple(refs), i))

    def pop() -> int:
        while True:
            if not heap:  # nodes are left but none is ready: they lie on or after a cycle
                _file_topo_order(gr)  # raises the error that says so
            entry = heappop(heap)
            i = entry[3]
            if not done[i]:
                break
        if heap:
            top = heap[0]
            if top[0] == entry[0] and top[1] == entry[1] and top[2] == entry[2]:
                return tie_break(entry)
        return i

    def tie_break(entry: tuple) -> int:
        key = entry[:3]
        tied = [entry[3]]
        while heap and heap[0][:3] == key:
            j = heappop(heap)[3]
            if not done[j]:
                tied.append(j)
        if len(tied) == 1:
            return tied[0]
        if not colour:
            colour.extend(_downstream_ranks(gr))
        lowest = min(colour[j] for j in tied)
        best_colour = [j for j in tied if colour[j] == lowest]
        if len(best_colour) == 1:
            best = best_colour[0]
        else:
            if not whole:
                whole.extend(_downstream_hashes(gr, _file_topo_order(gr)))  # (raises on a cycle)
            best = min(best_colour, key=lambda j: (whole[j], j))
        for j in tied:
            if j != best:
                heappush(heap, (*key, j))
        return best

    for i in range(n):
        if indeg[i] == 0:
            push(i)
    order: list[int] = []
    forced: int | None = None
    while len(order) < n:
        if forced is not None:
            i, forced = forced, None
        else:
            i = pop()
        done[i] = True
        step[i] = len(order)
        order.append(i)
        for port in consumers[i]:
            for c, _ in port:
                indeg[c] -= 1
                if indeg[c] == 0:
                    push(c)
        forced = succ[i]
    return order, succ


# --- lines --------------------------------------------------------------------------------------------------------

# A line is a list of pieces: a string (written as is), an int k (a use of value k, ``Vk``) or a tuple
# (k, shape) (the definition of value k, ``Vk:shape``). Only the two variants' value ids differ.
_Line = list


def _build_lines(model: onnx.ModelProto) -> tuple[list[_Line], dict[str, str]]:
    """The lines of ``model`` and the shape text of each value (see :func:`encode_with_shapes`)."""
    gr = _analyse(model)
    order, succ = _canonical_order(gr)
    shapes = _infer_shapes(model, gr, order)
    return _lines(gr, order, succ, shapes, [vi.name for vi in model.graph.output]), shapes


def _lines(gr: _Graph, order: list[int], succ: list[int | None], shapes: dict[str, str],
           graph_output_names: list[str]) -> list[_Line]:
    """The lines of the text (rules 2, 5 and 7), with value uses and definitions left as ids (see ``_Line``).

    Adjacent literal text is merged into one string, so a line alternates strings and value pieces.
    """
    get_shape = shapes.get
    input_names = ["Input"] if len(gr.graph_inputs) == 1 else [f"Input{k + 1}" for k in range(len(gr.graph_inputs))]
    input_text = [f"{input_names[k]}:{get_shape(name, '*')}" for k, name in enumerate(gr.graph_inputs)]
    ops, attrs, args, outputs = gr.ops, gr.attrs, gr.args, gr.outputs
    value_ids: list[list[int]] = [[0] * len(outs) for outs in outputs]   # [node][port] -> id once written
    n_values = 0
    lines: list[_Line] = []
    pos = 0
    n = len(order)
    while pos < n:
        # the first node of a chain, with all its arguments
        first = order[pos]
        line: _Line = []
        text = ops[first] + "("
        for slot, a in enumerate(args[first]):
            if slot:
                text += ", "
            kind = a[0]
            if kind == "v":
                line.append(text)
                line.append(value_ids[a[1]][a[2]])
                text = ""
            else:
                text += input_text[a[1]] if kind == "i" else a[1] if kind == "c" else "None"
        text += ")" + attrs[first]
        # the nodes that continue the chain: their only activation argument is the previous node's output
        last = first
        pos += 1
        while pos < n and succ[last] == order[pos]:
            i = order[pos]
            (slot,) = [s for s, a in enumerate(args[i]) if a[0] == "v" and a[1] == last]
            pieces = ["_" if s == slot else _literal(a) for s, a in enumerate(args[i])]
            if slot == 0:
                del pieces[0]
            text += " --> " + ops[i] + ("(" + ", ".join(pieces) + ")" if pieces or slot else "") + attrs[i]
            last = i
            pos += 1
        # the values the chain defines
        if outputs[last]:
            text += " --> "
            ids = value_ids[last]
            for p, name in enumerate(outputs[last]):
                if p:
                    text += ", "
                if not name:
                    text += "None"
                    continue
                n_values += 1
                ids[p] = n_values
                line.append(text)
                line.append((n_values, get_shape(name, "*")))
                text = ""
        line.append(text)
        lines.append(line)
    for a, name in zip(gr.graph_outputs, graph_output_names):
        kind = a[0]
        tail = ") --> " + get_shape(name, "*")
        if kind == "v":
            lines.append(["Output(", value_ids[a[1]][a[2]], tail])
        else:
            lines.append(["Output(" + (input_text[a[1]] if kind == "i" else _literal(a)) + tail])
    return lines


def _render_absolute(line: _Line) -> str:
    return "".join([p if p.__class__ is str else f"V{p}" if p.__class__ is int else f"V{p[0]}:{p[1]}"
                    for p in line])


def _render_relative(line: _Line, defined_before: int) -> str:
    parts = []
    for p in line:
        if isinstance(p, str):
            parts.append(p)
        elif isinstance(p, int):
            parts.append(f"V-{defined_before + 1 - p}")
        else:
            parts.append(f"V+{p[0] - defined_before}:{p[1]}")
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
    lines, shapes = _build_lines(load_model(model))
    return _render(lines, variant), shapes


def _render(lines: list[_Line], variant: str) -> list[str]:
    if variant == "chain":
        return [_render_absolute(line) for line in lines]
    relative = []
    defined = 0
    for line in lines:
        relative.append(_render_relative(line, defined))
        defined += sum(1 for p in line if isinstance(p, tuple))
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
