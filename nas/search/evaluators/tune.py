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

    def spec(self, job: EvalJob) -> Any:
        """The :class:`~nas.search.trainable.TrialSpec` that trains ``job`` on a worker."""
        from nas.search.trainable import TrialSpec

        return TrialSpec(job.trial_id, job.hash, self.space, self.input_shape, self.num_classes, job.derivation,
                         self.dataset, self.seed, self.train, None, job.fault)

    @property
    def epochs(self) -> int:
        """Epochs of the protocol (ASHA's ``max_t``)."""
        return int(self.train.get("epochs", 1))

    def slots(self) -> int:
        """Trials that fit on the cluster at once (:func:`~nas.search.tune_runner.slot_count`)."""
        from nas.search.tune_runner import slot_count

        return slot_count(self.settings)

    def evaluate(self, jobs: Sequence[EvalJob], *, on_finish: Callable[[TrialOutcome], None],
                 on_epoch: Callable[[int, dict[str, Any]], None] | None = None) -> None:
        """Train ``jobs`` as one Tune run (a grid; the legacy round loop)."""
        from nas.search.tune_runner import run_trials

        specs = [self.spec(j) for j in jobs]
        if specs:
            run_trials(specs, self.settings, on_epoch=on_epoch, on_finish=on_finish)

    def stream(self, source: Any, *, max_trials: int, slots: int, on_finish: Callable[[TrialOutcome], None],
               on_epoch: Callable[[int, dict[str, Any]], None] | None = None) -> int:
        """Train the trials ``source`` hands out as one asynchronous Tune run
        (:func:`~nas.search.tune_runner.run_stream`); returns how many were started."""
        from nas.search.tune_runner import run_stream

        return run_stream(source, self.settings, epochs=self.epochs, max_trials=max_trials, slots=slots,
                          on_epoch=on_epoch, on_finish=on_finish)
