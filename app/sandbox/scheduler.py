"""Fair sharing of the sandbox between the people whose code it runs.

A class shares one runner with a few slots. Left first come, first served, one learner's
endless loops fill every slot and everyone else waits. So runs are queued per owner:

- a learner has at most one run waiting or running (a second one is refused, 429);
- a learner may use `budget_s` seconds of running time per `window_s`; past that they are
  refused with when to retry (429) — an endless loop costs its author, nobody else;
- when a slot frees, the next run is the first waiting run of the owner who used the sandbox
  least in the window (ties: who waited longest). Learners who wait, each with one run, are
  so served in turn (round-robin), and a learner who has run little goes before one who ran
  a lot — a newcomer beside twenty endless loops waits for a slot, not for twenty runs;
- the last free slot is kept for learners who used less than `LIGHT_USE_S` in the window: a
  slot stays free for them even while heavy users fill the others, so an honest learner
  beside endless loops waits for nobody's five-second timeout;
- at most `queue_limit` learners wait at once. When the queue is full, a newcomer takes the
  place of the waiting learner who used the sandbox most, if that is more than the newcomer
  used and more than a light user uses (that learner is told to come back later, 429); else
  the newcomer is (503).

Staff and the system (imports, the editor) are not limited: they may queue many runs, which
still take their turn among learners by the same rule.

The queue knows nothing of processes or threads: the client holds a lock around it, and
tells it when runs start and end.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

from app.errors import Busy, TooManyRequests

Item = TypeVar("Item")
LIGHT_USE_S = 2.0  # an honest learner's runs take 20–100 ms; an endless loop's, 5 s


@dataclass(frozen=True)
class Owner:
    """Whose run it is. A `limited` owner (a learner) has one run at a time and, when
    `budgeted`, a budget of running time."""

    key: str
    limited: bool = True
    budgeted: bool = True

    def without_budget(self) -> Owner:
        """The same owner, its runs not refused for the budget (still counted against it)."""
        return replace(self, budgeted=False)

    @classmethod
    def learner(cls, token: str) -> Owner:
        """A learner, named by their (guest or account) learner token."""
        return cls(f"learner:{token}")

    @classmethod
    def staff(cls, user_id: int) -> Owner:
        """An instructor running questions in the editor or the API."""
        return cls(f"staff:{user_id}", limited=False)


SYSTEM = Owner("system", limited=False)  # imports, the command line, recording traces


@dataclass
class _Account:
    """What one owner (by key) has waiting, running and used lately."""

    owner: Owner  # as it last queued a run
    waiting: deque[object] = field(default_factory=deque)
    running: int = 0
    usage: deque[tuple[float, float]] = field(default_factory=deque)  # (ended at, seconds)
    used_s: float = 0.0  # the sum of `usage`
    waiting_since: float = 0.0  # when its oldest waiting run was queued


class FairQueue(Generic[Item]):
    """Runs waiting for a slot, per owner; see the module docstring for the rules."""

    def __init__(
        self,
        *,
        queue_limit: int,
        budget_s: float,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.queue_limit = queue_limit
        self.budget_s = budget_s
        self.window_s = window_s
        self._clock = clock
        self._accounts: dict[str, _Account] = {}  # by owner key
        self._waiting_learners = 0

    def __len__(self) -> int:
        """Runs waiting, of every owner."""
        return sum(len(account.waiting) for account in self._accounts.values())

    def push(self, owner: Owner, item: Item) -> Item | None:
        """Queue a run, or refuse it: TooManyRequests (this learner's turn or budget), Busy
        (too many learners waiting, none of them heavier). Returns the run of a heavier
        learner that was pushed out to make room, if one was: its caller must be told."""
        account = self._accounts.setdefault(owner.key, _Account(owner))
        account.owner = owner
        evicted: Item | None = None
        if owner.limited:
            if account.waiting or account.running:
                raise TooManyRequests(
                    "Your previous code is still running: wait for its result, then try again.",
                    retry_after=1,
                )
            if owner.budgeted and (wait := self._budget_wait(account)) is not None:
                raise TooManyRequests(
                    f"You have used your share of the code runner for now ({self.budget_s:g} s "
                    f"of running time a minute). Try again in {wait} s.",
                    retry_after=wait,
                )
            if self._waiting_learners >= self.queue_limit:
                evicted = self._evict_heavier_than(self.used_s(owner))
                if evicted is None:
                    raise Busy("The code runner is busy. Try again in a moment.", retry_after=2)
            self._waiting_learners += 1
        if not account.waiting:
            account.waiting_since = self._clock()
        account.waiting.append(item)
        return evicted

    def _evict_heavier_than(self, used_s: float) -> Item | None:
        """Take out the waiting run of the learner who used most, if more than `used_s` and
        more than a light user does (a newcomer never pushes out an honest learner)."""
        heaviest: _Account | None = None
        now = self._clock()
        for account in self._accounts.values():
            self._expire(account, now)
            floor = max(used_s, heaviest.used_s if heaviest else 0.0)
            heavy = account.used_s >= LIGHT_USE_S and account.used_s > floor
            if account.owner.limited and account.waiting and heavy:
                heaviest = account
        if heaviest is None:
            return None
        item: Item = heaviest.waiting.popleft()  # type: ignore[assignment]
        self._waiting_learners -= 1
        return item

    def pop(self, *, last_slot: bool = False) -> tuple[Owner, Item] | None:
        """The next run to start (now counted as running), or None if none may. `last_slot`:
        it would take the last free slot, which only a light user (or staff) may have."""
        now = self._clock()
        best: _Account | None = None
        for account in self._accounts.values():
            if account.waiting:
                self._expire(account, now)
                if last_slot and account.owner.limited and account.used_s >= LIGHT_USE_S:
                    continue
                rank = (account.used_s, account.waiting_since)
                if best is None or rank < (best.used_s, best.waiting_since):
                    best = account
        if best is None:
            return None
        item: Item = best.waiting.popleft()  # type: ignore[assignment]
        best.waiting_since = now
        best.running += 1
        if best.owner.limited:
            self._waiting_learners -= 1
        return best.owner, item

    def withdraw(self, owner: Owner, item: Item) -> bool:
        """Take a run out of the queue before it started (its caller gave up waiting);
        False if it is not waiting any more."""
        account = self._accounts.get(owner.key)
        if account is None or item not in account.waiting:
            return False
        account.waiting.remove(item)
        if owner.limited:
            self._waiting_learners -= 1
        self._forget_if_idle(account)
        return True

    def finished(self, owner: Owner, seconds: float) -> None:
        """A run of `owner` that was started has ended, after `seconds` of running time."""
        account = self._accounts.get(owner.key)
        if account is None:
            return
        account.running = max(0, account.running - 1)
        now = self._clock()
        account.usage.append((now, seconds))
        account.used_s += seconds
        self._expire(account, now)
        self._forget_if_idle(account)

    def used_s(self, owner: Owner) -> float:
        """Seconds of running time `owner` used in the window."""
        account = self._accounts.get(owner.key)
        if account is None:
            return 0.0
        self._expire(account, self._clock())
        return account.used_s

    def sweep(self) -> None:
        """Forget owners with nothing waiting, running or used in the window (call now and
        then: a class leaves thousands of idle owners behind)."""
        now = self._clock()
        for account in list(self._accounts.values()):
            self._expire(account, now)
            self._forget_if_idle(account)

    def _budget_wait(self, account: _Account) -> int | None:
        """Whole seconds until the account is under its budget again; None if it is now."""
        now = self._clock()
        self._expire(account, now)
        if account.used_s < self.budget_s:
            return None
        used = account.used_s
        for ended_at, seconds in account.usage:
            used -= seconds
            if used < self.budget_s:
                return max(1, math.ceil(ended_at + self.window_s - now))
        return 1  # unreachable: the whole window's usage drops out eventually

    def _expire(self, account: _Account, now: float) -> None:
        while account.usage and account.usage[0][0] <= now - self.window_s:
            _, seconds = account.usage.popleft()
            account.used_s -= seconds
        if not account.usage:
            account.used_s = 0.0  # no float dust left behind

    def _forget_if_idle(self, account: _Account) -> None:
        if not account.waiting and not account.running and not account.usage:
            del self._accounts[account.owner.key]
