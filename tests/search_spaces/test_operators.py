"""Mutation and crossover (``search_spaces.operators``): type-preserving below the root, within budget, seeded,
motif-aware."""

from __future__ import annotations

import pytest

from search_spaces.derivation import DNode
from search_spaces.operators import crossover, enforce_shared, mutate
from search_spaces.spaces import Space, get_space


def _at(root: DNode, path: tuple[int, ...]) -> DNode:
    for i in path:
        root = root.children[i]
    return root


@pytest.fixture(scope="module")
def einspace() -> Space:
    return get_space("einspace", (3, 16, 16))


def test_mutation_resamples_one_subtree_with_the_same_types(einspace: Space) -> None:
    budget = einspace.sampler.limits.budget()
    changed = 0
    for seed in range(20):
        parent = einspace.sample(seed).root
        child = mutate(einspace.sampler, parent, seed)
        assert child.operator in {"mutation", "copy"}
        if child.operator == "copy":
            assert child.root == parent
            continue
        old, new = _at(parent, child.path), _at(child.root, child.path)
        assert child.replaced == old.to_sexpr()
        assert (new.symbol, new.in_type) == (old.symbol, old.in_type)
        if child.path:  # an inner subtree keeps its output type; the whole network (path ()) may change it
            assert new.out_type == old.out_type and child.root.out_type == parent.out_type
        assert child.root.cost.fits(budget)
        assert einspace.parse(child.root.to_sexpr()).root == child.root
        changed += 1
    assert changed >= 15


def test_mutation_and_crossover_are_deterministic_for_a_seed(einspace: Space) -> None:
    a, b = einspace.sample(1).root, einspace.sample(2).root
    assert mutate(einspace.sampler, a, 7) == mutate(einspace.sampler, a, 7)
    assert crossover(einspace.sampler, a, b, 7) == crossover(einspace.sampler, a, b, 7)


def test_crossover_grafts_a_compatible_subtree_of_the_other_parent(einspace: Space) -> None:
    grafted = 0
    for seed in range(20):
        a = einspace.sample(seed).root
        b = mutate(einspace.sampler, a, seed + 100).root  # a relative: many subtrees of the same types
        child = crossover(einspace.sampler, a, b, seed)
        if child.operator == "copy":
            assert child.root == a
            continue
        assert child.operator == "crossover"
        new = _at(child.root, child.path)
        donors = {node.to_sexpr() for _, node in b.walk()}
        assert new.to_sexpr() in donors
        old = _at(a, child.path)
        assert (new.symbol, new.in_type, new.out_type) == (old.symbol, old.in_type, old.out_type)
        assert child.root.cost.fits(einspace.sampler.limits.budget())
        grafted += 1
    assert grafted >= 5


def test_a_change_inside_a_shared_motif_reaches_every_use() -> None:
    space = get_space("nb201", (3, 16, 16))
    for seed in range(5):
        child = mutate(space.sampler, space.sample(seed).root, seed)
        cells = {node.to_sexpr() for _, node in child.root.walk() if node.symbol == "cell"}
        assert len(cells) == 1  # the 15 cells are one motif, before and after the mutation


def test_enforce_shared_leaves_a_consistent_derivation_alone() -> None:
    space = get_space("nb201", (3, 16, 16))
    root = space.sample(0).root
    assert enforce_shared(space.sampler, root, ()) == root


def test_template_mutation_changes_only_the_named_bit() -> None:
    space = get_space("seq-templates", (1, 40))
    parent = space.sample(3)
    for seed in range(6):
        child = mutate(space.sampler, parent.root, seed, symbols={"mixer"})
        assert child.operator in {"mutation", "copy"}
        if child.operator == "mutation":
            assert _at(child.root, child.path).symbol == "mixer" or any(
                node.symbol == "mixer" for _, node in _at(parent.root, child.path).walk())
