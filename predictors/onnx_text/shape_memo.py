"""The encoder's memo of shape inference: each node's inferred output types, keyed by everything ONNX's shape
inference reads when it infers that node, so that a model whose every node has been met before gets its shapes
without running inference (rule 1 gives the same text).

ONNX infers a graph node by node in a topological order, and a node's output types are a function of: the
model's IR version and opsets; the node's op, domain, attributes and number of inputs and outputs; the type of
each input (and its data when the input is an initializer or a ``Constant`` output: ``Reshape`` reads its shape
input); and the declared type of each output that has one (the inferred type is merged into it). The key of a
node here holds exactly these: a graph input by its declared ``TypeProto`` bytes, an initializer by its type, dims
and raw data (data only for those the weight-free copy keeps, :data:`~predictors.onnx_text.wire.INFER_KEEP_ELEMENTS`
or fewer elements: inference sees no data of the others), a ``Constant`` output by the ``Constant``'s attributes,
a node output by the ``TypeProto`` bytes inference gave it (in the memo: as the memo gave it). The memo is filled
from the result of a full inference (:func:`harvest`) and read by :func:`memo_shapes`, which returns ``None``
(run inference) as soon as one node is missing.

Only plain graphs are memoised (anything else always runs inference): no declared ``value_info``, no model
functions, no subgraph attributes, no sparse initializer, no initializer listed as a graph input, every graph
output a distinct node output, every kept initializer's data in ``raw_data``. The one liberty taken: new
symbolic dims (``unk__3``) that inference makes up are numbered per model, and the memo hands out the names of
the model it learnt them from; a symbolic dim is written ``?`` whatever its name, and shape inference compares
such names only to tell equal dims from unknown ones, both written ``?``.
"""

from __future__ import annotations

from typing import Any

import onnx

from predictors.onnx_text.analysis import Graph
from predictors.onnx_text.memo import Memo
from predictors.onnx_text.values import serialize_attribute, serialize_type, shape_text

KEEP_ELEMENTS = 64          # initializers up to this size keep their data in the weight-free copy (wire.py)
#: ops of the default domain whose shape inference (onnx/defs) reads only the types of their inputs, never the data
#: of an initializer input: for them a floating-point initializer is keyed by its type and dims, not its values
#: (random weights and biases would otherwise make every model new). Integer data (Reshape's shape, Unsqueeze's
#: axes, ...) is always part of the key.
TYPE_ONLY_OPS = frozenset({"Add", "Sub", "Mul", "Div", "Pow", "PRelu", "Max", "Min", "Sum", "Mean", "Where", "Clip",
                           "Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization", "InstanceNormalization",
                           "LayerNormalization", "GroupNormalization"})
_FLOAT_TYPES = frozenset({onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE,
                          onnx.TensorProto.BFLOAT16})
_UNTYPED = ("untyped",)     # a value inference left without a type (an absent input is None)


_Context = tuple[tuple, dict[str, Any], dict[str, Any], dict[str, bytes]]


def _context(model: onnx.ModelProto, gr: Graph) -> _Context | None:
    """``(model key, value keys of graph inputs and initializers, the same for the ops of TYPE_ONLY_OPS, declared
    output types)``, or None when the model is not a plain graph (see the module docstring)."""
    g = model.graph
    if len(g.value_info) or len(model.functions) or len(g.sparse_initializer) or len(gr.graph_inputs) != len(g.input):
        return None
    if any("Graph(nodes=" in a for a in gr.attrs):   # a subgraph attribute (or a string that reads like one)
        return None
    if any(a[0] != "v" for a in gr.graph_outputs):
        return None
    declared = {vi.name: serialize_type(vi.type) for vi in g.output}
    if len(declared) != len(g.output):
        return None
    values: dict[str, Any] = {vi.name: ("G", serialize_type(vi.type)) for vi in g.input}
    float_data: dict[str, Any] = {}   # value keys of the floating-point initializers that differ for TYPE_ONLY_OPS
    for t, name, _, key in gr.initializers:
        n = 1
        for d in key[1:]:
            n *= d
        if n > KEEP_ELEMENTS:
            values[name] = ("I", key)
        else:
            raw = t.raw_data
            if (n and not raw) or t.data_location != onnx.TensorProto.DEFAULT:
                return None
            values[name] = ("I", key, raw)
            if key[0] in _FLOAT_TYPES:
                float_data[name] = ("I", key)
    if len(values) != len(g.input) + len(gr.initializers):   # a name used twice
        return None
    model_key = (model.ir_version, tuple((d.domain, d.version) for d in model.opset_import))
    return model_key, values, float_data, declared


def _walk(model: onnx.ModelProto, gr: Graph, order: list[int], memo: Memo, context: _Context,
          inferred: dict[str, bytes] | None) -> list[tuple[str, Any]] | None:
    """Go through the nodes in inference order, keying each (see the module docstring). With ``inferred`` (name ->
    type bytes from a full inference), store each node's output types in the memo; without, read them from
    it (None at the first miss). Returns every node output with its type bytes (or ``_UNTYPED``), in order."""
    model_key, values, float_data, declared = context
    values = dict(values)
    type_only = values | float_data
    table = memo.node_types
    out: list[tuple[str, Any]] = []
    for node in gr.constant_nodes:
        names = list(node.output)
        key: tuple = (model_key, "Constant", node.domain, tuple(map(serialize_attribute, node.attribute)),
                      len(node.input), tuple(bool(name) for name in names))
        if inferred is None:
            types = table.get(key)
            if types is None:
                return None
        else:
            types = tuple(inferred.get(name, _UNTYPED) for name in names)
            memo.put(table, key, 0, types)
        for name, tp in zip(names, types):
            if name:
                values[name] = type_only[name] = ("C", key)
                out.append((name, tp))
    values_get, type_only_get, declared_get = values.get, type_only.get, declared.get
    node_keys, input_names, outputs = gr.node_keys, gr.input_names, gr.outputs
    for i in order:
        outs = outputs[i]
        node_key = node_keys[i]
        get = type_only_get if node_key[0] in TYPE_ONLY_OPS and node_key[1] in ("", "ai.onnx") else values_get
        key = (model_key, node_key, tuple(map(get, input_names[i])), tuple(map(declared_get, outs)))
        if inferred is None:
            types = table.get(key)
            if types is None:
                return None
        else:
            types = tuple(inferred.get(name, _UNTYPED) if name else _UNTYPED for name in outs)
            memo.put(table, key, 0, types)
        for name, tp in zip(outs, types):
            if name:
                values[name] = type_only[name] = tp
                out.append((name, tp))
    return out


def _text(tp: Any, memo: Memo) -> str:
    text = memo.shape.get(tp)
    if text is None:
        text = shape_text(onnx.TypeProto.FromString(tp), memo)
    return text


def memo_shapes(model: onnx.ModelProto, gr: Graph, order: list[int], memo: Memo) -> dict[str, str] | None:
    """The shape text per value name as :func:`~predictors.onnx_text.wire.infer_shapes` gives it, from the memo
    alone; None if the model is not a plain graph or one of its nodes is not in the memo."""
    context = _context(model, gr)
    if context is None:
        return None
    typed = _walk(model, gr, order, memo, context, None)
    if typed is None:
        return None
    g = model.graph
    shapes: dict[str, str] = {}
    for source in (g.input, g.output):   # as infer_shapes: declared first, then what inference gives
        for vi in source:
            text = memo.shape.get(serialize_type(vi.type)) or shape_text(vi.type, memo)
            if text != "*" or vi.name not in shapes:
                shapes[vi.name] = text
    outputs = set(context[3])
    merged = {}
    for name, tp in typed:
        if name in outputs:
            merged[name] = tp
        elif tp is not _UNTYPED:
            shapes[name] = _text(tp, memo)
    for vi in g.output:
        tp = merged[vi.name]
        text = "*" if tp is _UNTYPED else _text(tp, memo)
        if text != "*" or vi.name not in shapes:
            shapes[vi.name] = text
    return shapes


def harvest(model: onnx.ModelProto, gr: Graph, order: list[int], memo: Memo, inferred: onnx.GraphProto) -> None:
    """Store in the memo each node's output types from ``inferred`` (the graph a full inference of the
    weight-free copy returned), when the model is a plain graph and the result looks as expected (graph inputs
    unchanged, inferred types only for node outputs)."""
    context = _context(model, gr)
    if context is None:
        return
    g = model.graph
    if [serialize_type(vi.type) for vi in inferred.input] != [t[1] for t in
                                                              (context[1][vi.name] for vi in g.input)]:
        return
    types = {vi.name: serialize_type(vi.type) for vi in inferred.value_info}
    produced = {name for outs in gr.outputs for name in outs if name}
    produced.update(name for node in gr.constant_nodes for name in node.output if name)
    if not produced.issuperset(types) or any(name in types for name in context[3]):
        return
    for vi in inferred.output:
        types[vi.name] = serialize_type(vi.type)
    _walk(model, gr, order, memo, context, types)
