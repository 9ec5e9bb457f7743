"""The runner process: forked from the zygote (app.sandbox.zygote) on two pipes of the web app.

It speaks framed JSON: jobs (`{"id": n, "job": {...}}`) and pings (`{"ping": n}`) come in;
first `{"ready": {...}}` or `{"fatal": "..."}`, then results (`{"id": n, "result": {...}}`)
and pongs (`{"pong": n}`) go out. It is one thread and one event loop: it never blocks on a
child, so a hostile child cannot stall other jobs — and it answers a ping at once, so the
web app can tell a runner that stopped answering from one that is busy.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import math
import os
import secrets
import selectors
import shutil
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.sandbox import lockdown
from app.sandbox.protocol import (
    HEADER,
    JOB_ADAPTER,
    AnyJob,
    FrameBuffer,
    RunResult,
    Verdict,
    encode,
    read_frame,
    write_all,
    write_frame,
)

READY = b"R"  # a child writes this once it is locked down and waiting for its job
MAX_RESULT_BYTES = 4 * 1024 * 1024
MAX_RESULT_DEPTH = 32  # nesting of a result's JSON; ours is at most 6 deep
# Where a run's time goes, measured by the runner (RunResult.timings, in ms):
#   wait    the job waited in the runner for a locked-down child (all were busy, or still
#           being forked after their previous job)
#   child   from the job written to the child until its result was complete: reading the
#           job, running the code (the harness's own measure: `code`), writing the result
#   code    the harness's measure of the code alone (the child says so: only for benches)
#   check   the runner reading and validating the child's result
#   respawn how long the child that ran it took from fork to ready (lockdown, rehearsal):
#           off the job's path unless every child was busy
STAGES = ("wait", "child", "code", "check", "respawn")
CHILD_SETUP_FAILED = 70  # exit code of a child whose lockdown failed (a runner problem)
MAX_FD = 1 << 20  # above any descriptor a runner has open (close_range stops at the last)
MAX_SETUP_FAILURES = 5  # consecutive failed lockdowns before the runner gives up
# What a child may report about itself; the rest only the runner decides.
CHILD_VERDICTS = {
    Verdict.OK,
    Verdict.ERROR,
    Verdict.MEMORY,
    Verdict.FORBIDDEN,
    Verdict.OUTPUT_LIMIT,
}


@dataclass(frozen=True)
class RunnerConfig:
    """How the runner sets up its slots; sent by the web app as JSON on the command line."""

    slots: int = 2
    mode: str = "strict"  # "strict": full lockdown; "trusted": limits only, for trusted code
    uid_base: int | None = None  # slot i runs as uid/gid uid_base + i (strict mode: the
    # client claims a free range for the host when this is None; see app.sandbox.uids)
    max_timeout_s: float = 10.0
    memory_bytes: int = 512 * 1024 * 1024  # address space a child may add to the runner's
    output_bytes: int = 64 * 1024  # stdout + stderr
    scratch_root: str = ""  # an empty directory the web side made; strict mode mounts a tmpfs
    # on it in the runner's own mount namespace (over nothing else: a repository or venv under
    # /tmp must stay visible)
    scratch_bytes: int = 8 * 1024 * 1024
    scratch_inodes: int = 256
    read_only_paths: list[str] = field(default_factory=list)


@dataclass
class Slot:
    """One place a child runs; in strict mode, with its own uid and scratch tmpfs."""

    index: int
    uid: int
    scratch: Path
    ruleset: int = -1
    pid: int = 0
    job_w: int = -1
    pipes: dict[str, int] = field(default_factory=dict)  # name → read fd, until EOF
    ready: bool = False
    job_id: int | None = None
    job: AnyJob | None = None
    received: float = 0.0  # when the runner read the job
    spawned: float = 0.0  # when the child was forked…
    ready_after_ms: float = 0.0  # …and how long it took to be ready
    started: float = 0.0
    deadline: float = math.inf
    output: dict[str, bytearray] = field(default_factory=dict)
    kill_reason: Verdict | None = None
    token: str = ""  # a fresh secret per job, echoed in the child's result
    answered: bool = False
    status: tuple[int, Any] | None = None  # (wait status, rusage) once reaped


def _frame_complete(data: bytearray) -> bool:
    if len(data) < HEADER.size:
        return False
    size: int = HEADER.unpack_from(data)[0]
    return len(data) >= HEADER.size + size


def _single_result(data: bytearray, token: str, job: AnyJob) -> RunResult[Any] | None:
    """The one well-formed result frame for this job's token, or None for anything else."""
    if len(data) < HEADER.size:
        return None
    (size,) = HEADER.unpack_from(data)
    if len(data) != HEADER.size + size:
        return None  # truncated, or something written after the result
    try:
        claimed = json.loads(bytes(data[HEADER.size :]))
        if not isinstance(claimed, dict) or claimed.pop("token", None) != token:
            return None
        if _too_deep(claimed, MAX_RESULT_DEPTH):
            return None  # it would not survive being encoded again for the web app
        # Types checked too: a result's numbers are graded, so a string where a float
        # belongs is no result at all.
        return job.parse_result(job.bound(claimed))
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None  # anything a child can write must not take the runner down


def _too_deep(value: object, limit: int) -> bool:
    """Whether JSON-like `value` nests deeper than `limit` (walked without recursion)."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return False


def _vm_size() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def _thread_count() -> int:
    return len(os.listdir("/proc/self/task"))


class Runner:
    """The event loop: jobs in, children out, results back."""

    def __init__(self, config: RunnerConfig, jobs_fd: int, results_fd: int) -> None:
        self.config = config
        self.jobs_fd = jobs_fd
        self.results_fd = results_fd
        self.strict = config.mode == "strict"
        self.selector = selectors.DefaultSelector()
        self.queue: deque[tuple[int, AnyJob, float]] = deque()  # (id, job, received)
        self.frames = FrameBuffer()
        self.setup_failures = 0
        self.seccomp: lockdown.SeccompFilter | None = None
        uid_base = config.uid_base or 0  # strict mode always has one (isolate checks)
        self.slots = [
            Slot(index=i, uid=uid_base + i, scratch=Path(config.scratch_root) / f"slot-{i}")
            for i in range(config.slots)
        ]
        self.limits = lockdown.Limits(
            cpu_seconds=math.ceil(config.max_timeout_s) + 1,
            # what the runner maps already (torch is large, mostly shared) plus the job's share
            address_space_bytes=_vm_size() + config.memory_bytes,
            file_size_bytes=config.scratch_bytes,
        )

    # --- set-up ------------------------------------------------------------------------

    def isolate(self) -> dict[str, Any]:
        """Enter private namespaces, mount the scratch space, build Landlock and seccomp."""
        if not self.strict:
            for slot in self.slots:
                slot.scratch.mkdir(mode=0o700, exist_ok=True)
            return {"mode": "trusted"}
        if sys.platform != "linux":
            raise lockdown.SandboxUnsupported("the sandbox needs Linux")
        if self.config.uid_base is None:
            raise lockdown.SandboxUnsupported("strict mode needs a claimed uid range")
        if os.geteuid() != 0:
            raise lockdown.SandboxUnsupported(
                "the sandbox needs root to give each slot its own uid and scratch mount; "
                "run as root (e.g. in a container or VM) or set TRACEWISE_SANDBOX_MODE=trusted "
                "for a trusted local set-up"
            )
        abi = lockdown.landlock_abi()
        if abi < 1:
            raise lockdown.SandboxUnsupported("the kernel has no Landlock (Linux 5.13+ needed)")
        self.seccomp = lockdown.SeccompFilter()
        lockdown.enter_private_namespaces()
        total = self.config.scratch_bytes * (self.config.slots + 1)
        root = Path(self.config.scratch_root)
        lockdown.mount_tmpfs(root, size_bytes=total, inodes=4096, mode=0o711)
        read_only = [Path(p) for p in self.config.read_only_paths]
        covered = lockdown.make_reachable(read_only, root / ".reachable")
        for slot in self.slots:
            self._mount_scratch(slot)
            slot.ruleset = lockdown.landlock_ruleset(
                read_only=read_only, read_write=[slot.scratch, Path("/dev/null")]
            )
        return {
            "mode": "strict",
            "landlock_abi": abi,
            "made_reachable": [str(path) for path in covered],
        }

    def _mount_scratch(self, slot: Slot) -> None:
        lockdown.mount_tmpfs(
            slot.scratch,
            size_bytes=self.config.scratch_bytes,
            inodes=self.config.scratch_inodes,
            uid=slot.uid,
        )

    def _reset_scratch(self, slot: Slot) -> None:
        """Empty a slot's scratch space for its next child (the mount itself stays: Landlock's
        rule holds on to it). rmtree never follows the symlinks a child may have left."""
        if self.strict:
            os.chmod(slot.scratch, 0o700)
            os.chown(slot.scratch, slot.uid, slot.uid)
        for entry in slot.scratch.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)

    # --- children -----------------------------------------------------------------------

    def spawn(self, slot: Slot) -> None:
        """Fork a child for `slot`; it locks itself down and reports ready."""
        job_r, job_w = os.pipe()
        pipes = {name: os.pipe() for name in ("result", "stdout", "stderr")}
        runner_pid = os.getpid()  # before the fork: the child checks it still has this parent
        pid = os.fork()
        if pid == 0:  # the child
            try:
                os.close(job_w)
                for read_end, _ in pipes.values():
                    os.close(read_end)
                writes = {n: w for n, (_, w) in pipes.items()}
                self._child(slot, self.limits, job_r, writes, runner_pid)
            finally:
                os._exit(CHILD_SETUP_FAILED)
        os.close(job_r)
        slot.pid, slot.job_w, slot.spawned = pid, job_w, time.monotonic()
        slot.ready, slot.job_id, slot.kill_reason, slot.status = False, None, None, None
        slot.answered = False
        slot.deadline = math.inf
        slot.pipes, slot.output = {}, {}
        for name, (read_end, write_end) in pipes.items():
            os.close(write_end)
            os.set_blocking(read_end, False)
            slot.pipes[name] = read_end
            slot.output[name] = bytearray()
            self.selector.register(read_end, selectors.EVENT_READ, (slot, name))

    def _child(
        self, slot: Slot, limits: lockdown.Limits, job_r: int, w: dict[str, int], runner_pid: int
    ) -> None:
        """In the child: lock down, say ready, read one job, run it, report, exit."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        devnull = os.open("/dev/null", os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(w["stdout"], 1)
        os.dup2(w["stderr"], 2)
        # fd 3: job in, fd 4: result out; everything else the runner had is closed.
        os.dup2(job_r, 3, inheritable=False)
        os.dup2(w["result"], 4, inheritable=False)
        # One close_range() call each side of the Landlock ruleset's descriptor (listing
        # /proc/self/fd and closing one by one cost ~1 ms a child).
        if slot.ruleset > 4:
            os.closerange(5, slot.ruleset)
        os.closerange(max(5, slot.ruleset + 1), MAX_FD)
        os.chdir(slot.scratch)
        os.environ.clear()
        os.environ.update(
            {
                "HOME": str(slot.scratch),
                "TMPDIR": str(slot.scratch),
                "LANG": "C.UTF-8",
                "OMP_NUM_THREADS": "1",
            }
        )
        if self.strict:
            lockdown.enter_own_ipc_namespace()
            lockdown.apply_limits(limits)
            lockdown.drop_privileges(slot.uid)
            lockdown.die_with_parent(runner_pid)  # after the uid change, which would clear it
            lockdown.forbid_new_privileges()
            lockdown.landlock_restrict_self(slot.ruleset)
            os.close(slot.ruleset)
            assert self.seccomp is not None
            self.seccomp.load()
        else:
            lockdown.apply_limits(limits, with_task_limit=False)
            lockdown.die_with_parent(runner_pid)
        sys.stdout = io.TextIOWrapper(
            io.FileIO(1, "w", closefd=False),
            encoding="utf-8",
            errors="backslashreplace",
            write_through=True,
        )
        sys.stderr = io.TextIOWrapper(
            io.FileIO(2, "w", closefd=False),
            encoding="utf-8",
            errors="backslashreplace",
            write_through=True,
        )
        from app.sandbox import harness

        harness.rehearse()  # touch, and so copy, the pages a run writes before the clock starts
        os.write(4, READY)
        message = read_frame(3)
        if message is None:
            os._exit(0)
        token = message.pop("token")
        result = harness.run(JOB_ADAPTER.validate_python(message["job"]))
        write_frame(4, {**result.to_json(), "token": token})
        os._exit(0)

    def dispatch(self) -> None:
        """Give queued jobs to ready children."""
        for slot in self.slots:
            if not self.queue:
                return
            if slot.ready and slot.job_id is None:
                job_id, job, received = self.queue.popleft()
                slot.job_id, slot.job, slot.received = job_id, job, received
                slot.token = secrets.token_hex(16)
                slot.started = time.monotonic()
                slot.deadline = slot.started + min(job.timeout_s, self.config.max_timeout_s)
                # A child that died while idle is reaped, and its job reported as crashed.
                with contextlib.suppress(BrokenPipeError):
                    os.write(slot.job_w, encode({"job": job.model_dump(), "token": slot.token}))
                os.close(slot.job_w)
                slot.job_w = -1

    def on_output(self, slot: Slot, name: str) -> None:
        """Read what a child wrote; enforce the output limits."""
        fd = slot.pipes[name]
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        if not data:
            self.selector.unregister(fd)
            os.close(fd)
            del slot.pipes[name]
            return
        buffer = slot.output[name]
        if name == "result" and not slot.ready and data[:1] == READY:
            slot.ready = True
            slot.ready_after_ms = (time.monotonic() - slot.spawned) * 1000
            self.setup_failures = 0
            data = data[1:]
        buffer += data
        if name == "result":
            if len(buffer) > MAX_RESULT_BYTES:
                self.kill(slot, Verdict.OUTPUT_LIMIT)
            elif slot.job_id is not None and _frame_complete(buffer):
                self.answer_early(slot)
        elif len(slot.output["stdout"]) + len(slot.output["stderr"]) > self.config.output_bytes:
            self.kill(slot, Verdict.OUTPUT_LIMIT)

    def answer_early(self, slot: Slot) -> None:
        """A child has written its whole result: answer now, stop the child, reap it later.

        The child's stdout and stderr writes happened before its result write, so they are
        already in their pipes; a child's teardown (milliseconds for a torch-sized address
        space) is then off the learner's critical path.
        """
        for name in ("stdout", "stderr"):
            while name in slot.pipes:
                try:
                    chunk = os.read(slot.pipes[name], 65536)
                except BlockingIOError:
                    break
                if not chunk:
                    break
                slot.output[name] += chunk
        if len(slot.output["stdout"]) + len(slot.output["stderr"]) > self.config.output_bytes:
            self.kill(slot, Verdict.OUTPUT_LIMIT)
            return
        result = self.accept_result(slot, code=0)
        self.kill(slot, Verdict.OK)
        self.respond(slot, result)

    def respond(self, slot: Slot, result: RunResult[Any]) -> None:
        """Send a job's result to the web app; the slot's child is done with it."""
        assert slot.job_id is not None
        try:
            frame = encode({"id": slot.job_id, "result": result.to_json()})
        except (ValueError, TypeError, RecursionError):  # a child's result we cannot send
            unsent = RunResult[Any](status=Verdict.CRASHED, detail="its result could not be read")
            frame = encode({"id": slot.job_id, "result": unsent.to_json()})
        write_all(self.results_fd, frame)
        slot.job_id, slot.job = None, None
        slot.answered = True
        slot.ready = False  # this child is spent; its successor reports ready itself

    def kill(self, slot: Slot, reason: Verdict) -> None:
        """Stop a child now (its whole process group, though it cannot have made another)."""
        if slot.kill_reason is None:
            slot.kill_reason = reason
        with contextlib.suppress(ProcessLookupError):
            os.killpg(slot.pid, signal.SIGKILL)

    def reap(self) -> None:
        """Collect exited children; finish the ones whose pipes are drained."""
        for slot in self.slots:
            if slot.pid and slot.status is None:
                try:
                    pid, status, usage = os.wait4(slot.pid, os.WNOHANG)
                except ChildProcessError:
                    pid, status, usage = slot.pid, 0, None
                if pid:
                    slot.status = (status, usage)
                    if slot.kill_reason is not None:
                        self._close_pipes(slot)
            if slot.status is not None and not slot.pipes:
                self.finish(slot)

    def _close_pipes(self, slot: Slot) -> None:
        for fd in slot.pipes.values():
            self.selector.unregister(fd)
            os.close(fd)
        slot.pipes = {}

    def finish(self, slot: Slot) -> None:
        """Turn a finished child into a result (if it had a job) and spawn its successor."""
        assert slot.status is not None
        status, usage = slot.status
        if slot.job_w != -1:
            os.close(slot.job_w)
            slot.job_w = -1
        if slot.job_id is not None:
            self.respond(slot, self.verdict(slot, status, usage))
        elif (
            not slot.answered
            and os.WIFEXITED(status)
            and os.WEXITSTATUS(status) == CHILD_SETUP_FAILED
        ):
            self.setup_failures += 1
            if self.setup_failures >= MAX_SETUP_FAILURES:
                raise RuntimeError("children keep failing their lockdown; see the runner log")
        slot.pid = 0
        self._reset_scratch(slot)
        self.spawn(slot)

    def verdict(self, slot: Slot, status: int, usage: Any) -> RunResult[Any]:
        """Decide how the run ended from what the kernel reports; trust the child only for
        the details of a normal exit."""
        killed = self._killed(slot, status, usage)
        if killed is None:
            return self.accept_result(slot, code=os.WEXITSTATUS(status))
        verdict, detail = killed
        return RunResult[Any](
            status=verdict,
            stdout=slot.output["stdout"].decode("utf-8", "backslashreplace"),
            stderr=slot.output["stderr"].decode("utf-8", "backslashreplace"),
            duration_ms=(time.monotonic() - slot.started) * 1000,
            detail=detail,
        )

    def _killed(self, slot: Slot, status: int, usage: Any) -> tuple[Verdict, str] | None:
        """Why the child died, if it did not exit by itself."""
        if slot.kill_reason is Verdict.TIMEOUT:
            elapsed = time.monotonic() - slot.started
            return Verdict.TIMEOUT, f"stopped after {elapsed:.1f} s of wall-clock time"
        if slot.kill_reason is Verdict.OUTPUT_LIMIT:
            return Verdict.OUTPUT_LIMIT, f"more than {self.config.output_bytes} bytes of output"
        if not os.WIFSIGNALED(status):
            return None
        number = os.WTERMSIG(status)
        cpu = (usage.ru_utime + usage.ru_stime) if usage else 0.0
        if number == signal.SIGSYS:
            return Verdict.FORBIDDEN, "a forbidden system call (seccomp)"
        if number == signal.SIGXCPU or (
            number == signal.SIGKILL and cpu >= self.limits.cpu_seconds - 0.5
        ):
            return Verdict.TIMEOUT, f"used {cpu:.1f} s of CPU time"
        if number == signal.SIGXFSZ:
            return Verdict.OUTPUT_LIMIT, "wrote a file larger than the scratch limit"
        name = signal.Signals(number).name if number in signal.valid_signals() else str(number)
        return Verdict.CRASHED, f"killed by {name}"

    def accept_result(self, slot: Slot, *, code: int) -> RunResult[Any]:
        """The child's own report, if it is one well-formed result for this job; else crashed."""
        stdout = slot.output["stdout"].decode("utf-8", "backslashreplace")
        stderr = slot.output["stderr"].decode("utf-8", "backslashreplace")
        complete = time.monotonic()
        elapsed_ms = (complete - slot.started) * 1000
        child = (
            _single_result(slot.output["result"], slot.token, slot.job)
            if code == 0 and slot.job is not None
            else None
        )
        timings = {
            "wait": (slot.started - slot.received) * 1000,
            "child": elapsed_ms,
            "code": child.duration_ms if child is not None else 0.0,
            "check": (time.monotonic() - complete) * 1000,
            "respawn": slot.ready_after_ms,
        }
        if child is None or child.status not in CHILD_VERDICTS:
            return RunResult[Any](
                status=Verdict.CRASHED,
                stdout=stdout,
                stderr=stderr,
                duration_ms=elapsed_ms,
                detail=f"exited with code {code} without a valid result",
                timings=timings,
            )
        return child.model_copy(
            update={
                "stdout": stdout,
                "stderr": stderr,
                "duration_ms": elapsed_ms,
                "detail": "",
                "timings": timings,
            }
        )

    # --- the loop -------------------------------------------------------------------------

    def on_jobs(self) -> bool:
        """Read job and ping frames from the web app; False when it has gone away."""
        data = os.read(self.jobs_fd, 1 << 20)
        if not data:
            return False
        for message in self.frames.feed(data):
            if "ping" in message:
                write_frame(self.results_fd, {"pong": message["ping"]})
            else:
                job = JOB_ADAPTER.validate_python(message["job"])
                self.queue.append((int(message["id"]), job, time.monotonic()))
        return True

    def serve(self, ready: dict[str, Any]) -> None:
        """Run until the web app closes the job pipe."""
        wakeup_r, wakeup_w = os.pipe()
        os.set_blocking(wakeup_r, False)
        os.set_blocking(wakeup_w, False)
        signal.set_wakeup_fd(wakeup_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.selector.register(self.jobs_fd, selectors.EVENT_READ, "jobs")
        self.selector.register(wakeup_r, selectors.EVENT_READ, "wakeup")
        for slot in self.slots:
            self.spawn(slot)
        write_frame(self.results_fd, {"ready": ready})
        while True:
            deadlines = [
                s.deadline for s in self.slots if s.job_id is not None and s.status is None
            ]
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            for key, _ in self.selector.select(timeout):
                if key.data == "jobs":
                    if not self.on_jobs():
                        return
                elif key.data == "wakeup":
                    while True:
                        try:
                            if not os.read(wakeup_r, 512):
                                break
                        except BlockingIOError:
                            break
                else:
                    slot, name = key.data
                    if name in slot.pipes:
                        self.on_output(slot, name)
            now = time.monotonic()
            for slot in self.slots:
                if slot.job_id is not None and slot.status is None and now >= slot.deadline:
                    self.kill(slot, Verdict.TIMEOUT)
            self.reap()
            self.dispatch()

    def shutdown(self) -> None:
        """Kill every child (the web side removes the scratch root once we are gone)."""
        for slot in self.slots:
            if slot.pid:
                self.kill(slot, Verdict.CRASHED)


def prepare(config: RunnerConfig) -> dict[str, Any]:
    """Import torch once, single-threaded, and warm it up; say what we run."""
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    from app.sandbox import harness

    harness.install_tracing()
    harness.warm_up()
    threads = _thread_count()
    if threads != 1:
        raise RuntimeError(f"runner has {threads} threads after warm-up; forking would be unsafe")
    gc.collect()
    gc.freeze()  # the collector never walks the warmed objects, so children do not copy them
    huge = lockdown.collapse_to_huge_pages()
    from app.sandbox.training import scheduler_catalog

    return {
        "schedulers": scheduler_catalog(),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "slots": config.slots,
        "huge_page_regions": huge,
    }


def run_forked(config: RunnerConfig, jobs_fd: int, results_fd: int) -> None:
    """Be a runner, in a process just forked from the zygote: lock the runner itself away
    (namespaces, scratch mounts), say ready (or why not), then serve jobs until the web app
    closes the job pipe. Logs go to stderr."""
    devnull = os.open("/dev/null", os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # stray prints go to the log, never into the result stream
    os.close(devnull)
    try:
        runner = Runner(config, jobs_fd, results_fd)
        ready = runner.isolate()
    except Exception as exc:
        write_frame(results_fd, {"fatal": f"{type(exc).__name__}: {exc}"})
        return
    try:
        runner.serve(ready)
    finally:
        runner.shutdown()
