"""Errors of the search-space layer. Every one names the problem in one line (``str(err)``)."""

from __future__ import annotations


class SearchSpaceError(Exception):
    """Root of every error raised by :mod:`search_spaces`."""


class GrammarSyntaxError(SearchSpaceError):
    """A grammar file could not be parsed or is inconsistent; carries ``file``, ``line``, ``column``."""

    def __init__(self, message: str, file: str = "<grammar>", line: int = 0, column: int = 0, context: str = ""):
        self.message, self.file, self.line, self.column, self.context = message, file, line, column, context
        where = f"{file}:{line}:{column}: " if line else f"{file}: "
        super().__init__(where + message + (f"\n{context}" if context else ""))


class DerivationSyntaxError(SearchSpaceError):
    """A derivation string is malformed or uses a production the grammar does not have; carries ``column``."""

    def __init__(self, message: str, text: str = "", column: int = 0):
        self.message, self.text, self.column = message, text, column
        excerpt = ""
        if text and column:
            offset = column - 1  # columns count characters of the whole string, newlines included
            line_start = text.rfind("\n", 0, offset) + 1
            line_end = text.find("\n", offset)
            line = text[line_start:line_end if line_end >= 0 else len(text)]
            start = max(0, offset - line_start - 40)
            excerpt = f"\n    {line[start:start + 100]}\n    {' ' * (offset - line_start - start)}^"
        super().__init__(f"column {column}: {message}{excerpt}" if column else message)


class DerivationTypeError(DerivationSyntaxError):
    """A derivation string is well formed but does not type-check on the given input."""


class InputShapeError(SearchSpaceError):
    """The input shape is impossible for the space (wrong rank, non-positive, nothing applicable)."""


class BudgetError(SearchSpaceError):
    """No architecture of the space fits the requested budget."""


class LimitsError(SearchSpaceError, ValueError):
    """A sampling limit is not a non-negative integer, or exceeds what the platform can handle."""


class UnknownSpaceError(SearchSpaceError, KeyError):
    """No built-in space has that name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
