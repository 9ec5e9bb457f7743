"""Messages between the web process and the runner, and how they are framed on a pipe.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON.
"""

from __future__ import annotations

import json
import os
import struct
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from app.sandbox.specs import LrOnlySpec, PipelineSpec

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


class Message(BaseModel):
    """Base of every message: frozen, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Record(BaseModel):
    """Base of what a run produced: frozen; fields it does not know are left out, so that
    a run stored by a newer version still reads (instances of a course share the store)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


# --- what a run recorded, by kind of job ---------------------------------------------------
#
# A code question's run executes the learner's code in the same process as the harness that
# reports on it, so its report can be forged: its shape is checked, and what is stored or shown
# is bounded.

MAX_PARAM_GROUPS = 64
MAX_NAME_CHARS = 200
MAX_WARNINGS = 20  # a run's warnings kept, at most…
MAX_MESSAGE_CHARS = 2000  # …and the characters of a message or traceback
MAX_PARAMS = 200  # a scheduler's attributes shown, and the items of a list among them
Plain = bool | int | float | str


class SchedulerInfo(Record):
    """What the harness says `scheduler` is: its type and plain attributes."""

    type: str = Field(max_length=MAX_NAME_CHARS)
    params: dict[str, Plain | list[Plain]] = Field(default_factory=dict, max_length=MAX_PARAMS)


class CodeData(Record):
    """What a code question's run recorded: the LRs of every param group at every step, and
    what `scheduler` is."""

    trajectory: list[Annotated[list[float], Field(max_length=MAX_PARAM_GROUPS)]]
    scheduler: SchedulerInfo | None = None


class EpochRecord(Record):
    """One epoch of a training run: the LR it used, the losses and accuracy after it."""

    epoch: int  # from 0 (runs recorded before counted from 1: the web numbers by position)
    lr: float
    lrs: list[float]
    train_loss: float
    test_loss: float
    test_accuracy: float
    lr_after: float  # what the scheduler set after the epoch


class LayerShape(Record):
    """A layer of the model and the shapes of its parameters (torch's: outputs × inputs)."""

    name: str
    weight: list[int] | None = None
    bias: list[int] | None = None


class Stage(Record):
    """One stage of the data flow, with real shapes and a few real rows."""

    name: str
    input: str
    output: str
    sample: list[list[float]] = Field(default_factory=list)
    layers: list[LayerShape] = Field(default_factory=list)


class LayerOutput(Record):
    """What one layer made of the traced sample."""

    name: str
    values: list[float]


class Prediction(Record):
    """One test sample through the layers."""

    input: list[float]
    layers: list[LayerOutput]
    probabilities: list[float]
    predicted: int
    label: int


class PipelineData(Record):
    """What training a pipeline recorded."""

    stages: list[Stage]
    epochs: list[EpochRecord]
    prediction: Prediction
    parameters: int
    batches_per_epoch: int


class LrOnlyData(Record):
    """A scheduler stepped alone: the LR before and after each step."""

    lr: list[float]
    lr_after: list[float]


# --- results --------------------------------------------------------------------------------


class TraceEvent(Record):
    """The learning rate of every param group right after one optimizer or scheduler step."""

    kind: Literal["optimizer", "scheduler"]
    name: str  # class name, e.g. "SGD" or "StepLR"
    call: int  # 1-based count of steps of that object
    line: int | None  # line of the snippet that made the call
    lrs: list[float]


class WarningRecord(Record):
    """A warning the code raised."""

    category: str
    message: str
    line: int | None


class ErrorInfo(Record):
    """An exception the code raised, with the traceback trimmed to the snippet's own lines."""

    type: str
    message: str
    line: int | None
    traceback: str


DataT = TypeVar("DataT")


class RunResult(Record, Generic[DataT]):
    """Everything a run produced; `data` is what a job of its kind records. `status` is the
    runner's verdict."""

    status: Verdict
    stdout: str = ""
    stderr: str = ""
    value: str | None = None  # repr() of the expression, when one was asked
    data: DataT | None = None
    error: ErrorInfo | None = None
    trace: list[TraceEvent] = Field(default_factory=list)
    trace_truncated: bool = False
    warnings: list[WarningRecord] = Field(default_factory=list)
    duration_ms: float = 0.0
    detail: str = ""  # the runner's own explanation, e.g. which limit was hit
    timings: dict[str, float] = Field(
        default_factory=dict,
        description="Where the run's time went, in ms, as the runner measured it (see "
        "app.sandbox.runner.STAGES); not stored.",
    )

    @property
    def sentence(self) -> str:
        """The verdict as a sentence for a learner."""
        return VERDICT_SENTENCES[self.status]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (floats stay floats: a learning rate may be inf)."""
        return self.model_dump()

    def to_store(self) -> dict[str, Any]:
        """What is stored of a run: everything it produced, not how long that took here."""
        return self.model_dump(exclude={"timings"})


# --- what the runner says of itself ------------------------------------------------------------


class SchedulerParam(Record):
    """One parameter of a scheduler's constructor, as torch's signature has it."""

    name: str
    kind: str  # "int", "float", "bool", "choice", "int-list", "float-or-list", "schedulers", …
    choices: list[str] = Field(default_factory=list)
    required: bool
    default: Any = None


class SchedulerSignature(Record):
    """A scheduler of torch.optim.lr_scheduler the playground offers: its summary and
    parameters (the optimizer left out)."""

    doc: str
    params: list[SchedulerParam]


Catalog = dict[str, SchedulerSignature]
CATALOG_ADAPTER: TypeAdapter[Catalog] = TypeAdapter(Catalog)


# --- jobs -----------------------------------------------------------------------------------


class JobBase(Message, Generic[DataT]):
    """What every job has: a time limit, and the seed of torch's and random's generators."""

    result_type: ClassVar[type[RunResult[Any]]]
    timeout_s: float = 5.0
    seed: int = 0

    def parse_result(self, data: Any) -> RunResult[DataT]:
        """This job's result from its JSON form (ValidationError if it is not one)."""
        result: RunResult[DataT] = self.result_type.model_validate(data)
        return result

    def bound(self, claimed: dict[str, Any]) -> dict[str, Any]:
        """What a child claims of its run, cut to what may be stored or shown (before it is
        validated: a forged report may be megabytes): names to MAX_NAME_CHARS, messages to
        MAX_MESSAGE_CHARS, at most MAX_WARNINGS warnings."""
        warnings = claimed.get("warnings")
        if isinstance(warnings, list):
            claimed["warnings"] = [
                _cut(w, {"category": MAX_NAME_CHARS, "message": MAX_MESSAGE_CHARS})
                for w in warnings[:MAX_WARNINGS]
            ]
        claimed["error"] = _cut(
            claimed.get("error"),
            {"type": MAX_NAME_CHARS, "message": MAX_MESSAGE_CHARS, "traceback": -MAX_MESSAGE_CHARS},
        )
        return claimed


def _cut(record: Any, limits: dict[str, int]) -> Any:
    """A claimed record with its strings cut to their limits (negative: keep the end)."""
    if not isinstance(record, dict):
        return record
    cut = dict(record)
    for name, limit in limits.items():
        text = cut.get(name)
        if isinstance(text, str):
            cut[name] = text[limit:] if limit < 0 else text[:limit]
    return cut


class SnippetJob(JobBase[None]):
    """Run `code`; the key is what it prints, or the value of `expression` after it."""

    result_type = RunResult[None]
    kind: Literal["snippet"] = "snippet"
    code: str
    expression: str | None = None


class Drive(Message):
    """How a code question's run is driven: by the code's own loop, or by the checker stepping
    `scheduler` for `epochs` × `steps_per_epoch` steps (ReduceLROnPlateau fed `metrics`)."""

    drive: Literal["scheduler", "loop"]
    epochs: int
    steps_per_epoch: int
    metrics: list[float] = Field(default_factory=list)


class CodeJob(JobBase[CodeData]):
    """A code question's answer (the learner's, or the reference): `setup`, then `code`."""

    result_type = RunResult[CodeData]
    kind: Literal["code"] = "code"
    code: str
    setup: str
    drive: Drive

    def bound(self, claimed: dict[str, Any]) -> dict[str, Any]:
        """As every job's; and at most one step more than the check takes, the scheduler
        described by at most MAX_PARAMS short plain attributes."""
        claimed = super().bound(claimed)
        data = claimed.get("data")
        if not isinstance(data, dict):
            return claimed
        if isinstance(data.get("trajectory"), list):
            steps = self.drive.epochs * self.drive.steps_per_epoch
            data["trajectory"] = data["trajectory"][: steps + 1]
        scheduler = data.get("scheduler")
        if isinstance(scheduler, dict):
            data["scheduler"] = _cut(scheduler, {"type": MAX_NAME_CHARS})
            params = scheduler.get("params")
            if isinstance(params, dict):
                data["scheduler"]["params"] = {
                    str(name)[:MAX_NAME_CHARS]: _plain(value)
                    for name, value in list(params.items())[:MAX_PARAMS]
                }
        return claimed


def _plain(value: Any) -> Any:
    """A scheduler attribute as it may be shown: short strings, short lists."""
    if isinstance(value, str):
        return value[:MAX_NAME_CHARS]
    if isinstance(value, list):
        return [_plain(item) for item in value[:MAX_PARAMS]]
    return value


class PipelineJob(JobBase[PipelineData]):
    """Train a pipeline from its spec, recording every epoch."""

    result_type = RunResult[PipelineData]
    kind: Literal["pipeline"] = "pipeline"
    spec: PipelineSpec


class LrOnlyJob(JobBase[LrOnlyData]):
    """Step a scheduler alone, without training."""

    result_type = RunResult[LrOnlyData]
    kind: Literal["lr-only"] = "lr-only"
    spec: LrOnlySpec


Job = Annotated[SnippetJob | CodeJob | PipelineJob | LrOnlyJob, Field(discriminator="kind")]
JOB_ADAPTER: TypeAdapter[SnippetJob | CodeJob | PipelineJob | LrOnlyJob] = TypeAdapter(Job)
AnyJob = SnippetJob | CodeJob | PipelineJob | LrOnlyJob


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
