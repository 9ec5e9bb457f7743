"""The sandbox: hostile programs get their exact verdict, and nothing else is touched.

Every attack runs on the shared strict runner. After each one, a benign run still works (the
runner is healthy) and the victim files — world-readable, outside the sandbox — are intact.
"""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from app.errors import Busy
from app.sandbox import uids
from app.sandbox.client import STUCK_AFTER_S, Sandbox, SandboxUnavailable, read_only_paths
from app.sandbox.protocol import RunResult, SnippetJob, Verdict
from app.sandbox.runner import RunnerConfig
from app.sandbox.scheduler import Owner
from app.sandbox.uids import UidsTaken
from tests.conftest import ROOT, SANDBOX_TIMEOUT_S

pytestmark = pytest.mark.slow  # every attack, and runners killed, stopped and refused

# World-writable files outside the sandbox's scratch, unique to this run (another suite may
# run beside this one).
VICTIMS = Path(tempfile.gettempdir()) / f"tracewise-test-victims-{os.getpid()}"
SECRET = "the-secret-key-the-sandbox-must-never-read"
BENIGN = textwrap.dedent("""\
    import torch
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(3):
        opt.step()
        scheduler.step()
    print(scheduler.get_last_lr())
""")
QUICK_TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def victims() -> Iterator[Path]:
    """Files any local user could read or change — only the sandbox stands between them."""
    VICTIMS.mkdir(mode=0o777, exist_ok=True)
    VICTIMS.chmod(0o777)
    for name, content in (("secret_key", SECRET), ("tracewise.sqlite3", "database bytes")):
        path = VICTIMS / name
        path.write_text(content)
        path.chmod(0o666)
    yield VICTIMS
    for path in VICTIMS.iterdir():
        path.unlink()
    VICTIMS.rmdir()


def run(sandbox: Sandbox, code: str, *, timeout_s: float = QUICK_TIMEOUT_S) -> RunResult:
    return sandbox.run(SnippetJob(code=textwrap.dedent(code).lstrip("\n"), timeout_s=timeout_s))


V = Verdict
ATTACKS: list[tuple[str, str, Verdict]] = [
    # time
    ("infinite loop", "while True: pass", V.TIMEOUT),
    (
        "SIGXCPU ignored",
        """
        import signal
        signal.signal(signal.SIGXCPU, signal.SIG_IGN)
        while True: pass
     """,
        V.TIMEOUT,
    ),
    ("sleeping forever", "import time\ntime.sleep(10**6)", V.TIMEOUT),
    ("blocking read on stdin", "import sys\nsys.stdin.read()\nwhile True: pass", V.TIMEOUT),
    # memory
    ("memory bomb at once", "x = bytearray(64 * 1024**3)", V.MEMORY),
    ("memory bomb, growing", "chunks = []\nwhile True: chunks.append(bytearray(10**7))", V.MEMORY),
    ("torch memory bomb", "import torch\nx = torch.empty(10**11)", V.MEMORY),
    (
        "torch memory, growing",
        "import torch\nxs = [torch.ones(10**7) for _ in range(1000)]",
        V.MEMORY,
    ),
    # processes
    ("fork bomb", "import os\nwhile True: os.fork()", V.FORBIDDEN),
    ("exec of a shell", "import os\nos.execv('/bin/sh', ['sh', '-c', 'id'])", V.FORBIDDEN),
    ("subprocess", "import subprocess\nsubprocess.run(['id'])", V.FORBIDDEN),
    ("os.system", "import os\nos.system('id')", V.FORBIDDEN),
    (
        "thread bomb",
        """
        import threading, time
        threads = [threading.Thread(target=time.sleep, args=(5,)) for _ in range(500)]
        for thread in threads: thread.start()
     """,
        V.ERROR,
    ),
    # files
    ("read /etc/shadow", "print(open('/etc/shadow').read())", V.FORBIDDEN),
    ("read /etc/passwd", "print(open('/etc/passwd').read())", V.FORBIDDEN),
    ("read the app's database", f"print(open('{VICTIMS}/tracewise.sqlite3').read())", V.FORBIDDEN),
    ("read the secret key", f"print(open('{VICTIMS}/secret_key').read())", V.FORBIDDEN),
    # by path: an import's verdict would depend on whether the import system's cache of the
    # folder's listing is still fresh (it is not, once a file there changed)
    ("read the app's source", f"print(open('{ROOT}/app/config.py').read())", V.FORBIDDEN),
    ("other processes' /proc", "print(open('/proc/1/environ').read())", V.FORBIDDEN),
    ("list the host's /tmp", "import os\nprint(os.listdir('/tmp'))", V.FORBIDDEN),
    (
        "write outside the scratch directory",
        f"open('{VICTIMS}/pwned', 'w').write('x')",
        V.FORBIDDEN,
    ),
    ("overwrite the secret key", f"open('{VICTIMS}/secret_key', 'w').write('x')", V.FORBIDDEN),
    ("delete the database", f"import os\nos.unlink('{VICTIMS}/tracewise.sqlite3')", V.FORBIDDEN),
    (
        "plant code in site-packages",
        """
        import os, torch
        open(os.path.join(os.path.dirname(torch.__file__), 'evil.py'), 'w')
     """,
        V.FORBIDDEN,
    ),
    (
        "fill the disk with one file",
        """
        with open('big', 'wb') as f:
            while True: f.write(b'x' * 1_000_000)
     """,
        V.OUTPUT_LIMIT,
    ),
    (
        "fill the disk with many files",
        "for i in range(100_000): open(f'f{i}', 'w').close()",
        V.OUTPUT_LIMIT,
    ),
    # network
    (
        "TCP connect",
        """
        import socket
        socket.create_connection(('127.0.0.1', 8000), timeout=1)
     """,
        V.FORBIDDEN,
    ),
    ("UDP socket", "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM)", V.FORBIDDEN),
    ("DNS lookup", "import socket\nsocket.getaddrinfo('pypi.org', 443)", V.FORBIDDEN),
    (
        "Unix socket",
        "import socket\nsocket.socket(socket.AF_UNIX).connect('/run/x.sock')",
        V.FORBIDDEN,
    ),
    # other processes, privileges
    ("kill the runner", "import os\nos.kill(os.getppid(), 9)", V.FORBIDDEN),
    ("kill every process", "import os\nos.kill(-1, 9)\nprint('still here')", V.OK),
    (
        "ptrace the runner",
        """
        import ctypes, os
        ctypes.CDLL(None).ptrace(16, os.getppid(), 0, 0)
     """,
        V.FORBIDDEN,
    ),
    ("setuid root", "import os\nos.setuid(0)", V.FORBIDDEN),
    ("new user namespace", "import ctypes\nctypes.CDLL(None).unshare(0x10000000)", V.FORBIDDEN),
    (
        "mount",
        "import ctypes\nctypes.CDLL(None).mount(b'x', b'/mnt', b'tmpfs', 0, None)",
        V.FORBIDDEN,
    ),
    ("chroot", "import os\nos.chroot('.')", V.FORBIDDEN),
    # output
    ("endless stdout", "while True: print('x' * 1000)", V.OUTPUT_LIMIT),
    ("endless stderr", "import sys\nwhile True: sys.stderr.write('x' * 1000)", V.OUTPUT_LIMIT),
    ("raw writes to fd 1", "import os\nwhile True: os.write(1, b'x' * 65536)", V.OUTPUT_LIMIT),
    # crashes and lies
    ("segfault through ctypes", "import ctypes\nctypes.string_at(0)", V.CRASHED),
    ("abort", "import os\nos.abort()", V.CRASHED),
    ("SIGKILL itself", "import os\nos.kill(os.getpid(), 9)", V.CRASHED),
    ("exit before a result", "import os\nos._exit(0)", V.CRASHED),
    (
        "forge the result channel",
        """
        import json, os, struct
        body = json.dumps({'status': 'ok', 'value': '42'}).encode()
        os.write(4, struct.pack('>I', len(body)) + body)
     """,
        V.CRASHED,
    ),
    (
        "claim a verdict only the runner gives",
        """
        import json, os, struct
        body = json.dumps({'status': 'timeout'}).encode()
        os.write(4, struct.pack('>I', len(body)) + body)
        os._exit(0)
     """,
        V.CRASHED,
    ),
    (
        "announce a 2 GiB result",
        "import os, struct\nos.write(4, struct.pack('>I', 2**31))",
        V.CRASHED,
    ),
    ("close the result channel", "import os\nos.close(4)", V.CRASHED),
    ("endless recursion", "def f(): return f()\nf()", V.ERROR),
    (
        "System V shared memory outliving the run",
        """
        import ctypes
        libc = ctypes.CDLL(None)
        segment = libc.shmget(0x7777, 256 * 1024 * 1024, 0o1666)
     """,
        V.FORBIDDEN,
    ),
    ("a POSIX shared-memory file", "open('/dev/shm/tracewise', 'w')", V.FORBIDDEN),
    (
        "a result nested too deep to parse",
        """
        import os, struct
        os.write(4, struct.pack('>I', 200_000) + b'[' * 200_000)
        os._exit(0)
     """,
        V.CRASHED,
    ),
    (
        "a result with the job's token but the wrong types",
        """
        import json, os, struct, sys
        frame = sys._getframe()
        while 'token' not in frame.f_locals:
            frame = frame.f_back
        forged = {'status': 'ok', 'token': frame.f_locals['token'], 'trace': [{'lrs': 'lots'}]}
        body = json.dumps(forged).encode()
        os.write(4, struct.pack('>I', len(body)) + body)
        os._exit(0)
     """,
        V.CRASHED,
    ),
    (
        "a tokened result that parses but nests too deep to send on",
        """
        import json, os, struct, sys
        frame = sys._getframe()
        while 'token' not in frame.f_locals:
            frame = frame.f_back
        deep = '[' * 980 + ']' * 980
        token = json.dumps(frame.f_locals['token'])
        body = ('{"status": "ok", "token": %s, "data": {"x": %s}}' % (token, deep)).encode()
        os.write(4, struct.pack('>I', len(body)) + body)
        os._exit(0)
     """,
        V.CRASHED,
    ),
]


@pytest.mark.parametrize(("name", "code", "verdict"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_attack_gets_its_verdict_and_harms_nothing(
    sandbox: Sandbox, victims: Path, name: str, code: str, verdict: Verdict
) -> None:
    # Only attacks on time wait for the (short) timeout; the others finish on their own, and
    # a generous limit keeps a slow, busy machine from turning "memory" into "timeout".
    timeout = QUICK_TIMEOUT_S if verdict is Verdict.TIMEOUT else SANDBOX_TIMEOUT_S
    result = run(sandbox, code, timeout_s=timeout)
    assert result.status is verdict, (name, result)
    assert result.sentence  # every verdict reads as a sentence to a learner
    assert SECRET not in result.stdout + result.stderr + str(result.error)

    healthy = run(sandbox, BENIGN, timeout_s=5)
    assert (healthy.status, healthy.stdout) == (Verdict.OK, "[0.05]\n")
    assert (victims / "secret_key").read_text() == SECRET
    assert (victims / "tracewise.sqlite3").read_text() == "database bytes"
    assert not (victims / "pwned").exists()


def test_there_are_at_least_thirty_attacks() -> None:
    assert len(ATTACKS) >= 30


def test_the_child_has_its_slot_uid_no_groups_and_no_secrets(sandbox: Sandbox) -> None:
    result = run(
        sandbox,
        """
        import os
        print(os.getuid(), os.getgid(), os.getgroups())
        print(sorted(os.environ))
        print(os.getcwd())
    """,
    )
    uid_line, env_line, cwd = result.stdout.splitlines()
    uid, gid, groups = uid_line.split(" ", 2)
    assert sandbox.uid_range is not None and int(uid) in sandbox.uid_range
    assert uid == gid and groups == "[]"
    assert env_line == "['HOME', 'LANG', 'OMP_NUM_THREADS', 'TMPDIR']"
    assert "/tracewise-sandbox-" in cwd and re.fullmatch(r".*/slot-\d", cwd)


def test_scratch_space_is_private_and_emptied_between_runs(sandbox: Sandbox) -> None:
    first = run(sandbox, "open('note', 'w').write('mine')\nimport os\nprint(os.listdir('.'))")
    assert first.stdout == "['note']\n"
    for _ in range(8):  # every slot, more than once
        again = run(sandbox, "import os\nprint(os.listdir('.'))")
        assert again.stdout == "[]\n"


def test_a_hostile_run_never_affects_a_concurrent_benign_one(sandbox: Sandbox) -> None:
    hostile = [
        "while True: pass",
        "x = bytearray(64 * 1024**3)",
        "while True: print('x' * 1000)",
        "import os\nos.kill(-1, 9)",
        "import ctypes\nctypes.string_at(0)",
    ] * 2
    with ThreadPoolExecutor(max_workers=8) as pool:
        attacks = [pool.submit(run, sandbox, code) for code in hostile]
        benign = [pool.submit(run, sandbox, BENIGN, timeout_s=5) for _ in range(20)]
        results = [future.result() for future in benign]
        for future in attacks:
            future.result()
    assert {(r.status, r.stdout) for r in results} == {(Verdict.OK, "[0.05]\n")}


def test_stdout_and_stderr_stay_apart(sandbox: Sandbox) -> None:
    result = run(
        sandbox,
        """
        import sys, warnings
        print('answer')
        print('noise', file=sys.stderr)
        warnings.warn('careful')
    """,
    )
    assert result.stdout == "answer\n"
    assert result.stderr == "noise\n"
    assert [w.message for w in result.warnings] == ["careful"]
    assert result.warnings[0].line == 4


def test_errors_point_at_the_snippets_own_lines(sandbox: Sandbox) -> None:
    result = run(
        sandbox,
        """
        import torch
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0)
    """,
    )
    assert result.status is Verdict.ERROR
    assert result.error is not None and result.error.line == 3
    assert result.error.type == "ValueError"
    assert "line 3: scheduler = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0)" in (
        result.error.traceback
    )
    assert "harness" not in result.error.traceback


def test_the_trace_records_every_step_and_the_warning(sandbox: Sandbox) -> None:
    result = run(
        sandbox,
        """
        import torch
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        for _ in range(3):
            scheduler.step()
    """,
    )
    assert [(e.kind, e.name, e.call, e.line, e.lrs) for e in result.trace] == [
        ("scheduler", "StepLR", 1, 5, [0.1]),
        ("scheduler", "StepLR", 2, 5, [0.05]),
        ("scheduler", "StepLR", 3, 5, [0.05]),
    ]
    (warning,) = result.warnings
    assert "before `optimizer.step()`" in warning.message and warning.line == 5


@pytest.fixture(scope="module")
def spare() -> Iterator[Sandbox]:
    """A small strict sandbox of this module's own (one slot, two places in its queue), for
    the tests that kill, stop or fill it: each leaves it working again, so that they share
    one start-up (~3 s each) instead of paying one apiece."""
    config = RunnerConfig(slots=1, max_timeout_s=5, read_only_paths=read_only_paths())
    small = Sandbox(config, queue_limit=2)
    small.start()
    try:
        small.wait_ready()
        yield small
    finally:
        small.close()


def test_a_full_queue_answers_busy_instead_of_hanging(spare: Sandbox) -> None:
    slow = [
        spare.submit(SnippetJob(code="import time\ntime.sleep(0.5)"), Owner.learner(name))
        for name in ("a", "b", "c")  # one runs, two wait
    ]
    with pytest.raises(Busy) as caught:
        spare.submit(SnippetJob(code="pass"), Owner.learner("d"))
    assert caught.value.retry_after >= 1
    assert {ticket.result().status for ticket in slow} == {Verdict.OK}
    assert spare.run(SnippetJob(code="print(1)")).stdout == "1\n"


def test_a_killed_runner_is_replaced_at_once_and_its_runs_are_told_to_try_again(
    spare: Sandbox,
) -> None:
    first_pid, restarts = spare.runner_pid, spare.restarts
    assert first_pid is not None
    running = spare.submit(SnippetJob(code="import time\ntime.sleep(3)"))
    assert running.left_queue.wait(5)
    os.kill(first_pid, 9)
    killed_at = time.monotonic()
    with pytest.raises(SandboxUnavailable, match="try again"):
        running.result()
    assert spare.run(SnippetJob(code="print('back')")).stdout == "back\n"
    assert time.monotonic() - killed_at < 2  # a fork of the zygote, not a cold start
    assert spare.runner_pid != first_pid and spare.restarts == restarts + 1


def test_a_stuck_runner_is_noticed_and_replaced(spare: Sandbox) -> None:
    stuck = spare.runner_pid
    assert stuck is not None
    os.kill(stuck, signal.SIGSTOP)  # alive, answering nothing
    stopped_at = time.monotonic()
    assert _run_until_it_works(spare, "print('back')").stdout == "back\n"
    assert time.monotonic() - stopped_at < STUCK_AFTER_S + 2
    assert spare.runner_pid != stuck
    with pytest.raises(ProcessLookupError):
        os.kill(stuck, 0)


def _run_until_it_works(sandbox: Sandbox, code: str, tries: int = 20) -> RunResult[None]:
    """Run `code`, again while the answer is "the runner restarted: try again"."""
    for _ in range(tries - 1):
        try:
            return sandbox.run(SnippetJob(code=code))
        except SandboxUnavailable as exc:
            assert "try again" in exc.message.lower()
    return sandbox.run(SnippetJob(code=code))


def test_a_dead_zygote_costs_nothing_while_the_runner_works(spare: Sandbox) -> None:
    zygote = spare.zygote_pid
    assert zygote is not None
    os.kill(zygote, 9)
    assert spare.run(SnippetJob(code="print('still here')")).stdout == "still here\n"
    deadline = time.monotonic() + 30
    while spare.zygote_pid in (None, zygote) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert spare.zygote_pid not in (None, zygote)  # started again, in the background


def test_two_sandboxes_on_one_host_never_share_a_uid(sandbox: Sandbox, spare: Sandbox) -> None:
    assert sandbox.uid_range is not None and spare.uid_range is not None
    assert not set(sandbox.uid_range) & set(spare.uid_range)
    uid_line = spare.run(SnippetJob(code="import os\nprint(os.getuid())")).stdout
    assert int(uid_line) in spare.uid_range
    # Asking for a range that is taken is refused, with what to do about it.
    config = RunnerConfig(slots=2, max_timeout_s=5, read_only_paths=read_only_paths())
    taken = replace(config, uid_base=sandbox.uid_range.start + 1)
    with pytest.raises(UidsTaken, match="TRACEWISE_SANDBOX_UID_BASE"):
        Sandbox(taken, queue_limit=2).start()


def test_a_sandbox_whose_uids_are_taken_does_not_start(sandbox: Sandbox) -> None:
    assert sandbox.uid_range is not None
    config = RunnerConfig(slots=1, uid_base=sandbox.uid_range.start, read_only_paths=[])
    refused = Sandbox(config, queue_limit=2)
    for _ in range(2):  # not half-started: every attempt says why at once
        with pytest.raises(UidsTaken):
            refused.submit(SnippetJob(code="print(1)"))
    refused.close()


def test_a_lock_directory_others_can_write_in_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "locks"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    with pytest.raises(UidsTaken, match="nobody else can write in"):
        uids.claim(1, lock_dir=shared)
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    with pytest.raises(UidsTaken, match="must be a directory"):
        uids.claim(1, lock_dir=link)


def test_a_uid_range_stays_claimed_while_its_runner_lives(sandbox: Sandbox) -> None:
    assert sandbox.uid_range is not None
    runner = sandbox.runner_pid
    held = {os.readlink(f"/proc/{runner}/fd/{fd}") for fd in os.listdir(f"/proc/{runner}/fd")}
    for uid in sandbox.uid_range:
        assert f"{uids.DEFAULT_LOCK_DIR}/uid-{uid}.lock" in held


def test_leftovers_running_as_a_claimed_uid_are_killed() -> None:
    claimed = uids.claim(1, lock_dir=uids.DEFAULT_LOCK_DIR)
    try:
        uid = claimed.base
        leftover = subprocess.Popen(["sleep", "60"], user=uid, group=uid, extra_groups=[], cwd="/")
        assert uids.kill_leftovers(claimed.uids) >= 1
        assert leftover.wait(timeout=5) == -signal.SIGKILL
    finally:
        claimed.release()


def test_the_runner_holds_no_secrets_in_its_environment(sandbox: Sandbox) -> None:
    pid = sandbox.runner_pid
    assert pid is not None
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    names = {entry.split(b"=", 1)[0].decode() for entry in environ if entry}
    assert not {name for name in names if name.startswith("TRACEWISE")}
    assert names <= {
        "PATH",
        "LANG",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "PYTHONDONTWRITEBYTECODE",
        "GLIBC_TUNABLES",
    }


def test_victims_are_world_writable_so_only_the_sandbox_protects_them(victims: Path) -> None:
    assert stat.S_IMODE((victims / "secret_key").stat().st_mode) == 0o666


def test_a_machine_without_what_the_sandbox_needs_is_refused_with_the_reason() -> None:
    hidden = Path(tempfile.mkdtemp(prefix="tracewise-hidden-"))
    (hidden / "inner" / "lib").mkdir(parents=True)
    hidden.chmod(0o700)
    (hidden / "inner").chmod(0o700)
    config = RunnerConfig(
        slots=1, read_only_paths=[*read_only_paths(), str(hidden / "inner" / "lib")]
    )
    sandbox = Sandbox(config, queue_limit=2)
    sandbox.start()
    try:
        with pytest.raises(SandboxUnavailable) as caught:
            sandbox.wait_ready()
        assert "cannot run code here" in caught.value.message
        assert "is not reachable by unprivileged users" in caught.value.message
        with pytest.raises(SandboxUnavailable):
            sandbox.run(SnippetJob(code="print(1)"))
    finally:
        sandbox.close()
        for path in (hidden / "inner" / "lib", hidden / "inner", hidden):
            path.rmdir()


def test_trusted_mode_runs_code_with_limits_but_no_lockdown() -> None:
    config = RunnerConfig(
        slots=1, mode="trusted", max_timeout_s=5, read_only_paths=read_only_paths()
    )
    sandbox = Sandbox(config, queue_limit=2)
    sandbox.start()
    try:
        assert sandbox.wait_ready()["mode"] == "trusted"
        assert sandbox.run(SnippetJob(code=BENIGN)).stdout == "[0.05]\n"
        assert sandbox.run(SnippetJob(code="while True: pass", timeout_s=0.5)).status is V.TIMEOUT
        assert sandbox.run(SnippetJob(code="x = bytearray(64 * 1024**3)")).status is V.MEMORY
    finally:
        sandbox.close()
