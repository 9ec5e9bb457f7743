"""Database tables. The schema itself is created only by the Alembic migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names, so that migrations can refer to them on every backend.
# The widest whole number a row holds: ids and versions are PostgreSQL `integer`s. Input that
# names a row is bounded by it, so a larger number is "no such thing", never a database error.
MAX_ROW_INT = 2**31 - 1

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and read back as aware UTC, on every backend."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use app.models.utcnow()")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Declarative base with the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class Pattern(Base):
    """A topic such as "Learning rate schedulers", imported from questions/<slug>/pattern.yaml."""

    __tablename__ = "patterns"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    content: Mapped[dict[str, Any]] = mapped_column(comment="the validated pattern file")
    content_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(
        default=None, comment="set when its folder left the bank: hidden, history kept"
    )
    file_hash: Mapped[str | None] = mapped_column(
        String(64),
        default=None,
        comment="hash of pattern.yaml as last imported from questions/; None if uploaded",
    )
    source_text: Mapped[str | None] = mapped_column(
        Text, default=None, comment="pattern.yaml as written (comments, layout)"
    )

    questions: Mapped[list[Question]] = relationship(
        back_populates="pattern", order_by="Question.position"
    )


class Question(Base):
    """A question's identity: its stable id, where it sits, and which version is current."""

    __tablename__ = "questions"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    pattern_id: Mapped[int] = mapped_column(ForeignKey("patterns.id"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    current_version: Mapped[int] = mapped_column(Integer)
    retired_at: Mapped[datetime | None] = mapped_column(default=None)
    retired_by: Mapped[str | None] = mapped_column(
        String(10),
        default=None,
        comment="file (its file left questions/: restored when it comes back) | browser",
    )
    # An import from questions/ changes a question only when its file changed since the last
    # import: edits made in the browser survive a restart, and a file edit still wins.
    file_hash: Mapped[str | None] = mapped_column(
        String(64),
        default=None,
        comment="hash of its file as last imported from questions/; None if made elsewhere",
    )
    file_name: Mapped[str | None] = mapped_column(
        String(300),
        default=None,
        comment="its file's path inside the pattern folder, so an export writes it back there",
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    pattern: Mapped[Pattern] = relationship(back_populates="questions")
    versions: Mapped[list[QuestionVersion]] = relationship(
        back_populates="question", order_by="QuestionVersion.version"
    )


class QuestionVersion(Base):
    """One immutable version of a question's content; attempts point at the one answered."""

    __tablename__ = "question_versions"

    question_id: Mapped[str] = mapped_column(ForeignKey("questions.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    difficulty: Mapped[str] = mapped_column(String(10))
    content: Mapped[dict[str, Any]] = mapped_column(comment="the validated question file")
    content_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(
        String(20),
        default="file",
        server_default="file",
        comment="file | editor | api | upload | restore",
    )
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id"), default=None, comment="who saved it; None for the command line"
    )
    source_text: Mapped[str | None] = mapped_column(
        Text,
        default=None,
        comment="the YAML as its author wrote it (comments, layout); None from the JSON API",
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    question: Mapped[Question] = relationship(back_populates="versions")


class Learner(Base):
    """Someone answering questions: a guest named by a signed cookie, or an account's."""

    __tablename__ = "learners"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The cookie names a learner by this random token, never by id: SQLite may hand a
    # rolled-back id to the next learner, and a cookie must never come to mean someone else.
    token: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id"),
        unique=True,
        default=None,
        comment="set once the learner has an account",
    )
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("learners.id"),
        default=None,
        comment="a guest whose progress moved into an account's learner on log-in",
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Attempt(Base):
    """One submitted answer, graded, kept forever."""

    __tablename__ = "attempts"
    __table_args__ = (
        ForeignKeyConstraint(
            ["question_id", "question_version"],
            ["question_versions.question_id", "question_versions.version"],
            name="fk_attempts_question_version",
        ),
        Index("ix_attempts_learner_question", "learner_id", "question_id"),
        Index("ix_attempts_question_version", "question_id", "question_version"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("learners.id"))
    question_id: Mapped[str] = mapped_column(String(80))
    question_version: Mapped[int] = mapped_column(Integer)
    answer: Mapped[Any] = mapped_column(JSON, comment="the answer as the learner gave it")
    correct: Mapped[bool] = mapped_column(Boolean)
    score: Mapped[float] = mapped_column(Float)
    feedback: Mapped[dict[str, Any]] = mapped_column(comment="what the learner was told")
    hint_seen: Mapped[bool] = mapped_column(Boolean)
    solution_seen: Mapped[bool] = mapped_column(Boolean)
    time_taken_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    variant_index: Mapped[int | None] = mapped_column(Integer, default=None)
    variant: Mapped[dict[str, Any] | None] = mapped_column(
        default=None, comment="parameter values of the variant answered (output questions)"
    )
    rating: Mapped[int | None] = mapped_column(
        Integer, default=None, comment="the FSRS rating it gave: 1 again, 2 hard, 3 good, 4 easy"
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


REVEAL_HINT, REVEAL_SOLUTION = "hint", "solution"  # what a Reveal showed (its `kind`)


class Reveal(Base):
    """A learner asked for a question's hint, or was shown its solution: the solution of one
    of their wrong attempts (asked for, or shown after too many wrong tries in a row), or
    of a question seen without answering (a finished test's result). Later attempts are
    flagged by what was shown before them."""

    __tablename__ = "reveals"
    __table_args__ = (
        ForeignKeyConstraint(
            ["question_id", "question_version"],
            ["question_versions.question_id", "question_versions.version"],
            name="fk_reveals_question_version",
        ),
        Index("ix_reveals_learner_question", "learner_id", "question_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("learners.id"))
    question_id: Mapped[str] = mapped_column(String(80))
    question_version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10), comment="hint | solution")
    attempt_id: Mapped[int | None] = mapped_column(
        ForeignKey("attempts.id"),
        default=None,
        index=True,
        comment="a solution: the attempt whose key and worked solution it showed",
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LearnerVariant(Base):
    """The variant of an output question a learner last asked for ("another variant", a
    review). The variant they are on is this one, or the one they answered since, if later."""

    __tablename__ = "learner_variants"

    learner_id: Mapped[int] = mapped_column(ForeignKey("learners.id"), primary_key=True)
    question_id: Mapped[str] = mapped_column(ForeignKey("questions.id"), primary_key=True)
    variant_index: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SandboxRun(Base):
    """A run the sandbox made — of a snippet, a code answer, a pipeline — by run key (the job
    and the torch version: app.checking.jobs.run_key)."""

    __tablename__ = "sandbox_runs"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(
        String(10),
        index=True,
        server_default="snippet",
        comment="snippet | code | pipeline | lr-only",
    )
    torch_version: Mapped[str] = mapped_column(String(40))
    result: Mapped[dict[str, Any]] = mapped_column(comment="the RunResult as JSON")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    """An account: an email, an argon2 password hash, a role. Its progress is its learner's."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True, comment="stored lowercased")
    password_hash: Mapped[str] = mapped_column(String(255), comment="argon2id")
    role: Mapped[str] = mapped_column(String(20), default="learner")
    # The cookie names a logged-in user by this, not by id; a new one ends every session.
    session_token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Exam(Base):
    """A 10-question test: drawn once, answered in any order, graded only when finished."""

    __tablename__ = "exams"
    __table_args__ = (Index("ix_exams_learner_pattern", "learner_id", "pattern_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("learners.id"))
    pattern_id: Mapped[int] = mapped_column(ForeignKey("patterns.id"))
    position: Mapped[int] = mapped_column(Integer, default=0, comment="where the learner is")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    score: Mapped[float | None] = mapped_column(Float, default=None, comment="0–1, once finished")

    items: Mapped[list[ExamItem]] = relationship(order_by="ExamItem.position")


class ExamItem(Base):
    """One question of a test, the variant drawn for it, and the answer given so far."""

    __tablename__ = "exam_items"
    __table_args__ = (
        ForeignKeyConstraint(
            ["question_id", "question_version"],
            ["question_versions.question_id", "question_versions.version"],
            name="fk_exam_items_question_version",
        ),
    )

    exam_id: Mapped[int] = mapped_column(ForeignKey("exams.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    question_id: Mapped[str] = mapped_column(String(80))
    question_version: Mapped[int] = mapped_column(Integer)
    variant_index: Mapped[int] = mapped_column(Integer, default=0)
    answer: Mapped[Any] = mapped_column(
        JSON, nullable=True, default=None, comment="saved, not graded until the test is finished"
    )
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
    time_taken_ms: Mapped[int | None] = mapped_column(
        Integer, default=None, comment="time spent on this page, summed over visits"
    )
    attempt_id: Mapped[int | None] = mapped_column(
        ForeignKey("attempts.id"), default=None, comment="the graded attempt, once finished"
    )


class ReviewCard(Base):
    """A learner's FSRS card for a question: when to see it again."""

    __tablename__ = "review_cards"
    __table_args__ = (Index("ix_review_cards_learner_due", "learner_id", "due"),)

    learner_id: Mapped[int] = mapped_column(ForeignKey("learners.id"), primary_key=True)
    question_id: Mapped[str] = mapped_column(ForeignKey("questions.id"), primary_key=True)
    card: Mapped[dict[str, Any]] = mapped_column(comment="fsrs.Card.to_dict()")
    due: Mapped[datetime] = mapped_column()
    reviews: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A personal API token: an instructor's scripts send it as `Authorization: Bearer`."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100), comment="what the owner calls it")
    token_hash: Mapped[str] = mapped_column(
        String(64), unique=True, comment="SHA-256 of the token; the token itself is shown once"
    )
    prefix: Mapped[str] = mapped_column(String(12), comment="its first characters, to tell apart")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)


class AuditEvent(Base):
    """Who changed what, and when: every instructor and admin action that writes."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id"), default=None, comment="None: the command line"
    )
    action: Mapped[str] = mapped_column(String(40), comment="e.g. question.create, role.grant")
    subject: Mapped[str] = mapped_column(String(200), comment="what it was done to")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict, comment="what changed")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RateBucket(Base):
    """The token bucket of one rate limit for one key (app.ratelimit): in the database, so
    that every instance of the app counts together."""

    __tablename__ = "rate_buckets"

    key: Mapped[str] = mapped_column(
        String(64), primary_key=True, comment="SHA-256 of the limit's name and the key"
    )
    tokens: Mapped[float] = mapped_column(Float, comment="events allowed now")
    updated_at: Mapped[datetime] = mapped_column(comment="when `tokens` was computed")
    full_at: Mapped[datetime] = mapped_column(
        index=True, comment="when the bucket is full again, and may be forgotten"
    )


class DeploymentSetting(Base):
    """A value every instance of one deployment must agree on (app.instances)."""

    __tablename__ = "deployment_settings"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
