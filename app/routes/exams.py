"""The 10-question test of a pattern: the pages and their JSON API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Path, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field, JsonValue, WithJsonSchema

from app.deps import (
    CsrfDep,
    JsonRequestDep,
    PatternDep,
    RowId,
    RunsDep,
    SessionDep,
    VisitorDep,
    read_shown,
    sign_shown,
    verify_csrf,
)
from app.errors import Conflict, Forbidden, Invalid
from app.learning import exams
from app.routes.api import (
    ANSWER_TYPES,
    INVALID,
    NOT_FOUND,
    WRITE,
    AttemptOut,
    QuestionOut,
    attempt_out,
    question_out,
)
from app.routes.openapi import RUNS_CODE, JsonIn, NoInputDep, errors
from app.templating import render

router = APIRouter()

Number = Annotated[int, Path(ge=1, le=1000, description="A question's number in the test, from 1.")]
CONFLICT = errors(s409="The test is already finished.")


# --- JSON -----------------------------------------------------------------------------------


class ExamQuestionOut(BaseModel):
    """A question of a test: as drawn, with the answer saved so far (never a grade)."""

    number: int = Field(description="1-based position in the test.")
    question: QuestionOut = Field(description="The question at the version and variant drawn.")
    answer: JsonValue = Field(description="The saved answer, or null.")


class DifficultyScoreOut(BaseModel):
    """How a test went on one difficulty."""

    difficulty: str
    correct: int
    total: int


class VerdictOut(BaseModel):
    """How strong the pattern is, and what to do next."""

    level: Literal["strong", "developing", "weak"]
    title: str
    advice: str


class ExamItemResultOut(BaseModel):
    """A question of a finished test."""

    number: int
    question_id: str
    answered: bool
    correct: bool
    attempt: AttemptOut | None = Field(
        description="The graded answer with feedback and worked solution (null: unanswered)."
    )


class ExamResultOut(BaseModel):
    """A finished test."""

    score: float = Field(description="0–1: the share of questions answered right.")
    correct: int
    total: int
    breakdown: list[DifficultyScoreOut]
    verdict: VerdictOut
    items: list[ExamItemResultOut]


class ExamOut(BaseModel):
    """A test: its questions and saved answers; once finished, its result."""

    id: int
    pattern: str = Field(description="Slug of the pattern tested.")
    started_at: datetime
    finished_at: datetime | None
    resume_at: int = Field(description="The question number to resume at.")
    answered: int = Field(description="How many questions have an answer saved.")
    questions: list[ExamQuestionOut]
    result: ExamResultOut | None = Field(description="Null until the test is finished.")


class ExamAnswerIn(JsonIn):
    """An answer to save (not graded until the test is finished)."""

    answer: Annotated[JsonValue, WithJsonSchema({"anyOf": [*ANSWER_TYPES, {"type": "null"}]})] = (
        Field(description="As for `POST /api/questions/{id}/attempts`; null or empty clears it.")
    )


def _question_out(question: exams.ExamQuestion) -> ExamQuestionOut:
    return ExamQuestionOut(
        number=question.number,
        question=question_out(question.question, question.item.variant_index),
        answer=question.item.answer,
    )


def _result_out(result: exams.ExamResult) -> ExamResultOut:
    return ExamResultOut(
        score=result.view.exam.score or 0.0,
        correct=result.correct,
        total=len(result.items),
        breakdown=[
            DifficultyScoreOut(difficulty=b.difficulty.value, correct=b.correct, total=b.total)
            for b in result.breakdown
        ],
        verdict=VerdictOut(
            level=result.verdict.level,
            title=result.verdict.title,
            advice=result.verdict.advice,
        ),
        items=[
            ExamItemResultOut(
                number=item.question.number,
                question_id=item.question.question.id,
                answered=item.recorded is not None,
                correct=item.correct,
                attempt=attempt_out(item.recorded) if item.recorded else None,
            )
            for item in result.items
        ],
    )


def _exam_out(view: exams.ExamView, result: exams.ExamResult | None) -> ExamOut:
    return ExamOut(
        id=view.exam.id,
        pattern=view.pattern.slug,
        started_at=view.exam.started_at,
        finished_at=view.exam.finished_at,
        resume_at=view.resume_number,
        answered=view.answered,
        questions=[_question_out(q) for q in view.questions],
        result=_result_out(result) if result else None,
    )


@router.post(
    "/api/patterns/{slug}/tests",
    tags=["tests"],
    responses={**WRITE, **errors(s422="The pattern has no test questions yet.")},
    dependencies=[JsonRequestDep, NoInputDep],
)
def start_test_api(session: SessionDep, pattern: PatternDep, visitor: VisitorDep) -> ExamOut:
    """Start a test of the pattern — or, if one is open, resume it (one open test per
    pattern). No answer is graded until the test is finished."""
    exam = exams.start_exam(session, visitor=visitor, pattern=pattern)
    return _exam_out(exams.exam_view(session, exam), None)


@router.get("/api/tests/{exam_id}", tags=["tests"], responses={**NOT_FOUND, **RUNS_CODE})
def get_test_api(
    session: SessionDep, exam_id: RowId, visitor: VisitorDep, runs: RunsDep
) -> ExamOut:
    """One of your tests: questions and saved answers, and its result once finished.
    Anyone else's test is 404."""
    exam = exams.get_exam_or_raise(session, exam_id, learner=visitor.learner)
    view = exams.exam_view(session, exam)
    result = exams.exam_result(session, view, runs=runs) if view.finished else None
    return _exam_out(view, result)


@router.put(
    "/api/tests/{exam_id}/questions/{number}/answer",
    tags=["tests"],
    responses={**WRITE, **INVALID, **CONFLICT},
    dependencies=[JsonRequestDep],
)
def save_answer_api(
    session: SessionDep, exam_id: RowId, number: Number, visitor: VisitorDep, body: ExamAnswerIn
) -> ExamQuestionOut:
    """Save (or clear) the answer to a question of an open test. No feedback: the answer is
    graded when the test is finished."""
    saved = exams.save_answer(
        session,
        visitor=visitor,
        exam_id=exam_id,
        number=number,
        answer=body.answer,
    )
    return _question_out(saved)


@router.post(
    "/api/tests/{exam_id}/finish",
    tags=["tests"],
    responses={
        **WRITE,
        **errors(s409="An answer changed while the test was being finished: finish again."),
        **RUNS_CODE,
    },
    dependencies=[JsonRequestDep, NoInputDep],
)
def finish_test_api(
    session: SessionDep, exam_id: RowId, visitor: VisitorDep, runs: RunsDep
) -> ExamResultOut:
    """Finish the test: every saved answer is graded and stored as an attempt. Finishing a
    finished test returns the same result (it is recorded once)."""
    exam = exams.finish_exam(session, visitor=visitor, exam_id=exam_id, runs=runs)
    return _result_out(exams.exam_result(session, exams.exam_view(session, exam), runs=runs))


# --- pages ----------------------------------------------------------------------------------


@router.get("/patterns/{slug}/test", name="test", include_in_schema=False)
def test_page(
    request: Request, session: SessionDep, pattern: PatternDep, visitor: VisitorDep
) -> Response:
    """Start (or resume) the pattern's test; past results."""
    landing = exams.landing(session, learner=visitor.learner, pattern=pattern)
    return render(request, "exams/start.html", {"landing": landing})


@router.post(
    "/patterns/{slug}/test", name="start_test", include_in_schema=False, dependencies=[CsrfDep]
)
def start_test(
    request: Request, session: SessionDep, pattern: PatternDep, visitor: VisitorDep
) -> Response:
    """Start a test (or resume the open one) and go to its current question."""
    exam = exams.start_exam(session, visitor=visitor, pattern=pattern)
    return RedirectResponse(request.url_for("exam", exam_id=exam.id), status_code=303)


@router.get("/tests/{exam_id}", name="exam", include_in_schema=False)
def exam_page(
    request: Request, session: SessionDep, exam_id: RowId, visitor: VisitorDep, runs: RunsDep
) -> Response:
    """A finished test's result; an open test resumes at its current question."""
    exam = exams.get_exam_or_raise(session, exam_id, learner=visitor.learner)
    view = exams.exam_view(session, exam)
    if not view.finished:
        url = request.url_for("exam_question", exam_id=exam.id, number=view.resume_number)
        return RedirectResponse(url, status_code=303)
    result = exams.exam_result(session, view, runs=runs)
    return render(request, "exams/result.html", {"result": result})


def _question_response(
    request: Request,
    view: exams.ExamView,
    number: int,
    *,
    given: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    question = view.question(number)
    return render(
        request,
        "exams/question.html",
        {
            "view": view,
            "current": question,
            "q": question.shown,
            "given": question.given if given is None else given,
            "error": error,
            "shown_at": sign_shown(request, f"exam:{view.exam.id}:{number}"),
        },
        status_code=status_code,
    )


@router.get("/tests/{exam_id}/questions/{number}", name="exam_question", include_in_schema=False)
def exam_question(
    request: Request, session: SessionDep, exam_id: RowId, number: Number, visitor: VisitorDep
) -> Response:
    """One question of an open test, with the answer saved so far."""
    exam = exams.get_exam_or_raise(session, exam_id, learner=visitor.learner)
    if exam.finished_at is not None:
        return RedirectResponse(request.url_for("exam", exam_id=exam.id), status_code=303)
    return _question_response(request, exams.exam_view(session, exam), number)


Go = Literal["next", "previous", "skip", "finish"]


@router.post(
    "/tests/{exam_id}/questions/{number}",
    name="save_exam_answer",
    include_in_schema=False,
)
def save_exam_answer(
    request: Request,
    session: SessionDep,
    exam_id: RowId,
    number: Number,
    visitor: VisitorDep,
    answer: Annotated[str | None, Form()] = None,
    go: Annotated[Go, Form()] = "next",
    shown_at: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Save the answer (unless skipping) and go to the previous or next question, or to
    the finish page. A malformed answer — or a page from before a log-in in another tab —
    shows the question again with what the learner typed, saying why."""
    try:
        verify_csrf(request, csrf_token)
    except Forbidden:
        exam = exams.get_exam_or_raise(session, exam_id, learner=visitor.learner)
        message = (
            "This page is from before you logged in or out in another tab, so your answer "
            "was not saved. Check it and save it again."
        )
        view = exams.exam_view(session, exam)
        return _question_response(
            request, view, number, given=answer or "", error=message, status_code=403
        )
    shown = read_shown(request, shown_at)
    time_taken_ms = shown[1] if shown and shown[0] == f"exam:{exam_id}:{number}" else None
    try:
        if go == "skip":
            exams.move_to(session, visitor=visitor, exam_id=exam_id, number=number)
        else:
            exams.save_answer(
                session,
                visitor=visitor,
                exam_id=exam_id,
                number=number,
                answer=answer,
                time_taken_ms=time_taken_ms,
            )
    except Conflict:
        session.rollback()
        return RedirectResponse(request.url_for("exam", exam_id=exam_id), status_code=303)
    except Invalid as exc:
        session.rollback()
        exam = exams.get_exam_or_raise(session, exam_id, learner=visitor.learner)
        view = exams.exam_view(session, exam)
        return _question_response(
            request, view, number, given=answer or "", error=exc.message, status_code=exc.status
        )
    exam = exams.get_exam_or_raise(session, exam_id, learner=visitor.learner)
    total = len(exam.items)
    if go == "previous" and number > 1:
        url = request.url_for("exam_question", exam_id=exam_id, number=number - 1)
    elif go in ("next", "skip") and number < total:
        url = request.url_for("exam_question", exam_id=exam_id, number=number + 1)
    elif go == "previous":
        url = request.url_for("exam_question", exam_id=exam_id, number=number)
    else:
        url = request.url_for("exam_finish", exam_id=exam_id)
    return RedirectResponse(url, status_code=303)


@router.get("/tests/{exam_id}/finish", name="exam_finish", include_in_schema=False)
def finish_page(
    request: Request, session: SessionDep, exam_id: RowId, visitor: VisitorDep
) -> Response:
    """What is answered and what is not, and the button that finishes the test."""
    exam = exams.get_exam_or_raise(session, exam_id, learner=visitor.learner)
    if exam.finished_at is not None:
        return RedirectResponse(request.url_for("exam", exam_id=exam.id), status_code=303)
    return render(request, "exams/finish.html", {"view": exams.exam_view(session, exam)})


@router.post(
    "/tests/{exam_id}/finish",
    name="finish_exam",
    include_in_schema=False,
    dependencies=[CsrfDep],
)
def finish(
    request: Request, session: SessionDep, exam_id: RowId, visitor: VisitorDep, runs: RunsDep
) -> Response:
    """Grade the test and show its result (again, if it was finished already)."""
    exams.finish_exam(session, visitor=visitor, exam_id=exam_id, runs=runs)
    return RedirectResponse(request.url_for("exam", exam_id=exam_id), status_code=303)
