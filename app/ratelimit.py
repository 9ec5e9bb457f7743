"""Rate limits kept in the database, so that every instance of the app counts together.

A limit allows `limit` events per key in any `window_s`: a token bucket per key, full to
start with, refilled at `limit / window_s` tokens a second. Checking and counting are one
step in the caller's write transaction (`app.db.begin_write`: one writer at a time, on any
engine and instance), so concurrent requests cannot all slip under the limit. Keys are
stored hashed; a bucket that is full again is forgotten.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.models import RateBucket, utcnow


@dataclass(frozen=True)
class RateLimit:
    """At most `limit` events per key in `window_s` seconds, under the name `name`."""

    name: str
    limit: int
    window_s: float

    @property
    def per_second(self) -> float:
        """How fast a used event comes back."""
        return self.limit / self.window_s

    def take(self, session: Session, key: str) -> int | None:
        """Count one event for `key` if it is allowed now (None); else count nothing and
        return the whole seconds to wait. Inside the caller's write transaction."""
        bucket, tokens = self._bucket(session, key)
        if tokens < 1:
            return max(1, math.ceil((1 - tokens) / self.per_second))
        self._store(bucket, tokens - 1)
        return None

    def give_back(self, session: Session, key: str) -> None:
        """Uncount one event of `key` (it turned out not to count: a right password)."""
        bucket, tokens = self._bucket(session, key)
        self._store(bucket, min(self.limit, tokens + 1))

    def reset(self, session: Session, key: str) -> None:
        """Forget `key`'s events (its failures, after a success)."""
        session.execute(delete(RateBucket).where(RateBucket.key == self._digest(key)))

    def _digest(self, key: str) -> str:
        return hashlib.sha256(f"{self.name}\0{key}".encode()).hexdigest()

    def _bucket(self, session: Session, key: str) -> tuple[RateBucket, float]:
        """The key's bucket and its tokens now."""
        digest, now = self._digest(key), utcnow()
        values = {"key": digest, "tokens": float(self.limit), "updated_at": now, "full_at": now}
        insert = (
            postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        )
        statement = insert(RateBucket).values(values).on_conflict_do_nothing()
        if session.execute(statement.returning(RateBucket.key)).first() is not None:
            # A new key: forget the buckets that are full again (no limit remembers them).
            session.execute(
                delete(RateBucket).where(RateBucket.full_at < now, RateBucket.key != digest)
            )
        bucket = session.scalars(
            select(RateBucket)
            .where(RateBucket.key == digest)
            .execution_options(populate_existing=True)
        ).one()
        elapsed = max(0.0, (now - bucket.updated_at).total_seconds())
        return bucket, min(float(self.limit), bucket.tokens + elapsed * self.per_second)

    def _store(self, bucket: RateBucket, tokens: float) -> None:
        now = utcnow()
        bucket.tokens = tokens
        bucket.updated_at = now
        bucket.full_at = now + timedelta(seconds=(self.limit - tokens) / self.per_second)
