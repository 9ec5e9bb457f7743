"""The deadline of the request being served, and its place while it waits for code to run.

The admission gate (app.admission) sets both when a request arrives; they follow the request
into worker threads (contextvars do). What waits reads what is left of the deadline: the gate
itself, SQLite's write lock, a slot in the sandbox. Code then runs for at most its own time
limit. Outside a request (imports, the command line) there is no deadline and callers say
how long they wait.

A request waiting for the sandbox needs nothing of the server's meanwhile — no database
connection, no CPU — so around that wait (`long_wait()`) it gives its place in the gate to
another request, and takes one back, ahead of the line, when its run is done. An endless loop
then costs its author a five-second wait, and nobody else a place.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar

_DEADLINE: ContextVar[float | None] = ContextVar("tracewise_deadline", default=None)
StepAside = Callable[[], AbstractContextManager[None]]
_STEP_ASIDE: ContextVar[StepAside | None] = ContextVar("tracewise_step_aside", default=None)


def remaining(default: float) -> float:
    """Seconds left before the current request's deadline (never negative); `default`
    outside a request."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return default
    return max(0.0, deadline - time.monotonic())


@contextmanager
def within(seconds: float, *, step_aside: StepAside | None = None) -> Iterator[float]:
    """Run the block under a deadline `seconds` from now (or the current one, if sooner),
    with `step_aside` as what `long_wait()` does; yields the deadline (time.monotonic())."""
    deadline = time.monotonic() + seconds
    outer = _DEADLINE.get()
    if outer is not None:
        deadline = min(deadline, outer)
    token = _DEADLINE.set(deadline)
    aside_token = _STEP_ASIDE.set(step_aside)
    try:
        yield deadline
    finally:
        _STEP_ASIDE.reset(aside_token)
        _DEADLINE.reset(token)


def renew(seconds: float) -> None:
    """A fresh deadline `seconds` from now (a request back from the sandbox: the run was
    work, not waiting; what it still waits for gets its own time)."""
    _DEADLINE.set(time.monotonic() + seconds)


def long_wait() -> AbstractContextManager[None]:
    """Around a wait that holds no database connection (a run in the sandbox): the request
    lends its place in the admission gate meanwhile. Outside a request, nothing happens."""
    step_aside = _STEP_ASIDE.get()
    return step_aside() if step_aside is not None else nullcontext()
