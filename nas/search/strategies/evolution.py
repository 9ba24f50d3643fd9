"""Regularised (aging) evolution (Real et al., AAAI 2019, "Regularized Evolution for Image Classifier
Architecture Search"), as used for einspace (Ericsson et al., NeurIPS 2024).

The population is the last ``population_size`` observations told (the oldest dies, whatever its fitness: the
"aging" that regularises the search). Until the population is full, proposals are seeds, then random samples.
Afterwards each proposal is a child of tournament winners (the best of ``tournament_size`` members drawn
uniformly without replacement): a crossover of two winners with probability ``crossover_prob`` (typed subtree
exchange, Schrodi et al., NeurIPS 2023), else a mutation of one winner (resampling a random subtree, preserving
its types). A crossover that finds no compatible subtree falls back to mutation.

The population is made of told observations only, so it is rebuilt exactly by replaying the history.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nas.search.strategies.base import Observation, Proposal, Strategy, StrategyError, fitness_value

if TYPE_CHECKING:
    from search_spaces.derivation import Derivation
    from search_spaces.spaces import Space

__all__ = ["Member", "RegularizedEvolution"]


@dataclass(frozen=True)
class Member:
    """One population member: its key (the derivation string as told), parsed derivation and fitness."""

    key: str
    derivation: Derivation
    fitness: float | None
    text: str = ""  # str(derivation), the normalised key


class RegularizedEvolution(Strategy):
    """Regularised evolution (see module docstring).

    Args:
        population_size: P, the number of most recent observations that form the population (default 20).
        tournament_size: S, members drawn per tournament (default 5; clipped to the population size).
        crossover_prob: probability that a child is a crossover of two tournament winners rather than a mutant
            (default 0.2; 0 gives the mutation-only algorithm of Real et al.).
        seeds, dedupe, max_tries: see :class:`~nas.search.strategies.base.Strategy`.
    """

    name = "evolution"

    def __init__(self, space: Space, *, seed: int, population_size: int = 20, tournament_size: int = 5,
                 crossover_prob: float = 0.2, seeds: Sequence[str] = (), dedupe: bool = True,
                 max_tries: int = 20) -> None:
        super().__init__(space, seed=seed, seeds=seeds, dedupe=dedupe, max_tries=max_tries)
        if population_size < 2:
            raise StrategyError(f"population_size must be >= 2, got {population_size}")
        if tournament_size < 1:
            raise StrategyError(f"tournament_size must be >= 1, got {tournament_size}")
        if not 0.0 <= crossover_prob <= 1.0:
            raise StrategyError(f"crossover_prob must be in [0, 1], got {crossover_prob}")
        self.population_size = int(population_size)
        self.tournament_size = int(tournament_size)
        self.crossover_prob = float(crossover_prob)
        self.population: deque[Member] = deque(maxlen=self.population_size)

    @property
    def ready(self) -> bool:
        """Whether the population is full (children are bred rather than sampled)."""
        return len(self.population) == self.population_size

    def _observe(self, obs: Observation) -> None:
        from search_spaces.exceptions import SearchSpaceError

        try:
            derivation = self.space.parse(obs.derivation)
        except SearchSpaceError as err:
            raise StrategyError(f"observation {obs.derivation[:200]!r} is not a derivation of space "
                                f"{self.space.name!r}: {str(err).splitlines()[0]}") from None
        self.population.append(Member(obs.derivation, derivation, obs.fitness, str(derivation)))

    def _propose(self, n: int, rng: random.Random, avoid: set[str]) -> list[Proposal]:
        if not self.ready:
            return self._distinct(n, rng, avoid, self._sample)
        return self._distinct(n, rng, avoid, self._child)

    # --- variation ----------------------------------------------------------------------------------------------

    def _tournament(self, rng: random.Random) -> Member:
        """The fittest of ``tournament_size`` members drawn without replacement (ties: the one drawn first)."""
        drawn = rng.sample(list(self.population), min(self.tournament_size, len(self.population)))
        return max(drawn, key=lambda m: fitness_value(m.fitness))

    def _mutant(self, parent: Member, rng: random.Random, symbols: set[str] | None = None,
                meta: dict[str, Any] | None = None) -> Proposal | None:
        """A mutant of ``parent`` that differs from it (a few tries), operator ``mutate:<symbol>``."""
        for _ in range(4):
            child, how = self.space.mutate(parent.derivation, rng, symbols=symbols)
            text = str(child)
            if how.operator != "copy" and text != parent.text:
                symbol = parent.derivation.root.at(how.path).symbol
                return Proposal(text, (parent.key,), f"mutate:{symbol}", dict(meta or {}))
        return None

    def _crossover(self, a: Member, b: Member, rng: random.Random,
                   meta: dict[str, Any] | None = None) -> Proposal | None:
        """A crossover child of ``a`` (receiver) and ``b`` (donor), or None when they have no compatible pair."""
        if a.key == b.key:
            return None
        try:
            child, how = self.space.crossover(a.derivation, b.derivation, rng)
        except Exception:  # noqa: BLE001 - an operator failure must not stop the search: fall back to mutation
            return None
        text = str(child)
        if how.operator == "copy" or text in (a.text, b.text):
            return None
        return Proposal(text, (a.key, b.key), "crossover", dict(meta or {}))

    def _child(self, rng: random.Random) -> Proposal | None:
        if self.crossover_prob and rng.random() < self.crossover_prob:
            a, b = self._tournament(rng), self._tournament(rng)
            child = self._crossover(a, b, rng)
            if child is not None:
                return child
            return self._mutant(a, rng)
        return self._mutant(self._tournament(rng), rng)

    def state_dict(self) -> dict[str, Any]:
        """Base summary plus the population's size and fitness statistics."""
        values = [m.fitness for m in self.population if fitness_value(m.fitness) > float("-inf")]
        state = super().state_dict()
        state["population"] = {"size": len(self.population), "capacity": self.population_size,
                               "failed": len(self.population) - len(values),
                               "best": max(values) if values else None,
                               "mean": sum(values) / len(values) if values else None}
        return state
