"""Type-directed sampling of derivations: every choice that cannot type-check is pruned before choosing.

The sampler expands a non-terminal for a known input type, either *free* (any output type) or towards an exact
*target* output type (needed where a parent must combine several branches, e.g. ``add``). It keeps one invariant:

    a non-terminal is only ever expanded towards a target that some alternative can provably reach within the
    remaining depth and budget,

proved with two memoised reachability tables: ``reach0(symbol, T)``, the output types a single leaf computation
produces from ``T`` (with its minimum cost), and ``reach1``, what one combinator over such leaves produces
(:mod:`search_spaces.combinators` computes it). Child targets are drawn from these tables, so every expansion
has at least one feasible alternative and a derivation never fails or backtracks.

Size control: a maximum nesting depth, and a budget of parameters, FLOPs, module nodes and elements per
tensor, all checked on the symbolic types. Costs still to be paid by later siblings are reserved before an
earlier sibling is expanded, so a budget is never exceeded.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

from search_spaces.derivation import Cost, DNode
from search_spaces.exceptions import BudgetError, InputShapeError, SearchSpaceError
from search_spaces.grammar import Alternative, Grammar
from search_spaces.limits import MAX_DEPTH, Limits
from search_spaces.ops import FREE_OPS, ShapeError, infer_shapes, op_cost
from search_spaces.planning import (
    CacheT,
    Combinator,
    FlatAlternative,
    Reach,
    ReachTable,
    SamplingBugError,
    weighted_choice,
)
from search_spaces.sexpr import DerivationParser, read_sexpr
from search_spaces.terminals.base import IrChain, Leaf
from search_spaces.types import TensorType

# re-exported: these lived here before the leaf modules search_spaces.limits and search_spaces.planning
__all__ = ["MAX_DEPTH", "CostBuilder", "FlatAlternative", "Limits", "Reach", "Sampler", "SamplingBugError",
           "minimum_budget_error", "weighted_choice"]

Option = tuple[float, FlatAlternative, tuple[TensorType, Cost] | None]
"""An alternative that may derive a symbol: ``(probability, alternative, leaf result)``, the leaf result
``(output type, cost)`` for leaves and None for combinators (whose feasibility is decided lazily)."""


class CostBuilder:
    """Lowers terminals onto shapes instead of a graph, adding up params and FLOPs (the builder protocol of
    :mod:`nas.ir.build`: ``add_op``, ``add_chain``, ``add_fork``, ``add_merge``; values are shapes)."""

    def __init__(self) -> None:
        self.params = self.flops = 0

    @property
    def cost(self) -> Cost:
        return Cost(self.params, self.flops, 0)

    def add_op(self, op: str, attrs: dict[str, Any], values: Sequence[tuple[int, ...]]) -> list[tuple[int, ...]]:
        shapes = [tuple(v) for v in values]
        p, f = op_cost(op, attrs, shapes)
        self.params, self.flops = self.params + p, self.flops + f
        return infer_shapes(op, attrs, shapes)

    def add_chain(self, chain: IrChain, value: tuple[int, ...]) -> tuple[int, ...]:
        for op, attrs in chain:
            (value,) = self.add_op(op, attrs, [value])
        return value


class Sampler:
    """Samples, checks and sizes derivations of ``grammar`` for one input type.

    One sampler caches reachability per type, so reuse it for many samples of the same space and input.
    """

    def __init__(self, grammar: Grammar, input_type: TensorType, limits: Limits | None = None):
        self.grammar = grammar
        self.input_type = input_type
        self.limits = limits or Limits()
        self._flat: dict[str, list[FlatAlternative]] = {}
        self._labels: dict[str, dict[str, list[FlatAlternative]]] = {}
        for rule in grammar.rules:
            self._flat[rule.symbol] = self._flatten(rule.symbol, 1.0, ())
            by_label: dict[str, list[FlatAlternative]] = {}
            for fa in self._flat[rule.symbol]:
                by_label.setdefault(fa.alt.label(), []).append(fa)
            self._labels[rule.symbol] = by_label
        self._combinators: dict[str, list[tuple[FlatAlternative, Combinator]]] = {
            symbol: [(fa, fa.combinator) for fa in alts if fa.combinator is not None]
            for symbol, alts in self._flat.items()}
        # the sampler's caches, each typed and owned here (they live and die with the sampler)
        self._leaf_memo: dict[tuple[str, TensorType], list[tuple[FlatAlternative, TensorType, Cost]]] = {}
        self._reach0: dict[tuple[str, TensorType], ReachTable] = {}
        self._reach1: dict[tuple[str, TensorType], ReachTable] = {}
        self._options_memo: dict[tuple[str, TensorType, TensorType | None, bool], list[Option]] = {}
        self._combinator_costs: dict[tuple[FlatAlternative, TensorType, TensorType | None, int], Cost | None] = {}
        self._min_costs: dict[tuple[str, TensorType, TensorType, int], Cost | None] = {}
        self._sole_outputs: dict[tuple[str, TensorType, int], tuple[TensorType, Cost] | None] = {}
        self._caches: dict[object, Any] = {}  # combinators' own caches (see cache())
        self._motifs: dict[str, DNode] | None = None  # shared motifs of the derivation being built
        if not input_type.numel <= self.limits.max_elements:
            raise InputShapeError(f"input {input_type} has more elements than max_elements={self.limits.max_elements}")
        if not self.root_feasible():
            unbounded = Cost(1 << 62, 1 << 62, 1 << 30)
            if self.root_feasible(unbounded):
                raise minimum_budget_error(grammar, input_type, self.limits)
            raise InputShapeError(f"no architecture of {grammar.name!r} accepts input {input_type}")

    # --- grammar access ----------------------------------------------------------------------------------------------

    def _flatten(self, symbol: str, prob: float, seen: tuple[str, ...]) -> list[FlatAlternative]:
        """The alternatives ``symbol`` reaches through unit productions; those of probability 0 (``@ 0``) are not
        part of the space: never sampled, not even when nothing else is feasible, and not parsed."""
        rule = self.grammar.rule(symbol)
        out: list[FlatAlternative] = []
        for index, alt in enumerate(rule.alternatives):
            if prob * alt.weight <= 0:
                continue
            if alt.unit:
                out.extend(FlatAlternative(fa.alt, fa.prob, fa.category, fa.terminal, index)
                           for fa in self._flatten(alt.term, prob * alt.weight, seen + (symbol,)))
            else:
                out.append(FlatAlternative(alt, prob * alt.weight, rule.category,
                                           self.grammar.terminal(alt, rule.category), index))
        return out

    def alternatives(self, symbol: str) -> list[FlatAlternative]:
        return self._flat[symbol]

    def by_label(self, symbol: str, label: str) -> list[FlatAlternative]:
        """The alternatives of ``symbol`` printed as ``label`` (several only for combinators with other slots)."""
        return self._labels[symbol].get(label, [])

    def admissible(self, t: TensorType | None) -> bool:
        """Whether ``t`` is a type whose tensors fit ``max_elements``."""
        return t is not None and t.numel <= self.limits.max_elements

    def cache(self, owner: object, factory: Callable[[], CacheT]) -> CacheT:
        """The cache ``owner`` (a combinator) keeps in this sampler, made by ``factory`` on first use."""
        found = self._caches.get(owner)
        if found is None:
            found = self._caches[owner] = factory()
        return cast(CacheT, found)  # made by this owner's factory

    # --- costs -------------------------------------------------------------------------------------------------------

    def chain_cost(self, chain: IrChain, t: TensorType) -> Cost:
        """Params and FLOPs of a chain of IR ops applied to ``t`` (no module node)."""
        params = flops = 0
        shape = t.shape
        for i, (op, attrs) in enumerate(chain):
            if op not in FREE_OPS:
                p, f = op_cost(op, attrs, [shape])
                params, flops = params + p, flops + f
            if i + 1 < len(chain):
                (shape,) = infer_shapes(op, attrs, [shape])
        return Cost(params, flops, 0)

    def leaf_cost(self, term: Leaf, params: Any, t: TensorType, out: TensorType) -> Cost:
        """Params and FLOPs of one leaf on ``t``, plus one module node; checks the ops really produce ``out``."""
        if type(term).lower is Leaf.lower:  # a plain chain of ops: the cheap path
            return self.chain_cost(term.ir_chain(params, t), t) + Cost(nodes=1)
        builder = CostBuilder()
        shape = term.lower(params, builder, t.shape, t)
        if tuple(shape) != out.shape:
            raise ShapeError(f"{term.name} lowers to shape {shape}, but its shape rule says {out.shape}")
        return builder.cost + Cost(nodes=1)

    def leaf_outputs(self, symbol: str, t: TensorType) -> list[tuple[FlatAlternative, TensorType, Cost]]:
        """Leaf alternatives of ``symbol`` applicable to ``t``: ``(alternative, output type, cost)`` (memoised)."""
        key = (symbol, t)
        found = self._leaf_memo.get(key)
        if found is None:
            found = []
            for fa in self._flat[symbol]:
                leaf = fa.leaf
                if leaf is None:
                    continue
                params = fa.alt.param_dict
                try:
                    out = leaf.out_type(params, t)
                    if out is None or not self.admissible(out):
                        continue
                    cost = self.leaf_cost(leaf, params, t, out)
                except (ShapeError, ValueError):
                    continue
                found.append((fa, out, cost))
            self._leaf_memo[key] = found
        return found

    def reach0(self, symbol: str, t: TensorType) -> dict[TensorType, Reach]:
        """Output types one leaf of ``symbol`` produces from ``t``, with min cost and probability mass."""
        key = (symbol, t)
        found = self._reach0.get(key)
        if found is None:
            found = {}
            for fa, out, cost in self.leaf_outputs(symbol, t):
                prev = found.get(out)
                found[out] = Reach(cost, fa.prob) if prev is None else Reach(prev.cost.min(cost), prev.mass + fa.prob)
            self._reach0[key] = found
        return found

    def reach1(self, symbol: str, t: TensorType) -> dict[TensorType, Reach]:
        """Output types of ``symbol`` from ``t`` by a leaf or by one combinator whose children are leaves.

        Only combinators with ``in_reach1`` contribute (routing: transposes, convolutions, patchifying); the
        others' shallow outputs are mostly leaf types again and cost much more to enumerate. This only narrows
        which targets are proposed to independent branches; it never admits an infeasible one.
        """
        key = (symbol, t)
        found = self._reach1.get(key)
        if found is None:
            found = dict(self.reach0(symbol, t))
            for fa, comb in self._combinators[symbol]:
                if not comb.in_reach1:
                    continue
                for out, reach in comb.shallow_outputs(self, fa, t).items():
                    if not self.admissible(out):
                        continue
                    prev = found.get(out)
                    found[out] = reach if prev is None else Reach(prev.cost.min(reach.cost), prev.mass + reach.mass)
            self._reach1[key] = found
        return found

    def reach(self, symbol: str, t: TensorType, depth: int) -> dict[TensorType, Reach]:
        """``reach1`` when a combinator still fits at ``depth``, else ``reach0``."""
        return self.reach1(symbol, t) if depth < self.limits.max_depth else self.reach0(symbol, t)

    # --- sampling ----------------------------------------------------------------------------------------------------

    def root_feasible(self, budget: Cost | None = None) -> bool:
        """Whether the start symbol has any derivation from the input type within ``budget`` (default: limits)."""
        budget = budget or self.limits.budget()
        start, t = self.grammar.start, self.input_type
        if any(cost.fits(budget) for _, _, cost in self.leaf_outputs(start, t)):
            return True
        return self.limits.max_depth > 0 and any(
            comb.feasible_free(self, fa, t, 0, budget) for fa, comb in self._combinators[start])

    def sample(self, rng: random.Random | int) -> DNode:
        """One derivation of the start symbol (deterministic for an integer seed)."""
        if not isinstance(rng, random.Random):
            rng = random.Random(rng)
        with self.sharing({}):
            return self.expand(self.grammar.start, self.input_type, None, 0, self.limits.budget(), rng)

    @contextlib.contextmanager
    def sharing(self, motifs: dict[str, DNode]) -> Iterator[None]:
        """Within the block, expansions of shared symbols reuse ``motifs`` (filled by the first expansion)."""
        previous, self._motifs = self._motifs, motifs
        try:
            yield
        finally:
            self._motifs = previous

    def retype(self, node: DNode, t: TensorType) -> DNode:
        """The same derivation as ``node`` applied to input type ``t`` (raises DerivationTypeError if it does not
        type-check there)."""
        if node.in_type == t:
            return node
        return DerivationParser(self).parse_symbol(node.symbol, read_sexpr(node.to_sexpr()), t)

    def _expand_shared(self, symbol: str, t: TensorType, target: TensorType | None, depth: int, budget: Cost,
                       rng: random.Random, exclude: Alternative | None) -> DNode:
        motif = self._motifs.get(symbol) if self._motifs is not None else None
        if motif is None:
            node = self._expand(symbol, t, t, depth, budget, rng, exclude)  # motifs keep their input type
            if self._motifs is not None:
                self._motifs[symbol] = node
            return node
        try:
            node = self.retype(motif, t)
        except SearchSpaceError as err:
            raise SamplingBugError(f"shared {symbol!r} does not type-check on {t}: {err}") from None
        if target is not None and node.out_type != target:
            raise SamplingBugError(f"shared {symbol!r} reused on {t} gives {node.out_type}, not {target}")
        # Reuses are charged but not checked against the budget: the motif was sized at its first use, and a
        # later, wider stage cannot shrink it. Budgets of spaces with shared motifs bound the first use only.
        return node

    def expand(self, symbol: str, t: TensorType, target: TensorType | None, depth: int, budget: Cost,
               rng: random.Random, exclude: Alternative | None = None) -> DNode:
        """Derive ``symbol`` from input type ``t`` (towards ``target`` when given) within ``budget``."""
        if symbol in self.grammar.shared:
            return self._expand_shared(symbol, t, target, depth, budget, rng, exclude)
        return self._expand(symbol, t, target, depth, budget, rng, exclude)

    def _options(self, symbol: str, t: TensorType, target: TensorType | None, depth: int) -> list[Option]:
        """The alternatives that may derive ``symbol`` from ``t`` (towards ``target``) at ``depth``:
        ``(prob, alternative, leaf result)`` with leaf result ``(out, cost)`` for leaves and None for combinators,
        whose feasibility :meth:`_combinator_cost` decides lazily (memoised)."""
        key = (symbol, t, target, depth < self.limits.max_depth)
        found = self._options_memo.get(key)
        if found is None:
            found = [(fa.prob, fa, (out, cost)) for fa, out, cost in self.leaf_outputs(symbol, t)
                     if target is None or out == target]
            if depth < self.limits.max_depth:
                found += [(fa.prob, fa, None) for fa, _ in self._combinators[symbol]]
            self._options_memo[key] = found
        return found

    def _combinator_cost(self, fa: FlatAlternative, t: TensorType, target: TensorType | None,
                         depth: int) -> Cost | None:
        """The cost within which combinator ``fa`` surely derives from ``t`` (towards ``target``); None: it can't."""
        key = (fa, t, target, depth)
        if key in self._combinator_costs:
            return self._combinator_costs[key]
        comb = fa.combinator
        assert comb is not None, "only combinators are costed lazily"
        cost = comb.min_free_cost(self, fa, t, depth) if target is None else comb.min_plan_cost(self, fa, t, target,
                                                                                                 depth)
        self._combinator_costs[key] = cost
        return cost

    def _feasible(self, entry: Option, t: TensorType, target: TensorType | None, depth: int, budget: Cost) -> bool:
        _, fa, leaf = entry
        cost = leaf[1] if leaf is not None else self._combinator_cost(fa, t, target, depth)
        return cost is not None and cost.fits(budget)

    def _expand(self, symbol: str, t: TensorType, target: TensorType | None, depth: int, budget: Cost,
                rng: random.Random, exclude: Alternative | None = None) -> DNode:
        # Lazy pruning: draw by weight, check the drawn alternative statically, drop it and redraw when it cannot
        # type-check within the budget. No derivation is built before the check, and the draw has exactly the
        # distribution of "prune every infeasible alternative, renormalise, choose" without costing the others.
        candidates = [e for e in self._options(symbol, t, target, depth) if e[1].alt != exclude]
        chosen = None
        while candidates:
            entry = weighted_choice(rng, [(e[0], e) for e in candidates])
            if self._feasible(entry, t, target, depth, budget):
                chosen = entry
                break
            candidates.remove(entry)
        if chosen is None:
            if exclude is not None:
                return self._expand(symbol, t, target, depth, budget, rng)
            raise SamplingBugError(f"no feasible alternative for {symbol!r} from {t} to {target} "
                                   f"(depth {depth}, budget {budget}) in grammar {self.grammar.name!r}")
        _, fa, leaf = chosen
        if leaf is not None:
            out, cost = leaf
            return DNode(symbol, fa.alt, t, out, cost)
        comb = fa.combinator
        assert comb is not None, "an option without a leaf result is a combinator"
        if target is None:
            return comb.expand_free(self, symbol, fa, t, depth, budget, rng)
        plans = comb.plans(self, fa, t, target, depth, budget)
        return comb.expand_planned(self, symbol, fa, t, target, plans, depth, budget, rng)

    def min_cost_to(self, symbol: str, t: TensorType, target: TensorType, depth: int) -> Cost | None:
        """The cheapest known derivation of ``symbol`` from ``t`` to ``target`` at ``depth`` (None: none known)."""
        key = (symbol, t, target, depth)
        if key in self._min_costs:
            return self._min_costs[key]
        self._min_costs[key] = None  # guards against recursion through the same key
        best: Cost | None = None
        for _, out, cost in self.leaf_outputs(symbol, t):
            if out == target:
                best = cost if best is None else best.min(cost)
        if depth < self.limits.max_depth:
            for fa, comb in self._combinators[symbol]:
                plan_cost = comb.min_plan_cost(self, fa, t, target, depth)
                if plan_cost is not None:
                    best = plan_cost if best is None else best.min(plan_cost)
        self._min_costs[key] = best
        return best

    def sole_output(self, symbol: str, t: TensorType, depth: int) -> tuple[TensorType, Cost] | None:
        """When every derivation of ``symbol`` from ``t`` has the same output type (templates: stems, reductions,
        type-preserving stages), that type and the cheapest derivation's cost; else None. Lets a free sequential
        reserve exactly what its later children will need."""
        key = (symbol, t, depth)
        if key in self._sole_outputs:
            return self._sole_outputs[key]
        self._sole_outputs[key] = None  # guards against recursion through the same key
        outs: set[TensorType] = {out for _, out, _ in self.leaf_outputs(symbol, t)}
        if len(outs) > 1:
            return None
        if depth < self.limits.max_depth:
            for fa, comb in self._combinators[symbol]:
                sole = comb.sole_output(self, fa, t, depth)
                if sole is None:
                    return None
                outs.add(sole)
        result: tuple[TensorType, Cost] | None = None
        if len(outs) == 1:
            (out,) = outs
            cost = self.min_cost_to(symbol, t, out, depth)
            result = None if cost is None else (out, cost)
        self._sole_outputs[key] = result
        return result

    def can_reach(self, symbol: str, t: TensorType, target: TensorType, depth: int, budget: Cost) -> bool:
        """Whether :meth:`expand` towards ``target`` has a feasible alternative."""
        for _, out, cost in self.leaf_outputs(symbol, t):
            if out == target and cost.fits(budget):
                return True
        return any(self._feasible(e, t, target, depth, budget) for e in self._options(symbol, t, target, depth))


def minimum_budget_error(grammar: Grammar, t: TensorType, limits: Limits) -> BudgetError:
    return BudgetError(f"no architecture of {grammar.name!r} for input {t} fits the budget "
                       f"(params <= {limits.max_params:,}, flops <= {limits.max_flops:,}, nodes <= {limits.max_nodes})")
