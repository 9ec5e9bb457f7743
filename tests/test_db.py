"""The schema comes from migrations only, and SQLite is set up for a web server."""

from __future__ import annotations

import math
import os
import re
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app import deadline
from app.bank.files import read_bank
from app.bank.schema import QUESTION_ADAPTER, content_hash
from app.bank.service import parse_version
from app.bank.store import export_bank
from app.db import WRITE_LOCK, Database, alembic_config, begin_write, migrate
from app.errors import Busy
from app.models import Attempt, Base, Learner, Pattern, Question, QuestionVersion, SandboxRun
from tests.conftest import QUESTIONS
from tests.databases import Databases


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


@pytest.mark.slow
def test_instances_migrating_one_database_at_once_both_succeed(
    databases: Databases, tmp_path: Path
) -> None:
    url = databases.create()
    env = {**os.environ, "TRACEWISE_DATABASE_URL": url, "TRACEWISE_VAR_DIR": str(tmp_path)}
    holder = Database(url)
    with holder.session() as held:
        begin_write(held)  # both find the lock taken: they must wait for it, then take turns
        migrating = [
            subprocess.Popen(
                [sys.executable, "-m", "app", "migrate"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        _until_both_wait(held, migrating)
        held.rollback()
    try:
        errors = [process.communicate(timeout=60)[1] for process in migrating]
        assert [process.returncode for process in migrating] == [0, 0], errors
        assert set(Base.metadata.tables) <= set(inspect(holder.engine).get_table_names())
    finally:
        for process in migrating:
            process.kill()
        holder.dispose()
        databases.drop(url)


def _until_both_wait(held: Session, migrating: list[subprocess.Popen[str]]) -> None:
    """Until both processes wait for the write lock (PostgreSQL shows it; SQLite does not,
    so there: long enough for both to have started and reached it)."""
    if held.get_bind().dialect.name != "postgresql":
        time.sleep(3)
        return
    waiting = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    stop = time.monotonic() + 30
    while held.connection().execute(waiting).scalar() != 2:
        assert all(process.poll() is None for process in migrating), "a migration ended early"
        assert time.monotonic() < stop, "the migrations never waited for the lock"
        time.sleep(0.05)


def test_a_writer_waits_for_another_instances_lock_no_longer_than_its_deadline(
    empty_db: str,
) -> None:
    holder, waiter = Database(empty_db), Database(empty_db)  # two instances: two thread locks
    try:
        with holder.session() as held:
            begin_write(held)
            with waiter.session() as session, deadline.within(0.3):
                started = time.monotonic()
                with pytest.raises(Busy):
                    begin_write(session)
                assert time.monotonic() - started < 5
                assert not session.info[WRITE_LOCK].locked()
            held.rollback()
        with waiter.session() as session:  # the lock is free again for the waiter
            begin_write(session)
            session.commit()
    finally:
        holder.dispose()
        waiter.dispose()


def test_json_columns_keep_non_finite_floats_and_everything_else(empty_db: str) -> None:
    stored = {
        "lrs": [0.1, math.inf, -math.inf, math.nan, 1e-300],
        "looks_tagged": {"$float": "not a float"},
        "text": "Infinity, NaN and $float in a string",
    }
    database = Database(empty_db)
    with database.session() as session:
        begin_write(session)
        session.add(SandboxRun(key="k", torch_version="2.13.0", result=stored))
        session.commit()
    with database.session() as session:
        result = session.get_one(SandboxRun, "k").result
    database.dispose()
    assert result["lrs"][:3] == [0.1, math.inf, -math.inf]
    assert math.isnan(result["lrs"][3]) and result["lrs"][4] == 1e-300
    assert result["looks_tagged"] == stored["looks_tagged"]
    assert result["text"] == stored["text"]


def test_migrating_to_one_store_of_runs_tells_code_runs_from_snippets(
    databases: Databases,
) -> None:
    """Migration 0009 gives every stored run its kind — rows written before non-finite
    floats were tagged too (a bare `Infinity`, which SQLite's JSON functions refuse)."""
    url = databases.create()
    try:
        migrate(url, "0008")
        rows = {
            "code": '{"status": "ok", "data": {"trajectory": [[0.1]]}}',
            "snippet": '{"status": "ok", "data": null, "value": "[0.05]"}',
        }
        if url.startswith("sqlite"):
            rows |= {
                "old-code": '{"status": "ok", "data": {"trajectory": [[Infinity]]}}',
                "old-snippet": '{"status": "ok", "data": null, "value": NaN}',
            }
        database = Database(url)
        with database.engine.begin() as connection:
            for key, result in rows.items():
                connection.execute(
                    text(
                        "INSERT INTO sandbox_runs (key, torch_version, result, created_at) "
                        "VALUES (:key, '2.13.0', :result, '2026-12-01 00:00:00')"
                    ),
                    {"key": key, "result": result},
                )
        database.dispose()
        migrate(url)
        database = Database(url)
        with database.engine.connect() as connection:
            kinds = dict(connection.execute(text("SELECT key, kind FROM sandbox_runs")).all())
        database.dispose()
    finally:
        databases.drop(url)
    assert kinds == {key: key.removeprefix("old-") for key in rows}


def test_wrong_answers_given_before_try_then_learn_keep_their_solution_shown(
    databases: Databases,
) -> None:
    """Migration 0011: every wrong answer stored before showed its key with it — it is
    recorded as revealed then; a right one needs no reveal."""
    url = databases.create()
    try:
        migrate(url, "0010")
        database = Database(url)
        (lesson,) = read_bank(QUESTIONS / "lr-schedulers")
        question = next(s.question for s in lesson.questions if s.question.id == "lr-purpose")
        with database.session() as session:
            pattern = Pattern(slug="p", content={}, content_hash="h")
            session.add(pattern)
            session.flush()
            session.add(Question(id=question.id, pattern_id=pattern.id, current_version=1))
            session.add(
                QuestionVersion(
                    question_id=question.id,
                    version=1,
                    kind="choice",
                    difficulty="easy",
                    content=question.model_dump(mode="json"),
                    content_hash=content_hash(question),
                )
            )
            learner = Learner(token="t")
            session.add(learner)
            session.flush()
            for day, correct in ((1, False), (2, True), (3, False)):
                session.add(
                    Attempt(
                        id=day,
                        learner_id=learner.id,
                        question_id=question.id,
                        question_version=1,
                        answer=0,
                        correct=correct,
                        score=float(correct),
                        feedback={},
                        hint_seen=False,
                        solution_seen=False,
                        created_at=datetime(2026, 12, day, tzinfo=UTC),
                    )
                )
            session.commit()
        database.dispose()
        migrate(url)
        database = Database(url)
        with database.engine.connect() as connection:
            reveals = connection.execute(
                text("SELECT attempt_id, kind, created_at FROM reveals ORDER BY attempt_id")
            ).all()
        database.dispose()
    finally:
        databases.drop(url)
    assert [(r.attempt_id, r.kind) for r in reveals] == [(1, "solution"), (3, "solution")]
    assert [str(r.created_at)[:10] for r in reveals] == ["2026-12-01", "2026-12-03"]


def test_stored_versions_written_before_titles_get_one_and_still_load(
    databases: Databases, tmp_path: Path
) -> None:
    """Migration 0010: a version stored without a `title` (the schema requires one now) gets
    one from its prompt — in its content, its hash and its YAML as written — so it loads,
    lists with a title and exports as a file that imports again; downgrading takes it away."""
    (lesson,) = read_bank(QUESTIONS / "lr-schedulers")
    sources = {s.question.id: s for s in lesson.questions}
    stored = {  # id → (YAML as written kept?, the title 0010 must derive)
        "lr-purpose": (True, "What is the main purpose of using a learning rate…"),
        "lr-output-steplr-calls": (
            True,
            "StepLR with step_size=… and gamma=…. What does this print…",
        ),
        "lr-code-steplr": (False, "Build scheduler so that the learning rate (0.1 to start)…"),
    }
    url = databases.create()
    try:
        migrate(url, "0009")
        database = Database(url)
        with database.session() as session:
            pattern = Pattern(
                slug="lr-schedulers",
                content=lesson.pattern.model_dump(mode="json"),
                content_hash=content_hash(lesson.pattern),
            )
            session.add(pattern)
            session.flush()
            for qid, (keep_text, _) in stored.items():
                question = sources[qid].question
                untitled = {
                    k: v for k, v in question.model_dump(mode="json").items() if k != "title"
                }
                text = re.sub(r"^title:.*\n", "", sources[qid].text, flags=re.MULTILINE)
                session.add(Question(id=qid, pattern_id=pattern.id, current_version=1))
                session.add(
                    QuestionVersion(
                        question_id=qid,
                        version=1,
                        kind=question.kind,
                        difficulty=question.difficulty.value,
                        content=untitled,
                        content_hash="0" * 64,
                        source_text=text if keep_text else None,
                    )
                )
            session.commit()
        database.dispose()

        migrate(url)
        database = Database(url)
        with database.session() as session:
            rows = {row.question_id: row for row in session.scalars(select(QuestionVersion))}
            for qid, (keep_text, title) in stored.items():
                question = parse_version(rows[qid])  # loads under today's schema
                assert question.title == title
                assert rows[qid].content_hash == content_hash(question)
                assert (rows[qid].source_text is not None) is keep_text
                if keep_text:
                    written = yaml.safe_load(rows[qid].source_text or "")
                    assert QUESTION_ADAPTER.validate_python(written) == question
            assert export_bank(session, tmp_path / "export") == len(stored)
        database.dispose()
        exported = read_bank(tmp_path / "export")  # the files import again
        assert {s.question.title for p in exported for s in p.questions} == {
            title for _, title in stored.values()
        }

        command.downgrade(alembic_config(url), "0009")
        database = Database(url)
        with database.engine.connect() as connection:
            contents = connection.execute(select(QuestionVersion.content)).scalars().all()
            texts = connection.execute(select(QuestionVersion.source_text)).scalars().all()
        database.dispose()
    finally:
        databases.drop(url)
    assert all("title" not in content for content in contents)
    assert not any(re.search(r"^title:", text or "", re.MULTILINE) for text in texts)
    assert sum(text is not None for text in texts) == 2


@pytest.mark.sqlite_only
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


@pytest.mark.sqlite_only
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
