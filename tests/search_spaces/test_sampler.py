"""Sampling, mutation and crossover always give valid, compilable children (property tests with hypothesis)."""

from __future__ import annotations

import math
import random

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nas.compile.torch import compile_graph
from nas.ir.build import build_graph
from search_spaces.derivation import Cost
from search_spaces.exceptions import BudgetError, InputShapeError
from search_spaces.sampler import Limits
from search_spaces.spaces import Space, get_space
from tests.conftest import INPUTS

LABELS = sorted(INPUTS)
SEEDS = st.integers(min_value=0, max_value=2**31 - 1)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def assert_valid(space: Space, root, *, run: bool = True) -> None:
    """The tree type-checks, round-trips through its string, fits the budget, builds a linted graph and runs."""
    text = root.to_sexpr()
    again = space.parse(text).root
    assert again == root, "parse(str(d)) must rebuild the same typed tree"
    assert again.to_sexpr() == text
    assert root.in_type == space.input_type
    assert root.cost.fits(space.limits.budget())
    assert root.depth() <= space.limits.max_depth
    for _, node in root.walk():
        assert node.out_type.numel <= space.limits.max_elements
    from search_spaces.derivation import Derivation

    graph = build_graph(space, Derivation(space.name, root), num_classes=10)
    graph.lint()
    head = graph.num_params() - root.cost.params
    assert head > 0 and graph.flops() - root.cost.flops >= 0
    if run:
        torch.manual_seed(0)
        module = compile_graph(graph).eval()
        with torch.no_grad():
            out = module(torch.randn(2, *space.input_type.shape))
        assert out.shape == (2, 10)
        assert sum(p.numel() for p in module.parameters()) == graph.num_params()


@SETTINGS
@given(label=st.sampled_from(LABELS), seed=SEEDS)
def test_every_sample_is_valid(spaces, label: str, seed: int) -> None:
    space = spaces[label]
    assert_valid(space, space.sample(seed).root)


@SETTINGS
@given(label=st.sampled_from(LABELS), seed=SEEDS)
def test_sampling_is_deterministic_for_a_seed(spaces, label: str, seed: int) -> None:
    space = spaces[label]
    fresh = get_space(space.name, space.input_type.shape)  # a new sampler with cold caches
    assert str(space.sample(seed)) == str(fresh.sample(seed))


@SETTINGS
@given(label=st.sampled_from(LABELS), seed=SEEDS, mseed=SEEDS)
def test_mutation_gives_valid_children_with_types_preserved(spaces, label: str, seed: int, mseed: int) -> None:
    space = spaces[label]
    parent = space.sample(seed)
    child, info = space.mutate(parent, mseed)
    assert info.operator == "mutation"
    assert_valid(space, child.root)
    if info.path:  # a non-root node keeps its input and output types, so the rest of the tree is untouched
        assert child.root.out_type == parent.root.out_type
        old, new = parent.root.at(info.path), child.root.at(info.path)
        assert (old.in_type, old.out_type) == (new.in_type, new.out_type)


@SETTINGS
@given(label=st.sampled_from(LABELS), seed=SEEDS, other=SEEDS, xseed=SEEDS)
def test_crossover_gives_valid_children(spaces, label: str, seed: int, other: int, xseed: int) -> None:
    space = spaces[label]
    a = space.sample(seed)
    b = space.mutate(a, other)[0] if other % 2 else space.sample(other)  # related and unrelated parents
    child, info = space.crossover(a, b, xseed)
    assert_valid(space, child.root)
    if info.operator == "crossover":
        donor_strings = {n.to_sexpr() for _, n in b.root.walk()}
        assert child.root.at(info.path).to_sexpr() in donor_strings


def test_crossover_of_related_parents_usually_swaps() -> None:
    space = get_space("einspace", (3, 32, 32))
    swapped = sum(space.crossover(a := space.sample(s), space.mutate(a, s)[0], s)[1].operator == "crossover"
                  for s in range(60))
    assert swapped >= 30


def test_mutation_changes_the_architecture_mostly() -> None:
    space = get_space("einspace", (1, 8, 8))
    changed = sum(str(space.mutate(d := space.sample(s), s)[0]) != str(d) for s in range(60))
    assert changed >= 45


def test_budgets_are_respected_exactly() -> None:
    limits = Limits(max_depth=6, max_nodes=12, max_params=20_000, max_flops=2_000_000, max_elements=1 << 14)
    space = get_space("einspace", (3, 32, 32), limits=limits)
    for seed in range(150):
        d = space.sample(seed)
        assert d.cost.fits(Cost(20_000, 2_000_000, 12)) and d.depth <= 6
        assert all(n.out_type.numel <= 1 << 14 for _, n in d.root.walk())


def test_default_budget_keeps_sizes_sane() -> None:
    space = get_space("einspace", (3, 32, 32))
    params = sorted(build_graph(space, space.sample(s), 10).num_params() for s in range(200))
    assert params[int(0.99 * len(params))] < 5_000_000
    assert params[len(params) // 2] > 100  # not degenerate


def test_a_budget_nothing_fits_is_a_clear_error() -> None:
    with pytest.raises(BudgetError, match="fits the budget"):
        get_space("einspace", (3, 32, 32), limits=Limits(max_nodes=1))


@pytest.mark.parametrize("shape, message", [((3, 32), "takes C,H,W inputs"), ((3, 0, 4), "positive"),
                                            ((1, 2, 3, 4), "C,H,W \\(image\\) or C,L")])
def test_impossible_input_shapes_are_clear_errors(shape, message) -> None:
    with pytest.raises(InputShapeError, match=message):
        get_space("einspace", shape)


def test_input_bigger_than_element_budget_is_rejected() -> None:
    with pytest.raises(InputShapeError, match="max_elements"):
        get_space("einspace", (3, 512, 512))


def test_tiny_inputs_still_sample() -> None:
    space = get_space("einspace", (1, 1, 1))
    for seed in range(50):
        assert_valid(space, space.sample(seed).root, run=seed < 10)


def test_seeds_give_diverse_architectures() -> None:
    space = get_space("einspace", (3, 32, 32))
    strings = {str(space.sample(s)) for s in range(200)}
    assert len(strings) > 150


def test_random_instance_is_accepted_as_seed() -> None:
    space = get_space("einspace-1d", (1, 40))
    assert str(space.sample(random.Random(5))) == str(space.sample(5))


def test_computation_probability_changes_sizes() -> None:
    deep = get_space("einspace", (1, 8, 8), probabilities={"module": {"computation": 0.2}})
    shallow = get_space("einspace", (1, 8, 8), probabilities={"module": {"computation": 0.6}})
    mean = lambda sp: sum(sp.sample(s).cost.nodes for s in range(150)) / 150  # noqa: E731
    assert mean(shallow) < mean(deep)
    assert math.isfinite(mean(deep))
