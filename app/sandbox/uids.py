"""The uids a strict runner gives its slots, claimed for the whole host.

Slot i of a runner runs as uid `base + i`. Two runners on one host must never share a uid: a
child of one could then signal or trace the children of the other. So a runner's range is
claimed with one lock file per uid under a host-wide directory (`/run/tracewise` by
default: root's, and checked to be root's alone — whoever could write in it could steal or
jam the claims), each held with flock(2) for as long as the runner lives — the locks pass to
the runner process, so they outlive a web process killed with kill -9 until its runner is
gone too. Overlapping ranges collide on at least one file. A uid or gid that names an
account or group in the user database is never used. Ranges are looked for in 61000–61183:
above the ids Debian gives people (1000–59999), below systemd's dynamic users
(61184–65519).

Because a claimed range is ours alone, any process still running as one of its uids is a
leftover of ours (a child of a runner that was killed) and may be killed.
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import os
import pwd
import signal
import stat
from dataclasses import dataclass
from pathlib import Path

from app.errors import Busy

DEFAULT_LOCK_DIR = Path("/run/tracewise")
FIRST_UID = 61000  # above the ids Debian gives people (1000–59999)
LAST_UID = 61184  # ranges are looked for in [FIRST_UID, LAST_UID): systemd's start here


class UidsTaken(Busy):
    """No uid range could be claimed: the configured one is in use, or all are."""


@dataclass
class UidRange:
    """A claimed range of uids, and the open lock files that hold the claim."""

    base: int
    count: int
    lock_fds: list[int]

    @property
    def uids(self) -> range:
        """The claimed uids."""
        return range(self.base, self.base + self.count)

    def release(self) -> None:
        """Let the range go (the runner may keep its inherited copies until it exits)."""
        for fd in self.lock_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.lock_fds = []


def claim(count: int, *, base: int | None = None, lock_dir: Path = DEFAULT_LOCK_DIR) -> UidRange:
    """Claim `count` consecutive uids: from `base` if given (UidsTaken if they are not all
    free), else the first free range."""
    _check_lock_dir(lock_dir)
    candidates = [base] if base is not None else range(FIRST_UID, LAST_UID - count + 1, count)
    for start in candidates:
        if any(_is_taken_id(uid) for uid in range(start, start + count)):
            continue
        claimed = _try_lock(lock_dir, start, count)
        if claimed is not None:
            return UidRange(start, count, claimed)
    if base is not None:
        raise UidsTaken(
            f"The sandbox uids {base}–{base + count - 1} are taken: another Tracewise server "
            f"on this host holds them (see {lock_dir}), or an account has one. Set "
            "TRACEWISE_SANDBOX_UID_BASE to another range, or leave it unset to pick a free one.",
            retry_after=60,
        )
    raise UidsTaken(
        f"No {count} free sandbox uids are left in {FIRST_UID}–{LAST_UID - 1} on this host.",
        retry_after=60,
    )


def kill_leftovers(uids: range) -> int:
    """SIGKILL every process running as one of `uids` (ours alone: see the module
    docstring); how many there were."""
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("State", "").strip().startswith(("Z", "X")):
            continue  # dead already, waiting to be reaped
        if {int(value) for value in fields.get("Uid", "").split()} & set(uids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
    return killed


def _check_lock_dir(lock_dir: Path) -> None:
    """Make the lock directory if needed; refuse one that others could write in."""
    with contextlib.suppress(FileExistsError):
        lock_dir.mkdir(mode=0o755, parents=True)
    info = os.lstat(lock_dir)
    if (
        not stat.S_ISDIR(info.st_mode)
        or info.st_uid != os.geteuid()
        or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    ):
        raise UidsTaken(
            f"{lock_dir} must be a directory of this user's that nobody else can write in "
            "(it holds the claims on sandbox uids); remove it, or set "
            "TRACEWISE_SANDBOX_LOCK_DIR to another.",
            retry_after=60,
        )


def _is_taken_id(uid: int) -> bool:
    """Whether an account has this uid or a group this gid (slots use both)."""
    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(uid)
        except KeyError:
            continue
        return True
    return False


def _try_lock(lock_dir: Path, start: int, count: int) -> list[int] | None:
    """Lock files for every uid of the range, or None (and nothing held) if one is taken."""
    held: list[int] = []
    for uid in range(start, start + count):
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
        fd = os.open(lock_dir / f"uid-{uid}.lock", flags, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            for other in held:
                os.close(other)
            return None
        held.append(fd)
    return held
