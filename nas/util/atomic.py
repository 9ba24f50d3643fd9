"""Output files that are either complete or absent, and output folders checked before any work starts.

A file is written to a temporary name in its own folder and renamed over the target (``os.replace``, atomic on
POSIX), so a full disk, Ctrl-C or SIGTERM never leaves a truncated ONNX or JSON file under the final name. No
library offers this for arbitrary writers without extra dependencies, so it is written here (a dozen lines).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from nas.errors import OutputError

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "check_output_dir", "os_error_text"]


def os_error_text(err: OSError) -> str:
    """``"No space left on device"`` rather than ``"[Errno 28] No space left on device: '/x/y'"``."""
    return err.strerror or str(err) or type(err).__name__


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``target``; when the block ends without error it is renamed to ``target``.

    On any error (``KeyboardInterrupt`` included) the temporary file is removed and ``target`` is left as it
    was. ``OSError`` becomes :class:`~nas.errors.OutputError` naming ``target``.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{target.name[:64]}.", suffix=".tmp", dir=target.parent)
        os.close(handle)
    except OSError as err:
        raise OutputError(f"cannot write {target}: {os_error_text(err)}") from None
    temporary = Path(name)
    try:
        yield temporary
        os.replace(temporary, target)
    except OSError as err:
        temporary.unlink(missing_ok=True)
        raise OutputError(f"cannot write {target}: {os_error_text(err)}") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically (see :func:`atomic_path`); returns the path."""
    with atomic_path(target) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    return Path(target)


def atomic_write_text(target: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``target`` atomically; returns the path."""
    return atomic_write_bytes(target, text.encode("utf-8"))


def check_output_dir(path: str | os.PathLike[str], *, what: str = "output folder",
                     refuse: Callable[[Path], str | None] | None = None) -> Path:
    """Create ``path`` if needed and prove it writable (a probe file is created and removed); before any work.

    Args:
        what: how messages name the folder (e.g. ``"--out"``).
        refuse: called with the folder once it exists; a returned message refuses it (e.g. a used folder).

    Raises:
        OutputError: ``path`` is a file, cannot be created, is not writable (read-only, full disk), or ``refuse``
            objected. Nothing is written then.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{what} {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create {what} {folder}: {os_error_text(err)}") from None
    if refuse is not None:
        problem = refuse(folder)
        if problem:
            raise OutputError(problem)
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".nas-write-probe-"):
            pass
    except OSError as err:
        raise OutputError(f"{what} {folder} is not writable: {os_error_text(err)}") from None
    return folder
