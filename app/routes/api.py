"""The JSON API. Learner views never contain answer keys, mistakes or instructor notes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field, JsonValue
from sqlalchemy import text

from app import learning
from app.bank import service as bank
from app.bank.schema import Solution
from app.deps import LearnerDep, OptionalLearnerDep, PatternDep, QuestionDep, SessionDep
from app.grading import Feedback, choice_label

router = APIRouter()

Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"description": "No such pattern, question or attempt."}}
INVALID: Responses = {422: {"description": "Malformed body or an answer that cannot be one."}}


class Health(BaseModel):
    """Liveness and a database round trip."""

    status: str = Field(description="`ok` when the app and its database answer.")
    database: str = Field(description="`ok` when a query succeeded.")


class PatternOut(BaseModel):
    """A pattern in a listing."""

    slug: str = Field(description="URL name of the pattern.")
    title: str
    category: str
    estimated_minutes: int
    summary: str = Field(description="Markdown.")
    question_count: int = Field(description="Live questions in the pattern.")
    by_difficulty: dict[str, int] = Field(description="Live questions per difficulty.")


class QuestionSummaryOut(BaseModel):
    """A question in a listing."""

    id: str
    version: int
    kind: str
    difficulty: str
    modes: list[str]


class PatternDetailOut(PatternOut):
    """A pattern with its lesson text and questions."""

    key_insight: str = Field(description="Markdown.")
    modes: list[str] = Field(description="Learning modes offered.")
    questions: list[QuestionSummaryOut]


class ChoiceOut(BaseModel):
    """An option as a learner sees it: no `correct`, no `mistake`."""

    index: int
    label: str = Field(description="Letter shown before the option, e.g. `A`.")
    text: str = Field(description="Inline Markdown.")


class QuestionOut(QuestionSummaryOut):
    """A question as a learner sees it before answering."""

    pattern: str = Field(description="Slug of the pattern it belongs to.")
    prompt: str = Field(description="Markdown.")
    code: str | None = Field(description="Python source shown with the prompt.")
    choices: list[ChoiceOut]
    has_hint: bool = Field(description="Whether `POST .../hint` has a hint to give.")
    tags: list[str]


class HintOut(BaseModel):
    """A question's hint; asking for it is recorded on later attempts."""

    hint: str = Field(description="Markdown.")


class AttemptIn(BaseModel):
    """An answer to a question."""

    answer: JsonValue = Field(
        description="For a choice question: the 0-based index of the choice, or its letter. "
        "Checked by the grader, which says what it expected."
    )
    time_taken_ms: int | None = Field(
        default=None, ge=0, description="How long the learner took, if the client measured it."
    )


class AttemptOut(BaseModel):
    """A graded, stored attempt."""

    attempt_id: int
    question_id: str
    question_version: int
    correct: bool
    score: float = Field(description="0.0 to 1.0.")
    feedback: Feedback
    solution: Solution = Field(description="The worked solution of the version answered.")


def _pattern_out(pattern: bank.PatternView) -> dict[str, Any]:
    return {
        "slug": pattern.slug,
        "title": pattern.file.title,
        "category": pattern.file.category,
        "estimated_minutes": pattern.file.estimated_minutes,
        "summary": pattern.file.summary,
        "question_count": pattern.question_count,
        "by_difficulty": {d.value: n for d, n in pattern.by_difficulty.items()},
    }


def _summary_out(live: bank.LiveQuestion) -> QuestionSummaryOut:
    question = live.question
    return QuestionSummaryOut(
        id=live.id,
        version=live.version,
        kind=question.kind,
        difficulty=question.difficulty.value,
        modes=[mode.value for mode in question.modes],
    )


def _question_out(live: bank.LiveQuestion) -> QuestionOut:
    question = live.question
    return QuestionOut(
        **_summary_out(live).model_dump(),
        pattern=live.pattern_slug,
        prompt=question.prompt,
        code=question.code,
        choices=[
            ChoiceOut(index=i, label=choice_label(i), text=choice.text)
            for i, choice in enumerate(question.choices)
        ],
        has_hint=question.hint is not None,
        tags=list(question.tags),
    )


@router.get("/healthz", tags=["system"])
def healthz(session: SessionDep) -> Health:
    """Whether the app is up and its database answers."""
    session.execute(text("SELECT 1"))
    return Health(status="ok", database="ok")


@router.get("/api/patterns", tags=["patterns"])
def list_patterns(session: SessionDep) -> list[PatternOut]:
    """Every pattern with its question counts."""
    return [PatternOut(**_pattern_out(pattern)) for pattern in bank.list_patterns(session)]


@router.get("/api/patterns/{slug}", tags=["patterns"], responses=NOT_FOUND)
def get_pattern(session: SessionDep, pattern: PatternDep) -> PatternDetailOut:
    """A pattern with its lesson text and its questions."""
    return PatternDetailOut(
        **_pattern_out(pattern),
        key_insight=pattern.file.key_insight,
        modes=[mode.value for mode in pattern.file.modes],
        questions=[_summary_out(q) for q in bank.list_questions(session, pattern)],
    )


@router.get("/api/patterns/{slug}/questions", tags=["patterns"], responses=NOT_FOUND)
def list_pattern_questions(session: SessionDep, pattern: PatternDep) -> list[QuestionOut]:
    """A pattern's live questions, as a learner sees them."""
    return [_question_out(q) for q in bank.list_questions(session, pattern)]


@router.get("/api/questions/{question_id}", tags=["questions"], responses=NOT_FOUND)
def get_question(question: QuestionDep) -> QuestionOut:
    """A question as a learner sees it: no key, no mistakes, no solution."""
    return _question_out(question)


@router.post("/api/questions/{question_id}/hint", tags=["questions"], responses=NOT_FOUND)
def reveal_hint(session: SessionDep, question: QuestionDep, learner: LearnerDep) -> HintOut:
    """The question's hint; later attempts record that it was seen."""
    return HintOut(hint=learning.reveal_hint(session, learner=learner, question=question))


@router.post(
    "/api/questions/{question_id}/attempts",
    tags=["questions"],
    status_code=201,
    responses={**NOT_FOUND, **INVALID},
)
def submit_attempt(
    session: SessionDep, question: QuestionDep, learner: LearnerDep, body: AttemptIn
) -> AttemptOut:
    """Grade an answer and store it as an attempt; the result includes the worked solution."""
    attempt = learning.record_attempt(
        session,
        learner=learner,
        question=question,
        answer=body.answer,
        time_taken_ms=body.time_taken_ms,
    )
    return _attempt_out(attempt, question.question.solution)


@router.get("/api/attempts/{attempt_id}", tags=["questions"], responses=NOT_FOUND)
def get_attempt(session: SessionDep, attempt_id: int, learner: OptionalLearnerDep) -> AttemptOut:
    """One of your own attempts; anyone else's is 404."""
    attempt = learning.get_attempt_or_raise(session, attempt_id, learner=learner)
    answered = bank.get_version_or_raise(session, attempt.question_id, attempt.question_version)
    return _attempt_out(attempt, answered.solution)


def _attempt_out(attempt: Any, solution: Solution) -> AttemptOut:
    return AttemptOut(
        attempt_id=attempt.id,
        question_id=attempt.question_id,
        question_version=attempt.question_version,
        correct=attempt.correct,
        score=attempt.score,
        feedback=attempt.feedback,
        solution=solution,
    )
