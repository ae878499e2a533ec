"""Alembic environment: runs on a connection handed over by `sluicegate.store.migrate`.

The store opens the async engine and the transaction itself (with a lock, so several workers
starting together migrate once), then passes the synchronous connection through
`config.attributes["connection"]`; there is no alembic.ini and no URL here.
"""

from __future__ import annotations

from alembic import context

from sluicegate.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "Sluicegate migrations run through `sluicegate db upgrade` or sluicegate.store.migrate.upgrade()"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
