"""The web side of the sandbox: start the runner, send it jobs, wait for their results."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from app.errors import Busy
from app.sandbox.protocol import Job, RunResult, encode, read_frame
from app.sandbox.runner import RunnerConfig

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 60.0  # importing and warming torch takes ~3 s here; slow disks take longer
ANSWER_GRACE_S = 5.0  # beyond a job's own timeout, before the runner counts as wedged
MAX_CODE_BYTES = 64 * 1024
# The runner's whole environment: nothing of ours (no secret key, no database URL) reaches it.
RUNNER_ENV = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    # malloc's arenas on huge pages: cheaper fork and exit per job (see lockdown.py)
    "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1",
}


class SandboxUnavailable(Busy):
    """The runner cannot run code on this machine, or could not start."""

    @classmethod
    def switched_off(cls) -> SandboxUnavailable:
        """The error for a server that runs no code (sandbox_mode = off)."""
        return cls("Running code is switched off on this server.", retry_after=60)


def read_only_paths() -> list[str]:
    """What a child may read: the interpreter, its packages and the system libraries."""
    paths = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        "/usr/lib",
        "/usr/lib64",
        "/lib",
        "/lib64",
        "/etc/ld.so.cache",
    }
    for name in ("stdlib", "platstdlib", "purelib", "platlib"):
        paths.add(sysconfig.get_paths()[name])
    return sorted(path for path in paths if Path(path).exists())


class Sandbox:
    """A runner process and the jobs in flight to it. Thread-safe; restarts a dead runner."""

    def __init__(self, config: RunnerConfig, *, queue_limit: int) -> None:
        self.config = config
        self.queue_limit = queue_limit
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, Future[RunResult]] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._ready = threading.Event()
        self._hello: dict[str, Any] = {}
        self._fatal: str | None = None
        self._closed = False
        self._scratch_roots: list[str] = []  # removed once their runner has exited
        self.restarts = 0

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the runner (returns at once; jobs wait until it is warm)."""
        with self._lock:
            self._start_locked()

    def _start_locked(self) -> None:
        self._ready.clear()
        self._fatal = None
        scratch = tempfile.mkdtemp(prefix="tracewise-sandbox-")
        os.chmod(scratch, 0o711)  # children reach their own slot below it, nothing else
        self._scratch_roots.append(scratch)
        config = replace(self.config, scratch_root=scratch)
        process = subprocess.Popen(
            [sys.executable, "-m", "app.sandbox.runner", json.dumps(asdict(config))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=RUNNER_ENV,
            cwd="/",
            close_fds=True,
            start_new_session=True,
        )
        self._process = process
        threading.Thread(
            target=self._read_results, args=(process,), daemon=True, name="sandbox-results"
        ).start()

    def close(self) -> None:
        """Stop the runner and fail whatever was still waiting."""
        with self._lock:
            self._closed = True
            process = self._process
            self._process = None
        if process is not None:
            self._stop(process)
        self._fail_pending("The code runner was shut down.")
        for scratch in self._scratch_roots:
            shutil.rmtree(scratch, ignore_errors=True)

    def _stop(self, process: subprocess.Popen[bytes]) -> None:
        if process.stdin:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT_S) -> dict[str, Any]:
        """Block until the runner is warm; its hello (torch version, mode, …)."""
        if not self._ready.wait(timeout):
            raise SandboxUnavailable("The code runner did not start in time.", retry_after=5)
        if self._fatal:
            raise SandboxUnavailable(
                f"The code runner cannot run code here: {self._fatal}", retry_after=60
            )
        return self._hello

    @property
    def torch_version(self) -> str:
        """The torch version the runner imported."""
        return str(self.wait_ready()["torch"])

    @property
    def scheduler_catalog(self) -> dict[str, Any]:
        """The playground's schedulers with their real parameters, as the runner's torch has
        them (the web process never imports torch)."""
        catalog: dict[str, Any] = self.wait_ready()["schedulers"]
        return catalog

    @property
    def runner_pid(self) -> int | None:
        """The runner's process id, for monitoring."""
        return self._process.pid if self._process else None

    # --- jobs -------------------------------------------------------------------------------

    def submit(self, job: Job) -> Future[RunResult]:
        """Queue a job; Busy when the queue is full."""
        if len(job.code.encode()) > MAX_CODE_BYTES:
            raise ValueError(f"code is longer than {MAX_CODE_BYTES} bytes")
        self.wait_ready()
        future: Future[RunResult] = Future()
        with self._lock:
            if self._closed or self._process is None or self._process.stdin is None:
                raise SandboxUnavailable("The code runner is not running.", retry_after=5)
            if len(self._pending) >= self.queue_limit:
                raise Busy("The code runner is busy. Try again in a moment.", retry_after=1)
            job_id = next(self._ids)
            self._pending[job_id] = future
            try:
                self._process.stdin.write(encode({"id": job_id, "job": asdict(job)}))
                self._process.stdin.flush()
            except (BrokenPipeError, ValueError):
                del self._pending[job_id]
                raise SandboxUnavailable(
                    "The code runner restarted. Try again.", retry_after=1
                ) from None
        return future

    def run(self, job: Job) -> RunResult:
        """Run a job and wait for its result."""
        future = self.submit(job)
        try:
            return future.result(timeout=job.timeout_s + ANSWER_GRACE_S + self._queue_wait())
        except FutureTimeout:
            log.error("sandbox runner did not answer in time; restarting it")
            self._restart(wedged=True)
            raise SandboxUnavailable(
                "The code runner stopped answering and was restarted. Try again.", retry_after=1
            ) from None

    def _queue_wait(self) -> float:
        # A queued job waits for the ones before it; each slot works through its share.
        return len(self._pending) / max(self.config.slots, 1) * self.config.max_timeout_s

    # --- the reader thread -------------------------------------------------------------------

    def _read_results(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        fd = process.stdout.fileno()
        try:
            while True:
                message = read_frame(fd)
                if message is None:
                    break
                if "hello" in message:
                    self._hello = message["hello"]
                    self._ready.set()
                elif "fatal" in message:
                    self._fatal = str(message["fatal"])
                    self._ready.set()
                else:
                    with self._lock:
                        future = self._pending.pop(int(message["id"]), None)
                    if future is not None:
                        future.set_result(RunResult.from_json(message["result"]))
        except (OSError, ValueError) as exc:
            log.error("sandbox result stream broke: %s", exc)
        finally:
            process.stdout.close()
        self._on_runner_exit(process)

    def _on_runner_exit(self, process: subprocess.Popen[bytes]) -> None:
        with self._lock:
            current = process is self._process
        if self._fatal or not current or self._closed:
            self._ready.set()
            return
        log.error("sandbox runner exited (code %s); restarting it", process.poll())
        self._restart(wedged=False)

    def _restart(self, *, wedged: bool) -> None:
        with self._lock:
            old, stranded = self._process, self._pending
            if self._closed:
                return
            self._pending = {}
            self.restarts += 1
            self._start_locked()
        message = (
            "The code runner stopped answering and was restarted. Try again."
            if wedged
            else "The code runner restarted while your code was waiting. Try again."
        )
        for future in stranded.values():
            future.set_exception(SandboxUnavailable(message, retry_after=1))
        if old is not None:
            if old.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(old.pid, signal.SIGKILL)
                old.wait()
            if old.stdin is not None:
                with contextlib.suppress(OSError):
                    old.stdin.close()

    def _fail_pending(self, message: str) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for future in pending.values():
            future.set_exception(SandboxUnavailable(message, retry_after=1))


def from_settings(settings: Any) -> Sandbox:
    """A (not yet started) sandbox configured by the app's settings."""
    config = RunnerConfig(
        slots=settings.sandbox_slots,
        mode=settings.sandbox_mode,
        uid_base=settings.sandbox_uid_base,
        max_timeout_s=settings.sandbox_timeout_s,
        memory_bytes=settings.sandbox_memory_mb * 1024 * 1024,
        read_only_paths=read_only_paths(),
    )
    return Sandbox(config, queue_limit=settings.sandbox_queue)
