"""Admins' pages: accounts and their roles, and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from app import accounts, audit
from app.deps import AdminDep, CsrfDep, RowId, SessionDep, or_default
from app.models import MAX_ROW_INT
from app.templating import render

router = APIRouter(prefix="/admin", include_in_schema=False)


@router.get("/users", name="admin_users")
def users(request: Request, session: SessionDep, admin: AdminDep) -> Response:
    """Every account, with a form to change its role."""
    rows = accounts.list_users(session)
    return render(
        request, "admin/users.html", {"users": rows, "roles": accounts.ROLES, "admin": admin}
    )


@router.post("/users/{user_id}/role", name="set_role", dependencies=[CsrfDep])
def set_role(
    request: Request,
    session: SessionDep,
    admin: AdminDep,
    user_id: RowId,
    role: Annotated[str, Form(max_length=20)],
) -> Response:
    """Give an account a role (recorded in the audit log)."""
    accounts.set_role(session, actor=admin, user_id=user_id, role=role)
    return RedirectResponse(request.url_for("admin_users"), status_code=303)


@router.get("/audit", name="audit_log")
def audit_log(
    request: Request,
    session: SessionDep,
    admin: AdminDep,
    before: Annotated[int | None, Query(ge=1, le=MAX_ROW_INT), or_default(None)] = None,
) -> Response:
    """Who changed what, and when; newest first, a page at a time (`before` an event's id;
    one that cannot be an id shows the newest)."""
    events = audit.recent_events(session, before_id=before)
    return render(
        request,
        "admin/audit.html",
        {"events": events, "more": len(events) == audit.PAGE_SIZE},
    )
