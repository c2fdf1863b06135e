"""Alembic environment: always run online, on the connection offramp hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from offramp.core.state.models import Base

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):  # pragma: no cover - offramp always passes one
    raise RuntimeError("run migrations through offramp (offramp init), not the alembic command line")

# render_as_batch: SQLite cannot ALTER most columns, so changes are made by copying the table.
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
