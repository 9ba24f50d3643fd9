"""Texts of the small parts of a graph: numbers, constant tensors, attributes and shapes (rules 3 and 6).

The functions that read a protobuf message take the encoder's :class:`~predictors.onnx_text.memo.Memo`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, numpy_helper

from predictors.onnx_text.errors import OnnxTextError
from predictors.onnx_text.memo import Memo

MAX_CONST_ELEMENTS = 8      # integer tensors up to this size are written by value
INT_TYPES = frozenset({TensorProto.INT8, TensorProto.INT16, TensorProto.INT32, TensorProto.INT64,
                       TensorProto.UINT8, TensorProto.UINT16, TensorProto.UINT32, TensorProto.UINT64,
                       TensorProto.BOOL})
serialize_attribute = AttributeProto.SerializeToString
serialize_type = onnx.TypeProto.SerializeToString


def fmt_float(x: float) -> str:
    return format(float(x), ".6g")


def fmt_scalar(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(int(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return fmt_float(v)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


def fmt_nested(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ",".join(fmt_nested(x) for x in v) + "]"
    return fmt_scalar(v)


def dims_text(dims: Any) -> str:
    return "[" + ",".join([str(int(d)) for d in dims]) + "]"


def numel(dims: Any) -> int:
    n = 1
    for d in dims:
        n *= int(d)
    return n


def value_text(array: np.ndarray) -> str:
    """``Const(v)`` for a rank-0 array, else ``Const[...]`` with nested brackets."""
    if array.ndim == 0:
        return f"Const({fmt_scalar(array.item())})"
    return "Const" + fmt_nested(array.tolist())


def tensor_text(t: TensorProto, memo: Memo) -> tuple[str, int]:
    """The text of a constant tensor and the number of elements it contributes to ``num_params``.

    Written by value (``Const...``): a rank-0 or one-element tensor of any type (NAS-Bench-201's ``none`` edge is
    ``Mul(x, 0)``: its zero must read as a zero, not as a learnable scale) and an integer or bool tensor of at
    most ``MAX_CONST_ELEMENTS`` elements. A ``Param[...]`` contributes all its elements.
    """
    text, n, _ = tensor_info(t, memo)
    return text, n


def tensor_info(t: TensorProto, memo: Memo) -> tuple[str, int, tuple[int, ...]]:
    """:func:`tensor_text` and the tensor's (type, dims...).

    Memoised: a ``Param`` on (type, dims), a small tensor written by value on its serialized content (name
    cleared), unless its data lies in an external file.
    """
    dims = t.dims[:]
    key = (t.data_type, *dims)
    hit = memo.param.get(key)
    if hit is not None:
        return hit
    n = 1
    for d in dims:
        n *= d
    if n == 0:
        return "Const[]", 0, key
    if not dims or n == 1 or (n <= MAX_CONST_ELEMENTS and key[0] in INT_TYPES):
        content = None
        if t.data_location != TensorProto.EXTERNAL:
            unnamed = TensorProto()
            unnamed.CopyFrom(t)
            unnamed.ClearField("name")
            content = unnamed.SerializeToString()
            hit = memo.value.get(content)
            if hit is not None:
                return hit
        try:
            info = value_text(numpy_helper.to_array(t)), 0, key
        except Exception:  # noqa: BLE001 - external, stripped or malformed data: write its dims
            info = "Param" + dims_text(dims), n, key
        return info if content is None else memo.put(memo.value, content, len(content), info)
    return memo.put(memo.param, key, 0, ("Param" + dims_text(dims), n, key))


def array_text(array: np.ndarray) -> tuple[str, int]:
    if array.size == 0:
        return "Const[]", 0
    if array.ndim == 0 or array.size == 1 or ((array.dtype.kind in "iub" or array.dtype.kind in "OSU") and
                                              array.size <= MAX_CONST_ELEMENTS):
        return value_text(array), 0
    return "Param" + dims_text(array.shape), int(array.size)


def constant_node_text(node: onnx.NodeProto, memo: Memo) -> tuple[str, int]:
    """The text of a ``Constant`` node's value."""
    for a in node.attribute:
        if a.name == "value":
            return tensor_text(a.t, memo)
        if a.name == "sparse_value":
            return "Param" + dims_text(a.sparse_tensor.dims), numel(a.sparse_tensor.dims)
        if a.name == "value_float":
            return array_text(np.array(a.f, dtype=np.float32))
        if a.name == "value_floats":
            return array_text(np.array(list(a.floats), dtype=np.float32))
        if a.name == "value_int":
            return array_text(np.array(a.i, dtype=np.int64))
        if a.name == "value_ints":
            return array_text(np.array(list(a.ints), dtype=np.int64))
        if a.name == "value_string":
            return f"Const({a.s.decode('utf-8', 'replace')})", 0
        if a.name == "value_strings":
            return "Const" + fmt_nested(list(a.strings)), 0
    raise OnnxTextError("Constant node without a value attribute")


def graph_summary(g: onnx.GraphProto) -> str:
    return f"Graph(nodes={len(g.node)},ops=[{','.join(sorted({n.op_type for n in g.node}))}])"


def attr_text(a: AttributeProto, memo: Memo) -> str:
    t = a.type
    if t == AttributeProto.FLOAT:
        return fmt_float(a.f)
    if t == AttributeProto.INT:
        return str(a.i)
    if t == AttributeProto.STRING:
        return a.s.decode("utf-8", "replace")
    if t == AttributeProto.TENSOR:
        return tensor_text(a.t, memo)[0]
    if t == AttributeProto.GRAPH:
        return graph_summary(a.g)
    if t == AttributeProto.SPARSE_TENSOR:
        return "Param" + dims_text(a.sparse_tensor.dims)
    if t == AttributeProto.TYPE_PROTO:
        return str(a.tp).replace("\n", " ").strip()
    if t == AttributeProto.FLOATS:
        return "[" + ",".join(fmt_float(x) for x in a.floats) + "]"
    if t == AttributeProto.INTS:
        return "[" + ",".join(str(x) for x in a.ints) + "]"
    if t == AttributeProto.STRINGS:
        return "[" + ",".join(s.decode("utf-8", "replace") for s in a.strings) + "]"
    if t == AttributeProto.TENSORS:
        return "[" + ",".join(tensor_text(x, memo)[0] for x in a.tensors) + "]"
    if t == AttributeProto.GRAPHS:
        return "[" + ",".join(graph_summary(g) for g in a.graphs) + "]"
    if t == AttributeProto.SPARSE_TENSORS:
        return "[" + ",".join("Param" + dims_text(x.dims) for x in a.sparse_tensors) + "]"
    if t == AttributeProto.TYPE_PROTOS:
        return "[" + ",".join(str(x).replace("\n", " ").strip() for x in a.type_protos) + "]"
    if a.ref_attr_name:
        return "@" + a.ref_attr_name
    return ""


def _name(a: AttributeProto) -> str:
    name = a.name
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else name


def attrs_text(attributes: Any, memo: Memo) -> str:
    """``{name=value,...}`` for a node's attributes (rule 6), or ``""`` for none; memoised."""
    if not attributes:
        return ""
    key = tuple(map(serialize_attribute, attributes))
    text = memo.attrs.get(key)
    if text is None:
        items = sorted((_name(a), attr_text(a, memo)) for a in attributes)
        text = memo.put(memo.attrs, key, sum(map(len, key)),
                         "{" + ",".join(f"{k}={v}" for k, v in items) + "}")
    return text


def shape_text(tp: onnx.TypeProto, memo: Memo) -> str:
    """``1x16x32x32``, ``?`` for a dynamic dim, ``scalar`` for rank 0, ``*`` for an unknown shape; memoised."""
    key = serialize_type(tp)
    text = memo.shape.get(key)
    if text is None:
        if not tp.HasField("tensor_type") or not tp.tensor_type.HasField("shape"):
            text = "*"
        elif len(tp.tensor_type.shape.dim) == 0:
            text = "scalar"
        else:
            text = "x".join(str(d.dim_value) if d.HasField("dim_value") else "?" for d in tp.tensor_type.shape.dim)
        memo.put(memo.shape, key, len(key), text)
    return text

