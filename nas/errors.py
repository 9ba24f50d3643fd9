"""The one root of the platform's errors: every error a user can cause or fix is a :class:`NasError`.

The layers below and beside :mod:`nas` keep roots of their own because they must not import it
(:class:`search_spaces.exceptions.SearchSpaceError`, ``predictors.PredictorError``); the command line maps the three
of them, once, at its edge (:mod:`nas.cli.app`) to one ``error: ...`` line and exit code 2.

Narrow errors also inherit the built-in they replace (``ConfigError(NasError, ValueError)``), as Optuna's
``exceptions.py`` does, so that older ``except ValueError`` callers keep working.
"""

from __future__ import annotations

__all__ = ["InputFileError", "NasError", "OutputError", "ResourceError"]


class NasError(Exception):
    """Root of every error of :mod:`nas`; ``str(err)`` is one line naming the problem (more lines may follow)."""


class InputFileError(NasError, ValueError):
    """An input file cannot be read as what it should be (not UTF-8 text, too large, nested too deeply)."""


class OutputError(NasError, OSError):
    """An output path cannot be written (it is a file, read-only, on a full disk, its name too long, in use)."""


class ResourceError(NasError):
    """A request can never be met by the resources there are (e.g. a trial asks for more CPUs than any node has)."""
