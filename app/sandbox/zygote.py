"""The zygote: `python -m app.sandbox.zygote CONFIG_JSON`, started by the web app.

Importing and warming torch takes seconds; forking a process that already has takes
milliseconds. The zygote does the slow part once, then waits. Each runner is forked from it,
so a runner that dies (or is killed for not answering) is replaced in milliseconds, and the
runners share the zygote's warmed memory copy-on-write instead of each holding its own.

It speaks on one Unix socket (SOCK_SEQPACKET; its descriptor is the second argument): first
`{"hello": {...}}` or `{"fatal": "..."}`; then, for each `{"spawn": n, "scratch_root": dir}`
that arrives with two file descriptors (the new runner's job pipe to read and result pipe to
write), it forks a runner on them and answers `{"spawned": n, "pid": pid}` with a pidfd of the
runner. It exits when the web app closes the socket.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from dataclasses import replace
from typing import Any

from app.sandbox import lockdown
from app.sandbox.runner import RunnerConfig, prepare, run_forked

MAX_MESSAGE = 65536


def _send(control: socket.socket, message: dict[str, Any]) -> None:
    control.send(json.dumps(message).encode())


def serve(control: socket.socket, config: RunnerConfig) -> None:
    """Fork a runner for every spawn request until the web app goes away."""
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(control, MAX_MESSAGE, 2)
        except ConnectionResetError:
            return
        if not data:
            return
        request = json.loads(data)
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            _send(control, {"spawned": request.get("spawn"), "pid": None})
            continue
        jobs_fd, results_fd = fds
        pid = os.fork()
        if pid == 0:  # the runner
            try:
                control.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                lockdown.set_process_name(b"sandbox-runner")
                run_forked(
                    replace(config, scratch_root=request["scratch_root"]), jobs_fd, results_fd
                )
            finally:
                os._exit(0)
        os.close(jobs_fd)
        os.close(results_fd)
        try:
            pidfd = os.pidfd_open(pid)  # the web app signals the runner through this, never
        except ProcessLookupError:  # by a pid that may be reused; gone already: no runner
            _send(control, {"spawned": request["spawn"], "pid": None})
            continue
        reply = json.dumps({"spawned": request["spawn"], "pid": pid}).encode()
        socket.send_fds(control, [reply], [pidfd])
        os.close(pidfd)


def main() -> None:
    """Entry point: warm up, say hello, then fork runners on request."""
    config = RunnerConfig(**json.loads(sys.argv[1]))
    control = socket.socket(fileno=int(sys.argv[2]))
    devnull = os.open("/dev/null", os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # stray prints go to the log
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps exited runners
    lockdown.set_process_name(b"sandbox-zygote")
    try:
        hello = prepare(config)
    except Exception as exc:
        _send(control, {"fatal": f"{type(exc).__name__}: {exc}"})
        sys.exit(1)
    _send(control, {"hello": hello})
    serve(control, config)


if __name__ == "__main__":
    main()
