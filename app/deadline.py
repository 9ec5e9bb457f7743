"""The deadline of the request being served: whatever it waits for, it waits no longer.

The admission gate (app.admission) sets it when a request arrives; it follows the request
into worker threads (contextvars do). What waits reads what is left: the gate itself, a
pooled database connection, SQLite's write lock, a slot in the sandbox. Code then runs for at
most its own time limit. Outside a request (imports, the command line) there is no deadline
and callers say how long they wait.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_DEADLINE: ContextVar[float | None] = ContextVar("tracewise_deadline", default=None)


def remaining(default: float) -> float:
    """Seconds left before the current request's deadline (never negative); `default`
    outside a request."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return default
    return max(0.0, deadline - time.monotonic())


@contextmanager
def within(seconds: float) -> Iterator[float]:
    """Run the block under a deadline `seconds` from now (or the current one, if sooner);
    yields the deadline (time.monotonic() seconds)."""
    deadline = time.monotonic() + seconds
    outer = _DEADLINE.get()
    if outer is not None:
        deadline = min(deadline, outer)
    token = _DEADLINE.set(deadline)
    try:
        yield deadline
    finally:
        _DEADLINE.reset(token)
