"""Helpers shared by CLI commands."""

from __future__ import annotations

from dataclasses import replace
from typing import Any


def space_limits(space: str, **overrides: int | None) -> Any:
    """The space's default :class:`~search_spaces.Limits` with the options the user gave (None = keep)."""
    from search_spaces.spaces import space_spec

    return replace(space_spec(space).default_limits, **{k: v for k, v in overrides.items() if v is not None})
