"""Messages between the web process and the runner, and how they are framed on a pipe.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

HEADER = struct.Struct(">I")
MAX_FRAME = 8 * 1024 * 1024  # a result with a long trace stays far below this


class Verdict(StrEnum):
    """How a run ended, as decided by the runner."""

    OK = "ok"
    ERROR = "error"  # the code raised an exception
    TIMEOUT = "timeout"
    MEMORY = "memory"
    OUTPUT_LIMIT = "output-limit"
    FORBIDDEN = "forbidden"  # the code tried something the sandbox does not allow
    CRASHED = "crashed"


VERDICT_SENTENCES = {
    Verdict.OK: "The code ran to the end.",
    Verdict.ERROR: "The code raised an exception.",
    Verdict.TIMEOUT: "The code took too long and was stopped.",
    Verdict.MEMORY: "The code used more memory than allowed and was stopped.",
    Verdict.OUTPUT_LIMIT: "The code wrote more output than allowed and was stopped.",
    Verdict.FORBIDDEN: "The code tried to do something that is not allowed here "
    "(network, processes, files outside its scratch space, …) and was stopped.",
    Verdict.CRASHED: "The code crashed the Python process or exited without a result.",
}


JOB_KINDS = ("snippet", "pipeline", "lr-only", "code")


@dataclass(frozen=True)
class Job:
    """What to run: a snippet (code, and optionally an expression evaluated afterwards); a
    code question's answer (`code`, with `spec` holding its setup and check); or a training
    pipeline / a scheduler alone from a validated spec (app.traces.spec)."""

    code: str = ""
    expression: str | None = None
    timeout_s: float = 5.0
    seed: int = 0  # torch.manual_seed and random.seed before the code runs
    kind: str = "snippet"  # one of JOB_KINDS
    spec: dict[str, Any] | None = None


@dataclass(frozen=True)
class TraceEvent:
    """The learning rate of every param group right after one optimizer or scheduler step."""

    kind: str  # "optimizer" | "scheduler"
    name: str  # class name, e.g. "SGD" or "StepLR"
    call: int  # 1-based count of steps of that object
    line: int | None  # line of the snippet that made the call
    lrs: list[float]


@dataclass(frozen=True)
class WarningRecord:
    """A warning the code raised."""

    category: str
    message: str
    line: int | None


@dataclass(frozen=True)
class ErrorInfo:
    """An exception the code raised, with the traceback trimmed to the snippet's own lines."""

    type: str
    message: str
    line: int | None
    traceback: str


@dataclass(frozen=True)
class RunResult:
    """Everything a run produced. `status` is the runner's verdict."""

    status: Verdict
    stdout: str = ""
    stderr: str = ""
    value: str | None = None  # repr() of the expression, when one was asked
    data: dict[str, Any] | None = None  # what a pipeline or LR-only run recorded
    error: ErrorInfo | None = None
    trace: list[TraceEvent] = field(default_factory=list)
    trace_truncated: bool = False
    warnings: list[WarningRecord] = field(default_factory=list)
    duration_ms: float = 0.0
    detail: str = ""  # the runner's own explanation, e.g. which limit was hit

    @property
    def sentence(self) -> str:
        """The verdict as a sentence for a learner."""
        return VERDICT_SENTENCES[self.status]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (by hand: dataclasses.asdict deep-copies, and this is on every
        result's path twice)."""
        return {
            "status": self.status.value,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "value": self.value,
            "data": self.data,
            "error": dict(vars(self.error)) if self.error else None,
            "trace": [dict(vars(event)) for event in self.trace],
            "trace_truncated": self.trace_truncated,
            "warnings": [dict(vars(warning)) for warning in self.warnings],
            "duration_ms": self.duration_ms,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunResult:
        """Rebuild a result from `to_json()` output."""
        error = data.get("error")
        return cls(
            status=Verdict(data["status"]),
            stdout=data.get("stdout", ""),
            stderr=data.get("stderr", ""),
            value=data.get("value"),
            data=data.get("data"),
            error=ErrorInfo(**error) if error else None,
            trace=[TraceEvent(**event) for event in data.get("trace", [])],
            trace_truncated=bool(data.get("trace_truncated", False)),
            warnings=[WarningRecord(**w) for w in data.get("warnings", [])],
            duration_ms=float(data.get("duration_ms", 0.0)),
            detail=data.get("detail", ""),
        )


def encode(message: Any) -> bytes:
    """One frame holding `message` as JSON."""
    payload = json.dumps(message, separators=(",", ":")).encode()
    return HEADER.pack(len(payload)) + payload


def write_frame(fd: int, message: Any) -> None:
    """Write one whole frame to a blocking file descriptor."""
    write_all(fd, encode(message))


def write_all(fd: int, frame: bytes) -> None:
    """Write all of `frame` to a blocking file descriptor."""
    data = memoryview(frame)
    while data:
        written = os.write(fd, data)
        data = data[written:]


def read_exact(fd: int, size: int) -> bytes | None:
    """Read exactly `size` bytes from a blocking descriptor; None at end of file."""
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> Any:
    """Read one frame from a blocking descriptor; None at end of file."""
    header = read_exact(fd, HEADER.size)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    if size > MAX_FRAME:
        raise ValueError(f"frame of {size} bytes is over the limit")
    payload = read_exact(fd, size)
    return None if payload is None else json.loads(payload)


class FrameBuffer:
    """Collects bytes from a non-blocking pipe and yields whole frames."""

    def __init__(self, limit: int = MAX_FRAME) -> None:
        self.buffer = bytearray()
        self.limit = limit

    def feed(self, data: bytes) -> list[Any]:
        """Add bytes; return the frames they complete. Raises ValueError on oversize frames."""
        self.buffer += data
        frames = []
        while len(self.buffer) >= HEADER.size:
            (size,) = HEADER.unpack_from(self.buffer)
            if size > self.limit:
                raise ValueError(f"frame of {size} bytes is over the limit of {self.limit}")
            if len(self.buffer) < HEADER.size + size:
                break
            payload = bytes(self.buffer[HEADER.size : HEADER.size + size])
            del self.buffer[: HEADER.size + size]
            frames.append(json.loads(payload))
        return frames
