"""Learner pages, server-rendered: they work without JavaScript."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from app.bank import service as bank
from app.bank.service import LiveQuestion
from app.deps import (
    UNTIMED,
    CsrfDep,
    OwnerDep,
    PatternDep,
    PatternQuestionDep,
    RowId,
    RunsDep,
    SandboxDep,
    SessionDep,
    SettingsDep,
    VisitorDep,
    or_default,
    read_shown,
    sign_question_shown,
)
from app.errors import Busy, Invalid, TooManyRequests
from app.learning import answering, lesson, modes, progress
from app.models import MAX_ROW_INT
from app.routes.traces import recorded_run
from app.templating import render

router = APIRouter(include_in_schema=False)

NOTHING_GIVEN = {
    "choice": "Pick one of the choices before submitting.",
    "output": "Type what the code prints before submitting.",
    "code": "Write some code before submitting.",
    "fix": "Submit the code with the bug fixed.",
    "steps": "Predict the learning rate of every epoch, one at a time, on the step-through page.",
}


def _read_shown_token(
    request: Request, token: str, question_id: str
) -> tuple[int | None, int | None, int | None]:
    """(variant shown, version shown, milliseconds since) from a page's `shown_at` field;
    Nones if invalid. A page that asks several questions signs them untimed: the time since
    it was shown is not the time one of them took."""
    shown = read_shown(request, token)
    if shown is None:
        return None, None, None
    subject, elapsed_ms = shown
    shown_id, version, variant, timing = [*subject.split(":"), "", "", ""][:4]
    if shown_id != question_id or not variant.isdigit() or not version.isdigit():
        return None, None, None
    return int(variant), int(version), None if timing == UNTIMED else elapsed_ms


@router.get("/", name="home")
def home(request: Request, session: SessionDep, visitor: VisitorDep) -> Response:
    """The patterns with this learner's progress, and the reviews due across them."""
    home = progress.home(session, learner=visitor.learner)
    return render(request, "patterns/index.html", {"home": home})


@router.get("/patterns/{slug}", name="pattern")
def pattern_page(
    request: Request,
    session: SessionDep,
    pattern: PatternDep,
    visitor: VisitorDep,
    sandbox: SandboxDep,
    settings: SettingsDep,
    owner: OwnerDep,
) -> Response:
    """The lesson, top to bottom: the recorded run, the key insight, the quiz and practice
    asked in the page, the ways to go on, and every question by kind and difficulty."""
    page = lesson.lesson_page(session, pattern=pattern, visitor=visitor)
    ways = modes.pattern_modes(session, overview=page.overview, learner=visitor.learner)
    recorded = None
    if pattern.file.pipeline is not None:
        recorded = recorded_run(
            request, session, pattern, sandbox, timeout_s=settings.sandbox_timeout_s, owner=owner
        )
    context = {
        "lesson": page,
        "overview": page.overview,
        "modes": ways,
        "recorded": recorded,
        **asked_in_page(request, page.quiz + page.practice),
    }
    return render(request, "patterns/detail.html", context)


def asked_in_page(request: Request, cards: list[lesson.InlineQuestion]) -> dict[str, Any]:
    """What a page asking `cards` in place needs besides them: each one's token (untimed: the
    page's age is not an answer's time), and after how many wrong tries a solution shows."""
    return {
        "shown_at": {
            card.question.id: sign_question_shown(request, card.question, card.variant, timed=False)
            for card in cards
        },
        "tries_before_solution": answering.TRIES_BEFORE_SOLUTION,
    }


# Pages that ask questions in place: an answer, a hint or a revealed solution there comes
# back to the question on that page (`back`), not to the question's own page.
Back = Literal["lesson", "quiz"]
BACK_ROUTES: dict[str, str] = {"lesson": "pattern", "quiz": "quiz"}
BackField = Annotated[Back | None, Form(), or_default(None)]


def _back_to(
    request: Request, session: SessionDep, question: LiveQuestion, back: Back | None
) -> RedirectResponse | None:
    """The way back to the question on the page that asked it — None when no page did, or
    that page does not ask it (its outcome then shows on the question's own pages)."""
    if back is None:
        return None
    pattern = bank.get_pattern_or_raise(session, question.pattern_slug)
    if not lesson.asks(pattern, question, page=back):
        return None
    url = request.url_for(BACK_ROUTES[back], slug=question.pattern_slug)
    return RedirectResponse(f"{url}#q-{question.id}", status_code=303)


def _question_response(
    request: Request,
    page: answering.QuestionPage,
    *,
    error: str | None = None,
    given: str = "",
    status_code: int = 200,
    retry_after: int | None = None,
) -> Response:
    return render(
        request,
        "questions/detail.html",
        {
            "page": page,
            "shown_at": sign_question_shown(request, page.question, page.variant),
            "error": error,
            "given": given,
        },
        status_code=status_code,
        retry_after=retry_after,
    )


@router.get("/patterns/{slug}/questions/{question_id}", name="question")
def question_page(
    request: Request,
    session: SessionDep,
    question: PatternQuestionDep,
    visitor: VisitorDep,
    from_attempt: Annotated[
        int | None, Query(alias="from", ge=1, le=MAX_ROW_INT), or_default(None)
    ] = None,
) -> Response:
    """A question to answer, with its code, choices, answer box or editor, and (on request)
    its hint. `?from=<attempt id>` starts a code question's editor from that earlier answer
    (one that cannot be an attempt's id is ignored)."""
    if question.question.kind == "steps":  # answered one epoch at a time, on a page of its own
        url = request.url_for(
            "step_through_scenario", slug=question.pattern_slug, question_id=question.id
        )
        return RedirectResponse(url, status_code=303)
    page = answering.question_page(
        session, question=question, visitor=visitor, from_attempt=from_attempt
    )
    return _question_response(request, page, given=page.prefill)


@router.post(
    "/patterns/{slug}/questions/{question_id}/answer", name="answer", dependencies=[CsrfDep]
)
def answer(
    request: Request,
    session: SessionDep,
    question: PatternQuestionDep,
    visitor: VisitorDep,
    runs: RunsDep,
    answer: Annotated[str | None, Form()] = None,
    shown_at: Annotated[str, Form()] = "",
    back: BackField = None,
) -> Response:
    """Grade and store an answer, then show its result (post/redirect/get).

    A wrong-shaped answer, a busy sandbox or a learner over their share of it shows the
    question again with the message and what the learner typed; nothing is stored.
    """
    variant, version, time_taken_ms = _read_shown_token(request, shown_at, question.id)
    try:
        if answer is None:
            raise Invalid(NOTHING_GIVEN[question.question.kind], field="answer")
        recorded = answering.record_attempt(
            session,
            visitor=visitor,
            question=question,
            answer=answer,
            runs=runs,
            variant=variant,
            version=version,
            time_taken_ms=time_taken_ms,
            time_measured=True,
        )
    except (Invalid, Busy, TooManyRequests) as exc:
        session.rollback()
        page = answering.question_page(session, question=question, visitor=visitor)
        if isinstance(exc, Busy | TooManyRequests):
            message, retry = (
                f"{exc.message} Your answer was not graded yet: submit it again.",
                (exc.retry_after),
            )
        else:
            message, retry = exc.message, None
        return _question_response(
            request,
            page,
            error=message,
            given=answer or "",
            status_code=exc.status,
            retry_after=retry,
        )
    if (way_back := _back_to(request, session, question, back)) is not None:
        return way_back
    url = request.url_for(
        "attempt",
        slug=question.pattern_slug,
        question_id=question.id,
        attempt_id=recorded.attempt.id,
    )
    return RedirectResponse(url, status_code=303)


@router.post("/patterns/{slug}/questions/{question_id}/hint", name="hint", dependencies=[CsrfDep])
def hint(
    request: Request,
    session: SessionDep,
    question: PatternQuestionDep,
    visitor: VisitorDep,
    back: BackField = None,
) -> Response:
    """Record that the learner asked for the hint, and show it on the question page."""
    answering.reveal_hint(session, visitor=visitor, question=question)
    if (way_back := _back_to(request, session, question, back)) is not None:
        return way_back
    url = request.url_for("question", slug=question.pattern_slug, question_id=question.id)
    return RedirectResponse(f"{url}#hint", status_code=303)


@router.post(
    "/patterns/{slug}/questions/{question_id}/variant", name="variant", dependencies=[CsrfDep]
)
def another_variant(
    request: Request, session: SessionDep, question: PatternQuestionDep, visitor: VisitorDep
) -> Response:
    """Give the learner a different variant of an output question."""
    answering.next_variant(session, visitor=visitor, question=question)
    url = request.url_for("question", slug=question.pattern_slug, question_id=question.id)
    return RedirectResponse(url, status_code=303)


@router.get("/patterns/{slug}/questions/{question_id}/attempts/{attempt_id}", name="attempt")
def attempt_page(
    request: Request,
    session: SessionDep,
    question: PatternQuestionDep,
    attempt_id: RowId,
    visitor: VisitorDep,
) -> Response:
    """The result of one of this learner's attempts: what was wrong and another try, or —
    once right or revealed — the key and the worked solution."""
    if question.question.kind == "steps":  # a step-through's result has a page of its own
        url = request.url_for(
            "step_through_result",
            slug=question.pattern_slug,
            question_id=question.id,
            attempt_id=attempt_id,
        )
        return RedirectResponse(url, status_code=303)
    result = answering.attempt_result(
        session, attempt_id=attempt_id, question=question, visitor=visitor
    )
    context = {
        "result": result,
        "shown_at": sign_question_shown(request, result.page.question, result.page.variant),
        "tries_before_solution": answering.TRIES_BEFORE_SOLUTION,
    }
    return render(request, "questions/attempt.html", context)


@router.post(
    "/patterns/{slug}/questions/{question_id}/attempts/{attempt_id}/solution",
    name="reveal_solution",
    dependencies=[CsrfDep],
)
def reveal_solution(
    request: Request,
    session: SessionDep,
    question: PatternQuestionDep,
    attempt_id: RowId,
    visitor: VisitorDep,
    back: BackField = None,
) -> Response:
    """Show the key and worked solution of one of this learner's wrong attempts."""
    answering.reveal_solution(
        session, visitor=visitor, attempt_id=attempt_id, question_id=question.id
    )
    if (way_back := _back_to(request, session, question, back)) is not None:
        return way_back
    url = request.url_for(
        "attempt", slug=question.pattern_slug, question_id=question.id, attempt_id=attempt_id
    )
    return RedirectResponse(f"{url}#solution-title", status_code=303)
