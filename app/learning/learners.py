"""Learners: for now guests, named by a random token kept in the signed session cookie."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import begin_write
from app.models import Learner

LEARNER_TOKEN_BYTES = 24


def get_learner(session: Session, token: str | None) -> Learner | None:
    """The learner a cookie token names, if it exists."""
    if not token:
        return None
    return session.scalar(select(Learner).where(Learner.token == token))


def get_or_create_learner(session: Session, token: str | None) -> Learner:
    """The learner a cookie token names, or a new guest learner (committed at once: a guest
    exists from their first answer or hint on, whatever happens to that request)."""
    learner = get_learner(session, token)
    if learner is None:
        begin_write(session)
        learner = Learner(token=secrets.token_urlsafe(LEARNER_TOKEN_BYTES))
        session.add(learner)
        session.commit()
    return learner
