"""Instructors' pages: the bank, the question editor, versions, imports and exports,
statistics and API tokens. Every route here needs the instructor (or admin) role."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from app import accounts
from app.authoring import editor, starters, stats, transfer, versions
from app.bank import service as bank
from app.deps import (
    AnyQuestionDep,
    BrowserStaffDep,
    CsrfDep,
    PatternDep,
    RowId,
    SessionDep,
    StaffDep,
    StaffRunsDep,
)
from app.errors import Invalid
from app.models import MAX_ROW_INT
from app.routes.downloads import attempts_csv_response, download
from app.templating import render, render_fragment

router = APIRouter(prefix="/instructor", include_in_schema=False)

# An empty textarea arrives as no field at all: the editor says what is missing, beside it.
Source = Annotated[str, Form(max_length=editor.MAX_SOURCE_CHARS * 2)]
Action = Annotated[str, Form(pattern="^(preview|run|save)$")]
PatternField = Annotated[str, Form(max_length=200)]


@router.get("", name="instructor")
def dashboard(request: Request, session: SessionDep, staff: StaffDep) -> Response:
    """The bank: every pattern and question (retired ones too), with links to edit them."""
    patterns = [
        (pattern, bank.list_records(session, pattern)) for pattern in bank.list_patterns(session)
    ]
    orphans = bank.list_orphans(session)
    return render(
        request,
        "instructor/dashboard.html",
        {"patterns": patterns, "orphans": orphans, "staff": staff},
    )


def _editor(
    request: Request,
    *,
    source: str,
    outcome: editor.EditorOutcome | None = None,
    record: bank.QuestionRecord | None = None,
    pattern_slug: str | None = None,
    patterns: list[bank.PatternView] | None = None,
    saved_version: int | None = None,
    base_version: int | None = None,
    old_version: int | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "instructor/editor.html",
        {
            "source": source,
            "outcome": outcome or editor.EditorOutcome(),
            "record": record,
            "pattern_slug": pattern_slug,
            "patterns": patterns or [],
            "kinds": starters.STARTER_KINDS,
            "saved_version": saved_version,
            "base_version": base_version,
            "old_version": old_version,
        },
        status_code=status_code,
    )


@router.get("/questions/new", name="new_question")
def new_question(
    request: Request,
    session: SessionDep,
    staff: StaffDep,
    pattern: Annotated[str | None, Query(max_length=200)] = None,
    kind: Annotated[str, Query(max_length=20)] = "choice",
) -> Response:
    """The editor, starting from a valid question of the chosen kind."""
    source = starters.starter_source(kind)
    patterns = bank.list_patterns(session)
    slug = pattern or (patterns[0].slug if patterns else None)
    outcome = editor.preview(session, source=source, pattern_slug=slug, editing=None)
    return _editor(request, source=source, outcome=outcome, pattern_slug=slug, patterns=patterns)


@router.post("/questions/new", dependencies=[CsrfDep])
def create_question(
    request: Request,
    session: SessionDep,
    staff: StaffDep,
    runs: StaffRunsDep,
    action: Action,
    source: Source = "",
    pattern: PatternField = "",
) -> Response:
    """Preview, run or save a new question."""
    outcome = editor.submit(
        session,
        source=source,
        action=action,
        pattern_slug=pattern,
        editing=None,
        runs=runs,
        author_id=staff.id,
    )
    if outcome.saved is not None:
        url = request.url_for("edit_question", question_id=outcome.saved.question_id)
        return RedirectResponse(f"{url}?saved={outcome.saved.version}", status_code=303)
    return _editor(
        request,
        source=source,
        outcome=outcome,
        pattern_slug=pattern,
        patterns=bank.list_patterns(session),
        status_code=422 if outcome.errors else 200,
    )


@router.get("/questions/{question_id}/edit", name="edit_question")
def edit_question(
    request: Request,
    session: SessionDep,
    staff: StaffDep,
    record: AnyQuestionDep,
    saved: Annotated[int | None, Query(ge=1, le=MAX_ROW_INT)] = None,
    version: Annotated[int | None, Query(ge=1, le=MAX_ROW_INT)] = None,
) -> Response:
    """The editor with the question's current version (`saved`: just saved as that), or an
    older `version`'s content, to change and save as the newest."""
    old = version if version is not None and version != record.version else None
    source = versions.edit_source(session, record.id, old) if old else record.yaml
    outcome = editor.preview(
        session, source=source, pattern_slug=record.pattern_slug, editing=record.id
    )
    return _editor(
        request,
        source=source,
        outcome=outcome,
        record=record,
        pattern_slug=record.pattern_slug,
        saved_version=saved,
        old_version=old,
    )


@router.post("/questions/{question_id}/edit", dependencies=[CsrfDep])
def update_question(
    request: Request,
    session: SessionDep,
    staff: StaffDep,
    runs: StaffRunsDep,
    record: AnyQuestionDep,
    action: Action,
    source: Source = "",
    base_version: Annotated[int | None, Form(ge=1, le=MAX_ROW_INT)] = None,
) -> Response:
    """Preview, run or save a new version of a question (on top of `base_version`, the
    version the editor was opened on: a save over someone else's newer one is refused)."""
    outcome = editor.submit(
        session,
        source=source,
        action=action,
        pattern_slug=record.pattern_slug,
        editing=record.id,
        runs=runs,
        author_id=staff.id,
        base_version=base_version,
    )
    if outcome.saved is not None:
        url = request.url_for("edit_question", question_id=record.id)
        return RedirectResponse(f"{url}?saved={outcome.saved.version}", status_code=303)
    return _editor(
        request,
        source=source,
        outcome=outcome,
        record=record,
        pattern_slug=record.pattern_slug,
        base_version=base_version,
        status_code=422 if outcome.errors else 200,
    )


@router.post("/questions/preview", name="preview_question", dependencies=[CsrfDep])
def preview_question(
    request: Request,
    session: SessionDep,
    staff: StaffDep,
    source: Source = "",
    pattern: PatternField = "",
    editing: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    """The live preview (an HTML fragment for the editor's script): the question as
    learners will see it, or what is wrong with it."""
    outcome = editor.preview(
        session, source=source, pattern_slug=pattern or None, editing=editing or None
    )
    html = render_fragment(request, "instructor/_preview.html", {"outcome": outcome})
    return Response(html, media_type="text/html", status_code=422 if outcome.errors else 200)


@router.get("/questions/{question_id}/versions", name="question_versions")
def question_versions(
    request: Request,
    session: SessionDep,
    staff: StaffDep,
    record: AnyQuestionDep,
    old: Annotated[int | None, Query(ge=1, le=MAX_ROW_INT)] = None,
    new: Annotated[int | None, Query(ge=1, le=MAX_ROW_INT)] = None,
) -> Response:
    """Every version of a question, and the diff between two of them."""
    return _versions_page(request, session, record, old=old, new=new)


def _versions_page(
    request: Request,
    session: Session,
    record: bank.QuestionRecord,
    *,
    old: int | None = None,
    new: int | None = None,
    refused: versions.RestoreRefused | None = None,
) -> Response:
    new = new or record.version
    old = old or max(1, new - 1)
    history = versions.history(session, record.id)
    diff = versions.diff(session, record.id, old=old, new=new) if old != new else None
    return render(
        request,
        "instructor/versions.html",
        {
            "record": record,
            "history": history,
            "diff": diff,
            "old": old,
            "new": new,
            "refused": refused,
        },
        status_code=(503 if refused.retry else 422) if refused else 200,
        retry_after=RESTORE_RETRY_S if refused and refused.retry else None,
    )


RESTORE_RETRY_S = 5  # a run that did not finish: the sandbox may be busy for a moment


@router.post(
    "/questions/{question_id}/versions/{version}/restore",
    name="restore_version",
    dependencies=[CsrfDep],
)
def restore_version(
    request: Request,
    session: SessionDep,
    staff: StaffDep,
    runs: StaffRunsDep,
    record: AnyQuestionDep,
    version: RowId,
    base_version: Annotated[int | None, Form(ge=1, le=MAX_ROW_INT)] = None,
) -> Response:
    """Make an old version the newest again (it is run first, like every save; refused if
    someone saved a newer version than the page showed, `base_version`; refused, with a link
    to edit it, if today's checks refuse it)."""
    try:
        saved = versions.restore(
            session,
            question_id=record.id,
            version=version,
            runs=runs,
            author_id=staff.id,
            base_version=base_version,
        )
    except versions.RestoreRefused as refused:
        return _versions_page(request, session, record, refused=refused)
    url = request.url_for("question_versions", question_id=record.id)
    return RedirectResponse(f"{url}?restored={saved.version if saved else 0}", status_code=303)


@router.post("/questions/{question_id}/retire", name="retire_question", dependencies=[CsrfDep])
def retire_question(
    request: Request,
    session: SessionDep,
    staff: StaffDep,
    record: AnyQuestionDep,
    retired: Annotated[bool, Form()] = True,
) -> Response:
    """Hide a question from learners (history and attempts stay), or bring it back."""
    editor.set_retired(session, question_id=record.id, retired=retired, actor_id=staff.id)
    return RedirectResponse(request.url_for("instructor"), status_code=303)


# --- files in and out -----------------------------------------------------------------------


@router.get("/import", name="import_questions")
def import_form(request: Request, session: SessionDep, staff: StaffDep) -> Response:
    """Upload YAML (one question, or a zip in the questions/ layout) or GIFT."""
    patterns = bank.list_patterns(session)
    return render(request, "instructor/import.html", {"patterns": patterns, "result": None})


@router.post("/import", dependencies=[CsrfDep])
def import_upload(
    request: Request,
    session: SessionDep,
    staff: StaffDep,
    runs: StaffRunsDep,
    file: Annotated[UploadFile, File()],
    pattern: PatternField = "",
) -> Response:
    """Import an upload, all or nothing; every problem is listed as `path: field: what`."""
    data = file.file.read(transfer.MAX_UPLOAD_BYTES + 1)
    result = transfer.run_import(
        session,
        filename=file.filename or "",
        data=data,
        pattern_slug=pattern or None,
        runs=runs,
        author_id=staff.id,
    )
    patterns = bank.list_patterns(session)
    return render(
        request,
        "instructor/import.html",
        {"patterns": patterns, "result": result},
        status_code=422 if result.errors else 200,
    )


@router.get("/export.zip", name="export_zip")
def export_zip(
    session: SessionDep,
    staff: StaffDep,
    pattern: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The bank (or one pattern) as a zip of YAML files in the questions/ layout."""
    data = transfer.export_zip(session, slug=pattern)
    return download(data, "application/zip", f"tracewise-{pattern or 'questions'}.zip")


@router.get("/patterns/{slug}/export.gift", name="export_gift")
def export_gift(session: SessionDep, staff: StaffDep, pattern: PatternDep) -> Response:
    """A pattern's choice questions in Moodle's GIFT format."""
    text = transfer.export_gift(session, pattern=pattern)
    return download(text, "text/plain; charset=utf-8", f"{pattern.slug}.gift.txt")


@router.get("/patterns/{slug}/export.xml", name="export_moodle_xml")
def export_moodle_xml(session: SessionDep, staff: StaffDep, pattern: PatternDep) -> Response:
    """A pattern's choice questions as Moodle XML."""
    text = transfer.export_moodle_xml(session, pattern=pattern)
    return download(text, "application/xml", f"{pattern.slug}.moodle.xml")


# --- statistics -----------------------------------------------------------------------------


@router.get("/patterns/{slug}/stats", name="pattern_stats")
def pattern_stats(
    request: Request, session: SessionDep, staff: StaffDep, pattern: PatternDep
) -> Response:
    """How each question of a pattern performs, and each learner's progress."""
    report = stats.pattern_stats(session, pattern=pattern)
    return render(request, "instructor/stats.html", {"pattern": pattern, "report": report})


@router.get("/attempts.csv", name="attempts_csv")
def attempts_csv(
    request: Request,
    session: SessionDep,
    staff: StaffDep,
    pattern: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Every attempt (of one pattern, if given) as CSV."""
    return attempts_csv_response(request, session, pattern)


# --- API tokens -----------------------------------------------------------------------------


@router.get("/tokens", name="api_tokens")
def api_tokens(request: Request, session: SessionDep, staff: BrowserStaffDep) -> Response:
    """The instructor's personal API tokens."""
    tokens = accounts.list_api_tokens(session, user=staff)
    return render(request, "instructor/tokens.html", {"tokens": tokens, "new_token": None})


@router.post("/tokens", dependencies=[CsrfDep])
def create_api_token(
    request: Request,
    session: SessionDep,
    staff: BrowserStaffDep,
    name: Annotated[str, Form()] = "",  # app.accounts bounds it, in words beside the field
) -> Response:
    """Make a token; it is shown once, on this page."""
    try:
        _row, token = accounts.create_api_token(session, user=staff, name=name)
    except Invalid as exc:
        tokens = accounts.list_api_tokens(session, user=staff)
        return render(
            request,
            "instructor/tokens.html",
            {"tokens": tokens, "new_token": None, "error": exc.message, "name": name},
            status_code=exc.status,
        )
    tokens = accounts.list_api_tokens(session, user=staff)
    response = render(request, "instructor/tokens.html", {"tokens": tokens, "new_token": token})
    response.headers["Cache-Control"] = "no-store"  # the token is on this page, once
    return response


@router.post("/tokens/{token_id}/revoke", name="revoke_api_token", dependencies=[CsrfDep])
def revoke_api_token(
    request: Request, session: SessionDep, staff: BrowserStaffDep, token_id: RowId
) -> Response:
    """Revoke one of the instructor's tokens."""
    accounts.revoke_api_token(session, user=staff, token_id=token_id)
    return RedirectResponse(request.url_for("api_tokens"), status_code=303)
