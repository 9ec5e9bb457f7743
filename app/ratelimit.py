"""A sliding-window rate limiter, kept in memory.

Counts are per process: behind several worker processes each counts on its own, so the
effective limit is the configured one times the number of workers.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

MAX_KEYS = 100_000  # distinct keys remembered; beyond this the stalest are forgotten


class RateLimiter:
    """At most `limit` events per key in any `window_s` seconds."""

    def __init__(
        self, limit: int, window_s: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> int | None:
        """Seconds until `key` may act again, or None if it may act now."""
        with self._lock:
            events = self._fresh(key, self._clock())
            if len(events) < self.limit:
                return None
            return max(1, math.ceil(events[0] + self.window_s - self._clock()))

    def take(self, key: str) -> int | None:
        """Count one event for `key` if it is allowed now (and return None); else count
        nothing and return the seconds to wait. Checking and counting are one step, so
        concurrent requests cannot all slip under the limit."""
        with self._lock:
            now = self._clock()
            events = self._fresh(key, now)
            if len(events) >= self.limit:
                return max(1, math.ceil(events[0] + self.window_s - now))
            events.append(now)
            self._events[key] = events
            if len(self._events) > MAX_KEYS:
                self._forget_stalest()
            return None

    def give_back(self, key: str) -> None:
        """Uncount `key`'s latest event (it turned out not to count, e.g. a right password)."""
        with self._lock:
            events = self._events.get(key)
            if events:
                events.pop()

    def hit(self, key: str) -> None:
        """Count one event for `key`."""
        with self._lock:
            now = self._clock()
            events = self._fresh(key, now)
            events.append(now)
            self._events[key] = events
            if len(self._events) > MAX_KEYS:
                self._forget_stalest()

    def reset(self, key: str) -> None:
        """Forget `key`'s events (e.g. its failures, after a success)."""
        with self._lock:
            self._events.pop(key, None)

    def _fresh(self, key: str, now: float) -> deque[float]:
        events = self._events.pop(key, deque())  # re-inserted on hit: dict order = recency
        while events and events[0] <= now - self.window_s:
            events.popleft()
        if events:
            self._events[key] = events
        return events

    def _forget_stalest(self) -> None:
        for key in list(self._events)[: len(self._events) - MAX_KEYS]:
            del self._events[key]
