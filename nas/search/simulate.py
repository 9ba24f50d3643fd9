"""Table searches in memory: the stored search's choices without a store, for benchmarks over many seeds.

:func:`simulate_table_search` runs exactly the rounds of :func:`nas.search.run_search` with a table evaluator
(the same strategy from :func:`~nas.search.strategies.make_strategy` with
:meth:`~nas.search.config.SearchConfig.strategy_kwargs`, the same :func:`~nas.search.selection.plan_round`, the
same :class:`~nas.search.evaluators.TableEvaluator`, the strategy told each round in trial order), but keeps the
trials in a list instead of the SQL store and the Optuna study, and builds candidates through a
:class:`CandidateCache` (hash, architecture string, size: no torch module, no ONNX), so one process can run
thousands of seeded searches on a table. For the same config it evaluates the same architectures in the same
order as the stored search (``tests/nas/search/test_table_search.py`` checks this).

.. code-block:: python

    from nas.search import SearchConfig
    from nas.search.simulate import CandidateCache, simulate_table_search

    config = SearchConfig(space="nb-macro", evaluator="table:nas-bench-macro_cifar10.json", budget=200, seed=3)
    cache = CandidateCache()                         # share it between searches of one space
    trials = simulate_table_search(config, cache=cache)
    best = max(t.val_acc for t in trials)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nas.search.evaluators import EvalJob, TableEvaluator, TrialOutcome, load_table
from nas.search.selection import MAX_STALLED_ROUNDS, plan_round
from nas.search.strategies import Observation, Proposal, make_strategy

if TYPE_CHECKING:
    from nas.search.config import SearchConfig
    from nas.search.evaluators import ArchTable
    from nas.search.scoring import Scorer
    from search_spaces.spaces import Space

__all__ = ["CandidateCache", "LightCandidate", "SimulatedTrial", "simulate_table_search"]


@dataclass(frozen=True)
class LightCandidate:
    """What selection and a table look-up need of a candidate: canonical hash, architecture string, size, and
    the static cost the search's limits are checked on."""

    hash: str
    arch: str | None
    params: int
    flops: int
    body_params: int
    body_flops: int
    nodes: int


@dataclass(frozen=True)
class SimulatedTrial:
    """One evaluation of a simulated table search (in evaluation order)."""

    index: int
    generation: int
    hash: str
    arch: str | None
    derivation: str
    operator: str
    val_acc: float
    test_acc: float | None
    sim_cost_s: float


class CandidateCache:
    """Derivation string -> :class:`LightCandidate`, built once (graph only) and shared by every search of one
    space and input shape, whatever their limits (the limits are checked on the cached cost)."""

    def __init__(self) -> None:
        self._items: dict[str, LightCandidate] = {}

    def __len__(self) -> int:
        return len(self._items)

    def get(self, space: Space, derivation: str, num_classes: int) -> LightCandidate:
        """The candidate of ``derivation`` in ``space`` (built on first use)."""
        item = self._items.get(derivation)
        if item is None:
            from nas.ir.build import build_graph

            d = space.parse(derivation)
            graph = build_graph(space, d, num_classes)
            item = LightCandidate(graph.canonical_hash(), space.arch_string(d), graph.num_params(), graph.flops(),
                                  d.cost.params, d.cost.flops, d.cost.nodes)
            self._items[derivation] = item
        return item

    def put(self, derivation: str, candidate: LightCandidate) -> None:
        """Add a candidate built elsewhere (e.g. by a benchmark's worker processes)."""
        self._items[derivation] = candidate


def _within(candidate: LightCandidate, space: Space) -> bool:
    limits = space.limits
    return (candidate.body_params <= limits.max_params and candidate.body_flops <= limits.max_flops
            and candidate.nodes <= limits.max_nodes)


def simulate_table_search(config: SearchConfig, *, table: ArchTable | None = None, space: Space | None = None,
                          scorer: Scorer | None = None, cache: CandidateCache | None = None,
                          num_classes: int = 10,
                          strategy_options: dict[str, Any] | None = None) -> list[SimulatedTrial]:
    """Run ``config`` (a table search) in memory; its trials in evaluation order (see the module docstring).

    Args:
        table: the loaded table (default: ``config.evaluator``'s file, keys checked against the space).
        space: the space with the search's limits (default: built from ``config``).
        scorer: the scorer (default: none; pass one built with :class:`~nas.search.scoring.Scorer`, e.g. with
            :meth:`~nas.search.scoring.Scorer.preload` ed scores). ``config.scorers`` is not read here.
        cache: candidates built before (shared between searches).
        strategy_options: options added to ``config.strategy_kwargs()`` that are not JSON (a ``surrogate``'s
            ``featurizer`` and ``prior``, e.g. a benchmark's feature rows instead of encoding ONNX).

    Raises:
        ConfigError: ``config`` is not a table search; TableError: a candidate is not in the table.
    """
    from nas.search.config import ConfigError
    from search_spaces.spaces import get_space, space_spec

    if not config.table_mode:
        raise ConfigError(f"simulate_table_search needs a table search (evaluator: table:PATH), got "
                          f"{config.evaluator!r}")
    if space is None:
        space = get_space(config.space, space_spec(config.space).example_input, limits=config.limits)
    if table is None:
        _, path, key = config.evaluator_parts
        assert path is not None
        table = load_table(path, key, space)
    cache = cache if cache is not None else CandidateCache()
    evaluator = TableEvaluator(table, seed=config.seed)
    options = config.strategy_kwargs()
    if config.strategy == "guided":
        if scorer is None:
            raise ConfigError("strategy 'guided' needs a scorer")
        options["scorer"] = scorer
    options.update(strategy_options or {})
    input_shape = tuple(space.input_type.shape)
    strategy = make_strategy(config.strategy, space, seed=config.seed, seeds=config.seed_list(input_shape),
                             **options)

    def build(proposal: Proposal) -> Any:
        candidate = cache.get(space, proposal.derivation, num_classes)
        return candidate if _within(candidate, space) else None

    evaluated: set[str] = set()  # as the driver: only hashes with a trial are never proposed again
    trials: list[SimulatedTrial] = []
    generation, stalled = -1, 0
    while len(trials) < config.budget:
        generation += 1
        need = min(config.batch, config.budget - len(trials))
        _, chosen = plan_round(strategy, scorer, build, set(evaluated), need, config.oversample)
        if not chosen:
            stalled += 1
            if stalled >= MAX_STALLED_ROUNDS:
                break
            continue
        stalled = 0
        evaluated.update(pick.candidate.hash for pick in chosen)
        first = len(trials)
        jobs = [EvalJob(first + i, pick.candidate.hash, pick.proposal.derivation, pick.candidate.arch,
                        pick.candidate.params, pick.candidate.flops) for i, pick in enumerate(chosen)]
        outcomes: list[TrialOutcome] = []
        evaluator.evaluate(jobs, on_finish=outcomes.append)
        observations = []
        for pick, outcome in zip(chosen, outcomes):
            final = outcome.final or {}
            trials.append(SimulatedTrial(outcome.trial_id, generation, pick.candidate.hash, pick.candidate.arch,
                                         pick.proposal.derivation, pick.proposal.operator, float(final["val_acc"]),
                                         final.get("test_acc"), float(final["sim_cost_s"])))
            observations.append(Observation(pick.proposal.derivation, float(final["val_acc"]), pick.proposal,
                                            pick.candidate.hash))
        strategy.tell(observations)
    return trials


