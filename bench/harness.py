"""What benchmarks share: a real server on a fresh database, a lean HTTP load generator,
percentiles, and memory (PSS) of a process tree."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """Running `python -m app serve` instances sharing one fresh database."""

    processes: list[subprocess.Popen[bytes]]
    ports: list[int]
    var_dir: Path
    database_url: str

    @property
    def process(self) -> subprocess.Popen[bytes]:
        """The first instance's process."""
        return self.processes[0]

    @property
    def port(self) -> int:
        """The first instance's port."""
        return self.ports[0]


@contextmanager
def server(
    *, instances: int = 1, database_url: str | None = None, **settings: str
) -> Iterator[Server]:
    """Migrate and import a fresh database — a SQLite file in a temp folder, or the empty
    database at `database_url` — then serve it with `instances` instances of the app, each
    on its own port and with its own var_dir (as on machines of their own behind a load
    balancer), sharing one secret key. Settings are TRACEWISE_* values."""
    with tempfile.TemporaryDirectory(prefix="tracewise-bench-") as tmp:
        url = database_url or f"sqlite:///{tmp}/tracewise.sqlite3"
        env = {
            **os.environ,
            "TRACEWISE_VAR_DIR": tmp,
            "TRACEWISE_DATABASE_URL": url,
            "TRACEWISE_SECRET_KEY": secrets.token_hex(32),
        }
        env.update({f"TRACEWISE_{key.upper()}": value for key, value in settings.items()})
        python = [sys.executable, "-m", "app"]
        subprocess.run(
            [*python, "migrate"], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL
        )
        subprocess.run(
            [*python, "import-questions", "questions"],
            env=env,
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        ports: list[int] = []
        while len(ports) < instances:  # distinct: a port freed by one probe may come again
            if (port := free_port()) not in ports:
                ports.append(port)
        # the servers' log, for when a run goes wrong: BENCH_SERVER_LOG=/tmp/server.log
        with (
            open(os.environ.get("BENCH_SERVER_LOG", os.devnull), "w") as log,
            ExitStack() as stack,
        ):
            processes = [
                stack.enter_context(
                    serving({**env, "TRACEWISE_VAR_DIR": f"{tmp}/instance-{n}"}, port, stderr=log)
                )
                for n, port in enumerate(ports)
            ]
            yield Server(processes, ports, Path(tmp), url)


@contextmanager
def serving(
    env: dict[str, str], port: int, *, stderr: IO[str] | int = subprocess.DEVNULL
) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m app serve` on `port`, configured by `env` (TRACEWISE_WORKERS may ask for
    more processes), once it accepts connections; stopped afterwards."""
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port)],
        env={**env, "PYTHONWARNINGS": "ignore"},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    try:
        wait_until_up(port, process)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=30)


@contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the PostgreSQL server at `server_url` (a URL of any
    database there the user may connect to); dropped afterwards."""
    from sqlalchemy import create_engine, make_url, text

    from app.config import Settings

    url = make_url(Settings(database_url=server_url).resolved_database_url)
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"tracewise_bench_{os.getpid()}_{next(_database_names)}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


_database_names = itertools.count(1)


def wait_until_up(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Until the server `process` accepts connections on `port` (RuntimeError if it exits
    or takes longer than `timeout`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server for port {port} exited: see BENCH_SERVER_LOG")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start")


class IdleClosed(ConnectionError):
    """The server closed a kept-alive connection without answering: it had timed out."""


class Connection:
    """One keep-alive HTTP/1.1 connection with its cookie: a client that costs little CPU,
    so the machine's two cores go to the server being measured."""

    def __init__(self, port: int, headers: dict[str, str] | None = None) -> None:
        self.port = port
        self.headers = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        self.cookie = ""
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: object | None = None
    ) -> tuple[int, bytes]:
        """Send one request; (status, body). An idle connection the server has closed (its
        keep-alive time-out) is opened again and the request sent on it, as HTTP clients do."""
        if self.writer is not None:
            try:
                return await self._send(method, path, body)
            except IdleClosed:
                self.close()
        return await self._send(method, path, body)

    async def _send(self, method: str, path: str, body: object | None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        payload = json.dumps(body).encode() if body is not None else b""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            + self.headers
            + (f"Cookie: {self.cookie}\r\n" if self.cookie else "")
            + "\r\n"
        )
        self.writer.write(head.encode() + payload)
        status_line = await self.reader.readline()
        if not status_line:
            raise IdleClosed("the server closed the connection before answering")
        status = int(status_line.split()[1])
        length, chunked = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            name, value = name.lower(), value.strip()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = value.lower() == "chunked"  # a streamed body (the CSV export)
            elif name == "set-cookie":
                self.cookie = value.split(";", 1)[0]
        if not chunked:
            return status, await self.reader.readexactly(length)
        parts = []
        while size := int((await self.reader.readline()).split(b";")[0], 16):
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)  # the chunk's CRLF
        while (await self.reader.readline()) not in (b"\r\n", b""):  # trailers
            pass
        return status, b"".join(parts)

    def close(self) -> None:
        """Close the connection (the next request opens a new one)."""
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class LoadResult:
    """Latencies (ms) of successful requests, errors, and the wall time they took."""

    latencies_ms: list[float]
    errors: int
    seconds: float

    @property
    def throughput(self) -> float:
        """Successful requests per second."""
        return len(self.latencies_ms) / self.seconds

    def percentile(self, p: float) -> float:
        """The p-th percentile latency in ms."""
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, round(p / 100 * (len(data) - 1)))]

    def line(self, label: str) -> str:
        """One line of the report."""
        return (
            f"{label:<28} p50 {self.percentile(50):7.1f} ms  p95 {self.percentile(95):7.1f} ms"
            f"  p99 {self.percentile(99):7.1f} ms  {self.throughput:7.1f} req/s"
            f"  errors {self.errors}"
        )


async def _load(
    port: int,
    clients: int,
    requests_each: int,
    make_request: object,
    warmup: int,
    headers: dict[str, str] | None,
) -> LoadResult:
    connections = [Connection(port, headers) for _ in range(clients)]
    latencies: list[float] = []
    errors = 0

    async def client(index: int, connection: Connection) -> None:
        nonlocal errors
        for n in range(warmup + requests_each):
            method, path, body = make_request(index, n)  # type: ignore[operator]
            started = time.perf_counter()
            status, _ = await connection.request(method, path, body)
            elapsed = (time.perf_counter() - started) * 1000
            if n < warmup:
                continue
            if 200 <= status < 300:
                latencies.append(elapsed)
            else:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(i, c) for i, c in enumerate(connections)))
    seconds = time.perf_counter() - started
    for connection in connections:
        connection.close()
    return LoadResult(latencies, errors, seconds)


def load(
    port: int,
    *,
    clients: int,
    requests_each: int,
    make_request: object,
    warmup: int = 2,
    timeout_s: float | None = None,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    """`clients` concurrent keep-alive clients, each sending `requests_each` requests (after
    `warmup` unmeasured ones); make_request(client, n) -> (method, path, json body). With
    `timeout_s`, a run that takes longer raises TimeoutError instead of hanging; `headers`
    go with every request (e.g. an API token)."""
    run = _load(port, clients, requests_each, make_request, warmup, headers)
    return asyncio.run(asyncio.wait_for(run, timeout_s) if timeout_s else run)


def get(path: str):  # type: ignore[no-untyped-def]
    """A request maker for `load`: every request is the same GET."""
    return lambda client, n: ("GET", path, None)


ROUNDS = 3  # the machine is shared and noisy: each figure is the median round's


def rounds(
    port: int,
    clients: int,
    each: int,
    make_request: object,
    *,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    """The median of ROUNDS rounds of `load`."""
    return median_round(
        [
            load(
                port,
                clients=clients,
                requests_each=each,
                make_request=make_request,
                headers=headers,
            )
            for _ in range(ROUNDS)
        ]
    )


Check = tuple[str, float, str, float, str]  # name, measured, "<=" | ">=" | "==", target, unit


def check_targets(checks: list[Check]) -> int:
    """Print each target as met or missed; the exit status: 1 if any was missed."""
    failed = 0
    for name, value, op, target, unit in checks:
        ok = {"<=": value <= target, ">=": value >= target, "==": value == target}[op]
        failed += not ok
        print(f"  {'ok  ' if ok else 'MISS'} {name}: {value:.1f} {unit} (target {op} {target})")
    return 1 if failed else 0


def descendants(pid: int) -> list[int]:
    """pid and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, []))
    return found


def pss_mb(pid: int) -> float:
    """Proportional set size of a process tree in MiB: shared pages counted once in total."""
    total_kb = 0
    for process in descendants(pid):
        try:
            for line in Path(f"/proc/{process}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


def median(values: list[float]) -> float:
    """The median."""
    return statistics.median(values)


def median_round(rounds: list[LoadResult]) -> LoadResult:
    """The round with the median throughput (its percentiles come with it)."""
    return sorted(rounds, key=lambda result: result.throughput)[len(rounds) // 2]
