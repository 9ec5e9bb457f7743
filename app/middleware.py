"""ASGI middleware: checks applied before a request reaches any route (the admission gate
has a module of its own: app.admission). Refusals are rendered by the app's one error
renderer (`reject`), as JSON or as a page, like any other error."""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import AppError, TooLarge

RejectFn = Callable[[Scope, AppError], ASGIApp]  # renders the error for a refused request
UNCHECKED_HOST = ("/healthz",)  # probes ask for a process by address, not by name

MAX_BODY_BYTES = 256 * 1024  # the largest legitimate body (an answer, a playground run) is ~1 KiB
# Instructors upload question files (up to 2 MiB, app.authoring.uploads) and post questions.
MAX_AUTHORING_BODY_BYTES = 3 * 1024 * 1024
AUTHORING_PREFIX = "/instructor/"
AUTHORING_API = ("/api/questions", "/api/questions/validate")  # and PUT /api/questions/{id}


def is_authoring(scope: Scope) -> bool:
    """Whether a request goes to an instructors' route that may carry a large body."""
    path: str = scope["path"]
    return (
        path.startswith(AUTHORING_PREFIX)
        or path in AUTHORING_API
        or (scope["method"] == "PUT" and path.startswith("/api/questions/"))
    )


class BodySizeLimit:
    """Refuse request bodies over `limit` bytes with 413, whether or not they say their size."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        reject: RejectFn,
        limit: int = MAX_BODY_BYTES,
        authoring_limit: int = MAX_AUTHORING_BODY_BYTES,
    ) -> None:
        self.app = app
        self.reject = reject
        self.default_limit = limit
        self.authoring_limit = authoring_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.authoring_limit if is_authoring(scope) else self.default_limit
        too_large = TooLarge(f"The request body is larger than {limit} bytes.")
        length = Headers(scope=scope).get("content-length", "0")
        if not length.isdigit() or int(length) > limit:
            await self.reject(scope, too_large)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # An HTTPException passes through the body parsing to the app's handler.
                    raise HTTPException(413, too_large.message)
            return message

        await self.app(scope, limited_receive, send)


class TrustedHosts:
    """Refuse (400) a request whose Host header names no host this server answers to.

    A page on another site can make a browser send it requests with the learner's cookies
    only by renaming itself to this server's address (DNS rebinding): its requests then carry
    its own name in Host. Patterns as in Starlette's TrustedHostMiddleware: `*.example.edu`
    matches subdomains, `*` anything.
    """

    def __init__(self, app: ASGIApp, *, allowed_hosts: list[str], reject: RejectFn) -> None:
        self.app = app
        self.reject = reject
        self.any_host = "*" in allowed_hosts
        self.exact = {host.lower() for host in allowed_hosts if not host.startswith("*.")}
        self.suffixes = tuple(host[1:].lower() for host in allowed_hosts if host.startswith("*."))

    def allows(self, host_header: str) -> bool:
        """Whether a Host header (name, and maybe a port) names a host we answer to."""
        host = host_header.lower()
        # an IPv6 literal keeps its brackets ([::1]:8000); a name or IPv4 loses the port
        host = host.split("]", 1)[0] + "]" if host.startswith("[") else host.split(":", 1)[0]
        return host in self.exact or (bool(self.suffixes) and host.endswith(self.suffixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.any_host or scope["type"] != "http" or scope["path"] in UNCHECKED_HOST:
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host", "")  # the one Starlette's Request reads
        if self.allows(host):
            await self.app(scope, receive, send)
            return
        wrong_host = AppError(
            f"This server does not answer to the name {host!r}. If that is its name, add it "
            "to its allowed hosts (TRACEWISE_ALLOWED_HOSTS)."
        )
        await self.reject(scope, wrong_host)(scope, receive, send)
