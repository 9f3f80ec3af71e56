"""Alembic environment: always run in-process on a connection handed over by database.py."""

from __future__ import annotations

from alembic import context

from desktop_app.core.storage.schema import Base

connection = context.config.attributes["connection"]
# render_as_batch: SQLite cannot ALTER most things in place; batch mode copies the table.
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
