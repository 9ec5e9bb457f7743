"""Request dependencies: the database session, the learner, load-or-fail lookups, CSRF."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Form, Path, Request
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner
from pydantic import ValidationError, ValidatorFunctionWrapHandler, WrapValidator
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app import accounts
from app.accounts import AuthLimits
from app.bank import service as bank
from app.checking.runs import Runs
from app.config import Settings
from app.db import Database
from app.errors import Forbidden, Unauthorized, UnsupportedMediaType
from app.learning import learners
from app.models import MAX_ROW_INT, User
from app.sandbox.client import Sandbox
from app.sandbox.scheduler import Owner

LEARNER_KEY = "learner"  # key of a guest's learner token in the signed session cookie
USER_KEY = "user"  # key of the logged-in account's session token
EMAIL_KEY = "email"  # the logged-in user's email, for the page header
ROLE_KEY = "role"  # the logged-in user's role, for the page header's links (not for access)
CSRF_KEY = "csrf"
CSRF_TOKEN_BYTES = 24


# Dependencies that do no I/O are `async def`. Anything that touches the database is a plain
# `def`: FastAPI runs it in the thread pool, never on the event loop — a lookup that waits for
# a pooled connection on the loop stops every request of the process (app.admission).


async def get_settings(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One database session per request. It connects on first use, in the thread that
    queries. Making it does no I/O; closing it does only while a transaction is open (it
    rolls back): then in a worker thread, else here (a use case that committed or ended
    its read has given its connection back already)."""
    database: Database = request.app.state.db
    session = database.session()
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()


async def get_sandbox(request: Request) -> Sandbox | None:
    """The app's sandbox runner (None when running code is switched off)."""
    sandbox: Sandbox | None = request.app.state.sandbox
    return sandbox


async def get_auth_limits(request: Request) -> AuthLimits:
    """How often log-in and sign-up may be tried (per client address, per account)."""
    limits: AuthLimits = request.app.state.auth_limits
    return limits


def client_address(request: Request) -> str:
    """The client's address: the peer's, or behind a trusted proxy the one it forwarded
    (uvicorn reads X-Forwarded-For from TRACEWISE_FORWARDED_ALLOW_IPS' proxies only)."""
    return request.client.host if request.client else "unknown"


SessionDep = Annotated[Session, Depends(get_session)]
AuthLimitsDep = Annotated[AuthLimits, Depends(get_auth_limits)]
SandboxDep = Annotated[Sandbox | None, Depends(get_sandbox)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_visitor(request: Request, session: SessionDep) -> learners.Visitor:
    """The visitor behind the cookie: the account logged in, or a guest's token (given now,
    in the cookie only, on a first visit) and learner row if they have one. Nothing is
    written to the database here."""
    account = _logged_in(request, session)
    if account is not None:
        return account
    token = request.session.get(LEARNER_KEY)
    gate = learners.GuestGate(client_address(request), request.app.state.guest_limit)
    visitor = learners.guest_visitor(
        session, token if isinstance(token, str) else learners.new_token(), gate
    )
    # Only a changed token is written: an unchanged session sends no cookie, so a slow
    # response cannot put back the session that a log-in in the meantime replaced.
    if visitor.token != token:
        request.session[LEARNER_KEY] = visitor.token
    return visitor


def _logged_in(request: Request, session: Session) -> learners.Visitor | None:
    """The account the cookie's session token names, if it still does (else the session is
    cleared: logged out elsewhere, or the account is gone)."""
    session_token = request.session.get(USER_KEY)
    if not isinstance(session_token, str):
        return None
    visitor = learners.account_visitor(session, session_token)
    if visitor is None:
        request.session.clear()
        return None
    if visitor.user is not None and request.session.get(ROLE_KEY) != visitor.user.role:
        request.session[ROLE_KEY] = visitor.user.role  # an admin changed it
    return visitor


def log_visitor_in(request: Request, user: User) -> None:
    """Make this browser session the user's: a fresh session (new CSRF token, no guest
    token), so that a session planted before the log-in never becomes the account's."""
    request.session.clear()
    request.session[USER_KEY] = user.session_token
    request.session[EMAIL_KEY] = user.email
    request.session[ROLE_KEY] = user.role


def log_visitor_out(request: Request) -> None:
    """End the session; the browser is a new guest from the next request."""
    request.session.clear()


VisitorDep = Annotated[learners.Visitor, Depends(get_visitor)]


async def get_owner(visitor: VisitorDep) -> Owner:
    """The visitor as the sandbox knows them: its fair share is theirs, whatever their
    address (a class shares one)."""
    return Owner.learner(visitor.token)


OwnerDep = Annotated[Owner, Depends(get_owner)]


def get_running_owner(request: Request, session: SessionDep, visitor: VisitorDep) -> Owner:
    """The visitor as the sandbox knows them, for a request that may run code now (a POST,
    or a page asked to `run`): a guest gets their learner row first, under the limit on new
    guests per address — else a client dropping its cookie would be a new owner, with a
    fresh share, at every request."""
    if request.method != "GET" or "run" in request.query_params:
        learners.admit(session, visitor)
    return Owner.learner(visitor.token)


RunningOwnerDep = Annotated[Owner, Depends(get_running_owner)]


async def get_runs(request: Request, owner: OwnerDep) -> Runs:
    """Where output and code questions' runs come from (the store, or the sandbox), made
    on the visitor's behalf."""
    runs: Runs = request.app.state.runs
    return runs.for_owner(owner)


RunsDep = Annotated[Runs, Depends(get_runs)]


def get_pattern(slug: str, session: SessionDep) -> bank.PatternView:
    """The pattern named in the path, or 404."""
    return bank.get_pattern_or_raise(session, slug)


def get_question(question_id: str, session: SessionDep) -> bank.LiveQuestion:
    """The live question named in the path, or 404."""
    return bank.get_question_or_raise(session, question_id)


def get_pattern_question(slug: str, question_id: str, session: SessionDep) -> bank.LiveQuestion:
    """The live question named in the path, which must belong to the pattern in the path."""
    return bank.get_question_or_raise(session, question_id, pattern_slug=slug)


PatternDep = Annotated[bank.PatternView, Depends(get_pattern)]
QuestionDep = Annotated[bank.LiveQuestion, Depends(get_question)]
PatternQuestionDep = Annotated[bank.LiveQuestion, Depends(get_pattern_question)]


def csrf_token(request: Request) -> str:
    """This browser session's CSRF token, created on first use."""
    token = request.session.get(CSRF_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(CSRF_TOKEN_BYTES)
        request.session[CSRF_KEY] = token
    return token


def verify_csrf(request: Request, csrf_token: Annotated[str, Form()] = "") -> None:
    """Reject a form post whose CSRF token does not match the session's."""
    expected = request.session.get(CSRF_KEY)
    if not isinstance(expected, str) or not hmac.compare_digest(
        expected.encode(), csrf_token.encode()
    ):
        raise Forbidden(
            "This form has expired or did not come from Tracewise. Reload the page and try again."
        )


CsrfDep = Depends(verify_csrf)

SHOWN_AT_MAX_AGE_S = 24 * 3600  # an older page still takes answers; it just records no time


def sign_shown(request: Request, subject: str) -> str:
    """A token for a form saying what the page showed (`subject`) and when: the answer that
    comes back with it can tell how long the learner took, and what they were shown."""
    signer: TimestampSigner = request.app.state.shown_at_signer
    return signer.sign(subject).decode()


UNTIMED = "untimed"  # a question asked among others: the page's age is not its answer's time


def sign_question_shown(
    request: Request, question: bank.LiveQuestion, variant: int, *, timed: bool = True
) -> str:
    """A `sign_shown` token for a form answering `question`, at this version and variant
    (`timed`: the time since is the time the answer took — not so on a page of several)."""
    subject = f"{question.id}:{question.version}:{variant}"
    return sign_shown(request, subject if timed else f"{subject}:{UNTIMED}")


def read_shown(request: Request, token: str) -> tuple[str, int] | None:
    """(subject, milliseconds since the page was shown) from a `sign_shown` token; None if
    it is forged, garbled or older than a day."""
    signer: TimestampSigner = request.app.state.shown_at_signer
    try:
        value, signed_at = signer.unsign(token, max_age=SHOWN_AT_MAX_AGE_S, return_timestamp=True)
    except (BadSignature, SignatureExpired):
        return None
    elapsed = datetime.now(UTC) - signed_at
    return value.decode(), max(0, int(elapsed.total_seconds() * 1000))


# A row id as a path parameter: anything else is a 422, not a database overflow.
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_INT, description="A row id.")]


def or_default(default: object) -> WrapValidator:
    """Put after `Query(...)` in a page's parameter: a value that is malformed or out of
    range is taken as `default`. For what is harmless to ignore (a page number, where to go
    next), where an error page would only be in the way; the JSON API stays strict."""

    def parse(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError:
            return default

    return WrapValidator(parse)


async def require_json_request(request: Request) -> None:
    """API calls that change something must be JSON from our own origin.

    A page on another site can post a form (or a body-less request) with the learner's
    cookie; it cannot send `Content-Type: application/json` without a CORS preflight, which
    this app never grants. A browser's Origin header, when sent, must be this host.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise UnsupportedMediaType("Send this request as JSON (Content-Type: application/json).")
    origin = request.headers.get("origin")
    if origin and origin.split("://", 1)[-1] != request.headers.get("host"):
        raise Forbidden(f"Requests from {origin} are not accepted.")


JsonRequestDep = Depends(require_json_request)


def _bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def get_staff(request: Request, session: SessionDep) -> User:
    """The instructor (or admin) making the request — by API token (`Authorization: Bearer`)
    or session cookie — else 401 (nobody) or 403 (not staff). A plain `def`: marking a token
    used may write."""
    token = _bearer_token(request)
    if token is not None:  # a script: no cookie is looked at, and no guest is made
        user = accounts.user_for_api_token(session, token)
        if user is None:
            raise Unauthorized("That API token is not valid: it was revoked, or is mistyped.")
    else:
        account = _logged_in(request, session)
        if account is None or account.user is None:
            raise Unauthorized("Log in with an instructor account to see this.")
        user = account.user
    if not accounts.is_staff(user):
        raise Forbidden("This is for instructors. An admin can give your account the role.")
    return user


def get_admin(request: Request, staff: Annotated[User, Depends(get_staff)]) -> User:
    """The admin making the request in a browser session, else 401 or 403 (roles and the
    audit log are not for scripts: a leaked token must not be able to grant roles)."""
    if staff.role != accounts.ADMIN:
        raise Forbidden("This is for admins.")
    if _bearer_token(request) is not None:
        raise Forbidden("Admin pages need a logged-in browser session, not an API token.")
    return staff


def get_browser_staff(request: Request, staff: Annotated[User, Depends(get_staff)]) -> User:
    """The instructor, in a browser session: API tokens are made and revoked there, never
    with a token (a leaked one must not be able to mint its own successor)."""
    if _bearer_token(request) is not None:
        raise Forbidden("API tokens are managed in a logged-in browser session.")
    return staff


StaffDep = Annotated[User, Depends(get_staff)]
BrowserStaffDep = Annotated[User, Depends(get_browser_staff)]
AdminDep = Annotated[User, Depends(get_admin)]


async def get_staff_runs(request: Request, staff: StaffDep) -> Runs:
    """Runs on an instructor's behalf (the editor, the API): not limited like a learner's,
    still taking their turn among them."""
    runs: Runs = request.app.state.runs
    return runs.for_owner(Owner.staff(staff.id))


StaffRunsDep = Annotated[Runs, Depends(get_staff_runs)]


def get_any_question(question_id: str, session: SessionDep) -> bank.QuestionRecord:
    """The question named in the path, live or retired (for instructors), or 404."""
    return bank.get_record_or_raise(session, question_id)


AnyQuestionDep = Annotated[bank.QuestionRecord, Depends(get_any_question)]
