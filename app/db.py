"""The database engine: SQLite tuned for a web server, any other SQLAlchemy URL as given.

SQLite notes. pysqlite's own transaction handling is switched off so that we emit BEGIN
ourselves: reads begin a plain (deferred) transaction; a use case that writes calls
`begin_write(session)` first, which starts its transaction with BEGIN IMMEDIATE. A deferred
transaction that reads and then writes fails at once with "database is locked" when another
connection committed in between (WAL snapshot conflict, which busy_timeout cannot wait out);
taking the write lock up front makes concurrent writers queue instead. Slow work (running
code in the sandbox) happens before `begin_write`, so the lock is held for milliseconds.

Writers of one process also queue on a threading.Lock before BEGIN IMMEDIATE. Left to SQLite
alone, a waiting writer sleeps in its busy handler (1, 2, 5, 10 … 100 ms backoff) and wakes
long after the lock is free: under 64 concurrent submissions that wasted most of the time.
Other processes (a second server, the import command) still meet at SQLite's own lock.

PostgreSQL: the same interface, the same guarantee. `begin_write` takes one transaction-level
advisory lock, so write transactions run one at a time as on SQLite — on every process and
machine of a course — and each use case stays as simple as it is there (read, decide, write,
with nobody writing in between); readers never wait. Writers of a process queue on the same
threading.Lock first. Every wait for a lock — the thread lock, SQLite's busy timeout,
PostgreSQL's lock_timeout — lasts at most what is left of the request's deadline, then 503.

JSON columns are written and read by `dump_json` / `load_json` on every engine (below).
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from app import deadline
from app.errors import Busy

BUSY_TIMEOUT_MS = 10_000  # outside a request, a writer waits this long for the lock
WRITE_OPTION = "tracewise_write"
WRITE_LOCK = "tracewise_write_lock"  # Session.info keys
HOLDS_WRITE_LOCK = "tracewise_holds_write_lock"
FLUSHED = "tracewise_flushed"  # the transaction has written something
WRITE_LOCK_KEY = 0x7472616365  # "trace": the advisory lock every writer takes on PostgreSQL
# A connection whose instance died mid-transaction must not keep the write lock for long:
# the server ends a transaction left idle. And an instance notices a database server gone
# silent (TCP keepalives, a time-out on unacknowledged data) instead of waiting on it.
POSTGRESQL_CONNECT_ARGS = {
    "options": "-c idle_in_transaction_session_timeout=60000",  # ms
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,  # ms
}
DEFAULT_POOL_SIZE = 8  # the command line and tests; the server sizes its pool to its requests
POOL_OVERFLOW = 4  # beyond the pool, for a session outside any request (a CSV being streamed)


# --- JSON: one encoding on every engine ------------------------------------------------------

NON_FINITE = "$float"  # {"$float": "inf"} stands for a float JSON has no number for
NON_FINITE_NAMES = ("inf", "-inf", "nan")


def dump_json(value: Any) -> str:
    """JSON text for a column. A learning rate can overflow (StepLR with gamma=100 reaches
    inf, and 0 * inf is nan), and JSON has no number for that: PostgreSQL refuses Python's
    `Infinity`, so a non-finite float is stored as {"$float": "inf" | "-inf" | "nan"}."""
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:
        return json.dumps(_tag_non_finite(value), allow_nan=False)


def load_json(text: str | bytes) -> Any:
    """A column's JSON value, with non-finite floats back as floats (and rows written before
    this encoding, with Python's bare `Infinity`, read as they always were). SQLite hands a
    bare number over as a number, refused here with the TypeError SQLAlchemy expects."""
    tagged = NON_FINITE in text if isinstance(text, str) else NON_FINITE.encode() in text
    return json.loads(text, object_hook=_untag_non_finite if tagged else None)


def _tag_non_finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {NON_FINITE: "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"}
    if isinstance(value, dict):
        return {key: _tag_non_finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_tag_non_finite(item) for item in value]
    return value


def _untag_non_finite(value: dict[str, Any]) -> Any:
    if len(value) == 1 and value.get(NON_FINITE) in NON_FINITE_NAMES:
        return float(value[NON_FINITE])
    return value


def make_engine(url: str, *, pool_size: int = DEFAULT_POOL_SIZE, timeout_s: float = 30) -> Engine:
    """Create the engine for `url` with a pool of `pool_size` connections (a checkout waits
    at most `timeout_s`) and our JSON encoding; SQLite files get WAL, foreign keys and a busy
    timeout."""
    parsed = make_url(url)
    common: dict[str, Any] = {
        "pool_size": pool_size,
        "max_overflow": POOL_OVERFLOW,
        "pool_timeout": timeout_s,
        "json_serializer": dump_json,
        "json_deserializer": load_json,
    }
    if parsed.get_backend_name() == "postgresql":
        # READ COMMITTED: what follows the write lock sees the last write
        common.update(isolation_level="READ COMMITTED", connect_args=POSTGRESQL_CONNECT_ARGS)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **common)

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False}, **common)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, see module docstring
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL: durable at checkpoints
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if not connection.get_execution_options().get(WRITE_OPTION, False):
            connection.exec_driver_sql("BEGIN")
            return
        # Another process's writer (a second worker, the import command) is waited for by
        # SQLite itself: for no longer than the request has left.
        wait_ms = int(deadline.remaining(BUSY_TIMEOUT_MS / 1000) * 1000)
        connection.exec_driver_sql(f"PRAGMA busy_timeout={max(1, wait_ms)}")
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def begin_write(session: Session) -> None:
    """Start the transaction that writes, holding the write lock (SQLite's, or PostgreSQL's
    advisory lock) from now until it commits or rolls back; Busy if the lock does not come
    within what is left of the request's deadline.

    The session's read transaction, if any, ends first (`end_read`: it must have written
    nothing), so that the write transaction starts from the latest state.
    """
    end_read(session)
    lock: threading.Lock = session.info[WRITE_LOCK]
    if not lock.acquire(timeout=deadline.remaining(BUSY_TIMEOUT_MS / 1000)):
        raise Busy("The database is busy. Try again in a moment.", retry_after=1)
    session.info[HOLDS_WRITE_LOCK] = True
    try:
        connection = session.connection(execution_options={WRITE_OPTION: True})
        lock_for_writing(connection, wait_s=deadline.remaining(BUSY_TIMEOUT_MS / 1000))
    except OperationalError as exc:
        try:
            session.rollback()
        finally:
            _drop_write_lock(session)
        if is_lock_wait(exc):
            raise Busy("The database is busy. Try again in a moment.", retry_after=1) from None
        raise
    except BaseException:
        _drop_write_lock(session)
        raise


def end_read(session: Session) -> None:
    """End the session's read transaction, returning its connection to the pool; the next
    query begins a new one. A read writes nothing: pending changes here are a bug (they
    belong in a `begin_write` transaction), and raise instead of being committed unseen."""
    if session.new or session.dirty or session.deleted or session.info.get(FLUSHED):
        raise RuntimeError("end_read() after writing: write in begin_write(), then commit")
    session.commit()  # nothing to write; ends the transaction without expiring what was read


def lock_for_writing(connection: Connection, *, wait_s: float | None = None) -> None:
    """On PostgreSQL, take the write lock for the rest of the connection's transaction,
    waiting at most `wait_s` (else lock_not_available); SQLite's came with BEGIN IMMEDIATE,
    from the WRITE_OPTION execution option."""
    if connection.dialect.name != "postgresql":
        return
    if wait_s is not None:
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = {max(1, int(wait_s * 1000))}")
    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")


def is_lock_wait(exc: OperationalError) -> bool:
    """Whether a database error is a lock that did not come in time (SQLite's "database is
    locked", PostgreSQL's lock_not_available)."""
    return "database is locked" in str(exc.orig) or getattr(exc.orig, "sqlstate", "") == "55P03"


def _release_write_lock(session: Session, transaction: SessionTransaction) -> None:
    """Let the write lock go when the outermost transaction ends — committed, rolled back,
    or abandoned by close() after a failed COMMIT."""
    if transaction.parent is None:
        session.info.pop(FLUSHED, None)
        _drop_write_lock(session)


def _note_flush(session: Session, _context: Any) -> None:
    session.info[FLUSHED] = True


def _drop_write_lock(session: Session) -> None:
    if session.info.pop(HOLDS_WRITE_LOCK, False):
        session.info[WRITE_LOCK].release()


class Database:
    """An engine and its session factory."""

    def __init__(
        self, url: str, *, pool_size: int = DEFAULT_POOL_SIZE, timeout_s: float = 30
    ) -> None:
        self.engine = make_engine(url, pool_size=pool_size, timeout_s=timeout_s)
        info = {WRITE_LOCK: threading.Lock()}  # this process's writers queue here first
        self._sessions = sessionmaker(self.engine, expire_on_commit=False, info=info)
        event.listen(self._sessions, "after_transaction_end", _release_write_lock)
        event.listen(self._sessions, "after_flush", _note_flush)

    def session(self) -> Session:
        """A new session; call `begin_write(session)` before writing."""
        return self._sessions()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Any:
    """An Alembic configuration for `url`, using the migrations/ folder."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = url
    return config


def schema_is_current(engine: Engine) -> bool:
    """Whether the database has had every migration (none missing, none unknown to us)."""
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    scripts = ScriptDirectory.from_config(alembic_config(engine.url.render_as_string()))
    return current == set(scripts.get_heads())


def migrate(url: str, revision: str = "head") -> None:
    """Bring the schema at `url` up to `revision` (all migrations by default)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)
