"""Search strategies behind one ask/tell interface (pure Python: no torch, no Ray).

    >>> from search_spaces import get_space
    >>> from nas.search.strategies import Observation, make_strategy
    >>> space = get_space("nb-macro", (3, 32, 32))
    >>> strategy = make_strategy("evolution", space, seed=0, population_size=10)
    >>> proposals = strategy.ask(4)
    >>> strategy.tell([Observation(p.derivation, 0.5, p) for p in proposals])

=============  ===============================================================  ===============================
name           what                                                             spaces
=============  ===============================================================  ===============================
``random``     samples from the grammar                                         all
``evolution``  regularised evolution (Real et al., AAAI 2019)                   all
``guided``     evolution whose children are pre-selected by a proxy/predictor   all (needs ``scorer=``)
``adaptive``   evolution with Q-learned mutation operators (HHNAS-AM, 2025)     all
``optuna``     Optuna TPE over categorical choices                              nb201, nb-macro, seq-templates
``surrogate``  an online-refitted predictor's acquisition (BANANAS-style)        all
=============  ===============================================================  ===============================

Every strategy takes ``seeds`` (known networks proposed first; einspace, Ericsson et al., NeurIPS 2024) and is
rebuilt exactly from its history with :meth:`Strategy.replay` (see :mod:`nas.search.strategies.base`).
"""

from nas.search.strategies.adaptive import AdaptiveMutation
from nas.search.strategies.base import (
                                        Observation,
                                        Proposal,
                                        Strategy,
                                        StrategyError,
                                        UnknownStrategyError,
                                        UnsupportedSpaceError,
)
from nas.search.strategies.evolution import RegularizedEvolution
from nas.search.strategies.guided import GuidedEvolution
from nas.search.strategies.optuna_sampler import OptunaTPE, optuna_spaces
from nas.search.strategies.random_search import RandomSearch
from nas.search.strategies.registry import STRATEGIES, make_strategy, strategy_options
from nas.search.strategies.surrogate import SurrogateStrategy

__all__ = ["STRATEGIES", "AdaptiveMutation", "GuidedEvolution", "Observation", "OptunaTPE", "Proposal",
           "RandomSearch", "RegularizedEvolution", "Strategy", "StrategyError", "UnknownStrategyError",
           "SurrogateStrategy", "UnsupportedSpaceError", "make_strategy", "optuna_spaces", "strategy_options"]
