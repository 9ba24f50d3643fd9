"""Train one candidate under a fixed, documented protocol: ``train_candidate(module, dataset, TrainConfig())``.

See :mod:`nas.train.trainer` for the protocol and :class:`TrainConfig` for its defaults.
"""

from nas.train.config import DEFAULT_LR, TrainConfig
from nas.train.trainer import (
                               STATE_KEYS,
                               EpochMetrics,
                               StopTraining,
                               TrainResult,
                               amp_dtype,
                               resolve_device,
                               train_candidate,
)

__all__ = ["DEFAULT_LR", "STATE_KEYS", "EpochMetrics", "StopTraining", "TrainConfig", "TrainResult", "amp_dtype",
           "resolve_device",
           "train_candidate"]
