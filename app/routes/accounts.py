"""Sign up, log in, log out: HTML forms."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from app import accounts
from app.deps import (
    AuthLimitsDep,
    CsrfDep,
    SessionDep,
    VisitorDep,
    client_address,
    log_visitor_in,
    log_visitor_out,
    or_default,
)
from app.errors import Invalid, TooManyRequests
from app.templating import render

router = APIRouter(include_in_schema=False)

# Where to go after logging in: one too long to be a page of ours goes home instead.
Next = Annotated[str, Query(alias="next", max_length=2000), or_default("/")]
NextField = Annotated[str, Form(alias="next", max_length=2000), or_default("/")]
# No length limit of their own: app.accounts bounds them and says so beside the field (an
# error here would lose the form); the body limit bounds what is read.
EmailField = Annotated[str, Form()]
PasswordField = Annotated[str, Form()]


def _safe_next(target: str) -> str:
    """Where to go after logging in: a path on this site, never another site."""
    if target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


def _form(
    request: Request,
    template: str,
    *,
    email: str = "",
    next_url: str = "/",
    error: Invalid | TooManyRequests | None = None,
) -> Response:
    return render(
        request,
        template,
        {
            "email": email,
            "next": _safe_next(next_url),
            "error": error.message if error else None,
            "error_field": error.field if error else None,
        },
        status_code=error.status if error else 200,
        retry_after=error.retry_after if isinstance(error, TooManyRequests) else None,
    )


@router.get("/signup", name="signup")
def signup_page(request: Request, next_url: Next = "/") -> Response:
    """The sign-up form."""
    return _form(request, "accounts/signup.html", next_url=next_url)


@router.post("/signup", dependencies=[CsrfDep])
def signup(
    request: Request,
    session: SessionDep,
    visitor: VisitorDep,
    limits: AuthLimitsDep,
    email: EmailField = "",
    password: PasswordField = "",
    next_url: NextField = "/",
) -> Response:
    """Create an account (keeping this browser's guest progress) and log it in."""
    try:
        user = accounts.sign_up(
            session,
            visitor=visitor,
            email=email,
            password=password,
            limits=limits,
            client=client_address(request),
        )
    except (Invalid, TooManyRequests) as exc:
        return _form(request, "accounts/signup.html", email=email, next_url=next_url, error=exc)
    log_visitor_in(request, user)
    return RedirectResponse(_safe_next(next_url), status_code=303)


@router.get("/login", name="login")
def login_page(request: Request, next_url: Next = "/") -> Response:
    """The log-in form."""
    return _form(request, "accounts/login.html", next_url=next_url)


@router.post("/login", dependencies=[CsrfDep])
def login(
    request: Request,
    session: SessionDep,
    visitor: VisitorDep,
    limits: AuthLimitsDep,
    email: EmailField = "",
    password: PasswordField = "",
    next_url: NextField = "/",
) -> Response:
    """Log in; what this browser did as a guest moves into the account."""
    try:
        user = accounts.log_in(
            session,
            visitor=visitor,
            email=email,
            password=password,
            limits=limits,
            client=client_address(request),
        )
    except (Invalid, TooManyRequests) as exc:
        return _form(request, "accounts/login.html", email=email, next_url=next_url, error=exc)
    log_visitor_in(request, user)
    return RedirectResponse(_safe_next(next_url), status_code=303)


@router.post("/logout", name="logout", dependencies=[CsrfDep])
def logout(request: Request, session: SessionDep, visitor: VisitorDep) -> Response:
    """Log out — of every device: the account's session token changes. This browser
    becomes a new guest."""
    if visitor.user is not None:
        accounts.log_out(session, user=visitor.user)
    log_visitor_out(request)
    return RedirectResponse(request.url_for("home"), status_code=303)
