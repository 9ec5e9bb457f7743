"""Step through, as pages: predict a scenario's learning rate one epoch at a time, each
revealed by the real run before the next. They work without JavaScript: the predictions so
far travel in the form, and are graded afresh at every step (app.learning.stepping). The
JSON API answers a scenario whole, at `POST /api/questions/{id}/attempts`."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from app.bank.service import LiveQuestion
from app.deps import (
    CsrfDep,
    PatternDep,
    PatternQuestionDep,
    RowId,
    RunsDep,
    SessionDep,
    VisitorDep,
    read_shown,
    sign_shown,
)
from app.errors import Busy, Invalid, TooManyRequests
from app.learning import stepping
from app.templating import render

router = APIRouter(include_in_schema=False)


def _shown_subject(question: LiveQuestion) -> str:
    return f"steps:{question.id}:{question.version}"


def _carried_subject(question: LiveQuestion, predictions: list[str]) -> str:
    """What a page's `carried` token signs: the scenario and the predictions it carries, so
    that none can be changed once its epoch was revealed."""
    digest = hashlib.sha256(json.dumps(predictions).encode()).hexdigest()
    return f"{_shown_subject(question)}:{digest}"


def _carried_as_signed(
    request: Request, question: LiveQuestion, earlier: list[str], token: str
) -> bool:
    """Whether `earlier` is what a page of this scenario carried, as it signed it."""
    if not earlier:
        return True  # nothing carried yet: the first epoch
    signed = read_shown(request, token)
    return signed is not None and signed[0] == _carried_subject(question, earlier)


def _scenario_response(
    request: Request,
    page: stepping.StepPage,
    *,
    shown_at: str | None = None,
    error: str | None = None,
    error_field: str | None = None,
    given: str = "",
    status_code: int = 200,
    retry_after: int | None = None,
) -> Response:
    return render(
        request,
        "step_through/scenario.html",
        {
            "page": page,
            # When the scenario was first shown: kept through every step, to time the whole.
            "shown_at": shown_at or sign_shown(request, _shown_subject(page.place.question)),
            "carried": sign_shown(request, _carried_subject(page.place.question, page.predictions)),
            "error": error,
            "error_field": error_field,
            "given": given,
        },
        status_code=status_code,
        retry_after=retry_after,
    )


@router.get("/patterns/{slug}/step-through", name="step_through")
def scenarios(
    request: Request, session: SessionDep, pattern: PatternDep, visitor: VisitorDep
) -> Response:
    """The pattern's step-through scenarios, each a link to begin it."""
    found = stepping.scenarios(session, pattern=pattern, visitor=visitor)
    return render(request, "step_through/index.html", {"pattern": pattern, "scenarios": found})


@router.get("/patterns/{slug}/step-through/{question_id}", name="step_through_scenario")
def scenario(
    request: Request,
    session: SessionDep,
    question: PatternQuestionDep,
    visitor: VisitorDep,
    runs: RunsDep,
) -> Response:
    """A scenario from its start: the code, epoch 0's rate, and epoch 1 to predict."""
    page = stepping.step_page(session, question=question, visitor=visitor, runs=runs)
    return _scenario_response(request, page)


@router.post(
    "/patterns/{slug}/step-through/{question_id}",
    name="step_through_step",
    dependencies=[CsrfDep],
)
def step(
    request: Request,
    session: SessionDep,
    question: PatternQuestionDep,
    visitor: VisitorDep,
    runs: RunsDep,
    earlier: Annotated[list[str] | None, Form()] = None,
    prediction: Annotated[str, Form()] = "",
    shown_at: Annotated[str, Form()] = "",
    carried: Annotated[str, Form()] = "",
) -> Response:
    """Reveal the epoch just predicted (the page again, one epoch further), or after the last
    one store the step-through as an attempt and show its result (post/redirect/get).

    What the page carried is checked: a prediction that is not a number is said beside its
    field; predictions so far that this scenario cannot have, or that are not the ones the
    page carried as it signed them (changed once revealed), start it again."""
    shown = read_shown(request, shown_at)
    subject = _shown_subject(question)
    time_taken_ms = shown[1] if shown is not None and shown[0] == subject else None
    try:
        if not _carried_as_signed(request, question, earlier or [], carried):
            raise Invalid(
                "The predictions this page carried were changed after their epochs were "
                "revealed: the scenario starts again from epoch 1.",
                field=stepping.EARLIER,
            )
        outcome = stepping.predict(
            session,
            question=question,
            visitor=visitor,
            runs=runs,
            earlier=earlier or [],
            prediction=prediction,
            time_taken_ms=time_taken_ms,
        )
    except (Invalid, Busy, TooManyRequests) as exc:
        session.rollback()
        restart = isinstance(exc, Invalid) and exc.field == stepping.EARLIER
        page = stepping.step_page(
            session,
            question=question,
            visitor=visitor,
            runs=runs,
            predictions=[] if restart else earlier,
        )
        message = exc.message
        if isinstance(exc, Busy | TooManyRequests):
            message += " Your prediction was not checked yet: reveal it again."
        return _scenario_response(
            request,
            page,
            shown_at=None if restart else shown_at,
            error=message,
            error_field=exc.field,
            given="" if restart else prediction,
            status_code=exc.status,
            retry_after=exc.retry_after if isinstance(exc, Busy | TooManyRequests) else None,
        )
    if isinstance(outcome, stepping.StepPage):
        return _scenario_response(request, outcome, shown_at=shown_at)
    url = request.url_for(
        "step_through_result",
        slug=question.pattern_slug,
        question_id=question.id,
        attempt_id=outcome.attempt.id,
    )
    return RedirectResponse(url, status_code=303)


@router.get(
    "/patterns/{slug}/step-through/{question_id}/attempts/{attempt_id}",
    name="step_through_result",
)
def result(
    request: Request,
    session: SessionDep,
    question: PatternQuestionDep,
    attempt_id: RowId,
    visitor: VisitorDep,
) -> Response:
    """A finished step-through: the score, every epoch predicted and real, the chart."""
    found = stepping.step_result(session, question=question, visitor=visitor, attempt_id=attempt_id)
    return render(request, "step_through/result.html", {"result": found})
