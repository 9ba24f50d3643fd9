"""The search driver: propose, de-duplicate, score, select, train on Ray Tune, record, learn; and resume.

.. code-block:: python

    from nas.search import SearchConfig, resume_search, run_search

    summary = run_search(SearchConfig(budget=12), name="s1", db="sqlite:///nas.db")
    summary.best.val_acc, summary.best.test_acc, summary.best_onnx      # best by validation accuracy
    resume_search("s1", db="sqlite:///nas.db", budget=24)               # continue (after a crash, or for more)

**Training searches** run as one asynchronous Ray Tune run (:mod:`nas.search.asynchronous`): a feeder thread
plans batches (steps 1-3 below, :func:`nas.search.selection.plan_round`) ahead of demand and queues their trials; Tune
starts each as soon as a slot frees; each finished trial is recorded, marked told (its ``tell_seq``) and told to
the strategy before the next batch is planned. There is no barrier: a batch (a generation) is only the unit of
planning. **Table searches** (and ``loop: rounds``, the legacy loop) run the rounds below.

One **round** (a generation ``g``) with ``need = min(batch, budget - finished)``; steps 1 and 3 are
:func:`nas.search.selection.plan_round`, shared with the in-memory table search (:mod:`nas.search.simulate`):

1. ``strategy.ask(need * oversample)`` (``need`` when there are no scorers); every proposal is built
   (:func:`nas.candidate.build_candidate`; without weights in table mode) and dropped if it is over the search's
   limits, if its canonical hash already has a trial in the search (queued, running or finished) or came earlier
   in the round; duplicates are told nothing, and the strategy is asked again for the shortfall (at most
   :data:`MAX_ASKS` asks per round). A candidate scored in an earlier round but not chosen may come back (its
   scores are cached): in a small space, de-duplicating against everything ever scored would exhaust it.
2. Each new candidate is stored (:meth:`~nas.store.Store.add_architecture`, its ONNX bytes); each chosen one
   also gets :meth:`~nas.store.Store.add_lineage` (parents' hashes; the ``operator`` text is the proposal as JSON,
   see :func:`encode_proposal`, so that a resumed strategy gets exactly the proposals it made).
3. The scorer (:mod:`nas.search.scoring`) ranks them; the raw scores and the combined rank (score ``combined``)
   go to the store (:meth:`~nas.store.Store.add_scores`). Seeds are always kept; the rest by combined rank,
   ``need`` in all. With the ``latency`` objective, the survivors' ONNX Runtime latency is measured here (score
   ``latency_ms``).
4. Each survivor is queued (:meth:`~nas.store.Store.queue_trial`, so a crash knows what was chosen), marked
   running and handed to the search's evaluator (:mod:`nas.search.evaluators`): trained as one trial of one Ray
   Tune run (ASHA over epochs by default), or looked up in a table (``evaluator: table:PATH``). As each trial
   ends, :meth:`~nas.store.Store.finish_trial` records it (Optuna trial, artifact, our row) with the objective
   values ``[val_acc, params | flops | latency ...]``.
5. When the round is over the strategy is told every trial of the round, **in trial id order** (ask only happens
   at the start of a round, so telling at its end loses nothing and makes the live state equal to a replay).

The search ends when ``budget`` trials have finished (``ok``, ``stopped`` and ``failed`` all count: a failing
candidate never stops the search), or after :data:`MAX_STALLED_ROUNDS` rounds in a row found no new candidate
(the space is exhausted). Its status is ``running`` while it runs, then ``finished``; ``interrupted`` on
KeyboardInterrupt and ``failed`` on any other exception (re-raised; the error is kept in the search's ``error``
column).

**One driver per search**: :func:`run_search` and :func:`resume_search` hold the search's lease
(:class:`nas.search.lease.DriverLease`) while they run; a second driver is refused with
:class:`~nas.store.LeaseError`, a stale lease (or one whose holder process is gone) is taken over.

**Resume** (:func:`resume_search`): after taking the lease, :meth:`~nas.store.Store.reconcile` completes trials
whose Optuna trial was written before the crash and requeues trials that were running. An asynchronous search
rebuilds its strategy by :meth:`~nas.search.strategies.Strategy.replay` of the finished trials in tell order
(:meth:`~nas.store.Store.told_trials`), each with the proposal stored in its lineage, then runs its queued trials
first. A round search replays in id order; its queued trials are trained first (the finished trials of their
generation are told together with them, in id order, as in the live run); then rounds continue until the budget.
A finished trial is never trained again, and a hash with a finished trial is never queued again.
``resume_search(..., budget=N)`` raises the budget (kept in the search's ``budget`` column, so a later resume keeps it).

The driver prints nothing; it reports through ``progress(SearchProgress)``. Ray is started on the first search of
the process (:func:`nas.search.tune_runner.ensure_ray`) and left running for the next one; a process that exits
takes its local Ray instance with it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.search.config import ConfigError, SearchConfig
from nas.search.evaluators import EvalJob, Evaluator, TrialOutcome
from nas.search.selection import MAX_ASKS, MAX_STALLED_ROUNDS, plan_round, within_limits
from nas.search.strategies import Observation, Proposal
from nas.search.validate import check_search_name
from nas.statuses import TrialStatus
from nas.util.atomic import check_output_dir
from nas.util.secrets import shell_command

if TYPE_CHECKING:
    from nas.search.settings import TuneSettings
    from nas.store import ArchitectureRecord, Store, TrialRecord

__all__ = ["MAX_ASKS", "MAX_STALLED_ROUNDS", "SearchProgress", "SearchSummary", "decode_proposal",
           "encode_proposal", "export_best", "export_top", "resume_search", "run_search", "summarize"]

_FINISHED = TrialStatus.finished()
_UNFINISHED = TrialStatus.unfinished()
_TRAINED = TrialStatus.trained()
COMBINED = "combined"
LATENCY = "latency_ms"
DB_RETRY_S = 120.0
"""Default seconds a search retries a lost database connection before it stops ``interrupted``."""
TABLE_NUM_CLASSES = 10
"""Classes of the classifier head that table-mode candidates are built with (the tables' CIFAR-10 networks)."""


@dataclass(frozen=True)
class SearchProgress:
    """One progress report of a running search (``run_search(..., progress=callback)``).

    Attributes:
        event: ``"start"`` (Ray is up, the search begins), ``"round"`` (a round's candidates were chosen),
            ``"epoch"`` (a trial finished an epoch), ``"trial"`` (a trial finished), ``"warning"``, ``"end"``.
        search: the search's name.
        finished: trials finished so far; ``budget`` the number to reach.
        best_val_acc: the best validation accuracy so far (``None`` before the first).
        generation: the current round.
        message: a human-readable line.
        trial: the finished trial (``"trial"`` events).
        running: unfinished trials that have reported an epoch (training now); ``queued`` the other unfinished
            ones (waiting for a worker, or not started); ``failed`` the failed trials so far.
    """

    event: str
    search: str
    finished: int
    budget: int
    best_val_acc: float | None
    generation: int
    message: str = ""
    trial: TrialRecord | None = None
    running: int = 0
    queued: int = 0
    failed: int = 0


@dataclass(frozen=True)
class SearchSummary:
    """Where a search stands (what :func:`run_search` and :func:`resume_search` return).

    Attributes:
        name: the search (and Optuna study) name; ``db`` the store's URL (password masked).
        status: ``running``, ``finished``, ``failed`` or ``interrupted``.
        budget: trials to train; ``finished``/``ok``/``stopped``/``failed`` how many did, by status.
        best: the best trial by validation accuracy (``ok`` or ``stopped``), ``None`` if none.
        best_architecture: its architecture (without ONNX bytes).
        best_onnx: the best architecture's ONNX file (written by :func:`export_best`), if exported.
        pareto: the ``ok`` trials on the Pareto front of the search's objectives.
        artifact_dir: the store's artifact folder (Optuna's artifacts; ``best/`` inside).
        dashboard_command: ``optuna-dashboard URL --artifact-dir DIR``.
        objectives: the objective names.
        seconds: wall time of this call (0 for :func:`summarize`).
        warnings: what the driver warned about (e.g. the predictor fell back to proxies).
    """

    name: str
    db: str
    status: str
    budget: int
    finished: int
    ok: int
    stopped: int
    failed: int
    best: TrialRecord | None
    best_architecture: ArchitectureRecord | None
    best_onnx: Path | None
    pareto: tuple[TrialRecord, ...]
    artifact_dir: Path
    dashboard_command: tuple[str, ...]
    objectives: tuple[str, ...]
    seconds: float = 0.0
    warnings: tuple[str, ...] = field(default=())


# ------------------------------------------------------------------------------------------------ proposals


def encode_proposal(proposal: Proposal, ask: dict[str, Any] | None = None) -> str:
    """A proposal as the lineage ``operator`` text: JSON ``{"operator", "meta", "parents", "derivation"}`` (the
    parents and the derivation as the strategy's keys, so that a replay gets exactly the proposal back), plus
    ``ask`` when given: which ask made it (:class:`nas.search.asynchronous.AskRecord` and the driver's token)."""
    data = {"operator": proposal.operator, "meta": proposal.meta, "parents": list(proposal.parents),
            "derivation": proposal.derivation}
    if ask is not None:
        data["ask"] = ask
    return json.dumps(data, allow_nan=True, default=str)


def decode_proposal(text: str, derivation: str) -> Proposal:
    """The proposal stored by :func:`encode_proposal`; a plain operator text gives a proposal of ``derivation``."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        data = None
    if not isinstance(data, dict) or "operator" not in data:
        return Proposal(derivation, (), str(text))
    return Proposal(str(data.get("derivation") or derivation), tuple(data.get("parents") or ()),
                    str(data["operator"]), dict(data.get("meta") or {}))


# ------------------------------------------------------------------------------------------------ entry points


def run_search(config: SearchConfig, *, name: str, db: str, address: str | None = None,
               progress: Callable[[SearchProgress], None] | None = None,
               db_retry_s: float = DB_RETRY_S, job: tuple[str, str] | None = None,
               allow_foreign_db: bool = False) -> SearchSummary:
    """Run a new search named ``name`` in the store ``db`` until ``config.budget`` trials have finished.

    Args:
        config: the search (:class:`~nas.search.config.SearchConfig`).
        name: the search's name, also its Optuna study's.
        db: the store's SQLAlchemy URL (``sqlite:///nas.db``, ``postgresql+psycopg://...``).
        address: an existing Ray cluster (``host:port``, ``ray://host:port``, ``auto``); ``None``: a local Ray.
        progress: called with each :class:`SearchProgress`.
        db_retry_s: how long a lost database connection is retried during the search (``Store(retry_s=...)``);
            past it the search stops ``interrupted`` (:class:`~nas.store.StoreUnavailableError`), resumable.
        job: ``(job id, job server address)`` of the Ray job running this search (:mod:`nas.search.jobs`),
            recorded with the search.
        allow_foreign_db: let the store's tables join a SQLite file of another application (``Store(...,
            allow_foreign=True)``).

    Raises:
        StoreError: the store cannot be opened, or a search named ``name`` exists (the message says how to resume).
        ConfigError, StrategyError, ScorerError: the configuration is invalid (nothing is written then).
        RayConnectionError: ``address`` cannot be reached (nothing is written then).
    """
    from nas.search.lease import DriverLease
    from nas.store import Store, StoreError

    started = time.perf_counter()
    check_search_name(name)
    with Store(db, retry_s=db_retry_s, allow_foreign=allow_foreign_db) as store:
        check_output_dir(store.artifact_dir, what="the store's artifact folder")  # before anything trains
        existing = {s.name: s for s in store.list_searches()}
        if name in existing:
            s = existing[name]
            done = len(store.trials_of(name, status=_FINISHED))
            hint = shell_command("nas", "search", "resume", name, "--db", store.display_url)
            raise StoreError(f"a search named {name!r} already exists in {store.display_url} ({s.status}, {done} "
                             f"trials finished): continue it with `{hint}` (--budget N to train more) or choose "
                             "another --name")
        settings = _settings(config, address)
        search = _Search(store, name, config, config.budget, settings, progress)
        search.start()
        store.create_search(name, space=config.space, dataset=search.dataset_name, config=config.to_dict(),
                            seed=config.seed, objectives=list(config.objectives), directions=config.directions,
                            budget=config.budget)
        if job is not None:
            store.set_search_job(name, *job)
        with DriverLease(store, name) as lease:
            store.set_search_budget(name, config.budget)
            search.lease = lease
            return _drive(store, search, started)


def resume_search(name: str, *, db: str, address: str | None = None, budget: int | None = None,
                  progress: Callable[[SearchProgress], None] | None = None,
                  tune: dict[str, Any] | None = None, db_retry_s: float = DB_RETRY_S) -> SearchSummary:
    """Continue the search ``name``: repair it after a crash, re-run unfinished trials, go on to the budget.

    Args:
        budget: a new budget (e.g. to train more after the search finished); ``None`` keeps the search's.
        tune: ``tune`` settings that override the stored ones for this run (e.g. ``{"cpus_per_trial": 1}`` to
            repair a request the cluster can never meet).
        db_retry_s: as for :func:`run_search`.

    Raises:
        StoreError: the store cannot be opened or has no search ``name`` (the message lists the known ones).
        ConfigError: ``budget`` < 1, or the stored configuration no longer loads.
    """
    from nas.search.lease import DriverLease
    from nas.store import Store

    started = time.perf_counter()
    if budget is not None and budget < 1:
        raise ConfigError(f"budget must be >= 1, got {budget}")
    with Store(db, retry_s=db_retry_s) as store:
        check_output_dir(store.artifact_dir, what="the store's artifact folder")  # before anything trains
        record = store.get_search(name)
        stored = dict(record.config)
        if tune:
            stored["tune"] = {**(stored.get("tune") or {}), **tune}
        config = SearchConfig.from_dict(stored)
        with DriverLease(store, name) as lease:  # before reconcile: a live driver's running trials are its own
            store.reconcile(name)  # it also recreates the Optuna study if a crash left it missing
            if budget is None:
                budget = _stored_budget(store, name, config)
            settings = _settings(config, address)
            search = _Search(store, name, config, budget, settings, progress)
            search.lease = lease
            search.start()
            store.set_search_budget(name, budget)
            return _drive(store, search, started)


def _stored_budget(store: Store, name: str, config: SearchConfig) -> int:
    """The search's budget column; for a store written before it existed, the Optuna study's user attribute
    ``budget`` (read only), else the config's."""
    record = store.get_search(name)
    if record.budget is not None:
        return int(record.budget)
    try:
        return int(_study(store, name).user_attrs.get("budget", config.budget))
    except Exception:  # noqa: BLE001 - a missing study: the configured budget
        return int(config.budget)


def _settings(config: SearchConfig, address: str | None) -> TuneSettings:
    """The search's ``tune`` section (validated with the config) joined to this run's cluster ``address``."""
    return replace(config.tune, address=address)


def _study(store: Store, name: str) -> Any:
    import optuna

    return optuna.load_study(study_name=store.get_search(name).optuna_study_name, storage=store.optuna_storage)


def _drive(store: Store, search: _Search, started: float) -> SearchSummary:
    """Run the search, keeping its status: running -> finished / interrupted / failed (re-raised)."""
    from nas.search.cluster import NodesLostError
    from nas.store import StoreUnavailableError

    name = search.name
    store.set_search_status(name, "running")
    try:
        search.run()
    except (KeyboardInterrupt, SystemExit) as stop:  # Ctrl-C, or SIGTERM (Ray's handler exits, the CLI's interrupts)
        _set_status(store, name, "interrupted", f"interrupted ({type(stop).__name__})")
        raise
    except NodesLostError as err:  # no node left can host a trial: every finished trial is kept, resumable
        _set_status(store, name, "interrupted", str(err))
        hint = shell_command("nas", "search", "resume", name, "--db", store.display_url, *" ".join(err.fix).split())
        raise NodesLostError(f"{err}; search {name!r} is interrupted: every finished trial is kept, continue it "
                             f"with `{hint}` (or once the nodes are back)", err.fix) from None
    except StoreUnavailableError as err:  # the database stayed away: every trial it recorded is kept, resumable
        _set_status(store, name, "interrupted", str(err))
        hint = shell_command("nas", "search", "resume", name, "--db", store.display_url)
        raise StoreUnavailableError(f"{err}; search {name!r} is interrupted: every trial recorded before is kept, "
                                    f"continue it with `{hint}` once the database is back") from None
    except BaseException as err:
        _set_status(store, name, "failed", f"{type(err).__name__}: {err}")
        raise
    store.set_search_status(name, "finished", error="")  # an earlier run may have failed; this one finished
    best_onnx = export_best(store, name)
    summary = summarize(store, name, budget=search.budget, best_onnx=best_onnx)
    summary = replace(summary, seconds=time.perf_counter() - started, warnings=tuple(search.warnings))
    search.report("end", f"finished: {summary.finished} trials")
    return summary


def _set_status(store: Store, name: str, status: str, error: str) -> None:
    """Best effort (the store itself may be what failed): the status and its error."""
    try:
        store.set_search_status(name, status, error=error)
    except Exception:  # noqa: BLE001 - never mask the original error
        pass


# ------------------------------------------------------------------------------------------------ the search


class _Search:
    """One search's driver state: space, evaluator, scorer, strategy and the proposals stored in its lineage."""

    def __init__(self, store: Store, name: str, config: SearchConfig, budget: int, settings: TuneSettings,
                 progress: Callable[[SearchProgress], None] | None) -> None:
        from nas.search.scoring import scorer_from_config
        from nas.search.strategies import make_strategy
        from search_spaces.spaces import get_space, space_spec

        self.store, self.name, self.config, self.budget = store, name, config, int(budget)
        self.settings = settings
        self.progress = progress
        self.warnings: list[str] = []
        self.dataset: Any = None
        if config.table_mode:
            self.input_shape = tuple(int(d) for d in space_spec(config.space).example_input)
            self.num_classes = TABLE_NUM_CLASSES
        else:
            from nas.data import load_dataset

            self.dataset = load_dataset(config.dataset, seed=config.seed)
            self.input_shape = tuple(int(d) for d in self.dataset.input_shape)
            self.num_classes = int(self.dataset.num_classes)
        self.space = get_space(config.space, self.input_shape, limits=config.limits)
        self.evaluator = self._evaluator()
        import warnings as _warnings

        with _warnings.catch_warnings(record=True) as caught:
            _warnings.simplefilter("always")
            self.scorer = scorer_from_config(config, self.space, self.dataset, input_shape=self.input_shape,
                                             num_classes=self.num_classes)
        for w in caught:
            self.warnings.append(str(w.message))
        options = config.strategy_kwargs()
        if config.strategy == "guided":
            if self.scorer is None:
                raise ConfigError("strategy 'guided' ranks its children with the search's scorers: give at least "
                                  "one in scorers (e.g. [zen])")
            options["scorer"] = self.scorer
        if config.strategy == "surrogate":  # its prior, featurizer, state file and background refits
            from nas.search.strategies.surrogate import driver_options

            options.update(driver_options(self, options))
        self.strategy = make_strategy(config.strategy, self.space, seed=config.seed,
                                      seeds=config.seed_list(self.input_shape), **options)
        self.proposals: dict[str, Proposal] = {}  # hash -> the proposal it was trained/scored as
        self.reporting: set[int] = set()  # trial ids that reported an epoch (running, for the progress display)
        self.generation = -1
        self.lease: Any = None  # the DriverLease this driver holds (set by run_search / resume_search)
        if config.asynchronous and self.scorer is not None:
            # trials hold every CPU slot of the cluster while the search runs: proxy tasks would wait for them
            self.scorer.use_ray = False

    def _evaluator(self) -> Evaluator:
        from nas.search.evaluators import TableEvaluator, load_table
        from nas.search.evaluators.tune import TuneEvaluator

        kind, path, key = self.config.evaluator_parts
        if kind == "table":
            assert path is not None
            return TableEvaluator(load_table(path, key, self.space), seed=self.config.seed)
        return TuneEvaluator(self.settings, space=self.space.name, input_shape=self.input_shape,
                             num_classes=self.num_classes, dataset=self.config.dataset, seed=self.config.seed,
                             train=self.config.train_config())

    @property
    def dataset_name(self) -> str:
        """What the search's record names as its data: the dataset, or ``table:<file>`` in benchmark mode."""
        return self.evaluator.describe() if self.config.table_mode else self.config.dataset

    # --- reporting ----------------------------------------------------------------------------------------------

    def report(self, event: str, message: str = "", trial: TrialRecord | None = None) -> None:
        if self.progress is None:
            return
        trials = self.store.trials_of(self.name)
        best = [t.val_acc for t in trials if t.val_acc is not None and t.status in _TRAINED]
        unfinished = [t.id for t in trials if t.status in _UNFINISHED]
        running = sum(i in self.reporting for i in unfinished)
        self.progress(SearchProgress(event, self.name, sum(t.status in _FINISHED for t in trials), self.budget,
                                     max(best) if best else None, max(self.generation, 0), message, trial,
                                     running, len(unfinished) - running,
                                     sum(t.status == TrialStatus.FAILED for t in trials)))

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self.report("warning", message)

    def start(self) -> None:
        """Start the evaluator (a local or remote Ray for training; nothing for a table)."""
        if self.config.table_mode:
            return
        self.evaluator.start()

    # --- the loop -----------------------------------------------------------------------------------------------

    def run(self) -> None:
        for lineage in self.store.lineage_of(self.name):
            derivation = self._derivation(lineage.child_hash)
            self.proposals[lineage.child_hash] = decode_proposal(lineage.operator, derivation)
        trials = self.store.trials_of(self.name)
        self.generation = max((t.generation for t in trials), default=-1)
        self.report("start", f"search {self.name!r}: {self.config.space} on {self.dataset_name}, "
                             f"{self.config.strategy}, budget {self.budget}")
        for message in self.warnings:
            self.report("warning", message)
        try:
            if self.config.asynchronous:
                self._run_async(trials)
            else:
                self._run_rounds(trials)
        finally:
            getattr(self.strategy, "close", lambda: None)()  # a surrogate's refit in progress is finished and stored

    # --- the asynchronous loop (training) ----------------------------------------------------------------------

    def _run_async(self, trials: list[TrialRecord]) -> None:
        """One asynchronous Tune run until the budget (see :mod:`nas.search.asynchronous`)."""
        from nas.search.asynchronous import CandidateFeeder

        finished = [t for t in trials if t.status in _FINISHED]
        done_hashes = {t.arch_hash: t.id for t in finished}
        queued = []
        for t in (t for t in trials if t.status in _UNFINISHED):
            if t.arch_hash in done_hashes:  # a crash between queueing a duplicate and noticing it
                self.store.finish_trial(t.id, status="failed", epochs=[], final=None, objective_values=None,
                                        error=f"duplicate: hash {t.arch_hash} was trained by trial "
                                              f"{done_hashes[t.arch_hash]}")
            else:
                queued.append(t)
        history = self.store.told_trials(self.name)  # tell order; finished but untold ones (a crash) last
        self.store.mark_told([t.id for t in history if t.tell_seq is None])
        self.strategy.replay([self._observation(t) for t in history])
        if len(history) >= self.budget:
            return
        slots = self.evaluator.slots()
        fault_ordinals = {}
        if self.config.faults:
            fault_ordinals = {t.id: i for i, t in enumerate(trials)}

        def spec_of(trial: TrialRecord) -> Any:
            if self.config.faults and trial.id not in fault_ordinals:
                fault_ordinals.update({t.id: i for i, t in enumerate(self.store.trials_of(self.name))})
            return self.evaluator.spec(self._job(trial, self.config.faults.get(fault_ordinals.get(trial.id, -1))))

        def should_stop() -> str | None:
            return None if self.lease is None else self.lease.lost

        feeder = CandidateFeeder(self, queued=queued, finished=len(history), slots=slots, spec_of=spec_of,
                                 should_stop=should_stop)
        if queued:
            self.report("round", f"resuming: re-running {len(queued)} unfinished trial(s)")
        feeder.maybe_refill(wait=True)  # the first candidates are ready before Tune starts

        def on_finish(outcome: TrialOutcome) -> None:
            record = self._finish(outcome)
            self.store.mark_told([record.id])
            feeder.told(record.id, self._observation(record))
            self._report_trial(record)

        try:
            self.evaluator.stream(feeder, max_trials=self.budget - len(history), slots=slots, on_finish=on_finish,
                                  on_epoch=self._on_epoch if self.progress is not None else None)
        finally:
            feeder.join()
        if feeder.error is not None:
            raise feeder.error

    def _job(self, trial: TrialRecord, fault: str | None = None) -> EvalJob:
        arch = self.store.get_architecture(trial.arch_hash)
        return EvalJob(trial.id, trial.arch_hash, self._key(trial.arch_hash), arch.arch, arch.params, arch.flops,
                       fault)

    def _on_epoch(self, trial_id: int, metrics: dict[str, Any]) -> None:
        self.reporting.add(trial_id)
        acc = metrics.get("val_acc")
        self.report("epoch", f"trial {trial_id} epoch {metrics.get('epoch')}: val acc "
                             f"{acc if acc is None else round(float(acc), 4)}")

    def _report_trial(self, record: TrialRecord) -> None:
        acc = "" if record.val_acc is None else f", val acc {record.val_acc:.4f}"
        self.report("trial", f"trial {record.id} {record.status}{acc}"
                             f"{': ' + record.error if record.error else ''}", record)

    # --- the round loop (table mode; legacy for training) -------------------------------------------------------

    def _run_rounds(self, trials: list[TrialRecord]) -> None:
        unfinished = [t for t in trials if t.status in _UNFINISHED]
        held = {t.generation for t in unfinished}
        finished = [t for t in trials if t.status in _FINISHED]
        self.strategy.replay([self._observation(t) for t in finished if t.generation not in held])
        if unfinished:
            self._rerun(unfinished, [t for t in finished if t.generation in held], finished)
        stalled = 0
        while True:
            done = len(self.store.trials_of(self.name, status=_FINISHED))
            if done >= self.budget:
                return
            self.generation += 1
            need = min(self.config.batch, self.budget - done)
            chosen = self._new_round(need)
            if not chosen:
                stalled += 1
                self.warn(f"round {self.generation}: no new candidate (every proposal was a duplicate)")
                if stalled >= MAX_STALLED_ROUNDS:
                    self.warn(f"stopping after {done} trials: {MAX_STALLED_ROUNDS} rounds found nothing new")
                    return
                continue
            stalled = 0
            self._train(chosen, held=[])

    def _rerun(self, unfinished: list[TrialRecord], held: list[TrialRecord], finished: list[TrialRecord]) -> None:
        """Train the trials a crash left unfinished (first finishing, as failed, any whose hash finished)."""
        done_hashes = {t.arch_hash: t.id for t in finished}
        todo = []
        for t in unfinished:
            if t.arch_hash in done_hashes:
                record = self.store.finish_trial(t.id, status="failed", epochs=[], final=None,
                                                 objective_values=None,
                                                 error=f"duplicate: hash {t.arch_hash} was trained by trial "
                                                       f"{done_hashes[t.arch_hash]}")
                held.append(record)
            else:
                todo.append(t)
        self.report("round", f"resuming: re-running {len(todo)} unfinished trial(s)")
        self._train(todo, held=held)

    def _new_round(self, need: int) -> list[TrialRecord]:
        """Propose, de-duplicate, store, score and select ``need`` candidates; queue them and return the trials."""
        known = {h for h, status in self.store.known_hashes(self.name).items() if status != "scored"}
        pool, chosen = plan_round(self.strategy, self.scorer, self._build, known, need, self.config.oversample,
                                  self.warn)
        if not pool:
            return []
        trials = self.store_candidates(pool, chosen)
        self.report("round", f"round {self.generation}: {len(pool)} new candidates scored, training {len(trials)}")
        return trials

    def store_candidates(self, pool: list[Any], chosen: list[Any], asks: dict[str, Any] | None = None,
                         need: int | None = None) -> list[TrialRecord]:
        """Store a planned batch (every new candidate with its ONNX bytes and scores; the chosen ones' lineage,
        with the ask that proposed each when ``asks`` maps derivation keys to it) and queue the chosen ones'
        trials, in order; returns the queued trials."""
        for pick in pool:
            c = pick.candidate
            self.store.add_architecture(c.hash, space=self.space.name, derivation=str(c.derivation), arch=c.arch,
                                        onnx=self._onnx_bytes(c.onnx_model), params=c.params, flops=c.flops)
            if self.scorer is not None:
                self.store.add_scores(self.name, c.hash, {**pick.raw, COMBINED: (pick.combined, 0.0)})
        hash_of = {p.derivation: h for h, p in self.proposals.items()}
        for pick in chosen:  # the lineage is how an evaluated candidate was proposed (what a resume replays)
            c, p = pick.candidate, pick.proposal
            parents = [hash_of[k] for k in p.parents if k in hash_of]
            ask = None
            if asks is not None and p.derivation in asks:
                ask = {**asks[p.derivation].to_dict(), "need": need, "driver": getattr(self.lease, "owner", None)}
            self.store.add_lineage(self.name, c.hash, parents, encode_proposal(p, ask))
            self.proposals[c.hash] = p
            hash_of[p.derivation] = c.hash
        trials = []
        for pick in chosen:
            if "latency" in self.config.objectives:
                self._latency(pick.candidate.hash, pick.candidate.onnx_model)
            trial_id = self.store.queue_trial(self.name, pick.candidate.hash, generation=self.generation,
                                              resources=self._resources())
            trials.append(self.store.get_trial(trial_id))
        if asks is not None:
            self.report("round", f"batch {self.generation}: {len(pool)} new candidates scored, {len(trials)} queued")
        return trials

    def _build(self, proposal: Proposal) -> Any:
        """The proposal's candidate (graph, module, ONNX; without weights in table mode); ``None`` when it is over
        the search's limits."""
        from nas.candidate import build_candidate

        derivation = self.space.parse(proposal.derivation)
        if not within_limits(derivation, self.space.limits):
            return None
        return build_candidate(self.space, derivation, self.num_classes, check=False,
                               weights=not self.config.table_mode)

    def _onnx_bytes(self, model: Any) -> bytes:
        """The ONNX file stored for a candidate: complete when training, without weights in table mode
        (:func:`nas.export.onnx.strip_weights`: kilobytes instead of megabytes; nothing runs it there)."""
        if self.config.table_mode:
            from nas.export.onnx import strip_weights

            model = strip_weights(model)
        return model.SerializeToString()

    def _resources(self) -> dict[str, Any]:
        if self.config.table_mode:
            return {"evaluator": "table"}
        return {"cpu": self.settings.cpus_per_trial, "gpu": self.settings.gpus_per_trial,
                "memory_limit_mb": self.settings.memory_limit_mb}

    def _train(self, trials: list[TrialRecord], held: list[TrialRecord]) -> None:
        """Evaluate ``trials`` (one Tune run, or look-ups); then tell the strategy them and ``held``, in id order."""
        ordinals = {t.id: i for i, t in enumerate(self.store.trials_of(self.name))}
        jobs = []
        for t in trials:
            arch = self.store.get_architecture(t.arch_hash)
            jobs.append(EvalJob(t.id, t.arch_hash, self._key(t.arch_hash), arch.arch, arch.params, arch.flops,
                                self.config.faults.get(ordinals[t.id])))
            self.store.mark_running(t.id, resources=self._resources())
        observations = {t.id: self._observation(t) for t in held}

        def on_epoch(trial_id: int, metrics: dict[str, Any]) -> None:
            self.reporting.add(trial_id)
            acc = metrics.get("val_acc")
            self.report("epoch", f"trial {trial_id} epoch {metrics.get('epoch')}: val acc "
                                 f"{acc if acc is None else round(float(acc), 4)}")

        def on_finish(outcome: TrialOutcome) -> None:
            record = self._finish(outcome)
            observations[record.id] = self._observation(record)
            acc = "" if record.val_acc is None else f", val acc {record.val_acc:.4f}"
            self.report("trial", f"trial {record.id} {record.status}{acc}"
                                 f"{': ' + record.error if record.error else ''}", record)

        if jobs:
            self.evaluator.evaluate(jobs, on_epoch=on_epoch if self.progress is not None else None,
                                    on_finish=on_finish)
        order = sorted(observations)
        self.store.mark_told(order)
        self.strategy.tell([observations[i] for i in order])

    def _finish(self, outcome: TrialOutcome) -> TrialRecord:
        """Record a finished trial with its objective values."""
        status, error, final = outcome.status, outcome.error, outcome.final
        val = final.get("val_acc") if final else None
        finite = isinstance(val, (int, float)) and math.isfinite(val)
        values = None
        if status in _TRAINED:
            if finite:
                values = [float(val)] + [self._objective(o, outcome.hash) for o in self.config.objectives[1:]]
            elif status == "ok":
                status, error = "failed", "no finite validation accuracy"
        return self.store.finish_trial(outcome.trial_id, status=status, error=error, epochs=outcome.epochs,
                                       final=final, objective_values=values, resources=outcome.resources)

    def _objective(self, name: str, hash: str) -> float:
        if name == "latency":
            return self._latency(hash)
        arch = self.store.get_architecture(hash)
        return float(arch.params if name == "params" else arch.flops)

    def _latency(self, hash: str, model: Any = None) -> float:
        """The candidate's ONNX Runtime latency (ms), measured once and kept as its score ``latency_ms``."""
        from nas.search.latency import onnx_latency_ms

        for score in self.store.scores_of(self.name, hash):
            if score.name == LATENCY:
                return score.value
        if self.config.table_mode:  # the stored ONNX has no weights: build a runnable one
            from nas.candidate import build_candidate

            model = build_candidate(self.space, self.space.parse(self._key(hash)), self.num_classes,
                                    check=False).onnx_model
        elif model is None:
            model = self.store.get_architecture(hash, with_onnx=True).onnx
        start = time.perf_counter()
        ms = onnx_latency_ms(model, self.input_shape)
        self.store.add_scores(self.name, hash, {LATENCY: (ms, time.perf_counter() - start)})
        return ms

    def _derivation(self, hash: str) -> str:
        return self.store.get_architecture(hash).derivation

    def _key(self, hash: str) -> str:
        proposal = self.proposals.get(hash)
        return proposal.derivation if proposal is not None else self._derivation(hash)

    def _observation(self, trial: TrialRecord) -> Observation:
        fitness = trial.val_acc if trial.status in _TRAINED else None
        fidelity = len(trial.epochs) if trial.status == TrialStatus.STOPPED else None
        return Observation(self._key(trial.arch_hash), fitness, self.proposals.get(trial.arch_hash), trial.arch_hash,
                           fidelity)


# ------------------------------------------------------------------------------------------------ results


def summarize(store: Store, name: str, *, budget: int | None = None, best_onnx: Path | None = None) -> SearchSummary:
    """Where the search ``name`` stands (its trial counts, best trial, Pareto front, dashboard command)."""
    record = store.get_search(name)
    trials = store.trials_of(name)
    counts = {s: sum(t.status == s for t in trials) for s in _FINISHED}
    if budget is None:
        budget = record.budget
    if budget is None:
        try:
            budget = int(_study(store, name).user_attrs.get("budget", record.config.get("budget", 0)))
        except Exception:  # noqa: BLE001 - a missing study: the configured budget
            budget = int(record.config.get("budget", 0))
    best = store.best(name, 1)
    best_arch = store.get_architecture(best[0].arch_hash) if best else None
    pareto = tuple(store.pareto_front(name)) if len(record.objectives) > 1 else tuple(best)
    return SearchSummary(name, store.display_url, record.status, budget, sum(counts.values()), counts["ok"],
                         counts["stopped"], counts["failed"], best[0] if best else None, best_arch, best_onnx,
                         pareto, store.artifact_dir, tuple(store.dashboard_command()), record.objectives)


def export_best(store: Store, name: str) -> Path | None:
    """Write the best architecture's ONNX to ``<artifact_dir>/best/<name>_<hash>.onnx``; its path (``None``
    when the search has no trained candidate yet)."""
    best = store.best(name, 1)
    if not best:
        return None
    arch = store.get_architecture(best[0].arch_hash, with_onnx=True)
    folder = store.artifact_dir / "best"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_safe(name)}_{arch.hash}.onnx"
    assert arch.onnx is not None
    path.write_bytes(arch.onnx)
    return path


def export_top(store: Store, name: str, k: int, out: str | Path) -> list[Path]:
    """Export the ``k`` best trials (by validation accuracy) of ``name`` to the folder ``out``.

    Writes ``<rank>_<hash>.onnx`` (the architecture's ONNX bytes from the store) and ``<rank>_<hash>.json``
    (derivation, arch, params, FLOPs, trial status, metrics, objective values, per-epoch metrics, scores, lineage)
    for each, ranks from 1, plus ``summary.json`` (the search, its config and the list). Returns the files written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record = store.get_search(name)
    lineage = {rec.child_hash: rec for rec in store.lineage_of(name)}
    rows, written = [], []
    for rank, trial in enumerate(store.best(name, k), start=1):
        arch = store.get_architecture(trial.arch_hash, with_onnx=True)
        stem = f"{rank}_{arch.hash}"
        assert arch.onnx is not None
        (out / f"{stem}.onnx").write_bytes(arch.onnx)
        origin = lineage.get(arch.hash)
        proposal = decode_proposal(origin.operator, arch.derivation) if origin is not None else None
        info = {"rank": rank, "hash": arch.hash, "space": arch.space, "derivation": arch.derivation,
                "arch": arch.arch, "params": arch.params, "flops": arch.flops, "trial_id": trial.id,
                "optuna_trial_number": trial.optuna_trial_number, "generation": trial.generation,
                "status": trial.status, "val_acc": trial.val_acc, "test_acc": trial.test_acc,
                "objectives": dict(zip(record.objectives, trial.objective_values or ())),
                "final": trial.final, "epochs": list(trial.epochs), "resources": trial.resources,
                "scores": {s.name: {"value": _json_float(s.value), "seconds": s.seconds}
                           for s in store.scores_of(name, arch.hash)},
                "lineage": None if origin is None or proposal is None else {
                    "operator": proposal.operator, "parents": list(origin.parents), "meta": proposal.meta},
                "onnx": f"{stem}.onnx"}
        (out / f"{stem}.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
        written += [out / f"{stem}.onnx", out / f"{stem}.json"]
        rows.append({k: info[k] for k in ("rank", "hash", "val_acc", "test_acc", "params", "flops", "derivation",
                                          "onnx")})
    summary = {"search": name, "space": record.space, "dataset": record.dataset, "status": record.status,
               "objectives": list(record.objectives), "directions": list(record.directions),
               "config": record.config, "top": rows}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    written.append(out / "summary.json")
    return written


def _json_float(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name) or "search"

