"""A class at once: every request is served or refused in time, none hangs.

The gate's rules on their own (a FIFO line with a deadline and a length), then a real server
flooded: every request gets a page or a 503 with Retry-After; a request waiting for its code
lends its place; a request for a foreign host name is refused.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.admission import Gate
from app.config import Settings
from app.db import begin_write
from app.main import create_app
from app.sandbox.client import Sandbox
from tests.browser import live_server

FLOOD = 24
HANG_S = 20  # far beyond any deadline here: a request slower than this has hung


# --- the gate ---------------------------------------------------------------------------------


def test_the_gate_lets_in_up_to_its_limit_then_serves_the_line_in_order() -> None:
    async def scenario() -> list[int]:
        gate = Gate(limit=1, max_waiting=10)
        order: list[int] = []

        async def visitor(n: int) -> None:
            assert await gate.enter(time.monotonic() + 5)
            order.append(n)
            await asyncio.sleep(0.01)
            gate.leave()

        tasks = []
        for n in range(5):
            tasks.append(asyncio.create_task(visitor(n)))
            await asyncio.sleep(0)  # arrive in this order
        await asyncio.gather(*tasks)
        assert gate.active == 0 and gate.waiting == 0
        return order

    assert asyncio.run(scenario()) == [0, 1, 2, 3, 4]


def test_the_gate_refuses_at_the_deadline_and_when_the_line_is_full() -> None:
    async def scenario() -> None:
        gate = Gate(limit=1, max_waiting=1)
        assert await gate.enter(time.monotonic() + 1)
        waiting = asyncio.create_task(gate.enter(time.monotonic() + 0.05))
        await asyncio.sleep(0)
        assert await gate.enter(time.monotonic() + 1) is False  # the line is full
        assert await waiting is False  # its deadline passed
        assert gate.waiting == 0
        gate.leave()
        assert gate.active == 0

    asyncio.run(scenario())


def test_requests_coming_back_go_first_in_the_order_they_came_back() -> None:
    async def scenario() -> list[str]:
        gate = Gate(limit=1, max_waiting=5)
        order: list[str] = []
        assert await gate.enter(time.monotonic() + 1)

        async def visitor(name: str, back: bool) -> None:
            assert await gate.enter(time.monotonic() + 5, back=back)
            order.append(name)
            gate.leave()

        tasks = []
        for name, back in (("newcomer", False), ("back 1", True), ("back 2", True)):
            tasks.append(asyncio.create_task(visitor(name, back)))
            await asyncio.sleep(0)
        gate.leave()
        await asyncio.gather(*tasks)
        return order

    assert asyncio.run(scenario()) == ["back 1", "back 2", "newcomer"]


def test_a_request_cancelled_while_waiting_leaves_the_line() -> None:
    async def scenario() -> None:
        gate = Gate(limit=1, max_waiting=5)
        assert await gate.enter(time.monotonic() + 1)
        waiting = asyncio.create_task(gate.enter(time.monotonic() + 5))
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert gate.waiting == 0
        gate.leave()
        assert gate.active == 0

    asyncio.run(scenario())


# --- a real server, flooded ---------------------------------------------------------------------


@pytest.fixture
def small_app(settings: Settings, sandbox: Sandbox) -> FastAPI:
    """The app with two places, a short line and a one-second deadline, and a slow page."""
    small = settings.model_copy(
        update={"max_requests": 2, "max_waiting_requests": 4, "request_timeout_s": 1.0}
    )
    app = create_app(small, sandbox=sandbox)

    def slow() -> dict[str, str]:
        time.sleep(0.3)  # work that holds its place
        return {"status": "done"}

    app.add_api_route("/test-only/slow", slow)
    return app


@pytest.fixture
def base_url(small_app: FastAPI) -> Iterator[str]:
    with live_server(small_app) as base:
        yield base


@pytest.mark.slow
def test_a_flood_is_served_or_refused_in_time_never_left_hanging(base_url: str) -> None:
    def get(_: int) -> tuple[int, str | None, float]:
        started = time.monotonic()
        response = httpx.get(f"{base_url}/test-only/slow", timeout=HANG_S)
        return response.status_code, response.headers.get("retry-after"), started

    with ThreadPoolExecutor(max_workers=FLOOD) as pool:
        answers = list(pool.map(get, range(FLOOD)))
    statuses = [status for status, _, _ in answers]
    assert set(statuses) == {200, 503}
    assert statuses.count(200) >= 2  # the places were used
    for status, retry_after, _ in answers:
        if status == 503:
            assert retry_after is not None and int(retry_after) >= 1
    # Once the flood is over, the server answers as before.
    assert httpx.get(f"{base_url}/healthz", timeout=HANG_S).status_code == 200


@pytest.mark.slow
def test_a_refusal_says_why_as_json_or_as_a_page(base_url: str) -> None:
    json_please = {"Accept": "application/json"}

    def get(_: int) -> httpx.Response:
        return httpx.get(f"{base_url}/test-only/slow", headers=json_please, timeout=HANG_S)

    with ThreadPoolExecutor(max_workers=FLOOD) as pool:
        refused = next(r for r in pool.map(get, range(FLOOD)) if r.status_code == 503)
    assert "Try again" in refused.json()["detail"]
    with ThreadPoolExecutor(max_workers=FLOOD) as pool:
        futures = [pool.submit(get, n) for n in range(FLOOD)]
        time.sleep(0.1)  # the places are taken and the line is full
        page = httpx.get(f"{base_url}/", headers={"Accept": "text/html"}, timeout=HANG_S)
        for future in futures:
            future.result()
    assert page.status_code == 503
    assert "<h1>Busy</h1>" in page.text and int(page.headers["retry-after"]) >= 1


@pytest.mark.slow
def test_a_request_waiting_for_its_code_lends_its_place(
    settings: Settings, sandbox: Sandbox
) -> None:
    """One place only: while a learner's code runs for 2 s, another request is served."""
    app = create_app(settings.model_copy(update={"max_requests": 1}), sandbox=sandbox)
    slow_code = "import time\ntime.sleep(2)\nscheduler = None"
    done: dict[str, float] = {}
    with live_server(app) as base:

        def answer() -> None:
            response = httpx.post(
                f"{base}/api/questions/lr-code-steplr/attempts",
                json={"answer": slow_code},
                timeout=HANG_S,
            )
            assert response.status_code == 201
            done["slow code"] = time.monotonic()

        learner = threading.Thread(target=answer)
        learner.start()
        time.sleep(0.5)  # its run has started
        assert httpx.get(f"{base}/api/patterns", timeout=HANG_S).status_code == 200
        done["another request"] = time.monotonic()
        learner.join()
    # Served while the run went on (a second before it ended), not after it.
    assert done["another request"] < done["slow code"] - 1


@pytest.mark.slow
def test_a_body_that_comes_too_slowly_is_refused_and_holds_no_place(
    settings: Settings,
) -> None:
    quick = settings.model_copy(
        update={"max_requests": 1, "request_timeout_s": 0.5, "sandbox_mode": "off"}
    )
    with live_server(create_app(quick)) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=HANG_S) as slow:
            slow.sendall(
                b"POST /api/questions/lr-purpose/attempts HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: 20\r\n\r\n{"
            )  # ...and the rest never comes
            reply = slow.recv(65536).decode()
        assert reply.startswith("HTTP/1.1 408")
        # The one place is free again.
        assert httpx.get(f"{base}/api/patterns", timeout=HANG_S).status_code == 200


def test_the_deadline_bounds_the_wait_for_the_write_lock(settings: Settings) -> None:
    quick = settings.model_copy(update={"request_timeout_s": 0.5, "sandbox_mode": "off"})
    app = create_app(quick)
    with TestClient(app) as client, app.state.db.session() as holder:
        begin_write(holder)  # another writer holds the write lock
        try:
            response = client.post("/api/questions/lr-purpose/attempts", json={"answer": 1})
        finally:
            holder.rollback()
        assert response.status_code == 503
        assert response.headers["retry-after"]
        after = client.post("/api/questions/lr-purpose/attempts", json={"answer": 1})
        assert after.status_code == 201


# --- host names ----------------------------------------------------------------------------------


def test_a_foreign_host_name_is_refused_the_dns_rebinding_shape(client: TestClient) -> None:
    evil = {"Host": "evil.example", "Origin": "http://evil.example"}
    response = client.post("/api/questions/lr-purpose/attempts", json={"answer": 1}, headers=evil)
    assert response.status_code == 400
    assert "evil.example" in response.json()["detail"]
    assert "TRACEWISE_ALLOWED_HOSTS" in response.json()["detail"]
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 400


@pytest.mark.parametrize(
    ("allowed", "host", "ok"),
    [
        (["localhost"], "localhost:8000", True),
        (["localhost"], "LOCALHOST", True),
        (["127.0.0.1"], "127.0.0.2", False),
        (["[::1]"], "[::1]:8000", True),
        (["*.example.edu"], "tracewise.example.edu", True),
        (["*.example.edu"], "example.edu.evil.example", False),
        (["*"], "anything.example", True),
    ],
)
def test_allowed_host_names(settings: Settings, allowed: list[str], host: str, ok: bool) -> None:
    app = create_app(settings.model_copy(update={"allowed_hosts": allowed, "sandbox_mode": "off"}))
    with TestClient(app) as client:
        status = client.get("/api/patterns", headers={"Host": host}).status_code
    assert (status == 200) is ok


def test_allowed_hosts_come_from_the_environment_comma_separated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRACEWISE_ALLOWED_HOSTS", "tracewise.example.edu, localhost")
    assert Settings().allowed_hosts == ["tracewise.example.edu", "localhost"]
