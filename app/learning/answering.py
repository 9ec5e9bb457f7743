"""Answering a question: the page around it, variants, hints, grading, attempts, results."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import Field, TypeAdapter
from sqlalchemy import Integer, Select, String, bindparam, func, insert, or_, select
from sqlalchemy.orm import Session, aliased

from app.bank import service as bank
from app.bank import variants
from app.bank.schema import ChoiceQuestion, CodeQuestion, OutputQuestion, Question, StepsQuestion
from app.bank.service import LiveQuestion
from app.checking import grading, runstore
from app.checking.runs import Runs
from app.checking.runstore import Run
from app.db import begin_write, end_read
from app.errors import Conflict, Invalid, NotFound
from app.learning import review
from app.learning.learners import Visitor, admit, ensure_learner
from app.learning.progress import QuestionState, question_states
from app.models import (
    REVEAL_HINT,
    REVEAL_SOLUTION,
    Attempt,
    Exam,
    ExamItem,
    Learner,
    LearnerVariant,
    QuestionVersion,
    Reveal,
    ReviewCard,
    utcnow,
)
from app.sandbox.client import SandboxUnavailable
from app.sandbox.protocol import CodeData, RunResult, SnippetJob
from app.traces.charts import Chart, comparison_chart, prediction_chart

HINT = REVEAL_HINT
SOLUTION = REVEAL_SOLUTION
# Try, then learn: a wrong answer says what is wrong, not the key, and the learner tries
# again. The key and the worked solution come when they ask — or after this many wrong
# tries in a row at the same variant, when trying again has stopped teaching.
TRIES_BEFORE_SOLUTION = 3
MAX_TIME_TAKEN_MS = 24 * 3600 * 1000  # longer than a day is not "time taken", it is a tab left open

FEEDBACK_ADAPTER: TypeAdapter[grading.Feedback] = TypeAdapter(
    Annotated[grading.Feedback, Field(discriminator="kind")]
)


# --- where a learner stands with a question ---------------------------------------------------


@dataclass(frozen=True)
class Standing:
    """Where a learner stands with one question, read in one query: the unfinished test that
    has it, the variant they are on (the one they last asked for or answered), the help they
    were shown (the hint; the solution — revealed, or shown with a right answer — and when
    last), and their review card as stored."""

    open_test: int | None = None
    variant: int | None = None
    hint_seen: bool = False
    solution_seen_at: datetime | None = None
    card: dict[str, Any] | None = None
    reviews: int | None = None
    answered_variant: int | None = None  # the variant of their latest attempt
    wrong_streak: int = 0  # their latest wrong tries in a row (see `wrong_in_a_row`)

    def solution_seen_since(self, moment: datetime) -> bool:
        """Whether the solution was shown at or after `moment`."""
        return self.solution_seen_at is not None and self.solution_seen_at >= moment


NEWCOMER = Standing()  # a visitor without a learner row: no test, no variant, no help seen


def _standing_query() -> Select[Any]:
    learner = bindparam("learner_id", type_=Integer)
    question = bindparam("question_id", type_=String)
    mine_v = (LearnerVariant.learner_id == learner, LearnerVariant.question_id == question)
    mine_r = (Reveal.learner_id == learner, Reveal.question_id == question)
    mine_a = (Attempt.learner_id == learner, Attempt.question_id == question)
    mine_c = (ReviewCard.learner_id == learner, ReviewCard.question_id == question)
    latest_attempt = select(Attempt.id).where(*mine_a).order_by(Attempt.id.desc()).limit(1)
    answered = (
        select(Attempt.variant_index)
        .where(Attempt.id == latest_attempt.scalar_subquery())
        .scalar_subquery()
    )
    # The wrong tries in a row at the latest variant: the attempts since the last one that
    # was right, had its solution shown, or was at another variant.
    past, since = aliased(Attempt, name="past"), aliased(Attempt, name="since")
    shown_with = select(Reveal.id).where(Reveal.attempt_id == past.id, Reveal.kind == SOLUTION)
    last_break = (
        select(func.max(past.id))
        .where(past.learner_id == learner, past.question_id == question)
        .where(
            or_(past.correct, shown_with.exists(), past.variant_index.is_distinct_from(answered))
        )
        .scalar_subquery()
    )
    return select(
        select(ExamItem.exam_id)
        .join(Exam, Exam.id == ExamItem.exam_id)
        .where(Exam.learner_id == learner, Exam.finished_at.is_(None))
        .where(ExamItem.question_id == question)
        .limit(1)
        .scalar_subquery()
        .label("open_test"),
        select(LearnerVariant.variant_index).where(*mine_v).scalar_subquery().label("asked"),
        select(LearnerVariant.updated_at).where(*mine_v).scalar_subquery().label("asked_at"),
        answered.label("answered"),
        select(Attempt.created_at)
        .where(Attempt.id == latest_attempt.scalar_subquery())
        .scalar_subquery()
        .label("answered_at"),
        select(func.max(Attempt.created_at))
        .where(*mine_a, Attempt.correct)
        .scalar_subquery()
        .label("solved_at"),
        select(func.max(Reveal.created_at))
        .where(*mine_r, Reveal.kind == HINT)
        .scalar_subquery()
        .label("hint_at"),
        select(func.max(Reveal.created_at))
        .where(*mine_r, Reveal.kind == SOLUTION)
        .scalar_subquery()
        .label("solution_at"),
        select(ReviewCard.card).where(*mine_c).scalar_subquery().label("card"),
        select(ReviewCard.reviews).where(*mine_c).scalar_subquery().label("reviews"),
        select(func.count(since.id))
        .where(since.learner_id == learner, since.question_id == question)
        .where(since.id > func.coalesce(last_break, 0))
        .scalar_subquery()
        .label("wrong_streak"),
    )


_STANDING = _standing_query()  # built once: every answer and question page binds two values


def standing(session: Session, *, learner: Learner | None, question_id: str) -> Standing:
    """Where `learner` stands with a question (one statement; none for a newcomer)."""
    if learner is None:
        return NEWCOMER
    row = session.execute(_STANDING, {"learner_id": learner.id, "question_id": question_id}).one()
    variant = row.asked
    if row.answered is not None and (row.asked_at is None or row.answered_at >= row.asked_at):
        variant = row.answered
    shown = [at for at in (row.solution_at, row.solved_at) if at is not None]
    return Standing(
        open_test=row.open_test,
        variant=variant,
        hint_seen=row.hint_at is not None,
        solution_seen_at=max(shown) if shown else None,
        card=row.card,
        reviews=row.reviews,
        answered_variant=row.answered,
        wrong_streak=row.wrong_streak,
    )


# --- variants ---------------------------------------------------------------------------------


def variant_count(question: Question) -> int:
    """How many variants a question has (choice questions: one)."""
    return question.variant_count if isinstance(question, OutputQuestion) else 1


def variant_for(visitor: Visitor, question: LiveQuestion, seen: Standing) -> int:
    """The variant this visitor is on: the one they last answered or asked for, else one
    seeded by their token and the question."""
    total = variant_count(question.question)
    if total == 1:
        return 0
    if seen.variant is not None and seen.variant < total:
        return seen.variant
    return variants.pick(visitor.token, question.id, total)


def current_variant(session: Session, *, visitor: Visitor, question: LiveQuestion) -> int:
    """The variant this visitor is on (see `variant_for`)."""
    if variant_count(question.question) == 1:
        return 0
    seen = standing(session, learner=visitor.learner, question_id=question.id)
    return variant_for(visitor, question, seen)


def _set_variant(session: Session, learner: Learner, question_id: str, index: int) -> None:
    row = session.get(LearnerVariant, (learner.id, question_id))
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
    total = variant_count(question.question)
    if total == 1:
        raise Invalid("This question has only one variant.", field="variant")
    seen = standing(session, learner=visitor.learner, question_id=question.id)
    _refuse_during_test(seen)
    current = variant_for(visitor, question, seen)
    index = (current + 1 + secrets.randbelow(total - 1)) % total
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
        which = "0, its only one" if total == 1 else f"0–{total - 1}"
        raise Invalid(f"variant must be {which}, got {variant}", field="variant")
    return variant


def shown(question: Question, variant: int) -> Question:
    """The question as a learner sees this variant."""
    return variants.render(question, variant) if isinstance(question, OutputQuestion) else question


# --- hints and attempts -------------------------------------------------------------------------


def _reveal(
    session: Session,
    learner: Learner,
    question: LiveQuestion,
    kind: str,
    attempt_id: int | None = None,
) -> None:
    session.add(
        Reveal(
            learner_id=learner.id,
            question_id=question.id,
            question_version=question.version,
            kind=kind,
            attempt_id=attempt_id,
        )
    )


def _refuse_during_test(seen: Standing) -> None:
    if seen.open_test is not None:
        raise Conflict(
            "This question is in your unfinished test: finish the test first, then practise it."
        )


def record_reveal(
    session: Session, *, learner: Learner, question: LiveQuestion, attempt: Attempt | None = None
) -> None:
    """Record that the learner was shown the question's solution — with one of their wrong
    attempts, or without answering — inside a write transaction."""
    _reveal(session, learner, question, SOLUTION, attempt.id if attempt else None)


def reveal_hint(session: Session, *, visitor: Visitor, question: LiveQuestion) -> str:
    """Record that the learner asked for the hint, and return it (for their variant)."""
    seen = standing(session, learner=visitor.learner, question_id=question.id)
    hint = shown(question.question, variant_for(visitor, question, seen)).hint
    if hint is None:
        raise NotFound(f"Question {question.id!r} has no hint.")
    _refuse_during_test(seen)
    if seen.hint_seen:
        return hint
    begin_write(session)
    _reveal(session, ensure_learner(session, visitor), question, HINT)
    session.commit()
    return hint


@dataclass(frozen=True)
class Graded:
    """A grade and what came with it: the variant answered, the run behind the key (shown
    with the solution), and a run made just now (to store)."""

    grade: grading.Grade
    variant: int | None = None
    params: dict[str, Any] | None = None
    run: RunResult[Any] | None = None
    new_run: Run[Any] | None = None


def _grade_output(
    session: Session,
    visitor: Visitor,
    q: OutputQuestion,
    answer: object,
    runs: Runs,
    variant: int,
) -> Graded:
    text = grading.parse_output_answer(answer)
    job: SnippetJob = runs.variant_job(q, variant)
    run, fresh = runs.stored_key(session, job), False
    if run is None:
        admit(session, visitor)  # a guest's code runs under their own share
        end_read(session)  # no connection or snapshot is held while code runs
        run, fresh = runs.run_for_key(job), True
    params = variants.variant(q, variant) if q.params else {}
    grade = grading.grade_output(
        q, run.result, text, variant=variant, params=params, run_key=run.key
    )
    return Graded(grade, variant, params, run.result, run if fresh else None)


def _grade_code(
    session: Session, visitor: Visitor, q: CodeQuestion, answer: object, runs: Runs
) -> Graded:
    code = grading.parse_code_answer(answer)
    reference = runs.stored_reference(session, q)
    admit(session, visitor)  # a guest's code runs under their own share
    end_read(session)  # no connection or snapshot is held while code runs
    fresh = reference is None
    if reference is None:
        reference = runs.run_reference(q)
    learner_run = runs.learner(q, code)
    grade = grading.grade_code(q, reference.result, learner_run, code, reference_key=reference.key)
    return Graded(grade, run=reference.result, new_run=reference if fresh else None)


def _grade_steps(
    session: Session, visitor: Visitor, q: StepsQuestion, answer: object, runs: Runs
) -> Graded:
    grading.parse_steps_answer(answer, count=q.epochs - 1)  # before anything runs
    run, fresh = runs.stored_steps(session, q), False
    if run is None:
        admit(session, visitor)  # a guest's code runs under their own share
        end_read(session)  # no connection or snapshot is held while code runs
        run, fresh = runs.run_steps(q), True
    grade = grading.grade_steps(q, run.result, answer, run_key=run.key)
    return Graded(grade, run=run.result, new_run=run if fresh else None)


def grade_answer(
    session: Session,
    *,
    visitor: Visitor,
    question: LiveQuestion,
    answer: object,
    runs: Runs | None,
    variant: int | None = None,
    seen: Standing | None = None,
) -> Graded:
    """Grade an answer without storing anything. Output and code questions are graded by
    runs in the sandbox (stored, or made now, with the session's read ended first: call
    this before the write transaction, so that the write lock is never held while code
    runs). `variant`: the one answered (default: the visitor's current one, from `seen`)."""
    q = question.question
    if isinstance(q, ChoiceQuestion):
        return Graded(grading.grade(q, answer), variant=check_variant(q, variant or 0))
    if runs is None:
        raise SandboxUnavailable("This question cannot be graded here right now.")
    if isinstance(q, OutputQuestion):
        if variant is None:
            if seen is None:
                seen = standing(session, learner=visitor.learner, question_id=question.id)
            variant = variant_for(visitor, question, seen)
        return _grade_output(session, visitor, q, answer, runs, check_variant(q, variant))
    if isinstance(q, StepsQuestion):
        return _grade_steps(session, visitor, q, answer, runs)
    return _grade_code(session, visitor, q, answer, runs)


def _rating(
    question: Question,
    graded: Graded,
    seen: Standing,
    *,
    now: datetime,
    time_taken_ms: int | None,
    time_measured: bool,
) -> review.Rating:
    """How the attempt rates its question's card (see app.learning.review). A time the
    server did not measure (the client said so) may make it harder, never easier."""
    rating = review.rate(
        question=question,
        correct=graded.grade.correct,
        # A hint, once asked for, shows on every later visit; a solution fades.
        assisted=seen.hint_seen or seen.solution_seen_since(now - review.ASSIST_WINDOW),
        time_taken_ms=time_taken_ms,
        due_step=review.in_due_step(seen.card, now),
    )
    if not time_measured and rating is review.Rating.Easy:
        return review.Rating.Good
    return rating


def _attempt_values(
    question: LiveQuestion,
    graded: Graded,
    seen: Standing,
    *,
    now: datetime,
    time_taken_ms: int | None,
    time_measured: bool,
) -> dict[str, Any]:
    """An attempt's row as it is stored (all but its learner): what was graded, the help seen
    before it, and its rating, read off what happened (see `_rating`)."""
    if time_taken_ms is not None:
        time_taken_ms = max(0, min(time_taken_ms, MAX_TIME_TAKEN_MS))
    rating = _rating(
        question.question,
        graded,
        seen,
        now=now,
        time_taken_ms=time_taken_ms,
        time_measured=time_measured,
    )
    return {
        "question_id": question.id,
        "question_version": question.version,
        "answer": graded.grade.answer,
        "correct": graded.grade.correct,
        "score": graded.grade.score,
        "feedback": graded.grade.feedback.model_dump(mode="json"),
        "hint_seen": seen.hint_seen,
        "solution_seen": seen.solution_seen_at is not None,
        "time_taken_ms": time_taken_ms,
        "variant_index": graded.variant if isinstance(question.question, OutputQuestion) else None,
        "variant": graded.params,
        "rating": int(rating),
        "created_at": now,
    }


_INSERT_ATTEMPT = insert(Attempt).returning(Attempt.id)  # built once: a row will do here
_MERGED_INTO = select(Learner.merged_into_id).where(Learner.id == bindparam("learner_id"))


def store_attempt(
    session: Session,
    *,
    learner: Learner,
    question: LiveQuestion,
    graded: Graded,
    seen: Standing,
    time_taken_ms: int | None,
    time_measured: bool,
) -> Attempt:
    """Store a graded answer as an attempt (a finished test's: it shows with its solution),
    flagged and rated with the help `seen` before it, and review the question's card as it is
    stored — inside a write transaction, where `seen` was read (see `record_attempt` for one
    answer alone, read before it)."""
    now = utcnow()
    if graded.new_run is not None:
        runstore.keep(session, graded.new_run)
    values = _attempt_values(
        question, graded, seen, now=now, time_taken_ms=time_taken_ms, time_measured=time_measured
    )
    attempt = Attempt(learner_id=learner.id, **values)
    session.add(attempt)
    rating = review.Rating(values["rating"])
    review.schedule(session, learner_id=learner.id, question_id=question.id, rating=rating, at=now)
    session.flush()
    return attempt


def record_attempt(
    session: Session,
    *,
    visitor: Visitor,
    question: LiveQuestion,
    answer: object,
    runs: Runs | None = None,
    variant: int | None = None,
    version: int | None = None,
    time_taken_ms: int | None = None,
    time_measured: bool = False,
) -> Recorded:
    """Grade an answer and store the attempt: right, its solution shows; wrong, what is wrong
    (the key and solution only at the TRIES_BEFORE_SOLUTION-th wrong try in a row).
    `version`: the version the learner was shown, when it is not the current one any more
    (an instructor saved a new one meanwhile) — the answer is graded against what they saw.
    `time_measured`: the time is the server's own (from a signed page), not the client's.

    One read (where the learner stands; the key's run, unless this process knows it), the
    grading (with the read ended first when code must run), then one write transaction: the
    learner checked afresh, the attempt, the card — as read, if nobody changed it since."""
    seen = standing(session, learner=visitor.learner, question_id=question.id)
    _refuse_during_test(seen)
    if version is not None and version != question.version:
        question = _recently_replaced(session, question, version)
    code = question.question
    if isinstance(code, CodeQuestion) and (
        reason := grading.not_yet_an_answer(code, answer if isinstance(answer, str) else "")
    ):
        raise Invalid(reason, field="answer")  # not run, not stored: not a try
    graded = grade_answer(
        session,
        visitor=visitor,
        question=question,
        answer=answer,
        runs=runs,
        variant=variant,
        seen=seen,
    )
    if reason := grading.unreadable(graded.grade.feedback):
        raise Invalid(reason, field="answer")  # not stored: a typo teaches nothing to count
    now = utcnow()

    def outcome(seen: Standing) -> tuple[dict[str, Any], review.Review]:
        values = _attempt_values(
            question,
            graded,
            seen,
            now=now,
            time_taken_ms=time_taken_ms,
            time_measured=time_measured,
        )
        return values, review.review(seen.card, seen.reviews, review.Rating(values["rating"]), now)

    values, done = outcome(seen)  # computed before the write lock is taken
    begin_write(session)
    learner_id = _learner_id_for_writing(session, visitor)
    if visitor.learner is not None and learner_id != visitor.learner.id:  # merged meanwhile
        seen = standing(session, learner=session.get(Learner, learner_id), question_id=question.id)
        values, done = outcome(seen)
    if graded.new_run is not None:
        runstore.keep(session, graded.new_run)
    values = {"learner_id": learner_id, **values}
    attempt_id = session.connection().execute(_INSERT_ATTEMPT, values).scalar_one()
    review.store_review(session, learner_id=learner_id, question_id=question.id, done=done)
    revealed, tries = graded.grade.correct, 0
    if not revealed and isinstance(question.question, StepsQuestion):
        # A step-through revealed every epoch as it was predicted: the rates it missed were
        # shown, and help the next try at it had (as a solution is).
        session.add(_solution_reveal(learner_id, question.id, question.version, attempt_id))
        revealed = True
    elif not revealed:
        same_variant = seen.answered_variant == values["variant_index"]
        tries = 1 + (seen.wrong_streak if same_variant else 0)
        if tries >= TRIES_BEFORE_SOLUTION:  # trying again has stopped teaching: show it
            session.add(_solution_reveal(learner_id, question.id, question.version, attempt_id))
            revealed = True
    session.commit()
    return Recorded(
        attempt=Attempt(id=attempt_id, **values),  # as stored; not loaded again
        answered=shown(question.question, graded.variant or 0),
        feedback=graded.grade.feedback,
        run=graded.run,
        revealed=revealed,
        tries=tries,
    )


def _solution_reveal(learner_id: int, question_id: str, version: int, attempt_id: int) -> Reveal:
    return Reveal(
        learner_id=learner_id,
        question_id=question_id,
        question_version=version,
        kind=SOLUTION,
        attempt_id=attempt_id,
    )


_IS_REVEALED = (
    select(Reveal.id)
    .where(Reveal.attempt_id == Attempt.id, Reveal.kind == SOLUTION)
    .exists()
    .label("revealed")
)
_RECENT_TRIES = (
    select(Attempt.correct, Attempt.variant_index, _IS_REVEALED)
    .where(
        Attempt.learner_id == bindparam("learner_id"),
        Attempt.question_id == bindparam("question_id"),
        Attempt.id <= bindparam("attempt_id"),
    )
    .order_by(Attempt.id.desc())
    .limit(TRIES_BEFORE_SOLUTION)
)


def wrong_in_a_row(session: Session, *, learner_id: int, question_id: str, attempt_id: int) -> int:
    """How many wrong tries in a row at one question, at the same variant, end with this
    attempt (0 if it is right): the count stops at a right answer and at an attempt whose
    solution was shown. Counted up to TRIES_BEFORE_SOLUTION, all a page needs to know."""
    rows = session.execute(
        _RECENT_TRIES,
        {"learner_id": learner_id, "question_id": question_id, "attempt_id": attempt_id},
    ).all()
    if not rows or rows[0].correct:
        return 0
    tries = 0
    for row in rows:
        if row.correct or row.variant_index != rows[0].variant_index:
            break
        if row.revealed and tries > 0:  # learnt from that one: counting starts again after it
            break
        tries += 1
    return tries


def is_revealed(session: Session, attempt: Attempt) -> bool:
    """Whether this attempt shows its key and worked solution: it was right, or its
    solution was revealed (asked for, or after too many wrong tries)."""
    if attempt.correct:
        return True
    found = session.execute(
        select(Reveal.id).where(Reveal.attempt_id == attempt.id, Reveal.kind == SOLUTION).limit(1)
    ).first()
    return found is not None


def reveal_solution(
    session: Session, *, visitor: Visitor, attempt_id: int, question_id: str | None = None
) -> Recorded:
    """Show the learner the key and worked solution of one of their wrong attempts (their
    right ones show it already), and record it: it counts as help for the answers after.
    Refused while the question is in their unfinished test."""
    attempt = get_attempt_or_raise(
        session, attempt_id, learner=visitor.learner, question_id=question_id
    )
    details = attempt_details(session, attempt)
    if details.revealed:
        return details
    _refuse_during_test(standing(session, learner=visitor.learner, question_id=attempt.question_id))
    begin_write(session)
    session.add(
        _solution_reveal(
            attempt.learner_id, attempt.question_id, attempt.question_version, attempt.id
        )
    )
    session.commit()
    return replace(details, revealed=True)


def _learner_id_for_writing(session: Session, visitor: Visitor) -> int:
    """The id of the learner an answer is stored for, checked inside the write transaction:
    a guest's new row is created now; a guest merged into an account since the request
    began answers as the account."""
    if visitor.learner is not None:
        merged_into = (
            session.connection()
            .execute(_MERGED_INTO, {"learner_id": visitor.learner.id})
            .scalar_one()
        )
        if merged_into is None:
            return visitor.learner.id
    return ensure_learner(session, visitor).id


SHOWN_VERSION_GRACE = timedelta(days=1)  # as long as a page's signed "shown at" holds


def _recently_replaced(session: Session, question: LiveQuestion, version: int) -> LiveQuestion:
    """The version a learner says they were shown — if it was current within the last
    SHOWN_VERSION_GRACE (a page opened before an instructor saved). An older one is not
    theirs to pick: its key may be one an instructor has since corrected."""
    if version > question.version:  # before asking for version + 1, which may not fit a row
        raise Invalid(f"There is no version {version} of this question.", field="version")
    successor = session.get(QuestionVersion, (question.id, version + 1))
    if successor is None:
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
    seen = standing(session, learner=learner, question_id=question.id)
    variant = variant_for(visitor, question, seen)
    displayed = shown(question.question, variant)
    return QuestionPage(
        question=question,
        shown=displayed,
        variant=variant,
        variant_count=variant_count(question.question),
        pattern_title=pattern.file.title,
        hint=displayed.hint if seen.hint_seen else None,
        state=question_states(session, learner=learner).get(question.id),
        next_question=siblings[index + 1] if index + 1 < len(siblings) else None,
        position=index + 1,
        total=len(siblings),
        prefill=prefill,
        in_test=seen.open_test,
    )


@dataclass(frozen=True)
class Recorded:
    """A stored attempt with what grading it produced: the question as answered (version and
    variant), the feedback, for output questions the run behind the key, and for code
    questions the chart of the learner's LR over the target's."""

    attempt: Attempt
    answered: Question
    feedback: grading.Feedback
    run: RunResult[Any] | None
    revealed: bool  # the key and the worked solution may be shown (see `is_revealed`)
    tries: int = 0  # wrong tries in a row it ends (see `wrong_in_a_row`)
    chart: Chart | None = None

    @property
    def told(self) -> grading.Feedback:
        """The feedback as the learner may see it now: without the key until revealed."""
        return self.feedback if self.revealed else grading.withheld(self.feedback)


@dataclass(frozen=True)
class AttemptResult:
    """An attempt as its result page shows it: the attempt with its grading, the question
    page around it, and how many reviews are due (to offer the next one)."""

    recorded: Recorded
    page: QuestionPage
    due: list[review.DueReview]


def attempt_details(session: Session, attempt: Attempt) -> Recorded:
    """A stored attempt with the question as answered, its feedback, its run, and whether
    its solution is revealed (and after how many wrong tries in a row)."""
    version = bank.get_version_or_raise(session, attempt.question_id, attempt.question_version)
    feedback = FEEDBACK_ADAPTER.validate_python(attempt.feedback)
    revealed = is_revealed(session, attempt)
    tries = 0
    if not attempt.correct:
        tries = wrong_in_a_row(
            session,
            learner_id=attempt.learner_id,
            question_id=attempt.question_id,
            attempt_id=attempt.id,
        )
    if isinstance(feedback, grading.ChoiceFeedback):
        return Recorded(attempt, version, feedback, None, revealed, tries)
    if isinstance(feedback, grading.StepsFeedback):  # the feedback holds every rate revealed
        return Recorded(attempt, version, feedback, None, True, 0, steps_chart(feedback))
    run: RunResult[Any] | None
    if isinstance(feedback, grading.OutputFeedback):
        run = runstore.find_by_key(session, feedback.run_key, RunResult[None])
    else:
        run = runstore.find_by_key(session, feedback.reference_key, RunResult[CodeData])
    if run is None:
        raise NotFound("The run behind this attempt is no longer stored.")
    if isinstance(feedback, grading.OutputFeedback):
        return Recorded(attempt, shown(version, feedback.variant), feedback, run, revealed, tries)
    chart = None
    if feedback.learner_lrs and isinstance(version, CodeQuestion):
        unit = "epoch" if version.check.steps_per_epoch == 1 else "step"
        chart = comparison_chart(
            feedback.target_lrs, feedback.learner_lrs, feedback.divergence, unit=unit
        )
    return Recorded(attempt, version, feedback, run, revealed, tries, chart)


def steps_chart(feedback: grading.StepsFeedback) -> Chart:
    """A step-through's predictions over the real learning rate, the misses marked."""
    real = [feedback.first_lr, *(step.lr for step in feedback.steps)]
    predicted = [float(step.given) for step in feedback.steps]
    misses = [step.epoch for step in feedback.steps if not step.correct]
    return prediction_chart(real, predicted, misses)


def attempt_result(
    session: Session, *, attempt_id: int, question: LiveQuestion, visitor: Visitor
) -> AttemptResult:
    """One of this learner's attempts at `question`, with everything its page shows."""
    attempt = get_attempt_or_raise(
        session, attempt_id, learner=visitor.learner, question_id=question.id
    )
    return AttemptResult(
        recorded=attempt_details(session, attempt),
        page=question_page(session, question=question, visitor=visitor),
        due=review.due_reviews(session, learner=visitor.learner),
    )
