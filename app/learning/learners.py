"""Learners: for now guests, named by a random token kept in the signed session cookie.

A visitor gets a token on their first request (in the cookie only); the learner row that
carries the token is created the first time they do something worth keeping — an answer, a
hint, another variant — inside that use case's own write transaction. Variants are seeded by
the token, so what a visitor was shown before and after that moment is the same.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Learner

LEARNER_TOKEN_BYTES = 24


@dataclass(frozen=True)
class Visitor:
    """Whoever holds the cookie: always a token; a learner row once they have one."""

    token: str
    learner: Learner | None


def new_token() -> str:
    """A fresh, unguessable learner token."""
    return secrets.token_urlsafe(LEARNER_TOKEN_BYTES)


def get_learner(session: Session, token: str | None) -> Learner | None:
    """The learner a cookie token names, if it exists."""
    if not token:
        return None
    return session.scalar(select(Learner).where(Learner.token == token))


def ensure_learner(session: Session, visitor: Visitor) -> Learner:
    """The visitor's learner row, created now if needed — call inside a write transaction."""
    learner = get_learner(session, visitor.token)
    if learner is None:
        learner = Learner(token=visitor.token)
        session.add(learner)
        session.flush()
    return learner
