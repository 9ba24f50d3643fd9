"""How a search's trials run on Ray Tune: :class:`TuneSettings`, the ``tune`` section of a search's configuration.

Ray-free on purpose (the configuration is validated, stored and shown without importing Ray); the runner that
uses the settings is :mod:`nas.search.tune_runner`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nas.util.fields import check_field_names

SCHEDULERS = ("asha", "fifo")
"""Values of :attr:`TuneSettings.scheduler`."""


@dataclass(frozen=True)
class TuneSettings:
    """How a batch of trials runs on Ray Tune (``to_dict``/``from_dict``).

    Attributes:
        address: a Ray cluster to join (``"host:port"``, ``"ray://host:port"``, ``"auto"``); ``None`` starts a
            local Ray instance with ``num_cpus`` CPUs.
        num_cpus: CPUs of the local Ray instance (``None``: all of the machine's); ignored with ``address``.
        cpus_per_trial: CPUs reserved per trial; torch uses ``max(1, int(cpus_per_trial))`` threads.
        gpus_per_trial: GPUs per trial, fractions allowed (0.25: four trials share a GPU); with a positive share a
            protocol's ``device="auto"`` trains on CUDA.
        max_concurrent: at most this many trials at once (``None``: as many as the resources allow).
        scheduler: ``"asha"`` (asynchronous successive halving on ``val_acc`` per epoch) or ``"fifo"`` (every
            trial runs all its epochs).
        grace_period: ASHA: epochs every trial gets before it can be stopped.
        reduction_factor: ASHA: the fraction ``1 / reduction_factor`` of trials continues at each rung.
        storage_path: Tune's experiment directory (results, error files); ``None``: a temporary directory that
            is removed afterwards.
        memory_limit_mb: default ``TrialSpec.memory_limit_mb`` for specs that have none (``None``: no cap).
        reuse_actors: run consecutive trials in the same worker process (saves starting a process and importing
            torch per trial; the dataset is then loaded once per worker).
        max_failures: how often a trial whose worker died (or whose trainable raised) is started again, from its
            last checkpoint (Tune's ``FailureConfig``); the trial still ends with one outcome. On a multi-node
            cluster ``storage_path`` must be a directory every node sees (or cloud storage) for a retry on another
            node to find the checkpoint.
        checkpoints: report a checkpoint every epoch (:mod:`nas.search.trainable`); without them a retried trial
            starts again from epoch 1 (its earlier epochs are not recorded twice).
    """

    address: str | None = None
    num_cpus: int | None = None
    cpus_per_trial: float = 1
    gpus_per_trial: float = 0
    max_concurrent: int | None = None
    scheduler: str = "asha"
    grace_period: int = 2
    reduction_factor: int = 3
    storage_path: str | None = None
    memory_limit_mb: int | None = None
    reuse_actors: bool = True
    max_failures: int = 1
    checkpoints: bool = True

    def __post_init__(self) -> None:
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {', '.join(SCHEDULERS)}, got {self.scheduler!r}")
        if not self.cpus_per_trial > 0:
            raise ValueError(f"cpus_per_trial must be positive, got {self.cpus_per_trial!r}")
        if self.gpus_per_trial < 0:
            raise ValueError(f"gpus_per_trial must not be negative, got {self.gpus_per_trial!r}")
        positive = {"num_cpus": self.num_cpus, "max_concurrent": self.max_concurrent,
                    "memory_limit_mb": self.memory_limit_mb, "grace_period": self.grace_period}
        for key, value in positive.items():
            if value is not None and not value > 0:
                raise ValueError(f"{key} must be positive, got {value!r}")
        if self.max_failures < 0:
            raise ValueError(f"max_failures must not be negative, got {self.max_failures!r}")
        if self.reduction_factor < 2:
            raise ValueError(f"reduction_factor must be at least 2, got {self.reduction_factor!r}")

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (``from_dict`` gives the settings back)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TuneSettings:
        """Build from a mapping of field names; unknown keys raise ``ValueError`` naming the closest field."""
        check_field_names(cls, data, "tune setting")
        return cls(**dict(data))
