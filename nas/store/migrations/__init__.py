"""The store's Alembic migrations (run by :func:`nas.store.migrate.upgrade`, never by the ``alembic`` CLI)."""
