"""The admission gate: how many requests are served at once, and how long the rest may wait.

A whole class arrives at once. Served all together, every request would compete for the
database pool and the worker threads, and under enough load none finishes in time. So:

- at most `limit` requests are inside the app at once. Each holds at most one database
  connection and one worker thread at a time, so the pool and the thread pool are sized to
  `limit` (app.main): an admitted request never waits for either;
- the others wait here, in arrival order, without holding anything but their socket;
- a request waits at most until its deadline (`timeout_s` after it arrived) and at most
  `max_waiting` may wait: past either, it is answered 503 with Retry-After at once.

The deadline (app.deadline) then goes with the request: what it waits for inside the app —
SQLite's write lock, a sandbox slot — waits only for what is left of it. So every request is
answered, with a page or an error, never left to hang.

A request waiting for its code to run steps aside (app.deadline.long_wait): it lends its
place to the next in line and, when the run is done, comes back ahead of the line. It holds
a worker thread meanwhile, but no connection; the thread pool has room for every run that
may wait (app.main).
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from starlette.types import ASGIApp, Receive, Scope, Send

from app import deadline
from app.errors import Busy

RejectFn = Callable[[Scope, Busy], ASGIApp]  # renders the 503 for a request it refuses
COMEBACK_S = 30.0  # a request back from the sandbox waits at most this for its place again


class Gate:
    """At most `limit` holders at once; the rest queue (FIFO), each until its deadline."""

    def __init__(self, limit: int, max_waiting: int) -> None:
        self.limit = limit
        self.max_waiting = max_waiting
        self.active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        """Requests waiting to come in."""
        return len(self._waiters)

    async def enter(self, until: float, *, first: bool = False) -> bool:
        """Come in (True), or give up at `until` (time.monotonic()) or when the line is full
        (False). `first`: wait at the head of the line (a request coming back). Every True
        must be followed by one `leave()`."""
        if self.active < self.limit and not self._waiters:
            self.active += 1
            return True
        if len(self._waiters) >= self.max_waiting and not first:
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if first:
            self._waiters.appendleft(waiter)
        else:
            self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), max(0.0, until - time.monotonic()))
        except TimeoutError:
            self._give_up(waiter)
            return False
        except asyncio.CancelledError:
            self._give_up(waiter)
            raise
        return True  # `leave()` handed its place over: `active` already counts it

    def leave(self) -> None:
        """Hand the place to the longest waiter, or free it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.active -= 1

    def _give_up(self, waiter: asyncio.Future[None]) -> None:
        if waiter.done():  # let in just as it gave up: pass the place on
            self.leave()
        else:
            waiter.cancel()
            self._waiters.remove(waiter)


class Place:
    """A request's place in the gate, which it may lend while it waits for the sandbox."""

    def __init__(self, gate: Gate, loop: asyncio.AbstractEventLoop) -> None:
        self.gate = gate
        self.loop = loop
        self.loop_thread = threading.get_ident()  # made on the loop
        self.held = True

    @contextmanager
    def step_aside(self) -> Iterator[None]:
        """Lend the place for the block; come back ahead of the line (Busy if even that
        takes longer than COMEBACK_S). Called from the request's worker thread."""
        if not self.held or threading.get_ident() == self.loop_thread:
            yield  # on the loop itself nothing may block: keep the place
            return
        self.held = False
        self.loop.call_soon_threadsafe(self.gate.leave)
        try:
            yield
        finally:
            back = self.gate.enter(time.monotonic() + COMEBACK_S, first=True)
            self.held = asyncio.run_coroutine_threadsafe(back, self.loop).result()
            if not self.held:
                raise Busy("The server is too busy to finish this request. Try again.")

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
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        place = Place(self.gate, asyncio.get_running_loop())
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
            try:
                await self.app(scope, receive, send)
            finally:
                place.release()

    def retry_after(self) -> int:
        """Seconds a refused client should wait: longer the longer the line."""
        backlog = self.gate.waiting / max(self.gate.limit, 1)
        return max(1, min(30, math.ceil(backlog)))
