"""Learner pages, server-rendered: they work without JavaScript."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

from app import learning
from app.deps import (
    CsrfDep,
    LearnerDep,
    OptionalLearnerDep,
    PatternDep,
    PatternQuestionDep,
    SessionDep,
)
from app.errors import Invalid
from app.models import utcnow
from app.templating import render

router = APIRouter(include_in_schema=False)

SHOWN_AT_MAX_AGE_S = 24 * 3600  # an older page still takes answers; it just records no time


def _signer(request: Request) -> TimestampSigner:
    signer: TimestampSigner = request.app.state.shown_at_signer
    return signer


def _time_taken_ms(request: Request, shown_at: str, question_id: str) -> int | None:
    """Milliseconds since the question page was rendered, from its signed `shown_at` field."""
    try:
        _, signed_at = _signer(request).unsign(
            shown_at, max_age=SHOWN_AT_MAX_AGE_S, return_timestamp=True
        )
    except (BadSignature, SignatureExpired):
        return None
    return int((utcnow() - signed_at).total_seconds() * 1000)


@router.get("/", name="home")
def home(request: Request, session: SessionDep, learner: OptionalLearnerDep) -> Response:
    """The patterns, with this learner's progress."""
    cards = learning.home_cards(session, learner=learner)
    return render(request, "patterns/index.html", {"cards": cards})


@router.get("/patterns/{slug}", name="pattern")
def pattern_page(
    request: Request, session: SessionDep, pattern: PatternDep, learner: OptionalLearnerDep
) -> Response:
    """A pattern's overview: summary, key insight, modes and questions by difficulty."""
    overview = learning.pattern_overview(session, pattern=pattern, learner=learner)
    return render(request, "patterns/detail.html", {"overview": overview})


def _question_response(
    request: Request,
    page: learning.QuestionPage,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    signed = _signer(request).sign(page.question.id).decode()
    return render(
        request,
        "questions/detail.html",
        {"page": page, "shown_at": signed, "error": error},
        status_code=status_code,
    )


@router.get("/patterns/{slug}/questions/{question_id}", name="question")
def question_page(
    request: Request,
    session: SessionDep,
    question: PatternQuestionDep,
    learner: OptionalLearnerDep,
) -> Response:
    """A question to answer, with its code, choices and (on request) its hint."""
    page = learning.question_page(session, question=question, learner=learner)
    return _question_response(request, page)


@router.post(
    "/patterns/{slug}/questions/{question_id}/answer", name="answer", dependencies=[CsrfDep]
)
def answer(
    request: Request,
    session: SessionDep,
    question: PatternQuestionDep,
    learner: LearnerDep,
    answer: Annotated[str | None, Form()] = None,
    shown_at: Annotated[str, Form()] = "",
) -> Response:
    """Grade and store an answer, then show its result (post/redirect/get)."""
    try:
        if answer is None:
            raise Invalid("Pick one of the choices before submitting.", field="answer")
        attempt = learning.record_attempt(
            session,
            learner=learner,
            question=question,
            answer=answer,
            time_taken_ms=_time_taken_ms(request, shown_at, question.id),
        )
    except Invalid as exc:
        page = learning.question_page(session, question=question, learner=learner)
        return _question_response(request, page, error=exc.message, status_code=422)
    url = request.url_for(
        "attempt", slug=question.pattern_slug, question_id=question.id, attempt_id=attempt.id
    )
    return RedirectResponse(url, status_code=303)


@router.post("/patterns/{slug}/questions/{question_id}/hint", name="hint", dependencies=[CsrfDep])
def hint(
    request: Request, session: SessionDep, question: PatternQuestionDep, learner: LearnerDep
) -> Response:
    """Record that the learner asked for the hint, and show it on the question page."""
    learning.reveal_hint(session, learner=learner, question=question)
    url = request.url_for("question", slug=question.pattern_slug, question_id=question.id)
    return RedirectResponse(f"{url}#hint", status_code=303)


@router.get("/patterns/{slug}/questions/{question_id}/attempts/{attempt_id}", name="attempt")
def attempt_page(
    request: Request,
    session: SessionDep,
    question: PatternQuestionDep,
    attempt_id: int,
    learner: OptionalLearnerDep,
) -> Response:
    """The result of one of this learner's attempts, with the worked solution."""
    result = learning.attempt_result(
        session, attempt_id=attempt_id, question=question, learner=learner
    )
    return render(request, "questions/attempt.html", {"result": result})
