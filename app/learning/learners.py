"""Learners: guests, named by a random token in the signed session cookie, and accounts.

A visitor gets a token on their first request (in the cookie only); the learner row that
carries the token is created the first time they do something worth keeping — an answer, a
hint, another variant — inside that use case's own write transaction. Variants are seeded by
the token, so what a visitor was shown before and after that moment is the same.

Someone logged in is named in the cookie by their account's session token instead, and their
learner is the one that belongs to the account (app.accounts). A guest token never names an
account's learner: once its learner has an account, or has been merged into one, the token
names no one (a request already under way when that happened still lands in the account).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session

from app.db import begin_write
from app.errors import TooManyRequests
from app.learning import review
from app.models import Attempt, Exam, Learner, LearnerVariant, Reveal, ReviewCard, User
from app.ratelimit import RateLimit

LEARNER_TOKEN_BYTES = 24


@dataclass(frozen=True)
class GuestGate:
    """Where a new guest comes from, and how many new guests one address may start."""

    address: str
    limit: RateLimit


@dataclass(frozen=True)
class Visitor:
    """Whoever holds the cookie: always a token; a learner row once they have one; the
    account, when logged in. `gate`: the limit their learner row is created under, if
    they are a guest without one (None: no limit, e.g. the command line)."""

    token: str
    learner: Learner | None
    user: User | None = None
    gate: GuestGate | None = None


def new_token() -> str:
    """A fresh, unguessable learner token."""
    return secrets.token_urlsafe(LEARNER_TOKEN_BYTES)


# Built once: every request of a guest binds only the token.
_BY_TOKEN = (
    select(Learner)
    .where(Learner.token == bindparam("token"))
    .execution_options(populate_existing=True)
)


def get_learner(session: Session, token: str | None) -> Learner | None:
    """The learner a cookie token names, if it exists (read afresh, not from the session's
    memory: the caller may be about to write on what it says)."""
    if not token:
        return None
    learner: Learner | None = session.scalar(_BY_TOKEN, {"token": token})
    return learner


def guest_visitor(session: Session, token: str, gate: GuestGate | None = None) -> Visitor:
    """The visitor a guest token names; a token that has become an account's names no one.
    A guest's learner row will be created under `gate`."""
    learner = get_learner(session, token)
    if learner is not None and (learner.user_id is not None or learner.merged_into_id is not None):
        return Visitor(token=new_token(), learner=None, gate=gate)
    return Visitor(token=token, learner=learner, gate=gate)


def account_visitor(session: Session, session_token: str) -> Visitor | None:
    """The visitor logged in with this session token, or None if it is no longer valid (they
    logged out, on this device or another) or the account is gone."""
    row = session.execute(
        select(User, Learner)
        .join(Learner, Learner.user_id == User.id)
        .where(User.session_token == session_token)
    ).first()
    if row is None:
        return None
    user, learner = row
    return Visitor(token=learner.token, learner=learner, user=user)


def ensure_learner(session: Session, visitor: Visitor) -> Learner:
    """The visitor's learner row, created now if needed — call inside a write transaction.
    A guest merged into an account since the request began is the account's learner now."""
    learner = get_learner(session, visitor.token)
    if learner is not None and learner.merged_into_id is not None:
        merged_into = session.get(Learner, learner.merged_into_id)
        assert merged_into is not None  # learners are never deleted
        return merged_into
    if learner is None:
        if visitor.gate is not None:
            wait = visitor.gate.limit.take(session, visitor.gate.address)
            if wait is not None:
                raise TooManyRequests(
                    "Too many new visitors from your network have started here lately. Log "
                    f"in, or try again in {wait} s.",
                    retry_after=wait,
                )
        learner = Learner(token=visitor.token)
        session.add(learner)
        session.flush()
    return learner


def admit(session: Session, visitor: Visitor) -> None:
    """Give a guest without a learner row one now (in a write transaction of its own, under
    the guest limit): before their code runs, so that a new guest per request cannot take a
    new share of the sandbox each time."""
    if visitor.learner is not None:
        return
    begin_write(session)
    ensure_learner(session, visitor)
    session.commit()


def merge(session: Session, *, guest: Learner, into: Learner) -> None:
    """Move everything a guest did into an account's learner — inside a write transaction.
    Every attempt, hint and test moves; where both had a current variant of a question the
    newer stays; review cards are rebuilt from the merged attempts. The guest's row stays,
    marked, so that a request still under way for it lands in the account too."""
    for model in (Attempt, Reveal, Exam):
        session.execute(
            update(model).where(model.learner_id == guest.id).values(learner_id=into.id)
        )
    _move_variants(session, guest=guest, into=into)
    carded = set(
        session.scalars(
            select(ReviewCard.question_id).where(ReviewCard.learner_id.in_([guest.id, into.id]))
        )
    )
    session.execute(delete(ReviewCard).where(ReviewCard.learner_id == guest.id))
    guest.merged_into_id = into.id
    session.flush()
    review.rebuild(session, learner=into, question_ids=carded)


def _move_variants(session: Session, *, guest: Learner, into: Learner) -> None:
    """Move the guest's current variants over; where both have one, the newer stays."""
    theirs = {
        row.question_id: row
        for row in session.scalars(
            select(LearnerVariant).where(LearnerVariant.learner_id == into.id)
        )
    }
    mine = select(LearnerVariant).where(LearnerVariant.learner_id == guest.id)
    for row in session.scalars(mine).all():
        kept = theirs.get(row.question_id)
        if kept is not None and kept.updated_at >= row.updated_at:
            session.delete(row)
            continue
        if kept is not None:
            session.delete(kept)
            session.flush()
        row.learner_id = into.id
