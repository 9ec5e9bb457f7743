"""The schema comes from migrations only, and SQLite is set up for a web server."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from app.db import Database
from app.models import Base


def test_models_and_migrations_agree(empty_db: str) -> None:
    database = Database(empty_db)
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    database.dispose()
    assert diff == [], f"models differ from migrations; run `python -m app make-migration`: {diff}"


def test_migrations_create_every_table(empty_db: str) -> None:
    database = Database(empty_db)
    tables = set(inspect(database.engine).get_table_names())
    database.dispose()
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_sqlite_is_set_up_for_a_web_server(empty_db: str) -> None:
    database = Database(empty_db)
    with database.engine.connect() as connection:
        pragma = connection.exec_driver_sql
        assert pragma("PRAGMA journal_mode").scalar() == "wal"
        assert pragma("PRAGMA foreign_keys").scalar() == 1
        assert pragma("PRAGMA busy_timeout").scalar() == 10_000
    database.dispose()
