"""The app served for tests — by uvicorn in a thread, or as `python -m app serve` in a process
of its own — and real-browser testing: Debian's chromium driven by Playwright. Screenshots
go to test-artifacts/."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from bench.harness import free_port, serving

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # the network is closed; don't try
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """Debian's chromium, or a clear error saying how to get it."""
    path = shutil.which("chromium")
    if path is None:
        raise RuntimeError(
            "browser tests need Debian's chromium: apt-get install chromium (.ci/run does this)"
        )
    return path


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Serve `app` on a free port in a background thread; yields its base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def served(env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`python -m app serve` on a free port, configured by `env`; the process and its URL."""
    port = free_port()
    with serving(env, port) as process:
        yield process, f"http://127.0.0.1:{port}"
