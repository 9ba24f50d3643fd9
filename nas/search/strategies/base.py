"""The ask/tell contract shared by every search strategy, and the records that cross it.

A :class:`Strategy` proposes candidates (:meth:`Strategy.ask` returns :class:`Proposal` s) and learns from
finished trials (:meth:`Strategy.tell` takes :class:`Observation` s). It knows nothing about training, Ray or
the store: a candidate is its derivation string (its *key*), and the driver maps keys to canonical hashes.

**State is rebuildable from history.** Everything a strategy learns is a fold over the observations it was
told, in order; each ask draws from a fresh RNG seeded by ``(strategy, seed, number of observations told so far,
number of asks since the last tell)``, never from a long-lived stream. So

* ``tell([a, b])`` is the same as ``tell([a]); tell([b])``;
* ``make_strategy(name, space, seed=s, **options).replay(history)`` is in the same state as the original
  strategy after it was told ``history``, however many asks it answered in between, and its next ask gives the
  same proposals (the search driver relies on this to rebuild strategies after a crash, by replaying the store's
  finished trials in order);
* asks between two tells only influence each other (later asks avoid what earlier ones proposed since the last
  tell), and that influence ends at the next tell.

The guarantee assumes what the strategy calls is deterministic: the space's sampler and operators (they are,
for a given RNG), and for :mod:`~nas.search.strategies.guided` the scorer. Proposals still in flight are not part
of the state; pass their keys as ``ask(n, pending=...)`` to keep them from being proposed again.

**Seeds.** Every strategy takes ``seeds``: derivation strings, or the space's standard architecture strings
(``02012100`` on nb-macro, ``|op~0|+...`` on nb201). Seeds not yet told (and not pending) are proposed before
anything else, with operator ``"seed"``; seeding the search with known good networks gave the largest gains in
einspace (Ericsson et al., NeurIPS 2024).
"""

from __future__ import annotations

import abc
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from nas.errors import NasError

if TYPE_CHECKING:
    from search_spaces.derivation import Derivation
    from search_spaces.spaces import Space

__all__ = ["Observation", "Proposal", "Strategy", "StrategyError", "UnknownStrategyError", "UnsupportedSpaceError",
           "fitness_value", "resolve_seed"]


class StrategyError(NasError, ValueError):
    """A strategy was misconfigured: unknown name or option, invalid seed, missing scorer, unsupported space."""


class UnknownStrategyError(StrategyError):
    """No strategy is registered under the requested name (the message lists the valid names)."""


class UnsupportedSpaceError(StrategyError):
    """The strategy cannot search this space (the message names the spaces it can search)."""


@dataclass(frozen=True)
class Proposal:
    """One candidate a strategy wants evaluated.

    Attributes:
        derivation: the candidate's derivation string (``space.parse`` gives it back); it is also its key.
        parents: the keys (derivation strings) of the candidates it was made from; empty for samples and seeds.
        operator: how it was made: ``"sample"``, ``"seed"``, ``"mutate:<symbol>"`` (the non-terminal whose
            subtree was resampled), ``"crossover"``, ``"optuna:tpe"``.
        meta: JSON-able extras, e.g. the Q-learning action of :mod:`~nas.search.strategies.adaptive` or the
            score a guided strategy selected it by. Strategies that learn from their operators read it back from
            :attr:`Observation.proposal`, so drivers should store it with the trial.
    """

    derivation: str
    parents: tuple[str, ...] = ()
    operator: str = "sample"
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Observation:
    """The result of one finished trial.

    Attributes:
        derivation: the candidate's derivation string (its key).
        fitness: validation accuracy in [0, 1], higher is better; ``None`` (or NaN) means the trial failed and
            ranks below every finished one.
        proposal: the proposal it came from, if a strategy proposed it (strategies that learn from operators
            need it; it is ``None`` for candidates from elsewhere).
        hash: the driver's canonical hash of the candidate, if known (informational).
        fidelity: the epochs it trained when a scheduler stopped it early (ASHA), ``None`` when it ran its full
            protocol (or was looked up in a table); the online surrogate ranks such results apart.
    """

    derivation: str
    fitness: float | None
    proposal: Proposal | None = None
    hash: str | None = None
    fidelity: int | None = None


def fitness_value(fitness: float | None) -> float:
    """A fitness as a number to rank by: failed trials (``None`` or NaN) become ``-inf``."""
    if fitness is None or (isinstance(fitness, float) and math.isnan(fitness)):
        return -math.inf
    return float(fitness)


def resolve_seed(space: Space, text: str) -> Derivation:
    """A seed as a derivation: a derivation string, else the space's standard architecture string.

    Raises:
        StrategyError: naming the seed, when it is neither.
    """
    from search_spaces.exceptions import SearchSpaceError

    try:
        return space.from_arch(text)  # parses derivation strings; decodes architecture strings where it can
    except SearchSpaceError as err:
        reason = str(err).splitlines()[0]
    except (ValueError, KeyError, IndexError) as err:
        reason = f"{type(err).__name__}: {err}"
    kind = "derivation string" if text.lstrip().startswith("(") or space.spec.arch_codec is None else \
        "architecture string"
    raise StrategyError(f"seed {text!r} is not a valid {kind} of space {space.name!r}: {reason}")


class Strategy(abc.ABC):
    """Base class of search strategies (see the module docstring for the replay contract).

    Subclasses implement :meth:`_propose` (make ``n`` proposals from an RNG) and may override :meth:`_observe`
    (learn from one observation) and :meth:`state_dict`; :meth:`ask`, :meth:`tell` and :meth:`replay` are
    concrete and keep the bookkeeping that makes replay exact.

    Args:
        space: the search space (:func:`search_spaces.get_space`).
        seed: the strategy's seed; with the same seed and history the same proposals come out.
        seeds: candidates to propose first (derivation or architecture strings); each is checked now.
        dedupe: avoid proposing candidates already told (retrying a bounded number of times; when the space
            runs out of new candidates, repeats are proposed rather than fewer proposals).
        max_tries: attempts per proposal slot to find a new, distinct candidate before giving up on distinctness.
    """

    name: ClassVar[str] = ""

    def __init__(self, space: Space, *, seed: int, seeds: Sequence[str] = (), dedupe: bool = True,
                 max_tries: int = 20) -> None:
        if isinstance(seeds, str):
            raise StrategyError("seeds must be a list of strings, not one string")
        if max_tries < 1:
            raise StrategyError(f"max_tries must be >= 1, got {max_tries}")
        self.space = space
        self.seed = int(seed)
        self.dedupe = bool(dedupe)
        self.max_tries = int(max_tries)
        self.seeds: list[str] = []
        for text in seeds:
            key = str(resolve_seed(space, text))
            if key not in self.seeds:
                self.seeds.append(key)
        self.n_told = 0
        self.fitness: dict[str, float | None] = {}  # latest fitness of every told key
        self.best: Observation | None = None
        self._asks_since_tell = 0
        self._proposed_since_tell: set[str] = set()

    # --- the interface ------------------------------------------------------------------------------------------

    def ask(self, n: int, *, pending: Iterable[str] = ()) -> list[Proposal]:
        """``n`` proposals, distinct from each other, from ``pending`` and (with ``dedupe``) from the history
        wherever the space allows; unseen seeds come first.

        Args:
            n: how many proposals to make.
            pending: keys of candidates in flight (asked, not yet told), which should not be proposed again.
        """
        if n < 0:
            raise StrategyError(f"ask(n) needs n >= 0, got {n}")
        rng = random.Random(f"{self.name}/{self.seed}/{self.n_told}/{self._asks_since_tell}")
        self._asks_since_tell += 1
        if n == 0:
            return []
        avoid = set(pending) | self._proposed_since_tell
        out = [Proposal(s, (), "seed") for s in self.seeds if s not in self.fitness and s not in avoid][:n]
        if len(out) < n:
            out += self._propose(n - len(out), rng, avoid | {p.derivation for p in out})
        self._proposed_since_tell.update(p.derivation for p in out)
        return out

    def tell(self, observations: Sequence[Observation]) -> None:
        """Learn from finished trials, in order (``tell([a, b])`` equals ``tell([a]); tell([b])``)."""
        for obs in observations:
            if self.best is None or fitness_value(obs.fitness) > fitness_value(self.best.fitness):
                self.best = obs
            self._observe(obs)
            self.fitness[obs.derivation] = obs.fitness
            self.n_told += 1
            self._asks_since_tell = 0
            self._proposed_since_tell = set()

    def replay(self, observations: Sequence[Observation]) -> Strategy:
        """Rebuild the state from a history: the same as :meth:`tell` on it; returns ``self`` for chaining."""
        self.tell(observations)
        return self

    def state_dict(self) -> dict[str, Any]:
        """A JSON-able summary for display (not a checkpoint: the state is rebuilt by :meth:`replay`)."""
        best = None if self.best is None else {"derivation": self.best.derivation, "fitness": self.best.fitness}
        return {"strategy": self.name, "seed": self.seed, "told": self.n_told, "best": best,
                "seeds_left": sum(1 for s in self.seeds if s not in self.fitness)}

    # --- for subclasses -----------------------------------------------------------------------------------------

    @abc.abstractmethod
    def _propose(self, n: int, rng: random.Random, avoid: set[str]) -> list[Proposal]:
        """``n`` proposals (seeds already handled), avoiding the keys in ``avoid`` where possible."""

    def _observe(self, obs: Observation) -> None:
        """Learn from one observation (called before it is added to :attr:`fitness`); default: nothing."""

    def _distinct(self, n: int, rng: random.Random, avoid: set[str],
                  make: Callable[[random.Random], Proposal | None]) -> list[Proposal]:
        """Call ``make`` until ``n`` proposals are collected that are new (not in ``avoid``, not each other, not
        told if ``dedupe``), at most ``max_tries * n`` times; then fill up with repeats of history, then with any
        proposal made, so exactly ``n`` come back unless ``make`` never succeeds."""
        out: list[Proposal] = []
        keys: set[str] = set()
        seen_before: list[Proposal] = []  # new to this ask but already told: used when nothing else is left
        repeats: list[Proposal] = []
        for _ in range(self.max_tries * n):
            if len(out) == n:
                break
            p = make(rng)
            if p is None:
                continue
            key = p.derivation
            if key in keys or key in avoid:
                repeats.append(p)
            elif self.dedupe and key in self.fitness:
                if all(q.derivation != key for q in seen_before):
                    seen_before.append(p)
                else:
                    repeats.append(p)
            else:
                out.append(p)
                keys.add(key)
        for p in seen_before:
            if len(out) < n and p.derivation not in keys:
                out.append(p)
                keys.add(p.derivation)
        repeats.sort(key=lambda p: p.derivation in keys)  # in flight elsewhere before repeats within this ask
        out += repeats[:n - len(out)]
        return out

    def _sample(self, rng: random.Random) -> Proposal:
        """A random derivation of the space (operator ``"sample"``)."""
        return Proposal(str(self.space.sample(rng)), (), "sample")
