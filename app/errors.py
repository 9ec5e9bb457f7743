"""Errors a user can cause, each carrying its HTTP status.

    AppError (400)
    ├── Unauthorized (401)  log in (or send an API token) first
    ├── NotFound (404)      no such pattern, question or attempt
    ├── Forbidden (403)     it exists, but is not yours to see or do
    ├── Conflict (409)      the thing is not in a state that allows this (a finished test)
    ├── TooLarge (413)      the request's body is over the limit
    ├── Invalid (422)       the input cannot be right; `field` names which part
    ├── UnsupportedMediaType (415)  not JSON where JSON is required
    ├── TooManyRequests (429)  slow down: try again in `retry_after` seconds
    └── Busy (503)          try again in `retry_after` seconds

`Problem` is what is wrong and in which field (a schema error, Markdown that would not show,
a run that failed); `Invalid` and its kin carry them. Domain code raises these; one handler
in app.main renders them as JSON for API clients and as an HTML page for browsers. Anything
else is a bug and stays a 500.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """What is wrong, in which field (`choices.1.mistake`, `(file)` for the whole), and on
    which line of the YAML when that is known; reads `line 3: field: message`."""

    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.field}: {self.message}"


class AppError(Exception):
    """Base of errors that a client caused or can recover from."""

    status = 400
    title = "Bad request"
    extra: dict[str, object] | None = None  # more for API clients, e.g. every problem found

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Unauthorized(AppError):
    """Nobody is logged in (or the API token is wrong), and this needs someone who is."""

    status = 401
    title = "Log in first"


class NotFound(AppError):
    """The thing asked for does not exist (or is hidden from this user)."""

    status = 404
    title = "Not found"


class Forbidden(AppError):
    """The thing exists, but this user may not see or change it."""

    status = 403
    title = "Forbidden"


class Conflict(AppError):
    """The request clashes with the thing's current state."""

    status = 409
    title = "Conflict"


class TooLarge(AppError):
    """The request's body is larger than this route takes."""

    status = 413
    title = "Too large"


class Invalid(AppError):
    """The input is malformed or cannot be a valid answer."""

    status = 422
    title = "Invalid input"


class UnsupportedMediaType(AppError):
    """The body is not in a format this endpoint takes."""

    status = 415
    title = "Unsupported media type"


class TooManyRequests(AppError):
    """This client (or account) has made too many attempts; it may retry later."""

    status = 429
    title = "Too many attempts"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Busy(AppError):
    """The server is at capacity; the client should retry later."""

    status = 503
    title = "Busy"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after
