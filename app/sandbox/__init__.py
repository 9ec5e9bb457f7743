"""The sandboxed PyTorch runner: untrusted code runs here, never in the web process.

    web process ──(socket)──▶ zygote ──fork──▶ runner ──fork──▶ one child per job
         └────(pipes, framed JSON)───────────────▲

- `client`: the web side. Starts the zygote with a clean environment, has it fork a runner,
  queues runs fairly, sends the runner a job per free slot, waits for results, and replaces a
  runner that died or stopped answering its pings in milliseconds.
- `scheduler`: the fair queue: one run per learner, a budget of running time per learner,
  turns by least use, the last slot kept for light users.
- `uids`: claims the slots' uids for the whole host, so no two runners ever share one.
- `zygote`: imports torch once, goes single-threaded, warms the optimizers and schedulers,
  then forks runners on request (they share its memory copy-on-write).
- `runner`: enters its own network/IPC/UTS/mount namespaces, then keeps one locked-down
  child ready per slot. The runner decides every verdict from what the kernel says (exit
  status, signals, rusage, bytes read), never from what a child claims.
- `lockdown`: the layers a child goes through before it reads its job: rlimits, its slot's
  own unprivileged uid, no_new_privs, Landlock (files, TCP, signals, abstract sockets),
  seccomp (no process creation, exec, sockets, ptrace, namespaces, mounts…).
- `harness`: runs the snippet inside the child, recording stdout, stderr, the value of an
  expression, warnings, and the learning rate after every optimizer and scheduler step.
- `protocol`: the messages, shared by both sides: one typed job per kind (snippet, code,
  pipeline, LR-only), each with its result type, validated once where it crosses a process.
- `specs`: what a training pipeline is (dataset, split, model, optimizer, scheduler, epochs),
  validated like every question file; `training`: the torch code that trains and records it.

The runner side (zygote, runner, lockdown, harness, protocol, specs, training) must stay
importable without the web app: it imports only this package, pydantic and torch.
"""
