"""Refuse to turn another application's SQLite database into a store.

Opening a store creates our tables and Optuna's and switches SQLite to WAL mode, so ``nas search ls --db
sqlite:///their.db`` used to change a file that was never ours. Before a store opens a SQLite file, its tables are
listed through a read-only connection (:func:`~nas.store.sqlite_read_only.connect_read_only`: nothing is written,
not even a side file, and the journal mode is untouched); a database with tables, none of them ours or Optuna's,
is refused unless the user asks for our tables beside theirs (``--allow-foreign-db``).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from nas.store.sqlite_read_only import connect_read_only

__all__ = ["OPTUNA_TABLES", "refuse_foreign_sqlite"]

OPTUNA_TABLES = frozenset({"studies", "trials", "version_info", "alembic_version"})
"""Tables whose presence means the file is an Optuna storage (a store may share it)."""


def refuse_foreign_sqlite(path: Path, shown: str) -> None:
    """Raise :class:`~nas.store.StoreError` if the SQLite file ``path`` holds tables of another application only.

    A missing or empty file, a store, or an Optuna storage passes; a file that is not SQLite is left to the
    store's own error. ``shown`` names the database in the message (password masked).
    """
    from nas.store.store import StoreError

    if not path.is_file() or path.stat().st_size == 0:
        return
    try:
        connection = connect_read_only(path, timeout_s=5)
    except sqlite3.Error:
        return
    try:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    except sqlite3.Error:
        return
    finally:
        connection.close()
    ours = [t for t in tables if t.startswith("nas_") or t in OPTUNA_TABLES]
    foreign = [t for t in tables if not t.startswith("sqlite_")]
    if foreign and not ours:
        listed = ", ".join(sorted(foreign)[:5]) + (", ..." if len(foreign) > 5 else "")
        raise StoreError(f"{shown} is another application's database (tables {listed}) and holds no nas store: "
                         "refusing to add tables to it; choose another file with --db (or pass --allow-foreign-db "
                         "to put the store's tables beside theirs)")
