"""The schema comes from migrations only, and SQLite is set up for a web server."""

from __future__ import annotations

import sqlite3

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import OperationalError

from app.db import WRITE_LOCK, Database, begin_write
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


def test_the_write_lock_is_released_however_the_transaction_ends(empty_db: str) -> None:
    database = Database(empty_db)
    lock = database.session().info[WRITE_LOCK]

    with database.session() as session:  # committed
        begin_write(session)
        assert lock.locked()
        session.commit()
        assert not lock.locked()

    with database.session() as session:  # rolled back
        begin_write(session)
        session.rollback()
        assert not lock.locked()

    session = database.session()  # abandoned: an exception, then close()
    begin_write(session)
    session.execute(text("INSERT INTO learners (token, created_at) VALUES ('x', '2026-01-01')"))
    session.close()
    assert not lock.locked()
    with database.session() as session:  # and the next writer goes ahead
        begin_write(session)
        assert session.scalar(text("SELECT count(*) FROM learners")) == 0
        session.commit()
    database.dispose()


def test_a_failed_commit_releases_the_write_lock(
    empty_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = Database(empty_db)
    lock = database.session().info[WRITE_LOCK]

    def disk_full(dbapi_connection: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(database.engine.dialect, "do_commit", disk_full)
    session = database.session()
    begin_write(session)
    session.execute(text("INSERT INTO learners (token, created_at) VALUES ('y', '2026-01-01')"))
    with pytest.raises(OperationalError, match="disk is full"):
        session.commit()
    session.close()
    assert not lock.locked()
    database.dispose()
