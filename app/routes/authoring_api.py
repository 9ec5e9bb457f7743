"""The instructors' JSON API: create, version, validate and analyse questions.

Authenticate with the session cookie (then, like every API call that writes, send JSON) or a
personal API token from /instructor/tokens: `Authorization: Bearer <token>`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field, JsonValue

from app.authoring import editor, stats, versions
from app.checking.verify import VariantRun
from app.deps import AnyQuestionDep, JsonRequestDep, SessionDep, StaffDep, StaffRunsDep
from app.errors import Invalid, Problem
from app.models import MAX_ROW_INT
from app.routes.downloads import attempts_csv_response
from app.routes.openapi import (
    JSON_WRITE,
    RUNS_CODE,
    STAFF,
    JsonIn,
    ProblemOut,
    Responses,
    errors,
)
from app.sandbox.protocol import ErrorInfo, TraceEvent, WarningRecord

router = APIRouter(prefix="/api", tags=["instructors"])

NO_QUESTION = errors(s404="No such question.")
# An instructor's JSON write that runs the question (a new guest is never made: no 429 for
# that, but a run can be refused with 429 like any other).
STAFF_WRITE: Responses = {
    **JSON_WRITE,
    **STAFF,
    **errors(s403="The account is not an instructor, or the request came from another site."),
    **RUNS_CODE,
}
REJECTED = errors(
    s422="The question is invalid or its key disagrees with the real run; `errors` lists "
    "every problem by field."
)


class QuestionIn(JsonIn):
    """A question in the questions/ file format (as JSON), and where a new one goes."""

    question: dict[str, JsonValue] = Field(
        description="The question, exactly as a questions/ YAML file holds it."
    )
    pattern: str | None = Field(
        default=None,
        max_length=200,
        description="Slug of the pattern: where a new question goes. A question stays in its "
        "pattern: on PUT, a different one is refused.",
    )
    base_version: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ROW_INT,
        description="PUT: the version your change starts from; if someone saved a newer one "
        "since, the save is refused (409) instead of undoing theirs.",
    )


class VariantRunOut(BaseModel):
    """An output question's variant, run in the sandbox."""

    index: int
    params: dict[str, JsonValue] = Field(description="Its parameter values.")
    status: str = Field(description="The runner's verdict: ok, error, timeout, …")
    answer: str | None = Field(description="The key this run gives (what learners must type).")
    stdout: str
    value: str | None = Field(description="repr() of the expression, if the question has one.")
    error: ErrorInfo | None
    trace: list[TraceEvent] = Field(description="LR of every param group after every step.")
    warnings: list[WarningRecord]
    problem: str | None = Field(description="Why this variant cannot be saved, if it cannot.")


class ValidationOut(BaseModel):
    """A question checked without saving: the keys its runs give, or what is wrong."""

    valid: bool
    errors: list[ProblemOut]
    kind: str | None = Field(description="The question's kind, when it parsed.")
    variants: list[VariantRunOut] = Field(description="Output questions: every variant's run.")
    reference_status: str | None = Field(
        description="Code questions: the reference solution's run verdict."
    )
    warnings: list[str] = Field(
        default_factory=list, description="Worth a look, but no reason to refuse the question."
    )
    exists: bool = Field(
        description="A question with this id exists: POST would be refused, PUT makes a new "
        "version."
    )


class SavedOut(BaseModel):
    """The outcome of a save."""

    id: str
    title: str = Field(description="The saved question's title, as lists show it.")
    version: int = Field(description="The question's current version.")
    changed: bool = Field(description="False when the content equalled the current version.")


class VersionOut(BaseModel):
    """One version of a question."""

    version: int
    created_at: datetime
    source: str = Field(description="file | editor | api | upload | restore")
    author: str
    attempts: int = Field(description="Attempts that answered this version.")
    current: bool


def _problem_out(problem: Problem) -> ProblemOut:
    return ProblemOut(field=problem.field, message=problem.message, line=problem.line)


def _variant_out(run: VariantRun) -> VariantRunOut:
    result = run.result
    return VariantRunOut(
        index=run.index,
        params=run.params,
        status=result.status.value if result else "not run",
        answer=run.answer,
        stdout=result.stdout if result else "",
        value=result.value if result else None,
        error=result.error if result else None,
        trace=result.trace if result else [],
        warnings=result.warnings if result else [],
        problem=run.problem,
    )


@router.post(
    "/questions/validate",
    responses={
        **STAFF_WRITE,
        **errors(s422="The body is not a JSON object with a `question` object."),
    },
    dependencies=[JsonRequestDep],
)
def api_validate_question(
    session: SessionDep, staff: StaffDep, runs: StaffRunsDep, body: QuestionIn
) -> ValidationOut:
    """Check a question without saving it: the schema, its Markdown, and the real run (every
    variant of an output question; a code question's reference and self-tests)."""
    try:
        question = editor.parse_data(body.question)
    except editor.QuestionRejected as exc:
        errors = [_problem_out(e) for e in exc.errors]
        return ValidationOut(
            valid=False, errors=errors, kind=None, variants=[], reference_status=None, exists=False
        )
    problems = editor.placement_problems(session, question=question, pattern_slug=body.pattern)
    check = editor.check_question(session, question, runs)
    errors = [_problem_out(e) for e in problems + check.problems]
    return ValidationOut(
        valid=not errors,
        errors=errors,
        kind=question.kind,
        variants=[_variant_out(run) for run in check.variants],
        reference_status=check.reference.result.status.value if check.reference else None,
        warnings=check.warnings,
        exists=editor.question_exists(session, question.id),
    )


@router.post(
    "/questions",
    status_code=201,
    responses={**STAFF_WRITE, **REJECTED},
    dependencies=[JsonRequestDep],
)
def api_create_question(
    session: SessionDep, staff: StaffDep, runs: StaffRunsDep, body: QuestionIn
) -> SavedOut:
    """Create a question in `pattern`, after running it; refused (422) when its key
    disagrees with the real run."""
    question = editor.parse_data(body.question)
    version = editor.save_question(
        session,
        question=question,
        pattern_slug=body.pattern,
        editing=None,
        runs=runs,
        author_id=staff.id,
        source=editor.API,
    )
    return SavedOut(
        id=question.id,
        title=question.title,
        version=version.version if version else 1,
        changed=True,
    )


@router.put(
    "/questions/{question_id}",
    responses={
        **STAFF_WRITE,
        **NO_QUESTION,
        **errors(s409="Someone saved a newer version since `base_version`."),
        **REJECTED,
    },
    dependencies=[JsonRequestDep],
)
def api_update_question(
    session: SessionDep,
    staff: StaffDep,
    runs: StaffRunsDep,
    record: AnyQuestionDep,
    body: QuestionIn,
) -> SavedOut:
    """Save a new version of a question (after running it). Saving what the current
    version already says changes nothing (`changed: false`)."""
    question = editor.parse_data(body.question)
    if body.pattern is not None and body.pattern != record.pattern_slug:
        raise Invalid(
            f"{record.id!r} is in pattern {record.pattern_slug!r}; questions do not move "
            "between patterns (create a new one there instead).",
            field="pattern",
        )
    version = editor.save_question(
        session,
        question=question,
        pattern_slug=None,
        editing=record.id,
        runs=runs,
        author_id=staff.id,
        source=editor.API,
        base_version=body.base_version,
    )
    return SavedOut(
        id=record.id,
        title=question.title,
        version=version.version if version else record.version,
        changed=version is not None,
    )


@router.get(
    "/questions/{question_id}/versions",
    responses={**STAFF, **NO_QUESTION},
)
def api_list_versions(
    session: SessionDep, staff: StaffDep, record: AnyQuestionDep
) -> list[VersionOut]:
    """Every version of a question, newest first."""
    history = versions.history(session, record.id)
    return [VersionOut.model_validate(view, from_attributes=True) for view in history]


@router.get(
    "/questions/{question_id}/stats",
    responses={**STAFF, **NO_QUESTION},
)
def api_question_stats(
    session: SessionDep, staff: StaffDep, record: AnyQuestionDep
) -> stats.QuestionStats:
    """How a question performs: attempts, facility, discrimination, choices picked, time,
    hint and solution use, facility per variant value, and flags."""
    return stats.question_stats(session, question_id=record.id)


@router.get(
    "/attempts.csv",
    responses={
        **STAFF,
        **errors(404, 422),
        200: {"content": {"text/csv": {}}, "description": "One row per attempt."},
    },
)
def api_attempts_csv(
    request: Request,
    session: SessionDep,
    staff: StaffDep,
    pattern: Annotated[str | None, Query(max_length=200, description="Only this pattern.")] = None,
) -> Response:
    """Every attempt (of one pattern, if given) as CSV."""
    return attempts_csv_response(request, session, pattern)
