"""Benchmark mode: a candidate's result is a look-up in a tabular benchmark (no Ray, no training).

A **table file** is JSON mapping the space's standard architecture strings (``02012100`` on ``nb-macro``,
``|op~0|+...`` on ``nb201``, ``c0:c1:c2:c3:c4`` on ``nats-sss``; derivation strings in spaces without one) to
either an accuracy or a record:

.. code-block:: json

    {"02012100": 0.9287,
     "12012100": {"val_acc": [0.921, 0.925], "test_acc": 0.93, "params": 890666, "flops": 77000000,
                  "seconds": 412.0}}

Accepted record keys:

- the **validation accuracy** (the objective): the first of ``val_acc``, ``acc``, ``mean_acc`` present (or the
  key given as ``table:PATH#KEY``, e.g. ``#c100`` for NATS-SSS's CIFAR-100 column);
- ``test_acc``: reported beside it (never used by the search);
- ``params``, ``flops``: the table's own counts (informational; the search uses the graph's);
- ``seconds`` (or ``train_time``, ``time``): the training cost, used as the simulated cost.

**A list of values is a set of independent training runs**: a trial observes one run, drawn with the search's
seed (seeded by the search's seed and the architecture string, so a search sees noise as a real one does and a
rerun sees the same), and its ``test_acc`` is the mean of the runs. Where the validation value is one number and
``test_acc`` a list (NAS-Bench-Macro's ``mean_acc`` is the mean of three ``test_acc`` runs), the trial observes
one of the ``test_acc`` runs and ``test_acc`` is their mean. **Accuracies in percent** (any value above 1.5) are
scaled to [0, 1].

**Simulated cost** (``final["sim_cost_s"]``, kept apart from wall time): the table's ``seconds`` when it has
them, else :data:`SIM_SECONDS_PER_FLOP` x the candidate's FLOPs (the table's ``flops`` when given, else the
graph's): one simulated second per 100 MFLOPs.
"""

from __future__ import annotations

import json
import math
import random
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.search.config import ConfigError
from nas.search.evaluators.base import EvalJob, Evaluator, TrialOutcome

if TYPE_CHECKING:
    from search_spaces.spaces import Space

__all__ = ["ArchTable", "SIM_SECONDS_PER_FLOP", "TableEntry", "TableError", "TableEvaluator", "VALUE_KEYS"]

VALUE_KEYS = ("val_acc", "acc", "mean_acc")
"""Record keys read as the validation accuracy, in this order of preference."""
COST_KEYS = ("seconds", "train_time", "time")
"""Record keys read as the training cost in seconds."""
SIM_SECONDS_PER_FLOP = 1e-8
"""Simulated seconds per FLOP of a forward pass when the table has no times (100 MFLOPs cost 1 s)."""
_PERCENT_ABOVE = 1.5


class TableError(ConfigError):
    """A table file cannot be read, has keys that do not parse in the space, or lacks a candidate."""


@dataclass(frozen=True)
class TableEntry:
    """One architecture's row, accuracies in [0, 1].

    Attributes:
        runs: the validation values a trial may observe (one, or several independent runs).
        test_acc: the reported test accuracy (mean of runs where the file gives a list), ``None`` if absent.
        params, flops: the table's counts, ``None`` if absent.
        seconds: the table's training time, ``None`` if absent.
    """

    runs: tuple[float, ...]
    test_acc: float | None
    params: int | None = None
    flops: int | None = None
    seconds: float | None = None

    @property
    def mean(self) -> float:
        """The mean of the runs: the architecture's "true" validation accuracy (what benchmarks report)."""
        return sum(self.runs) / len(self.runs)


def _numbers(value: Any, what: str, arch: str) -> list[float]:
    values = value if isinstance(value, list) else [value]
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise TableError(f"table entry {arch!r}: {what} must be a finite number or a list of them, got {v!r}")
        out.append(float(v))
    if not out:
        raise TableError(f"table entry {arch!r}: {what} is an empty list")
    return out


class ArchTable:
    """A tabular benchmark loaded from a table file (see the module docstring).

    Args:
        entries: architecture string -> :class:`TableEntry`.
        path: where it came from (for messages).
        key: the accuracy field that was read.
    """

    def __init__(self, entries: Mapping[str, TableEntry], *, path: str = "<table>", key: str | None = None) -> None:
        if not entries:
            raise TableError(f"table {path} has no architectures")
        self.entries = dict(entries)
        self.path = str(path)
        self.key = key

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, arch: object) -> bool:
        return arch in self.entries

    @classmethod
    def load(cls, path: str | Path, key: str | None = None) -> ArchTable:
        """Read a table file; ``key`` names the accuracy field (default: the first of :data:`VALUE_KEYS`).

        Raises:
            TableError: the file is missing or not JSON, not a mapping, or an entry has no accuracy or a bad value.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except OSError as err:
            raise TableError(f"cannot read table {path}: {err.strerror or err}") from None
        except ValueError as err:
            raise TableError(f"table {path} is not JSON: {err}") from None
        if not isinstance(data, dict):
            raise TableError(f"table {path} must map architecture strings to accuracies, got {type(data).__name__}")
        return cls.from_mapping(data, path=str(path), key=key)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, path: str = "<table>", key: str | None = None) -> ArchTable:
        """Build from the parsed JSON (see :meth:`load`)."""
        raw: dict[str, tuple[list[float], list[float] | None, dict[str, Any]]] = {}
        for arch, record in data.items():
            if isinstance(record, Mapping):
                names = [key] if key else list(VALUE_KEYS)
                found = next((n for n in names if n in record), None)
                if found is None:
                    if key is None and "test_acc" in record:
                        found = "test_acc"
                    else:
                        wanted = repr(key) if key else " or ".join(map(repr, VALUE_KEYS))
                        raise TableError(f"table {path}: entry {arch!r} has no {wanted} (keys: "
                                         f"{', '.join(map(str, record))})")
                val = _numbers(record[found], found, arch)
                test = _numbers(record["test_acc"], "test_acc", arch) if "test_acc" in record else None
                raw[str(arch)] = (val, test, dict(record))
            else:
                raw[str(arch)] = (_numbers(record, "the accuracy", arch), None, {})
        accuracies = [v for val, test, _ in raw.values() for v in val + (test or [])]
        scale = 0.01 if accuracies and max(accuracies) > _PERCENT_ABOVE else 1.0
        entries = {}
        for arch, (val, test, record) in raw.items():
            val = [v * scale for v in val]
            test = None if test is None else [t * scale for t in test]
            runs = val if len(val) > 1 or test is None or len(test) == 1 else test
            entries[arch] = TableEntry(
                tuple(runs), None if test is None else statistics.fmean(test),
                _int_or_none(record.get("params")), _int_or_none(record.get("flops")),
                next((float(record[k]) for k in COST_KEYS if isinstance(record.get(k), (int, float))), None))
        return cls(entries, path=path, key=key)

    def check_keys(self, space: Space) -> None:
        """Every key must be an architecture string of ``space`` (a derivation string where it has none).

        Raises:
            TableError: naming the first key that does not parse, and why.
        """
        from search_spaces.exceptions import BudgetError, SearchSpaceError

        codec = space.spec.arch_codec
        for arch in self.entries:
            try:
                if codec is not None:
                    codec.to_derivation(space, arch)
                else:
                    space.parse(arch)
            except BudgetError:
                continue  # a valid architecture outside the search's limits: simply never proposed
            except (SearchSpaceError, ValueError, KeyError, IndexError) as err:
                reason = str(err).splitlines()[0]
                raise TableError(f"table {self.path}: key {arch!r} is not an architecture of space "
                                 f"{space.name!r}: {reason}") from None

    def entry(self, arch: str) -> TableEntry:
        """The row of ``arch``.

        Raises:
            TableError: ``arch`` is not in the table (naming it).
        """
        try:
            return self.entries[arch]
        except KeyError:
            raise TableError(f"architecture {arch!r} is not in the table {self.path} ({len(self)} "
                             "architectures)") from None

    def observe(self, arch: str, seed: int) -> float:
        """One run of ``arch``, drawn with ``seed`` (the same seed and architecture always draw the same run)."""
        runs = self.entry(arch).runs
        if len(runs) == 1:
            return runs[0]
        return runs[random.Random(f"{int(seed)}/{arch}").randrange(len(runs))]

    def sim_cost(self, arch: str, flops: int) -> float:
        """Simulated seconds of evaluating ``arch`` (see the module docstring)."""
        e = self.entry(arch)
        if e.seconds is not None:
            return e.seconds
        return SIM_SECONDS_PER_FLOP * float(e.flops if e.flops is not None else flops)


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class TableEvaluator(Evaluator):
    """Evaluates a candidate by looking it up (see the module docstring).

    Args:
        table: the loaded table.
        seed: the search's seed (which run of a multi-run entry a trial observes).
    """

    kind = "table"

    def __init__(self, table: ArchTable, *, seed: int) -> None:
        self.table = table
        self.seed = int(seed)

    def describe(self) -> str:
        return f"table:{Path(self.table.path).name}" + (f"#{self.table.key}" if self.table.key else "")

    def outcome(self, job: EvalJob) -> TrialOutcome:
        """The outcome of one job (raises :class:`TableError` when its architecture is not in the table)."""
        start = time.perf_counter()
        arch = job.arch if job.arch is not None else job.derivation
        entry = self.table.entry(arch)
        final = {"val_acc": self.table.observe(arch, self.seed), "test_acc": entry.test_acc,
                 "sim_cost_s": self.table.sim_cost(arch, job.flops)}
        return TrialOutcome(job.trial_id, job.hash, "ok", "", [], final, time.perf_counter() - start,
                            {"evaluator": "table"})

    def evaluate(self, jobs: Sequence[EvalJob], *, on_finish: Callable[[TrialOutcome], None],
                 on_epoch: Callable[[int, dict[str, Any]], None] | None = None) -> None:
        """Look every job up first (a missing one raises before anything is recorded), then hand them over."""
        outcomes = [self.outcome(job) for job in jobs]
        for outcome in outcomes:
            on_finish(outcome)
