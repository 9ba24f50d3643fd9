"""Schema migrations of the store, with Alembic (the scripts live in :mod:`nas.store.migrations`).

Every store is brought to the newest revision (``head``) when it is opened, inside one transaction where the
database allows (PostgreSQL; SQLite's batch mode copies the altered tables). The revision is recorded in our own
version table, :data:`VERSION_TABLE`, because Optuna keeps ``alembic_version`` for its tables in the same
database. The first revision is schema 2 (the schema of stores made before migrations existed): it creates the
tables a new store lacks and adds the schema-2 columns to a schema-1 store, so every older store upgrades the same
way, whatever it holds.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

__all__ = ["VERSION_TABLE", "current_revision", "head_revision", "known_revisions", "upgrade"]

VERSION_TABLE = "nas_alembic_version"
"""The table in which the store records its Alembic revision."""

_SCRIPTS = Path(__file__).with_name("migrations")


def _config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this nas-platform knows."""
    return str(ScriptDirectory.from_config(_config()).get_current_head())


def known_revisions() -> set[str]:
    """Every revision this nas-platform knows."""
    return {r.revision for r in ScriptDirectory.from_config(_config()).walk_revisions()}


def current_revision(connection: sa.Connection) -> str | None:
    """The revision recorded in ``connection``'s database, ``None`` before the store's first migration."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def upgrade(engine: sa.Engine) -> None:
    """Migrate the store of ``engine`` to :func:`head_revision` (nothing happens when it is there already)."""
    with engine.begin() as connection:
        command.upgrade(_config(connection), "head")
