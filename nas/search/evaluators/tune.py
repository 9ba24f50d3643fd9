"""The training evaluator: candidates trained as Ray Tune trials (:mod:`nas.search.tune_runner`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from nas.search.evaluators.base import EvalJob, Evaluator, TrialOutcome

__all__ = ["TuneEvaluator"]


class TuneEvaluator(Evaluator):
    """Trains each job as one trial of one Ray Tune run (ASHA over epochs by default).

    Args:
        settings: :class:`~nas.search.tune_runner.TuneSettings` (cluster address, resources, scheduler).
        space: the search space's name; ``input_shape``, ``num_classes`` what it is built for.
        dataset: the dataset's name or path; ``seed`` the search's seed (data split); ``train`` the protocol
            (``TrainConfig.to_dict()``).
    """

    kind = "train"

    def __init__(self, settings: Any, *, space: str, input_shape: tuple[int, ...], num_classes: int, dataset: str,
                 seed: int, train: dict[str, Any]) -> None:
        self.settings = settings
        self.space, self.input_shape, self.num_classes = space, tuple(input_shape), int(num_classes)
        self.dataset, self.seed, self.train = dataset, int(seed), dict(train)

    def start(self) -> None:
        from nas.search.cluster import check_trial_resources
        from nas.search.tune_runner import ensure_ray

        ensure_ray(self.settings)
        check_trial_resources(self.settings.cpus_per_trial, self.settings.gpus_per_trial)

    def evaluate(self, jobs: Sequence[EvalJob], *, on_finish: Callable[[TrialOutcome], None],
                 on_epoch: Callable[[int, dict[str, Any]], None] | None = None) -> None:
        from nas.search.trainable import TrialSpec
        from nas.search.tune_runner import run_trials

        specs = [TrialSpec(j.trial_id, j.hash, self.space, self.input_shape, self.num_classes, j.derivation,
                           self.dataset, self.seed, self.train, None, j.fault) for j in jobs]
        if specs:
            run_trials(specs, self.settings, on_epoch=on_epoch, on_finish=on_finish)
