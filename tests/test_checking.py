"""Verifying questions by running them: bounded by what the sandbox holds, and never blaming
a question for a busy sandbox."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.authoring.importing import import_bank
from app.bank.files import read_bank
from app.bank.schema import CodeQuestion
from app.checking import jobs
from app.checking.runs import Runs
from app.checking.verify import in_flight_limit, verify
from app.db import Database
from app.errors import Busy
from app.sandbox.client import Sandbox
from app.sandbox.protocol import CodeJob, Drive, SnippetJob
from app.sandbox.scheduler import SYSTEM, Owner
from tests.conftest import QUESTIONS, SANDBOX_TIMEOUT_S

BANK = read_bank(QUESTIONS)
QUESTION_LIST = [source.question for pattern in BANK for source in pattern.questions]


class SmallSandbox:
    """The real sandbox, seen through a door that holds `capacity` runs at once (as one
    with few slots and a short queue would): more at once is Busy, as the real one says."""

    def __init__(self, sandbox: Sandbox, capacity: int) -> None:
        self.sandbox = sandbox
        self.capacity = capacity
        self.held = 0
        self.most = 0
        self.lock = threading.Lock()

    def submit(self, job: Any, owner: Owner = SYSTEM) -> Any:
        with self.lock:
            if self.held >= self.capacity:
                raise Busy("The code runner is busy. Try again in a moment.", retry_after=2)
            self.held += 1
            self.most = max(self.most, self.held)
        return _Held(self, self.sandbox.submit(job, owner))

    def run(self, job: Any, owner: Owner = SYSTEM) -> Any:
        return self.submit(job, owner).result()


class _Held:
    def __init__(self, door: SmallSandbox, ticket: Any) -> None:
        self.door, self.ticket = door, ticket

    def result(self) -> Any:
        try:
            return self.ticket.result()
        finally:
            with self.door.lock:
                self.door.held -= 1


def _small_runs(sandbox: Sandbox, capacity: int) -> tuple[Runs, SmallSandbox]:
    door = SmallSandbox(sandbox, capacity)
    runs = Runs(door, use_cache=False, timeout_s=SANDBOX_TIMEOUT_S)  # type: ignore[arg-type]
    return runs, door


def test_a_whole_bank_is_verified_through_a_sandbox_that_holds_three_runs(
    sandbox: Sandbox, empty_db: str
) -> None:
    runs, door = _small_runs(sandbox, 3)
    assert in_flight_limit(runs) == 3
    database = Database(empty_db)
    try:
        with database.session() as session:
            report = import_bank(session, QUESTIONS, runs=runs)
    finally:
        database.dispose()
    assert len(report.created) == len(QUESTION_LIST)
    assert door.most == 3  # as many as it holds, never more


def test_a_busy_sandbox_is_busy_not_a_problem_of_the_question(
    sandbox: Sandbox, db: Session
) -> None:
    runs, _ = _small_runs(sandbox, 0)
    outputs = [q for q in QUESTION_LIST if q.kind == "output"][:1]
    with pytest.raises(Busy):
        verify(db, runs, questions=outputs)


def test_every_kind_of_job_has_its_own_key() -> None:
    a = SnippetJob(code="print(1)")
    assert jobs.run_key(a) == jobs.run_key(SnippetJob(code="print(1)", timeout_s=1.0))
    assert jobs.run_key(a) != jobs.run_key(SnippetJob(code="print(1)", expression="1"))
    code = CodeJob(
        code="print(1)", setup="", drive=Drive(drive="loop", epochs=1, steps_per_epoch=1)
    )
    assert jobs.run_key(code) != jobs.run_key(a)


def test_the_bank_runs_nothing_it_has_run_before(sandbox: Sandbox, db: Session) -> None:
    """Imported once (the template database), every key and reference is stored: verifying
    the bank again, as an unchanged import does, sends the sandbox nothing."""
    runs, door = _small_runs(sandbox, 3)
    runs.use_cache = True
    code_ids = [q.id for q in QUESTION_LIST if isinstance(q, CodeQuestion)]
    verified = verify(db, runs, questions=QUESTION_LIST, verified_before=code_ids)
    assert all(v.ok for v in verified.questions.values())
    assert door.most == 0
