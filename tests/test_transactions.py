"""What a graded attempt costs the database: counted statement by statement, on both engines.

A statement here is one that reads or writes rows (SELECT, INSERT, UPDATE, DELETE); what
opens, locks and ends a transaction (BEGIN, SQLite's PRAGMA busy_timeout, PostgreSQL's
lock_timeout and advisory lock) is counted as the transaction it belongs to.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from app.checking import runstore
from app.db import Database, begin_write
from app.learning import review
from app.models import ReviewCard, utcnow
from tests.conftest import right_answer

STEPLR = "lr-output-steplr-calls"  # an output question with 30 variants, keys stored at import
CHOICE = "lr-quiz-epoch-5"
MAX_STATEMENTS = 6
LOCKING = ("PRAGMA", "SET LOCAL", "SELECT pg_advisory_xact_lock")


@dataclass
class Ledger:
    """What the database was asked, in order: statements, and transactions begun."""

    statements: list[str] = field(default_factory=list)
    transactions: list[list[str]] = field(default_factory=list)

    @property
    def writes(self) -> list[str]:
        """Statements that changed rows."""
        return [s for s in self.statements if s.split()[0] in ("INSERT", "UPDATE", "DELETE")]


@contextmanager
def ledger(database: Database) -> Iterator[Ledger]:
    """Record every statement the app's engine runs meanwhile, grouped by transaction."""
    kept = Ledger()

    def on_begin(_connection: Any) -> None:
        kept.transactions.append([])

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        text = " ".join(statement.split())
        if text.upper().startswith(tuple(p.upper() for p in ("BEGIN", *LOCKING))):
            return
        kept.statements.append(text)
        if kept.transactions:
            kept.transactions[-1].append(text)

    engine = database.engine
    event.listen(engine, "begin", on_begin)
    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield kept
    finally:
        event.remove(engine, "begin", on_begin)
        event.remove(engine, "before_cursor_execute", on_execute)


def _answer(client: TestClient, question: str, answer: str, variant: int) -> dict[str, Any]:
    response = client.post(
        f"/api/questions/{question}/attempts", json={"answer": answer, "variant": variant}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_graded_attempt_with_a_stored_key_is_one_read_and_one_write(
    app: FastAPI, client: TestClient, database: Database
) -> None:
    key = right_answer(app, STEPLR, 1, 2)
    _answer(client, STEPLR, "0.5", 1)  # the learner exists, has a card and a variant
    runstore.forget()  # as after a restart: this process has not read the key's run yet
    with ledger(database) as seen:
        body = _answer(client, STEPLR, key, 2)  # another variant: its key is read, not run
    assert body["correct"] is True
    assert len(seen.transactions) == 2, seen.transactions
    read, write = seen.transactions
    assert all(s.startswith("SELECT") for s in read), read
    assert [s.split()[0] for s in write if not s.startswith("SELECT")] == ["INSERT", "INSERT"]
    # the key's run is read from the store once by a process, which then remembers it
    assert len(seen.statements) == MAX_STATEMENTS + 1, seen.statements
    assert sum("sandbox_runs" in s for s in read) == 1

    with ledger(database) as again:  # the key's run is known to this process now
        assert _answer(client, STEPLR, "0.1", 2)["correct"] is False
    assert len(again.transactions) == 2
    assert len(again.statements) <= MAX_STATEMENTS, again.statements
    assert not any("sandbox_runs" in s for s in again.statements)


def test_a_first_answer_and_a_choice_cost_no_more(client: TestClient, database: Database) -> None:
    with ledger(database) as first:  # a new guest: their learner row is created, once
        _answer(client, CHOICE, "0", 0)
    assert len(first.transactions) == 2
    with ledger(database) as choice:
        _answer(client, CHOICE, "1", 0)
    assert len(choice.transactions) == 2
    assert len(choice.statements) <= MAX_STATEMENTS, choice.statements


def test_a_card_reviewed_since_it_was_read_is_reviewed_again_from_what_is_stored(
    client: TestClient, database: Database
) -> None:
    """The card is written as it was read before the write transaction; if another answer
    reviewed it in between, this review starts from the stored card instead of undoing it."""
    _answer(client, CHOICE, "0", 0)
    with database.session() as session:
        card = session.scalars(select(ReviewCard)).one()
        seen = (card.card, card.reviews)
        learner_id = card.learner_id
    _answer(client, CHOICE, "1", 0)  # the review that comes in between
    with database.session() as session:
        begin_write(session)
        done = review.review(*seen, review.Rating.Good, utcnow())
        review.store_review(session, learner_id=learner_id, question_id=CHOICE, done=done)
        session.commit()
        assert session.scalars(select(ReviewCard.reviews)).one() == 3
