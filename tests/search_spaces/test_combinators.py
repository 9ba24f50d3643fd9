"""The combinators (``search_spaces.combinators``, on the ``Combinator`` contract of ``search_spaces.planning``):
derivations towards a target type reach it, shallow outputs are what a one-combinator derivation gives, costs
add up, and the caches belong to the sampler, not to the (shared) combinator objects."""

from __future__ import annotations

import random

import pytest

from search_spaces.builtin import default_registry
from search_spaces.combinators import COMBINATORS, Branching, Routing, Sequential
from search_spaces.derivation import Cost
from search_spaces.planning import NODE, Combinator
from search_spaces.sampler import Sampler
from search_spaces.spaces import Space, get_space
from search_spaces.types import TensorType

IMAGE = TensorType("image", (3, 16, 16))


@pytest.fixture(scope="module")
def space() -> Space:
    return get_space("einspace", IMAGE.shape)


def _combinator_alternatives(sampler: Sampler, kind: type[Combinator]) -> list:
    return [fa for fa in sampler.alternatives("module") if isinstance(fa.terminal, kind)]


def test_every_builtin_combinator_honours_the_contract() -> None:
    registry = default_registry()
    for comb in COMBINATORS:
        assert isinstance(comb, Combinator)
        assert registry.get(comb.name, "module") is comb
    with pytest.raises(TypeError, match="abstract"):
        type("Half", (Combinator,), {"name": "half"})()  # a combinator that implements nothing cannot exist


@pytest.mark.parametrize("kind", [Sequential, Routing, Branching])
def test_planned_derivations_reach_their_target(space: Space, kind: type[Combinator]) -> None:
    sampler, rng = space.sampler, random.Random(0)
    budget = sampler.limits.budget()
    (fa,) = _combinator_alternatives(sampler, kind)
    comb = fa.combinator
    targets = sorted(sampler.reach1("module", IMAGE), key=str)
    reached = 0
    for target in targets:
        if reached == 12:
            break
        plans = comb.plans(sampler, fa, IMAGE, target, 1, budget)
        cheapest = comb.min_plan_cost(sampler, fa, IMAGE, target, 1)
        assert bool(plans) == (cheapest is not None and cheapest.fits(budget))
        if not plans:
            continue
        node = comb.expand_planned(sampler, "module", fa, IMAGE, target, plans, 1, budget, rng)
        assert node.out_type == target and node.in_type == IMAGE and node.cost.fits(budget)
        assert node.alt is fa.alt
        reached += 1
    assert reached > 0


@pytest.mark.parametrize("kind", [Routing, Branching])
def test_shallow_outputs_are_outputs_of_one_combinator_over_leaves(space: Space, kind: type[Combinator]) -> None:
    sampler = space.sampler
    (fa,) = _combinator_alternatives(sampler, kind)
    comb = fa.combinator
    shallow = comb.shallow_outputs(sampler, fa, IMAGE)
    assert shallow
    assert (set(shallow) <= set(sampler.reach1("module", IMAGE))) == comb.in_reach1  # routing joins reach1
    for reach in shallow.values():
        assert reach.mass > 0 and reach.cost.nodes >= 2  # the combinator and at least one leaf


def test_parsed_costs_add_up(space: Space) -> None:
    seq = space.parse("(sequential linear[width=32] norm)").root
    assert seq.cost == NODE + sum((c.cost for c in seq.children), Cost())
    assert seq.out_type == TensorType("image", (3, 16, 32))
    shared = space.parse("(branching clone[k=4] linear[width=16] add)").root  # k = 4 shares one module
    body = shared.children[1]
    assert shared.context == 4 and shared.cost == NODE + body.cost.times(4) + shared.children[2].cost
    routed = space.parse("(routing permute[order=(0,2,1)] linear[width=32] permute[order=(0,2,1)])").root
    assert routed.out_type == TensorType("image", (3, 32, 16))  # the linear layer acted on the height


def test_caches_are_owned_by_each_sampler_and_combinators_keep_no_state() -> None:
    grammar = get_space("einspace", IMAGE.shape).grammar
    states = [dict(vars(comb)) for comb in COMBINATORS]
    first, second = Sampler(grammar, IMAGE), Sampler(grammar, IMAGE)
    first.sample(0)
    assert first._caches and not second._caches  # nothing leaked from one sampler into the other
    assert [dict(vars(comb)) for comb in COMBINATORS] == states
    assert str(Sampler(grammar, IMAGE).sample(5)) == str(first.sample(5))  # the caches change no draw
