"""Search spaces as typed probabilistic context-free grammars (no torch import).

    >>> from search_spaces import get_space
    >>> space = get_space("einspace", (3, 32, 32))
    >>> d = space.sample(0)
    >>> space.parse(str(d)).root == d.root
    True
"""

from search_spaces._format.load import load_grammar, parse_grammar
from search_spaces.derivation import Cost, Derivation, DNode
from search_spaces.exceptions import (
    BudgetError,
    DerivationSyntaxError,
    DerivationTypeError,
    GrammarSyntaxError,
    InputShapeError,
    SearchSpaceError,
    UnknownSpaceError,
)
from search_spaces.grammar import Alternative, Grammar, Rule
from search_spaces.operators import Offspring, crossover, mutate
from search_spaces.sampler import Limits, Sampler
from search_spaces.spaces import Space, get_space, list_spaces
from search_spaces.types import TensorType, input_type

__all__ = ["Alternative", "BudgetError", "Cost", "DNode", "Derivation", "DerivationSyntaxError", "DerivationTypeError",
           "Grammar", "GrammarSyntaxError", "InputShapeError", "Limits", "Offspring", "Rule", "Sampler",
           "SearchSpaceError", "Space", "TensorType", "UnknownSpaceError", "crossover", "get_space", "input_type",
           "list_spaces", "load_grammar", "mutate", "parse_grammar"]
