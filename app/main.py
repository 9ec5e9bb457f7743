"""The application factory."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from itsdangerous import TimestampSigner
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import Scope

from app.accounts import AuthLimits
from app.admission import Admission
from app.checking.runs import Runs
from app.config import Settings
from app.db import Database, is_lock_wait
from app.errors import AppError, Busy, Invalid, NotFound, Problem, validation_message
from app.instances import check_instance
from app.middleware import BodySizeLimit, TrustedHosts
from app.ratelimit import RateLimit
from app.routes import (
    accounts,
    admin,
    api,
    authoring_api,
    exams,
    instructor,
    modes,
    openapi,
    pages,
    step_through,
    traces,
)
from app.sandbox.client import Sandbox
from app.sandbox.client import from_settings as sandbox_from_settings
from app.templating import STATIC_DIR, make_templates

SESSION_COOKIE = "tracewise"
# Worker threads at most: more than the gate's places plus every request that can wait aside
# for the sandbox (its queue, its slots, instructors' checks). Idle, a thread costs memory.
WORKER_THREADS = 1000


def create_app(settings: Settings | None = None, *, sandbox: Sandbox | None = None) -> FastAPI:
    """Build the app: settings, database, sandbox, templates, middleware, routes, errors.

    The app starts its own sandbox runner (unless `sandbox_mode` is off) and stops it on
    shutdown; a caller may pass one it manages itself (the tests share one).
    """
    settings = settings or Settings()
    # An admitted request holds at most one connection: the pool never runs dry.
    database = Database(
        settings.resolved_database_url,
        pool_size=settings.max_requests,
        timeout_s=settings.request_timeout_s,
    )
    owns_sandbox = sandbox is None and settings.sandbox_mode != "off"
    if owns_sandbox:
        sandbox = sandbox_from_settings(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # The gate bounds the requests at work; a request waiting aside for its run holds a
        # thread too. The thread pool must never be what an admitted request waits for.
        anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
        try:
            await anyio.to_thread.run_sync(check_instance, database, settings)
            if owns_sandbox and sandbox is not None:
                sandbox.start()
            yield
        finally:
            if owns_sandbox and sandbox is not None:
                sandbox.close()
            database.dispose()

    app = FastAPI(
        title="Tracewise",
        summary="Learn PyTorch patterns by tracing real training runs.",
        lifespan=lifespan,
        responses=openapi.EVERY_ROUTE,
        docs_url=None,  # served by app.routes.openapi from vendored files, not a CDN
        redoc_url=None,
    )
    app.openapi = lambda: openapi.openapi_schema(app)  # type: ignore[method-assign]
    app.state.settings = settings
    app.state.db = database
    app.state.sandbox = sandbox
    app.state.runs = Runs(
        sandbox, use_cache=settings.sandbox_cache, timeout_s=settings.sandbox_timeout_s
    )
    app.state.auth_limits = AuthLimits.from_settings(settings)
    app.state.guest_limit = RateLimit(
        "new guests per address", settings.guests_per_ip_per_hour, 3600
    )
    # Playground runs may use half the sandbox's slots at most: the rest stay for grading.
    app.state.playground_gate = threading.BoundedSemaphore(max(1, settings.sandbox_slots // 2))
    app.state.templates = make_templates()
    app.state.trace_pages = OrderedDict()  # rendered trace pages, see app.routes.traces
    app.state.url_paths = {}  # route lookups for templates' url_for, see app.templating
    signing_key = settings.signing_key()
    app.state.shown_at_signer = TimestampSigner(signing_key, salt="tracewise.question-shown-at")

    # Added inside out: a request meets the host check, the body limit, the session, then
    # the admission gate.
    app.add_middleware(
        Admission,
        limit=settings.max_requests,
        max_waiting=settings.max_waiting_requests,
        timeout_s=settings.request_timeout_s,
        reject=_refusal,
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=signing_key,
        session_cookie=SESSION_COOKIE,
        max_age=settings.session_max_age_days * 24 * 3600,
        same_site="lax",
        https_only=settings.https_only_cookies,
    )
    app.add_middleware(BodySizeLimit, reject=_refusal)
    app.add_middleware(TrustedHosts, allowed_hosts=settings.allowed_hosts, reject=_refusal)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # Routes are matched router by router, in this order: what a class asks for most first.
    app.include_router(pages.router)
    app.include_router(api.router)
    app.include_router(exams.router)
    app.include_router(traces.router)
    app.include_router(modes.router)
    app.include_router(step_through.router)
    app.include_router(accounts.router)
    app.include_router(authoring_api.router)
    app.include_router(instructor.router)
    app.include_router(admin.router)
    app.include_router(openapi.router)
    _add_error_handlers(app)
    return app


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return request.url.path.startswith("/api/") or (
        "application/json" in accept and "text/html" not in accept
    )


def _error_response(
    request: Request,
    status: int,
    title: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, object] | None = None,
) -> Response:
    if _wants_json(request):
        # The documented body itself: what is sent cannot drift from the schema.
        body = openapi.ErrorBody.model_validate(
            {"detail": message, "field": field, **(extra or {})}
        )
        return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)
    return request.app.state.templates.TemplateResponse(  # type: ignore[no-any-return]
        request,
        "errors/error.html",
        {"status": status, "title": title, "message": message},
        status_code=status,
        headers=headers,
    )


def _refusal(scope: Scope, error: AppError) -> Response:
    """The response to a request refused before it reached a route (by the middleware)."""
    request = Request(scope)
    scope.setdefault("router", request.app.router)  # for url_for in the error page
    return _app_error_response(request, error)


def _app_error_response(request: Request, exc: AppError) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if hasattr(exc, "retry_after") else None
    if exc.status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="tracewise"'}
    return _error_response(
        request, exc.status, exc.title, exc.message, exc.field, headers, exc.extra
    )


def _field_name(loc: tuple[object, ...]) -> str:
    """`("body", "answer")` → `answer`: where in the request the problem is (a JSON syntax
    error's location is a character offset, not a field: that is `body`)."""
    parts = [str(part) for part in loc if part not in ("body", "query", "path")]
    if loc[:1] == ("body",) and len(loc) == 2 and isinstance(loc[1], int):
        return "body"
    return ".".join(parts) or "body"


def _shorten(value: object, limit: int = 40) -> str:
    """A value as an error message may quote it: never the whole of a huge input."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _unreadable_body(cause: BaseException) -> str:
    """Why a body could not be read (as JSON, or as a form), for the client that sent it."""
    if isinstance(cause, UnicodeDecodeError):
        return "The body could not be read: it is not UTF-8 text."
    if isinstance(cause, RecursionError):
        return "The body could not be read: it is nested too deeply."
    return f"The body could not be read: {_shorten(str(cause), 120)}"


def _problem(error: dict[str, Any], cause: BaseException | None) -> Problem:
    """One of a request's validation errors: the field it names and, in our words, what is
    wrong with it (`page`, `must be at least 1`)."""
    return Problem(_field_name(error["loc"]), validation_message(_with_position(error, cause)))


def _with_position(error: dict[str, Any], cause: BaseException | None) -> dict[str, Any]:
    """FastAPI's error for JSON that does not parse gives a character offset: this adds the
    line and column the parser stopped at, which a person can find."""
    if error.get("type") != "json_invalid" or not isinstance(cause, json.JSONDecodeError):
        return error
    return {**error, "ctx": {**error.get("ctx", {}), "line": cause.lineno, "column": cause.colno}}


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> Response:
        return _app_error_response(request, exc)

    @app.exception_handler(PoolTimeout)
    async def _pool_timeout(request: Request, exc: PoolTimeout) -> Response:
        # Admission keeps requests within the pool; another process's load may not be.
        busy = Busy("The database is busy. Try again in a moment.", retry_after=2)
        return _app_error_response(request, busy)

    @app.exception_handler(OperationalError)
    async def _database_locked(request: Request, exc: OperationalError) -> Response:
        # A lock held by another writer past the request's deadline (begin_write turns the
        # usual case into Busy itself; this is for a lock met later in a transaction).
        if not is_lock_wait(exc):
            raise exc
        busy = Busy("The database is busy. Try again in a moment.", retry_after=2)
        return _app_error_response(request, busy)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        in_path = [error for error in exc.errors() if error["loc"][:1] == ("path",)]
        if in_path:
            # `/tests/0`, `/attempts/abc`: an address that cannot name anything is not there
            # (a 404 like any other), not a form to correct.
            shown = _shorten(in_path[0].get("input"))
            return _app_error_response(request, NotFound(f"There is nothing here called {shown}."))
        problems = [_problem(error, exc.__cause__) for error in exc.errors()]
        message = "; ".join(str(problem) for problem in problems) or "The request is not valid."
        field = problems[0].field if problems else None
        return _error_response(request, 422, "Invalid input", message, field)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400 and exc.__cause__ is not None:
            # FastAPI's "There was an error parsing the body" (a body it could not decode):
            # like JSON that does not parse, a 422 naming the body, and why.
            unreadable = Invalid(_unreadable_body(exc.__cause__), field="body")
            return _app_error_response(request, unreadable)
        titles = {404: "Not found", 405: "Method not allowed", 408: "Too slow", 413: "Too large"}
        message = "There is no page here." if exc.status_code == 404 else str(exc.detail)
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405 and (
            documented := openapi.documented_methods(request.app, request.url.path)
        ):
            headers = {**(headers or {}), "Allow": documented}
        return _error_response(
            request, exc.status_code, titles.get(exc.status_code, "Error"), message, headers=headers
        )
