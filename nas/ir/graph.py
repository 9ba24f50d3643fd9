"""ArchGraph: a candidate architecture as a ``networkx.DiGraph`` of primitive op nodes.

Node ids are integers assigned in creation order, which is always a topological order. Each node stores:

- ``op``: a name from :data:`nas.ir.ops.OPS`, or ``"input"`` / ``"output"``;
- ``attrs``: the op's attributes (plain ints, floats and tuples);
- ``inputs``: the ordered input values, each ``(node, port)``; this list, not the edge set, is the source of
  truth for wiring, because an op may read the same value twice (``add(x, x)``) and a DiGraph has one edge per
  pair of nodes. Edges mirror it for graph algorithms and carry ``ports``: the ``(src_port, dst_position)``
  pairs they stand for;
- ``in_shapes`` / ``out_shapes``: shapes without the batch dim; ``params`` and ``flops`` of the node.

Only :meth:`ArchGraph.add_op` and :meth:`ArchGraph.set_output` change a graph; both check shapes statically.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx

from nas.errors import NasError
from nas.ir.ops import Shape, ShapeError, infer_shapes, op_spec


@dataclass(frozen=True)
class Value:
    """One output of one node: ``(node, port)``, with its shape."""

    node: int
    port: int
    shape: Shape


class GraphLintError(NasError, ValueError):
    """An ArchGraph broke one of its invariants (names the node)."""


def _freeze(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


class ArchGraph:
    """A directed acyclic graph of primitive ops with one input and one output.

    Args:
        input_shape: shape of one input sample, without the batch dim.
        meta: free-form metadata carried to exports (space name, derivation string, ...).
    """

    def __init__(self, input_shape: Sequence[int], meta: Mapping[str, str] | None = None):
        self.g = nx.DiGraph()
        self.meta: dict[str, str] = dict(meta or {})
        self._output: int | None = None
        shape = tuple(int(d) for d in input_shape)
        self.g.add_node(0, op="input", attrs={"shape": shape}, inputs=(), in_shapes=(), out_shapes=(shape,),
                        params=0, flops=0)
        self.input = Value(0, 0, shape)

    # --- construction --------------------------------------------------------------------------------------------

    def add_op(self, op: str, attrs: Mapping[str, Any], inputs: Sequence[Value]) -> list[Value]:
        """Append a node applying ``op`` to ``inputs``; returns its output values.

        Raises :class:`~nas.ir.ops.ShapeError` if the op does not accept the input shapes.
        """
        if self._output is not None:
            raise GraphLintError("graph already has an output; no more ops can be added")
        frozen = {k: _freeze(v) for k, v in attrs.items()}
        in_shapes = tuple(v.shape for v in inputs)
        spec = op_spec(op)
        out_shapes = tuple(infer_shapes(op, frozen, in_shapes))
        node = self.g.number_of_nodes()
        self.g.add_node(node, op=op, attrs=frozen, inputs=tuple((v.node, v.port) for v in inputs),
                        in_shapes=in_shapes, out_shapes=out_shapes,
                        params=spec.params(frozen, in_shapes), flops=spec.flops(frozen, in_shapes, out_shapes))
        for position, v in enumerate(inputs):
            if self.g.has_edge(v.node, node):
                self.g.edges[v.node, node]["ports"] += ((v.port, position),)
            else:
                self.g.add_edge(v.node, node, ports=((v.port, position),))
        return [Value(node, port, shape) for port, shape in enumerate(out_shapes)]

    def set_output(self, value: Value) -> None:
        """Mark ``value`` as the network's output (adds the ``output`` node)."""
        node = self.g.number_of_nodes()
        self.g.add_node(node, op="output", attrs={}, inputs=((value.node, value.port),), in_shapes=(value.shape,),
                        out_shapes=(value.shape,), params=0, flops=0)
        self.g.add_edge(value.node, node, ports=((value.port, 0),))
        self._output = node

    # --- queries -------------------------------------------------------------------------------------------------

    @property
    def output_node(self) -> int:
        if self._output is None:
            raise GraphLintError("graph has no output node")
        return self._output

    @property
    def input_shape(self) -> Shape:
        return self.input.shape

    @property
    def output_shape(self) -> Shape:
        return self.g.nodes[self.output_node]["in_shapes"][0]

    def op_nodes(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """Nodes other than input/output, in topological (creation) order."""
        for node in range(self.g.number_of_nodes()):
            data = self.g.nodes[node]
            if data["op"] not in ("input", "output"):
                yield node, data

    def num_params(self) -> int:
        """Trainable parameters, as ``sum(p.numel() for p in module.parameters())`` counts them."""
        return sum(data["params"] for _, data in self.g.nodes(data=True))

    def flops(self) -> int:
        """FLOPs per sample in :class:`torch.utils.flop_counter.FlopCounterMode`'s convention."""
        return sum(data["flops"] for _, data in self.g.nodes(data=True))

    def op_histogram(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, data in self.op_nodes():
            counts[data["op"]] = counts.get(data["op"], 0) + 1
        return dict(sorted(counts.items()))

    def depth(self) -> int:
        """Number of op nodes on the longest input -> output path."""
        return max(0, nx.dag_longest_path_length(self.g) - 1)

    def canonical_hash(self) -> str:
        """A hash of the architecture that does not depend on node numbering.

        Weisfeiler-Lehman graph hashing (Shervashidze et al., JMLR 2011, as in ``networkx``) over node labels
        ``op + attrs + shapes`` and edge labels ``(src_port, dst_position)``, so that operand order matters
        (concat, matmul) while node ids do not. Two graphs that differ only by numbering hash equal.
        """
        labelled = nx.DiGraph()
        for node, data in self.g.nodes(data=True):
            label = json.dumps([data["op"], sorted(data["attrs"].items()), data["in_shapes"], data["out_shapes"]],
                               default=str)
            labelled.add_node(node, label=label)
        for u, v, data in self.g.edges(data=True):
            labelled.add_edge(u, v, label=json.dumps(sorted(data["ports"])))
        with warnings.catch_warnings():  # networkx >= 3.5 notes that directed hashes changed in 3.5
            warnings.simplefilter("ignore", UserWarning)
            wl = nx.weisfeiler_lehman_graph_hash(labelled, node_attr="label", edge_attr="label", iterations=4,
                                                 digest_size=16)
        return hashlib.sha256(f"{wl}|{self.input_shape}".encode()).hexdigest()[:32]

    def lint(self) -> None:
        """Check the invariants: ids in topological order, wiring consistent with edges, shapes re-inferable."""
        n = self.g.number_of_nodes()
        if sorted(self.g.nodes) != list(range(n)):
            raise GraphLintError("node ids are not 0..n-1")
        for node in range(n):
            data = self.g.nodes[node]
            for src, port in data["inputs"]:
                if src >= node:
                    raise GraphLintError(f"node {node} ({data['op']}) reads node {src}, which is not earlier")
                if port >= len(self.g.nodes[src]["out_shapes"]):
                    raise GraphLintError(f"node {node} ({data['op']}) reads missing port {port} of node {src}")
                if not self.g.has_edge(src, node):
                    raise GraphLintError(f"node {node} ({data['op']}) has no edge from its input {src}")
            if data["op"] not in ("input", "output"):
                in_shapes = tuple(self.g.nodes[s]["out_shapes"][p] for s, p in data["inputs"])
                try:
                    outs = tuple(infer_shapes(data["op"], data["attrs"], in_shapes))
                except ShapeError as err:
                    raise GraphLintError(f"node {node} ({data['op']}): {err}") from None
                if outs != data["out_shapes"]:
                    raise GraphLintError(f"node {node} ({data['op']}): stored shapes {data['out_shapes']} != {outs}")
        self.output_node  # noqa: B018 - raises when missing

    def __str__(self) -> str:
        lines = [f"ArchGraph(input={self.input_shape}, params={self.num_params():,}, flops={self.flops():,})"]
        for node in range(self.g.number_of_nodes()):
            data = self.g.nodes[node]
            args = ", ".join(f"%{s}.{p}" if p else f"%{s}" for s, p in data["inputs"])
            attrs = ", ".join(f"{k}={v}" for k, v in data["attrs"].items())
            shapes = ", ".join("x".join(map(str, s)) for s in data["out_shapes"])
            lines.append(f"  %{node} = {data['op']}({args}){'[' + attrs + ']' if attrs else ''} -> {shapes}")
        return "\n".join(lines)


def add_classifier_head(graph: ArchGraph, value: Value, feature_axis: int, num_classes: int) -> Value:
    """Global average pool over every non-batch axis but ``feature_axis``, then a linear layer to the classes."""
    axes = tuple(a for a in range(len(value.shape)) if a != feature_axis)
    if axes:
        (value,) = graph.add_op("global_avg_pool", {"axes": axes}, [value])
    (logits,) = graph.add_op("linear", {"in_features": value.shape[-1], "out_features": num_classes}, [value])
    return logits
