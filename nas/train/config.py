"""The training protocol of one trial, as a plain frozen dataclass loadable from a dict or a YAML file."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from nas.util.fields import check_field_names

__all__ = ["DEFAULT_LR", "TrainConfig"]

DEFAULT_LR: Mapping[str, float] = MappingProxyType({"sgd": 0.05, "adamw": 1e-3})
"""The learning rate ``TrainConfig`` takes when ``lr`` is left out, per optimizer."""

_OPTIMIZERS = ("sgd", "adamw")
_SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class TrainConfig:
    """How one candidate is trained. The defaults are the platform's fixed protocol.

    Attributes:
        epochs: passes over the training split (10).
        batch_size: training batch size (64). The last partial batch of an epoch is kept unless it would hold a
            single example.
        optimizer: ``"sgd"`` (SGD, momentum 0.9, Nesterov; the default) or ``"adamw"``.
        lr: peak learning rate; ``None`` (the default) takes :data:`DEFAULT_LR` for the optimizer: 0.05 for SGD,
            0.001 for AdamW. After construction ``lr`` always holds a number.
        weight_decay: decoupled (AdamW) or L2 (SGD) weight decay on every parameter (5e-4).
        schedule: ``"cosine"`` (the default: cosine annealing from ``lr`` towards 0 over all training steps after
            the warmup) or ``"constant"``.
        warmup_epochs: epochs of linear warmup from ``lr / warmup_steps`` to ``lr`` (0: none).
        label_smoothing: label smoothing of the training loss (0.0); evaluation losses never smooth.
        grad_clip: clip the global gradient norm to this value (5.0); ``None`` or 0 disables clipping.
        seed: seeds shuffling and torch's/numpy's RNGs during the trial (0).
        device: ``"auto"`` (CUDA when available, else CPU; the default), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        amp: mixed precision on CUDA (bf16 autocast where supported, else fp16 autocast with a GradScaler); a
            no-op on CPU (True).
        threads: ``torch.set_num_threads`` for the trial, restored afterwards (``None``: leave as is).
        max_batches_per_epoch: cap on training batches per epoch, for quick runs (``None``: all).
        eval_batch_size: batch size of the val/test evaluation passes (512).
    """

    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float | None = None
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    grad_clip: float | None = 5.0
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    threads: int | None = None
    max_batches_per_epoch: int | None = None
    eval_batch_size: int = 512

    def __post_init__(self) -> None:
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(_OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in _SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(_SCHEDULES)}, got {self.schedule!r}")
        lr = DEFAULT_LR[self.optimizer] if self.lr is None else self.lr
        object.__setattr__(self, "lr", lr)
        positive: dict[str, float] = {"epochs": self.epochs, "batch_size": self.batch_size, "lr": lr,
                                      "eval_batch_size": self.eval_batch_size}
        for key in ("threads", "max_batches_per_epoch"):
            if getattr(self, key) is not None:
                positive[key] = getattr(self, key)
        for key, value in positive.items():
            if not value > 0:
                raise ValueError(f"{key} must be positive, got {value!r}")
        if self.weight_decay < 0 or self.warmup_epochs < 0 or (self.grad_clip or 0) < 0:
            raise ValueError("weight_decay, warmup_epochs and grad_clip must not be negative")
        if self.warmup_epochs > self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) exceeds epochs ({self.epochs})")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (``from_dict`` gives the config back)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Build from a mapping of field names; unknown keys raise ``ValueError`` naming the closest field."""
        check_field_names(cls, data, "training option")
        return cls(**dict(data))

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        """Load from a YAML file holding one mapping of field names (an empty file gives the defaults)."""
        import yaml

        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ValueError(f"'{path}' must hold a mapping of training options, got {type(data).__name__}")
        return cls.from_dict(data)
