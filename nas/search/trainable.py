"""One candidate architecture trained as one Ray Tune trial: :class:`TrialSpec` and the function trainable
:func:`train_trial`.

A trial is described completely by a :class:`TrialSpec` (plain data, so it travels to any Ray worker): the
derivation string of the architecture in its space, the dataset and the training protocol. :func:`train_trial` is
a Tune *function trainable* taking ``config["spec"]`` (a ``TrialSpec.to_dict()``); it rebuilds the candidate,
trains it with :func:`nas.train.train_candidate` and reports through ``ray.tune.report``:

- after each epoch, the epoch's metrics (:data:`EPOCH_KEYS`) with ``status="running"``;
- with each epoch's report, a checkpoint (``ray.tune.Checkpoint``, one file :data:`STATE_FILE` written by
  ``torch.save``: the training state of :func:`nas.train.train_candidate`, i.e. model, optimizer, LR schedule, RNGs
  and the finished epochs). When the trial's worker dies, Tune (``FailureConfig(max_failures=...)``) starts the
  trial again and :func:`train_trial` resumes it from ``ray.tune.get_checkpoint()``: the retry reports only the
  epochs after the checkpoint's, so every epoch is reported once;
- at the end, one final result marked ``finished=True`` (:data:`FINAL_KEYS`) with ``status`` ``"ok"``,
  ``"stopped"`` or ``"failed"`` and the ``error`` text.

A failure of the candidate (an exception while building or training it, a NaN/infinite loss, running out of
memory) never crashes the worker: it is reported as a final result with ``status="failed"``. When Tune itself
stops the trial (an early-stopping scheduler such as ASHA, or the last epoch reaching the scheduler's ``max_t``),
the final result is not sent: the driver (:mod:`nas.search.tune_runner`) tells the status from the epochs it saw.

Only APIs that survive Ray Train V2 are used: ``ray.tune.report``, ``ray.tune.get_checkpoint``,
``ray.tune.Checkpoint`` and ``ray.tune.get_context``.
:func:`run_spec` is the same trial without Ray, reporting to any callable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import signal
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nas.data import Dataset
    from search_spaces.spaces import Space

__all__ = ["EPOCH_KEYS", "FAULTS", "STATE_FILE", "FINAL_KEYS", "InjectedFault", "TrialSpec", "run_spec", "train_trial"]

FAULTS: tuple[str, ...] = ("raise", "crash", "nan", "oom", "kill")
"""The fault injections a :class:`TrialSpec` may ask for, to test the failure paths (see ``TrialSpec.fault``)."""

EPOCH_KEYS: tuple[str, ...] = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc",
                               "seconds", "lr", "trial_id", "hash", "status", "params", "device", "threads",
                               "amp", "pid")
"""The keys of each per-epoch report (``status`` is ``"running"``; ``device`` and ``threads`` are what the trial
trained with, ``amp`` its mixed-precision dtype (``None`` without AMP), ``pid`` the worker process that trained
the epoch)."""

STATE_FILE = "training_state.pt"
"""The file of a trial's checkpoint directory: the training state, written by ``torch.save``."""

FINAL_KEYS: tuple[str, ...] = ("finished", "status", "error", "epoch", "val_acc", "trial_id", "hash", "params",
                               "device", "threads", "amp", "total_seconds")
"""The keys of the final report: ``finished`` is True, ``epoch`` is the number of finished epochs, ``val_acc`` the
last epoch's (NaN when none finished), ``total_seconds`` the wall time of the whole trial."""

PLACEMENT_KEYS: tuple[str, ...] = ("started_at", "node_id", "pid")
"""Keys added to every report: ``started_at``, the Unix time at which the worker began the trial, and ``node_id``,
the Ray node it runs on (``None`` outside Ray), and ``pid``, the worker process; the driver records them in the
trial's ``resources``."""

_OOM_MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory", "not enough memory",
                "failed to allocate memory")


class InjectedFault(RuntimeError):
    """Raised by the ``"raise"`` and ``"crash"`` fault injections (``TrialSpec.fault``), for tests only."""


@dataclass(frozen=True)
class TrialSpec:
    """Everything a worker needs to train one candidate; plain data (``to_dict``/``from_dict``).

    Attributes:
        trial_id: the store's id of the trial (reported back with every result).
        hash: the candidate's canonical hash; the worker checks that the rebuilt candidate has it and fails the
            trial otherwise (``""`` skips the check).
        space: the search space's name (:func:`search_spaces.spaces.get_space`).
        input_shape: the input shape the space is instantiated for, e.g. ``(1, 8, 8)``.
        num_classes: classes of the classifier head.
        derivation: the derivation string (``space.parse`` gives the architecture back).
        dataset: the dataset's name or path (:func:`nas.data.load_dataset`).
        data_seed: the seed of the dataset's split.
        train: the training protocol, ``TrainConfig.to_dict()``; ``threads`` is replaced by the trial's CPU count,
            and ``device="auto"`` means CUDA exactly when the trial was given a GPU.
        memory_limit_mb: cap on the memory the trial may add to its worker (``None``: no cap). On the CPU it caps
            the worker's address space (``RLIMIT_AS``) at its current size plus this much for the duration of the
            trial; on CUDA it caps torch's caching allocator at this much device memory. Going over fails the
            trial with ``"out of memory: ..."``.
        fault: fault injection, for tests of the failure paths only (``None`` in real use):
            ``"raise"`` raises an exception while the candidate is built (caught: a ``failed`` result);
            ``"crash"`` raises out of the trainable, so Tune itself records a trial error;
            ``"nan"`` multiplies the module's output by NaN (a non-finite loss: ``failed``);
            ``"oom"`` allocates a huge tensor in the first forward pass (twice ``memory_limit_mb`` when set, else
            1 TiB), which the memory cap turns into ``failed`` with ``"out of memory: ..."``;
            ``"kill"`` (under Ray Tune only) SIGKILLs the trial's own worker process right after the checkpoint of
            its first epoch, on its first attempt: Tune retries it from that checkpoint, which trains on.
    """

    trial_id: int
    hash: str
    space: str
    input_shape: tuple[int, ...]
    num_classes: int
    derivation: str
    dataset: str
    data_seed: int
    train: dict[str, Any] = field(hash=False)
    memory_limit_mb: int | None = None
    fault: str | None = None

    def __post_init__(self) -> None:
        from nas.train import TrainConfig

        object.__setattr__(self, "input_shape", tuple(int(d) for d in self.input_shape))
        object.__setattr__(self, "train", dict(self.train))
        TrainConfig.from_dict(self.train)  # raises ValueError for a bad protocol, here rather than on a worker
        if self.memory_limit_mb is not None and self.memory_limit_mb <= 0:
            raise ValueError(f"memory_limit_mb must be positive, got {self.memory_limit_mb!r}")
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"fault must be None or one of {', '.join(FAULTS)}, got {self.fault!r}")

    @property
    def epochs(self) -> int:
        """The number of epochs the protocol asks for."""
        from nas.train import TrainConfig

        return TrainConfig.from_dict(self.train).epochs

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain (JSON-ready) dict; ``from_dict`` gives the spec back."""
        data = dataclasses.asdict(self)
        data["input_shape"] = list(self.input_shape)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialSpec:
        """Build from a mapping of field names; unknown keys raise ``ValueError`` naming the closest field."""
        from nas.util.fields import check_field_names

        check_field_names(cls, data, "trial spec field")
        return cls(**dict(data))


def train_trial(config: dict[str, Any]) -> None:
    """Ray Tune function trainable: train the candidate of ``config["spec"]`` (a ``TrialSpec.to_dict()``).

    Reports each epoch's metrics with a checkpoint and then a final result through ``ray.tune.report`` (see the
    module docstring); a restarted trial resumes from ``ray.tune.get_checkpoint()``.
    Torch's threads are pinned to the trial's CPU count (from ``ray.tune.get_context().get_trial_resources()``,
    else the spec's ``threads``, else 1). Failures of the candidate are reported as ``status="failed"``; only the
    ``"crash"`` fault injection (and a malformed ``config``) raises.
    """
    from ray import tune

    spec = TrialSpec.from_dict(config["spec"])
    if spec.fault == "crash":
        raise InjectedFault("injected fault: crash (an exception raised out of the trainable)")
    cpus, gpus = _trial_resources()
    if not config.get("checkpoints", True):
        run_spec(spec, tune.report, cpus=cpus, gpus=gpus)
        return
    run_spec(spec, tune.report, cpus=cpus, gpus=gpus, resume=_restored_state(),
             checkpoint_report=_report_with_checkpoint)


def _report_with_checkpoint(row: dict[str, Any], state: dict[str, Any]) -> None:
    """``ray.tune.report`` of ``row`` with ``state`` saved as the trial's checkpoint (Tune copies the directory
    into the run's storage before this returns, so the temporary directory may go)."""
    import torch
    from ray import tune

    with tempfile.TemporaryDirectory(prefix="nas-ckpt-") as directory:
        torch.save(state, os.path.join(directory, STATE_FILE))
        tune.report(row, checkpoint=tune.Checkpoint.from_directory(directory))


def _restored_state() -> dict[str, Any] | None:
    """The training state of the trial's last checkpoint (``ray.tune.get_checkpoint()``), ``None`` for a fresh
    trial."""
    import torch
    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as directory:
        path = os.path.join(directory, STATE_FILE)
        if not os.path.exists(path):
            return None
        # our own file, written by _report_with_checkpoint: it holds tensors, RNG states and plain lists/dicts
        return torch.load(path, map_location="cpu", weights_only=False)


def run_spec(spec: TrialSpec, report: Callable[[dict[str, Any]], None], *, cpus: float | None = None,
             gpus: float = 0, resume: dict[str, Any] | None = None,
             checkpoint_report: Callable[[dict[str, Any], dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train ``spec``'s candidate in this process, calling ``report`` with each epoch's metrics and then with the
    final result, which is also returned. Never raises for failures of the candidate (they give
    ``status="failed"``); exceptions raised by ``report`` itself end the trial as failed too.

    Args:
        spec: the trial.
        report: receives each report dict (:data:`EPOCH_KEYS`, then :data:`FINAL_KEYS`).
        cpus: the trial's CPU count; torch uses ``max(1, int(cpus))`` threads (``None``: the spec's ``threads``,
            else 1).
        gpus: the trial's GPU share; with a positive share and CUDA available, ``device="auto"`` trains on CUDA,
            otherwise on the CPU.
        resume: a training state (from ``checkpoint_report``) to continue from: only the later epochs are trained
            and reported; the final result counts all of them.
        checkpoint_report: when given, each epoch's row goes to ``checkpoint_report(row, state)`` with the training
            state instead of to ``report`` (the state's tensors change with training: save them at once).
    """
    import torch

    start = time.perf_counter()
    finished: list[dict[str, Any]] = []
    base: dict[str, Any] = {"trial_id": spec.trial_id, "hash": spec.hash, "started_at": time.time(),
                            "node_id": _node_id(), "pid": os.getpid()}
    info: dict[str, Any] = {"params": 0, "device": None, "threads": None, "amp": None}
    try:
        from nas.train import amp_dtype

        config = _train_config(spec, cpus, gpus)
        info["device"], info["threads"] = config.device, config.threads
        info["amp"] = amp_dtype(config.device, config)
        # the space and the dataset belong to the worker (cached), not to the candidate: loaded before the cap
        space = _get_space(spec.space, spec.input_shape)
        dataset = _load_dataset(spec.dataset, spec.data_seed)
        cap = _cuda_memory_cap if config.device.startswith("cuda") else _address_space_cap
        with cap(spec.memory_limit_mb):
            status, error = _build_and_train(spec, space, dataset, config, report, base, info, finished, resume,
                                             checkpoint_report)
    except (MemoryError, torch.OutOfMemoryError) as err:
        status, error = "failed", f"out of memory: {type(err).__name__}: {_one_line(err)}".rstrip(": ")
    except Exception as err:  # noqa: BLE001 - every failure of the candidate becomes a result
        status, error = "failed", _describe(err)
    last_val = finished[-1]["val_acc"] if finished else math.nan
    final = {"finished": True, "status": status, "error": error, "epoch": len(finished), "val_acc": last_val,
             **base, "params": info["params"], "device": info["device"], "threads": info["threads"],
             "amp": info["amp"], "total_seconds": time.perf_counter() - start}
    report(final)
    return final


# --- internals ----------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _load_dataset(name: str, seed: int) -> Dataset:
    """The dataset, loaded once per worker process (workers may run several trials)."""
    from nas.data import load_dataset

    return load_dataset(name, seed=seed)


@functools.lru_cache(maxsize=8)
def _get_space(name: str, input_shape: tuple[int, ...]) -> Space:
    """The space, built once per worker process (its parser and sampler are memoised)."""
    from search_spaces.spaces import get_space

    return get_space(name, input_shape)


def _node_id() -> str | None:
    """The Ray node this process runs on, ``None`` outside Ray."""
    try:
        import ray

        if ray.is_initialized():
            return str(ray.get_runtime_context().get_node_id())
    except Exception:  # noqa: BLE001 - informational only
        pass
    return None


def _trial_resources() -> tuple[float | None, float]:
    """``(cpus, gpus)`` of the current Tune trial; ``(None, 0)`` outside a trial."""
    from ray import tune

    try:
        resources = tune.get_context().get_trial_resources()
    except (RuntimeError, AttributeError, ValueError):  # not inside a Tune session
        return None, 0.0
    if resources is None:
        return None, 0.0
    required = resources.required_resources
    return float(required.get("CPU", 0.0)) or None, float(required.get("GPU", 0.0))


def _train_config(spec: TrialSpec, cpus: float | None, gpus: float) -> Any:
    """The spec's TrainConfig with threads pinned to the trial's CPUs and ``"auto"`` resolved by its GPU share."""
    import torch

    from nas.train import TrainConfig

    config = TrainConfig.from_dict(spec.train)
    threads = max(1, int(cpus)) if cpus else (config.threads or 1)
    device = config.device
    if device == "auto":
        device = "cuda" if gpus > 0 and torch.cuda.is_available() else "cpu"
    return dataclasses.replace(config, threads=threads, device=device)


def _build_and_train(spec: TrialSpec, space: Space, dataset: Dataset, config: Any,
                     report: Callable[[dict[str, Any]], None], base: dict[str, Any], info: dict[str, Any],
                     finished: list[dict[str, Any]], resume: dict[str, Any] | None = None,
                     checkpoint_report: Callable[[dict[str, Any], dict[str, Any]], None] | None = None,
                     ) -> tuple[str, str]:
    """Rebuild the candidate, train it (from ``resume`` when given) and report each epoch; returns
    ``(status, error)``."""
    import torch

    from nas.candidate import build_candidate
    from nas.train import EpochMetrics, train_candidate

    if spec.fault == "raise":
        raise InjectedFault("injected fault: an exception while building the candidate")
    derivation = space.parse(spec.derivation)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)  # the module's initial weights are reproducible for the protocol's seed
        candidate = build_candidate(space, derivation, spec.num_classes, check=False)
    if spec.hash and candidate.hash != spec.hash:
        raise ValueError(f"hash mismatch: the spec says {spec.hash}, the rebuilt candidate is {candidate.hash}")
    module = candidate.module
    info["params"] = sum(p.numel() for p in module.parameters())
    if tuple(dataset.input_shape) != spec.input_shape or dataset.num_classes != spec.num_classes:
        raise ValueError(f"dataset '{spec.dataset}' has inputs {tuple(dataset.input_shape)} and "
                         f"{dataset.num_classes} classes; the spec wants {spec.input_shape} and {spec.num_classes}")
    _inject(module, spec)

    states: list[dict[str, Any]] = []

    def on_epoch(metrics: EpochMetrics) -> None:
        row = {**metrics.to_dict(), **base, "status": "running", "params": info["params"],
               "device": info["device"], "threads": info["threads"], "amp": info["amp"]}
        finished.append(row)
        if checkpoint_report is not None and states:
            checkpoint_report(row, states.pop())
            if spec.fault == "kill" and resume is None:
                os.kill(os.getpid(), signal.SIGKILL)  # the worker dies mid-trial, its checkpoint saved
        else:
            report(row)

    if resume is not None:
        finished.extend({**m, **base, "status": "running"} for m in resume["metrics"])
    result = train_candidate(module, dataset, config, callback=on_epoch,
                             checkpoint=states.append if checkpoint_report is not None else None, resume=resume)
    error = result.error
    if result.status == "failed" and not error.startswith("out of memory") \
            and any(marker in error.lower() for marker in _OOM_MARKERS):
        error = f"out of memory: {error}"
    return result.status, error


def _inject(module: Any, spec: TrialSpec) -> None:
    """Install the ``"nan"`` / ``"oom"`` fault injections as forward hooks on ``module``."""
    import torch

    if spec.fault == "nan":
        module.register_forward_hook(lambda _module, _inputs, output: output * float("nan"))
    elif spec.fault == "oom":
        nbytes = 2 * spec.memory_limit_mb * 2**20 if spec.memory_limit_mb else 1 << 40

        def allocate(_module: Any, inputs: tuple[Any, ...]) -> None:
            torch.empty(nbytes, dtype=torch.uint8, device=inputs[0].device)

        module.register_forward_pre_hook(allocate)


@contextlib.contextmanager
def _address_space_cap(limit_mb: int | None) -> Iterator[None]:
    """Cap this process's address space at its current size plus ``limit_mb`` MiB; restore the old limit after."""
    try:
        import resource
    except ImportError:  # not a POSIX system: no cap
        yield
        return
    if limit_mb is None:
        yield
        return
    import psutil

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = psutil.Process().memory_info().vms + limit_mb * 2**20
    for bound in (soft, hard):
        if bound != resource.RLIM_INFINITY:
            cap = min(cap, bound)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@contextlib.contextmanager
def _cuda_memory_cap(limit_mb: int | None) -> Iterator[None]:
    """Cap torch's CUDA caching allocator at ``limit_mb`` MiB of the current device; restore it after.

    (``RLIMIT_AS`` cannot be used with CUDA, which reserves a huge address space.)
    """
    import torch

    if limit_mb is None or not torch.cuda.is_available():
        yield
        return
    total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, limit_mb * 2**20 / total))
    try:
        yield
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()


def _one_line(err: BaseException) -> str:
    """The exception's message with its lines joined, trimmed to 500 characters."""
    text = " ".join(line.strip() for line in str(err).strip().splitlines() if line.strip())
    return text if len(text) <= 500 else text[:497] + "..."


def _describe(err: BaseException) -> str:
    """``"Type: message"`` for an exception, prefixed with ``"out of memory: "`` for allocator failures."""
    message = _one_line(err)
    text = f"{type(err).__name__}: {message}" if message else type(err).__name__
    if any(marker in message.lower() for marker in _OOM_MARKERS):
        return f"out of memory: {text}"
    return text
