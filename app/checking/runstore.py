"""The store of runs: every run a key, a worked solution or a trace comes from, by run key.

One table (`sandbox_runs`) holds them all, whatever their kind. A stored run never changes:
its key names the job and the torch version that made it. So this process also remembers the
snippet and code runs it has read from the table (up to MEMORY_WEIGHT steps and trace events
in all): on every instance of a course, a remembered run is the stored one, and a graded
answer whose key this process has read before reads no row. Only what was read is remembered
— a run being written may yet be rolled back.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Generic

from pydantic import ValidationError
from sqlalchemy import Executable, func, insert, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.checking.jobs import run_key, torch_version
from app.models import SandboxRun
from app.sandbox.protocol import CodeData, DataT, JobBase, RunResult, Verdict

CACHEABLE = {Verdict.OK, Verdict.ERROR}  # deterministic outcomes; a timeout may be load
# Remembered runs, weighed by their steps and trace events (a few hundred bytes each): a
# bank's keys weigh a few thousand; a long reference run, up to ~10,000.
MEMORY_WEIGHT = 200_000
REMEMBERED_KINDS = ("snippet", "code")


@dataclass(frozen=True)
class Run(Generic[DataT]):
    """A run, the job it ran and the key it is stored under."""

    key: str
    job: JobBase[DataT]
    result: RunResult[DataT]


def _weight(result: RunResult[Any]) -> int:
    steps = len(result.data.trajectory) if isinstance(result.data, CodeData) else 0
    return 1 + len(result.trace) + steps


class _Memory:
    """Stored runs this process has read, by key; emptied when full (cheap, and rare)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.runs: dict[str, RunResult[Any]] = {}
        self.weight = 0
        self.lock = threading.Lock()

    def get(self, key: str) -> RunResult[Any] | None:
        return self.runs.get(key)

    def put(self, key: str, kind: str, result: RunResult[Any]) -> None:
        if kind not in REMEMBERED_KINDS:
            return
        weight = _weight(result)
        with self.lock:
            if self.weight + weight > self.capacity:
                self.runs.clear()
                self.weight = 0
            if key not in self.runs:
                self.runs[key] = result
                self.weight += weight

    def forget(self) -> None:
        with self.lock:
            self.runs.clear()
            self.weight = 0


_memory = _Memory(MEMORY_WEIGHT)


def forget() -> None:
    """Forget the runs this process remembers (a test's database is replaced by the next)."""
    _memory.forget()


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
    try:
        parsed = result_type.model_validate(row.result)
    except ValidationError:
        return None  # not a run of this kind: as good as not stored
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


def count(session: Session, *kinds: str) -> int:
    """How many runs of these kinds are stored."""
    query = select(func.count()).select_from(SandboxRun).where(SandboxRun.kind.in_(kinds))
    return session.scalar(query) or 0
