"""The store of runs: every run a key, a worked solution or a trace comes from, by run key.

One table (`sandbox_runs`) holds them all, whatever their kind. A stored run never changes:
its key names the job and the torch version that made it. So this process also keeps the
small ones it has read or written in memory (`MEMORY_SIZE`): on every instance of a course,
a remembered run is the stored one, and a graded answer with a known key reads no row.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Generic

from sqlalchemy import Executable, func, insert, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.checking.jobs import run_key, torch_version
from app.models import SandboxRun
from app.sandbox.protocol import DataT, JobBase, RunResult, Verdict

CACHEABLE = {Verdict.OK, Verdict.ERROR}  # deterministic outcomes; a timeout may be load
MEMORY_SIZE = 4096  # runs of snippets and code (a few kB each); trained pipelines are not kept
REMEMBERED_KINDS = ("snippet", "code")


@dataclass(frozen=True)
class Run(Generic[DataT]):
    """A run, the job it ran and the key it is stored under."""

    key: str
    job: JobBase[DataT]
    result: RunResult[DataT]


class _Memory:
    """Stored runs this process has seen, by key; emptied when full (cheap, and rare)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.runs: dict[str, RunResult[Any]] = {}
        self.lock = threading.Lock()

    def get(self, key: str) -> RunResult[Any] | None:
        return self.runs.get(key)

    def put(self, key: str, kind: str, result: RunResult[Any]) -> None:
        if kind not in REMEMBERED_KINDS:
            return
        with self.lock:
            if len(self.runs) >= self.size:
                self.runs.clear()
            self.runs[key] = result


_memory = _Memory(MEMORY_SIZE)


def run_of(job: JobBase[DataT], result: RunResult[DataT]) -> Run[DataT]:
    """A run just made, with its key."""
    return Run(run_key(job), job, result)


def find(session: Session, job: JobBase[DataT]) -> Run[DataT] | None:
    """The stored run of `job`, if there is one (reads at most one row; none if this
    process has seen it)."""
    key = run_key(job)
    result: RunResult[DataT] | None = find_by_key(session, key, job.result_type)
    return Run(key, job, result) if result is not None else None


def find_by_key(
    session: Session, key: str, result_type: type[RunResult[DataT]]
) -> RunResult[DataT] | None:
    """The stored run under `key`, read as a `result_type` (an attempt names the run its
    key came from)."""
    remembered = _memory.get(key)
    if remembered is not None:
        found: RunResult[DataT] = remembered
        return found
    row = session.execute(
        select(SandboxRun.result, SandboxRun.kind).where(SandboxRun.key == key)
    ).first()
    if row is None:
        return None
    parsed = result_type.model_validate(row.result)
    _memory.put(key, row.kind, parsed)
    return parsed


def keep(session: Session, run: Run[Any]) -> None:
    """Store a run (once per key; a concurrent duplicate is ignored) — part of the caller's
    write transaction. Runs that ended in a time-out or a crash are not kept: that may have
    been the load, not the code."""
    if run.result.status not in CACHEABLE:
        return
    kind = str(getattr(run.job, "kind", ""))
    values = {
        "key": run.key,
        "kind": kind,
        "torch_version": torch_version(),
        "result": run.result.to_store(),
    }
    dialect = session.get_bind().dialect.name
    statement: Executable
    if dialect == "sqlite":
        statement = sqlite_insert(SandboxRun).values(values).on_conflict_do_nothing()
    elif dialect == "postgresql":
        statement = postgresql_insert(SandboxRun).values(values).on_conflict_do_nothing()
    else:
        if session.get(SandboxRun, run.key) is not None:
            return
        statement = insert(SandboxRun).values(values)
    session.execute(statement)
    _memory.put(run.key, kind, run.result)


def count(session: Session, *kinds: str) -> int:
    """How many runs of these kinds are stored."""
    query = select(func.count()).select_from(SandboxRun).where(SandboxRun.kind.in_(kinds))
    return session.scalar(query) or 0
