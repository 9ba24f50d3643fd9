"""Combinators: terminals whose arguments are non-terminals (einspace's sequential, branching, routing modules).

Each combinator knows, for the sampler (:mod:`search_spaces.sampler`):

- ``feasible_free`` / ``expand_free``: derive with any output type;
- ``plans`` / ``expand_planned``: derive towards an exact output type, choosing child targets from the
  sampler's reachability tables so that every child is itself feasible;
- ``shallow_outputs``: what it produces when its children are single leaves (the sampler's ``reach1``);

and, for strings and graphs, ``parse`` (type-check a written derivation) and ``lower`` (emit IR ops).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from search_spaces.derivation import Cost, DNode
from search_spaces.ops import op_cost
from search_spaces.planning import (
    NODE,
    Combinator,
    FlatAlternative,
    ParseAtom,
    ParseChild,
    Reach,
    ReachTable,
    SamplingBugError,
    SamplingContext,
    weighted_choice,
)
from search_spaces.terminals.base import Fork, Merge, PostRoute, PreRoute, Terminal
from search_spaces.types import TensorType

# Combinator, NODE, ParseAtom and ParseChild are re-exported (they lived here before search_spaces.planning).
__all__ = ["COMBINATORS", "NODE", "Branching", "Combinator", "ParseAtom", "ParseChild", "Routing", "Sequential"]

ReachKey = tuple[str, TensorType, bool]
"""Names one of the sampler's reach tables: ``(symbol, input type, shallow)``, ``shallow`` meaning ``reach1``
(else ``reach0``). Caches of pairings within a table are keyed by it."""


def _slot_node(symbol: str, fa: FlatAlternative, t_in: TensorType, t_out: TensorType,
               cost: Cost = Cost()) -> DNode:
    return DNode(symbol, fa.alt, t_in, t_out, cost)


# --- sequential ------------------------------------------------------------------------------------------------------


@dataclass
class _SequentialCache:
    """One sampler's chains: independent of depth, and at a depth (where a step needed a deeper derivation)."""

    chains: dict[tuple[tuple[str, ...], TensorType], ReachTable] = field(default_factory=dict)
    chains_at: dict[tuple[tuple[str, ...], TensorType, int], ReachTable] = field(default_factory=dict)


class Sequential(Combinator):
    """``sequential(M1, ..., Mn)``: apply the modules in order (einspace's S = ``M M``)."""

    name = "sequential"
    slots = ("first", "second")
    variadic_slots = True

    def slot_categories(self, n: int) -> tuple[str, ...]:
        return ("module",) * n

    @staticmethod
    def _step(ctx: SamplingContext, symbol: str, t: TensorType, depth: int) -> tuple[ReachTable, bool]:
        """Types one child at ``depth`` can be planned towards: a leaf's outputs, plus ``t`` itself when a deeper
        type-preserving derivation exists (a cell, a residual block) though no leaf keeps the type. The flag says
        whether the answer depended on ``depth``."""
        step = ctx.reach0(symbol, t)
        if t in step or depth > ctx.limits.max_depth:
            return step, False
        keep = ctx.min_cost_to(symbol, t, t, depth)
        return (step if keep is None else {**step, t: Reach(keep, 1.0)}), True

    def _chain(self, ctx: SamplingContext, symbols: tuple[str, ...], t: TensorType,
               depth: int = 0) -> ReachTable:
        """Types reachable by applying one planned step of each symbol in turn (children at ``depth + 1``)."""
        return self._chain_flagged(ctx, symbols, t, depth)[0]

    def _chain_flagged(self, ctx: SamplingContext, symbols: tuple[str, ...], t: TensorType,
                       depth: int) -> tuple[ReachTable, bool]:
        """:meth:`_chain` and whether it depends on ``depth``; memoised without the depth when it does not
        (einspace: identity keeps every type, so no step needs a deeper derivation)."""
        cache = ctx.cache(self, _SequentialCache)
        found = cache.chains.get((symbols, t))
        if found is not None:
            return found, False
        found = cache.chains_at.get((symbols, t, depth))
        if found is not None:
            return found, True
        found, dependent = self._step(ctx, symbols[0], t, depth + 1)
        if len(symbols) > 1:
            first, found = found, {}
            for mid, r1 in first.items():
                rest, rest_dependent = self._chain_flagged(ctx, symbols[1:], mid, depth)
                dependent = dependent or rest_dependent
                for out, r2 in rest.items():
                    cost, mass = r1.cost + r2.cost, r1.mass * r2.mass
                    prev = found.get(out)
                    found[out] = Reach(cost, mass) if prev is None else Reach(prev.cost.min(cost),
                                                                               prev.mass + mass)
        if dependent:
            cache.chains_at[(symbols, t, depth)] = found
        else:
            cache.chains[(symbols, t)] = found
        return found, dependent

    def min_free_cost(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType, depth: int) -> Cost | None:
        first = ctx.sole_output(fa.alt.args[0], t, depth + 1)
        return NODE + (first[1] if first else Cost(nodes=1)) + self._reserves(ctx, fa.alt.args, t, depth)[0]

    def _reserves(self, ctx: SamplingContext, args: tuple[str, ...], t: TensorType, depth: int) -> list[Cost]:
        """What each child must leave for the children after it: their exact cheapest cost while the types ahead
        are determined (template stems, stages, reductions), one module node each after that."""
        costs: list[Cost] = []
        cur: TensorType | None = t
        for s in args:
            sole = ctx.sole_output(s, cur, depth + 1) if cur is not None else None
            costs.append(sole[1] if sole else Cost(nodes=1))
            cur = sole[0] if sole else None
        return [sum(costs[i + 1:], Cost()) for i in range(len(args))]

    def sole_output(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType, depth: int) -> TensorType | None:
        cur = t
        for s in fa.alt.args:
            sole = ctx.sole_output(s, cur, depth + 1)
            if sole is None:
                return None
            cur = sole[0]
        return cur

    def expand_free(self, ctx: SamplingContext, symbol: str, fa: FlatAlternative, t: TensorType, depth: int,
                    budget: Cost, rng: random.Random) -> DNode:
        args = fa.alt.args
        reserves = self._reserves(ctx, args, t, depth)
        spent, cur, children = NODE, t, []
        for i, s in enumerate(args):
            child = ctx.expand(s, cur, None, depth + 1, budget - spent - reserves[i], rng)
            children.append(child)
            spent, cur = spent + child.cost, child.out_type
        return DNode(symbol, fa.alt, t, cur, spent, tuple(children))

    def plans(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType, target: TensorType, depth: int,
              budget: Cost) -> list[tuple[float, Any]]:
        reach = self._chain(ctx, fa.alt.args, t, depth).get(target)
        return [(1.0, None)] if reach is not None and (NODE + reach.cost).fits(budget) else []

    def min_plan_cost(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType, target: TensorType,
                      depth: int) -> Cost | None:
        reach = self._chain(ctx, fa.alt.args, t, depth).get(target)
        return None if reach is None else NODE + reach.cost

    def expand_planned(self, ctx: SamplingContext, symbol: str, fa: FlatAlternative, t: TensorType, target: TensorType,
                       plans: Any, depth: int, budget: Cost, rng: random.Random) -> DNode:
        args = fa.alt.args
        spent, cur, children = NODE, t, []
        for i, s in enumerate(args):
            if i == len(args) - 1:
                child_target, reserve = target, Cost()
            else:
                rest = args[i + 1:]
                options = []
                for mid, r in self._step(ctx, s, cur, depth + 1)[0].items():
                    tail = self._chain(ctx, rest, mid, depth).get(target)
                    if tail is not None and (spent + r.cost + tail.cost).fits(budget):
                        options.append((r.mass * tail.mass, (mid, tail.cost)))
                child_target, reserve = weighted_choice(rng, options)
            child = ctx.expand(s, cur, child_target, depth + 1, budget - spent - reserve, rng)
            children.append(child)
            spent, cur = spent + child.cost, child.out_type
        return DNode(symbol, fa.alt, t, cur, spent, tuple(children))

    def shallow_outputs(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType) -> ReachTable:
        return {out: Reach(r.cost + NODE, r.mass * fa.prob) for out, r in self._chain(ctx, fa.alt.args, t).items()}

    def parse(self, ctx: SamplingContext, symbol: str, fa: FlatAlternative, items: Sequence[Any], t: TensorType,
              parse_child: ParseChild, parse_atom: ParseAtom) -> DNode:
        args = fa.alt.args
        if len(items) != len(args):
            raise self.type_error(f"takes {len(args)} modules, got {len(items)}")
        cost, cur, children = NODE, t, []
        for s, item in zip(args, items):
            child = parse_child(s, item, cur)
            children.append(child)
            cost, cur = cost + child.cost, child.out_type
        return DNode(symbol, fa.alt, t, cur, cost, tuple(children))

    def lower(self, ctx: SamplingContext, node: DNode, builder: Any, value: Any,
              lower_child: Callable[[DNode, Any], Any]) -> Any:
        for child in node.children:
            value = lower_child(child, value)
        return value


# --- routing ---------------------------------------------------------------------------------------------------------


PreOption = tuple[FlatAlternative, TensorType, Any, Cost]
"""A pre-routing that accepts the input: ``(alternative, routed type, context for the post-routing, cost)``."""
PostOption = tuple[FlatAlternative, TensorType, Cost]
"""A post-routing that accepts the body's output: ``(alternative, output type, cost)``."""
RoutePlan = tuple[float, TensorType, Cost, FlatAlternative, TensorType, Any, TensorType, FlatAlternative, Cost]
"""``(weight, out, cost, pre, routed, pre context, body target, post, routing cost)`` for a leaf body."""


@dataclass
class _RoutingCache:
    """One sampler's routing tables."""

    pres: dict[tuple[str, TensorType], list[PreOption]] = field(default_factory=dict)
    posts: dict[tuple[str, TensorType, Any], list[PostOption]] = field(default_factory=dict)
    plans: dict[tuple[FlatAlternative, TensorType], list[RoutePlan]] = field(default_factory=dict)
    by_output: dict[tuple[FlatAlternative, TensorType], dict[TensorType, list[RoutePlan]]] = field(
        default_factory=dict)


class Routing(Combinator):
    """``routing(pre, M, post)``: re-arrange, apply a module, re-arrange back (einspace's R)."""

    name = "routing"
    in_reach1 = True
    slots = ("pre", "body", "post")
    slot_roles = ("pre", "module", "post")

    def _pres(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType) -> list[tuple[Any, ...]]:
        cache = ctx.cache(self, _RoutingCache)
        key = (fa.alt.args[0], t)
        found = cache.pres.get(key)
        if found is None:
            found = []
            for pre in ctx.alternatives(fa.alt.args[0]):
                term: PreRoute = pre.terminal  # type: ignore[assignment]
                routed = term.route(pre.alt.param_dict, t)
                if routed is None or not ctx.admissible(routed[0]):
                    continue
                cost = ctx.chain_cost(term.ir_chain(pre.alt.param_dict, t), t)
                found.append((pre, routed[0], routed[1], cost))
            cache.pres[key] = found
        return found

    def _posts(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType,
               pre_context: Any) -> list[tuple[Any, ...]]:
        cache = ctx.cache(self, _RoutingCache)
        key = (fa.alt.args[2], t, pre_context)
        found = cache.posts.get(key)
        if found is None:
            found = []
            for post in ctx.alternatives(fa.alt.args[2]):
                term: PostRoute = post.terminal  # type: ignore[assignment]
                out = term.route_back(post.alt.param_dict, t, pre_context)
                if out is None or not ctx.admissible(out):
                    continue
                cost = ctx.chain_cost(term.ir_chain(post.alt.param_dict, t, pre_context), t)
                found.append((post, out, cost))
            cache.posts[key] = found
        return found

    def _all_plans(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType) -> list[tuple[Any, ...]]:
        """Every (pre, body target, post) with a leaf body: ``(weight, out, cost, pre, routed, ctx, mid, post)``."""
        cache = ctx.cache(self, _RoutingCache)
        key = (fa, t)
        found = cache.plans.get(key)
        if found is None:
            found = []
            body = fa.alt.args[1]
            zero = Cost()
            for pre, routed, pre_ctx, pre_cost in self._pres(ctx, fa, t):
                base = NODE + pre_cost
                for mid, r in ctx.reach0(body, routed).items():
                    mid_cost, w = base + r.cost, pre.prob * r.mass
                    for post, out, post_cost in self._posts(ctx, fa, mid, pre_ctx):
                        free_post = post_cost == zero
                        found.append((w * post.prob, out, mid_cost if free_post else mid_cost + post_cost,
                                      pre, routed, pre_ctx, mid, post, pre_cost if free_post else pre_cost + post_cost))
            cache.plans[key] = found
        return found

    def min_free_cost(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType, depth: int) -> Cost | None:
        best = None
        for *_, cost in self._pres(ctx, fa, t):
            best = cost if best is None else best.min(cost)
        return None if best is None else best + Cost(nodes=2)

    def expand_free(self, ctx: SamplingContext, symbol: str, fa: FlatAlternative, t: TensorType, depth: int,
                    budget: Cost, rng: random.Random) -> DNode:
        pres = [(p.prob, (p, routed, pc, c)) for p, routed, pc, c in self._pres(ctx, fa, t)
                if c.fits(budget - Cost(nodes=2))]
        pre, routed, pre_ctx, pre_cost = weighted_choice(rng, pres)
        body = ctx.expand(fa.alt.args[1], routed, None, depth + 1, budget - NODE - pre_cost, rng)
        spent = NODE + pre_cost + body.cost
        posts = [(p.prob, (p, out, c)) for p, out, c in self._posts(ctx, fa, body.out_type, pre_ctx)
                 if (spent + c).fits(budget)]
        if not posts:
            raise SamplingBugError(f"routing: no post-routing of {fa.alt.args[2]!r} accepts {body.out_type}; "
                                   "give the post-routing rule an 'identity' alternative")
        post, out, post_cost = weighted_choice(rng, posts)
        children = (_slot_node(fa.alt.args[0], pre, t, routed, pre_cost), body,
                    _slot_node(fa.alt.args[2], post, body.out_type, out, post_cost))
        return DNode(symbol, fa.alt, t, out, spent + post_cost, children, pre_ctx)

    def _plans_by_output(self, ctx: SamplingContext, fa: FlatAlternative,
                         t: TensorType) -> dict[TensorType, list[RoutePlan]]:
        cache = ctx.cache(self, _RoutingCache)
        key = (fa, t)
        found = cache.by_output.get(key)
        if found is None:
            found = {}
            for p in self._all_plans(ctx, fa, t):
                found.setdefault(p[1], []).append(p)
            cache.by_output[key] = found
        return found

    def plans(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType, target: TensorType, depth: int,
              budget: Cost) -> list[tuple[float, Any]]:
        return [(p[0], p) for p in self._plans_by_output(ctx, fa, t).get(target, ()) if p[2].fits(budget)]

    def min_plan_cost(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType, target: TensorType,
                      depth: int) -> Cost | None:
        best = None
        for p in self._plans_by_output(ctx, fa, t).get(target, ()):
            best = p[2] if best is None else best.min(p[2])
        return best

    def expand_planned(self, ctx: SamplingContext, symbol: str, fa: FlatAlternative, t: TensorType, target: TensorType,
                       plans: Any, depth: int, budget: Cost, rng: random.Random) -> DNode:
        _, out, _, pre, routed, pre_ctx, mid, post, route_cost = weighted_choice(rng, plans)
        body = ctx.expand(fa.alt.args[1], routed, mid, depth + 1, budget - NODE - route_cost, rng)
        pre_cost = ctx.chain_cost(pre.terminal.ir_chain(pre.alt.param_dict, t), t)
        post_cost = route_cost - pre_cost
        children = (_slot_node(fa.alt.args[0], pre, t, routed, pre_cost), body,
                    _slot_node(fa.alt.args[2], post, mid, out, post_cost))
        return DNode(symbol, fa.alt, t, out, NODE + route_cost + body.cost, children, pre_ctx)

    def shallow_outputs(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType) -> ReachTable:
        found: ReachTable = {}
        for w, out, cost, *_ in self._all_plans(ctx, fa, t):
            prev = found.get(out)
            found[out] = Reach(cost, w * fa.prob) if prev is None else Reach(prev.cost.min(cost),
                                                                              prev.mass + w * fa.prob)
        return found

    def parse(self, ctx: SamplingContext, symbol: str, fa: FlatAlternative, items: Sequence[Any], t: TensorType,
              parse_child: ParseChild, parse_atom: ParseAtom) -> DNode:
        if len(items) != 3:
            raise self.type_error(f"takes (pre-routing, module, post-routing), got {len(items)} items")
        pre_sym, body_sym, post_sym = fa.alt.args
        pre = parse_atom(pre_sym, items[0])
        pre_term = cast(PreRoute, pre.terminal)
        routed = pre_term.route(pre.alt.param_dict, t)
        if routed is None:
            raise self.type_error(f"pre-routing {pre.alt.label()} does not accept {t}")
        pre_cost = ctx.chain_cost(pre_term.ir_chain(pre.alt.param_dict, t), t)
        body = parse_child(body_sym, items[1], routed[0])
        post = parse_atom(post_sym, items[2])
        post_term = cast(PostRoute, post.terminal)
        out = post_term.route_back(post.alt.param_dict, body.out_type, routed[1])
        if out is None:
            raise self.type_error(f"post-routing {post.alt.label()} does not accept {body.out_type}"
                                  + ("" if routed[1] is not None else " (col2im needs an im2col pre-routing)"))
        post_cost = ctx.chain_cost(post_term.ir_chain(post.alt.param_dict, body.out_type, routed[1]),
                                   body.out_type)
        children = (_slot_node(pre_sym, pre, t, routed[0], pre_cost), body,
                    _slot_node(post_sym, post, body.out_type, out, post_cost))
        return DNode(symbol, fa.alt, t, out, NODE + pre_cost + body.cost + post_cost, children, routed[1])

    def lower(self, ctx: SamplingContext, node: DNode, builder: Any, value: Any,
              lower_child: Callable[[DNode, Any], Any]) -> Any:
        pre, body, post = node.children
        pre_term = cast(PreRoute, ctx.grammar.terminal(pre.alt, "pre"))
        value = builder.add_chain(pre_term.ir_chain(pre.alt.param_dict, pre.in_type), value)
        value = lower_child(body, value)
        post_term = cast(PostRoute, ctx.grammar.terminal(post.alt, "post"))
        return builder.add_chain(post_term.ir_chain(post.alt.param_dict, post.in_type, node.context), value)


# --- branching -------------------------------------------------------------------------------------------------------


ForkOption = tuple[FlatAlternative, TensorType, int, bool]
"""A fork that accepts the input: ``(alternative, branch type, number of branches, one shared child)``."""


@dataclass
class _BranchingCache:
    """One sampler's branching tables (reach tables named by :data:`ReachKey`)."""

    forks: dict[tuple[str, TensorType], list[ForkOption]] = field(default_factory=dict)
    merge_costs: dict[tuple[FlatAlternative, tuple[TensorType, ...]], Cost] = field(default_factory=dict)
    pairs: dict[tuple[str, ReachKey, TensorType, TensorType | None], list[tuple[float, Any]]] = field(
        default_factory=dict)
    operand_index: dict[tuple[FlatAlternative, ReachKey], dict[Any, list[TensorType]] | None] = field(
        default_factory=dict)
    operand_pairs: dict[tuple[FlatAlternative, ReachKey, TensorType], list[tuple[TensorType, TensorType]]] = field(
        default_factory=dict)
    first_index: dict[tuple[FlatAlternative, ReachKey], dict[Any, list[TensorType]]] = field(default_factory=dict)
    target_plans: dict[tuple[FlatAlternative, TensorType, TensorType], list[tuple[float, Any]]] = field(
        default_factory=dict)
    cheapest: dict[tuple[FlatAlternative, TensorType, TensorType], Cost | None] = field(default_factory=dict)


class Branching(Combinator):
    """``branching(fork, M, merge)``: fork into k branches, a module per branch, aggregate (einspace's B).

    With a fork that shares its child (k = 4, 8) one module is sampled and copied into every branch (separate
    weights); otherwise each branch gets its own module.
    """

    name = "branching"
    slots = ("fork", "body", "merge")
    slot_roles = ("fork", "module", "merge")

    def _forks(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType) -> list[tuple[Any, ...]]:
        cache = ctx.cache(self, _BranchingCache)
        key = (fa.alt.args[0], t)
        found = cache.forks.get(key)
        if found is None:
            found = []
            for fork in ctx.alternatives(fa.alt.args[0]):
                term: Fork = fork.terminal  # type: ignore[assignment]
                branches = term.branches(fork.alt.param_dict, t)
                if branches and all(ctx.admissible(b) for b in branches):
                    found.append((fork, branches[0], len(branches), term.shares_child(fork.alt.param_dict)))
            cache.forks[key] = found
        return found

    def _merge(self, merge: FlatAlternative, types: Sequence[TensorType]) -> TensorType | None:
        term: Merge = merge.terminal  # type: ignore[assignment]
        return term.merge(merge.alt.param_dict, types)

    def _merge_cost(self, ctx: SamplingContext, merge: FlatAlternative, types: Sequence[TensorType]) -> Cost:
        """Params and FLOPs of the aggregation itself (a dot product's matmul costs FLOPs; memoised)."""
        costs = ctx.cache(self, _BranchingCache).merge_costs
        key = (merge, tuple(types))
        found = costs.get(key)
        if found is None:
            term: Merge = merge.terminal  # type: ignore[assignment]
            op, attrs = term.ir_op(merge.alt.param_dict, key[1])
            params, flops = op_cost(op, attrs, [t.shape for t in key[1]])
            found = costs[key] = Cost(params, flops, 0)
        return found

    @staticmethod
    def _reach_table(ctx: SamplingContext, symbol: str, t: TensorType, depth: int) -> tuple[ReachKey, ReachTable]:
        """The sampler's ``reach`` table at ``depth`` (``reach1`` while a combinator still fits, else ``reach0``)
        and the key naming it."""
        shallow = depth < ctx.limits.max_depth
        return (symbol, t, shallow), (ctx.reach1(symbol, t) if shallow else ctx.reach0(symbol, t))

    @staticmethod
    def _min_nodes(k: int) -> Cost:
        return Cost(nodes=1 + k)

    def min_free_cost(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType, depth: int) -> Cost | None:
        forks = self._forks(ctx, fa, t)
        return min((self._min_nodes(k) for _, _, k, _ in forks), default=None)

    def _pair_plans(self, ctx: SamplingContext, fa: FlatAlternative, first: TensorType, candidates: ReachTable,
                    candidates_key: ReachKey, target: TensorType | None) -> list[tuple[float, Any]]:
        """(merge, second target) pairs for two independent branches whose first output is ``first``.

        Memoised: ``candidates`` is the sampler's (immutable) reach table named by ``candidates_key``.
        """
        cache = ctx.cache(self, _BranchingCache)
        key = (fa.alt.args[2], candidates_key, first, target)
        found = cache.pairs.get(key)
        if found is None:
            found = self._pair_plans_uncached(ctx, fa, first, candidates, candidates_key, target)
            cache.pairs[key] = found
        return found

    def _operand_index(self, ctx: SamplingContext, merge: FlatAlternative, candidates: ReachTable,
                       candidates_key: ReachKey) -> dict[Any, list[TensorType]] | None:
        """Candidates grouped by the merge's second-operand key (None when the merge has no key)."""
        cache = ctx.cache(self, _BranchingCache)
        key = (merge, candidates_key)
        if key not in cache.operand_index:
            term: Merge = merge.terminal  # type: ignore[assignment]
            index: dict[Any, list[TensorType]] = {}
            for cand in candidates:
                k = term.operand_key(merge.alt.param_dict, cand, 1)
                if k is NotImplemented:
                    cache.operand_index[key] = None
                    break
                index.setdefault(k, []).append(cand)
            else:
                cache.operand_index[key] = index
        return cache.operand_index[key]

    def _pair_plans_uncached(self, ctx: SamplingContext, fa: FlatAlternative, first: TensorType,
                             candidates: ReachTable, candidates_key: ReachKey,
                             target: TensorType | None) -> list[tuple[float, Any]]:
        plans = []
        for merge in ctx.alternatives(fa.alt.args[2]):
            term: Merge = merge.terminal  # type: ignore[assignment]
            partners = NotImplemented if target is None else term.partners(merge.alt.param_dict, first, target)
            if partners is not NotImplemented:
                seconds = [s for s in partners if s in candidates]
            else:
                index = self._operand_index(ctx, merge, candidates, candidates_key)
                if index is None:
                    seconds = [s for s in candidates if term.merge(merge.alt.param_dict, (first, s)) is not None]
                else:
                    seconds = index.get(term.operand_key(merge.alt.param_dict, first, 0), [])
            for second in seconds:
                out = term.merge(merge.alt.param_dict, (first, second))
                if out is not None and ctx.admissible(out) and (target is None or out == target):
                    mcost = self._merge_cost(ctx, merge, (first, second))
                    plans.append((merge.prob * candidates[second].mass, (merge, second, out, mcost)))
        return plans

    def expand_free(self, ctx: SamplingContext, symbol: str, fa: FlatAlternative, t: TensorType, depth: int,
                    budget: Cost, rng: random.Random) -> DNode:
        forks = [(f.prob, (f, tb, k, s)) for f, tb, k, s in self._forks(ctx, fa, t)
                 if self._min_nodes(k).fits(budget)]
        fork, t_b, k, shared = weighted_choice(rng, forks)
        fork_node = _slot_node(fa.alt.args[0], fork, t, t_b)
        body_sym, merge_sym = fa.alt.args[1], fa.alt.args[2]
        room = budget - NODE
        if shared:
            child = ctx.expand(body_sym, t_b, None, depth + 1, room.divided(k), rng)
            spent = NODE + child.cost.times(k)
            merges = [(m.prob, (m, out)) for m in ctx.alternatives(merge_sym)
                      if (out := self._merge(m, [child.out_type] * k)) is not None and ctx.admissible(out)
                      and (spent + self._merge_cost(ctx, m, [child.out_type] * k)).fits(budget)]
            if not merges:
                raise SamplingBugError(f"branching: no aggregation of {merge_sym!r} accepts {k} x {child.out_type}; "
                                       "give the rule an 'add' or 'concat' alternative")
            merge, out = weighted_choice(rng, merges)
            mcost = self._merge_cost(ctx, merge, [child.out_type] * k)
            children = (fork_node, child, _slot_node(merge_sym, merge, child.out_type, out, mcost))
            return DNode(symbol, fa.alt, t, out, spent + mcost, children, k)
        candidates_key, candidates = self._reach_table(ctx, body_sym, t_b, depth + 1)
        firsts = [(r.mass, ty) for ty, r in candidates.items() if r.cost.fits(room)]
        while True:  # lazily prune first-branch types that no aggregation can pair (finite, never fails)
            first = weighted_choice(rng, firsts)
            pairs = [(w, p) for w, p in self._pair_plans(ctx, fa, first, candidates, candidates_key, None)
                     if (candidates[first].cost + candidates[p[1]].cost + p[3]).fits(room)]
            if pairs or len(firsts) == 1:
                break
            firsts = [(w, ty) for w, ty in firsts if ty != first]
        merge, second, out, _ = weighted_choice(rng, pairs)
        targets = [first] + [second] * (k - 1)
        return self._expand_children(ctx, symbol, fa, t, fork_node, targets, merge, out, depth, room, rng, candidates)

    def _expand_children(self, ctx: SamplingContext, symbol: str, fa: FlatAlternative, t: TensorType, fork_node: DNode,
                         targets: list[TensorType], merge: FlatAlternative, out: TensorType, depth: int,
                         room: Cost, rng: random.Random, reach: ReachTable) -> DNode:
        body_sym = fa.alt.args[1]
        mcost = self._merge_cost(ctx, merge, targets)
        children, spent = [], mcost
        for i, target in enumerate(targets):
            reserve = Cost()
            for later in targets[i + 1:]:
                reserve = reserve + reach[later].cost
            child = ctx.expand(body_sym, fork_node.out_type, target, depth + 1, room - spent - reserve, rng)
            children.append(child)
            spent = spent + child.cost
        merge_node = _slot_node(fa.alt.args[2], merge, children[0].out_type, out, mcost)
        return DNode(symbol, fa.alt, t, out, NODE + spent, (fork_node, *children, merge_node))

    def _iter_target_plans(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType,
                           target: TensorType) -> Iterator[tuple[float, Any]]:
        """Yield ``(weight, plan)`` for every fork, leaf child targets and merge that produce ``target``."""
        body_sym = fa.alt.args[1]
        for fork, t_b, k, shared in self._forks(ctx, fa, t):
            reach = ctx.reach0(body_sym, t_b)
            reach_key = (body_sym, t_b, False)
            if shared:
                for merge in ctx.alternatives(fa.alt.args[2]):
                    term: Merge = merge.terminal  # type: ignore[assignment]
                    mid = term.identical_operand(merge.alt.param_dict, target, k)
                    mids = list(reach) if mid is NotImplemented else ([mid] if mid in reach else [])
                    for mid in mids:
                        if self._merge(merge, [mid] * k) == target:
                            r = reach[mid]
                            cost = NODE + r.cost.times(k) + self._merge_cost(ctx, merge, [mid] * k)
                            yield (fork.prob * r.mass * merge.prob, (fork, t_b, k, True, [mid], merge, cost))
            elif k == 2:
                for merge in ctx.alternatives(fa.alt.args[2]):
                    for first, second in self._operand_pairs(ctx, merge, reach, reach_key, target):
                        mcost = self._merge_cost(ctx, merge, (first, second))
                        yield (fork.prob * reach[first].mass * merge.prob * reach[second].mass,
                               (fork, t_b, k, False, [first, second], merge,
                                NODE + reach[first].cost + reach[second].cost + mcost))

    def _operand_pairs(self, ctx: SamplingContext, merge: FlatAlternative, reach: ReachTable, reach_key: ReachKey,
                       target: TensorType) -> list[tuple[TensorType, TensorType]]:
        """Pairs of leaf outputs in ``reach`` (the table named by ``reach_key``) that ``merge`` aggregates into
        ``target`` (memoised; first operands looked up through the merge's ``first_key`` index instead of tried one
        by one)."""
        cache = ctx.cache(self, _BranchingCache)
        key = (merge, reach_key, target)
        found = cache.operand_pairs.get(key)
        if found is None:
            term: Merge = merge.terminal  # type: ignore[assignment]
            params = merge.alt.param_dict
            wanted = term.target_key(params, target)
            if wanted is NotImplemented:
                firsts = list(reach)
            else:
                index_key = (merge, reach_key)
                index = cache.first_index.get(index_key)
                if index is None:
                    index = {}
                    for cand in reach:
                        index.setdefault(term.first_key(params, cand), []).append(cand)
                    cache.first_index[index_key] = index
                firsts = index.get(wanted, [])
            found = []
            for first in firsts:
                partners = term.partners(params, first, target)
                if partners is NotImplemented:
                    partners = [s for s in reach if term.merge(params, (first, s)) == target]
                found.extend((first, second) for second in partners
                             if second in reach and term.merge(params, (first, second)) == target)
            cache.operand_pairs[key] = found
        return found

    def _target_plans(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType,
                      target: TensorType) -> list[tuple[float, Any]]:
        cache = ctx.cache(self, _BranchingCache)
        key = (fa, t, target)
        found = cache.target_plans.get(key)
        if found is None:
            found = list(self._iter_target_plans(ctx, fa, t, target))
            cache.target_plans[key] = found
        return found

    def min_plan_cost(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType, target: TensorType,
                      depth: int) -> Cost | None:
        """The cheapest plan per input and target type (memoised)."""
        cache = ctx.cache(self, _BranchingCache)
        key = (fa, t, target)
        if key in cache.cheapest:
            return cache.cheapest[key]
        cheapest: Cost | None = None
        for _, p in self._iter_target_plans(ctx, fa, t, target):
            cheapest = p[-1] if cheapest is None else cheapest.min(p[-1])
        cache.cheapest[key] = cheapest
        return cheapest

    def plans(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType, target: TensorType, depth: int,
              budget: Cost) -> list[tuple[float, Any]]:
        return [(w, p) for w, p in self._target_plans(ctx, fa, t, target) if p[-1].fits(budget)]

    def expand_planned(self, ctx: SamplingContext, symbol: str, fa: FlatAlternative, t: TensorType, target: TensorType,
                       plans: Any, depth: int, budget: Cost, rng: random.Random) -> DNode:
        fork, t_b, k, shared, targets, merge, _ = weighted_choice(rng, plans)
        fork_node = _slot_node(fa.alt.args[0], fork, t, t_b)
        room = budget - NODE
        reach = ctx.reach0(fa.alt.args[1], t_b)
        if shared:
            mcost = self._merge_cost(ctx, merge, [targets[0]] * k)
            child = ctx.expand(fa.alt.args[1], t_b, targets[0], depth + 1, (room - mcost).divided(k), rng)
            children = (fork_node, child, _slot_node(fa.alt.args[2], merge, child.out_type, target, mcost))
            return DNode(symbol, fa.alt, t, target, NODE + child.cost.times(k) + mcost, children, k)
        return self._expand_children(ctx, symbol, fa, t, fork_node, targets, merge, target, depth, room, rng, reach)

    def shallow_outputs(self, ctx: SamplingContext, fa: FlatAlternative, t: TensorType) -> ReachTable:
        """Branches filled with the same leaf output (the diagonal), aggregated by every applicable merge."""
        found: ReachTable = {}
        for fork, t_b, k, _shared in self._forks(ctx, fa, t):
            for mid, r in ctx.reach0(fa.alt.args[1], t_b).items():
                for merge in ctx.alternatives(fa.alt.args[2]):
                    out = self._merge(merge, [mid] * k)
                    if out is None:
                        continue
                    cost = NODE + r.cost.times(k) + self._merge_cost(ctx, merge, [mid] * k)
                    mass = fa.prob * fork.prob * r.mass * merge.prob
                    prev = found.get(out)
                    found[out] = Reach(cost, mass) if prev is None else Reach(prev.cost.min(cost), prev.mass + mass)
        return found

    def parse(self, ctx: SamplingContext, symbol: str, fa: FlatAlternative, items: Sequence[Any], t: TensorType,
              parse_child: ParseChild, parse_atom: ParseAtom) -> DNode:
        fork_sym, body_sym, merge_sym = fa.alt.args
        if len(items) < 3:
            raise self.type_error("takes (fork, module..., merge)")
        fork = parse_atom(fork_sym, items[0])
        term: Fork = fork.terminal  # type: ignore[assignment]
        branches = term.branches(fork.alt.param_dict, t)
        if branches is None:
            raise self.type_error(f"fork {fork.alt.label()} does not accept {t}")
        k, shared = len(branches), term.shares_child(fork.alt.param_dict)
        expected = 1 if shared else k
        if len(items) - 2 != expected:
            raise self.type_error(f"fork {fork.alt.label()} takes {expected} module(s), got {len(items) - 2}"
                                  + (" (k > 2 shares one module across branches)" if shared else ""))
        children = [parse_child(body_sym, item, branches[0]) for item in items[1:-1]]
        merge = parse_atom(merge_sym, items[-1])
        outs = [c.out_type for c in children] * (k if shared else 1)
        out = self._merge(merge, outs)
        if out is None:
            raise self.type_error(f"aggregation {merge.alt.label()} does not accept {', '.join(map(str, outs))}")
        fork_node = _slot_node(fork_sym, fork, t, branches[0])
        mcost = self._merge_cost(ctx, merge, outs)
        merge_node = _slot_node(merge_sym, merge, children[0].out_type, out, mcost)
        body_cost = children[0].cost.times(k) if shared else sum((c.cost for c in children), Cost())
        return DNode(symbol, fa.alt, t, out, NODE + body_cost + mcost, (fork_node, *children, merge_node),
                     k if shared else None)

    def lower(self, ctx: SamplingContext, node: DNode, builder: Any, value: Any,
              lower_child: Callable[[DNode, Any], Any]) -> Any:
        fork_node, *bodies, merge_node = node.children
        fork = cast(Fork, ctx.grammar.terminal(fork_node.alt, "fork"))
        params = fork_node.alt.param_dict
        k = len(fork.branches(params, fork_node.in_type) or [])
        values = builder.add_fork(fork.name, params, value, k)
        if isinstance(node.context, int):  # one shared module, copied into every branch
            bodies = bodies * node.context
        outs = [lower_child(body, v) for body, v in zip(bodies, values)]
        merge = cast(Merge, ctx.grammar.terminal(merge_node.alt, "merge"))
        op, attrs = merge.ir_op(merge_node.alt.param_dict, [b.out_type for b in bodies])
        return builder.add_merge(op, attrs, outs)


COMBINATORS: tuple[Terminal, ...] = (Sequential(), Routing(), Branching())
