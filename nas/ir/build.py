"""Derivation -> :class:`~nas.ir.graph.ArchGraph`: lower every terminal to primitive IR ops, add the head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nas.ir.graph import ArchGraph, Value, add_classifier_head
from search_spaces.derivation import Derivation, DNode
from search_spaces.planning import Combinator
from search_spaces.spaces import Space
from search_spaces.terminals.base import Leaf


class _Builder:
    """The small interface combinators lower through (keeps search_spaces free of graph code)."""

    def __init__(self, graph: ArchGraph):
        self.graph = graph

    def add_op(self, op: str, attrs: dict[str, Any], values: Sequence[Value]) -> list[Value]:
        return self.graph.add_op(op, attrs, values)

    def add_chain(self, chain: Sequence[tuple[str, dict[str, Any]]], value: Value) -> Value:
        for op, attrs in chain:
            (value,) = self.graph.add_op(op, attrs, [value])
        return value

    def add_fork(self, name: str, params: dict[str, Any], value: Value, k: int) -> list[Value]:
        if name == "clone":
            return [value] * k
        if name == "split":
            return self.graph.add_op("split", {"dim": params["dim"] - 1, "k": k}, [value])
        raise ValueError(f"no lowering for fork {name!r}")

    def add_merge(self, op: str, attrs: dict[str, Any], values: list[Value]) -> Value:
        (value,) = self.graph.add_op(op, attrs, values)
        return value


def build_graph(space: Space, derivation: Derivation, num_classes: int, *,
                metadata: dict[str, str] | None = None) -> ArchGraph:
    """The architecture graph of ``derivation`` with a classifier head for ``num_classes`` classes.

    The head averages every non-feature axis of the derived output type and applies one linear layer.
    """
    meta = {"space": space.name, "derivation": str(derivation)}
    meta.update(metadata or {})
    graph = ArchGraph(derivation.input_type.shape, meta)
    builder = _Builder(graph)
    sampler = space.sampler

    def lower(node: DNode, value: Value) -> Value:
        category = sampler.grammar.rule(node.symbol).category
        term = sampler.grammar.terminal(node.alt, category)
        if isinstance(term, Leaf):
            return term.lower(node.alt.param_dict, builder, value, node.in_type)
        if not isinstance(term, Combinator):
            raise TypeError(f"{term!r} derives a module but is neither a leaf nor a combinator")
        return term.lower(sampler, node, builder, value, lower)

    out = lower(derivation.root, graph.input)
    out_type = derivation.output_type
    graph.set_output(add_classifier_head(graph, out, out_type.feature_axis, num_classes))
    return graph
