"""Runs of output questions: every key and every worked-solution trace comes from here.

A run is stored under a key made of the code, the expression and the torch version, so the
same code on the same torch is run once (when caching is on) and a stored run can always be
shown again — the attempt's feedback points at it.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import Future
from dataclasses import dataclass, replace
from functools import cache
from importlib.metadata import version
from typing import Annotated

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import Executable, insert
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.bank import variants
from app.bank.schema import CodeQuestion, OutputQuestion
from app.errors import Busy
from app.models import SandboxRun
from app.sandbox.client import Sandbox, SandboxUnavailable, Ticket
from app.sandbox.protocol import Job, RunResult, Verdict
from app.sandbox.scheduler import SYSTEM, Owner

CACHEABLE = {Verdict.OK, Verdict.ERROR}  # deterministic outcomes; a timeout may be load
PendingRun = Ticket | Future[RunResult]  # a run on its way, or one already done


@cache
def torch_version() -> str:
    """The installed torch version (read from package metadata: the web process never
    imports torch; the runner imports this same installation)."""
    return version("torch")


@dataclass(frozen=True)
class Run:
    """A run and the key it is stored under."""

    key: str
    result: RunResult


def run_key(code: str, expression: str | None) -> str:
    """The storage key of running `code` (and `expression`) on this torch version."""
    material = json.dumps([code, expression, torch_version()], ensure_ascii=False)
    return hashlib.sha256(material.encode()).hexdigest()


def job_for(question: OutputQuestion, variant: int, *, timeout_s: float) -> Job:
    """The job that runs variant `variant` of a question."""
    values = variants.variant(question, variant) if question.params else {}
    expression = question.expression
    return Job(
        code=variants.render_code(question.code, values),
        expression=expression and variants.render_code(expression, values),
        timeout_s=timeout_s,
    )


def code_job(question: CodeQuestion, code: str, *, timeout_s: float) -> Job:
    """The job that runs `code` (the learner's, or the reference) for a code question."""
    return Job(
        kind="code",
        code=code,
        timeout_s=timeout_s,
        spec={"setup": question.setup, "check": question.check.model_dump(mode="json")},
    )


def code_key(job: Job) -> str:
    """The storage key of a code question's run (the reference's: learners' are not kept)."""
    material = json.dumps([job.kind, job.code, job.spec, torch_version()], sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


def stored(session: Session, key: str) -> RunResult | None:
    """A stored run, if there is one."""
    row = session.get(SandboxRun, key)
    return RunResult.from_json(row.result) if row is not None else None


def store(session: Session, run: Run) -> None:
    """Keep a run (once per key; a concurrent duplicate is ignored). Part of the caller's
    write transaction."""
    if run.result.status not in CACHEABLE:
        return
    values = {"key": run.key, "torch_version": torch_version(), "result": run.result.to_json()}
    dialect = session.get_bind().dialect.name
    statement: Executable
    if dialect == "sqlite":
        statement = sqlite_insert(SandboxRun).values(values).on_conflict_do_nothing()
    elif dialect == "postgresql":
        statement = postgresql_insert(SandboxRun).values(values).on_conflict_do_nothing()
    else:
        if session.get(SandboxRun, run.key) is not None:
            return
        statement = insert(SandboxRun).values(values)
    session.execute(statement)


class QuestionRuns:
    """Gets the run behind a question's key: from the store or, when needed, the sandbox,
    where its runs are `owner`'s (the sandbox shares its slots fairly between owners)."""

    def __init__(
        self,
        sandbox: Sandbox | None,
        *,
        use_cache: bool,
        timeout_s: float,
        owner: Owner = SYSTEM,
    ) -> None:
        self.sandbox = sandbox
        self.use_cache = use_cache
        self.timeout_s = timeout_s
        self.owner = owner

    def for_owner(self, owner: Owner) -> QuestionRuns:
        """The same runs, made on `owner`'s behalf."""
        return QuestionRuns(
            self.sandbox, use_cache=self.use_cache, timeout_s=self.timeout_s, owner=owner
        )

    def key_of(self, question: OutputQuestion, variant: int) -> str:
        """The storage key of a variant's run."""
        job = job_for(question, variant, timeout_s=self.timeout_s)
        return run_key(job.code, job.expression)

    def submit(self, question: OutputQuestion, variant: int) -> tuple[str, Ticket]:
        """Start running a variant; its key and the run on its way."""
        if self.sandbox is None:
            raise SandboxUnavailable.switched_off()
        job = job_for(question, variant, timeout_s=self.timeout_s)
        return run_key(job.code, job.expression), self.sandbox.submit(job, self.owner)

    def lookup(self, session: Session, question: OutputQuestion, variant: int) -> Run | None:
        """The stored run of a variant, when caching is on (or nothing can run anyway)."""
        if not self.use_cache and self.sandbox is not None:
            return None
        key = self.key_of(question, variant)
        result = stored(session, key)
        return Run(key, result) if result is not None else None

    def execute(self, question: OutputQuestion, variant: int) -> Run:
        """Run a variant now, in the sandbox (no database involved: the caller holds no
        connection while it waits)."""
        job = job_for(question, variant, timeout_s=self.timeout_s)
        key = run_key(job.code, job.expression)
        if self.sandbox is None:
            raise SandboxUnavailable(
                "Running code is switched off on this server, and this variant has no stored run.",
                retry_after=60,
            )
        result = self.sandbox.run(job, self.owner)
        if result.status not in CACHEABLE:
            # The key's own run failed now though it passed at import: load, not the question.
            raise Busy(
                f"The code could not be run just now ({result.sentence} {result.detail})"
                " Try again in a moment.",
                retry_after=2,
            )
        return Run(key, result)

    def stored_reference(self, session: Session, question: CodeQuestion) -> Run | None:
        """The reference solution's stored run, if there is one (never runs anything)."""
        job = code_job(question, question.reference, timeout_s=self.timeout_s)
        key = code_key(job)
        result = stored(session, key)
        return Run(key, result) if result is not None else None

    def reference(self, session: Session, question: CodeQuestion) -> tuple[Run, bool]:
        """The reference solution's run — stored, or run now; (run, whether it is new).
        A fresh run is made with no database connection held (the caller's read ends)."""
        if (run := self.stored_reference(session, question)) is not None:
            return run, False
        if self.sandbox is None:
            raise SandboxUnavailable.switched_off()
        session.commit()
        job = code_job(question, question.reference, timeout_s=self.timeout_s)
        result = self.sandbox.run(job, self.owner)
        if result.status not in CACHEABLE:
            raise Busy(
                f"The reference solution could not be run just now ({result.sentence}) "
                "Try again in a moment.",
                retry_after=2,
            )
        return Run(code_key(job), result), True

    def learner(self, question: CodeQuestion, code: str) -> RunResult:
        """Run a learner's code for a code question (never stored: answers vary)."""
        if self.sandbox is None:
            raise SandboxUnavailable.switched_off()
        result = self.sandbox.run(code_job(question, code, timeout_s=self.timeout_s), self.owner)
        return trusted_code_run(result, question.check.epochs * question.check.steps_per_epoch)


# --- what a learner's code run may claim --------------------------------------------------------
#
# The learner's code runs in the same process as the harness that reports on it, so it can
# forge the report: its shape is checked, and everything that is stored or shown is bounded.

MAX_PARAM_GROUPS = 64
MAX_WARNINGS = 20
MAX_MESSAGE_CHARS = 2000
Plain = bool | int | float | str


class SchedulerInfo(BaseModel):
    """What the harness says `scheduler` is."""

    type: str = Field(max_length=200)
    params: dict[str, Plain | list[Plain]] = Field(default_factory=dict, max_length=200)


class CodeRunData(BaseModel):
    """What a code question's run recorded: the LRs at every step, and the scheduler."""

    trajectory: list[Annotated[list[float], Field(max_length=MAX_PARAM_GROUPS)]]
    scheduler: SchedulerInfo | None = None


def trusted_code_run(result: RunResult, steps: int) -> RunResult:
    """A learner's code run as grading may use it: its data in the expected shape (else the
    run counts as crashed), at most one step more than the check takes, a bounded number of
    bounded warnings and messages."""
    warnings = [
        replace(w, message=w.message[:MAX_MESSAGE_CHARS]) for w in result.warnings[:MAX_WARNINGS]
    ]
    error = result.error and replace(
        result.error,
        message=result.error.message[:MAX_MESSAGE_CHARS],
        traceback=result.error.traceback[-MAX_MESSAGE_CHARS:],
    )
    data = result.data
    if data is not None:
        trajectory = data.get("trajectory")
        try:
            parsed = CodeRunData.model_validate(
                {
                    **data,
                    "trajectory": trajectory[: steps + 1]
                    if isinstance(trajectory, list)
                    else trajectory,
                }
            )
        except ValidationError:
            return replace(
                result,
                status=Verdict.CRASHED,
                data=None,
                error=error,
                warnings=warnings,
                detail="its report of what happened was malformed",
            )
        data = parsed.model_dump()
    return replace(result, data=data, error=error, warnings=warnings)
