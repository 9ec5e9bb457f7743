"""What the rest of the app asks of the question bank."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

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
    question_count: int
    by_difficulty: dict[Difficulty, int]


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
    return _parse_cached(row.question_id, row.version, row.content_hash, row.content)


_parse_cache: dict[tuple[str, int, str], Question] = {}


def _parse_cached(qid: str, version: int, digest: str, content: dict[str, Any]) -> Question:
    key = (qid, version, digest)
    question = _parse_cache.get(key)
    if question is None:
        question = QUESTION_ADAPTER.validate_python(content)
        if len(_parse_cache) >= PARSED_CACHE_SIZE:
            _parse_cache.clear()
        _parse_cache[key] = question
    return question


def _live_rows(session: Session, pattern_id: int) -> list[tuple[QuestionRow, QuestionVersion]]:
    query = (
        select(QuestionRow, QuestionVersion)
        .join(
            QuestionVersion,
            (QuestionVersion.question_id == QuestionRow.id)
            & (QuestionVersion.version == QuestionRow.current_version),
        )
        .where(QuestionRow.pattern_id == pattern_id, QuestionRow.retired_at.is_(None))
        .order_by(QuestionRow.position, QuestionRow.id)
    )
    return [(row, version) for row, version in session.execute(query)]


def list_patterns(session: Session) -> list[PatternView]:
    """Every pattern, in order, with its live question counts."""
    counts: dict[int, Counter[Difficulty]] = {}
    query = (
        select(QuestionRow.pattern_id, QuestionVersion.difficulty, func.count())
        .join(
            QuestionVersion,
            (QuestionVersion.question_id == QuestionRow.id)
            & (QuestionVersion.version == QuestionRow.current_version),
        )
        .where(QuestionRow.retired_at.is_(None))
        .group_by(QuestionRow.pattern_id, QuestionVersion.difficulty)
    )
    for pattern_id, difficulty, count in session.execute(query):
        counts.setdefault(pattern_id, Counter())[Difficulty(difficulty)] = count
    patterns = session.scalars(
        select(Pattern).where(Pattern.retired_at.is_(None)).order_by(Pattern.position, Pattern.slug)
    )
    return [_view(pattern, counts.get(pattern.id, Counter())) for pattern in patterns]


def _view(pattern: Pattern, counts: Counter[Difficulty]) -> PatternView:
    return PatternView(
        id=pattern.id,
        slug=pattern.slug,
        file=PATTERN_ADAPTER.validate_python(pattern.content),
        question_count=sum(counts.values()),
        by_difficulty={difficulty: counts[difficulty] for difficulty in Difficulty},
    )


def get_pattern_or_raise(session: Session, slug: str) -> PatternView:
    """The pattern with this slug, or NotFound."""
    pattern = session.scalar(
        select(Pattern).where(Pattern.slug == slug, Pattern.retired_at.is_(None))
    )
    if pattern is None:
        raise NotFound(f"There is no pattern {slug!r}.")
    rows = _live_rows(session, pattern.id)
    counts = Counter(Difficulty(version.difficulty) for _, version in rows)
    return _view(pattern, counts)


def list_questions(session: Session, pattern: PatternView) -> list[LiveQuestion]:
    """The live questions of a pattern, in order."""
    return [
        LiveQuestion(row.id, version.version, pattern.slug, row.position, parse_version(version))
        for row, version in _live_rows(session, pattern.id)
    ]


def get_question_or_raise(
    session: Session, question_id: str, *, pattern_slug: str | None = None
) -> LiveQuestion:
    """The current version of a live question (in the given pattern, if any), or NotFound."""
    query = (
        select(QuestionRow, QuestionVersion, Pattern.slug)
        .join(
            QuestionVersion,
            (QuestionVersion.question_id == QuestionRow.id)
            & (QuestionVersion.version == QuestionRow.current_version),
        )
        .join(Pattern, Pattern.id == QuestionRow.pattern_id)
        .where(QuestionRow.id == question_id, QuestionRow.retired_at.is_(None))
    )
    found = session.execute(query).first()
    if found is None or (pattern_slug is not None and found[2] != pattern_slug):
        raise NotFound(f"There is no question {question_id!r}.")
    row, version, slug = found
    return LiveQuestion(row.id, version.version, slug, row.position, parse_version(version))


def get_version_or_raise(session: Session, question_id: str, version: int) -> Question:
    """A specific stored version of a question (live or retired), or NotFound."""
    row = session.get(QuestionVersion, (question_id, version))
    if row is None:
        raise NotFound(f"There is no version {version} of question {question_id!r}.")
    return parse_version(row)
