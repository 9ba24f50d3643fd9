"""Architecture search: strategies propose, scorers rank, Ray Tune trains, one SQL store (shared with Optuna) keeps
everything, and a search killed at any moment resumes.

.. code-block:: python

    from nas.search import SearchConfig, run_search, resume_search

    summary = run_search(SearchConfig(), name="default", db="sqlite:///nas.db")   # what `nas search run` does
    print(summary.best.val_acc, summary.best.test_acc, summary.best_onnx)

Modules: :mod:`~nas.search.config` (:class:`SearchConfig`), :mod:`~nas.search.driver` (the rounds and resume),
:mod:`~nas.search.scoring` (predictor and zero-cost proxies), :mod:`~nas.search.strategies` (ask/tell),
:mod:`~nas.search.tune_runner` and :mod:`~nas.search.trainable` (Ray Tune trials), :mod:`~nas.search.latency`
(ONNX Runtime latency).
"""

from nas.search.config import EINSPACE_DIGITS_SEEDS, OBJECTIVES, ConfigError, SearchConfig
from nas.search.driver import (
                               SearchProgress,
                               SearchSummary,
                               export_best,
                               export_top,
                               resume_search,
                               run_search,
                               summarize,
)
from nas.search.scoring import ScoredCandidate, Scorer, ScorerError

__all__ = ["EINSPACE_DIGITS_SEEDS", "OBJECTIVES", "ConfigError", "ScoredCandidate", "Scorer", "ScorerError",
           "SearchConfig", "SearchProgress", "SearchSummary", "export_best", "export_top", "resume_search",
           "run_search", "summarize"]
