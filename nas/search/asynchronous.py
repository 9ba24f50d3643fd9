"""The search's training loop: one asynchronous Ray Tune run per search, with no round barrier.

.. code-block:: text

    CandidateFeeder (a background thread)          Ray Tune (the driver's thread)
    ask -> build -> de-duplicate -> score    --->  ready queue --> SpecSearcher.suggest  --> a free slot
          ^                                                                                   |
          +---------------- strategy.tell  <---  store.finish_trial, store.mark_told  <------+ trial ends

A new candidate starts the moment a worker slot frees: Tune calls :class:`~nas.search.tune_runner.SpecSearcher`'s
``suggest`` whenever it has room (``max_concurrent_trials`` = the cluster's slots), which pops the next candidate
from a short queue of already ranked ones. The :class:`CandidateFeeder` keeps that queue filled ahead of demand:
when fewer than ``slots`` candidates are ready it plans another batch in a background thread
(:func:`nas.search.selection.plan_round`: ``ask``, build, de-duplicate against every hash with a trial or in
flight, score, keep the seeds and the best ``batch``), stores it (architectures, scores, lineage) and queues its
trials, so a crash knows what was chosen and a free slot never waits on scoring. One ASHA scheduler sees every
trial of the search (its rungs span the whole run), and Tune reuses the worker actors (``reuse_actors``).

Each finished trial is written to the store (and Optuna) the moment it ends and marked told
(:meth:`~nas.store.Store.mark_told`, which records the tell order); its observation goes to the feeder's inbox.
The strategy itself is only ever used by the feeder's thread: each refill first tells it everything in the inbox,
in tell order, then plans its batch, so a batch is planned from one well-defined state (the first ``told``
results, the candidates in flight as ``pending``). Every strategy is asynchronous this way (regularised evolution is
steady-state by nature, Real et al. 2019; random search ignores the order; guided, adaptive and optuna fold each
observation in as it comes).

Every ask is recorded with the proposals it produced (the lineage's ``ask``: ``told``, the observations told
before it; ``index``, the asks since the last tell; ``n``; the batch's ``need``; ``driver``, the driver's lease
token), which is what the resume tests check: a fresh strategy that replays the first ``told`` results in tell
order, with the same candidates in flight, plans exactly the batch the live one did
(:mod:`nas.search.strategies.base`: a strategy's state is a fold over what it was told).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nas.search.selection import MAX_STALLED_ROUNDS, plan_round
from nas.search.tune_runner import SpecSource

if TYPE_CHECKING:
    from nas.search.strategies import Observation, Proposal, Strategy
    from nas.search.trainable import TrialSpec
    from nas.store import TrialRecord

__all__ = ["AskRecord", "CandidateFeeder", "PendingStrategy"]


@dataclass(frozen=True)
class AskRecord:
    """One ``strategy.ask`` as the feeder made it: the strategy's ``told`` count and ``index`` (asks since the last
    tell) before it, and the ``n`` proposals asked for (kept in the lineage of what it proposed)."""

    told: int
    index: int
    n: int

    def to_dict(self) -> dict[str, int]:
        return {"told": self.told, "index": self.index, "n": self.n}


class PendingStrategy:
    """A strategy whose every ``ask`` also avoids the keys in flight (``pending``), recording each ask
    (:class:`AskRecord`) by the keys it proposed. What :func:`~nas.search.selection.plan_round` asks in the feeder."""

    def __init__(self, strategy: Strategy, in_flight: Callable[[], set[str]]) -> None:
        self.strategy = strategy
        self._in_flight = in_flight
        self.asks: dict[str, AskRecord] = {}  # derivation key -> the ask that proposed it (latest)

    def ask(self, n: int, *, pending: Any = ()) -> list[Proposal]:
        record = AskRecord(self.strategy.n_told, self.strategy._asks_since_tell, int(n))
        proposals = self.strategy.ask(n, pending=set(pending) | self._in_flight())
        for p in proposals:
            self.asks[p.derivation] = record
        return proposals


class CandidateFeeder(SpecSource):
    """Keeps ranked candidates ready ahead of demand and hands them to Tune as trial specs (see the module
    docstring).

    Args:
        search: the driver's search (:class:`nas.search.driver._Search`): strategy, scorer, builder, store.
        queued: trials already queued (a resumed search's, in id order): they start first.
        finished: trials already finished (they count toward the budget).
        slots: trials that run at once; the queue is refilled when fewer than this many are ready.
        spec_of: the trial spec of a queued trial (the evaluator knows the dataset and protocol).
        should_stop: polled before each hand-out; when it returns an error message, the run stops with it.
    """

    def __init__(self, search: Any, *, queued: list[TrialRecord], finished: int, slots: int,
                 spec_of: Callable[[TrialRecord], TrialSpec], should_stop: Callable[[], str | None]) -> None:
        self.search = search
        self.slots = max(1, int(slots))
        self.spec_of = spec_of
        self.should_stop = should_stop
        self.strategy = PendingStrategy(search.strategy, lambda: set(self.in_flight.values()))
        self._lock = threading.Lock()
        self.ready: deque[TrialRecord] = deque(queued)
        self.inbox: deque[tuple[int, Observation]] = deque()  # told in the store, not yet to the strategy
        self.created = finished + len(queued)  # trials that count toward the budget once they end
        self.in_flight: dict[int, str] = {t.id: search._key(t.arch_hash) for t in queued}  # feeder thread only
        self.known: set[str] = {h for h, status in search.store.known_hashes(search.name).items()
                                if status != "scored"}
        self.stalled = 0
        self.exhausted = False
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None

    # --- Tune's side --------------------------------------------------------------------------------------------

    def next_spec(self) -> TrialSpec | str | None:
        """The next ready trial (marked running), ``None`` while a refill is on its way, or ``FINISHED``."""
        if self.error is not None:
            raise self.error
        reason = self.should_stop()
        if reason:
            from nas.store import LeaseError

            raise LeaseError(reason)
        with self._lock:
            trial = self.ready.popleft() if self.ready else None
        self.maybe_refill()
        if trial is not None:
            self.search.store.mark_running(trial.id, resources=self.search._resources())
            return self.spec_of(trial)
        if self._refilling() or (self._remaining() > 0 and not self.exhausted):
            return None
        return SpecSource.FINISHED

    def told(self, trial_id: int, observation: Observation) -> None:
        """A trial ended and was recorded as told: the strategy learns it before the next batch is planned."""
        with self._lock:
            self.inbox.append((trial_id, observation))
        self.maybe_refill()

    # --- refilling ----------------------------------------------------------------------------------------------

    def _remaining(self) -> int:
        return self.search.budget - self.created

    def _refilling(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def maybe_refill(self, *, wait: bool = False) -> None:
        """Start a refill (in a background thread, or in this one with ``wait``) when fewer than ``slots``
        candidates are ready and the budget allows more."""
        with self._lock:
            short = len(self.ready) < self.slots
        if not short or self._refilling() or self.exhausted or self._remaining() <= 0 or self.error is not None:
            return
        if wait:
            self._refill()
            if self.error is not None:
                raise self.error
            return
        self._thread = threading.Thread(target=self._refill, name=f"nas-feeder-{self.search.name}", daemon=True)
        self._thread.start()

    def join(self) -> None:
        """Wait for a refill in progress (called once the Tune run is over)."""
        if self._thread is not None:
            self._thread.join()

    def _refill(self) -> None:
        try:
            self._plan()
        except BaseException as err:  # noqa: BLE001 - handed to Tune's thread by next_spec
            self.error = err

    def _plan(self) -> None:
        search = self.search
        with self._lock:
            news = list(self.inbox)
            self.inbox.clear()
        for trial_id, _ in news:
            self.in_flight.pop(trial_id, None)
        search.strategy.tell([obs for _, obs in news])
        need = min(search.config.batch, self._remaining())
        if need <= 0:
            return
        search.generation += 1
        known = set(self.known)
        pool, chosen = plan_round(self.strategy, search.scorer, search._build, known, need,
                                  search.config.oversample, search.warn)
        if not chosen:
            self.stalled += 1
            search.warn(f"batch {search.generation}: no new candidate (every proposal was a duplicate)")
            if self.stalled >= MAX_STALLED_ROUNDS:
                search.warn(f"no more trials after {self.created}: {MAX_STALLED_ROUNDS} batches found nothing new")
                self.exhausted = True
            return
        self.stalled = 0
        trials = search.store_candidates(pool, chosen, asks=self.strategy.asks, need=need)
        for t in trials:
            self.known.add(t.arch_hash)
            self.in_flight[t.id] = search._key(t.arch_hash)
        with self._lock:
            self.ready.extend(trials)
            self.created += len(trials)
