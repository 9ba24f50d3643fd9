"""Evaluators: how a selected candidate gets its result (training on Ray Tune, or a table look-up).

See :mod:`nas.search.evaluators.base` for the interface; :func:`make_evaluator` picks one from a search config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nas.search.evaluators.base import EvalJob, Evaluator, TrialOutcome, parse_evaluator
from nas.search.evaluators.table import ArchTable, TableEntry, TableError, TableEvaluator

if TYPE_CHECKING:
    from search_spaces.spaces import Space

__all__ = ["ArchTable", "EvalJob", "Evaluator", "TableEntry", "TableError", "TableEvaluator", "TrialOutcome",
           "load_table", "parse_evaluator"]

def load_table(path: str, key: str | None = None, space: Space | None = None) -> ArchTable:
    """Read the table at ``path`` (:meth:`ArchTable.load`) and, given ``space``, check its keys against it."""
    table = ArchTable.load(path, key)
    if space is not None:
        table.check_keys(space)
    return table
