"""The question editor: YAML in the questions/ format in, a checked question version out.

An instructor writes the same YAML as a file in `questions/` (so the editor and the files
cannot drift apart). Saving goes through three gates, each of which says which field is
wrong and on which line: the schema; Markdown that would not survive sanitising (raw HTML,
script links, images); and the real run — every variant of an output question is run in
the sandbox and must produce an answer (and agree with `answer`, if the author gave one);
a code question's reference must pass its own check and self-tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import audit
from app.bank import service as bank
from app.bank.files import compose_yaml, describe_errors, parse_yaml, unix_newlines
from app.bank.lint import markdown_problems
from app.bank.schema import (
    QUESTION_ADAPTER,
    Question,
)
from app.bank.store import RETIRED_BY_BROWSER, add_version
from app.checking import runstore
from app.checking.runs import Runs
from app.checking.verify import RunProblem, Verification, verify
from app.db import begin_write
from app.errors import Busy, Conflict, Invalid, NotFound, Problem
from app.learning import answering
from app.models import Question as QuestionRow
from app.models import QuestionVersion, utcnow

MAX_SOURCE_CHARS = 100_000  # the longest question in the bank is ~5,000 characters
EDITOR, API, RESTORE = "editor", "api", "restore"  # QuestionVersion.source of a save


class QuestionRejected(Invalid):
    """The question cannot be saved; `errors` says why, field by field."""

    def __init__(self, errors: list[Problem]) -> None:
        super().__init__("; ".join(str(error) for error in errors), field=errors[0].field)
        self.errors = errors
        self.extra = {
            "errors": [
                {"field": error.field, "message": error.message, "line": error.line}
                for error in errors
            ]
        }


# --- parsing and the schema ---------------------------------------------------------------


def parse_source(text: str) -> Question:
    """The question a YAML text describes, or QuestionRejected with every problem placed on
    its field and line; Markdown that would not render as written is a problem too."""
    if not text.strip():
        raise QuestionRejected(
            [Problem("source", "write the question here, in the `questions/` YAML format")]
        )
    if len(text) > MAX_SOURCE_CHARS:
        raise QuestionRejected(
            [Problem("(file)", f"is longer than {MAX_SOURCE_CHARS:,} characters")]
        )
    try:
        data = parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        line = mark.line + 1 if mark is not None else None
        raise QuestionRejected([Problem("(file)", f"not valid YAML: {problem}", line)]) from None
    if not isinstance(data, dict):
        raise QuestionRejected([Problem("(file)", "a question is a mapping of fields", 1)])
    try:
        question = QUESTION_ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise QuestionRejected(_placed(text, exc)) from None
    problems = markdown_problems(question)
    if problems:
        raise QuestionRejected([_with_line(text, error) for error in problems])
    return question


def parse_data(data: Any) -> Question:
    """The question a JSON body describes (the API), or QuestionRejected. Its text's lines
    end in `\n`, whatever the client sent."""
    try:
        question = QUESTION_ADAPTER.validate_python(_unix_newlines(data))
    except ValidationError as exc:
        raise QuestionRejected(describe_errors(exc)) from None
    problems = markdown_problems(question)
    if problems:
        raise QuestionRejected(problems)
    return question


def _unix_newlines(data: Any) -> Any:
    """JSON data with every string's line endings as `\n`."""
    if isinstance(data, str):
        return unix_newlines(data)
    if isinstance(data, dict):
        return {key: _unix_newlines(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_unix_newlines(value) for value in data]
    return data


def _placed(text: str, exc: ValidationError) -> list[Problem]:
    return [_with_line(text, problem) for problem in describe_errors(exc)]


def _with_line(text: str, error: Problem) -> Problem:
    if error.line is not None:
        return error
    within = error.code_line if isinstance(error, RunProblem) else None
    return Problem(error.field, error.message, line_of(text, error.field, within=within))


def line_of(text: str, path: str, *, within: int | None = None) -> int | None:
    """The 1-based line of the YAML where the field at `path` (`solution.steps.0.body`) is
    written, or the nearest enclosing field's when it is missing. With `within` (a line of
    the field's own text, as a traceback numbers the code's lines), the line of the YAML
    where that line is written — when the field is a `|` block, or a single line; else the
    field's."""
    try:
        node = compose_yaml(text)
    except yaml.YAMLError:
        return None
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in path.split(".") if path != "(file)" else []:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == part), None)
            if pair is None:
                return line
            line, node = pair[0].start_mark.line + 1, pair[1]
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
            line = node.start_mark.line + 1
        else:
            return line
    if within is not None and isinstance(node, yaml.ScalarNode):
        return _line_within(node, within) or line
    return line


def _line_within(node: yaml.ScalarNode, within: int) -> int | None:
    """The YAML line of line `within` of a scalar's text: a `|` block keeps its lines as
    written, starting on the line after the `|`; a scalar on one line is that line."""
    if node.style == "|" and 1 <= within <= len(node.value.splitlines()):
        return node.start_mark.line + 1 + within
    if within == 1 and node.start_mark.line == node.end_mark.line:
        return node.start_mark.line + 1
    return None


# --- the real run ---------------------------------------------------------------------------


def check_question(session: Session, question: Question, runs: Runs) -> Verification:
    """Run what a question's key depends on, in the sandbox (app.checking.verify): every
    variant of an output question, a code question's reference and self-tests. Ends the
    session's read first: no connection is held while code runs. Busy if the sandbox cannot
    run code now. Choice questions have nothing to run."""
    return verify(session, runs, questions=[question]).questions[question.id]


# --- saving --------------------------------------------------------------------------------


def save_question(
    session: Session,
    *,
    question: Question,
    pattern_slug: str | None,
    editing: str | None,
    runs: Runs,
    author_id: int,
    source: str = EDITOR,
    source_text: str | None = None,
    base_version: int | None = None,
    detail: dict[str, Any] | None = None,
) -> QuestionVersion | None:
    """Save `question` as a new question (`editing` None; in `pattern_slug`) or as the next
    version of `editing` — after running it. Returns the new version, or None when nothing
    changed. With `base_version` (the version the author started from), a save on top of
    someone else's newer version is refused. QuestionRejected names what stops it; commits
    with an audit record (plus `detail`)."""
    _check_id(question, editing)
    check = check_question(session, question, runs)
    if not check.ok:
        raise QuestionRejected(check.problems)
    return _save_checked(
        session,
        question=question,
        check=check,
        pattern_slug=pattern_slug,
        editing=editing,
        author_id=author_id,
        source=source,
        source_text=source_text,
        base_version=base_version,
        detail=detail,
    )


def _check_id(question: Question, editing: str | None) -> None:
    if editing is not None and question.id != editing:
        raise QuestionRejected(
            [
                Problem(
                    "id",
                    f"stays {editing!r}: learners' attempts refer to it. To make a different "
                    "question, create a new one",
                )
            ]
        )


def _save_checked(
    session: Session,
    *,
    question: Question,
    check: Verification,
    pattern_slug: str | None,
    editing: str | None,
    author_id: int,
    source: str,
    source_text: str | None = None,
    base_version: int | None = None,
    detail: dict[str, Any] | None = None,
) -> QuestionVersion | None:
    begin_write(session)
    row = session.get(QuestionRow, question.id, populate_existing=True)
    if editing is None:
        if row is not None:
            session.rollback()
            raise QuestionRejected(
                [Problem("id", f"{question.id!r} is taken (ids are never reused)")]
            )
        pattern = bank.live_pattern_row(session, pattern_slug)
        if pattern is None:
            session.rollback()
            raise Invalid(
                "Choose a pattern for the question."
                if not pattern_slug
                else f"There is no pattern {pattern_slug!r}.",
                field="pattern",
            )
        last = session.scalar(
            select(func.max(QuestionRow.position)).where(QuestionRow.pattern_id == pattern.id)
        )
        row = QuestionRow(
            id=question.id, pattern_id=pattern.id, position=(last or 0) + 1, current_version=0
        )
        session.add(row)
    elif row is None:
        session.rollback()
        raise NotFound(f"The question {editing!r} no longer exists.")
    elif base_version is not None and row.current_version != base_version:
        newer = row.current_version
        session.rollback()
        raise Conflict(
            f"Someone saved version {newer} of {editing!r} since you opened version "
            f"{base_version}: your save would undo their change. Open the question again "
            "(its versions page shows what changed), and make your change on top of it."
        )
    for run in check.runs:
        runstore.keep(session, run)
    version = add_version(
        session, row, question, source=source, author_id=author_id, source_text=source_text
    )
    if version is not None:
        audit.record(
            session,
            actor_id=author_id,
            action="question.create"
            if editing is None
            else ("question.restore" if source == RESTORE else "question.edit"),
            subject=question.id,
            detail={"version": version.version, "source": source, **(detail or {})},
        )
    session.commit()
    return version


def question_exists(session: Session, question_id: str) -> bool:
    """Whether any question (live or retired) has this id."""
    return session.get(QuestionRow, question_id) is not None


def placement_problems(
    session: Session, *, question: Question, pattern_slug: str | None
) -> list[Problem]:
    """What would stop a new question being created in `pattern_slug` (if one is named)."""
    if pattern_slug is None:
        return []
    problems = []
    if bank.live_pattern_row(session, pattern_slug) is None:
        problems.append(Problem("pattern", f"there is no pattern {pattern_slug!r}"))
    if question_exists(session, question.id):
        problems.append(Problem("id", f"{question.id!r} is taken (ids are never reused)"))
    return problems


# --- the editor page's three buttons --------------------------------------------------------

PREVIEW, RUN, SAVE = "preview", "run", "save"


@dataclass(frozen=True)
class PreviewPage:
    """What the learner templates' question header needs to show a question not yet saved."""

    question: bank.LiveQuestion
    pattern_title: str
    position: int
    total: int


@dataclass
class EditorOutcome:
    """What a press of Preview, Run or Save gave: the question as learners will see it, the
    run, the errors (placed on their lines), or the version saved."""

    source: str = ""  # the YAML as it is checked and kept: its lines end in `\n`
    question: Question | None = None
    page: PreviewPage | None = None
    shown: Question | None = None  # as the first variant shows it
    check: Verification | None = None
    errors: list[Problem] = field(default_factory=list)
    saved: QuestionVersion | None = None
    unchanged: bool = False


def submit(
    session: Session,
    *,
    source: str,
    action: str,
    pattern_slug: str | None,
    editing: str | None,
    runs: Runs,
    author_id: int,
    base_version: int | None = None,
) -> EditorOutcome:
    """Preview, run or save the YAML an instructor wrote in the editor (on top of
    `base_version`, the version the editor was opened on)."""
    outcome = preview(session, source=source, pattern_slug=pattern_slug, editing=editing)
    source, question = outcome.source, outcome.question
    if action == PREVIEW or question is None or outcome.page is None:
        return outcome
    pattern_slug = outcome.page.question.pattern_slug or None
    try:
        outcome.check = check_question(session, question, runs)
    except Busy as exc:
        outcome.errors = [Problem("(file)", f"{exc.message} Nothing was saved: try again.")]
        return outcome
    outcome.errors = [_with_line(source, error) for error in outcome.check.problems]
    if action == RUN or outcome.errors:
        return outcome
    try:
        outcome.saved = _save_checked(
            session,
            question=question,
            check=outcome.check,
            pattern_slug=pattern_slug,
            editing=editing,
            author_id=author_id,
            source=EDITOR,
            source_text=source,
            base_version=base_version,
        )
    except QuestionRejected as exc:
        outcome.errors = [_with_line(source, error) for error in exc.errors]
    except (Invalid, Conflict, NotFound) as exc:
        outcome.errors = [Problem(exc.field or "(file)", exc.message)]
    outcome.unchanged = outcome.saved is None and not outcome.errors
    return outcome


def preview(
    session: Session, *, source: str, pattern_slug: str | None, editing: str | None
) -> EditorOutcome:
    """The question as learners will see it, or what is wrong with it (nothing is run).
    The source's lines end in `\n` from here on (`outcome.source`), whatever the browser
    sent: Run and Save come through here too."""
    source = unix_newlines(source)
    try:
        question = parse_source(source)
        _check_id(question, editing)
    except QuestionRejected as exc:
        return EditorOutcome(
            source=source, errors=[_with_line(source, error) for error in exc.errors]
        )
    if editing is not None and pattern_slug is None:
        pattern_slug = bank.get_record_or_raise(session, editing).pattern_slug
    return EditorOutcome(
        source=source,
        question=question,
        shown=answering.shown(question, 0),
        page=_preview_page(session, question, pattern_slug),
    )


def _preview_page(session: Session, question: Question, pattern_slug: str | None) -> PreviewPage:
    try:
        pattern: bank.PatternView | None = bank.get_pattern_or_raise(session, pattern_slug or "")
    except NotFound:
        pattern = None
    siblings = bank.list_questions(session, pattern) if pattern is not None else []
    position = next((i for i, s in enumerate(siblings) if s.id == question.id), len(siblings))
    live = bank.LiveQuestion(question.id, 0, pattern_slug or "", position, question)
    return PreviewPage(
        question=live,
        pattern_title=pattern.file.title if pattern is not None else "(no pattern)",
        position=position + 1,
        total=max(len(siblings), position + 1),
    )


def set_retired(session: Session, *, question_id: str, retired: bool, actor_id: int) -> None:
    """Hide a question from learners (its history and attempts stay), or bring it back.
    Commits with an audit record."""
    begin_write(session)
    row = session.get(QuestionRow, question_id)
    if row is None:
        session.rollback()
        raise NotFound(f"The question {question_id!r} no longer exists.")
    if (row.retired_at is not None) != retired:
        row.retired_at = utcnow() if retired else None
        row.retired_by = RETIRED_BY_BROWSER if retired else None
        audit.record(
            session,
            actor_id=actor_id,
            action="question.retire" if retired else "question.unretire",
            subject=question_id,
        )
    session.commit()
