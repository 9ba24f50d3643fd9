"""Train one candidate under a fixed protocol (:class:`~nas.train.config.TrainConfig`) and report per-epoch metrics.

Protocol of :func:`train_candidate`:

- The module is trained in place on ``dataset.train`` (moved to the config's device) with cross-entropy (with the
  config's label smoothing), SGD (momentum 0.9, Nesterov) or AdamW, weight decay on every parameter, the learning
  rate schedule stepped once per batch, and the global gradient norm clipped.
- Every epoch reshuffles the training split with a ``torch.Generator`` seeded by ``config.seed``; torch's and
  numpy's global RNGs are seeded too for the trial (for dropout and the like) and restored afterwards, as is
  torch's thread count. On the CPU two runs of the same freshly built module with the same seed give identical
  metrics.
- After each epoch: ``train_loss``/``train_acc`` are the running averages over that epoch's training batches (in
  train mode, with the training loss); ``val_*`` and ``test_*`` come from full passes in eval mode without label
  smoothing. Accuracies lie in [0, 1]. Epochs count from 1, steps within an epoch from 1.
- ``callback(EpochMetrics)`` is called after each epoch; raising :class:`StopTraining` there ends the run with
  status ``"stopped"``. Any other exception from the callback is the caller's bug and propagates.
- Checkpoints: ``checkpoint(state)`` (when given) is called after each epoch, before ``callback``, with the
  complete training state as a :func:`torch.save`-able dict (:data:`STATE_KEYS`: the finished epoch, the module's,
  optimizer's, LR scheduler's and grad scaler's ``state_dict``, the shuffling generator's and torch's RNG states and
  the finished epochs' metrics). ``resume=state`` continues a run from such a state: the module, optimizer and RNGs
  are restored and training goes on at the next epoch, so a resumed run reports the epochs the interrupted one had
  not finished (on the CPU with the same metrics as an uninterrupted run).
- Failures of the candidate never propagate: a NaN/infinite loss, running out of memory
  (``torch.cuda.OutOfMemoryError``, ``MemoryError``, allocator errors) or any other exception while training or
  evaluating give status ``"failed"`` with a one-line ``error``; the finished epochs are kept.
- An unusable ``config.device`` (unknown, or CUDA without CUDA) raises ``ValueError``: that is a configuration
  error, not a failure of the candidate.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nas.data.datasets import Dataset, Split
from nas.train.config import TrainConfig

__all__ = ["STATE_KEYS", "EpochMetrics", "StopTraining", "TrainResult", "amp_dtype", "resolve_device",
           "train_candidate"]

_OOM_MARKERS = ("out of memory", "not enough memory", "failed to allocate memory")

STATE_KEYS: tuple[str, ...] = ("epoch", "module", "optimizer", "scheduler", "scaler", "generator", "torch_rng",
                               "metrics")
"""The keys of a training state (``checkpoint``/``resume`` of :func:`train_candidate`)."""


class StopTraining(Exception):
    """Raise from a training callback to stop the run after the current epoch (status ``"stopped"``)."""


class _NonFiniteLoss(Exception):
    """Internal: a loss was NaN or infinite; the message is the result's ``error``."""


class _CallbackError(Exception):
    """Internal: carries an exception raised by the user's callback out of the failure handling."""

    def __init__(self, original: BaseException):
        super().__init__(str(original))
        self.original = original


@dataclass(frozen=True)
class EpochMetrics:
    """Metrics after one epoch.

    Attributes:
        epoch: 1-based epoch number.
        train_loss, train_acc: running averages over the epoch's training batches.
        val_loss, val_acc, test_loss, test_acc: full evaluation passes in eval mode (unsmoothed cross-entropy).
        seconds: wall time of the epoch, training and evaluation.
        lr: the learning rate of the epoch's last optimizer step.
    """

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    test_loss: float
    test_acc: float
    seconds: float
    lr: float

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EpochMetrics:
        """Inverse of :meth:`to_dict`."""
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class TrainResult:
    """The outcome of one trial.

    Attributes:
        status: ``"ok"`` (all epochs ran), ``"stopped"`` (a callback raised :class:`StopTraining`) or ``"failed"``.
        error: empty unless failed: e.g. ``"NaN loss at epoch 2 step 5"``, ``"out of memory: ..."``,
            ``"RuntimeError: ..."``.
        epochs: the finished epochs, in order.
        seconds: wall time of the whole trial.
        params: number of parameters of the module.
        config: the :class:`TrainConfig` used, as a dict.
        device: the device it ran on (``"cpu"``, ``"cuda:0"``, ...).
    """

    status: str
    error: str
    epochs: tuple[EpochMetrics, ...]
    seconds: float
    params: int
    config: dict[str, Any]
    device: str = "cpu"

    @property
    def final(self) -> EpochMetrics | None:
        """The last finished epoch, or ``None`` when none finished."""
        return self.epochs[-1] if self.epochs else None

    @property
    def best_val_acc(self) -> float | None:
        """The highest val accuracy over the finished epochs, or ``None`` when none finished."""
        return max(m.val_acc for m in self.epochs) if self.epochs else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the fields plus ``final`` and ``best_val_acc``."""
        final = self.final
        return {"status": self.status, "error": self.error, "epochs": [m.to_dict() for m in self.epochs],
                "final": final.to_dict() if final is not None else None, "best_val_acc": self.best_val_acc,
                "seconds": self.seconds, "params": self.params, "config": dict(self.config), "device": self.device}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainResult:
        """Inverse of :meth:`to_dict` (``final`` and ``best_val_acc`` are recomputed)."""
        return cls(data["status"], data["error"], tuple(EpochMetrics.from_dict(m) for m in data["epochs"]),
                   data["seconds"], data["params"], dict(data["config"]), data.get("device", "cpu"))


def resolve_device(spec: str) -> torch.device:
    """The torch device for a config's ``device`` string (``"auto"``: CUDA when available, else CPU).

    Raises:
        ValueError: an unknown device string, or CUDA requested where it is not available.
    """
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, ValueError, TypeError) as err:
        raise ValueError(f"unknown device {spec!r}: {str(err).splitlines()[0]}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {spec!r} requested but CUDA is not available")
    return device


def train_candidate(module: nn.Module, dataset: Dataset, config: TrainConfig | None = None, *,
                    callback: Callable[[EpochMetrics], None] | None = None,
                    checkpoint: Callable[[dict[str, Any]], None] | None = None,
                    resume: Mapping[str, Any] | None = None) -> TrainResult:
    """Train ``module`` in place on ``dataset`` under ``config`` (default: ``TrainConfig()``); never raises for
    failures of the candidate (see the module docstring for the protocol).

    Args:
        module: maps float inputs ``(B, *dataset.input_shape)`` to logits ``(B, dataset.num_classes)``.
        dataset: the splits to train on and evaluate.
        config: the protocol.
        callback: called with each epoch's :class:`EpochMetrics`; may raise :class:`StopTraining`.
        checkpoint: called after each epoch (before ``callback``) with the training state (:data:`STATE_KEYS`).
        resume: a state given to ``checkpoint`` by an earlier run of the same module, data and config: training
            continues after its epoch, and the result's epochs include the earlier ones.

    Raises:
        ValueError: an unusable device, or a ``resume`` state that lacks keys or is past the config's epochs.
    """
    config = config if config is not None else TrainConfig()
    device = resolve_device(config.device)
    if resume is not None:
        missing = [key for key in STATE_KEYS if key not in resume]
        if missing:
            raise ValueError(f"the training state to resume lacks {', '.join(missing)}")
        if not 0 <= int(resume["epoch"]) <= config.epochs:
            raise ValueError(f"the training state is at epoch {resume['epoch']}, the protocol has {config.epochs}")
    start = time.perf_counter()
    params = sum(p.numel() for p in module.parameters())
    finished: list[EpochMetrics] = []
    status, error = "ok", ""
    threads = torch.get_num_threads()
    np_state = np.random.get_state()
    cuda_devices = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    try:
        if config.threads is not None:
            torch.set_num_threads(config.threads)
        with torch.random.fork_rng(devices=cuda_devices):
            torch.manual_seed(config.seed)
            np.random.seed(config.seed)
            _train(module, dataset, config, device, callback, finished, checkpoint, resume)
    except StopTraining:
        status = "stopped"
    except _CallbackError as err:
        raise err.original from None
    except _NonFiniteLoss as err:
        status, error = "failed", str(err)
    except (MemoryError, torch.cuda.OutOfMemoryError) as err:
        status, error = "failed", f"out of memory: {_one_line(err) or type(err).__name__}"
    except Exception as err:  # noqa: BLE001 - every failure of the candidate becomes a result
        message = _one_line(err)
        if any(marker in message.lower() for marker in _OOM_MARKERS):
            status, error = "failed", f"out of memory: {type(err).__name__}: {message}"
        else:
            status, error = "failed", f"{type(err).__name__}: {message}" if message else type(err).__name__
    finally:
        torch.set_num_threads(threads)
        np.random.set_state(np_state)
    if status == "failed" and device.type == "cuda":
        torch.cuda.empty_cache()
    return TrainResult(status, error, tuple(finished), time.perf_counter() - start, params, config.to_dict(),
                       str(device))


# --- internals ----------------------------------------------------------------------------------------------------


def _one_line(err: BaseException) -> str:
    """The exception's message with its lines joined, trimmed to 500 characters."""
    text = " ".join(line.strip() for line in str(err).strip().splitlines() if line.strip())
    return text if len(text) <= 500 else text[:497] + "..."


def _lr_factor(step: int, *, warmup: int, total: int, schedule: str) -> float:
    """Multiplier of the peak learning rate at optimizer step ``step`` (0-based)."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _batches(order: Tensor, batch_size: int, limit: int) -> list[Tensor]:
    """At most ``limit`` index batches of ``order``; a trailing batch of one example is dropped (BatchNorm cannot
    train on one example)."""
    chunks = list(torch.split(order, batch_size))
    if len(chunks) > 1 and len(chunks[-1]) == 1:
        chunks.pop()
    return chunks[:limit]


def _steps_per_epoch(n: int, config: TrainConfig) -> int:
    full, rest = divmod(n, config.batch_size)
    steps = full + (1 if rest > 1 or (rest == 1 and full == 0) else 0)
    return min(steps, config.max_batches_per_epoch) if config.max_batches_per_epoch is not None else steps


def _tensors(split: Split, device: torch.device) -> tuple[Tensor, Tensor]:
    return torch.tensor(split.x, device=device), torch.tensor(split.y, device=device)


def amp_dtype(device: str | torch.device, config: TrainConfig) -> str | None:
    """The mixed-precision dtype training on ``device`` under ``config`` uses: ``"bfloat16"`` (CUDA with bf16),
    ``"float16"`` (older CUDA, with a GradScaler), ``None`` (no AMP: the CPU, or ``amp=False``)."""
    device = torch.device(device) if isinstance(device, str) else device
    if device.type != "cuda" or not config.amp or not torch.cuda.is_available():
        return None
    return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"


def _autocast(device: torch.device, config: TrainConfig) -> tuple[Callable[[], AbstractContextManager[Any]], bool]:
    """A factory of autocast contexts and whether fp16 (needing a GradScaler) is used."""
    if device.type != "cuda" or not config.amp:
        return contextlib.nullcontext, False
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return functools.partial(torch.autocast, device_type="cuda", dtype=dtype), dtype == torch.float16


def _lr(config: TrainConfig) -> float:
    """The protocol's learning rate: ``TrainConfig.__post_init__`` has replaced ``None`` by the optimiser's default."""
    if config.lr is None:
        raise ValueError("TrainConfig.lr is unset")  # only a config that bypassed __post_init__ gets here
    return float(config.lr)


def _make_optimizer(module: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in module.parameters() if p.requires_grad]
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=_lr(config), weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=_lr(config), momentum=0.9, nesterov=True, weight_decay=config.weight_decay)


def _check_logits(logits: Tensor, batch: int, num_classes: int) -> None:
    if logits.shape != (batch, num_classes):
        raise ValueError(f"the module returns shape {tuple(logits.shape)}; expected logits ({batch}, {num_classes})")


def _nonfinite(value: float) -> str:
    return "NaN" if math.isnan(value) else "infinite"


@torch.no_grad()
def _evaluate(module: nn.Module, x: Tensor, y: Tensor, batch_size: int, num_classes: int,
              autocast: Callable[[], AbstractContextManager[Any]]) -> tuple[float, float]:
    """Mean unsmoothed cross-entropy and accuracy of ``module`` (eval mode) on ``x``/``y``."""
    module.eval()
    loss_sum = torch.zeros((), device=x.device, dtype=torch.float64)
    correct = torch.zeros((), device=x.device, dtype=torch.int64)
    for i in range(0, len(y), batch_size):
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        with autocast():
            logits = module(xb)
        _check_logits(logits, len(yb), num_classes)
        logits = logits.float()
        loss_sum += F.cross_entropy(logits, yb, reduction="sum").double()
        correct += (logits.argmax(dim=1) == yb).sum()
    n = max(1, len(y))
    return loss_sum.item() / n, correct.item() / n


def _train(module: nn.Module, dataset: Dataset, config: TrainConfig, device: torch.device,
           callback: Callable[[EpochMetrics], None] | None, finished: list[EpochMetrics],
           checkpoint: Callable[[dict[str, Any]], None] | None = None,
           resume: Mapping[str, Any] | None = None) -> None:
    """The training loop; appends each finished epoch to ``finished`` and raises on failure."""
    module.to(device)
    x_train, y_train = _tensors(dataset.train, device)
    evals = {"val": _tensors(dataset.val, device), "test": _tensors(dataset.test, device)}
    steps = _steps_per_epoch(len(y_train), config)
    warmup = config.warmup_epochs * steps
    optimizer = _make_optimizer(module, config)
    schedule = functools.partial(_lr_factor, warmup=warmup, total=config.epochs * steps, schedule=config.schedule)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    autocast, fp16 = _autocast(device, config)
    scaler = torch.amp.GradScaler("cuda", enabled=fp16)
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    generator = torch.Generator().manual_seed(config.seed)
    num_classes = dataset.num_classes
    first = 1
    if resume is not None:
        module.load_state_dict(resume["module"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        scaler.load_state_dict(resume["scaler"])
        generator.set_state(resume["generator"])
        torch.set_rng_state(resume["torch_rng"])
        finished.extend(EpochMetrics.from_dict(m) for m in resume["metrics"])
        first = int(resume["epoch"]) + 1
    for epoch in range(first, config.epochs + 1):
        epoch_start = time.perf_counter()
        module.train()
        loss_sum, seen, lr = 0.0, 0, _lr(config)
        correct = torch.zeros((), device=device, dtype=torch.int64)
        order = torch.randperm(len(y_train), generator=generator)
        for step, idx in enumerate(_batches(order, config.batch_size, steps), start=1):
            idx = idx.to(device)
            xb, yb = x_train[idx], y_train[idx]
            with autocast():
                logits = module(xb)
            _check_logits(logits, len(yb), num_classes)
            logits = logits.float()
            loss = criterion(logits, yb)
            value = loss.item()
            if not math.isfinite(value):
                raise _NonFiniteLoss(f"{_nonfinite(value)} loss at epoch {epoch} step {step}")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if config.grad_clip:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(module.parameters(), config.grad_clip)
            lr = optimizer.param_groups[0]["lr"]
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            loss_sum += value * len(yb)
            seen += len(yb)
            correct += (logits.detach().argmax(dim=1) == yb).sum()
        results = {}
        for name, (x, y) in evals.items():
            loss_value, acc = _evaluate(module, x, y, config.eval_batch_size, num_classes, autocast)
            if not math.isfinite(loss_value):
                raise _NonFiniteLoss(f"{_nonfinite(loss_value)} {name} loss at epoch {epoch}")
            results[name] = (loss_value, acc)
        metrics = EpochMetrics(epoch, loss_sum / max(1, seen), correct.item() / max(1, seen), *results["val"],
                               *results["test"], time.perf_counter() - epoch_start, float(lr))
        finished.append(metrics)
        if checkpoint is not None:
            checkpoint({"epoch": epoch, "module": module.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                        "generator": generator.get_state(), "torch_rng": torch.get_rng_state(),
                        "metrics": [m.to_dict() for m in finished]})
        if callback is not None:
            try:
                callback(metrics)
            except StopTraining:
                raise
            except Exception as err:  # noqa: BLE001 - re-raised to the caller by train_candidate
                raise _CallbackError(err) from err
