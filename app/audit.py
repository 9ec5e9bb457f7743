"""The audit log: who changed what, and when. Admins read it at /admin/audit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AuditEvent, User

PAGE_SIZE = 100  # events per page of the log
SUBJECT_MAX_CHARS = 200  # the column's width


def record(
    session: Session,
    *,
    actor_id: int | None,
    action: str,
    subject: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add an event to the caller's write transaction: it is kept exactly when the change is."""
    session.add(
        AuditEvent(
            actor_id=actor_id,
            action=action,
            subject=subject[:SUBJECT_MAX_CHARS],
            detail=detail or {},
        )
    )


@dataclass(frozen=True)
class EventView:
    """An event as the log shows it."""

    id: int
    created_at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]


def recent_events(
    session: Session, *, before_id: int | None = None, limit: int = PAGE_SIZE
) -> list[EventView]:
    """The newest events (older than `before_id`, to page back), newest first."""
    query = (
        select(AuditEvent, User.email)
        .outerjoin(User, User.id == AuditEvent.actor_id)
        .order_by(AuditEvent.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    return [
        EventView(
            id=event.id,
            created_at=event.created_at,
            actor=email or ("command line" if event.actor_id is None else "a deleted account"),
            action=event.action,
            subject=event.subject,
            detail=event.detail,
        )
        for event, email in session.execute(query)
    ]
