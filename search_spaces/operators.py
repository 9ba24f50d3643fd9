"""Variation operators on derivation trees that always give valid children.

- :func:`mutate` (einspace / Schrodi et al.): pick a module node uniformly among those that can be
  resampled, and re-derive its subtree from the same input type *towards the same output type*, so the rest of
  the tree still type-checks. Only nodes whose resampling is provably feasible within the remaining depth and
  budget are candidates (the root always is), so mutation never fails.
- :func:`crossover` (Schrodi et al.): swap a subtree of parent ``a`` for a subtree of parent ``b`` derived from
  the same non-terminal with the same input and output types, within budget and depth.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from search_spaces.derivation import Cost, DNode, replace_at
from search_spaces.sampler import Sampler


@dataclass(frozen=True)
class Offspring:
    """A child derivation and how it was made (for lineage records)."""

    root: DNode
    operator: str  # "mutation", "crossover" or "copy" (no compatible pair: an unchanged copy of parent a)
    path: tuple[int, ...]
    replaced: str = ""  # the s-expression of the subtree that was replaced


def _multiplier(root: DNode, path: tuple[int, ...]) -> int:
    """How many copies of the node at ``path`` the network contains (shared branching children count k times)."""
    m, node = 1, root
    for i in path:
        if isinstance(node.context, int):
            m *= node.context
        node = node.children[i]
    return m


def _module_nodes(sampler: Sampler, root: DNode) -> list[tuple[tuple[int, ...], DNode]]:
    return [(path, node) for path, node in root.walk() if sampler.grammar.rule(node.symbol).category == "module"]


def mutate(sampler: Sampler, root: DNode, rng: random.Random | int) -> Offspring:
    """Resample the subtree under a random module node, preserving its input and output types."""
    if not isinstance(rng, random.Random):
        rng = random.Random(rng)
    total = sampler.limits.budget()
    candidates = []
    for path, node in _module_nodes(sampler, root):
        m = _multiplier(root, path)
        budget = (total - (root.cost - node.cost.times(m))).divided(m)
        if not Cost().fits(budget):
            continue
        if not path:
            feasible = sampler.root_feasible(budget)
        else:
            feasible = sampler.can_reach(node.symbol, node.in_type, node.out_type, len(path), budget)
        if feasible:
            candidates.append((path, node, budget))
    path, node, budget = candidates[rng.randrange(len(candidates))]
    target = None if not path else node.out_type
    new = sampler.expand(node.symbol, node.in_type, target, len(path), budget, rng, exclude=node.alt)
    return Offspring(replace_at(root, path, new), "mutation", path, node.to_sexpr())


def crossover(sampler: Sampler, a: DNode, b: DNode, rng: random.Random | int) -> Offspring:
    """Replace a subtree of ``a`` by a type-compatible subtree of ``b`` (same non-terminal, input and output)."""
    if not isinstance(rng, random.Random):
        rng = random.Random(rng)
    total, max_depth = sampler.limits.budget(), sampler.limits.max_depth
    donors: dict[tuple, list[DNode]] = {}
    for _, node in _module_nodes(sampler, b):
        donors.setdefault((node.symbol, node.in_type, node.out_type), []).append(node)
    pairs = []
    for path, node in _module_nodes(sampler, a):
        if not path:
            continue
        m = _multiplier(a, path)
        for donor in donors.get((node.symbol, node.in_type, node.out_type), []):
            if donor == node or len(path) + donor.depth() > max_depth:
                continue
            if (a.cost - node.cost.times(m) + donor.cost.times(m)).fits(total):
                pairs.append((path, node, donor))
    if not pairs:
        return Offspring(a, "copy", ())
    path, node, donor = pairs[rng.randrange(len(pairs))]
    return Offspring(replace_at(a, path, donor), "crossover", path, node.to_sexpr())
