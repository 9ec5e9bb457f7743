"""Nothing is lost when many learners submit at once to one SQLite file."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.bank.service import get_question_or_raise
from app.config import Settings
from app.db import Database
from app.learning.answering import record_attempt
from app.learning.learners import Visitor, get_learner, new_token
from app.main import create_app
from app.models import Attempt, Learner, ReviewCard
from app.sandbox.client import Sandbox
from bench.harness import load
from tests.browser import live_server

THREADS = 16
ATTEMPTS_EACH = 25


@pytest.mark.slow
def test_many_threads_hammering_one_sqlite_file_lose_no_attempt(database: Database) -> None:
    def learner_session(index: int) -> int:
        token = new_token()
        for attempt in range(ATTEMPTS_EACH):
            with database.session() as session:
                question = get_question_or_raise(session, "lr-purpose")
                visitor = Visitor(token, get_learner(session, token))
                recorded = record_attempt(
                    session, visitor=visitor, question=question, answer=(index + attempt) % 4
                )
        return recorded.attempt.learner_id

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        learner_ids = list(pool.map(learner_session, range(THREADS)))

    with database.session() as session:
        total = session.scalar(select(func.count()).select_from(Attempt))
        per_learner = dict(
            session.execute(
                select(Attempt.learner_id, func.count()).group_by(Attempt.learner_id)
            ).all()
        )
        reviews = session.scalar(select(func.sum(ReviewCard.reviews)))
    assert total == THREADS * ATTEMPTS_EACH
    assert per_learner == dict.fromkeys(learner_ids, ATTEMPTS_EACH)
    assert reviews == total  # every attempt reviewed its card, in the same transaction


@pytest.mark.slow
def test_concurrent_http_submissions_are_all_stored(app: FastAPI, database: Database) -> None:
    clients, per_client = 8, 15

    def submit(_: int) -> list[int]:
        # A browser of its own, without the app's lifespan: the app is started once, below. A
        # client per thread that started and stopped it would stop it (and close its engine)
        # while other threads' requests still held connections.
        client = TestClient(app)
        try:
            return [
                client.post(
                    "/api/questions/lr-steplr-syntax/attempts", json={"answer": n % 4}
                ).status_code
                for n in range(per_client)
            ]
        finally:
            client.close()

    with TestClient(app), ThreadPoolExecutor(max_workers=clients) as pool:
        statuses = [code for codes in pool.map(submit, range(clients)) for code in codes]

    assert statuses == [201] * clients * per_client
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Attempt)) == clients * per_client
        assert session.scalar(select(func.count()).select_from(Learner)) == clients


@pytest.mark.slow
def test_many_concurrent_clients_waiting_on_the_sandbox_get_answers_not_errors(
    settings: Settings, sandbox: Sandbox
) -> None:
    """More clients than the server has threads or pooled connections, each waiting for a real
    run: every one is graded (a request must not hold a connection while it waits)."""
    app = create_app(settings.model_copy(update={"sandbox_cache": False}), sandbox=sandbox)

    def submit(client: int, n: int) -> tuple[str, str, dict[str, object]]:
        return (
            "POST",
            "/api/questions/lr-output-steplr-calls/attempts",
            {"answer": "0.05", "variant": (client + n) % 30},
        )

    with live_server(app) as base:
        port = int(base.rsplit(":", 1)[1])
        result = load(
            port, clients=80, requests_each=2, make_request=submit, warmup=0, timeout_s=60
        )
    assert result.errors == 0
    assert len(result.latencies_ms) == 160
