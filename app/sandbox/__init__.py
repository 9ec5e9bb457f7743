"""The sandboxed PyTorch runner: untrusted code runs here, never in the web process.

    web process ──(pipes, framed JSON)──▶ runner process ──fork──▶ one child per job

- `client`: the web side. Starts the runner with a clean environment, sends jobs, waits for
  results, answers Busy when the queue is full and restarts a runner that died or wedged.
- `runner`: imports torch once, goes single-threaded, warms the optimizers and schedulers,
  enters its own network/IPC/UTS/mount namespaces, then keeps one locked-down child ready per
  slot. The runner decides every verdict from what the kernel says (exit status, signals,
  rusage, bytes read), never from what a child claims.
- `lockdown`: the layers a child goes through before it reads its job: rlimits, its slot's
  own unprivileged uid, no_new_privs, Landlock (files, TCP, signals, abstract sockets),
  seccomp (no process creation, exec, sockets, ptrace, namespaces, mounts…).
- `harness`: runs the snippet inside the child, recording stdout, stderr, the value of an
  expression, warnings, and the learning rate after every optimizer and scheduler step.
- `protocol`: the messages, shared by both sides.

This package must stay importable without the web app (the runner imports only it and torch).
"""
