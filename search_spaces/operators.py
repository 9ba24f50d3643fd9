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
from search_spaces.types import TensorType


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


def _is_prefix(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return b[:len(a)] == a


def _occurrences(sampler: Sampler, root: DNode) -> dict[str, list[tuple[tuple[int, ...], DNode]]]:
    found: dict[str, list[tuple[tuple[int, ...], DNode]]] = {}
    for path, node in root.walk():
        if node.symbol in sampler.grammar.shared:
            found.setdefault(node.symbol, []).append((path, node))
    return found


def _motifs_outside(sampler: Sampler, root: DNode, path: tuple[int, ...]) -> dict[str, DNode]:
    """Shared motifs used outside the subtree at ``path`` (a resampled subtree must reuse them)."""
    motifs: dict[str, DNode] = {}
    for symbol, occurrences in _occurrences(sampler, root).items():
        for p, node in occurrences:
            if not _is_prefix(path, p) and not _is_prefix(p, path):
                motifs[symbol] = node
                break
    return motifs


def enforce_shared(sampler: Sampler, root: DNode, path: tuple[int, ...]) -> DNode | None:
    """Make every use of each shared symbol equal to the one changed at ``path`` (re-typed where it is used).

    Returns None when the changed motif does not type-check at another use.
    """
    from search_spaces.exceptions import SearchSpaceError

    for occurrences in _occurrences(sampler, root).values():
        if len({node.to_sexpr() for _, node in occurrences}) <= 1:
            continue
        sources = [o for o in occurrences if _is_prefix(o[0], path)] or [o for o in occurrences
                                                                         if _is_prefix(path, o[0])]
        if not sources:
            return None
        source = sources[0][1]
        for p, node in occurrences:
            if node.to_sexpr() != source.to_sexpr():
                try:
                    root = replace_at(root, p, sampler.retype(source, node.in_type))
                except SearchSpaceError:
                    return None
    return root


def mutate(sampler: Sampler, root: DNode, rng: random.Random | int,
           symbols: frozenset[str] | set[str] | None = None) -> Offspring:
    """Resample the subtree under a random module node, preserving its input and output types.

    ``symbols`` restricts the choice to nodes deriving those non-terminals (e.g. one template bit); with no such
    node the parent is returned unchanged (operator ``"copy"``). With shared symbols, a resampled subtree reuses
    the motifs used elsewhere, and a change inside a motif is applied at every use of it.
    """
    if not isinstance(rng, random.Random):
        rng = random.Random(rng)
    total = sampler.limits.budget()
    candidates = []
    for path, node in _module_nodes(sampler, root):
        if symbols is not None and node.symbol not in symbols:
            continue
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
    if not candidates:
        return Offspring(root, "copy", ())
    if not sampler.grammar.shared:
        path, node, budget = candidates[rng.randrange(len(candidates))]
        target = None if not path else node.out_type
        new = sampler.expand(node.symbol, node.in_type, target, len(path), budget, rng, exclude=node.alt)
        return Offspring(replace_at(root, path, new), "mutation", path, node.to_sexpr())
    rng.shuffle(candidates)
    for path, node, budget in candidates:  # shared motifs: the first candidate that stays consistent and in budget
        target = None if not path else node.out_type
        with sampler.sharing(_motifs_outside(sampler, root, path)):
            new = sampler.expand(node.symbol, node.in_type, target, len(path), budget, rng, exclude=node.alt)
        child = enforce_shared(sampler, replace_at(root, path, new), path)
        if child is not None and child.cost.fits(total):
            return Offspring(child, "mutation", path, node.to_sexpr())
    return Offspring(root, "copy", ())


def crossover(sampler: Sampler, a: DNode, b: DNode, rng: random.Random | int) -> Offspring:
    """Replace a subtree of ``a`` by a type-compatible subtree of ``b`` (same non-terminal, input and output)."""
    if not isinstance(rng, random.Random):
        rng = random.Random(rng)
    total, max_depth = sampler.limits.budget(), sampler.limits.max_depth
    donors: dict[tuple[str, TensorType, TensorType], list[DNode]] = {}
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
    rng.shuffle(pairs)
    for path, node, donor in pairs:
        child = replace_at(a, path, donor)
        if sampler.grammar.shared:
            enforced = enforce_shared(sampler, child, path)
            if enforced is None or not enforced.cost.fits(total):
                continue
            child = enforced
        return Offspring(child, "crossover", path, node.to_sexpr())
    return Offspring(a, "copy", ())
