"""Open a SQLite file for reading without writing anything, not even a side file (``-wal``, ``-shm``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

__all__ = ["connect_read_only", "is_wal"]


def is_wal(path: Path) -> bool:
    """Whether the SQLite file's header says WAL mode (bytes 18 and 19, the file format versions, are 2)."""
    try:
        with path.open("rb") as file:
            header = file.read(20)
    except OSError:
        return False
    return len(header) == 20 and header[18] == 2 and header[19] == 2


def connect_read_only(path: Path, timeout_s: float) -> sqlite3.Connection:
    """A read-only connection to the SQLite file ``path`` that writes nothing, not even a side file.

    SQLite's ``mode=ro`` reads a file or folder we cannot write, but on a WAL-mode file (every store) it creates
    ``-wal`` and ``-shm`` files and cannot remove them. So: ``mode=ro`` when the file is not in WAL mode, or when
    a ``-wal`` file exists (a driver has the store open: its latest commits are in the WAL, read through the
    shared memory it keeps); otherwise ``immutable=1``, which reads the file alone with no lock and no side file
    (with no ``-wal`` file every commit is in the file itself). If ``mode=ro`` cannot open (a WAL store in a
    folder we cannot write, without its ``-shm``), ``immutable=1`` reads what was checkpointed into the file.
    See https://www.sqlite.org/uri.html and https://www.sqlite.org/wal.html#readonly.
    """
    wal = path.with_name(path.name + "-wal")
    immutable = f"{path.as_uri()}?immutable=1"
    if is_wal(path) and not wal.exists():
        return sqlite3.connect(immutable, uri=True, timeout=timeout_s, check_same_thread=False)
    try:
        connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=timeout_s,
                                     check_same_thread=False)
    except sqlite3.OperationalError:
        return sqlite3.connect(immutable, uri=True, timeout=timeout_s, check_same_thread=False)
    try:
        connection.execute("SELECT COUNT(*) FROM sqlite_master")
    except sqlite3.OperationalError:  # "unable to open database file": the -shm cannot be created
        connection.close()
        return sqlite3.connect(immutable, uri=True, timeout=timeout_s, check_same_thread=False)
    except sqlite3.Error:
        connection.close()
        raise
    return connection
