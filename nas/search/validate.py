"""Checks of a search's name and seed, made before anything is trained or written.

A name becomes an Optuna study name and part of file names (``<artifact dir>/best/<name>_<hash>.onnx``); a
300-character name used to train every trial and then fail with ENAMETOOLONG at the very end.
"""

from __future__ import annotations

from typing import Any

from nas.search.config import ConfigError

__all__ = ["MAX_NAME_LENGTH", "MAX_SEED", "check_search_name", "check_seed"]

MAX_NAME_LENGTH = 100
"""The longest search name (with the 64-character hash, file names stay far below the usual 255-byte limit)."""
MAX_SEED = 2**32 - 1
"""Seeds are 32-bit unsigned integers (numpy's and torch's seeding accept them all)."""


def check_search_name(name: Any) -> str:
    """``name`` if it can name a search, else :class:`~nas.search.config.ConfigError` saying why."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"a search needs a non-empty name (--name), got {name!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise ConfigError(f"search names have at most {MAX_NAME_LENGTH} characters, got {len(name)}")
    if not name.isprintable():
        raise ConfigError(f"search names are printable text (no control characters), got {name!r}")
    return name


def check_seed(seed: Any) -> int:
    """``seed`` if it is an integer in ``[0, MAX_SEED]``, else :class:`~nas.search.config.ConfigError`."""
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed must be an integer from 0 to {MAX_SEED}, got {seed!r}")
    return seed
