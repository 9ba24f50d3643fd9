"""How a candidate gets its result: the :class:`Evaluator` interface the search driver calls.

The driver proposes, de-duplicates, scores and selects candidates; an evaluator turns each selected one (an
:class:`EvalJob`) into a :class:`TrialOutcome`. Two evaluators ship:

- :class:`~nas.search.evaluators.tune.TuneEvaluator` (``evaluator: train``, the default): trains the candidates
  as Ray Tune trials (:mod:`nas.search.tune_runner`);
- :class:`~nas.search.evaluators.table.TableEvaluator` (``evaluator: table:PATH``): looks each candidate up in a
  tabular benchmark (benchmark mode: no Ray, no training, an evaluation is a look-up).

:func:`make_evaluator` builds the one a :class:`~nas.search.config.SearchConfig` names.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EvalJob", "Evaluator", "TrialOutcome", "parse_evaluator"]


@dataclass(frozen=True)
class TrialOutcome:
    """How one trial ended, as handed to ``on_finish``.

    Attributes:
        trial_id: the spec's (the store's) trial id.
        hash: the candidate's hash, from the spec.
        status: ``"ok"``, ``"stopped"`` (ASHA ended it before its last epoch) or ``"failed"``.
        error: empty unless failed: ``"NaN loss at epoch 1 step 1"``, ``"out of memory: ..."``,
            ``"ValueError: ..."``, ``"trial error: ..."`` (the trainable raised).
        epochs: the finished epochs' metrics, in order (``trainable.EPOCH_KEYS``).
        final: the last finished epoch's metrics, ``None`` when none finished. A table evaluation has
            ``val_acc``, ``test_acc`` (when the table has one) and ``sim_cost_s``, its simulated cost.
        seconds: wall time of the trial on its worker.
        resources: ``cpu`` and ``gpu`` reserved, the ``device`` and torch ``threads`` it trained with (``None`` when
            the worker never said), ``memory_limit_mb``, ``node_ip``; ``{"evaluator": "table"}`` for a look-up.
    """

    trial_id: int
    hash: str
    status: str
    error: str
    epochs: list[dict[str, Any]] = field(hash=False)
    final: dict[str, Any] | None = field(hash=False)
    seconds: float
    resources: dict[str, Any] = field(hash=False)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class EvalJob:
    """One selected candidate to evaluate.

    Attributes:
        trial_id: the store's trial id (the outcome carries it back).
        hash: the candidate's canonical graph hash.
        derivation: its derivation string.
        arch: the space's standard architecture string (``None`` in spaces without one).
        params, flops: its size (from the graph).
        fault: fault injection for tests (:data:`nas.search.trainable.FAULTS`), ``None`` in real use.
    """

    trial_id: int
    hash: str
    derivation: str
    arch: str | None
    params: int
    flops: int
    fault: str | None = None


class Evaluator(abc.ABC):
    """Turns selected candidates into trial outcomes (see the module docstring)."""

    #: ``"train"`` or ``"table"``.
    kind: str = ""

    def start(self) -> None:
        """Bring up what evaluations need (a Ray cluster); called once before the first :meth:`evaluate`."""

    @abc.abstractmethod
    def evaluate(self, jobs: Sequence[EvalJob], *, on_finish: Callable[[TrialOutcome], None],
                 on_epoch: Callable[[int, dict[str, Any]], None] | None = None) -> None:
        """Evaluate ``jobs``; call ``on_finish`` exactly once per job, as soon as it ends (in the calling thread)."""

    def describe(self) -> str:
        """One line for logs and the search's record (e.g. ``table:nas-bench-macro_cifar10.json``)."""
        return self.kind


def parse_evaluator(text: str) -> tuple[str, str | None, str | None]:
    """Split an evaluator spec: ``"train"`` -> ``("train", None, None)``; ``"table:PATH"`` ->
    ``("table", PATH, None)``; ``"table:PATH#KEY"`` -> ``("table", PATH, KEY)`` (``KEY`` names the accuracy field
    to read, e.g. ``c100``).

    Raises:
        ValueError: anything else (the message shows the accepted forms).
    """
    text = str(text).strip()
    if text == "train":
        return "train", None, None
    if text.startswith("table:") and len(text) > len("table:"):
        rest = text[len("table:"):]
        path, _, key = rest.partition("#")
        if path:
            return "table", path, key or None
    raise ValueError(f"evaluator must be 'train' or 'table:PATH' (optionally 'table:PATH#KEY'), got {text!r}")
