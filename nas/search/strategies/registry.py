"""Strategies by name: :data:`STRATEGIES` and :func:`make_strategy`, with errors that list the valid choices."""

from __future__ import annotations

import difflib
import inspect
from typing import TYPE_CHECKING, Any

from nas.search.strategies.adaptive import AdaptiveMutation
from nas.search.strategies.base import Strategy, StrategyError, UnknownStrategyError
from nas.search.strategies.evolution import RegularizedEvolution
from nas.search.strategies.guided import GuidedEvolution
from nas.search.strategies.optuna_sampler import OptunaTPE
from nas.search.strategies.random_search import RandomSearch
from nas.search.strategies.surrogate import SurrogateStrategy

if TYPE_CHECKING:
    from search_spaces.spaces import Space

__all__ = ["STRATEGIES", "make_strategy", "strategy_options"]

STRATEGIES: dict[str, type[Strategy]] = {cls.name: cls for cls in (
    RandomSearch, RegularizedEvolution, GuidedEvolution, AdaptiveMutation, OptunaTPE, SurrogateStrategy)}
"""Every strategy class by its :attr:`~nas.search.strategies.base.Strategy.name`."""


def _strategy_class(name: str) -> type[Strategy]:
    try:
        return STRATEGIES[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(STRATEGIES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownStrategyError(f"unknown strategy {name!r}{hint}; known: {', '.join(STRATEGIES)}") from None


def strategy_options(name: str) -> dict[str, Any]:
    """The keyword options of strategy ``name`` with their defaults (``inspect.Parameter.empty`` if required)."""
    params = inspect.signature(_strategy_class(name).__init__).parameters
    return {p.name: p.default for p in params.values() if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "seed"}


def make_strategy(name: str, space: Space, *, seed: int, **options: Any) -> Strategy:
    """The strategy registered as ``name`` on ``space``.

    Raises:
        UnknownStrategyError: for an unknown name (the message lists the known ones).
        StrategyError: for an unknown option (the message lists the valid ones) or an invalid value.
    """
    cls = _strategy_class(name)
    valid = strategy_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise StrategyError(f"strategy {name!r} has no option(s) {', '.join(map(repr, unknown))}; valid options: "
                            f"{', '.join(valid)}")
    return cls(space, seed=seed, **options)
