"""The built-in terminals: einspace's operations, combinators, topology operators, conv blocks and sequence
layers, as one registry.

It sits above the terminal kinds and the combinators (which it collects) and below the grammar loader (which
resolves names through it), so that :mod:`search_spaces.grammar` needs only the registry's type.
"""

from __future__ import annotations

from search_spaces.combinators import COMBINATORS
from search_spaces.terminals import TerminalRegistry
from search_spaces.terminals.convolutional import CONVOLUTIONAL_TERMINALS
from search_spaces.terminals.fundamental import FUNDAMENTAL_TERMINALS
from search_spaces.terminals.sequence import SEQUENCE_TERMINALS
from search_spaces.topology import TOPOLOGY_OPERATORS

__all__ = ["default_registry"]


def default_registry() -> TerminalRegistry:
    """A new registry of every built-in terminal (register your own on it and pass it to ``load_grammar``)."""
    return TerminalRegistry(FUNDAMENTAL_TERMINALS + COMBINATORS + TOPOLOGY_OPERATORS + CONVOLUTIONAL_TERMINALS
                            + SEQUENCE_TERMINALS)
