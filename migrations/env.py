"""Alembic environment: migrations run on the engine the app itself uses (same pragmas)."""

from __future__ import annotations

from typing import Any

from alembic import context

from app.config import Settings
from app.db import WRITE_OPTION, lock_for_writing, make_engine
from app.models import Base, UTCDateTime

config = context.config
url = config.attributes.get("database_url") or Settings().resolved_database_url


def render_item(kind: str, obj: Any, _context: Any) -> str | bool:
    """Write our UTCDateTime as a plain DateTime, so migrations never import the app."""
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False


def run_migrations_online() -> None:
    """Run every pending migration in one transaction, holding the write lock from before
    the schema's version is read: instances migrating at once take turns, and the second
    finds nothing left to do."""
    engine = make_engine(url)
    with engine.connect().execution_options(**{WRITE_OPTION: True}) as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=True,  # SQLite can only ALTER a table by rebuilding it
            transactional_ddl=True,  # our SQLite engine emits BEGIN itself, so DDL is atomic
            compare_type=True,
            render_item=render_item,
        )
        with context.begin_transaction():
            lock_for_writing(connection)
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Offline (SQL) migrations are not supported; run `python -m app migrate`.")
run_migrations_online()
