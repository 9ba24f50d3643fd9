"""Terminals of the grammar, looked up by name and category (every built-in one:
:func:`search_spaces.builtin.default_registry`)."""

from __future__ import annotations

import difflib

from search_spaces.exceptions import SearchSpaceError
from search_spaces.terminals.base import Fork, Leaf, Merge, Param, PostRoute, PreRoute, Terminal


class UnknownTerminalError(SearchSpaceError, KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class TerminalRegistry:
    """Name -> category -> terminal. The same name may exist in several categories (``identity``)."""

    def __init__(self, terminals: tuple[Terminal, ...] | list[Terminal] = ()):
        self._by_name: dict[str, dict[str, Terminal]] = {}
        for t in terminals:
            self.register(t)

    def register(self, terminal: Terminal) -> None:
        self._by_name.setdefault(terminal.name, {})[terminal.category] = terminal

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def categories(self, name: str) -> set[str]:
        return set(self._by_name.get(name, {}))

    def get(self, name: str, category: str) -> Terminal:
        found = self._by_name.get(name, {})
        if category in found:
            return found[category]
        if found:
            raise UnknownTerminalError(f"terminal {name!r} is a {'/'.join(sorted(found))} terminal, not {category}")
        close = difflib.get_close_matches(name, self.names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownTerminalError(f"unknown terminal {name!r}{hint}")


__all__ = ["Fork", "Leaf", "Merge", "Param", "PostRoute", "PreRoute", "Terminal", "TerminalRegistry",
           "UnknownTerminalError"]
