"""Alembic environment: runs on the connection `Store.upgrade()` hands over.

There is no alembic.ini and no URL here: the store configures Alembic in code and
passes its open connection, inside its own transaction, as
`config.attributes["connection"]`, so migrating uses the same engine settings
(SQLite pragmas, PostgreSQL advisory lock) as everything else.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from aggregator.store import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("aggregator migrations run through `aggregator db upgrade` (Store.upgrade)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite alters a table by copying it; batch mode lets later migrations do so.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
