"""Spaced review: every question a learner answers is scheduled with FSRS.

The rating is never the learner's opinion of themselves; it is read off what happened:

    wrong                                         → Again
    right, in a learning step that has fallen due → Good
    right, with a hint or the solution seen
      in the last ASSIST_WINDOW                   → Hard
    right, but slower than SLOW × expected time   → Hard
    right within FAST × expected time             → Easy
    right otherwise (or time not measured)        → Good

Every attempt — practice, quiz, test, review — is a review of its question's card. A card
falls due when FSRS expects the learner's recall to have dropped to 90%. A new card starts
in a learning step, and a card in review answered wrong (a lapse) goes into a relearning
step; both last LEARNING_STEP (10 minutes). While a card is in a step, FSRS schedules it
from the rating:

    Again       → due LEARNING_STEP later: 10 minutes, the same sitting
    Hard        → due 1.5 × LEARNING_STEP later: 15 minutes (FSRS's Hard on a lone step)
    Good, Easy  → the step is passed: FSRS takes the card on in days

So a first answer right only with help (or slowly) is Hard, and comes back in 15 minutes.
A right answer given *before* the step is due is rated as any other; with help — as it
then often is: the solution (shown with a right answer, or revealed after wrong ones)
counts as help for ASSIST_WINDOW,
a hint for ever after it was asked for (but not in a test, which shows none) — it is Hard
again, and pushes the step back another 15 minutes from when it was given. A right answer
once the step is due is Good, whatever help was seen: the step exists to ask again after
the solution was shown (else a hint, shown on every later visit, would hold the card in
its step for ever).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import fsrs
from sqlalchemy import bindparam, delete, false, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.bank import service as bank
from app.bank.schema import Difficulty, Question
from app.bank.service import LiveQuestion
from app.models import Attempt, Learner, ReviewCard, utcnow
from app.models import Question as QuestionRow

# One step, for new cards and lapsed ones alike: long enough that the solution just read is
# not still on the screen, short enough to be the same sitting. One, not FSRS's default two
# (1 and 10 minutes): a question answered right at once needs no second look the same day —
# with one step, Good on a new card goes straight to days. Fuzzing off: the same history
# gives the same schedule (tests, and explaining a due date to a learner, rely on it).
LEARNING_STEP = timedelta(minutes=10)
SCHEDULER = fsrs.Scheduler(
    learning_steps=(LEARNING_STEP,), relearning_steps=(LEARNING_STEP,), enable_fuzzing=False
)
STEPS = (fsrs.State.Learning, fsrs.State.Relearning)

ASSIST_WINDOW = timedelta(hours=12)  # help seen this long before still helped this attempt
FAST, SLOW = 0.5, 3.0  # fractions of the expected time that make a right answer Easy / Hard
# How long a right answer takes someone who knows it, in seconds, by kind and difficulty.
EXPECTED_SECONDS: dict[str, dict[Difficulty, int]] = {
    "choice": {Difficulty.EASY: 20, Difficulty.MEDIUM: 40, Difficulty.HARD: 60},
    "output": {Difficulty.EASY: 30, Difficulty.MEDIUM: 60, Difficulty.HARD: 90},
    "code": {Difficulty.EASY: 120, Difficulty.MEDIUM: 240, Difficulty.HARD: 480},
    # Reading given code and changing a line or two: quicker than writing it, slower than output.
    "fix": {Difficulty.EASY: 90, Difficulty.MEDIUM: 180, Difficulty.HARD: 360},
    # a whole step-through: some 10–30 s an epoch
    "steps": {Difficulty.EASY: 60, Difficulty.MEDIUM: 150, Difficulty.HARD: 300},
}
QUEUE_LIMIT = 50  # due reviews listed at once; the rest follow as these are done

Rating = fsrs.Rating


def expected_ms(question: Question) -> int:
    """How long a right answer to `question` takes someone who knows it."""
    return EXPECTED_SECONDS[question.kind][question.difficulty] * 1000


def in_due_step(card: dict[str, Any] | None, now: datetime) -> bool:
    """Whether a card (as stored; None: none yet) is in a learning or relearning step that
    has fallen due by `now`."""
    if card is None:
        return False
    current = fsrs.Card.from_dict(card)  # type: ignore[arg-type]
    return current.state in STEPS and current.due <= now


def rate(
    *,
    question: Question,
    correct: bool,
    assisted: bool,
    time_taken_ms: int | None,
    due_step: bool = False,
) -> Rating:
    """The FSRS rating of an attempt, from its outcome, the help seen and the time taken
    (`due_step`: the card is in a learning step that has fallen due, see `in_due_step`)."""
    if not correct:
        return Rating.Again
    if due_step:
        return Rating.Good
    if assisted:
        return Rating.Hard
    if time_taken_ms is None:
        return Rating.Good
    expected = expected_ms(question)
    if time_taken_ms > SLOW * expected:
        return Rating.Hard
    if time_taken_ms <= FAST * expected:
        return Rating.Easy
    return Rating.Good


def next_card(card: dict[str, Any] | None, rating: Rating, at: datetime) -> fsrs.Card:
    """A card (as stored; None: a new one) after one review rated `rating` at `at`."""
    current = fsrs.Card.from_dict(card) if card is not None else fsrs.Card()  # type: ignore[arg-type]
    reviewed, _ = SCHEDULER.review_card(current, rating, review_datetime=at)
    return reviewed


def schedule(
    session: Session, *, learner_id: int, question_id: str, rating: Rating, at: datetime
) -> None:
    """Review the learner's card for a question (created on first answer), as it is stored
    now — inside a write transaction."""
    row = session.get(ReviewCard, (learner_id, question_id), populate_existing=True)
    card = next_card(row.card if row is not None else None, rating, at)
    if row is None:
        row = ReviewCard(learner_id=learner_id, question_id=question_id, reviews=0)
        session.add(row)
    row.card = dict(card.to_dict())
    row.due = card.due
    row.reviews = (row.reviews or 0) + 1
    row.updated_at = at


@dataclass(frozen=True)
class Review:
    """One review of a card as it was read (`seen_reviews` reviews before; None: no card
    yet), computed before the write transaction: storing it is one statement."""

    rating: Rating
    at: datetime
    card: dict[str, Any]
    due: datetime
    seen_reviews: int | None


def review(
    seen_card: dict[str, Any] | None, seen_reviews: int | None, rating: Rating, at: datetime
) -> Review:
    """The review of a card as read (pure: no database)."""
    card = next_card(seen_card, rating, at)
    return Review(rating, at, dict(card.to_dict()), card.due, seen_reviews)


_UPSERTS: dict[tuple[str, bool], Any] = {}  # (dialect, card seen) -> the statement, built once


def _upsert(dialect: str, seen: bool) -> Any:
    if (dialect, seen) not in _UPSERTS:
        insert = (sqlite_insert if dialect == "sqlite" else postgresql_insert)(ReviewCard)
        statement = insert.values(
            {name: bindparam(name) for name in ("learner_id", "question_id", "card", "due")}
            | {"reviews": bindparam("reviews"), "updated_at": bindparam("updated_at")}
        )
        _UPSERTS[dialect, seen] = statement.on_conflict_do_update(
            index_elements=[ReviewCard.learner_id, ReviewCard.question_id],
            set_={
                name: statement.excluded[name] for name in ("card", "due", "reviews", "updated_at")
            },
            where=ReviewCard.reviews == bindparam("seen") if seen else false(),
        ).returning(ReviewCard.reviews)
    return _UPSERTS[dialect, seen]


def store_review(session: Session, *, learner_id: int, question_id: str, done: Review) -> None:
    """Store a review computed before the write transaction — in one statement, which
    writes only if the card is still as it was read; else (another review came in between)
    the review is made again on the stored card, as `schedule` does. Inside a write
    transaction."""
    dialect = session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        values = {
            "learner_id": learner_id,
            "question_id": question_id,
            "card": done.card,
            "due": done.due,
            "reviews": (done.seen_reviews or 0) + 1,
            "updated_at": done.at,
            "seen": done.seen_reviews,
        }
        statement = _upsert(dialect, done.seen_reviews is not None)
        if session.connection().execute(statement, values).first() is not None:
            return
    schedule(
        session, learner_id=learner_id, question_id=question_id, rating=done.rating, at=done.at
    )


@dataclass(frozen=True)
class DueReview:
    """A question due for review."""

    question: LiveQuestion
    due: datetime
    reviews: int


def _due_query(learner: Learner, now: datetime):  # type: ignore[no-untyped-def]
    return (
        select(ReviewCard.question_id, ReviewCard.due, ReviewCard.reviews)
        .join(QuestionRow, QuestionRow.id == ReviewCard.question_id)
        .where(
            ReviewCard.learner_id == learner.id,
            ReviewCard.due <= now,
            QuestionRow.retired_at.is_(None),
        )
    )


def due_reviews(
    session: Session, *, learner: Learner | None, now: datetime | None = None
) -> list[DueReview]:
    """The learner's questions due now, most overdue first (at most QUEUE_LIMIT)."""
    if learner is None:
        return []
    query = _due_query(learner, now or utcnow()).order_by(ReviewCard.due).limit(QUEUE_LIMIT)
    rows = session.execute(query).all()
    live = bank.live_questions(session, [row.question_id for row in rows])
    return [
        DueReview(live[row.question_id], row.due, row.reviews)
        for row in rows
        if row.question_id in live
    ]


def due_counts(
    session: Session, *, learner: Learner | None, now: datetime | None = None
) -> dict[int, int]:
    """How many of the learner's questions are due now, per pattern id."""
    if learner is None:
        return {}
    query = (
        _due_query(learner, now or utcnow())
        .with_only_columns(QuestionRow.pattern_id, func.count())
        .group_by(QuestionRow.pattern_id)
    )
    return {pattern_id: count for pattern_id, count in session.execute(query)}


def next_due(
    session: Session, *, learner: Learner | None, now: datetime | None = None
) -> datetime | None:
    """When the learner's next review falls due (None if they have no cards)."""
    if learner is None:
        return None
    query = (
        select(func.min(ReviewCard.due))
        .join(QuestionRow, QuestionRow.id == ReviewCard.question_id)
        .where(ReviewCard.learner_id == learner.id, QuestionRow.retired_at.is_(None))
    )
    due: datetime | None = session.scalar(query)
    return due


def rebuild(session: Session, *, learner: Learner, question_ids: Collection[str]) -> None:
    """Recompute the learner's cards for these questions by replaying their attempts in the
    order they were made (after a merge brought two histories together) — inside a write
    transaction."""
    for question_id in question_ids:
        session.execute(
            delete(ReviewCard).where(
                ReviewCard.learner_id == learner.id, ReviewCard.question_id == question_id
            )
        )
        session.flush()
        attempts = session.execute(
            select(Attempt.correct, Attempt.rating, Attempt.created_at)
            .where(Attempt.learner_id == learner.id, Attempt.question_id == question_id)
            .order_by(Attempt.created_at, Attempt.id)
        ).all()
        for correct, rating, created_at in attempts:
            replayed = Rating(rating) if rating else (Rating.Good if correct else Rating.Again)
            schedule(
                session,
                learner_id=learner.id,
                question_id=question_id,
                rating=replayed,
                at=created_at,
            )
            session.flush()
