"""Where a learner stands: per question, per pattern, on the home page."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app.bank import service as bank
from app.bank.schema import Difficulty, Mode
from app.bank.service import LiveQuestion
from app.models import Attempt, Learner
from app.models import Question as QuestionRow


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
