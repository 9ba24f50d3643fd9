"""Topology operators for hierarchical spaces (Schrodi et al., NeurIPS 2023): arity-n graphs whose edges are filled
by lower-level non-terminals.

All of them are *type-preserving*: every edge is derived towards the operator's input type, and the operator's
output has that type too. That is what lets a template stack cells at one resolution and lets any level's holes be
filled by any module grammar (einspace included) whose derivations can preserve a type.

- ``residual(A1, ..., Ak, S)``: ``Ak(...A1(x)) + S(x)`` (Residual2/3: k = 2, 3);
- ``diamond(A1, B1, ..., Ak, Bk)``: ``sum_i Bi(Ai(x))`` (Diamond2/3: k = 2, 3 paths of two edges);
- ``cell201(e01, e02, e12, e03, e13, e23)``: NAS-Bench-201's 4-node DAG, node j = sum of its incoming edges;
- ``repeat(M, n=...)``: ``n`` copies of ``M`` in sequence (one motif reused when ``M`` is declared ``shared``).

(``sequential`` is the linear chain, Linear2/3/4.)
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from search_spaces.derivation import Cost, DNode
from search_spaces.planning import NODE, Combinator, FlatAlternative, ParseAtom, ParseChild, ReachTable, SamplingContext
from search_spaces.terminals.base import Param
from search_spaces.types import TensorType


class TypePreserving(Combinator):
    """Base of topology operators: children derived towards the input type, output = input type."""

    def child_symbols(self, fa: FlatAlternative) -> list[str]:
        return list(fa.alt.args)

    def slot_categories(self, n: int) -> tuple[str, ...]:
        return ("module",) * n

    def min_plan_cost(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType, target: TensorType,
                      depth: int) -> Cost | None:
        if target != t:
            return None
        total = NODE
        for symbol in self.child_symbols(fa):
            cost = ctx.min_cost_to(symbol, t, t, depth + 1)
            if cost is None:
                return None
            total = total + cost
        return total

    def plans(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType, target: TensorType, depth: int,
              budget: Cost) -> list[tuple[float, Any]]:
        cost = self.min_plan_cost(ctx, fa, t, target, depth)
        return [(1.0, None)] if cost is not None and cost.fits(budget) else []

    def min_free_cost(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType, depth: int) -> Cost | None:
        return self.min_plan_cost(ctx, fa, t, t, depth)

    def expand_free(self, ctx: SamplingContext, symbol: str, fa: FlatAlternative, t: TensorType, depth: int,
                    budget: Cost, rng: random.Random) -> DNode:
        return self.expand_planned(ctx, symbol, fa, t, t, None, depth, budget, rng)

    def expand_planned(self, ctx: SamplingContext, symbol: str, fa: FlatAlternative, t: TensorType, target: TensorType,
                       plans: Any, depth: int, budget: Cost, rng: random.Random) -> DNode:
        symbols = self.child_symbols(fa)
        # every edge has a type-preserving derivation: the plan that chose this alternative proved it
        later = [cost for s in symbols if (cost := ctx.min_cost_to(s, t, t, depth + 1)) is not None]
        assert len(later) == len(symbols), f"{self.name}: an edge cannot keep the type {t}"
        spent, children = NODE, []
        copies = symbols.count(symbols[0]) if symbols[0] in ctx.grammar.shared else 1
        for i, s in enumerate(symbols):
            reserve = sum(later[i + 1:], Cost())
            room = budget - spent - reserve
            if i == 0 and copies > 1:  # one shared motif used `copies` times here: size it for all of them
                room = (budget - spent - sum(later[copies:], Cost())).divided(copies)
            child = ctx.expand(s, t, t, depth + 1, room, rng)
            children.append(child)
            spent = spent + child.cost
        return DNode(symbol, fa.alt, t, t, spent, tuple(children))

    def shallow_outputs(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType) -> ReachTable:
        return {}

    def sole_output(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType, depth: int) -> TensorType | None:
        return t if self.min_plan_cost(ctx, fa, t, t, depth) is not None else None

    def parse(self, ctx: SamplingContext, symbol: str, fa: FlatAlternative, items: Sequence[Any], t: TensorType,
              parse_child: ParseChild, parse_atom: ParseAtom) -> DNode:
        symbols = self.child_symbols(fa)
        if len(items) != len(symbols):
            raise self.type_error(f"takes {len(symbols)} modules, got {len(items)}")
        children, cost = [], NODE
        for s, item in zip(symbols, items):
            child = parse_child(s, item, t)
            if child.out_type != t:
                raise self.type_error(f"every edge must keep the type {t}, but {child.to_sexpr()[:60]} gives "
                                      f"{child.out_type}")
            children.append(child)
            cost = cost + child.cost
        return DNode(symbol, fa.alt, t, t, cost, tuple(children))


class Residual(TypePreserving):
    """``residual(A1, ..., Ak, S)``: the chain ``A1 ... Ak`` plus the skip edge ``S``, summed."""

    name = "residual"
    slots = ("first", "skip")
    variadic_slots = True

    def lower(self, ctx: SamplingContext, node: DNode, builder: Any, value: Any,
              lower_child: Callable[[DNode, Any], Any]) -> Any:
        *chain, skip = node.children
        main = value
        for child in chain:
            main = lower_child(child, main)
        return builder.add_merge("add", {}, [main, lower_child(skip, value)])


class Diamond(TypePreserving):
    """``diamond(A1, B1, ..., Ak, Bk)``: k parallel paths of two edges each, summed."""

    name = "diamond"
    slots = ("path1_first", "path1_second", "path2_first", "path2_second")
    variadic_slots = True

    def parse(self, ctx: SamplingContext, symbol: str, fa: FlatAlternative, items: Sequence[Any], t: TensorType,
              parse_child: ParseChild, parse_atom: ParseAtom) -> DNode:
        if len(fa.alt.args) % 2:
            raise self.type_error("takes an even number of edges (pairs forming paths)")
        return super().parse(ctx, symbol, fa, items, t, parse_child, parse_atom)

    def lower(self, ctx: SamplingContext, node: DNode, builder: Any, value: Any,
              lower_child: Callable[[DNode, Any], Any]) -> Any:
        outs = []
        for first, second in zip(node.children[::2], node.children[1::2]):
            outs.append(lower_child(second, lower_child(first, value)))
        return builder.add_merge("add", {}, outs)


class Cell201(TypePreserving):
    """NAS-Bench-201's cell (Dong & Yang, ICLR 2020): nodes 0..3, an edge op on every i -> j (i < j), node j the
    sum of its incoming edges, output node 3. Edges in arch-string order: 0->1, 0->2, 1->2, 0->3, 1->3, 2->3."""

    name = "cell201"
    slots = ("e01", "e02", "e12", "e03", "e13", "e23")
    EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))

    def lower(self, ctx: SamplingContext, node: DNode, builder: Any, value: Any,
              lower_child: Callable[[DNode, Any], Any]) -> Any:
        nodes = [value]
        for j in (1, 2, 3):
            incoming = [lower_child(child, nodes[i]) for (i, jj), child in zip(self.EDGES, node.children) if jj == j]
            nodes.append(incoming[0] if len(incoming) == 1 else builder.add_merge("add", {}, incoming))
        return nodes[3]


class Repeat(TypePreserving):
    """``repeat(M, n=k)``: ``k`` modules ``M`` in sequence, each keeping the type."""

    name = "repeat"
    slots = ("module",)
    params = (Param("n", int, doc="number of copies", minimum=1),)

    def child_symbols(self, fa: FlatAlternative) -> list[str]:
        return [fa.alt.args[0]] * fa.alt.param_dict["n"]

    def lower(self, ctx: SamplingContext, node: DNode, builder: Any, value: Any,
              lower_child: Callable[[DNode, Any], Any]) -> Any:
        for child in node.children:
            value = lower_child(child, value)
        return value


TOPOLOGY_OPERATORS = (Residual(), Diamond(), Cell201(), Repeat())
