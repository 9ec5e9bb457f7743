"""An acknowledged attempt is never lost: the server is killed with kill -9 while learners
answer, started again, and every attempt it answered 201 for is there; the database is whole.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy import make_url

from app.config import Settings
from bench.harness import _wait_until_up, free_port
from tests.conftest import ROOT, TEST_SECRET

LEARNERS = 8
ACKNOWLEDGED_BEFORE_KILL = 150


@contextmanager
def serving(env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`python -m app serve` on a free port; the process and its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until_up(port)
        yield process, f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=30)


@pytest.mark.sqlite_only  # PostgreSQL's durability is PostgreSQL's
def test_every_acknowledged_attempt_survives_kill_9_of_the_server(
    tmp_path: Path, settings: Settings
) -> None:
    assert settings.database_url is not None
    database = make_url(settings.database_url).database
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

    with serving(env) as (server, base):
        threads = [threading.Thread(target=learner, args=(n, base)) for n in range(LEARNERS)]
        for thread in threads:
            thread.start()
        assert enough.wait(60), "the learners got too few answers"
        server.send_signal(signal.SIGKILL)  # mid-load: requests are in flight
        server.wait()
        stop.set()
        for thread in threads:
            thread.join()

    with serving(env) as (_, base):  # started again on the same database
        assert httpx.get(f"{base}/healthz").status_code == 200
        with sqlite3.connect(database) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            stored = {row[0] for row in connection.execute("SELECT id FROM attempts")}
    assert len(acknowledged) >= ACKNOWLEDGED_BEFORE_KILL
    assert set(acknowledged) <= stored
