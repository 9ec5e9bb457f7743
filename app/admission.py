"""The admission gate: how many requests are served at once, and how long the rest may wait.

A whole class arrives at once. Served all together, every request would compete for the
database pool and the worker threads, and under enough load none finishes in time. So:

- at most `limit` requests are inside the app at once. Each holds at most one database
  connection at a time, so the pool has `limit` connections (app.main): an admitted request
  never waits for one;
- the others wait here, in arrival order, without holding anything but their socket;
- a request waits at most until its deadline (`timeout_s` after it arrived) and at most
  `max_waiting` may wait: past either, it is answered 503 with Retry-After at once;
- inside, its body must arrive by the same deadline (else 408): a client sending a byte now
  and then cannot keep a place.

The deadline (app.deadline) then goes with the request: what it waits for inside the app —
SQLite's write lock, a sandbox slot — waits only for what is left of it. So every request is
answered, with a page or an error, never left to hang.

A request waiting for its code to run steps aside (app.deadline.long_wait): it lends its
place to the next in line and, when the run is done, comes back ahead of everyone waiting
to come in (returning requests in the order they return), with a fresh deadline for what it
still has to wait for (the write of its attempt). It holds a worker thread meanwhile, but
no connection; the thread pool has room for every request that may be inside or aside
(app.main), so an admitted request never waits for a thread either.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import deadline
from app.errors import Busy
from app.middleware import RejectFn

COMEBACK_S = 30.0  # a request back from the sandbox waits at most this for its place again
MIN_BODY_S = 2.0  # a request let in at its deadline still has this long to send its body
UNGATED = ("/healthz",)  # a health probe asks whether the process answers, not for a place


class Gate:
    """At most `limit` holders at once; the rest wait in two lines (requests coming back
    first, then newcomers), each in order and each until its deadline."""

    def __init__(self, limit: int, max_waiting: int) -> None:
        self.limit = limit
        self.max_waiting = max_waiting
        self.active = 0
        self._back: deque[asyncio.Future[None]] = deque()  # coming back from the sandbox
        self._line: deque[asyncio.Future[None]] = deque()  # newcomers

    @property
    def waiting(self) -> int:
        """Requests waiting to come in."""
        return len(self._back) + len(self._line)

    async def enter(self, until: float, *, back: bool = False) -> bool:
        """Come in (True), or give up at `until` (time.monotonic()) or, for a newcomer, when
        the line is full (False). `back`: a request coming back, served before newcomers.
        Every True must be followed by one `leave()`."""
        if self.active < self.limit and not self.waiting:
            self.active += 1
            return True
        line = self._back if back else self._line
        if not back and len(self._line) >= self.max_waiting:
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        line.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), max(0.0, until - time.monotonic()))
        except TimeoutError:
            self._give_up(waiter, line)
            return False
        except asyncio.CancelledError:
            self._give_up(waiter, line)
            raise
        return True  # `leave()` handed its place over: `active` already counts it

    def leave(self) -> None:
        """Hand the place to the next waiter (coming back first), or free it."""
        for line in (self._back, self._line):
            while line:
                waiter = line.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self.active -= 1

    def _give_up(self, waiter: asyncio.Future[None], line: deque[asyncio.Future[None]]) -> None:
        if waiter.done():  # let in just as it gave up: pass the place on
            self.leave()
        else:
            waiter.cancel()
            line.remove(waiter)


class Place:
    """A request's place in the gate, which it may lend while it waits for the sandbox."""

    def __init__(self, gate: Gate, loop: asyncio.AbstractEventLoop, timeout_s: float) -> None:
        self.gate = gate
        self.loop = loop
        self.loop_thread = threading.get_ident()  # made on the loop
        self.timeout_s = timeout_s
        self.held = True

    @contextmanager
    def step_aside(self) -> Iterator[None]:
        """Lend the place for the block; come back ahead of newcomers, with a fresh deadline
        (Busy if even coming back takes longer than COMEBACK_S). From a worker thread."""
        if not self.held or threading.get_ident() == self.loop_thread:
            yield  # on the loop itself nothing may block: keep the place
            return
        try:
            self.loop.call_soon_threadsafe(self.gate.leave)
        except RuntimeError:  # the loop is closing: keep the place, there is no line
            yield
            return
        self.held = False
        try:
            yield
        finally:
            self._come_back()

    def _come_back(self) -> None:
        back = self.gate.enter(time.monotonic() + COMEBACK_S, back=True)
        try:
            future = asyncio.run_coroutine_threadsafe(back, self.loop)
            self.held = future.result(timeout=COMEBACK_S + 1)
        except (RuntimeError, TimeoutError):  # the loop closed, or did not answer
            back.close()
            self.held = False
        if not self.held:
            raise Busy("The server is too busy to finish this request. Try again.")
        deadline.renew(self.timeout_s)

    def release(self) -> None:
        """Leave the gate for good (the request is done)."""
        if self.held:
            self.held = False
            self.gate.leave()


class Admission:
    """ASGI middleware: every HTTP request passes the gate and carries its deadline."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        max_waiting: int,
        timeout_s: float,
        reject: RejectFn,
    ) -> None:
        self.app = app
        self.gate = Gate(limit, max_waiting)
        self.timeout_s = timeout_s
        self.reject = reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNGATED:
            await self.app(scope, receive, send)
            return
        place = Place(self.gate, asyncio.get_running_loop(), self.timeout_s)
        with deadline.within(self.timeout_s, step_aside=place.step_aside) as until:
            if not await self.gate.enter(until):
                retry = self.retry_after()
                busy = Busy(
                    f"Tracewise is serving as many people as it can right now. "
                    f"Try again in {retry} s.",
                    retry_after=retry,
                )
                await self.reject(scope, busy)(scope, receive, send)
                return
            body_done = False
            body_until = max(until, time.monotonic() + MIN_BODY_S)

            async def receive_in_time() -> Message:
                nonlocal body_done
                if body_done:  # after the body: a wait for the client to leave, unbounded
                    return await receive()
                try:
                    message = await asyncio.wait_for(receive(), body_until - time.monotonic())
                except TimeoutError:
                    # An HTTPException passes through the body parsing to the app's handler.
                    raise HTTPException(408, "The request's body came too slowly.") from None
                body_done = message["type"] != "http.request" or not message.get("more_body")
                return message

            try:
                await self.app(scope, receive_in_time, send)
            finally:
                place.release()

    def retry_after(self) -> int:
        """Seconds a refused client should wait: longer the longer the line."""
        backlog = self.gate.waiting / max(self.gate.limit, 1)
        return max(1, min(30, math.ceil(backlog)))
