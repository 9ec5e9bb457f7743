"""What the rest of the app asks of the question bank."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from app.bank.files import dump_yaml
from app.bank.schema import (
    PATTERN_ADAPTER,
    QUESTION_ADAPTER,
    Difficulty,
    PatternFile,
    Question,
)
from app.errors import NotFound
from app.models import Pattern, QuestionVersion
from app.models import Question as QuestionRow

PARSED_CACHE_SIZE = 2048  # versions are immutable, so a parsed one can be kept forever


@dataclass(frozen=True)
class PatternView:
    """A pattern as the pages and the API see it."""

    id: int
    slug: str
    file: PatternFile
    content_hash: str


@dataclass(frozen=True)
class LiveQuestion:
    """The current version of a question that learners may see."""

    id: str
    version: int
    pattern_slug: str
    position: int
    question: Question


def parse_version(row: QuestionVersion) -> Question:
    """The validated question of a stored version (cached: versions never change)."""
    return _parse_cached(row.question_id, row.version, row.content_hash, lambda: row.content)


_parse_cache: dict[tuple[str, int, str], Question] = {}
_pattern_cache: dict[str, PatternFile] = {}


def _parse_cached(
    qid: str, version: int, digest: str, content: Callable[[], dict[str, Any]]
) -> Question:
    key = (qid, version, digest)
    question = _parse_cache.get(key)
    if question is None:
        question = QUESTION_ADAPTER.validate_python(content())
        if len(_parse_cache) >= PARSED_CACHE_SIZE:
            _parse_cache.clear()
        _parse_cache[key] = question
    return question


def _pattern_view(session: Session, pattern_id: int, slug: str, digest: str) -> PatternView:
    """A pattern with its parsed file; the file's JSON is read only when not parsed already."""
    file = _pattern_cache.get(digest)
    if file is None:
        content = session.scalar(select(Pattern.content).where(Pattern.id == pattern_id))
        file = PATTERN_ADAPTER.validate_python(content)
        if len(_pattern_cache) >= PARSED_CACHE_SIZE:
            _pattern_cache.clear()
        _pattern_cache[digest] = file
    return PatternView(id=pattern_id, slug=slug, file=file, content_hash=digest)


# Joins a question to its current version (the content is read only when not parsed already).
CURRENT_VERSION = (QuestionVersion.question_id == QuestionRow.id) & (
    QuestionVersion.version == QuestionRow.current_version
)
_LIVE_COLUMNS = (
    QuestionRow.id,
    QuestionRow.position,
    QuestionVersion.version,
    QuestionVersion.content_hash,
    Pattern.slug,
)


def _live(session: Session, row: Any) -> LiveQuestion:
    qid, position, version, digest, slug = row

    def content() -> dict[str, Any]:
        query = select(QuestionVersion.content).where(
            QuestionVersion.question_id == qid, QuestionVersion.version == version
        )
        loaded = session.scalar(query)
        assert isinstance(loaded, dict)
        return loaded

    return LiveQuestion(qid, version, slug, position, _parse_cached(qid, version, digest, content))


def _live_query() -> Any:
    return (
        select(*_LIVE_COLUMNS)
        .join(QuestionVersion, CURRENT_VERSION)
        .join(Pattern, Pattern.id == QuestionRow.pattern_id)
        .where(QuestionRow.retired_at.is_(None), Pattern.retired_at.is_(None))
    )


def count_live_questions(session: Session) -> dict[int, Counter[Difficulty]]:
    """Live questions per difficulty, for every pattern id."""
    query = (
        select(QuestionRow.pattern_id, QuestionVersion.difficulty, func.count())
        .join(QuestionVersion, CURRENT_VERSION)
        .where(QuestionRow.retired_at.is_(None))
        .group_by(QuestionRow.pattern_id, QuestionVersion.difficulty)
    )
    counts: dict[int, Counter[Difficulty]] = {}
    for pid, difficulty, count in session.execute(query):
        counts.setdefault(pid, Counter())[Difficulty(difficulty)] = count
    return counts


_PATTERN_COLUMNS = (Pattern.id, Pattern.slug, Pattern.content_hash)


def live_difficulties(session: Session) -> dict[int, list[tuple[str, Difficulty]]]:
    """The live questions of every pattern id, with their difficulty."""
    query = (
        select(QuestionRow.pattern_id, QuestionRow.id, QuestionVersion.difficulty)
        .join(QuestionVersion, CURRENT_VERSION)
        .where(QuestionRow.retired_at.is_(None))
    )
    result: dict[int, list[tuple[str, Difficulty]]] = {}
    for pattern_id, qid, difficulty in session.execute(query):
        result.setdefault(pattern_id, []).append((qid, Difficulty(difficulty)))
    return result


def live_pattern_row(session: Session, slug: str | None) -> Pattern | None:
    """The row of the live pattern with this slug (for writing to it), if there is one."""
    if not slug:
        return None
    return session.scalar(select(Pattern).where(Pattern.slug == slug, Pattern.retired_at.is_(None)))


def list_patterns(session: Session) -> list[PatternView]:
    """Every live pattern, in order."""
    query = (
        select(*_PATTERN_COLUMNS)
        .where(Pattern.retired_at.is_(None))
        .order_by(Pattern.position, Pattern.slug)
    )
    return [_pattern_view(session, *row) for row in session.execute(query).all()]


def get_pattern_or_raise(session: Session, slug: str) -> PatternView:
    """The live pattern with this slug, or NotFound."""
    query = select(*_PATTERN_COLUMNS).where(Pattern.slug == slug, Pattern.retired_at.is_(None))
    row = session.execute(query).first()
    if row is None:
        raise NotFound(f"There is no pattern {slug!r}.")
    return _pattern_view(session, *row)


def list_questions(session: Session, pattern: PatternView) -> list[LiveQuestion]:
    """The live questions of a pattern, in order."""
    query = (
        _live_query()
        .where(QuestionRow.pattern_id == pattern.id)
        .order_by(QuestionRow.position, QuestionRow.id)
    )
    return [_live(session, row) for row in session.execute(query).all()]


# Built once: the hot path (every answer) only binds the id.
_LIVE_QUESTION = _live_query().where(QuestionRow.id == bindparam("question_id"))


def get_question_or_raise(
    session: Session, question_id: str, *, pattern_slug: str | None = None
) -> LiveQuestion:
    """The current version of a live question (in the given pattern, if any), or NotFound."""
    found = session.execute(_LIVE_QUESTION, {"question_id": question_id}).first()
    if found is None or (pattern_slug is not None and found[4] != pattern_slug):
        raise NotFound(f"There is no question {question_id!r}.")
    return _live(session, found)


def live_questions(session: Session, question_ids: Collection[str]) -> dict[str, LiveQuestion]:
    """The live ones among these questions, by id (retired ones are left out)."""
    if not question_ids:
        return {}
    query = _live_query().where(QuestionRow.id.in_(list(question_ids)))
    return {row[0]: _live(session, row) for row in session.execute(query).all()}


def get_pinned_or_raise(session: Session, question_id: str, version: int) -> LiveQuestion:
    """A question as it was at `version` — live or not — with its pattern and position; for
    answers that must be graded against the version the learner was shown."""
    query = (
        select(*_LIVE_COLUMNS)
        .join(QuestionVersion, QuestionVersion.question_id == QuestionRow.id)
        .join(Pattern, Pattern.id == QuestionRow.pattern_id)
        .where(QuestionRow.id == question_id, QuestionVersion.version == version)
    )
    row = session.execute(query).first()
    if row is None:
        raise NotFound(f"There is no version {version} of question {question_id!r}.")
    return _live(session, row)


def get_pinned(
    session: Session, keys: Collection[tuple[str, int]]
) -> dict[tuple[str, int], LiveQuestion]:
    """Questions as they were at given versions, by (question id, version), in one query
    (versions that do not exist are left out)."""
    if not keys:
        return {}
    query = (
        select(*_LIVE_COLUMNS)
        .join(QuestionVersion, QuestionVersion.question_id == QuestionRow.id)
        .join(Pattern, Pattern.id == QuestionRow.pattern_id)
        .where(QuestionRow.id.in_({qid for qid, _ in keys}))
    )
    wanted = set(keys)
    return {
        (row[0], row[2]): _live(session, row)
        for row in session.execute(query).all()
        if (row[0], row[2]) in wanted
    }


def get_versions(
    session: Session, keys: Collection[tuple[str, int]]
) -> dict[tuple[str, int], Question]:
    """Stored versions of questions, by (question id, version), in one query."""
    if not keys:
        return {}
    ids = {qid for qid, _ in keys}
    rows = session.scalars(select(QuestionVersion).where(QuestionVersion.question_id.in_(ids)))
    return {
        (row.question_id, row.version): parse_version(row)
        for row in rows
        if (row.question_id, row.version) in keys
    }


def get_version_row_or_raise(session: Session, question_id: str, version: int) -> QuestionVersion:
    """The row of a specific stored version of a question (live or retired), or NotFound:
    its content, and its YAML as typed, if it came as YAML."""
    row = session.get(QuestionVersion, (question_id, version))
    if row is None:
        raise NotFound(f"There is no version {version} of question {question_id!r}.")
    return row


def get_version_or_raise(session: Session, question_id: str, version: int) -> Question:
    """A specific stored version of a question (live or retired), or NotFound."""
    return parse_version(get_version_row_or_raise(session, question_id, version))


@dataclass(frozen=True)
class QuestionRecord:
    """A question as instructors see it: live or retired, with its current version."""

    id: str
    version: int
    pattern_slug: str
    position: int
    question: Question
    retired: bool
    from_files: bool  # kept in step with a file in questions/
    source: str  # where the current version came from: file, editor, api, upload, restore
    source_text: str | None  # the current version's YAML as written, if it came as YAML

    @property
    def yaml(self) -> str:
        """The current version as YAML: as its author wrote it, where it came as YAML."""
        return self.source_text or dump_yaml(self.question)


def _records(session: Session, query: Any) -> list[QuestionRecord]:
    return [
        QuestionRecord(
            id=row.id,
            version=row.current_version,
            pattern_slug=slug,
            position=row.position,
            question=parse_version(version),
            retired=row.retired_at is not None,
            from_files=row.file_hash is not None,
            source=version.source,
            source_text=version.source_text,
        )
        for row, version, slug in session.execute(query).all()
    ]


def _record_query() -> Any:
    return (
        select(QuestionRow, QuestionVersion, Pattern.slug)
        .join(QuestionVersion, CURRENT_VERSION)
        .join(Pattern, Pattern.id == QuestionRow.pattern_id)
    )


def list_records(session: Session, pattern: PatternView) -> list[QuestionRecord]:
    """Every question of a pattern, live ones first in order, then retired ones."""
    query = (
        _record_query()
        .where(QuestionRow.pattern_id == pattern.id)
        .order_by(QuestionRow.retired_at.is_not(None), QuestionRow.position, QuestionRow.id)
    )
    return _records(session, query)


def list_orphans(session: Session) -> list[QuestionRecord]:
    """Questions not retired, in patterns that are (their folder left questions/): hidden
    from learners with their pattern, and easy to lose track of."""
    query = (
        _record_query()
        .where(QuestionRow.retired_at.is_(None), Pattern.retired_at.is_not(None))
        .order_by(Pattern.slug, QuestionRow.position)
    )
    return _records(session, query)


def get_record_or_raise(session: Session, question_id: str) -> QuestionRecord:
    """Any question, live or retired, or NotFound."""
    found = _records(session, _record_query().where(QuestionRow.id == question_id))
    if not found:
        raise NotFound(f"There is no question {question_id!r}.")
    return found[0]
