"""The lesson page, read top to bottom as the seed lesson is: the recorded run (drawn by the
traces room), the key insight, the quiz and the lesson's practice questions asked inline —
each where the learner left it — then the ways to go on, and every question, grouped."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.bank import service as bank
from app.bank.schema import Difficulty, Mode, Question
from app.bank.service import LiveQuestion
from app.learning import answering
from app.learning.answering import Recorded
from app.learning.learners import Visitor
from app.learning.progress import PatternOverview, QuestionState, pattern_overview
from app.models import Attempt

# What each kind of question is called where the lesson groups them, in that order.
KIND_NAMES = {
    "choice": "Multiple choice",
    "output": "Predict the output",
    "steps": "Step through",
    "code": "Write the code",
    "fix": "Fix the bug",
}


@dataclass(frozen=True)
class InlineQuestion:
    """A question asked on a page among others, where this learner left it: not answered
    yet (`latest` is None), answered wrong (try again), or right or revealed (the solution)."""

    question: LiveQuestion
    shown: Question  # as this learner's variant shows it
    variant: int
    hint: str | None  # the hint, once they asked for it
    latest: Recorded | None  # their latest attempt at it, with its feedback

    @property
    def done(self) -> bool:
        """Whether its solution is showing: answered right, or revealed."""
        return self.latest is not None and self.latest.revealed


@dataclass(frozen=True)
class KindGroup:
    """The pattern's questions of one kind, by difficulty."""

    kind: str
    title: str
    by_difficulty: dict[Difficulty, list[tuple[LiveQuestion, QuestionState | None]]]

    @property
    def count(self) -> int:
        """How many questions the group holds."""
        return sum(len(items) for items in self.by_difficulty.values())


@dataclass(frozen=True)
class LessonPage:
    """Everything the lesson page shows but the recorded run."""

    overview: PatternOverview
    quiz: list[InlineQuestion]
    practice: list[InlineQuestion]
    groups: list[KindGroup]


def inline_questions(
    session: Session,
    *,
    visitor: Visitor,
    questions: list[tuple[LiveQuestion, QuestionState | None]],
) -> list[InlineQuestion]:
    """`questions` (with this visitor's state on each) as they left each: their variant,
    hint and latest attempt."""
    asked = []
    for question, state in questions:
        seen = answering.standing(session, learner=visitor.learner, question_id=question.id)
        variant = answering.variant_for(visitor, question, seen)
        shown = answering.shown(question.question, variant)
        latest = None
        if state is not None and state.last_attempt_id is not None:
            attempt = session.get(Attempt, state.last_attempt_id)
            latest = answering.attempt_details(session, attempt) if attempt else None
        asked.append(
            InlineQuestion(
                question=question,
                shown=shown,
                variant=variant,
                hint=shown.hint if seen.hint_seen else None,
                latest=latest,
            )
        )
    return asked


def asks(pattern: bank.PatternView, question: LiveQuestion, *, page: str) -> bool:
    """Whether `page` ("lesson", "quiz") asks `question` in place."""
    quiz = Mode.QUIZ in question.question.modes and Mode.QUIZ in pattern.file.modes
    if page == "quiz":
        return quiz
    return quiz or question.id in pattern.file.lesson_practice


def kind_groups(overview: PatternOverview) -> list[KindGroup]:
    """The pattern's questions grouped by kind (in KIND_NAMES' order), then difficulty."""
    groups: dict[str, dict[Difficulty, list[tuple[LiveQuestion, QuestionState | None]]]] = {}
    for item in overview.questions:
        kind = item[0].question.kind
        by_difficulty = groups.setdefault(kind, {d: [] for d in Difficulty})
        by_difficulty[item[0].question.difficulty].append(item)
    order = list(KIND_NAMES)
    return [
        KindGroup(
            kind,
            KIND_NAMES.get(kind, kind.capitalize()),
            {d: items for d, items in by_difficulty.items() if items},
        )
        for kind, by_difficulty in sorted(
            groups.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)
        )
    ]


def lesson_page(session: Session, *, pattern: bank.PatternView, visitor: Visitor) -> LessonPage:
    """The lesson page of `pattern` for this visitor."""
    overview = pattern_overview(session, pattern=pattern, learner=visitor.learner)
    live = {item[0].id: item for item in overview.questions}
    quiz = [item for item in overview.questions if asks(pattern, item[0], page="quiz")]
    practice = [live[qid] for qid in pattern.file.lesson_practice if qid in live]
    return LessonPage(
        overview=overview,
        quiz=inline_questions(session, visitor=visitor, questions=quiz),
        practice=inline_questions(session, visitor=visitor, questions=practice),
        groups=kind_groups(overview),
    )
