"""Topology operators (``search_spaces.topology``): residual, diamond, cell201 and repeat keep the type, take the
number of edges they declare, and cost their edges plus one node."""

from __future__ import annotations

import pytest

from search_spaces import parse_grammar
from search_spaces.derivation import Cost
from search_spaces.exceptions import DerivationTypeError
from search_spaces.planning import NODE
from search_spaces.sampler import Limits, Sampler
from search_spaces.sexpr import DerivationParser
from search_spaces.topology import TOPOLOGY_OPERATORS
from search_spaces.types import TensorType

GRAMMAR = """
start network;
network -> residual(edge, edge, edge) | diamond(edge, edge, edge, edge)
         | cell201(edge, edge, edge, edge, edge, edge) | repeat(edge, n = 3);
edge -> skip_connect | nor_conv_1x1 | nor_conv_3x3 | avg_pool_3x3;
"""
T = TensorType("image", (8, 8, 8))
EDGES = {"residual": 3, "diamond": 4, "cell201": 6, "repeat": 3}


@pytest.fixture(scope="module")
def sampler() -> Sampler:
    return Sampler(parse_grammar(GRAMMAR, name="topology"), T, Limits(max_depth=3, max_nodes=20))


def test_every_operator_keeps_the_type_and_takes_its_edges(sampler: Sampler) -> None:
    seen = set()
    for seed in range(40):
        root = sampler.sample(seed)
        seen.add(root.alt.term)
        assert root.in_type == root.out_type == T
        assert len(root.children) == EDGES[root.alt.term]
        assert all(child.in_type == child.out_type == T for child in root.children)
        assert root.cost == NODE + sum((child.cost for child in root.children), Cost())
    assert seen == set(EDGES)


def test_type_preserving_operators_have_a_sole_output_and_plan_only_towards_it(sampler: Sampler) -> None:
    budget = sampler.limits.budget()
    for fa in sampler.alternatives("network"):
        comb = fa.combinator
        assert comb is not None and comb in TOPOLOGY_OPERATORS
        assert comb.sole_output(sampler, fa, T, 0) == T
        assert comb.plans(sampler, fa, T, T, 0, budget) == [(1.0, None)]
        assert comb.plans(sampler, fa, T, TensorType("image", (16, 8, 8)), 0, budget) == []
        assert comb.shallow_outputs(sampler, fa, T) == {}


def test_a_budget_too_small_for_every_edge_leaves_no_plan(sampler: Sampler) -> None:
    (cell,) = [fa for fa in sampler.alternatives("network") if fa.alt.term == "cell201"]
    assert cell.combinator.plans(sampler, cell, T, T, 0, Cost(nodes=6)) == []  # 1 node + 6 edges > 6
    assert cell.combinator.plans(sampler, cell, T, T, 0, Cost(1 << 40, 1 << 40, 7)) == [(1.0, None)]


@pytest.mark.parametrize("text, message", [
    ("(residual skip_connect skip_connect)", "takes 3 modules, got 2"),
    ("(cell201 skip_connect skip_connect skip_connect skip_connect skip_connect)", "takes 6 modules, got 5"),
    ("(repeat[n=3] skip_connect skip_connect)", "takes 3 modules, got 2"),
])
def test_wrong_numbers_of_edges_are_type_errors(sampler: Sampler, text: str, message: str) -> None:
    with pytest.raises(DerivationTypeError, match=message):
        DerivationParser(sampler).parse(text)


def test_written_topologies_parse_to_what_they_say(sampler: Sampler) -> None:
    node = DerivationParser(sampler).parse("(diamond nor_conv_3x3 skip_connect avg_pool_3x3 nor_conv_1x1)")
    assert [c.alt.term for c in node.children] == ["nor_conv_3x3", "skip_connect", "avg_pool_3x3", "nor_conv_1x1"]
    assert node.cost.params == sum(c.cost.params for c in node.children) > 0
