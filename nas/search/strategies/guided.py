"""Predictor- or proxy-guided regularised evolution.

The population mechanics are those of :mod:`~nas.search.strategies.evolution` (Real et al., AAAI 2019): the
last ``population_size`` observations, tournaments, mutation and crossover. Each of the ``n`` proposal slots of an
ask, however, first breeds ``candidates_per_slot`` children; all ``candidates_per_slot * n`` candidates are scored
in one call of ``scorer`` (a zero-cost proxy or a learned performance predictor, higher is better) and the ``n``
best distinct ones are proposed. Before the population is full the candidates are random samples, so the
predictor also picks the initial population. This is the usual way of spending a cheap estimator inside an
evolutionary search (e.g. predictor-guided evolution in NAS-Bench-Suite-Zero, Krishnakumar et al. 2022).

The scorer is only called by :meth:`~nas.search.strategies.base.Strategy.ask`; the population is made of told
observations, so replaying the history never calls it. For exact replay the scorer must be deterministic.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from nas.search.strategies.base import Proposal, StrategyError
from nas.search.strategies.evolution import RegularizedEvolution

if TYPE_CHECKING:
    from search_spaces.spaces import Space

__all__ = ["GuidedEvolution", "Scorer"]

Scorer = Callable[[list[str]], Sequence[float]]
"""Scores derivation strings, higher is better (one score per string, in order)."""


class GuidedEvolution(RegularizedEvolution):
    """Regularised evolution whose children are pre-selected by a scorer (see module docstring).

    Args:
        scorer: ``scorer(derivations) -> scores``; required (the driver passes a zero-cost proxy or the
            predictor). NaN scores rank last.
        candidates_per_slot: candidates bred (or sampled) per proposal (default 16; 1 is plain evolution).
        population_size, tournament_size, crossover_prob: see
            :class:`~nas.search.strategies.evolution.RegularizedEvolution`.
        seeds, dedupe, max_tries: see :class:`~nas.search.strategies.base.Strategy`; seeds are proposed
            unscored.
    """

    name = "guided"

    def __init__(self, space: Space, *, seed: int, scorer: Scorer | None = None, candidates_per_slot: int = 16,
                 population_size: int = 20, tournament_size: int = 5, crossover_prob: float = 0.2,
                 seeds: Sequence[str] = (), dedupe: bool = True, max_tries: int = 20) -> None:
        if scorer is None or not callable(scorer):
            raise StrategyError("strategy 'guided' needs scorer=callable(list of derivation strings) -> scores "
                                "(higher is better), e.g. a zero-cost proxy or the performance predictor")
        if candidates_per_slot < 1:
            raise StrategyError(f"candidates_per_slot must be >= 1, got {candidates_per_slot}")
        super().__init__(space, seed=seed, population_size=population_size, tournament_size=tournament_size,
                         crossover_prob=crossover_prob, seeds=seeds, dedupe=dedupe, max_tries=max_tries)
        self.scorer = scorer
        self.candidates_per_slot = int(candidates_per_slot)
        self.n_scored = 0

    def _propose(self, n: int, rng: random.Random, avoid: set[str]) -> list[Proposal]:
        make = self._child if self.ready else self._sample
        candidates = self._distinct(n * self.candidates_per_slot, rng, avoid, make)
        if not candidates:
            return []
        scores = list(self.scorer([p.derivation for p in candidates]))
        if len(scores) != len(candidates):
            raise StrategyError(f"scorer returned {len(scores)} scores for {len(candidates)} derivations")
        self.n_scored += len(candidates)
        values = [-math.inf if s is None or math.isnan(float(s)) else float(s) for s in scores]
        order = sorted(range(len(candidates)), key=lambda i: -values[i])  # stable: ties keep breeding order
        out: list[Proposal] = []
        keys: set[str] = set()
        for i in order:
            p = candidates[i]
            if p.derivation in keys:
                continue
            score = values[i] if math.isfinite(values[i]) else None
            out.append(Proposal(p.derivation, p.parents, p.operator, {**p.meta, "score": score}))
            keys.add(p.derivation)
            if len(out) == n:
                break
        for i in order:  # the space ran out of distinct candidates: repeat the best ones
            if len(out) == n:
                break
            out.append(candidates[i])
        return out

    def state_dict(self) -> dict[str, Any]:
        """Evolution's summary plus how many candidates were scored (by this process: not replayed)."""
        state = super().state_dict()
        state["scored"] = self.n_scored
        state["candidates_per_slot"] = self.candidates_per_slot
        return state
