"""The question bank in the database: import with versions, export back to files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.bank.files import PatternSource, read_bank, write_bank
from app.bank.schema import (
    PATTERN_ADAPTER,
    QUESTION_ADAPTER,
    PatternFile,
    Question,
    content_hash,
)
from app.db import begin_write
from app.models import Pattern, QuestionVersion, utcnow
from app.models import Question as QuestionRow


@dataclass
class ImportReport:
    """What an import changed, by question id."""

    patterns_created: list[str] = field(default_factory=list)
    patterns_updated: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    new_versions: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether the import wrote anything."""
        return any(
            (
                self.patterns_created,
                self.patterns_updated,
                self.created,
                self.new_versions,
                self.retired,
                self.restored,
            )
        )

    def summary(self) -> str:
        """One line for the command line."""
        return (
            f"{len(self.created)} new, {len(self.new_versions)} new versions, "
            f"{len(self.unchanged)} unchanged, {len(self.retired)} retired, "
            f"{len(self.restored)} restored; patterns: {len(self.patterns_created)} new, "
            f"{len(self.patterns_updated)} updated"
        )


def import_bank(session: Session, root: Path) -> ImportReport:
    """Validate every file under `root` and bring the database in line, as one transaction.

    A broken file raises BankError before anything is written. Questions whose content
    changed get a new version; questions missing from an imported pattern are retired (hidden
    from learners, history kept). Commits on success.
    """
    sources = read_bank(root)
    report = ImportReport()
    begin_write(session)
    for position, source in enumerate(sources):
        _import_pattern(session, source, position, report)
    session.commit()
    return report


def _import_pattern(
    session: Session, source: PatternSource, position: int, report: ImportReport
) -> None:
    pattern = session.scalar(select(Pattern).where(Pattern.slug == source.slug))
    digest = content_hash(source.pattern)
    if pattern is None:
        pattern = Pattern(slug=source.slug, position=position)
        session.add(pattern)
        report.patterns_created.append(source.slug)
    elif pattern.content_hash != digest:
        report.patterns_updated.append(source.slug)
    if pattern.content_hash != digest:
        pattern.content = source.pattern.model_dump(mode="json")
        pattern.content_hash = digest
        pattern.updated_at = utcnow()
    session.flush()

    seen: set[str] = set()
    for position_in_pattern, question_source in enumerate(source.questions):
        question = question_source.question
        seen.add(question.id)
        _import_question(session, pattern, question, position_in_pattern, report)

    for row in session.scalars(select(QuestionRow).where(QuestionRow.pattern_id == pattern.id)):
        if row.id not in seen and row.retired_at is None:
            row.retired_at = utcnow()
            report.retired.append(row.id)


def _import_question(
    session: Session, pattern: Pattern, question: Question, position: int, report: ImportReport
) -> None:
    digest = content_hash(question)
    row = session.get(QuestionRow, question.id)
    if row is None:
        row = QuestionRow(
            id=question.id, pattern_id=pattern.id, position=position, current_version=1
        )
        session.add(row)
        session.add(_version(question, 1, digest))
        report.created.append(question.id)
        return

    current = session.get(QuestionVersion, (row.id, row.current_version))
    if current is None or current.content_hash != digest:
        row.current_version += 1
        session.add(_version(question, row.current_version, digest))
        report.new_versions.append(question.id)
    else:
        report.unchanged.append(question.id)
    if row.retired_at is not None:
        row.retired_at = None
        report.restored.append(question.id)
    row.pattern_id = pattern.id
    row.position = position


def _version(question: Question, version: int, digest: str) -> QuestionVersion:
    return QuestionVersion(
        question_id=question.id,
        version=version,
        kind=question.kind,
        difficulty=question.difficulty.value,
        content=question.model_dump(mode="json"),
        content_hash=digest,
    )


def export_bank(session: Session, root: Path, *, slug: str | None = None) -> int:
    """Write the current version of every live question (of one pattern, if given) to `root`."""
    query = select(Pattern).order_by(Pattern.position, Pattern.slug)
    if slug is not None:
        query = query.where(Pattern.slug == slug)
    exported = []
    for pattern in session.scalars(query):
        questions = [
            QUESTION_ADAPTER.validate_python(version.content)
            for row in pattern.questions
            if row.retired_at is None
            and (version := session.get(QuestionVersion, (row.id, row.current_version)))
        ]
        exported.append((pattern.slug, pattern_file(pattern), questions))
    return write_bank(root, exported)


def pattern_file(pattern: Pattern) -> PatternFile:
    """The validated pattern file stored for a pattern row."""
    return PATTERN_ADAPTER.validate_python(pattern.content)
