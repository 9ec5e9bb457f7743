"""Learners answering questions: attempts, hint and solution reveals, progress."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app import grading
from app.bank import service as bank
from app.bank.schema import Difficulty, Mode, Question
from app.bank.service import LiveQuestion
from app.db import begin_write
from app.errors import NotFound
from app.models import Attempt, Learner, Reveal
from app.models import Question as QuestionRow

HINT = "hint"
SOLUTION = "solution"
MAX_TIME_TAKEN_MS = 24 * 3600 * 1000  # longer than a day is not "time taken", it is a tab left open
LEARNER_TOKEN_BYTES = 24


@dataclass(frozen=True)
class QuestionState:
    """Where a learner stands on one question."""

    attempts: int
    solved: bool
    last_attempt_id: int | None


@dataclass(frozen=True)
class PatternProgress:
    """A learner's progress on a pattern."""

    answered: int
    solved: int
    total: int

    @property
    def percent(self) -> int:
        """Share of the pattern's questions solved, 0–100."""
        return round(100 * self.solved / self.total) if self.total else 0


def get_learner(session: Session, token: str | None) -> Learner | None:
    """The learner a cookie token names, if it exists."""
    if not token:
        return None
    return session.scalar(select(Learner).where(Learner.token == token))


def get_or_create_learner(session: Session, token: str | None) -> Learner:
    """The learner a cookie token names, or a new guest learner (committed at once: a guest
    exists from their first answer or hint on, whatever happens to that request)."""
    learner = get_learner(session, token)
    if learner is None:
        begin_write(session)
        learner = Learner(token=secrets.token_urlsafe(LEARNER_TOKEN_BYTES))
        session.add(learner)
        session.commit()
    return learner


def _has_reveal(session: Session, learner_id: int, question_id: str, kind: str) -> bool:
    query = select(Reveal.id).where(
        Reveal.learner_id == learner_id, Reveal.question_id == question_id, Reveal.kind == kind
    )
    return session.scalar(query.limit(1)) is not None


def record_attempt(
    session: Session,
    *,
    learner: Learner,
    question: LiveQuestion,
    answer: object,
    time_taken_ms: int | None = None,
) -> Attempt:
    """Grade an answer and store the attempt; the learner is then shown the solution."""
    result = grading.grade(question.question, answer)
    if time_taken_ms is not None:
        time_taken_ms = max(0, min(time_taken_ms, MAX_TIME_TAKEN_MS))
    begin_write(session)
    attempt = Attempt(
        learner_id=learner.id,
        question_id=question.id,
        question_version=question.version,
        answer=result.answer,
        correct=result.correct,
        score=result.score,
        feedback=result.feedback.model_dump(mode="json"),
        hint_seen=_has_reveal(session, learner.id, question.id, HINT),
        solution_seen=_has_reveal(session, learner.id, question.id, SOLUTION),
        time_taken_ms=time_taken_ms,
    )
    session.add(attempt)
    session.add(
        Reveal(
            learner_id=learner.id,
            question_id=question.id,
            question_version=question.version,
            kind=SOLUTION,
        )
    )
    session.commit()
    return attempt


def reveal_hint(session: Session, *, learner: Learner, question: LiveQuestion) -> str:
    """Record that the learner asked for the hint, and return it."""
    if question.question.hint is None:
        raise NotFound(f"Question {question.id!r} has no hint.")
    begin_write(session)
    if not _has_reveal(session, learner.id, question.id, HINT):
        session.add(
            Reveal(
                learner_id=learner.id,
                question_id=question.id,
                question_version=question.version,
                kind=HINT,
            )
        )
    session.commit()
    return question.question.hint


def hint_revealed(session: Session, *, learner: Learner | None, question_id: str) -> bool:
    """Whether this learner has asked for the question's hint."""
    return learner is not None and _has_reveal(session, learner.id, question_id, HINT)


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


def question_states(session: Session, *, learner: Learner | None) -> dict[str, QuestionState]:
    """For each question this learner has answered: attempts, solved, the last attempt."""
    if learner is None:
        return {}
    query = (
        select(
            Attempt.question_id,
            func.count(),
            func.max(case((Attempt.correct, 1), else_=0)),
            func.max(Attempt.id),
        )
        .where(Attempt.learner_id == learner.id)
        .group_by(Attempt.question_id)
    )
    return {
        qid: QuestionState(attempts=count, solved=bool(solved), last_attempt_id=last)
        for qid, count, solved, last in session.execute(query)
    }


def pattern_progress(
    session: Session, *, learner: Learner | None, question_ids_by_pattern: dict[int, list[str]]
) -> dict[int, PatternProgress]:
    """Progress per pattern id, counting only the given (live) questions."""
    states = question_states(session, learner=learner)
    return {
        pattern_id: PatternProgress(
            answered=sum(1 for qid in qids if qid in states),
            solved=sum(1 for qid in qids if qid in states and states[qid].solved),
            total=len(qids),
        )
        for pattern_id, qids in question_ids_by_pattern.items()
    }


def live_question_ids_by_pattern(session: Session) -> dict[int, list[str]]:
    """Ids of the live questions of every pattern."""
    query = select(QuestionRow.pattern_id, QuestionRow.id).where(QuestionRow.retired_at.is_(None))
    result: dict[int, list[str]] = {}
    for pattern_id, qid in session.execute(query):
        result.setdefault(pattern_id, []).append(qid)
    return result


@dataclass(frozen=True)
class PatternCard:
    """A pattern on the home page, with this learner's progress."""

    pattern: bank.PatternView
    progress: PatternProgress


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


@dataclass(frozen=True)
class QuestionPage:
    """Everything the question page shows around the question itself."""

    question: LiveQuestion
    pattern_title: str
    hint: str | None
    state: QuestionState | None
    next_question: LiveQuestion | None
    position: int
    total: int


def home_cards(session: Session, *, learner: Learner | None) -> list[PatternCard]:
    """Every pattern with this learner's progress on it."""
    progress = pattern_progress(
        session, learner=learner, question_ids_by_pattern=live_question_ids_by_pattern(session)
    )
    empty = PatternProgress(answered=0, solved=0, total=0)
    return [
        PatternCard(pattern, progress.get(pattern.id, empty))
        for pattern in bank.list_patterns(session)
    ]


def pattern_overview(
    session: Session, *, pattern: bank.PatternView, learner: Learner | None
) -> PatternOverview:
    """A pattern's questions with this learner's state on each, and the progress they add up to."""
    states = question_states(session, learner=learner)
    questions = [(q, states.get(q.id)) for q in bank.list_questions(session, pattern)]
    progress = PatternProgress(
        answered=sum(1 for _, state in questions if state),
        solved=sum(1 for _, state in questions if state and state.solved),
        total=len(questions),
    )
    return PatternOverview(pattern, questions, progress)


def question_page(
    session: Session, *, question: LiveQuestion, learner: Learner | None
) -> QuestionPage:
    """The question with the learner's hint (if asked for), state, and the next question."""
    pattern = bank.get_pattern_or_raise(session, question.pattern_slug)
    siblings = bank.list_questions(session, pattern)
    index = next(i for i, sibling in enumerate(siblings) if sibling.id == question.id)
    revealed = hint_revealed(session, learner=learner, question_id=question.id)
    state = question_states(session, learner=learner).get(question.id)
    return QuestionPage(
        question=question,
        pattern_title=pattern.file.title,
        hint=question.question.hint if revealed else None,
        state=state,
        next_question=siblings[index + 1] if index + 1 < len(siblings) else None,
        position=index + 1,
        total=len(siblings),
    )


@dataclass(frozen=True)
class AttemptResult:
    """An attempt as its result page shows it: the version answered, what the learner was told."""

    attempt: Attempt
    answered: Question
    feedback: grading.Feedback
    page: QuestionPage


def attempt_result(
    session: Session, *, attempt_id: int, question: LiveQuestion, learner: Learner | None
) -> AttemptResult:
    """One of this learner's attempts at `question`, with the version it answered."""
    attempt = get_attempt_or_raise(session, attempt_id, learner=learner, question_id=question.id)
    return AttemptResult(
        attempt=attempt,
        answered=bank.get_version_or_raise(session, attempt.question_id, attempt.question_version),
        feedback=grading.ChoiceFeedback.model_validate(attempt.feedback),
        page=question_page(session, question=question, learner=learner),
    )
