"""Getting a run: from the store, or from the sandbox on someone's behalf.

Nothing here touches a session while code runs: reading what is stored and running what is
not are separate calls, so a caller ends its read (holding no connection) in between.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.bank.schema import CodeQuestion, OutputQuestion, StepsQuestion
from app.checking import runstore
from app.checking.jobs import code_job, steps_job, variant_job
from app.checking.runstore import CACHEABLE, Run
from app.errors import Busy
from app.sandbox.client import Sandbox, SandboxUnavailable, Ticket
from app.sandbox.protocol import CodeData, DataT, JobBase, RunResult, SnippetJob
from app.sandbox.scheduler import SYSTEM, Owner


class Runs:
    """Runs of questions and answers: stored ones (`use_cache`: output questions' keys may be
    read from the store, else every answer runs its variant), and new ones from the sandbox,
    made as `owner`'s (the sandbox shares its slots fairly between owners)."""

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

    def for_owner(self, owner: Owner) -> Runs:
        """The same runs, made on `owner`'s behalf."""
        return Runs(self.sandbox, use_cache=self.use_cache, timeout_s=self.timeout_s, owner=owner)

    # --- jobs -------------------------------------------------------------------------------

    def variant_job(self, question: OutputQuestion, variant: int) -> SnippetJob:
        """The job of a variant of an output question."""
        return variant_job(question, variant, timeout_s=self.timeout_s)

    # --- stored -----------------------------------------------------------------------------

    def stored_key(self, session: Session, job: SnippetJob) -> Run[None] | None:
        """The stored run behind an output question's key, when keys may be read from the
        store (caching on, or nothing could run anyway)."""
        if not self.use_cache and self.sandbox is not None:
            return None
        return runstore.find(session, job)

    def stored_reference(self, session: Session, question: CodeQuestion) -> Run[CodeData] | None:
        """The reference solution's stored run, if there is one."""
        return runstore.find(
            session, code_job(question, question.reference, timeout_s=self.timeout_s)
        )

    def stored_steps(self, session: Session, question: StepsQuestion) -> Run[CodeData] | None:
        """A step-through scenario's stored run, if there is one."""
        return runstore.find(session, steps_job(question, timeout_s=self.timeout_s))

    # --- new runs (no session: the caller holds no connection meanwhile) -----------------

    def submit(self, job: JobBase[DataT]) -> Ticket[DataT]:
        """Start a run; Busy or TooManyRequests if the sandbox cannot take it now."""
        if self.sandbox is None:
            raise SandboxUnavailable.switched_off()
        return self.sandbox.submit(job, self.owner)

    def run(self, job: JobBase[DataT]) -> RunResult[DataT]:
        """Run a job and wait for its result."""
        if self.sandbox is None:
            raise SandboxUnavailable.switched_off()
        return self.sandbox.run(job, self.owner)

    def run_for_key(self, job: JobBase[DataT], *, what: str = "The code") -> Run[DataT]:
        """Run a job whose result is a key (it passed when it was checked): a run that ends
        otherwise now is the load's fault, not the question's — Busy, try again."""
        result = self.run(job)
        if result.status not in CACHEABLE:
            raise Busy(
                f"{what} could not be run just now ({result.sentence} {result.detail}".rstrip()
                + ") Try again in a moment.",
                retry_after=2,
            )
        return runstore.run_of(job, result)

    def run_reference(self, question: CodeQuestion) -> Run[CodeData]:
        """Run a code question's reference solution now."""
        job = code_job(question, question.reference, timeout_s=self.timeout_s)
        return self.run_for_key(job, what="The reference solution")

    def run_steps(self, question: StepsQuestion) -> Run[CodeData]:
        """Run a step-through scenario now."""
        job = steps_job(question, timeout_s=self.timeout_s)
        return self.run_for_key(job, what="The scenario")

    def learner(self, question: CodeQuestion, code: str) -> RunResult[CodeData]:
        """Run a learner's code for a code question (never stored: answers vary). What it
        may claim of itself was bounded where it crossed (app.sandbox.protocol)."""
        return self.run(code_job(question, code, timeout_s=self.timeout_s))
