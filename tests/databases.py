"""The databases the suite runs on: SQLite files (`make test`), or a throwaway PostgreSQL
server (`make test-postgres`, which sets TRACEWISE_TEST_DATABASE=postgresql).

The PostgreSQL server is Debian's (package `postgresql`): a data directory under a temp
folder, a Unix socket there, no TCP at all, durability off (it is thrown away). As root it
runs as the `postgres` user the package creates (PostgreSQL refuses to run as root). Every
test gets a database of its own, copied from a template that was migrated and imported once.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

ENGINE = os.environ.get("TRACEWISE_TEST_DATABASE", "sqlite")
if ENGINE not in ("sqlite", "postgresql"):
    raise RuntimeError(f"TRACEWISE_TEST_DATABASE must be sqlite or postgresql, not {ENGINE!r}")
PG_USER = "tracewise"
PG_PORT = 5432  # only names the socket file (.s.PGSQL.5432): there is no TCP
PG_START_TIMEOUT_S = 30
_names = itertools.count(1)


class Databases(Protocol):
    """Where tests get databases from."""

    def create(self) -> str:
        """The URL of a new, empty database."""

    def copy(self, template_url: str) -> str:
        """The URL of a new database that is a copy of the one at `template_url`."""

    def drop(self, url: str) -> None:
        """Throw a database away."""


class SqliteFiles:
    """SQLite databases as files in one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def create(self) -> str:
        return f"sqlite:///{self.folder / f'db-{next(_names)}.sqlite3'}"

    def copy(self, template_url: str) -> str:
        url = self.create()
        shutil.copyfile(_sqlite_path(template_url), _sqlite_path(url))
        return url

    def drop(self, url: str) -> None:
        path = _sqlite_path(url)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def _sqlite_path(url: str) -> str:
    database = make_url(url).database
    assert database, url
    return database


class PostgresServer:
    """Databases on one PostgreSQL server, reached through its Unix socket."""

    def __init__(self, socket_dir: Path) -> None:
        self.socket_dir = socket_dir
        self.admin = create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")

    def url(self, name: str) -> str:
        """The SQLAlchemy URL of database `name`."""
        return f"postgresql+psycopg://{PG_USER}@/{name}?host={self.socket_dir}&port={PG_PORT}"

    def create(self) -> str:
        name = f"test_{os.getpid()}_{next(_names)}"
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        return self.url(name)

    def copy(self, template_url: str) -> str:
        name = f"test_{os.getpid()}_{next(_names)}"
        template = make_url(template_url).database
        with self.admin.connect() as connection:
            connection.execute(
                text(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
            )
        return self.url(name)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        """Let the admin connection go."""
        self.admin.dispose()


def postgres_bin_dir() -> Path:
    """The newest installed PostgreSQL's programs, or a clear error saying how to get them."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda path: int(path.parent.parent.name),
    )
    if not found:
        raise RuntimeError(
            "make test-postgres needs Debian's PostgreSQL: apt-get install postgresql "
            "(.ci/run does this)"
        )
    return found[-1].parent


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of our own for the length of the block."""
    bin_dir = postgres_bin_dir()
    root = Path(tempfile.mkdtemp(prefix="tracewise-pg-"))
    server: subprocess.Popen[bytes] | None = None
    databases = None
    try:
        as_root = os.geteuid() == 0
        user = "postgres" if as_root else None
        if as_root:
            shutil.chown(root, user="postgres")
        data = root / "data"
        subprocess.run(
            [bin_dir / "initdb", "-D", data, "-U", PG_USER, "--auth=trust", "-E", "UTF8", "-N"],
            check=True,
            user=user,
            stdout=subprocess.DEVNULL,
            cwd=root,
        )
        with open(root / "server.log", "w") as log:  # the server keeps its own copy
            server = subprocess.Popen(
                [
                    *(bin_dir / "postgres", "-D", data, "-k", root, "-p", str(PG_PORT)),
                    *("-c", "listen_addresses="),  # the socket only: no network
                    *("-c", "fsync=off", "-c", "synchronous_commit=off"),  # thrown away: speed
                    *("-c", "full_page_writes=off", "-c", "max_connections=400"),
                ],
                user=user,
                cwd=root,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        databases = PostgresServer(root)
        _wait_until_accepting(databases, root, server)
        yield databases
    finally:
        if databases is not None:
            databases.close()
        if server is not None:
            server.send_signal(signal.SIGINT)  # a fast shutdown: ends open sessions
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(root, ignore_errors=True)


def _wait_until_accepting(
    databases: PostgresServer, root: Path, server: subprocess.Popen[bytes]
) -> None:
    """Until the server accepts connections (it is up a moment after its socket is)."""
    deadline = time.monotonic() + PG_START_TIMEOUT_S
    while True:
        try:
            with databases.admin.connect():
                return
        except OperationalError:
            if server.poll() is not None or time.monotonic() > deadline:
                log = (root / "server.log").read_text()
                message = f"the throwaway PostgreSQL server did not start:\n{log}"
                raise RuntimeError(message) from None
            time.sleep(0.05)
