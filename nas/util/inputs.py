"""Input text files read with limits: UTF-8 only, bounded size, one clear error naming the file and the byte."""

from __future__ import annotations

import os
from pathlib import Path

from nas.errors import InputFileError

__all__ = ["MAX_TEXT_BYTES", "read_text_file"]

MAX_TEXT_BYTES = 64 * 1024 * 1024
"""Text inputs (architecture lists, configs) larger than this are refused before they are read."""


def read_text_file(path: str | os.PathLike[str], *, what: str = "file", max_bytes: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of ``path`` (a BOM is dropped).

    Raises:
        InputFileError: missing or unreadable, larger than ``max_bytes``, or not UTF-8 (naming the offset).
    """
    source = Path(path)
    try:
        size = source.stat().st_size
        if source.is_dir():
            raise InputFileError(f"cannot read {what} {source}: it is a folder")
        if size > max_bytes:
            raise InputFileError(f"{what} {source} has {size:,} bytes, more than {max_bytes:,}")
        data = source.read_bytes()
    except OSError as err:
        raise InputFileError(f"cannot read {what} {source}: {err.strerror or err}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise InputFileError(f"{what} {source} is not UTF-8 text: byte 0x{data[err.start]:02x} at offset "
                             f"{err.start} (line {line})") from None
