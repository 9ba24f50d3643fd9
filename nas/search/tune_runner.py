"""Train candidates as Ray Tune trials, with ASHA early stopping, streaming results to the driver.

Two ways to run, one trainable (:func:`~nas.search.trainable.train_trial`) and one result stream:

- :func:`run_stream` (the search's loop): **one** ``ray.tune.Tuner`` for a whole search. Its search algorithm is
  a :class:`SpecSearcher` (a ``ray.tune.search.Searcher``) that asks a :class:`SpecSource` for the next
  :class:`~nas.search.trainable.TrialSpec` whenever Tune has a free slot, so a new candidate starts the moment a
  worker frees, and one scheduler (ASHA) sees every trial of the search. The searcher is wrapped in a
  ``ConcurrencyLimiter`` of :func:`slot_count` trials (Tune's ``max_concurrent_trials``), which is also how Tune
  sizes its queue of pending trials for a custom searcher (its default for one is 1, serialising trial starts):
  no ``TUNE_MAX_PENDING_TRIALS_PG`` environment variable is needed.
- :func:`run_trials`: a fixed batch as one Tuner (a grid over the specs), for callers with a batch in hand (and the
  legacy round loop).

While a run goes on, a ``ray.tune.Callback`` in the driver process hands each epoch's metrics to ``on_epoch`` and
each finished trial, as a :class:`TrialOutcome`, to ``on_finish``, so the caller can store a trial the moment it
ends. The three Tune roles stay apart: the searcher (or the grid) picks the configs, the scheduler (ASHA or FIFO)
decides whether a trial keeps running, and the trainable is a function of its config.

Outcome status:

- ``"ok"``: every epoch of the protocol finished;
- ``"stopped"``: the scheduler (ASHA) ended the trial early; the epochs it finished are kept;
- ``"failed"``: the candidate failed (exception, NaN/infinite loss, out of memory: reported by the trainable), or
  the trainable raised and Tune recorded a trial error.

Only APIs that survive Ray Train V2 are used (``ray.tune.Tuner``, ``TuneConfig``, ``RunConfig``,
``with_resources``, ``report``, ``get_context``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from ray import tune
from ray.tune.search import Searcher

from nas.errors import NasError
from nas.search.cluster import LOCAL, ResourceWatch, bootstrap_address, keep_sigterm_handler
from nas.search.evaluators.base import TrialOutcome
from nas.search.reaper import reap_new_children
from nas.search.settings import TuneSettings
from nas.search.trainable import EPOCH_KEYS, PLACEMENT_KEYS, TrialSpec, _describe, train_trial

__all__ = ["RayConnectionError", "SpecSearcher", "SpecSource", "TrialOutcome", "TuneSettings", "ensure_ray",
           "run_stream", "run_trials", "slot_count"]

LOCAL_SYSTEM_CONFIG: dict[str, Any] = {
    # A local Ray kills idle workers beyond one per CPU after 1 s: the scorer's task workers (torch imported) would
    # die during every Tune run and cost a cold start (~8 s on 2 cores) each round. Keep them 10 min.
    "idle_worker_killing_time_threshold_ms": 600_000,
}
_STATUSES = ("ok", "stopped", "failed")


class RayConnectionError(NasError, ConnectionError):
    """The Ray cluster at ``TuneSettings.address`` cannot be reached; ``str(err)`` names the address and cause."""


def ensure_ray(settings: TuneSettings | None = None) -> None:
    """Initialise Ray for ``settings`` unless it is already initialised (then nothing changes).

    Without ``address`` a local instance starts with ``num_cpus`` CPUs. The dashboard is off and worker output
    does not reach the driver. ``RAY_AUTH_MODE`` defaults to ``disabled`` for quiet local use.

    Raises:
        RayConnectionError: ``settings.address`` cannot be reached (checked with a 5 s TCP connect first, so an
            unreachable host fails fast).
    """
    import ray

    settings = settings if settings is not None else TuneSettings()
    if ray.is_initialized():
        return
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "ignore_reinit_error": True}
    if settings.address is None:  # a new local Ray, never a cluster that RAY_ADDRESS or `ray start` left behind
        with keep_sigterm_handler(), reap_new_children():  # its processes die with this one, even on kill -9
            ray.init(address=LOCAL, num_cpus=settings.num_cpus, _system_config=LOCAL_SYSTEM_CONFIG, **options)
        return
    _check_reachable(bootstrap_address(settings.address))
    try:
        with keep_sigterm_handler():
            ray.init(address=settings.address, **options)
    except (ConnectionError, RuntimeError, TimeoutError, ValueError) as err:
        raise RayConnectionError(f"cannot connect to the Ray cluster at {settings.address}: "
                                 f"{_describe(err)}") from err


def run_trials(specs: Sequence[TrialSpec], settings: TuneSettings | None = None, *,
               on_epoch: Callable[[int, dict[str, Any]], None] | None = None,
               on_finish: Callable[[TrialOutcome], None] | None = None) -> list[TrialOutcome]:
    """Train every spec as one trial of one Tune run; return the outcomes in the order of ``specs``.

    ``on_epoch(trial_id, metrics)`` is called after each finished epoch of a trial (``metrics``: the keys of
    ``trainable.EPOCH_KEYS``, ``trial_id`` being the spec's); ``on_finish(outcome)`` exactly once per spec, as soon
    as its trial ends. Both run in the calling thread (Tune's event loop runs there), so they may use the caller's
    database connection.

    Specs without ``memory_limit_mb`` take ``settings.memory_limit_mb``. With ASHA, ``max_t`` is the largest
    ``epochs`` of the specs and rungs count epochs (``time_attr="epoch"``), so the trainable's final report never
    counts as a training step. Set ``RAY_AIR_NEW_OUTPUT=0`` (the command line does, :mod:`nas.cli.environment`):
    Tune's new output engine prints a table to stdout even at ``verbose=0``, the legacy one prints nothing (Tune's
    log messages still go to stderr).

    Raises:
        ValueError: two specs share a ``trial_id``.
        RayConnectionError: see :func:`ensure_ray`.
        Exception: whatever ``on_epoch`` or ``on_finish`` raised, once Tune has stopped the run (running trials
            are stopped, pending ones never start, no further outcome is handed over). If Tune itself fails, the
            specs without an outcome are handed to ``on_finish`` as failed before its error propagates.
    """
    settings = settings if settings is not None else TuneSettings()
    specs = [_with_memory_cap(spec, settings) for spec in specs]
    ids = [spec.trial_id for spec in specs]
    if len(set(ids)) != len(ids):
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"trial ids must be unique; repeated: {', '.join(map(str, duplicates))}")
    if not specs:
        return []
    ensure_ray(settings)
    stream = _Stream(specs, settings, on_epoch, on_finish)
    _fit(settings, stream, max(spec.epochs for spec in specs),
         param_space={"spec": tune.grid_search([spec.to_dict() for spec in specs]),
                      "checkpoints": settings.checkpoints},
         max_concurrent=settings.max_concurrent)
    return [stream.outcomes[spec.trial_id] for spec in specs]


class SpecSource:
    """Where :func:`run_stream` gets its trials: :meth:`next_spec` is called (in the driver's thread, from Tune's
    event loop) each time Tune has room for another trial.

    Return a :class:`~nas.search.trainable.TrialSpec` to start it, ``None`` when none is ready yet (Tune asks again
    on its next step, within a fraction of a second), or :data:`SpecSource.FINISHED` when no more trials will come
    (the run then ends once the running ones have).
    """

    FINISHED = "FINISHED"

    def next_spec(self) -> TrialSpec | str | None:
        raise NotImplementedError


class SpecSearcher(Searcher):
    """A Ray Tune ``Searcher`` whose suggestions are the specs of a :class:`SpecSource`.

    Results go back to the driver through the run's callback (which has the error texts and epochs), so
    ``on_trial_complete`` does nothing here; Tune's ``ConcurrencyLimiter`` around it counts the live trials.
    """

    def __init__(self, source: SpecSource, stream: _Stream, settings: TuneSettings) -> None:
        super().__init__(metric="val_acc", mode="max")
        self.source, self.stream, self.settings = source, stream, settings

    def __reduce__(self) -> tuple[Any, ...]:
        """Tune pickles its configuration (for ``Tuner.restore``); the driver's source does not pickle, so a pickled
        searcher comes back as an inert one (runs here are never restored: the store is the checkpoint)."""
        return _InertSearcher, ()

    def __deepcopy__(self, memo: dict[int, Any]) -> SpecSearcher:
        return self

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict[str, Any],
                              **spec: Any) -> bool:
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.stream.user_error is not None:
            return Searcher.FINISHED
        try:
            spec = self.source.next_spec()
        except BaseException as err:  # noqa: BLE001 - the driver's error ends the run and is re-raised after it
            self.stream.user_error = err
            return Searcher.FINISHED
        if spec is None:
            return None
        if spec == SpecSource.FINISHED:
            return Searcher.FINISHED
        assert isinstance(spec, TrialSpec)
        spec = _with_memory_cap(spec, self.settings)
        self.stream.add(spec)
        return {"spec": spec.to_dict(), "checkpoints": self.settings.checkpoints}

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        pass

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: the search's store is its checkpoint (a resumed search rebuilds from it)."""
        with open(checkpoint_path, "wb"):
            pass

    def restore(self, checkpoint_path: str) -> None:
        pass


class _InertSearcher(Searcher):
    """What a pickled :class:`SpecSearcher` comes back as: it suggests nothing."""

    def suggest(self, trial_id: str) -> str:
        return Searcher.FINISHED

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        pass


def slot_count(settings: TuneSettings) -> int:
    """How many trials fit on the Ray cluster at once: ``max_concurrent`` if set, else the cluster's CPUs per
    ``cpus_per_trial`` (and GPUs per ``gpus_per_trial`` when trials take GPUs), at least 1."""
    import ray

    if settings.max_concurrent is not None:
        return int(settings.max_concurrent)
    ensure_ray(settings)
    resources = ray.cluster_resources()
    slots = int(resources.get("CPU", 1) // settings.cpus_per_trial + 1e-9)
    if settings.gpus_per_trial > 0:
        slots = min(slots, int(resources.get("GPU", 0) // settings.gpus_per_trial + 1e-9))
    return max(1, slots)


def run_stream(source: SpecSource, settings: TuneSettings, *, epochs: int, max_trials: int,
               on_epoch: Callable[[int, dict[str, Any]], None] | None = None,
               on_finish: Callable[[TrialOutcome], None] | None = None, slots: int | None = None) -> int:
    """Run trials from ``source`` as one Tune run until it says :data:`SpecSource.FINISHED` (or ``max_trials``
    were started) and every started trial has ended; returns the number of trials started.

    ``epochs`` is the protocol's epoch count (ASHA's ``max_t``); ``slots`` the concurrency
    (:func:`slot_count` by default). ``on_epoch``/``on_finish`` as for :func:`run_trials`, in the calling thread.

    Raises:
        Exception: whatever ``source``, ``on_epoch`` or ``on_finish`` raised, once Tune has stopped the run.
    """
    from ray.tune.search import ConcurrencyLimiter

    ensure_ray(settings)
    if max_trials < 1:
        return 0
    slots = slots if slots is not None else slot_count(settings)
    stream = _Stream([], settings, on_epoch, on_finish)
    searcher = ConcurrencyLimiter(SpecSearcher(source, stream, settings), max_concurrent=slots)
    _fit(settings, stream, epochs, search_alg=searcher, num_samples=max_trials)
    return len(stream.specs)


def _with_memory_cap(spec: TrialSpec, settings: TuneSettings) -> TrialSpec:
    if spec.memory_limit_mb is not None or settings.memory_limit_mb is None:
        return spec
    return dataclasses.replace(spec, memory_limit_mb=settings.memory_limit_mb)


def _fit(settings: TuneSettings, stream: _Stream, max_t: int, *, param_space: dict[str, Any] | None = None,
         search_alg: Any = None, num_samples: int = 1, max_concurrent: int | None = None) -> None:
    """One ``Tuner.fit()`` over :func:`train_trial` with the settings' scheduler, streaming to ``stream``; a
    driver-side error is re-raised after Tune stopped, specs left without an outcome are handed over as failed."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if settings.scheduler == "asha":
        scheduler: Any = ASHAScheduler(time_attr="epoch", max_t=max_t, grace_period=min(settings.grace_period, max_t),
                                       reduction_factor=settings.reduction_factor)
    else:
        scheduler = FIFOScheduler()
    storage = settings.storage_path or tempfile.mkdtemp(prefix="nas-tune-")
    name = f"nas-trials-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    try:
        tuner = tune.Tuner(
            tune.with_resources(train_trial, {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial}),
            param_space=param_space or {},
            tune_config=tune.TuneConfig(metric="val_acc", mode="max", scheduler=scheduler, search_alg=search_alg,
                                        num_samples=num_samples, max_concurrent_trials=max_concurrent,
                                        reuse_actors=settings.reuse_actors),
            run_config=tune.RunConfig(name=name, storage_path=os.path.abspath(storage), verbose=0,
                                      callbacks=[stream], stop=_StopOnDriverError(stream, ResourceWatch(
                                          settings.cpus_per_trial, settings.gpus_per_trial)),
                                      failure_config=tune.FailureConfig(max_failures=settings.max_failures)))
        tuner.fit()
    except Exception as err:
        if stream.user_error is not None:
            raise stream.user_error from None
        stream.finish_missing(f"the Tune run failed: {_describe(err)}")
        raise
    finally:
        if settings.storage_path is None:
            shutil.rmtree(storage, ignore_errors=True)
    if stream.user_error is not None:
        raise stream.user_error
    stream.finish_missing("the trial never finished (Tune reported neither completion nor error)")


# --- internals ----------------------------------------------------------------------------------------------------


def _check_reachable(address: str) -> None:
    """Fail fast with :class:`RayConnectionError` when ``host:port`` of ``address`` refuses a TCP connection."""
    if address in ("auto", "local"):
        return
    rest = address.split("://", 1)[1] if "://" in address else address
    host, _, port = rest.rstrip("/").rpartition(":")
    if not host:
        host, port = rest, "10001" if address.startswith("ray://") else "6379"
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=5):
            pass
    except (OSError, ValueError) as err:
        raise RayConnectionError(f"cannot connect to the Ray cluster at {address}: {_describe(err)}") from None


class _Stream(tune.Callback):
    """A Tune callback (driver side): turns Tune's trial events into ``on_epoch`` / ``on_finish`` calls.

    Exactly one outcome per spec: later events of a trial that already has one are ignored. An exception raised by
    the user's callbacks is kept in ``user_error``; :class:`_StopOnDriverError` then stops the Tune run and
    :func:`_fit` re-raises the error once Tune has stopped (never raised into Tune, which would log a traceback).
    """

    def __init__(self, specs: Sequence[TrialSpec], settings: TuneSettings,
                 on_epoch: Callable[[int, dict[str, Any]], None] | None,
                 on_finish: Callable[[TrialOutcome], None] | None):
        self.specs = {spec.trial_id: spec for spec in specs}
        self.settings = settings
        self.on_epoch = on_epoch
        self.on_finish = on_finish
        self.epochs: dict[int, list[dict[str, Any]]] = {spec.trial_id: [] for spec in specs}
        self.final: dict[int, dict[str, Any]] = {}
        self.last: dict[int, dict[str, Any]] = {}
        self.outcomes: dict[int, TrialOutcome] = {}
        self.placement: dict[int, dict[str, Any]] = {}
        self.retries: dict[int, int] = {}
        self.user_error: BaseException | None = None

    def add(self, spec: TrialSpec) -> None:
        """A spec handed to Tune during the run (:class:`SpecSearcher`)."""
        if spec.trial_id in self.specs:
            raise ValueError(f"trial id {spec.trial_id} was started twice")
        self.specs[spec.trial_id] = spec
        self.epochs[spec.trial_id] = []

    def __reduce__(self) -> tuple[Any, ...]:
        """Tune pickles its run config to restore experiments; the driver's callables need not pickle, so a
        pickled stream comes back as an inert ``tune.Callback`` (runs here are never restored)."""
        return tune.Callback, ()

    def __deepcopy__(self, memo: dict[int, Any]) -> _Stream:
        """Copies share the driver's state: events must reach this very object."""
        return self

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any],
                        **info: Any) -> None:
        """A report arrived: an epoch (forwarded to ``on_epoch``) or the trainable's final result."""
        spec_id = _spec_id(trial)
        if spec_id not in self.specs or spec_id in self.outcomes:
            return
        self.last[spec_id] = result
        if spec_id not in self.placement and result.get("started_at") is not None:
            self.placement[spec_id] = {key: result.get(key) for key in PLACEMENT_KEYS}
        if result.get("finished"):
            self.final[spec_id] = dict(result)
            return
        if result.get("status") != "running":
            return
        metrics = {key: result[key] for key in EPOCH_KEYS if key in result}
        metrics["trial_id"] = spec_id  # Tune overwrites "trial_id" in results with its own id
        epochs = self.epochs[spec_id]
        if epochs and metrics.get("epoch") is not None and metrics["epoch"] <= epochs[-1].get("epoch", 0):
            return  # a retried trial repeating an epoch it had reported before its worker died: counted once
        epochs.append(metrics)
        if self.on_epoch is not None:
            self._call(self.on_epoch, spec_id, metrics)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        """The trial ended without a Tune error: finished, failed (reported), or stopped by the scheduler."""
        spec_id = _spec_id(trial)
        if spec_id not in self.specs or spec_id in self.outcomes:
            return
        final = self.final.get(spec_id)
        epochs = self.epochs[spec_id]
        status, error = "ok", ""
        if final is not None and final.get("status") in _STATUSES:
            status, error = final["status"], str(final.get("error", ""))
        if status == "ok" and len(epochs) < self.specs[spec_id].epochs:
            status = "stopped"  # the scheduler ended it early (no final report comes then)
        self._finish(spec_id, status, error)

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        """The trial's worker died (or its trainable raised) and Tune starts it again from its last checkpoint."""
        spec_id = _spec_id(trial)
        if spec_id in self.specs:
            self.retries[spec_id] = self.retries.get(spec_id, 0) + 1

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        """The trainable raised (or its worker died): a failed outcome with Tune's error."""
        spec_id = _spec_id(trial)
        if spec_id not in self.specs or spec_id in self.outcomes:
            return
        self._finish(spec_id, "failed", f"trial error: {_trial_error(trial)}")

    def finish_missing(self, error: str) -> None:
        """Hand a failed outcome to ``on_finish`` for every spec that has none yet."""
        for spec_id in self.specs:
            if spec_id not in self.outcomes and self.user_error is None:
                self._finish(spec_id, "failed", error)

    def _finish(self, spec_id: int, status: str, error: str) -> None:
        spec = self.specs[spec_id]
        epochs = self.epochs[spec_id]
        final = self.final.get(spec_id)
        last = self.last.get(spec_id, {})
        if final is not None:
            seconds = float(final.get("total_seconds", 0.0))
        elif last.get("time_total_s") is not None:
            seconds = float(last["time_total_s"])
        else:
            seconds = math.fsum(float(e.get("seconds", 0.0)) for e in epochs)
        worker = final or (epochs[-1] if epochs else {})
        placement = self.placement.get(spec_id, {})
        resources = {"cpu": self.settings.cpus_per_trial, "gpu": self.settings.gpus_per_trial,
                     "device": worker.get("device"), "threads": worker.get("threads"), "amp": worker.get("amp"),
                     "memory_limit_mb": spec.memory_limit_mb, "node_ip": last.get("node_ip"),
                     "node_id": placement.get("node_id"), "started_at": placement.get("started_at"),
                     "ended_at": time.time(), "retries": self.retries.get(spec_id, 0)}
        outcome = TrialOutcome(spec_id, spec.hash, status, error, list(epochs), dict(epochs[-1]) if epochs else None,
                               seconds, resources)
        self.outcomes[spec_id] = outcome
        if self.on_finish is not None:
            self._call(self.on_finish, outcome)

    def _call(self, function: Callable[..., None], *args: Any) -> None:
        if self.user_error is not None:
            return
        try:
            function(*args)
        except BaseException as err:  # noqa: BLE001 - kept, not raised into Tune (which would log a traceback):
            # :class:`_StopOnDriverError` ends the run at Tune's next step and :func:`_fit` re-raises it after
            self.user_error = err


class _NeverStop(tune.Stopper):
    """A stopper that never stops: what a pickled :class:`_StopOnDriverError` comes back as."""

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return False


class _StopOnDriverError(_NeverStop):
    """Stops the whole Tune run once the driver's ``on_epoch``/``on_finish`` raised (no point training on), or once
    ``watch`` finds that no node left can host a trial (nodes left the cluster: the pending trials would wait
    forever); the error is kept in ``stream.user_error`` and :func:`_fit` raises it after Tune stopped."""

    def __init__(self, stream: _Stream, watch: ResourceWatch | None = None):
        self.stream = stream
        self.watch = watch

    def __reduce__(self) -> tuple[Any, ...]:
        return _NeverStop, ()

    def stop_all(self) -> bool:
        if self.stream.user_error is None and self.watch is not None:
            self.stream.user_error = self.watch.check()
        return self.stream.user_error is not None


def _spec_id(trial: Any) -> int | None:
    """The spec's trial id of a Tune trial."""
    spec = (trial.config or {}).get("spec") or {}
    return spec.get("trial_id")


def _trial_error(trial: Any) -> str:
    """One line naming the exception a Tune trial died of (from the error files Tune writes in the driver)."""
    from ray import cloudpickle

    error: Any = None
    pickled = getattr(trial, "pickled_error_file", None)
    if pickled and os.path.exists(pickled):
        try:
            with open(pickled, "rb") as handle:
                error = cloudpickle.load(handle)
        except Exception:  # noqa: BLE001 - an unreadable pickle falls back to the text trace
            error = None
    cause = getattr(error, "cause", None) or error  # RayTaskError wraps the trainable's exception
    if isinstance(cause, BaseException):
        return _describe(cause)
    text = ""
    path = getattr(trial, "error_file", None)
    if path and os.path.exists(path):
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "the trial failed without an error message"
