"""Graph analysis: the graph read once into plain Python lists (protobuf field access is slow), checked to be a
valid DAG, with each node's label (op, constant arguments, attributes) for the canonical order."""

from __future__ import annotations

from dataclasses import dataclass, field

import onnx
from onnx import TensorProto

from predictors.onnx_text.errors import OnnxTextError
from predictors.onnx_text.memo import Memo
from predictors.onnx_text.values import (
    attrs_text,
    constant_node_text,
    dims_text,
    numel,
    serialize_attribute,
    tensor_info,
)

DEFAULT_DOMAINS = ("", "ai.onnx")


def as_text(value: str | bytes) -> str:
    """A protobuf string field as text (a field holding invalid UTF-8 is read back as bytes)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value

# An argument slot: ("v", node, port) a node's output, ("i", k) graph input k, ("c", text) a constant,
# ("n",) an absent optional input.
Arg = tuple
ABSENT: Arg = ("n",)


def literal(a: Arg) -> str:
    """An argument's text in a node's label: a constant's text, ``None``, or ``*`` for an activation."""
    kind = a[0]
    return a[1] if kind == "c" else "None" if kind == "n" else "*"


@dataclass
class Graph:
    nodes: list[onnx.NodeProto]          # non-Constant nodes, in file order
    ops: list[str]
    attrs: list[str]
    args: list[list[Arg]]
    outputs: list[list[str]]             # trailing "" removed
    labels: list[str]                    # op, constant arguments and attributes; activations as "*"
    consumers: list[list[list[tuple[int, int]]]]   # [node][port] -> (consumer, slot)
    output_ports: list[list[tuple[int, ...]]]      # [node][port] -> graph output indices
    graph_inputs: list[str]
    graph_outputs: list[Arg]
    num_params: int
    indegree: list[int]                  # [node] -> number of arguments that are node outputs ("v")
    active: list[int]                    # [node] -> number of arguments that are node outputs or graph inputs
    constant_nodes: list[onnx.NodeProto]  # the Constant nodes, in file order
    # per graph initializer, in file order: (tensor, name, its num_params (0 for one written by value, which has
    # at most MAX_CONST_ELEMENTS elements), (type, dims...))
    initializers: list[tuple[TensorProto, str, int, tuple[int, ...]]]
    # [node] -> (op_type, domain, serialized attributes, len(input), len(output)) as in the file (for the memo of
    # shape inference, :mod:`~predictors.onnx_text.shape_memo`), and its input names, trailing "" removed
    node_keys: list[tuple] = field(default_factory=list)
    input_names: list[list[str]] = field(default_factory=list)


def analyse(model: onnx.ModelProto, memo: Memo | None = None) -> Graph:
    """Read the graph once into plain Python lists (protobuf field access is slow), checking that it is valid."""
    if memo is None:
        memo = Memo()
    g = model.graph
    consts: dict[str, Arg] = {}        # name -> ("c", text)
    num_params = 0
    initializers = []
    for t in g.initializer:
        text, n, key = tensor_info(t, memo)
        name = t.name
        consts[name] = ("c", text)
        num_params += n
        initializers.append((t, name, n, key))
    for st in g.sparse_initializer:
        consts[st.values.name] = ("c", "Param" + dims_text(st.dims))
        num_params += numel(st.dims)
    graph_inputs = [name for name in (vi.name for vi in g.input) if name not in consts]
    defined: dict[str, Arg] = {name: ("i", k) for k, name in enumerate(graph_inputs)}
    if len(defined) != len(graph_inputs):
        raise OnnxTextError("graph input names are not unique")

    nodes: list[onnx.NodeProto] = []
    ops: list[str] = []
    attrs: list[str] = []
    inputs: list[list[str]] = []
    outputs: list[list[str]] = []
    constant_nodes: list[onnx.NodeProto] = []
    attrs_get = memo.attrs.get
    node_keys: list[tuple] = []
    for node in g.node:
        op_type = node.op_type
        domain = node.domain
        if op_type.__class__ is not str or domain.__class__ is not str:   # protobuf hands invalid UTF-8 over as bytes
            op_type, domain = as_text(op_type), as_text(domain)
        default_domain = domain in DEFAULT_DOMAINS
        if op_type == "Constant" and default_domain:      # folded into the arguments of its consumers
            constant_nodes.append(node)
            for out in node.output:
                if out:
                    if out in consts or out in defined:
                        raise OnnxTextError(f"tensor {out!r} is defined twice")
                    text, n = constant_node_text(node, memo)
                    consts[out] = ("c", text)
                    num_params += n
            continue
        nodes.append(node)
        ops.append(op_type if default_domain else f"{domain}.{op_type}")   # rule 6: domain.Op
        attributes = node.attribute
        attr_key = tuple(map(serialize_attribute, attributes)) if attributes else ()
        attrs.append((attrs_get(attr_key) or attrs_text(attributes, memo)) if attributes else "")   # attrs_text's memo
        ins = node.input[:]
        outs = node.output[:]
        node_keys.append((op_type, domain, attr_key, len(ins), len(outs)))
        while ins and not ins[-1]:
            ins.pop()
        inputs.append(ins)
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

    def resolve(name: str, where: str) -> Arg:
        if not name:
            return ABSENT
        if name in defined:
            return defined[name]
        if name in consts:
            return consts[name]
        raise OnnxTextError(f"{where} uses tensor {name!r}, which no node, initializer or graph input defines")

    args: list[list[Arg]] = []
    labels: list[str] = []
    indegree: list[int] = []
    active: list[int] = []
    consumers: list[list[list[tuple[int, int]]]] = [[[] for _ in outs] for outs in outputs]
    lookup = consts | defined           # as resolve (the two are disjoint), without the error
    lookup[""] = ABSENT
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
                      + ")" + attrs[i])   # as literal
        indegree.append(n_v)
        active.append(n_v + n_i)

    output_ports: list[list[tuple[int, ...]]] = [[()] * len(outs) for outs in outputs]
    graph_outputs = []
    for k, vi in enumerate(g.output):
        a = resolve(vi.name, f"graph output {k}")
        graph_outputs.append(a)
        if a[0] == "v":
            output_ports[a[1]][a[2]] += (k,)
    return Graph(nodes, ops, attrs, args, outputs, labels, consumers, output_ports, graph_inputs, graph_outputs,
                 num_params, indegree, active, constant_nodes, initializers, node_keys, inputs)


def file_topo_order(gr: Graph) -> list[int]:
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


def stats_of(gr: Graph, topo: list[int]) -> GraphStats:
    """:class:`GraphStats` of an analysed graph, given any topological order of its nodes."""
    longest = [0] * len(gr.nodes)
    args = gr.args
    for i in topo:
        best = 0
        for a in args[i]:
            if a[0] == "v" and longest[a[1]] > best:
                best = longest[a[1]]
        longest[i] = 1 + best
    hist: dict[str, int] = {}
    for op in gr.ops:
        hist[op] = hist.get(op, 0) + 1
    return GraphStats(num_nodes=len(gr.nodes), depth=max(longest), num_params=gr.num_params,
                      op_histogram=dict(sorted(hist.items())))
