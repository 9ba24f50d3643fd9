"""One check shared by the typed sections' ``from_dict``: every key of a mapping must name a dataclass field."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from typing import Any


def check_field_names(cls: Any, data: Mapping[str, Any], what: str) -> None:
    """Raise ``ValueError`` for the first key of ``data`` that is not a field of the dataclass ``cls``, naming the
    closest field and listing them all (``what``: how the message calls a key, e.g. ``"tune setting"``)."""
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ValueError(f"unknown {what} '{key}'{hint}; known: {', '.join(names)}")
