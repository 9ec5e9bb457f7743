"""Shared fixtures: a fresh, migrated and imported database per test, an app, a client."""

from __future__ import annotations

import gc
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app import accounts
from app.authoring.importing import import_bank
from app.bank import service as bank
from app.bank.schema import ChoiceQuestion, FixQuestion, OutputQuestion, StepsQuestion
from app.checking import grading, runstore
from app.checking.runs import Runs
from app.config import Settings
from app.db import Database, migrate
from app.learning.answering import shown
from app.main import create_app
from app.sandbox.client import Sandbox, read_only_paths
from app.sandbox.runner import RunnerConfig
from tests.databases import ENGINE, Databases, SqliteFiles, throwaway_postgres

ROOT = Path(__file__).resolve().parent.parent
ENGINE_ONLY = {"sqlite_only": "sqlite", "postgresql_only": "postgresql"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests of one engine itself run only on that engine."""
    for item in items:
        for marker, engine in ENGINE_ONLY.items():
            if item.get_closest_marker(marker) and engine != ENGINE:
                item.add_marker(pytest.mark.skip(reason=f"a test of {engine} itself"))


QUESTIONS = ROOT / "questions"
TEST_SECRET = "test-secret-key-not-for-production-0123456789abcdef"


SANDBOX_TIMEOUT_S = 5.0


@pytest.fixture(autouse=True)
def forget_remembered_runs() -> None:
    """Each test has a database of its own: what the process remembers of the last one's
    runs must not answer for this one's (app.checking.runstore)."""
    runstore.forget()


@pytest.fixture(scope="session", autouse=True)
def quick_password_hashing() -> Iterator[None]:
    """argon2id at its cheapest for the suite (hundreds of accounts are made: at the real
    parameters, a fifth of the run): still argon2id, still salted, still checked."""
    real = accounts._hasher
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=256, parallelism=1)
    yield
    accounts._hasher = real


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """One strict sandbox runner for the whole run (starting one takes ~3 s), on a uid range
    claimed for the host (another server or suite may run beside this one)."""
    runner = Sandbox(
        RunnerConfig(slots=4, max_timeout_s=SANDBOX_TIMEOUT_S, read_only_paths=read_only_paths()),
        queue_limit=256,
    )
    runner.start()
    try:
        runner.wait_ready()
        yield runner
    finally:
        runner.close()


@pytest.fixture(scope="session")
def runs(sandbox: Sandbox) -> Runs:
    """Question runs through the shared sandbox, with the store used as a cache."""
    return Runs(sandbox, use_cache=True, timeout_s=SANDBOX_TIMEOUT_S)


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    """SQLite files, or a throwaway PostgreSQL server (TRACEWISE_TEST_DATABASE=postgresql)."""
    if ENGINE == "postgresql":
        with throwaway_postgres() as server:
            yield server
            _forget_engines()
    else:
        yield SqliteFiles(tmp_path_factory.mktemp("databases"))


@pytest.fixture(scope="session")
def template_db(databases: Databases, runs: Runs) -> str:
    """URL of a database migrated with Alembic and loaded with questions/, built once per
    run; each test works on a copy."""
    url = databases.create()
    migrate(url)
    database = Database(url)
    with database.session() as session:
        import_bank(session, QUESTIONS, runs=runs)
    if database.engine.dialect.name == "sqlite":
        with database.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    database.dispose()  # a PostgreSQL template must have no one connected to be copied
    return url


@pytest.fixture
def empty_db(databases: Databases) -> Iterator[str]:
    """URL of a freshly migrated database with no questions."""
    url = databases.create()
    migrate(url)
    yield url
    _forget_engines()
    databases.drop(url)


@pytest.fixture
def settings(tmp_path: Path, template_db: str, databases: Databases) -> Iterator[Settings]:
    """Settings for one test: its own copy of the template database."""
    url = databases.copy(template_db)
    yield Settings(
        var_dir=tmp_path / "var",
        database_url=url,
        secret_key=TEST_SECRET,  # type: ignore[arg-type]
        allowed_hosts=["testserver", "127.0.0.1", "localhost"],  # TestClient's, a live server's
    )
    _forget_engines()
    databases.drop(url)


def _forget_engines() -> None:
    """On PostgreSQL, collect the engines this test made (TestClients and sessions it left
    to the garbage collector), so that its database can be dropped: psycopg warns of every
    pooled connection collected while open, and a warning in a later test is an error there.
    The connections are the test's: the app disposes its own when it stops."""
    if ENGINE != "postgresql":
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.fixture
def app(settings: Settings, sandbox: Sandbox) -> Iterator[FastAPI]:
    """The app under test, on the shared sandbox."""
    app = create_app(settings, sandbox=sandbox)
    yield app
    app.state.db.dispose()  # before its database is dropped


@pytest.fixture
def database(app: FastAPI) -> Database:
    """The app's own database object, for looking at what requests stored."""
    db: Database = app.state.db
    return db


@pytest.fixture
def db(database: Database) -> Iterator[Session]:
    """A session on the test's database."""
    with database.session() as session:
        yield session


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A browser-like client (keeps cookies)."""
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def other_client(app: FastAPI) -> Iterator[TestClient]:
    """A second, unrelated browser."""
    with TestClient(app) as test_client:
        yield test_client


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
SHOWN_AT_RE = re.compile(r'name="shown_at" value="([^"]+)"')


class Learner:
    """Drives the learner pages the way a browser without JavaScript does."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def open_question(self, slug: str, question_id: str) -> str:
        """GET the question page and return its HTML."""
        response = self.client.get(f"/patterns/{slug}/questions/{question_id}")
        assert response.status_code == 200, response.text
        return response.text

    def answer(self, slug: str, question_id: str, choice: int | str | None) -> object:
        """Open the question, submit `choice` (an index, or an answer's text) with the page's CSRF
        token; return the response."""
        html = self.open_question(slug, question_id)
        data = {"csrf_token": _find(CSRF_RE, html), "shown_at": _find(SHOWN_AT_RE, html)}
        if choice is not None:
            data["answer"] = str(choice)
        return self.client.post(
            f"/patterns/{slug}/questions/{question_id}/answer", data=data, follow_redirects=False
        )

    def reveal(self, attempt_url: str) -> object:
        """On a wrong attempt's page, press "Show the worked solution"."""
        html = self.client.get(attempt_url.split("/attempts/")[0]).text  # its question's page
        return self.client.post(
            f"{attempt_url}/solution",
            data={"csrf_token": _find(CSRF_RE, html)},
            follow_redirects=False,
        )

    def ask_hint(self, slug: str, question_id: str) -> object:
        """Press "Show a hint"."""
        html = self.open_question(slug, question_id)
        return self.client.post(
            f"/patterns/{slug}/questions/{question_id}/hint",
            data={"csrf_token": _find(CSRF_RE, html)},
            follow_redirects=False,
        )


def _find(pattern: re.Pattern[str], html: str) -> str:
    match = pattern.search(html)
    assert match, f"{pattern.pattern} not found in page"
    return match.group(1)


@pytest.fixture
def learner(client: TestClient) -> Learner:
    """A learner in a browser."""
    return Learner(client)


def right_answer(app: FastAPI, question_id: str, version: int, variant: int) -> Any:
    """The answer that grades right for this version and variant of a question (choice: its
    index; output: what the stored run gave; code: the reference; steps: the stored run's
    rates of epochs 1 on)."""
    with app.state.db.session() as session:
        question = bank.get_version_or_raise(session, question_id, version)
        if isinstance(question, ChoiceQuestion):
            return str(question.correct_index)
        if isinstance(question, OutputQuestion):
            runs = app.state.runs
            run = runs.stored_key(session, runs.variant_job(question, variant))
            assert run is not None, "keys are stored at import"
            return grading.expected_output(shown(question, variant), run.result)
        if isinstance(question, StepsQuestion):
            steps = app.state.runs.stored_steps(session, question)
            assert steps is not None, "scenarios' runs are stored at import"
            return [repr(lr) for lr in grading.scenario_lrs(steps.result, question.epochs)[1:]]
        return question.reference


def wrong_answer(app: FastAPI, question_id: str, version: int) -> Any:
    """An answer that grades wrong (and is well-formed) for any variant of a question."""
    with app.state.db.session() as session:
        question = bank.get_version_or_raise(session, question_id, version)
    if isinstance(question, ChoiceQuestion):
        return str(next(i for i, c in enumerate(question.choices) if not c.correct))
    if isinstance(question, OutputQuestion):
        return "not what it prints"
    if isinstance(question, FixQuestion):
        # The buggy code, touched (as given it is not an answer yet): the import made sure it
        # grades wrong, with its diagnosis.
        return question.buggy + "\n# fixed?\n"
    if isinstance(question, StepsQuestion):
        return ["-1"] * (question.epochs - 1)  # no scheduler here makes a rate negative
    return "scheduler = None"
