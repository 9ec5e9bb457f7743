"""Answering a question: the page around it, variants, hints, grading, attempts, results."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import Field, TypeAdapter
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import grading
from app.bank import service as bank
from app.bank import variants
from app.bank.schema import ChoiceQuestion, CodeQuestion, OutputQuestion, Question
from app.bank.service import LiveQuestion
from app.db import begin_write
from app.errors import Conflict, Invalid, NotFound
from app.learning import review
from app.learning.learners import Visitor, admit, ensure_learner
from app.learning.progress import QuestionState, question_states
from app.models import (
    Attempt,
    Exam,
    ExamItem,
    Learner,
    LearnerVariant,
    QuestionVersion,
    Reveal,
    utcnow,
)
from app.runs import QuestionRuns, Run, store, stored
from app.sandbox.client import SandboxUnavailable
from app.sandbox.protocol import RunResult
from app.traces.charts import Chart, comparison_chart

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


def other_variant(session: Session, *, visitor: Visitor, question: LiveQuestion) -> int:
    """A randomly chosen variant other than the visitor's current one (0 if there is none)."""
    total = variant_count(question.question)
    if total == 1:
        return 0
    current = current_variant(session, visitor=visitor, question=question)
    return (current + 1 + secrets.randbelow(total - 1)) % total


def next_variant(session: Session, *, visitor: Visitor, question: LiveQuestion) -> int:
    """Move the visitor to a different, randomly chosen variant ("try another variant")."""
    if variant_count(question.question) == 1:
        raise Invalid("This question has only one variant.", field="variant")
    refuse_during_test(session, learner=visitor.learner, question_id=question.id)
    index = other_variant(session, visitor=visitor, question=question)
    begin_write(session)
    _set_variant(session, ensure_learner(session, visitor), question.id, index)
    session.commit()
    return index


def review_variant(session: Session, *, visitor: Visitor, question: LiveQuestion) -> int:
    """The variant a review asks: a fresh one where the question has others."""
    if variant_count(question.question) == 1:
        return 0
    return next_variant(session, visitor=visitor, question=question)


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


def _reveals(
    session: Session, learner_id: int, question_id: str, *, since: datetime | None = None
) -> set[str]:
    """What this learner has been shown of a question ("hint", "solution"), ever or since."""
    query = select(Reveal.kind).where(
        Reveal.learner_id == learner_id, Reveal.question_id == question_id
    )
    if since is not None:
        query = query.where(Reveal.created_at >= since)
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


def open_test_with(session: Session, *, learner: Learner | None, question_id: str) -> int | None:
    """The id of the learner's unfinished test that has this question, if there is one."""
    if learner is None:
        return None
    query = (
        select(ExamItem.exam_id)
        .join(Exam, Exam.id == ExamItem.exam_id)
        .where(
            Exam.learner_id == learner.id,
            Exam.finished_at.is_(None),
            ExamItem.question_id == question_id,
        )
        .limit(1)
    )
    exam_id: int | None = session.scalar(query)
    return exam_id


def refuse_during_test(session: Session, *, learner: Learner | None, question_id: str) -> None:
    """Conflict if the question is in the learner's unfinished test: no feedback, hint or
    other variant of it until the test is done."""
    if open_test_with(session, learner=learner, question_id=question_id) is not None:
        raise Conflict(
            "This question is in your unfinished test: finish the test first, then practise it."
        )


def record_reveal(session: Session, *, learner: Learner, question: LiveQuestion) -> None:
    """Record that the learner was shown the question's solution (not by answering it) —
    inside a write transaction."""
    _reveal(session, learner, question, SOLUTION)


def reveal_hint(session: Session, *, visitor: Visitor, question: LiveQuestion) -> str:
    """Record that the learner asked for the hint, and return it (for their variant)."""
    hint = shown(
        question.question, current_variant(session, visitor=visitor, question=question)
    ).hint
    if hint is None:
        raise NotFound(f"Question {question.id!r} has no hint.")
    refuse_during_test(session, learner=visitor.learner, question_id=question.id)
    begin_write(session)
    learner = ensure_learner(session, visitor)
    if HINT not in _reveals(session, learner.id, question.id):
        _reveal(session, learner, question, HINT)
    session.commit()
    return hint


def hint_revealed(session: Session, *, learner: Learner | None, question_id: str) -> bool:
    """Whether this learner has asked for the question's hint."""
    return learner is not None and HINT in _reveals(session, learner.id, question_id)


@dataclass(frozen=True)
class Graded:
    """A grade and what came with it: the variant answered, the run behind the key (shown
    with the solution), and a run made just now (to store)."""

    grade: grading.Grade
    variant: int | None = None
    params: dict[str, Any] | None = None
    run: RunResult | None = None
    new_run: Run | None = None


def _grade_output(
    session: Session,
    visitor: Visitor,
    question: LiveQuestion,
    q: OutputQuestion,
    answer: object,
    runs: QuestionRuns,
    variant: int | None,
) -> Graded:
    index = (
        current_variant(session, visitor=visitor, question=question)
        if variant is None
        else check_variant(q, variant)
    )
    text = grading.parse_output_answer(answer)
    run, fresh = runs.lookup(session, q, index), False
    if run is None:
        admit(session, visitor)  # a guest's code runs under their own share
        session.commit()  # end the read: no connection or snapshot is held while code runs
        run, fresh = runs.execute(q, index), True
    params = variants.variant(q, index) if q.params else {}
    grade = grading.grade_output(q, run.result, text, variant=index, params=params, run_key=run.key)
    return Graded(grade, index, params, run.result, run if fresh else None)


def _grade_code(
    session: Session, visitor: Visitor, q: CodeQuestion, answer: object, runs: QuestionRuns
) -> Graded:
    code = grading.parse_code_answer(answer)
    reference, fresh = runs.reference(session, q)
    admit(session, visitor)  # a guest's code runs under their own share
    session.commit()  # end the read: no connection or snapshot is held while code runs
    learner_run = runs.learner(q, code)
    grade = grading.grade_code(q, reference.result, learner_run, code, reference_key=reference.key)
    return Graded(grade, run=reference.result, new_run=reference if fresh else None)


def grade_answer(
    session: Session,
    *,
    visitor: Visitor,
    question: LiveQuestion,
    answer: object,
    runs: QuestionRuns | None,
    variant: int | None = None,
) -> Graded:
    """Grade an answer without storing anything. Output and code questions are graded by
    runs in the sandbox (stored, or made now: call this before a write transaction, so that
    the write lock is never held while code runs)."""
    q = question.question
    if isinstance(q, ChoiceQuestion):
        return Graded(grading.grade(q, answer), variant=check_variant(q, variant or 0))
    if runs is None:
        raise SandboxUnavailable("This question cannot be graded here right now.")
    if isinstance(q, OutputQuestion):
        return _grade_output(session, visitor, question, q, answer, runs, variant)
    return _grade_code(session, visitor, q, answer, runs)


def store_attempt(
    session: Session,
    *,
    learner: Learner,
    question: LiveQuestion,
    graded: Graded,
    time_taken_ms: int | None,
    time_measured: bool,
) -> Attempt:
    """Store a graded attempt, review the question's card with what happened, and mark the
    solution as shown — inside a write transaction. A time the server did not measure
    (`time_measured` false: the client said so) may make the rating harder, never easier."""
    q, now = question.question, utcnow()
    if time_taken_ms is not None:
        time_taken_ms = max(0, min(time_taken_ms, MAX_TIME_TAKEN_MS))
    if graded.new_run is not None:
        store(session, graded.new_run)
    if isinstance(q, OutputQuestion) and graded.variant is not None:
        _set_variant(session, learner, question.id, graded.variant)
    seen = _reveals(session, learner.id, question.id)
    recent = _reveals(session, learner.id, question.id, since=now - review.ASSIST_WINDOW)
    rating = review.rate(
        question=q,
        correct=graded.grade.correct,
        # A hint, once asked for, shows on every later visit; a solution fades.
        assisted=HINT in seen or SOLUTION in recent,
        time_taken_ms=time_taken_ms,
    )
    if not time_measured and rating is review.Rating.Easy:
        rating = review.Rating.Good
    attempt = Attempt(
        learner_id=learner.id,
        question_id=question.id,
        question_version=question.version,
        answer=graded.grade.answer,
        correct=graded.grade.correct,
        score=graded.grade.score,
        feedback=graded.grade.feedback.model_dump(mode="json"),
        hint_seen=HINT in seen,
        solution_seen=SOLUTION in seen,
        time_taken_ms=time_taken_ms,
        variant_index=graded.variant if isinstance(q, OutputQuestion) else None,
        variant=graded.params,
        rating=int(rating),
        created_at=now,
    )
    session.add(attempt)
    review.schedule(session, learner=learner, question_id=question.id, rating=rating, at=now)
    _reveal(session, learner, question, SOLUTION)
    session.flush()
    return attempt


def record_attempt(
    session: Session,
    *,
    visitor: Visitor,
    question: LiveQuestion,
    answer: object,
    runs: QuestionRuns | None = None,
    variant: int | None = None,
    version: int | None = None,
    time_taken_ms: int | None = None,
    time_measured: bool = False,
) -> Recorded:
    """Grade an answer and store the attempt; the learner is then shown the solution.
    `version`: the version the learner was shown, when it is not the current one any more
    (an instructor saved a new one meanwhile) — the answer is graded against what they saw.
    `time_measured`: the time is the server's own (from a signed page), not the client's."""
    refuse_during_test(session, learner=visitor.learner, question_id=question.id)
    if version is not None and version != question.version:
        question = _recently_replaced(session, question, version)
    graded = grade_answer(
        session, visitor=visitor, question=question, answer=answer, runs=runs, variant=variant
    )
    begin_write(session)
    learner = ensure_learner(session, visitor)
    attempt = store_attempt(
        session,
        learner=learner,
        question=question,
        graded=graded,
        time_taken_ms=time_taken_ms,
        time_measured=time_measured,
    )
    session.commit()
    return Recorded(
        attempt=attempt,
        answered=shown(question.question, graded.variant or 0),
        feedback=graded.grade.feedback,
        run=graded.run,
    )


SHOWN_VERSION_GRACE = timedelta(days=1)  # as long as a page's signed "shown at" holds


def _recently_replaced(session: Session, question: LiveQuestion, version: int) -> LiveQuestion:
    """The version a learner says they were shown — if it was current within the last
    SHOWN_VERSION_GRACE (a page opened before an instructor saved). An older one is not
    theirs to pick: its key may be one an instructor has since corrected."""
    successor = session.get(QuestionVersion, (question.id, version + 1))
    if version > question.version or successor is None:
        raise Invalid(f"There is no version {version} of this question.", field="version")
    if successor.created_at < utcnow() - SHOWN_VERSION_GRACE:
        raise Conflict(
            "This question has changed since that version: reload it and answer the current one.",
            field="version",
        )
    return bank.get_pinned_or_raise(session, question.id, version)


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
    prefill: str = ""  # code questions: the answer to start from (a previous attempt's)
    in_test: int | None = None  # the learner's unfinished test that has this question


def question_page(
    session: Session, *, question: LiveQuestion, visitor: Visitor, from_attempt: int | None = None
) -> QuestionPage:
    """The question page for this visitor (a code question's editor may start from one of
    their own earlier attempts: `from_attempt`)."""
    learner = visitor.learner
    prefill = ""
    if from_attempt is not None and isinstance(question.question, CodeQuestion):
        earlier = get_attempt_or_raise(
            session, from_attempt, learner=learner, question_id=question.id
        )
        prefill = earlier.answer if isinstance(earlier.answer, str) else ""
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
        prefill=prefill,
        in_test=open_test_with(session, learner=learner, question_id=question.id),
    )


@dataclass(frozen=True)
class Recorded:
    """A stored attempt with what grading it produced: the question as answered (version and
    variant), the feedback, for output questions the run behind the key, and for code
    questions the chart of the learner's LR over the target's."""

    attempt: Attempt
    answered: Question
    feedback: grading.Feedback
    run: RunResult | None
    chart: Chart | None = None


@dataclass(frozen=True)
class AttemptResult:
    """An attempt as its result page shows it: the attempt with its grading, the question
    page around it, and how many reviews are due (to offer the next one)."""

    attempt: Attempt
    answered: Question
    feedback: grading.Feedback
    run: RunResult | None
    chart: Chart | None
    page: QuestionPage
    due: list[review.DueReview]


def attempt_details(session: Session, attempt: Attempt) -> Recorded:
    """A stored attempt with the question as answered, its feedback and its run."""
    version = bank.get_version_or_raise(session, attempt.question_id, attempt.question_version)
    feedback = FEEDBACK_ADAPTER.validate_python(attempt.feedback)
    if isinstance(feedback, grading.ChoiceFeedback):
        return Recorded(attempt, version, feedback, None)
    key = (
        feedback.run_key if isinstance(feedback, grading.OutputFeedback) else feedback.reference_key
    )
    run = stored(session, key)
    if run is None:
        raise NotFound("The run behind this attempt is no longer stored.")
    if isinstance(feedback, grading.OutputFeedback):
        return Recorded(attempt, shown(version, feedback.variant), feedback, run)
    chart = None
    if feedback.learner_lrs and isinstance(version, CodeQuestion):
        unit = "epoch" if version.check.steps_per_epoch == 1 else "step"
        chart = comparison_chart(
            feedback.target_lrs, feedback.learner_lrs, feedback.divergence, unit=unit
        )
    return Recorded(attempt, version, feedback, run, chart)


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
        chart=details.chart,
        page=question_page(session, question=question, visitor=visitor),
        due=review.due_reviews(session, learner=visitor.learner),
    )
