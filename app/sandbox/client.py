"""The web side of the sandbox: a warm zygote, the runner forked from it, a fair queue.

    web process ──control socket──▶ zygote: torch imported and warmed, waits
        │                              │ fork (milliseconds)
        └──job and result pipes──────▶ runner ──fork──▶ one locked-down child per job

Runs wait here, not in the runner, in a fair queue (app.sandbox.scheduler): the runner is
given at most one job per slot, so the next job is picked when a slot frees, by the rules of
fairness, and jobs not yet started survive a runner that dies.

Recovery. A runner that exits is noticed at once (its result pipe closes); one that stops
answering its pings for STUCK_AFTER_S is killed. Either way the zygote forks a replacement
in milliseconds; the runs it had started fail with "try again" (503), the queued ones go to
the replacement. A zygote that dies is started again in the background (seconds) while the
runner goes on working. In strict mode the slots' uids are claimed for the host
(app.sandbox.uids) for as long as this object lives, and whatever still runs as one of them
when a runner is replaced is killed.

Every wait is bounded: for a slot, by the request's deadline (app.deadline); for a started
run, by its time limit plus ANSWER_GRACE_S.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import logging
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Generic

from pydantic import ValidationError

from app import deadline
from app.errors import Busy, TooManyRequests
from app.sandbox import uids
from app.sandbox.protocol import (
    CATALOG_ADAPTER,
    Catalog,
    DataT,
    JobBase,
    RunResult,
    Verdict,
    encode,
    read_frame,
)
from app.sandbox.runner import RunnerConfig
from app.sandbox.scheduler import SYSTEM, FairQueue, Owner

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 60.0  # importing and warming torch takes ~3 s here; slow disks take longer
ANSWER_GRACE_S = 5.0  # beyond a started job's own timeout, before the runner counts as wedged
PING_INTERVAL_S = 0.2
STUCK_AFTER_S = 1.5  # a ping unanswered this long: the runner is stuck (its loop answers in ms)
SPAWN_TIMEOUT_S = 5.0  # the zygote forks a runner in milliseconds
READY_TIMEOUT_S = 30.0  # a runner locks itself away and forks its children in a second or so
NO_DEADLINE_WAIT_S = 600.0  # outside a request (an import), how long a run may wait for a slot
RESPAWN_BACKOFF_S = (0.0, 0.2, 0.5, 1.0, 2.0)  # after runners that die one after another
SWEEP_INTERVAL_S = 10.0
DEFAULT_BUDGET_S = 30.0  # running time per learner per minute; a run's limit is 5 s
JOB_PIPE_BYTES = 1024 * 1024  # a slot's job frame is at most ~70 KiB; room for all of them
MAX_CODE_BYTES = 64 * 1024
MAX_CONTROL_MESSAGE = 1024 * 1024
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


class Ticket(Generic[DataT]):
    """One run on its way: queued, then started (given to the runner), then done."""

    def __init__(self, sandbox: Sandbox, job: JobBase[DataT], owner: Owner) -> None:
        self.sandbox = sandbox
        self.job = job
        self.owner = owner
        self.future: Future[RunResult[DataT]] = Future()
        self.left_queue = threading.Event()  # started, or failed before it could start
        self.submitted_at = time.monotonic()
        self.started_at = 0.0
        # Where its time went on this side, in ms: `queued` (waiting for a slot), `trip`
        # (given to the runner until its result arrived), `parse` (validating the result).
        self.timings: dict[str, float] = {}

    def result(self, wait_s: float | None = None) -> RunResult[DataT]:
        """The run's result. Waits for a slot at most `wait_s` (default: what is left of the
        request's deadline; Busy after that), then at most the run's own time limit."""
        if wait_s is None:
            wait_s = deadline.remaining(NO_DEADLINE_WAIT_S)
        try:
            with deadline.long_wait():
                if not self.left_queue.wait(wait_s) and self.sandbox.withdraw(self):
                    raise Busy(
                        "The code runner is busy: no slot came free in time. "
                        "Try again in a moment.",
                        retry_after=2,
                    )
                return self.future.result(timeout=self.job.timeout_s + ANSWER_GRACE_S)
        except FutureTimeout:
            self.sandbox.replace_runner(self.sandbox.runner_pid, "a run got no answer in time")
            raise SandboxUnavailable(
                "The code runner stopped answering and was replaced. Try again.", retry_after=1
            ) from None


class _Runner:
    """A runner process as the web side sees it: its pipes and threads, its state. It is
    the zygote's child, not ours: it is signalled and watched through a pidfd, which names
    this process and no other even once its pid is reused."""

    def __init__(self, pid: int, pidfd: int, jobs_fd: int, results_fd: int, scratch: str) -> None:
        self.pid = pid
        self.pidfd = pidfd
        self.jobs_fd = jobs_fd
        self.results_fd = results_fd
        self.scratch = scratch
        self.spawned_at = time.monotonic()
        self.ready = False
        self.reader: threading.Thread | None = None
        self._pidfd_lock = threading.Lock()  # the pidfd is closed once, never used after
        self.pings = itertools.count(1)
        self.unanswered_since: float | None = None  # when the oldest unanswered ping left
        self.outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

    def send(self, frame: bytes) -> None:
        """Queue a frame for the writer thread (never blocks: a stuck runner must not hold
        up whoever holds the sandbox's lock)."""
        self.outbox.put(frame)

    def write_frames(self) -> None:
        """The writer thread: frames to the runner until it is gone or told to stop."""
        try:
            while (frame := self.outbox.get()) is not None:
                data = memoryview(frame)
                while data:
                    data = data[os.write(self.jobs_fd, data) :]
        except OSError:
            pass  # the runner is gone; the reader thread notices
        finally:
            os.close(self.jobs_fd)

    def kill(self) -> None:
        """SIGKILL the runner (its children die with it: PR_SET_PDEATHSIG)."""
        with self._pidfd_lock:
            if self.pidfd != -1:
                with contextlib.suppress(ProcessLookupError, OSError):
                    signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)

    def forget(self) -> None:
        """Close the pidfd (the runner is gone)."""
        with self._pidfd_lock:
            if self.pidfd != -1:
                os.close(self.pidfd)
                self.pidfd = -1


class Sandbox:
    """The zygote, its runner and the runs waiting for them. Thread-safe."""

    def __init__(
        self,
        config: RunnerConfig,
        *,
        queue_limit: int,
        budget_s: float = DEFAULT_BUDGET_S,
        lock_dir: Path = uids.DEFAULT_LOCK_DIR,
    ) -> None:
        self.config = config
        self.lock_dir = lock_dir
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: FairQueue[Ticket[Any]] = FairQueue(queue_limit=queue_limit, budget_s=budget_s)
        self._running: dict[int, Ticket[Any]] = {}  # given to the runner, by job id
        self._ids = itertools.count(1)
        self._zygote: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._runner: _Runner | None = None
        self._ready = threading.Event()  # a runner was ready once (or the sandbox is fatal)
        self._hello: dict[str, Any] = {}
        self._catalog: Catalog = {}  # the playground's schedulers, from the zygote's hello
        self._fatal: str | None = None
        self._closed = False
        self._started = False
        self._uids: uids.UidRange | None = None
        self._failures = 0  # runners that died one after another, for the back-off
        self.restarts = 0  # runners replaced

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Claim the slots' uids (strict mode; UidsTaken if the configured ones are not
        free) and start the zygote and runner in the background: returns at once, and runs
        queue until the runner is warm. The server starts it to be warm for its first
        learner; a command leaves it to the first run (an unchanged import runs nothing)."""
        with self._lock:
            if self._started:
                return
            if self.config.mode == "strict":
                self._uids = uids.claim(
                    self.config.slots, base=self.config.uid_base, lock_dir=self.lock_dir
                )
                self.config = replace(self.config, uid_base=self._uids.base)
            self._started = True
        threading.Thread(target=self._supervise, daemon=True, name="sandbox-supervisor").start()

    def close(self) -> None:
        """Stop the runner and the zygote; fail whatever was still waiting."""
        with self._lock:
            self._closed = True
            runner, self._runner = self._runner, None
            zygote, control = self._zygote, self._control
            self._wake.notify_all()
        self._fail_all("The code runner was shut down.")
        if runner is not None:
            runner.outbox.put(None)  # closing the job pipe ends the runner and its children
            if runner.reader is not None:
                runner.reader.join(timeout=2.0)
            runner.kill()  # if it did not end by itself
            if runner.reader is not None:
                runner.reader.join(timeout=2.0)
        if control is not None:
            control.close()  # the zygote exits when its socket closes
        if zygote is not None:
            _stop(zygote, grace_s=2.0 if control is not None else 0.0)
        if self._uids is not None:
            uids.kill_leftovers(self._uids.uids)
            self._uids.release()

    def wait_ready(self, timeout: float | None = None) -> dict[str, Any]:
        """Block until a runner is warm (at most `timeout`, default: what is left of the
        request's deadline); what it said of itself (torch version, mode, …)."""
        if timeout is None:
            timeout = deadline.remaining(STARTUP_TIMEOUT_S)
        if not self._ready.wait(timeout):
            raise SandboxUnavailable("The code runner is still starting.", retry_after=2)
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
    def scheduler_catalog(self) -> Catalog:
        """The playground's schedulers with their real parameters, as the runner's torch has
        them (the web process never imports torch); validated when the zygote said hello."""
        self.wait_ready()
        return self._catalog

    @property
    def capacity(self) -> int:
        """How many runs the sandbox holds at once: one per slot, and its queue's places."""
        return self.config.slots + self._queue.queue_limit

    @property
    def runner_pid(self) -> int | None:
        """The current runner's process id, for monitoring."""
        runner = self._runner
        return runner.pid if runner else None

    @property
    def zygote_pid(self) -> int | None:
        """The zygote's process id, for monitoring."""
        zygote = self._zygote
        return zygote.pid if zygote else None

    @property
    def uid_range(self) -> range | None:
        """The uids the slots run as (strict mode), claimed for this host."""
        return self._uids.uids if self._uids else None

    # --- runs -----------------------------------------------------------------------------

    def submit(self, job: JobBase[DataT], owner: Owner = SYSTEM) -> Ticket[DataT]:
        """Queue a run for `owner`: TooManyRequests if it is not their turn or they used
        their share; Busy if too many learners wait or the sandbox cannot run code."""
        if len(getattr(job, "code", "").encode()) > MAX_CODE_BYTES:
            raise ValueError(f"code is longer than {MAX_CODE_BYTES} bytes")
        if not self._started:
            self.start()  # a command starts it when it first has something to run
        with self._lock:
            if self._closed:
                raise SandboxUnavailable("The code runner is not running.", retry_after=5)
            if self._fatal:
                raise SandboxUnavailable(
                    f"The code runner cannot run code here: {self._fatal}", retry_after=60
                )
            ticket = Ticket(self, job, owner)
            evicted = self._queue.push(owner, ticket)
            self._dispatch()
        if evicted is not None:
            evicted.left_queue.set()
            evicted.future.set_exception(
                TooManyRequests(
                    "The code runner is full, and you have used it more than others waiting: "
                    "try again in a moment.",
                    retry_after=5,
                )
            )
        return ticket

    def run(self, job: JobBase[DataT], owner: Owner = SYSTEM) -> RunResult[DataT]:
        """Run a job and wait for its result (see Ticket.result for how long)."""
        return self.submit(job, owner).result()

    def withdraw(self, ticket: Ticket[Any]) -> bool:
        """Take a run that has not started out of the queue; False if it has started."""
        with self._lock:
            withdrawn = self._queue.withdraw(ticket.owner, ticket)
        if withdrawn:
            ticket.future.cancel()
        return withdrawn

    def replace_runner(self, pid: int | None, reason: str) -> None:
        """Kill the runner `pid` (if it is still the current one) so that it is replaced."""
        with self._lock:
            runner = self._runner
        if runner is not None and runner.pid == pid:
            log.error("sandbox runner %s is replaced: %s", pid, reason)
            runner.kill()

    def _dispatch(self) -> None:
        """Give waiting runs to the runner while it has free slots (holding the lock)."""
        runner = self._runner
        if runner is None or not runner.ready:
            return
        slots = self.config.slots
        while len(self._running) < slots:
            last_slot = slots >= 2 and len(self._running) == slots - 1
            popped = self._queue.pop(last_slot=last_slot)
            if popped is None:
                return
            _, ticket = popped
            job_id = next(self._ids)
            ticket.started_at = time.monotonic()
            self._running[job_id] = ticket
            runner.send(encode({"id": job_id, "job": ticket.job.model_dump()}))
            ticket.left_queue.set()

    def _finish(self, job_id: int, message: Any) -> None:
        """A result came: it is validated once, here, as the result of its ticket's job."""
        arrived = time.monotonic()
        duration_ms = message.get("duration_ms") if isinstance(message, dict) else None
        with self._lock:
            ticket = self._running.pop(job_id, None)
            if ticket is not None:  # counted before the next pick, which ranks by use
                used_s = duration_ms / 1000 if isinstance(duration_ms, int | float) else 0.0
                self._queue.finished(ticket.owner, used_s)
            self._dispatch()  # the slot is free for the next run now
        if ticket is None:
            return
        try:
            result = ticket.job.parse_result(message)
        except ValidationError:
            log.error("the sandbox runner sent a malformed result for job %s", job_id)
            result = RunResult(status=Verdict.CRASHED, detail="its result could not be read")
        ticket.timings = {
            "queued": (ticket.started_at - ticket.submitted_at) * 1000,
            "trip": (arrived - ticket.started_at) * 1000,
            "parse": (time.monotonic() - arrived) * 1000,
        }
        if not ticket.future.done():
            ticket.future.set_result(result)

    def _fail_all(self, message: str) -> None:
        """Fail every queued and running run (the sandbox closed, or cannot run code)."""
        with self._lock:
            tickets = list(self._running.values())
            self._running.clear()
            while (popped := self._queue.pop()) is not None:
                tickets.append(popped[1])
        for ticket in tickets:
            ticket.left_queue.set()
            if not ticket.future.done():
                ticket.future.set_exception(SandboxUnavailable(message, retry_after=1))

    # --- the supervisor: zygote, runner, pings --------------------------------------------

    def _supervise(self) -> None:
        """Keep a zygote and a runner alive, and the runner answering; until closed."""
        last_sweep = time.monotonic()
        while True:
            with self._lock:
                if self._closed or self._fatal:
                    return
                zygote_alive = self._zygote is not None and self._zygote.poll() is None
                need_runner = self._runner is None
            try:
                if not zygote_alive:
                    self._start_zygote()
                    continue  # a runner next, without waiting
                if need_runner:
                    self._spawn_runner()
                else:
                    self._ping()
            except Exception:  # the supervisor must outlive any one failure
                log.exception("sandbox supervisor")
                time.sleep(1)
            if time.monotonic() - last_sweep > SWEEP_INTERVAL_S:
                last_sweep = time.monotonic()
                with self._lock:
                    self._queue.sweep()
            with self._lock:
                if not self._closed and (self._runner is not None or self._fatal):
                    self._wake.wait(PING_INTERVAL_S)

    def _start_zygote(self) -> None:
        """Start the zygote and wait for its hello (the one slow step: torch's import)."""
        with self._lock:
            old, old_control = self._zygote, self._control
            self._zygote = self._control = None
        if old_control is not None:
            old_control.close()
        if old is not None:
            _stop(old)
        with self._lock:
            if self._closed:
                return
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            lock_fds = self._uids.lock_fds if self._uids else []
            try:
                process = self._zygote = self._popen_zygote(theirs, lock_fds)
            except OSError:
                ours.close()
                theirs.close()
                raise
        theirs.close()
        ours.settimeout(STARTUP_TIMEOUT_S)
        try:
            message = json.loads(ours.recv(MAX_CONTROL_MESSAGE) or b"{}")
        except (OSError, ValueError):
            message = {}
        with self._lock:
            if "hello" in message and not self._closed:
                self._control = ours
                self._hello = {**message["hello"], **self._hello}
                self._catalog = CATALOG_ADAPTER.validate_python(self._hello.get("schedulers", {}))
                return
        ours.close()
        _stop(process)
        if "fatal" in message:
            self._become_fatal(str(message["fatal"]))
        elif not self._closed:
            log.error("the sandbox zygote did not start; trying again")
            time.sleep(1)

    def _popen_zygote(self, theirs: socket.socket, lock_fds: list[int]) -> subprocess.Popen[bytes]:
        """The zygote process, on its end of the control socket, holding the uid locks."""
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app.sandbox.zygote",
                json.dumps(asdict(self.config)),
                str(theirs.fileno()),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            env=RUNNER_ENV,
            cwd="/",
            close_fds=True,
            pass_fds=(theirs.fileno(), *lock_fds),
            start_new_session=True,
        )

    def _spawn_runner(self) -> None:
        """Fork a runner from the zygote, on fresh pipes."""
        assert self._control is not None
        delay = RESPAWN_BACKOFF_S[min(self._failures, len(RESPAWN_BACKOFF_S) - 1)]
        if delay:
            time.sleep(delay)
        if self._uids is not None:
            killed = uids.kill_leftovers(self._uids.uids)
            if killed:
                log.warning("killed %d leftover sandbox process(es)", killed)
        jobs_r, jobs_w = os.pipe()
        results_r, results_w = os.pipe()
        with contextlib.suppress(OSError):  # more room than a few slots' jobs need
            fcntl.fcntl(jobs_w, fcntl.F_SETPIPE_SZ, JOB_PIPE_BYTES)
        scratch = tempfile.mkdtemp(prefix="tracewise-sandbox-")
        os.chmod(scratch, 0o711)  # children reach their own slot below it, nothing else
        reply: dict[str, Any] = {}
        pidfds: list[int] = []
        try:
            request = json.dumps({"spawn": next(self._ids), "scratch_root": scratch}).encode()
            socket.send_fds(self._control, [request], [jobs_r, results_w])
            self._control.settimeout(SPAWN_TIMEOUT_S)
            data, pidfds, _, _ = socket.recv_fds(self._control, MAX_CONTROL_MESSAGE, 1)
            reply = json.loads(data or b"{}")
        except (OSError, ValueError) as exc:
            log.error("the sandbox zygote did not answer: %s", exc)
        finally:
            os.close(jobs_r)
            os.close(results_w)
        pid = reply.get("pid")
        if not isinstance(pid, int) or len(pidfds) != 1:
            log.error("the sandbox zygote did not fork a runner (%s); starting it again", reply)
            for fd in (jobs_w, results_r, *pidfds):
                os.close(fd)
            shutil.rmtree(scratch, ignore_errors=True)
            assert self._zygote is not None
            self._zygote.kill()
            return
        runner = _Runner(pid, pidfds[0], jobs_w, results_r, scratch)
        runner.reader = threading.Thread(
            target=self._read_results, args=(runner,), daemon=True, name="sandbox-results"
        )
        with self._lock:
            if not self._closed:
                self._runner = runner
        threading.Thread(target=runner.write_frames, daemon=True, name="sandbox-jobs").start()
        runner.reader.start()  # if closed meanwhile, the runner is ended like any other
        if self._closed:
            runner.outbox.put(None)

    def _ping(self) -> None:
        """Ping the runner; replace it if an earlier ping went unanswered too long, or if
        it never became ready."""
        with self._lock:
            runner = self._runner
        if runner is None:
            return
        now = time.monotonic()
        if not runner.ready:
            if now - runner.spawned_at > READY_TIMEOUT_S:
                self.replace_runner(runner.pid, f"not ready after {READY_TIMEOUT_S} s")
            return
        unanswered_since = runner.unanswered_since  # the reader thread clears it
        if unanswered_since is not None:
            if now - unanswered_since > STUCK_AFTER_S:
                self.replace_runner(runner.pid, f"no answer to a ping for {STUCK_AFTER_S} s")
            return
        runner.unanswered_since = now
        runner.send(encode({"ping": next(runner.pings)}))

    # --- the reader thread ------------------------------------------------------------------

    def _read_results(self, runner: _Runner) -> None:
        try:
            while (message := read_frame(runner.results_fd)) is not None:
                if "pong" in message:
                    runner.unanswered_since = None
                elif "id" in message:
                    self._finish(int(message["id"]), message["result"])
                elif "ready" in message:
                    with self._lock:
                        self._hello = {**self._hello, **message["ready"]}
                        runner.ready = True
                        self._failures = 0
                        self._dispatch()
                    self._ready.set()
                elif "fatal" in message:
                    self._become_fatal(str(message["fatal"]))
        except (OSError, ValueError) as exc:
            log.error("sandbox result stream broke: %s", exc)
        finally:
            os.close(runner.results_fd)
        self._runner_gone(runner)

    def _runner_gone(self, runner: _Runner) -> None:
        """The runner's result pipe closed: it exited or was killed."""
        runner.kill()  # if it only closed the pipe
        runner.forget()
        runner.outbox.put(None)
        shutil.rmtree(runner.scratch, ignore_errors=True)
        with self._lock:
            if self._runner is not runner:
                return
            self._runner = None
            stranded = list(self._running.values())
            self._running.clear()
            now = time.monotonic()
            for ticket in stranded:
                self._queue.finished(ticket.owner, now - ticket.started_at)
            if not self._closed and not self._fatal:
                self.restarts += 1
                self._failures += 1
                log.error("sandbox runner %s exited; forking a replacement", runner.pid)
            self._wake.notify_all()
        for ticket in stranded:
            if not ticket.future.done():
                ticket.future.set_exception(
                    SandboxUnavailable(
                        "The code runner restarted while your code was running. Please try again.",
                        retry_after=1,
                    )
                )

    def _become_fatal(self, reason: str) -> None:
        """The sandbox cannot run code here: say why to everyone who asks from now on."""
        with self._lock:
            self._fatal = reason
            self._wake.notify_all()
        log.error("the sandbox cannot run code here: %s", reason)
        self._ready.set()
        self._fail_all(f"The code runner cannot run code here: {reason}")


def _stop(process: subprocess.Popen[bytes], grace_s: float = 0.0) -> None:
    """Let a zygote exit within `grace_s` (its socket closed), else kill it; reap it."""
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


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
    return Sandbox(
        config,
        queue_limit=settings.sandbox_queue,
        budget_s=settings.sandbox_budget_s,
        lock_dir=settings.sandbox_lock_dir,
    )
