"""Alembic environment of the store: migrations run on the connection :func:`nas.store.migrate.upgrade` hands over
(``config.attributes["connection"]``), recording the revision in :data:`nas.store.migrate.VERSION_TABLE` (Optuna
keeps its own ``alembic_version`` in the same database). Batch mode, so that SQLite can alter tables."""

from __future__ import annotations

from alembic import context

from nas.store.migrate import VERSION_TABLE
from nas.store.schema import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, version_table=VERSION_TABLE,
                  render_as_batch=True, include_name=lambda name, type_, parent: type_ != "table"
                  or str(name).startswith("nas_"))
with context.begin_transaction():
    context.run_migrations()
