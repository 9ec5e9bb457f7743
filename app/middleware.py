"""ASGI middleware: limits applied before a request reaches any route."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


class BodyTooLarge(Exception):
    """The body went over the limit while it was being read."""


class BodySizeLimit:
    """Refuse request bodies over `limit` bytes with 413, whether or not they say their size."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int = MAX_BODY_BYTES,
        authoring_limit: int = MAX_AUTHORING_BODY_BYTES,
    ) -> None:
        self.app = app
        self.default_limit = limit
        self.authoring_limit = authoring_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.authoring_limit if is_authoring(scope) else self.default_limit
        headers = dict(scope["headers"])
        length = headers.get(b"content-length", b"0")
        if not length.isdigit() or int(length) > limit:
            await self._refuse(send, limit)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send, limit)

    async def _refuse(self, send: Send, limit: int) -> None:
        body = json.dumps({"detail": f"The request body is larger than {limit} bytes."})
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})
