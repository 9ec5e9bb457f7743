"""Rate limits in the database: counted once for every instance, forgotten when full again."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import Database, begin_write
from app.models import RateBucket
from app.ratelimit import RateLimit

LIMIT = RateLimit("test events", limit=2, window_s=60)


class Clock:
    """The time the limits see, moved by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr("app.ratelimit.utcnow", clock)
    return clock


def take(db: Session, key: str, limit: RateLimit = LIMIT) -> int | None:
    begin_write(db)
    wait = limit.take(db, key)
    db.commit()
    return wait


def test_a_key_may_act_up_to_the_limit_then_waits(db: Session, clock: Clock) -> None:
    assert take(db, "a") is None
    assert take(db, "a") is None
    assert take(db, "a") == 30  # one event comes back every 60 / 2 s
    assert take(db, "b") is None  # other keys are not affected
    clock.advance(30)
    assert take(db, "a") is None
    assert take(db, "a") == 30


def test_giving_back_and_resetting(db: Session, clock: Clock) -> None:
    take(db, "a")
    take(db, "a")
    begin_write(db)
    LIMIT.give_back(db, "a")  # e.g. the password was right
    db.commit()
    assert take(db, "a") is None
    assert take(db, "a") is not None
    begin_write(db)
    LIMIT.reset(db, "a")
    db.commit()
    assert take(db, "a") is None


def test_limits_with_other_names_count_apart(db: Session, clock: Clock) -> None:
    other = RateLimit("other events", limit=1, window_s=60)
    assert take(db, "a", other) is None
    assert take(db, "a", other) == 60
    assert take(db, "a") is None


def test_full_buckets_are_forgotten(db: Session, clock: Clock) -> None:
    for n in range(10):
        take(db, f"key {n}")
    clock.advance(31)  # a bucket with one event used is full again after 30 s
    take(db, "a new key")  # a new key sweeps
    assert db.scalar(select(func.count()).select_from(RateBucket)) == 1


def test_two_app_instances_counting_at_once_let_exactly_the_limit_through(
    settings_url: str,
) -> None:
    """Eight threads on two "instances" (databases objects of their own) take at once."""
    limit = RateLimit("concurrent events", limit=5, window_s=3600)
    instances = [Database(settings_url), Database(settings_url)]
    start = threading.Barrier(8)

    def take_once(n: int) -> bool:
        with instances[n % 2].session() as session:
            start.wait()
            begin_write(session)
            allowed = limit.take(session, "shared") is None
            session.commit()
            return allowed

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            allowed = list(pool.map(take_once, range(8)))
    finally:
        for instance in instances:
            instance.dispose()
    assert allowed.count(True) == 5


@pytest.fixture
def settings_url(database: Database) -> str:
    return database.engine.url.render_as_string(hide_password=False)
