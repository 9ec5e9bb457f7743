"""An acknowledged attempt is never lost: the server is killed with kill -9 while learners
answer, started again, and every attempt it answered 201 for is there; a SQLite file is whole.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy import make_url, select

from app.config import Settings
from app.db import Database
from app.models import Attempt
from tests.browser import served
from tests.conftest import TEST_SECRET

pytestmark = pytest.mark.slow  # a server killed and started again

LEARNERS = 8
ACKNOWLEDGED_BEFORE_KILL = 150


def test_every_acknowledged_attempt_survives_kill_9_of_the_server(
    tmp_path: Path, settings: Settings
) -> None:
    assert settings.database_url is not None
    env = {
        **os.environ,
        "TRACEWISE_VAR_DIR": str(tmp_path / "var"),
        "TRACEWISE_DATABASE_URL": settings.database_url,
        "TRACEWISE_SECRET_KEY": TEST_SECRET,
        "TRACEWISE_SANDBOX_MODE": "off",  # choice answers: the database is what is tested
        "PYTHONWARNINGS": "ignore",
    }
    acknowledged: list[int] = []
    enough = threading.Event()
    stop = threading.Event()

    def learner(n: int, base: str) -> None:
        with httpx.Client(base_url=base, timeout=10) as client:
            while not stop.is_set():
                try:
                    response = client.post(
                        "/api/questions/lr-purpose/attempts", json={"answer": n % 4}
                    )
                except httpx.TransportError:
                    return  # the server is gone
                if response.status_code == 201:
                    acknowledged.append(response.json()["attempt_id"])
                    if len(acknowledged) >= ACKNOWLEDGED_BEFORE_KILL:
                        enough.set()

    with served(env) as (server, base):
        threads = [threading.Thread(target=learner, args=(n, base)) for n in range(LEARNERS)]
        for thread in threads:
            thread.start()
        assert enough.wait(60), "the learners got too few answers"
        server.send_signal(signal.SIGKILL)  # mid-load: requests are in flight
        server.wait()
        stop.set()
        for thread in threads:
            thread.join()

    with served(env) as (_, base):  # started again on the same database
        assert httpx.get(f"{base}/healthz").status_code == 200
        database = Database(settings.database_url)
        with database.session() as session:
            stored = set(session.scalars(select(Attempt.id)))
        database.dispose()
    assert len(acknowledged) >= ACKNOWLEDGED_BEFORE_KILL
    assert set(acknowledged) <= stored
    if (url := make_url(settings.database_url)).get_backend_name() == "sqlite":
        with sqlite3.connect(url.database or "") as connection:  # PostgreSQL's is its own
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
