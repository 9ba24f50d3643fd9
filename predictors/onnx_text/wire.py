"""Protobuf wire format: the weight-free copy of a model that shape inference runs on, written from its
serialized parts, and the shapes read back from it (rule 1)."""

from __future__ import annotations

from typing import Any

import onnx
from onnx import TensorProto

from predictors.onnx_text.analysis import Graph
from predictors.onnx_text.memo import Memo
from predictors.onnx_text.shape_memo import KEEP_ELEMENTS, harvest, memo_shapes
from predictors.onnx_text.values import serialize_type, shape_text

#: initializers up to this size keep their data for shape inference (the memo of inference keys on that data)
INFER_KEEP_ELEMENTS = KEEP_ELEMENTS


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


def light_model(model: onnx.ModelProto, gr: Graph, order: list[int], memo: Memo) -> bytes:
    """The serialized weight-free copy of ``model`` that shape inference runs on.

    It holds the ``Constant`` nodes, then the other nodes in ``order`` (a topological order: inference needs
    one, and the file may not be in one); initializers with more than ``INFER_KEEP_ELEMENTS`` elements are
    replaced by stubs that keep only their name, type and dims. It is written in protobuf's wire format
    directly, from the serialized parts: a message is the concatenation of its fields in any order, and the
    elements of a repeated field are read in the order they come. That avoids copying every node into a new
    ModelProto and serializing it again.
    """
    g = model.graph
    nodes = gr.nodes
    initializers = []
    for t, name, n, key in gr.initializers:
        if n <= INFER_KEEP_ELEMENTS:  # n is 0 for a tensor written by value: small, kept
            initializers.append(t.SerializeToString())
        else:
            stub = memo.stub.get(key)
            if stub is None:
                stub = memo.put(memo.stub, key, 0, TensorProto(data_type=key[0], dims=key[1:]).SerializeToString())
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


def infer_shapes(model: onnx.ModelProto, gr: Graph, order: list[int], memo: Memo) -> dict[str, str]:
    """Shape text per value name, from shape inference on a weight-free copy (:func:`light_model`), or from the
    declared shapes alone when inference fails. A model whose every node the encoder has met before (same op,
    attributes and input types) takes the types from the memo instead (:mod:`~predictors.onnx_text.shape_memo`),
    and inference does not run."""
    known = memo_shapes(model, gr, order, memo)
    if known is not None:
        return known
    g = model.graph
    light = light_model(model, gr, order, memo)
    try:
        inferred = onnx.shape_inference.infer_shapes(light).graph
    except Exception:  # noqa: BLE001 - invalid or unsupported: the declared value_info is all we have
        inferred = g
    else:
        harvest(model, gr, order, memo, inferred)
    shapes: dict[str, str] = {}
    memo_get = memo.shape.get
    for source in (g.value_info, g.input, g.output, inferred.value_info, inferred.input, inferred.output):
        for vi in source:
            tp = vi.type
            text = memo_get(serialize_type(tp)) or shape_text(tp, memo)   # the memo inlined: most shapes recur
            name = vi.name
            if text != "*" or name not in shapes:
                shapes[name] = text
    return shapes

