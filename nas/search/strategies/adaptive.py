"""Regularised evolution with an adaptive mutation policy, after HHNAS-AM (Tripathi et al., 2025, "Hierarchical
Hybrid NAS using Adaptive Mutation Policies"), where the mutation probability of each template bit is adapted by
Q-learning from the performance of earlier mutations.

Here the actions are the grammar's mutable non-terminals (module symbols with more than one alternative, e.g.
``keep`` / ``down64`` on nb-macro, ``edge`` on nb201, ``embed`` / ``mixer`` / ``ffn`` and the micro choices on
seq-templates, ``network`` / ``module`` on einspace) plus ``"crossover"``. Each child of a tournament winner (Real
et al., AAAI 2019) is made by one action chosen epsilon-greedily among those applicable to the parent: mutating
a node of that symbol (``space.mutate(parent, rng, symbols={symbol})``) or crossing over with a second winner.
The action goes into ``Proposal.meta["action"]``; when the observation comes back (``Observation.proposal``), the
reward ``r = clip(child fitness - parent fitness, -reward_clip, reward_clip)`` (a failed child earns
``-reward_clip``) updates ``Q[a] += alpha * (r - Q[a])``.

Q-values are a fold over the told observations, so replay rebuilds them exactly, provided the driver stores each
trial's proposal (operator, parents, meta) and passes it back in the observation.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nas.search.strategies.base import Observation, Proposal, StrategyError, fitness_value
from nas.search.strategies.evolution import Member, RegularizedEvolution

if TYPE_CHECKING:
    from search_spaces.spaces import Space

__all__ = ["CROSSOVER", "AdaptiveMutation", "mutable_symbols"]

CROSSOVER = "crossover"


def mutable_symbols(space: Space) -> list[str]:
    """The non-terminals a mutation can usefully be restricted to: module symbols that appear as nodes of a
    derivation (the start symbol or a non-unit argument) and have more than one alternative."""
    grammar = space.grammar
    used = {grammar.start} | {arg for rule in grammar.rules for alt in rule.alternatives if not alt.unit
                              for arg in alt.args}
    return [rule.symbol for rule in grammar.rules
            if rule.symbol in used and rule.category == "module" and len(space.sampler.alternatives(rule.symbol)) > 1]


class AdaptiveMutation(RegularizedEvolution):
    """Regularised evolution with epsilon-greedy Q-learning over mutation operators (see module docstring).

    Args:
        epsilon: probability of a uniformly random applicable action (default 0.2).
        alpha: Q-learning step size (default 0.3).
        reward_clip: rewards are clipped to [-reward_clip, reward_clip] (default 0.2, in accuracy units).
        actions: restrict the actions (symbols and/or ``"crossover"``); default all mutable symbols plus crossover.
        population_size, tournament_size: see :class:`~nas.search.strategies.evolution.RegularizedEvolution`
            (``crossover_prob`` is replaced by the learned policy).
        seeds, dedupe, max_tries: see :class:`~nas.search.strategies.base.Strategy`.
    """

    name = "adaptive"

    def __init__(self, space: Space, *, seed: int, epsilon: float = 0.2, alpha: float = 0.3,
                 reward_clip: float = 0.2, actions: Sequence[str] | None = None, population_size: int = 20,
                 tournament_size: int = 5, seeds: Sequence[str] = (), dedupe: bool = True,
                 max_tries: int = 20) -> None:
        super().__init__(space, seed=seed, population_size=population_size, tournament_size=tournament_size,
                         crossover_prob=0.0, seeds=seeds, dedupe=dedupe, max_tries=max_tries)
        if not 0.0 <= epsilon <= 1.0:
            raise StrategyError(f"epsilon must be in [0, 1], got {epsilon}")
        if not 0.0 < alpha <= 1.0:
            raise StrategyError(f"alpha must be in (0, 1], got {alpha}")
        if reward_clip <= 0:
            raise StrategyError(f"reward_clip must be > 0, got {reward_clip}")
        valid = mutable_symbols(space) + [CROSSOVER]
        if actions is None:
            actions = valid
        unknown = [a for a in actions if a not in valid]
        if unknown or not actions:
            raise StrategyError(f"unknown action(s) {unknown} for space {space.name!r}; valid: {', '.join(valid)}")
        self.epsilon, self.alpha, self.reward_clip = float(epsilon), float(alpha), float(reward_clip)
        self.actions: list[str] = list(dict.fromkeys(actions))
        self.q: dict[str, float] = {a: 0.0 for a in self.actions}
        self.counts: dict[str, int] = {a: 0 for a in self.actions}

    # --- acting -------------------------------------------------------------------------------------------------

    def _applicable(self, parent: Member) -> list[str]:
        present = {node.symbol for _, node in parent.derivation.root.walk()}
        found = [a for a in self.actions if a in present]
        if CROSSOVER in self.q and len(self.population) > 1:
            found.append(CROSSOVER)
        return found

    def choose(self, actions: list[str], rng: random.Random) -> str:
        """Epsilon-greedy: a random action with probability epsilon, else the best Q (ties broken at random)."""
        if rng.random() < self.epsilon:
            return rng.choice(actions)
        top = max(self.q[a] for a in actions)
        return rng.choice([a for a in actions if self.q[a] == top])

    def _child(self, rng: random.Random) -> Proposal | None:
        parent = self._tournament(rng)
        actions = self._applicable(parent)
        while actions:
            action = self.choose(actions, rng)
            meta = {"action": action}
            if action == CROSSOVER:
                child = self._crossover(parent, self._tournament(rng), rng, meta)
            else:
                child = self._mutant(parent, rng, {action}, meta)
            if child is not None:
                return child
            actions.remove(action)  # not applicable to this parent after all: choose among the rest
        return None

    # --- learning -----------------------------------------------------------------------------------------------

    def reward(self, child: float | None, parent: float | None) -> float:
        """``clip(child - parent)``; a failed child earns ``-reward_clip``, a child of a failed parent
        ``+reward_clip`` (unless it failed too: 0)."""
        c, p = fitness_value(child), fitness_value(parent)
        if c == p:  # includes both failed
            return 0.0
        if math.isinf(c) or math.isinf(p):
            return -self.reward_clip if c < p else self.reward_clip
        return max(-self.reward_clip, min(self.reward_clip, c - p))

    def _observe(self, obs: Observation) -> None:
        super()._observe(obs)
        proposal = obs.proposal
        if proposal is None or not proposal.parents:
            return
        action = proposal.meta.get("action")
        if action not in self.q or proposal.parents[0] not in self.fitness:
            return
        r = self.reward(obs.fitness, self.fitness[proposal.parents[0]])
        self.q[action] += self.alpha * (r - self.q[action])
        self.counts[action] += 1

    def state_dict(self) -> dict[str, Any]:
        """Evolution's summary plus the Q-value and update count of every action."""
        state = super().state_dict()
        state["q"] = dict(self.q)
        state["updates"] = dict(self.counts)
        state["epsilon"] = self.epsilon
        return state
