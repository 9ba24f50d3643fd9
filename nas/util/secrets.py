"""Keeping passwords out of messages, hints and command lines, and making printed hints safe to copy.

Masking uses SQLAlchemy's own URL rendering (``render_as_string(hide_password=True)``). Free text (a driver's
error) is scrubbed of the password only where it stands as a whole token, so a password like ``on`` never turns
``connection`` into ``c***necti***``.
"""

from __future__ import annotations

import re
import shlex
import urllib.parse
from collections.abc import Iterable

__all__ = ["mask_url", "scrub", "shell_command"]

_USERINFO = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (a URL that does not parse is masked by pattern)."""
    import sqlalchemy as sa
    from sqlalchemy.exc import ArgumentError

    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError, TypeError):
        return _USERINFO.sub(r"\1***@", url)


def scrub(text: str, password: str | None, *, url: str | None = None) -> str:
    """``text`` without ``password``: the whole ``url`` is replaced by its masked form, ``:password@`` by
    ``:***@``, and the password (raw or URL-encoded) wherever it stands as a whole token."""
    if url:
        text = text.replace(url, mask_url(url))
    if not password:
        return _USERINFO.sub(r"\1***@", text)
    for secret in dict.fromkeys((password, urllib.parse.quote_plus(password), urllib.parse.quote(password))):
        text = text.replace(f":{secret}@", ":***@")
        text = re.sub(rf"(?<![A-Za-z0-9_]){re.escape(secret)}(?![A-Za-z0-9_])", "***", text)
    return text


def shell_command(*words: str | Iterable[str]) -> str:
    """A command line to print as a hint: every word shell-quoted, so that copying it runs exactly that command
    whatever a search name or path holds (``nas search show 'x; rm -rf ~'``)."""
    flat: list[str] = []
    for word in words:
        if isinstance(word, str):
            flat.append(word)
        else:
            flat.extend(word)
    return shlex.join(flat)
