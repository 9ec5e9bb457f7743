"""Practice, review, progress and history: the pages and their JSON API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from app.deps import (
    CsrfDep,
    JsonRequestDep,
    PatternDep,
    QuestionDep,
    SessionDep,
    VisitorDep,
    or_default,
)
from app.errors import NotFound
from app.learning import answering, lesson, modes, practice, progress, review
from app.routes.api import INVALID, NOT_FOUND, WRITE, QuestionOut, question_out
from app.routes.openapi import NoInputDep
from app.routes.pages import asked_in_page
from app.templating import render

router = APIRouter()

After = Annotated[
    str | None,
    Query(max_length=80, description="The question just done: it is not chosen again next."),
]
Page = Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1.")]
# The pages' own: a link typed wrong shows what it would without it, not an error page.
AfterOrNone = Annotated[str | None, Query(max_length=80), or_default(None)]
PageOrFirst = Annotated[int, Query(ge=1, le=1_000_000), or_default(1)]


# --- JSON -----------------------------------------------------------------------------------


class DueOut(BaseModel):
    """A question due for review."""

    question_id: str
    pattern: str = Field(description="Slug of its pattern.")
    kind: str
    difficulty: str
    due: datetime = Field(description="When it fell due (UTC).")
    reviews: int = Field(description="How many times it has been answered.")


class ProgressOut(BaseModel):
    """The learner's progress on a pattern."""

    pattern: str = Field(description="Slug of the pattern.")
    total: int = Field(description="Live questions in the pattern.")
    seen: int = Field(description="Questions answered at least once.")
    solved: int = Field(description="Questions answered right at least once.")
    mastery: float = Field(
        description="0–1: attempts' credit (newest weighing most) weighted by difficulty."
    )
    streak_days: int = Field(description="Consecutive days, up to today, with an answer here.")
    due: int = Field(description="Questions due for review now.")


class AttemptSummaryOut(BaseModel):
    """An attempt in the learner's history."""

    attempt_id: int
    question_id: str
    question_version: int
    pattern: str | None = Field(description="Slug of its pattern; null once retired.")
    correct: bool
    score: float
    rating: int | None = Field(
        description="The review rating it gave: 1 again, 2 hard, 3 good, 4 easy."
    )
    hint_seen: bool
    solution_seen: bool
    time_taken_ms: int | None
    created_at: datetime


class HistoryOut(BaseModel):
    """A page of the learner's attempts, newest first."""

    attempts: list[AttemptSummaryOut]
    page: int
    pages: int
    total: int


@router.get(
    "/api/patterns/{slug}/practice/next",
    tags=["learning"],
    responses={**NOT_FOUND, **INVALID},
)
def next_practice_api(
    session: SessionDep, pattern: PatternDep, visitor: VisitorDep, after: After = None
) -> QuestionOut:
    """The practice question to do next: first what your last test missed; then, of the
    questions you have not solved, those nearest your level (it climbs with right answers
    and falls with wrong ones) and nearest the misconceptions your wrong answers showed,
    easy choice questions first for a new learner."""
    question = practice.next_practice(
        session, pattern=pattern, learner=visitor.learner, after=after
    )
    if question is None:
        raise NotFound(f"{pattern.file.title} has no practice questions yet.")
    variant = answering.current_variant(session, visitor=visitor, question=question)
    return question_out(question, variant)


@router.get("/api/review", tags=["learning"])
def review_queue_api(session: SessionDep, visitor: VisitorDep) -> list[DueOut]:
    """Your questions due for review now, most overdue first."""
    return [
        DueOut(
            question_id=item.question.id,
            pattern=item.question.pattern_slug,
            kind=item.question.question.kind,
            difficulty=item.question.question.difficulty.value,
            due=item.due,
            reviews=item.reviews,
        )
        for item in review.due_reviews(session, learner=visitor.learner)
    ]


@router.post(
    "/api/review/{question_id}",
    tags=["learning"],
    responses=WRITE,
    dependencies=[JsonRequestDep, NoInputDep],
)
def start_review_api(
    session: SessionDep, question: QuestionDep, visitor: VisitorDep
) -> QuestionOut:
    """Review a question: it is asked with a fresh variant where it has one. Answer it with
    `POST /api/questions/{id}/attempts`."""
    variant = answering.review_variant(session, visitor=visitor, question=question)
    return question_out(question, variant)


@router.get("/api/progress", tags=["learning"])
def progress_api(session: SessionDep, visitor: VisitorDep) -> list[ProgressOut]:
    """Your progress on every pattern."""
    home = progress.home(session, learner=visitor.learner)
    return [
        ProgressOut(
            pattern=card.pattern.slug,
            total=card.progress.total,
            seen=card.progress.answered,
            solved=card.progress.solved,
            mastery=round(card.progress.mastery, 4),
            streak_days=card.progress.streak_days,
            due=card.progress.due,
        )
        for card in home.cards
    ]


@router.get("/api/attempts", tags=["learning"], responses=INVALID)
def history_api(session: SessionDep, visitor: VisitorDep, page: Page = 1) -> HistoryOut:
    """Your attempts, newest first, 50 to a page."""
    found = progress.history(session, learner=visitor.learner, page=page)
    return HistoryOut(
        attempts=[
            AttemptSummaryOut(
                attempt_id=entry.attempt.id,
                question_id=entry.attempt.question_id,
                question_version=entry.attempt.question_version,
                pattern=entry.pattern_slug,
                correct=entry.attempt.correct,
                score=entry.attempt.score,
                rating=entry.attempt.rating,
                hint_seen=entry.attempt.hint_seen,
                solution_seen=entry.attempt.solution_seen,
                time_taken_ms=entry.attempt.time_taken_ms,
                created_at=entry.attempt.created_at,
            )
            for entry in found.entries
        ],
        page=found.page,
        pages=found.pages,
        total=found.total,
    )


# --- pages ----------------------------------------------------------------------------------


@router.get("/patterns/{slug}/practice", name="practice", include_in_schema=False)
def practice_page(
    request: Request,
    session: SessionDep,
    pattern: PatternDep,
    visitor: VisitorDep,
    after: AfterOrNone = None,
) -> Response:
    """Go to the practice question to do next (app.learning.practice)."""
    question = practice.next_practice(
        session, pattern=pattern, learner=visitor.learner, after=after
    )
    if question is None:
        raise NotFound(f"{pattern.file.title} has no practice questions yet.")
    url = request.url_for("question", slug=pattern.slug, question_id=question.id)
    return RedirectResponse(url, status_code=303)


@router.get("/patterns/{slug}/quiz", name="quiz", include_in_schema=False)
def quiz_page(
    request: Request, session: SessionDep, pattern: PatternDep, visitor: VisitorDep
) -> Response:
    """The lesson's quiz, asked in the page: each question where the learner left it."""
    found = modes.mode_questions(
        session, pattern=pattern, learner=visitor.learner, key=modes.QUIZ.key
    )
    cards = lesson.inline_questions(session, visitor=visitor, questions=found.items)
    context = {"found": found, "cards": cards, **asked_in_page(request, cards)}
    return render(request, "modes/quiz.html", context)


def _sequence(
    request: Request,
    session: SessionDep,
    pattern: PatternDep,
    visitor: VisitorDep,
    after: str | None,
    mode: modes.LearningMode,
) -> Response:
    """Go to the mode's next unsolved question after `after`; with none left (or none at
    all), show the mode's questions and say so."""
    found = modes.mode_questions(
        session, pattern=pattern, learner=visitor.learner, key=mode.key, after=after
    )
    if found.next is None:
        return render(request, "modes/questions.html", {"found": found})
    url = request.url_for("question", slug=pattern.slug, question_id=found.next.id)
    return RedirectResponse(url, status_code=303)


@router.get("/patterns/{slug}/predict", name="predict", include_in_schema=False)
def predict_page(
    request: Request,
    session: SessionDep,
    pattern: PatternDep,
    visitor: VisitorDep,
    after: AfterOrNone = None,
) -> Response:
    """Predict the output: the next output question not yet solved."""
    return _sequence(request, session, pattern, visitor, after, modes.PREDICT)


@router.get("/patterns/{slug}/write", name="write", include_in_schema=False)
def write_page(
    request: Request,
    session: SessionDep,
    pattern: PatternDep,
    visitor: VisitorDep,
    after: AfterOrNone = None,
) -> Response:
    """Write the code: the next code question not yet solved."""
    return _sequence(request, session, pattern, visitor, after, modes.WRITE)


@router.get("/patterns/{slug}/fix", name="fix", include_in_schema=False)
def fix_page(
    request: Request,
    session: SessionDep,
    pattern: PatternDep,
    visitor: VisitorDep,
    after: AfterOrNone = None,
) -> Response:
    """Fix the bug: the next fix-the-bug question not yet solved."""
    return _sequence(request, session, pattern, visitor, after, modes.FIX)


@router.get("/review", name="review", include_in_schema=False)
def review_page(request: Request, session: SessionDep, visitor: VisitorDep) -> Response:
    """The questions due for review, across patterns."""
    home = progress.home(session, learner=visitor.learner)
    return render(request, "modes/review.html", {"home": home})


@router.post(
    "/review/{question_id}",
    name="start_review",
    include_in_schema=False,
    dependencies=[CsrfDep],
)
def start_review(
    request: Request, session: SessionDep, question: QuestionDep, visitor: VisitorDep
) -> Response:
    """Review a question: move to a fresh variant (where it has one) and show it."""
    answering.review_variant(session, visitor=visitor, question=question)
    url = request.url_for("question", slug=question.pattern_slug, question_id=question.id)
    return RedirectResponse(url, status_code=303)


@router.get("/history", name="history", include_in_schema=False)
def history_page(
    request: Request, session: SessionDep, visitor: VisitorDep, page: PageOrFirst = 1
) -> Response:
    """Every attempt this learner has made, newest first, with what they were told."""
    found = progress.history(session, learner=visitor.learner, page=page)
    return render(request, "modes/history.html", {"history": found})
