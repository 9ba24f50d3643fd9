"""YAML configuration files read with limits: a hostile file is answered with one error, quickly.

``yaml.safe_load`` builds an alias (``*a``) as a reference to the anchored object, so a "billion laughs" file
loads instantly but expands exponentially as soon as it is walked (copied, merged, written as JSON). The loaded
data is therefore measured first, by a walk that stops at :data:`MAX_VALUES`, and refused above it; deep nesting
(PyYAML composes recursively) is refused as well.
"""

from __future__ import annotations

import os
from typing import Any

from nas.errors import InputFileError
from nas.util.inputs import read_text_file

__all__ = ["MAX_DEPTH", "MAX_VALUES", "MAX_YAML_BYTES", "check_size", "load_yaml_mapping"]

MAX_YAML_BYTES = 1024 * 1024
"""Configuration files larger than this are refused unread (the default one has 2 KB)."""
MAX_VALUES = 100_000
"""The most values (mappings, lists and scalars, aliases counted each time they occur) a configuration may hold."""
MAX_DEPTH = 64
"""The deepest nesting of mappings and lists a configuration may have."""


def check_size(data: Any, what: str, *, max_values: int = MAX_VALUES, max_depth: int = MAX_DEPTH) -> None:
    """Raise :class:`~nas.errors.InputFileError` if ``data`` holds more than ``max_values`` values (aliases
    expanded) or nests deeper than ``max_depth``; the walk stops at the limit, so it costs at most that much."""
    count = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > max_values:
            raise InputFileError(f"{what} expands to more than {max_values:,} values (YAML aliases?)")
        if depth > max_depth:
            raise InputFileError(f"{what} nests deeper than {max_depth} levels")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for pair in value.items() for v in pair)
        elif isinstance(value, (list, tuple, set)):
            stack.extend((v, depth + 1) for v in value)


def load_yaml_mapping(path: str | os.PathLike[str], *, what: str = "config") -> dict[str, Any]:
    """The mapping a YAML file holds (an empty file gives ``{}``), with string keys.

    Raises:
        InputFileError: unreadable, not UTF-8, over :data:`MAX_YAML_BYTES`, not YAML, not a mapping with string
            keys, more than :data:`MAX_VALUES` values once aliases are expanded, or nested too deeply.
    """
    import yaml

    text = read_text_file(path, what=what, max_bytes=MAX_YAML_BYTES)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise InputFileError(f"{what} {path} is not valid YAML: {' '.join(str(err).split())}") from None
    except RecursionError:
        raise InputFileError(f"{what} {path} nests too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputFileError(f"{what} {path} must be a mapping of fields, got {type(data).__name__}")
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise InputFileError(f"{what} {path}: field names are text, got {bad[0]!r}")
    check_size(data, f"{what} {path}")
    return data
