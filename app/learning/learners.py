"""Learners: guests, named by a random token in the signed session cookie, and accounts.

A visitor gets a token on their first request (in the cookie only); the learner row that
carries the token is created the first time they do something worth keeping — an answer, a
hint, another variant — inside that use case's own write transaction. Variants are seeded by
the token, so what a visitor was shown before and after that moment is the same.

Someone logged in is named in the cookie by their user id instead, and their learner is the
one that belongs to the account (app.accounts). A guest token never names an account's learner.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.models import Attempt, Exam, Learner, LearnerVariant, Reveal, ReviewCard, User

LEARNER_TOKEN_BYTES = 24


@dataclass(frozen=True)
class Visitor:
    """Whoever holds the cookie: always a token; a learner row once they have one; the
    account, when logged in."""

    token: str
    learner: Learner | None
    user: User | None = None


def new_token() -> str:
    """A fresh, unguessable learner token."""
    return secrets.token_urlsafe(LEARNER_TOKEN_BYTES)


def get_learner(session: Session, token: str | None) -> Learner | None:
    """The learner a cookie token names, if it exists (read afresh, not from the session's
    memory: the caller may be about to write on what it says)."""
    if not token:
        return None
    query = select(Learner).where(Learner.token == token)
    return session.scalar(query.execution_options(populate_existing=True))


def guest_visitor(session: Session, token: str) -> Visitor:
    """The visitor a guest token names; a token that has become an account's names no one."""
    learner = get_learner(session, token)
    if learner is not None and learner.user_id is not None:
        return Visitor(token=new_token(), learner=None)
    return Visitor(token=token, learner=learner)


def account_visitor(session: Session, user_id: int) -> Visitor | None:
    """The visitor logged in as this user, or None if the account (or its learner) is gone."""
    row = session.execute(
        select(User, Learner).join(Learner, Learner.user_id == User.id).where(User.id == user_id)
    ).first()
    if row is None:
        return None
    user, learner = row
    return Visitor(token=learner.token, learner=learner, user=user)


def ensure_learner(session: Session, visitor: Visitor) -> Learner:
    """The visitor's learner row, created now if needed — call inside a write transaction."""
    learner = get_learner(session, visitor.token)
    if learner is None:
        learner = Learner(token=visitor.token)
        session.add(learner)
        session.flush()
    return learner


def merge(session: Session, *, guest: Learner, into: Learner) -> None:
    """Move everything a guest did into another learner, then delete the guest — inside a
    write transaction. Where both have a row per question (current variant, review card),
    the more recent one wins; every attempt, hint and test moves."""
    for model in (Attempt, Reveal, Exam):
        session.execute(
            update(model).where(model.learner_id == guest.id).values(learner_id=into.id)
        )
    _move_per_question(session, LearnerVariant, guest=guest, into=into)
    _move_per_question(session, ReviewCard, guest=guest, into=into)
    session.flush()
    session.delete(guest)
    session.flush()


PerQuestion = TypeVar("PerQuestion", LearnerVariant, ReviewCard)


def _move_per_question(
    session: Session, table: type[PerQuestion], *, guest: Learner, into: Learner
) -> None:
    """Move a table keyed by (learner, question) over; on a clash the newer row stays."""
    theirs = {
        row.question_id: row
        for row in session.scalars(select(table).where(table.learner_id == into.id))
    }
    for row in session.scalars(select(table).where(table.learner_id == guest.id)).all():
        kept = theirs.get(row.question_id)
        if kept is not None and kept.updated_at >= row.updated_at:
            session.delete(row)
            continue
        if kept is not None:
            session.delete(kept)
            session.flush()
        row.learner_id = into.id
