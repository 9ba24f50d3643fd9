"""``nas store``: maintain a store itself.

Examples::

    nas store upgrade --db sqlite:///old.db      # migrate an older store in place (read-only commands never do)
"""

from __future__ import annotations

from pathlib import Path

import typer

from nas.cli.search import DEFAULT_DB, DbOpt

app = typer.Typer(no_args_is_help=True, help="Maintain a store: upgrade its schema.")


@app.command("upgrade")
def upgrade(db: DbOpt = DEFAULT_DB) -> None:
    """Migrate an existing store to this nas-platform's newest schema. Writing commands (`nas search run`,
    `resume`) do the same when they open a store; `ls`, `show`, `export`, `plot` and `report` only read."""
    import sqlalchemy as sa

    from nas.store import Store, StoreError
    from nas.store.migrate import head_revision
    from nas.util.secrets import mask_url

    try:
        parsed: sa.URL | None = sa.make_url(db)
    except sa.exc.ArgumentError:
        parsed = None  # Store names the bad URL
    if parsed is not None and parsed.get_backend_name() == "sqlite" and parsed.database \
            and not Path(parsed.database).expanduser().is_file():  # upgrade never creates a store
        raise StoreError(f"no store at {mask_url(db)}: file {parsed.database} does not exist")
    with Store(db) as store:
        typer.echo(f"{store.display_url}: schema revision {head_revision()} (the newest)")
