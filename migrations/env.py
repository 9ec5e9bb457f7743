"""Alembic environment: migrations run on the engine the app itself uses (same pragmas)."""

from __future__ import annotations

from alembic import context

from app.config import Settings
from app.db import make_engine
from app.models import Base

config = context.config
url = config.attributes.get("database_url") or Settings().resolved_database_url


def run_migrations_online() -> None:
    """Run every pending migration in one transaction."""
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=True,  # SQLite can only ALTER a table by rebuilding it
            transactional_ddl=True,  # our SQLite engine emits BEGIN itself, so DDL is atomic
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Offline (SQL) migrations are not supported; run `python -m app migrate`.")
run_migrations_online()
