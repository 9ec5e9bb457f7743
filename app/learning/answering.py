"""Answering a question: the page around it, variants, hints, grading, attempts, results."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field, TypeAdapter
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import grading
from app.bank import service as bank
from app.bank import variants
from app.bank.schema import OutputQuestion, Question
from app.bank.service import LiveQuestion
from app.db import begin_write
from app.errors import Invalid, NotFound
from app.learning.learners import Visitor, ensure_learner
from app.learning.progress import QuestionState, question_states
from app.models import Attempt, Learner, LearnerVariant, Reveal, utcnow
from app.runs import QuestionRuns, Run, store, stored
from app.sandbox.client import SandboxUnavailable
from app.sandbox.protocol import RunResult

HINT = "hint"
SOLUTION = "solution"
MAX_TIME_TAKEN_MS = 24 * 3600 * 1000  # longer than a day is not "time taken", it is a tab left open

FEEDBACK_ADAPTER: TypeAdapter[grading.Feedback] = TypeAdapter(
    Annotated[grading.Feedback, Field(discriminator="kind")]
)


# --- variants ---------------------------------------------------------------------------------


def variant_count(question: Question) -> int:
    """How many variants a question has (choice questions: one)."""
    return variants.count(question) if isinstance(question, OutputQuestion) else 1


def current_variant(session: Session, *, visitor: Visitor, question: LiveQuestion) -> int:
    """The variant this visitor is on: the one they last answered or asked for, else one
    seeded by their token and the question."""
    learner = visitor.learner
    total = variant_count(question.question)
    if total == 1:
        return 0
    if learner is not None:
        row = session.get(LearnerVariant, (learner.id, question.id))
        if row is not None and row.variant_index < total:
            return row.variant_index
    return variants.pick(visitor.token, question.id, total)


def _set_variant(session: Session, learner: Learner, question_id: str, index: int) -> None:
    row = session.get(LearnerVariant, (learner.id, question_id))
    if row is not None and row.variant_index == index:
        return
    if row is None:
        session.add(
            LearnerVariant(learner_id=learner.id, question_id=question_id, variant_index=index)
        )
    else:
        row.variant_index = index
        row.updated_at = utcnow()


def next_variant(session: Session, *, visitor: Visitor, question: LiveQuestion) -> int:
    """Move the visitor to a different, randomly chosen variant ("try another variant")."""
    total = variant_count(question.question)
    if total == 1:
        raise Invalid("This question has only one variant.", field="variant")
    current = current_variant(session, visitor=visitor, question=question)
    index = (current + 1 + secrets.randbelow(total - 1)) % total
    begin_write(session)
    _set_variant(session, ensure_learner(session, visitor), question.id, index)
    session.commit()
    return index


def check_variant(question: Question, variant: int) -> int:
    """A variant index the question has, or Invalid."""
    total = variant_count(question)
    if not 0 <= variant < total:
        raise Invalid(f"variant must be 0–{total - 1}, got {variant}", field="variant")
    return variant


def shown(question: Question, variant: int) -> Question:
    """The question as a learner sees this variant."""
    return variants.render(question, variant) if isinstance(question, OutputQuestion) else question


# --- hints and attempts -------------------------------------------------------------------------


def _reveals(session: Session, learner_id: int, question_id: str) -> set[str]:
    """What this learner has been shown of a question: "hint", "solution"."""
    query = select(Reveal.kind).where(
        Reveal.learner_id == learner_id, Reveal.question_id == question_id
    )
    return set(session.scalars(query.distinct()))


def _reveal(session: Session, learner: Learner, question: LiveQuestion, kind: str) -> None:
    session.add(
        Reveal(
            learner_id=learner.id,
            question_id=question.id,
            question_version=question.version,
            kind=kind,
        )
    )


def reveal_hint(session: Session, *, visitor: Visitor, question: LiveQuestion) -> str:
    """Record that the learner asked for the hint, and return it (for their variant)."""
    hint = shown(
        question.question, current_variant(session, visitor=visitor, question=question)
    ).hint
    if hint is None:
        raise NotFound(f"Question {question.id!r} has no hint.")
    begin_write(session)
    learner = ensure_learner(session, visitor)
    if HINT not in _reveals(session, learner.id, question.id):
        _reveal(session, learner, question, HINT)
    session.commit()
    return hint


def hint_revealed(session: Session, *, learner: Learner | None, question_id: str) -> bool:
    """Whether this learner has asked for the question's hint."""
    return learner is not None and HINT in _reveals(session, learner.id, question_id)


def record_attempt(
    session: Session,
    *,
    visitor: Visitor,
    question: LiveQuestion,
    answer: object,
    runs: QuestionRuns | None = None,
    variant: int | None = None,
    time_taken_ms: int | None = None,
) -> Recorded:
    """Grade an answer and store the attempt; the learner is then shown the solution.

    An output question is graded against the run of the variant answered (stored, or run
    now in the sandbox — before the write transaction, so the lock is never held for it).
    """
    q = question.question
    run: Run | None = None
    fresh = False
    if isinstance(q, OutputQuestion):
        if runs is None:
            raise SandboxUnavailable("Output questions cannot be graded here right now.")
        index = (
            current_variant(session, visitor=visitor, question=question)
            if variant is None
            else check_variant(q, variant)
        )
        text = grading.parse_output_answer(answer)
        run = runs.lookup(session, q, index)
        if run is None:
            session.commit()  # end the read: no connection or snapshot is held while code runs
            run, fresh = runs.execute(q, index), True
        params = variants.variant(q, index) if q.params else {}
        result = grading.grade_output(
            q, run.result, text, variant=index, params=params, run_key=run.key
        )
    else:
        index = check_variant(q, variant or 0)
        params = {}
        result = grading.grade(q, answer)
    if time_taken_ms is not None:
        time_taken_ms = max(0, min(time_taken_ms, MAX_TIME_TAKEN_MS))

    begin_write(session)
    learner = ensure_learner(session, visitor)
    if fresh and run is not None:
        store(session, run)
    if run is not None:
        _set_variant(session, learner, question.id, index)
    seen = _reveals(session, learner.id, question.id)
    attempt = Attempt(
        learner_id=learner.id,
        question_id=question.id,
        question_version=question.version,
        answer=result.answer,
        correct=result.correct,
        score=result.score,
        feedback=result.feedback.model_dump(mode="json"),
        hint_seen=HINT in seen,
        solution_seen=SOLUTION in seen,
        time_taken_ms=time_taken_ms,
        variant_index=index if run is not None else None,
        variant=params if run is not None else None,
    )
    session.add(attempt)
    _reveal(session, learner, question, SOLUTION)
    session.commit()
    return Recorded(
        attempt=attempt,
        answered=shown(q, index),
        feedback=result.feedback,
        run=run.result if run is not None else None,
    )


def get_attempt_or_raise(
    session: Session, attempt_id: int, *, learner: Learner | None, question_id: str | None = None
) -> Attempt:
    """An attempt of this learner's; someone else's attempt is NotFound, as if it did not exist."""
    attempt = session.get(Attempt, attempt_id)
    if (
        attempt is None
        or learner is None
        or attempt.learner_id != learner.id
        or (question_id is not None and attempt.question_id != question_id)
    ):
        raise NotFound(f"There is no attempt {attempt_id} of yours here.")
    return attempt


# --- pages ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuestionPage:
    """Everything the question page shows: the question as this learner's variant shows it,
    their hint (if asked for), their state, and where to go next."""

    question: LiveQuestion
    shown: Question
    variant: int
    variant_count: int
    pattern_title: str
    hint: str | None
    state: QuestionState | None
    next_question: LiveQuestion | None
    position: int
    total: int


def question_page(session: Session, *, question: LiveQuestion, visitor: Visitor) -> QuestionPage:
    """The question page for this visitor."""
    learner = visitor.learner
    pattern = bank.get_pattern_or_raise(session, question.pattern_slug)
    siblings = bank.list_questions(session, pattern)
    index = next(i for i, sibling in enumerate(siblings) if sibling.id == question.id)
    variant = current_variant(session, visitor=visitor, question=question)
    displayed = shown(question.question, variant)
    revealed = hint_revealed(session, learner=learner, question_id=question.id)
    return QuestionPage(
        question=question,
        shown=displayed,
        variant=variant,
        variant_count=variant_count(question.question),
        pattern_title=pattern.file.title,
        hint=displayed.hint if revealed else None,
        state=question_states(session, learner=learner).get(question.id),
        next_question=siblings[index + 1] if index + 1 < len(siblings) else None,
        position=index + 1,
        total=len(siblings),
    )


@dataclass(frozen=True)
class Recorded:
    """A stored attempt with what grading it produced: the question as answered (version and
    variant), the feedback, and for output questions the run behind the key."""

    attempt: Attempt
    answered: Question
    feedback: grading.Feedback
    run: RunResult | None


@dataclass(frozen=True)
class AttemptResult:
    """An attempt as its result page shows it: the version (and variant) answered, what the
    learner was told, and for output questions the run behind the key."""

    attempt: Attempt
    answered: Question
    feedback: grading.Feedback
    run: RunResult | None
    page: QuestionPage


def attempt_details(session: Session, attempt: Attempt) -> Recorded:
    """A stored attempt with the question as answered, its feedback and its run."""
    version = bank.get_version_or_raise(session, attempt.question_id, attempt.question_version)
    feedback = FEEDBACK_ADAPTER.validate_python(attempt.feedback)
    if isinstance(feedback, grading.OutputFeedback):
        run = stored(session, feedback.run_key)
        if run is None:
            raise NotFound("The run behind this attempt is no longer stored.")
        return Recorded(attempt, shown(version, feedback.variant), feedback, run)
    return Recorded(attempt, version, feedback, None)


def attempt_result(
    session: Session, *, attempt_id: int, question: LiveQuestion, visitor: Visitor
) -> AttemptResult:
    """One of this learner's attempts at `question`, with everything its page shows."""
    attempt = get_attempt_or_raise(
        session, attempt_id, learner=visitor.learner, question_id=question.id
    )
    details = attempt_details(session, attempt)
    return AttemptResult(
        attempt=attempt,
        answered=details.answered,
        feedback=details.feedback,
        run=details.run,
        page=question_page(session, question=question, visitor=visitor),
    )
