"""Where a learner stands: per question, per pattern, on the home page; and their history.

Mastery of a question is the credit of its attempts, newest weighing most (each older attempt
half as much as the one after it); an attempt's credit follows the rating it gave the review
schedule (app.learning.review): wrong 0, right but helped or slow ½, right 1. Mastery of a
pattern is its questions' mastery weighted by difficulty (easy 1, medium 2, hard 3), unseen
questions counting 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.bank import service as bank
from app.bank import variants
from app.bank.schema import Difficulty, Mode, OutputQuestion, Question
from app.bank.service import LiveQuestion
from app.learning import review
from app.models import REVEAL_SOLUTION, Attempt, Exam, ExamItem, Learner, Reveal, utcnow
from app.models import Question as QuestionRow

RECENCY = 0.5  # weight of an attempt relative to the next newer one
CREDIT = {
    review.Rating.Again: 0.0,
    review.Rating.Hard: 0.5,
    review.Rating.Good: 1.0,
    review.Rating.Easy: 1.0,
}
DIFFICULTY_WEIGHT = {Difficulty.EASY: 1, Difficulty.MEDIUM: 2, Difficulty.HARD: 3}
HISTORY_PAGE_SIZE = 50


@dataclass
class QuestionState:
    """Where a learner stands on one question."""

    attempts: int = 0
    correct: int = 0
    last_attempt_id: int | None = None
    last_correct: bool = False
    last_at: datetime | None = None
    mastery: float = 0.0  # 0–1
    _weight: float = field(default=0.0, repr=False)

    @property
    def solved(self) -> bool:
        """Whether any attempt was right."""
        return self.correct > 0

    @property
    def wrong(self) -> int:
        """How many attempts were wrong."""
        return self.attempts - self.correct


def _credit(correct: bool, rating: int | None) -> float:
    if rating is None:  # an attempt from before ratings were kept
        return 1.0 if correct else 0.0
    return CREDIT[review.Rating(rating)]


def question_states(session: Session, *, learner: Learner | None) -> dict[str, QuestionState]:
    """For each question this learner has answered: attempts, right ones, the last, mastery."""
    if learner is None:
        return {}
    query = (
        select(Attempt.question_id, Attempt.id, Attempt.correct, Attempt.rating, Attempt.created_at)
        .where(Attempt.learner_id == learner.id)
        .order_by(Attempt.id.desc())
    )
    return fold_states((q, i, c, r, t) for q, i, c, r, t in session.execute(query))


def fold_states(
    attempts: Iterable[tuple[str, int, bool, int | None, datetime]],
) -> dict[str, QuestionState]:
    """One learner's states per question from their attempts — (question id, attempt id,
    correct, rating, created at), newest first; each older attempt weighs RECENCY times the
    next in mastery."""
    states: dict[str, QuestionState] = {}
    for qid, attempt_id, correct, rating, created_at in attempts:
        state = states.get(qid)
        if state is None:  # the newest attempt comes first
            state = states[qid] = QuestionState(
                last_attempt_id=attempt_id, last_correct=correct, last_at=created_at
            )
        weight = RECENCY**state.attempts
        state.attempts += 1
        state.correct += int(correct)
        state.mastery += weight * _credit(correct, rating)
        state._weight += weight
    for state in states.values():
        state.mastery /= state._weight
    return states


@dataclass(frozen=True)
class OpenTest:
    """A test of a pattern the learner started and has not finished."""

    exam_id: int
    answered: int  # questions with an answer saved
    total: int


@dataclass(frozen=True)
class PatternProgress:
    """A learner's progress on a pattern."""

    total: int
    answered: int = 0  # questions seen (answered at least once)
    solved: int = 0
    mastery: float = 0.0  # 0–1, see the module docstring
    streak_days: int = 0  # consecutive days, up to today, with an answer in this pattern
    due: int = 0  # review questions due now
    open_test: OpenTest | None = None  # the newest unfinished test, to continue

    @property
    def percent(self) -> int:
        """Mastery, 0–100 (1 at least, once there is any: a start is not nothing)."""
        return max(1, round(100 * self.mastery)) if self.mastery > 0 else 0


def mastery(questions: list[tuple[str, Difficulty]], states: dict[str, QuestionState]) -> float:
    weights = [(DIFFICULTY_WEIGHT[difficulty], qid) for qid, difficulty in questions]
    total = sum(weight for weight, _ in weights)
    earned = sum(weight * states[qid].mastery for weight, qid in weights if qid in states)
    return earned / total if total else 0.0


def _streak(days: set[date], today: date) -> int:
    """Consecutive days with activity ending today (or yesterday: today is not over yet)."""
    day = today if today in days else today - timedelta(days=1)
    streak = 0
    while day in days:
        streak += 1
        day -= timedelta(days=1)
    return streak


def _active_days(session: Session, learner: Learner) -> dict[int, set[date]]:
    """The (UTC) days on which the learner answered something, per pattern id."""
    day = func.date(Attempt.created_at)
    query = (
        select(QuestionRow.pattern_id, day)
        .join(QuestionRow, QuestionRow.id == Attempt.question_id)
        .where(Attempt.learner_id == learner.id)
        .group_by(QuestionRow.pattern_id, day)
    )
    days: dict[int, set[date]] = {}
    for pattern_id, value in session.execute(query):
        parsed = value if isinstance(value, date) else date.fromisoformat(str(value))
        days.setdefault(pattern_id, set()).add(parsed)
    return days


def _open_tests(session: Session, learner: Learner) -> dict[int, OpenTest]:
    """The learner's newest unfinished test per pattern id (one query for all patterns)."""
    query = (
        select(Exam.pattern_id, Exam.id, func.count(ExamItem.answered_at), func.count())
        .join(ExamItem, ExamItem.exam_id == Exam.id)
        .where(Exam.learner_id == learner.id, Exam.finished_at.is_(None))
        .group_by(Exam.pattern_id, Exam.id)
        .order_by(Exam.id)  # the newest last, so it is the one kept
    )
    return {
        pattern_id: OpenTest(exam_id, answered, total)
        for pattern_id, exam_id, answered, total in session.execute(query)
    }


def pattern_progress(
    session: Session,
    *,
    learner: Learner | None,
    now: datetime | None = None,
    states: dict[str, QuestionState] | None = None,
) -> dict[int, PatternProgress]:
    """Progress on every pattern (by id), counting only live questions (`states`: the
    learner's question states, if the caller has them already)."""
    by_pattern = bank.live_difficulties(session)
    if learner is None:
        return {pid: PatternProgress(total=len(qs)) for pid, qs in by_pattern.items()}
    now = now or utcnow()
    states = question_states(session, learner=learner) if states is None else states
    days = _active_days(session, learner)
    due = review.due_counts(session, learner=learner, now=now)
    open_tests = _open_tests(session, learner)
    return {
        pid: PatternProgress(
            total=len(questions),
            answered=sum(1 for qid, _ in questions if qid in states),
            solved=sum(1 for qid, _ in questions if qid in states and states[qid].solved),
            mastery=mastery(questions, states),
            streak_days=_streak(days.get(pid, set()), now.date()),
            due=due.get(pid, 0),
            open_test=open_tests.get(pid),
        )
        for pid, questions in by_pattern.items()
    }


@dataclass(frozen=True)
class PatternCard:
    """A pattern on the home page, with this learner's progress."""

    pattern: bank.PatternView
    progress: PatternProgress


@dataclass(frozen=True)
class Home:
    """The home page: every pattern with progress, and the reviews due across them."""

    cards: list[PatternCard]
    due: list[review.DueReview]
    next_due: datetime | None


def home(session: Session, *, learner: Learner | None) -> Home:
    """Every pattern with this learner's progress on it, and their due reviews."""
    now = utcnow()
    progress = pattern_progress(session, learner=learner, now=now)
    cards = [
        PatternCard(pattern, progress.get(pattern.id, PatternProgress(total=0)))
        for pattern in bank.list_patterns(session)
    ]
    return Home(
        cards=cards,
        due=review.due_reviews(session, learner=learner, now=now),
        next_due=review.next_due(session, learner=learner),
    )


@dataclass(frozen=True)
class PatternOverview:
    """The pattern page: the pattern, its questions with this learner's state, progress."""

    pattern: bank.PatternView
    questions: list[tuple[LiveQuestion, QuestionState | None]]
    progress: PatternProgress

    def by_difficulty(self) -> dict[Difficulty, list[tuple[LiveQuestion, QuestionState | None]]]:
        """The questions grouped by difficulty, easy first."""
        groups: dict[Difficulty, list[tuple[LiveQuestion, QuestionState | None]]] = {
            difficulty: [] for difficulty in Difficulty
        }
        for item in self.questions:
            groups[item[0].question.difficulty].append(item)
        return {difficulty: items for difficulty, items in groups.items() if items}

    def first_unsolved(self, mode: Mode | None = None) -> LiveQuestion | None:
        """Where to continue: the first question (in `mode`) not yet solved, else the first."""
        candidates = [
            (question, state)
            for question, state in self.questions
            if mode is None or mode in question.question.modes
        ]
        for question, state in candidates:
            if state is None or not state.solved:
                return question
        return candidates[0][0] if candidates else None


def pattern_overview(
    session: Session, *, pattern: bank.PatternView, learner: Learner | None
) -> PatternOverview:
    """A pattern's questions with this learner's state on each, and the progress they add up to."""
    states = question_states(session, learner=learner)
    questions = [(q, states.get(q.id)) for q in bank.list_questions(session, pattern)]
    progress = pattern_progress(session, learner=learner, states=states).get(
        pattern.id, PatternProgress(total=len(questions))
    )
    return PatternOverview(pattern, questions, progress)


# --- history ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryEntry:
    """One attempt in a learner's history."""

    attempt: Attempt
    answered: Question  # the version answered
    pattern_slug: str | None  # where its page is; None once the question is retired
    revealed: bool = False  # its key may be shown: it was right, or its solution was shown


@dataclass(frozen=True)
class History:
    """A page of a learner's attempts, newest first."""

    entries: list[HistoryEntry]
    page: int
    pages: int
    total: int


def history(session: Session, *, learner: Learner | None, page: int = 1) -> History:
    """A page of every attempt this learner has made, newest first."""
    if learner is None:
        return History([], 1, 1, 0)
    total = (
        session.scalar(
            select(func.count()).select_from(Attempt).where(Attempt.learner_id == learner.id)
        )
        or 0
    )
    pages = max(1, -(-total // HISTORY_PAGE_SIZE))
    page = min(max(page, 1), pages)
    attempts = session.scalars(
        select(Attempt)
        .where(Attempt.learner_id == learner.id)
        .order_by(Attempt.id.desc())
        .offset((page - 1) * HISTORY_PAGE_SIZE)
        .limit(HISTORY_PAGE_SIZE)
    ).all()
    revealed = set(
        session.scalars(
            select(Reveal.attempt_id).where(
                Reveal.attempt_id.in_([a.id for a in attempts]), Reveal.kind == REVEAL_SOLUTION
            )
        )
    )
    live = bank.live_questions(session, {a.question_id for a in attempts})
    versions = bank.get_versions(session, {(a.question_id, a.question_version) for a in attempts})
    entries = []
    for attempt in attempts:
        answered = versions[attempt.question_id, attempt.question_version]
        if isinstance(answered, OutputQuestion) and attempt.variant_index is not None:
            answered = variants.render(answered, attempt.variant_index)
        slug = live[attempt.question_id].pattern_slug if attempt.question_id in live else None
        shown = attempt.correct or attempt.id in revealed
        entries.append(HistoryEntry(attempt, answered, slug, shown))
    return History(entries, page, pages, total)
