"""A question's versions: who saved each and from where, what changed, and restoring one.

Versions are never changed or deleted: attempts point at the version they answered. Restoring
an old version saves its content again as the newest version — run again first, like any
save, so a key is never restored that today's torch contradicts.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.authoring import editor
from app.bank import service as bank
from app.bank.files import dump_yaml
from app.checking.runs import Runs
from app.checking.verify import RunProblem
from app.errors import Problem
from app.models import Attempt, QuestionVersion, User

DIFF_CONTEXT_LINES = 3


@dataclass(frozen=True)
class VersionView:
    """One version in a question's history."""

    version: int
    created_at: datetime
    source: str
    author: str
    attempts: int
    current: bool


def history(session: Session, question_id: str) -> list[VersionView]:
    """Every version of a question, newest first, with how many attempts answered it."""
    record = bank.get_record_or_raise(session, question_id)
    attempts = dict(
        session.execute(
            select(Attempt.question_version, func.count())
            .where(Attempt.question_id == question_id)
            .group_by(Attempt.question_version)
        ).all()
    )
    rows = session.execute(
        select(QuestionVersion, User.email)
        .outerjoin(User, User.id == QuestionVersion.author_id)
        .where(QuestionVersion.question_id == question_id)
        .order_by(QuestionVersion.version.desc())
    ).all()
    return [
        VersionView(
            version=row.version,
            created_at=row.created_at,
            source=row.source,
            author=email or ("command line" if row.author_id is None else "a deleted account"),
            attempts=attempts.get(row.version, 0),
            current=row.version == record.version,
        )
        for row, email in rows
    ]


@dataclass(frozen=True)
class DiffLine:
    """A line of a unified diff: `add`, `remove`, `context` or `hunk` (a `@@` header)."""

    kind: str
    text: str


@dataclass(frozen=True)
class VersionDiff:
    """What changed between two versions: a unified diff of the YAML their authors typed —
    or, when one came without it (as JSON, through the API), of both as the bank stores
    them (`untyped` names those versions), so that layout alone never shows as a change."""

    lines: list[DiffLine]
    untyped: list[int]

    @property
    def as_typed(self) -> bool:
        """Whether both sides are the YAML as typed."""
        return not self.untyped


def diff(session: Session, question_id: str, *, old: int, new: int) -> VersionDiff:
    """What changed between two versions, as a unified diff of their YAML (see VersionDiff)."""
    rows = [bank.get_version_row_or_raise(session, question_id, number) for number in (old, new)]
    untyped = [row.version for row in rows if not row.source_text]
    if untyped:
        before, after = (dump_yaml(bank.parse_version(row)) for row in rows)
    else:
        before, after = (row.source_text or "" for row in rows)
    lines = difflib.unified_diff(
        before.splitlines(),
        after.splitlines(),
        f"version {old}",
        f"version {new}",
        n=DIFF_CONTEXT_LINES,
        lineterm="",
    )
    result = []
    for line in lines:
        if line.startswith(("---", "+++")):
            continue
        kind = {"@": "hunk", "+": "add", "-": "remove"}.get(line[:1], "context")
        result.append(DiffLine(kind, line))
    return VersionDiff(result, untyped)


class RestoreRefused(editor.QuestionRejected):
    """An old version that today's checks refuse: a restore saves it unchanged, so it must be
    edited instead (`version`: which one; `errors`: why, field by field)."""

    def __init__(self, question_id: str, version: int, errors: list[Problem]) -> None:
        super().__init__(errors)
        self.version = version
        runs = [e for e in errors if isinstance(e, RunProblem)]
        unnamed = sorted({e.unnamed_raise for e in runs if e.unnamed_raise})
        if any(e.transient for e in runs):
            # Not the version's fault, maybe: a run that did not finish may meet a busy sandbox.
            self.retry = True
            self.message = (
                f"Version {version} of {question_id!r} could not be checked just now: a run did "
                "not finish (the sandbox may be busy). Try the restore again in a moment."
            )
        else:
            self.retry = False
            if len(unnamed) == 1:
                # An exception is a key only where the question names it, a rule newer than
                # some versions: the fix is one line, but a restore cannot write it.
                fix = (
                    f"edit it and add `raises: {unnamed[0]}` (if that exception is the key you "
                    "mean: a variant that raises is now refused unless the question names it)"
                )
            else:
                fix = "edit it to fix what is wrong"
            self.message = (
                f"Version {version} of {question_id!r} cannot be restored as it is: a restore "
                f"saves it unchanged, and it fails today's checks. Instead, {fix}, then save it "
                "as a new version."
            )
        self.args = (self.message,)


def edit_source(session: Session, question_id: str, version: int) -> str:
    """A version's YAML, to edit and save as the newest: as its author typed it, or as the
    bank stores it (a version sent as JSON). NotFound if there is no such version."""
    row = bank.get_version_row_or_raise(session, question_id, version)
    return row.source_text or dump_yaml(bank.parse_version(row))


def restore(
    session: Session,
    *,
    question_id: str,
    version: int,
    runs: Runs,
    author_id: int,
    base_version: int | None = None,
) -> QuestionVersion | None:
    """Save an old version's content as the newest version (after running it again); None
    when it is what the question already says. `base_version`: the newest version the
    instructor saw; a newer one saved since makes it a Conflict. RestoreRefused when today's
    checks refuse it (it must be edited: `edit_source`)."""
    record = bank.get_record_or_raise(session, question_id)
    row = bank.get_version_row_or_raise(session, question_id, version)
    try:
        return editor.save_question(
            session,
            question=bank.parse_version(row),
            pattern_slug=None,
            editing=question_id,
            runs=runs,
            author_id=author_id,
            source=editor.RESTORE,
            source_text=row.source_text,
            base_version=base_version or record.version,
            detail={"restored_from": version},
        )
    except editor.QuestionRejected as exc:
        raise RestoreRefused(question_id, version, exc.errors) from None
