"""Kernel primitives the runner uses to lock children down (Linux, through ctypes).

Nothing here is a restricted Python interpreter: every layer is enforced by the kernel and
holds whatever the code inside does.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import resource
import signal
from dataclasses import dataclass
from pathlib import Path

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWNET = 0x40000000
CLONE_THREAD = 0x00010000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_BIND = 0x1000
MS_MOVE = 0x2000
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NAME = 15
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


def _check(result: int, what: str) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")
    return result


class SandboxUnsupported(RuntimeError):
    """This machine cannot provide the sandbox (not Linux, not root, no Landlock, …)."""


# --- namespaces and mounts (done once, by the runner) ----------------------------------------


def enter_own_ipc_namespace() -> None:
    """A fresh IPC namespace for one child: whatever IPC objects it makes die with it."""
    _check(_libc.unshare(CLONE_NEWIPC), "unshare IPC")


def enter_private_namespaces() -> None:
    """Give the runner (and so every child) its own network, IPC, UTS and mount namespaces.

    The new network namespace has only a loopback device that is down: no network at all.
    """
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
    _check(_libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make mounts private")


def mount_tmpfs(
    path: Path, *, size_bytes: int, inodes: int, uid: int = 0, mode: int = 0o700
) -> None:
    """Mount a size-capped tmpfs at `path` (inside the runner's private mount namespace)."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size_bytes},nr_inodes={inodes},mode={mode:o},uid={uid},gid={uid}"
    _check(
        _libc.mount(b"tmpfs", str(path).encode(), b"tmpfs", MS_NOSUID | MS_NODEV, options.encode()),
        f"mount tmpfs on {path}",
    )


def _mount(source: Path, target: Path, flags: int) -> None:
    _check(
        _libc.mount(str(source).encode(), str(target).encode(), None, flags, None),
        f"mount {source} on {target}",
    )


def make_reachable(paths: list[Path], staging: Path) -> list[Path]:
    """Let unprivileged uids reach `paths` (in the runner's mount namespace only).

    An interpreter installed under a private home (/root is mode 0700 for pyenv installs)
    would be unreadable once a child drops to its slot's uid: every lazy import would fail.
    For each ancestor that others may not enter, the paths below it are bind-mounted aside, a
    world-traversable tmpfs is mounted over the ancestor, and the paths are moved back in.
    The host's directories and permissions are untouched. Returns the ancestors covered.
    """
    blocked: dict[Path, set[str]] = {}
    for path in paths:
        parts = path.parts
        for depth in range(1, len(parts)):
            ancestor = Path(*parts[:depth])
            if not ancestor.stat().st_mode & 0o001:
                blocked.setdefault(ancestor, set()).add(parts[depth])
                break
    for number, (ancestor, children) in enumerate(sorted(blocked.items())):
        aside = staging / str(number)
        for child in sorted(children):
            (aside / child).mkdir(parents=True)
            _mount(ancestor / child, aside / child, MS_BIND | MS_REC)
        mount_tmpfs(ancestor, size_bytes=1024 * 1024, inodes=64, mode=0o755)
        for child in sorted(children):
            (ancestor / child).mkdir()
            _mount(aside / child, ancestor / child, MS_MOVE)
    for path in paths:
        for ancestor in path.parents:
            if not ancestor.stat().st_mode & 0o001:
                raise SandboxUnsupported(
                    f"{ancestor} is not reachable by unprivileged users; "
                    f"make it world-traversable (chmod o+x) to run code"
                )
    return sorted(blocked)


# --- memory ----------------------------------------------------------------------------------

MADV_HUGEPAGE = 14
MADV_COLLAPSE = 25  # Linux 6.1+
HUGE_PAGE = 2 * 1024 * 1024
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


def collapse_to_huge_pages() -> int:
    """Back the runner's anonymous memory with 2 MiB pages, where the kernel allows it.

    Forking copies, and exiting tears down, one page-table entry per 4 KiB page: for a
    process holding torch that is ~50 000 entries and several milliseconds per job. With huge
    pages it is ~100 entries: fork + exit drop from ~10 ms to ~3 ms of CPU (measured here).
    Returns the number of regions collapsed; 0 where THP is off (nothing breaks).
    """
    collapsed = 0
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split()
        name = fields[5] if len(fields) > 5 else ""
        if name not in ("", "[heap]") or not fields[1].startswith("rw"):
            continue
        start, end = (int(part, 16) for part in fields[0].split("-"))
        start = -(-start // HUGE_PAGE) * HUGE_PAGE
        end = end // HUGE_PAGE * HUGE_PAGE
        if end - start < HUGE_PAGE:
            continue
        _libc.madvise(start, end - start, MADV_HUGEPAGE)
        if _libc.madvise(start, end - start, MADV_COLLAPSE) == 0:
            collapsed += 1
    return collapsed


# --- Landlock ------------------------------------------------------------------------------

_SYS_LANDLOCK_CREATE_RULESET = 444  # the same number on every architecture
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1

FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_ALL_ABI1 = (1 << 13) - 1
FS_REFER = 1 << 13  # ABI 2
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5
FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
READ_ONLY = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi() -> int:
    """The Landlock ABI version the kernel offers; 0 when Landlock is unavailable."""
    result = _libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, None, 0, _LANDLOCK_CREATE_RULESET_VERSION)
    return max(int(result), 0)


def _fs_rights(abi: int) -> int:
    rights = FS_ALL_ABI1
    if abi >= 2:
        rights |= FS_REFER
    if abi >= 3:
        rights |= FS_TRUNCATE
    if abi >= 5:
        rights |= FS_IOCTL_DEV
    return rights


def landlock_ruleset(*, read_only: list[Path], read_write: list[Path]) -> int:
    """A Landlock ruleset fd: read (and execute) `read_only`, full access to `read_write`,
    nothing else on the file system; no TCP bind or connect; no signals or abstract Unix
    sockets reaching outside the child's own domain (where the kernel supports them).
    """
    abi = landlock_abi()
    if abi < 1:
        raise SandboxUnsupported("Landlock is not available in this kernel")
    handled = _fs_rights(abi)
    attr = _RulesetAttr(
        handled_access_fs=handled,
        handled_access_net=(NET_BIND_TCP | NET_CONNECT_TCP) if abi >= 4 else 0,
        scoped=(SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if abi >= 6 else 0,
    )
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else (16 if abi >= 4 else 8)
    ruleset = _check(
        int(_libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), size, 0)),
        "landlock_create_ruleset",
    )
    writable = handled & ~(1 << 6 | 1 << 11)  # never character or block devices
    for paths, rights in ((read_only, READ_ONLY), (read_write, writable)):
        for path in paths:
            if not path.exists():
                continue
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                allowed = rights if path.is_dir() else rights & FILE_RIGHTS
                rule = _PathBeneathAttr(allowed_access=allowed & handled, parent_fd=fd)
                _check(
                    int(
                        _libc.syscall(
                            _SYS_LANDLOCK_ADD_RULE,
                            ruleset,
                            _LANDLOCK_RULE_PATH_BENEATH,
                            ctypes.byref(rule),
                            0,
                        )
                    ),
                    f"landlock_add_rule {path}",
                )
            finally:
                os.close(fd)
    return ruleset


def landlock_restrict_self(ruleset: int) -> None:
    """Enforce a ruleset on the calling process, for good."""
    _check(int(_libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0)), "landlock_restrict_self")


# --- seccomp (through libseccomp) ----------------------------------------------------------

SCMP_ACT_KILL_PROCESS = 0x80000000
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_MASKED_EQ = 7


def SCMP_ACT_ERRNO(code: int) -> int:
    """The action "fail with errno `code`"."""
    return 0x00050000 | (code & 0xFFFF)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


# System calls that kill the process (verdict: forbidden). Everything else is allowed, and
# the other layers (uid, Landlock, rlimits, namespaces) bound what it can reach.
FORBIDDEN_SYSCALLS = (
    # processes and programs
    "fork",
    "vfork",
    "execve",
    "execveat",
    # networking (the network namespace has none anyway)
    "socket",
    "socketpair",
    "connect",
    "bind",
    "listen",
    "accept",
    "accept4",
    # other processes' memory, tracing
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_open",
    "pidfd_getfd",
    # privileges and namespaces
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setgroups",
    "setfsuid",
    "setfsgid",
    "capset",
    "unshare",
    "setns",
    # the system itself
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "swapon",
    "swapoff",
    "reboot",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "sethostname",
    "setdomainname",
    "acct",
    "quotactl",
    "syslog",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "iopl",
    "ioperm",
    "vhangup",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    # System V IPC: its objects outlive the process (memory outside every limit, a channel
    # between runs); each child also gets its own IPC namespace
    "shmget",
    "shmat",
    "shmdt",
    "shmctl",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "semget",
    "semop",
    "semtimedop",
    "semctl",
    # kernel attack surface nothing here needs
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "open_by_handle_at",
    "name_to_handle_at",
    "fanotify_init",
    "lookup_dcookie",
    "mknod",
    "mknodat",
    "personality",
    "uselib",
)


class SeccompFilter:
    """A seccomp filter built and compiled once in the runner, loaded by each child."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
        try:
            self._lib = ctypes.CDLL(name, use_errno=True)
        except OSError as exc:
            raise SandboxUnsupported(f"libseccomp is not installed ({exc})") from None
        lib = self._lib
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_rule_add_array.argtypes = [
            ctypes.c_void_p,
            ctypes.c_uint32,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.POINTER(_ArgCmp),
        ]
        lib.seccomp_load.argtypes = [ctypes.c_void_p]
        self._ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
        if not self._ctx:
            raise SandboxUnsupported("seccomp_init failed")
        for name_ in FORBIDDEN_SYSCALLS:
            self._rule(SCMP_ACT_KILL_PROCESS, name_)
        # Threads may be created (clone with CLONE_THREAD; RLIMIT_NPROC bounds how many);
        # any other clone would be a new process. clone3 hides its flags in memory that
        # seccomp cannot read, so it fails with ENOSYS and the C library falls back to clone.
        no_thread = _ArgCmp(arg=0, op=SCMP_CMP_MASKED_EQ, datum_a=CLONE_THREAD, datum_b=0)
        self._rule(SCMP_ACT_KILL_PROCESS, "clone", no_thread)
        self._rule(SCMP_ACT_ERRNO(errno.ENOSYS), "clone3")
        self._program = self._export()

    def _rule(self, action: int, syscall: str, *conditions: _ArgCmp) -> None:
        number = self._lib.seccomp_syscall_resolve_name(syscall.encode())
        if number < 0:
            return  # not a system call on this architecture
        array = (_ArgCmp * len(conditions))(*conditions) if conditions else None
        result = self._lib.seccomp_rule_add_array(self._ctx, action, number, len(conditions), array)
        if result < 0:
            raise SandboxUnsupported(f"seccomp rule for {syscall} failed: {os.strerror(-result)}")

    def _export(self) -> bytes:
        """The filter as a BPF program, compiled once here instead of in every child."""
        self._lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        read_end, write_end = os.pipe()
        try:
            result = self._lib.seccomp_export_bpf(self._ctx, write_end)
            os.close(write_end)
            write_end = -1
            if result < 0:
                raise SandboxUnsupported(f"seccomp_export_bpf failed: {os.strerror(-result)}")
            chunks = []
            while chunk := os.read(read_end, 65536):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(read_end)
            if write_end != -1:
                os.close(write_end)

    def load(self) -> None:
        """Install the filter on the calling process (needs no_new_privs)."""
        program = ctypes.create_string_buffer(self._program, len(self._program))
        fprog = _SockFprog(
            len=len(self._program) // 8, filter=ctypes.cast(program, ctypes.c_void_p)
        )
        _check(
            _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0),
            "PR_SET_SECCOMP",
        )


# --- the rest of a child's lockdown ----------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """Resource limits of one child."""

    cpu_seconds: int
    address_space_bytes: int
    file_size_bytes: int
    open_files: int = 64
    tasks: int = 16  # threads of the child (RLIMIT_NPROC counts them, per uid)


def apply_limits(limits: Limits, *, with_task_limit: bool = True) -> None:
    """Set hard resource limits; the code cannot raise them again.

    The task limit binds per uid, so it only means something once the child has a uid of
    its own (strict mode); for any other uid it would count that user's other processes.
    """
    for kind, value in (
        (resource.RLIMIT_CPU, limits.cpu_seconds),
        (resource.RLIMIT_AS, limits.address_space_bytes),
        (resource.RLIMIT_FSIZE, limits.file_size_bytes),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_MEMLOCK, 0),
        (resource.RLIMIT_MSGQUEUE, 0),
    ):
        resource.setrlimit(kind, (value, value))
    if with_task_limit:
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.tasks, limits.tasks))


def drop_privileges(uid: int) -> None:
    """Become `uid` (and gid `uid`) with no supplementary groups and no capabilities."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise RuntimeError("could not drop privileges")


def die_with_parent(parent_pid: int) -> None:
    """Be killed when the runner dies (a runner killed with kill -9 leaves no child behind);
    exit now if it already has. In strict mode the web app also kills whatever still runs as
    a slot's uid, should a child undo this."""
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "PR_SET_PDEATHSIG")
    if os.getppid() != parent_pid:
        os._exit(0)


def set_process_name(name: bytes) -> None:
    """The name `ps -o comm`, `top` and `pgrep` show (at most 15 bytes)."""
    _check(_libc.prctl(PR_SET_NAME, name[:15], 0, 0, 0), "PR_SET_NAME")


def forbid_new_privileges() -> None:
    """no_new_privs (needed for seccomp) and not dumpable (no ptrace, no core)."""
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
    _check(_libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "PR_SET_DUMPABLE")
