"""What runs inside a child: the snippet, with its output, value, warnings and LR trace recorded.

`install_tracing()` runs once in the runner, before any fork; `run(job)` runs in a child.
Nothing here is a security boundary — the child is already locked down when it gets here.
"""

from __future__ import annotations

import builtins
import errno
import functools
import linecache
import random
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from types import FrameType
from typing import Any, Literal

import torch
from torch.optim import lr_scheduler
from torch.optim.optimizer import Optimizer, register_optimizer_step_post_hook

from app.sandbox import training
from app.sandbox.protocol import (
    AnyJob,
    CodeData,
    CodeJob,
    Drive,
    ErrorInfo,
    LrOnlyJob,
    PipelineJob,
    RunResult,
    SnippetJob,
    TraceEvent,
    Verdict,
    WarningRecord,
)
from app.sandbox.specs import SCHEDULERS

SNIPPET = "<snippet>"  # the code under test: a snippet, or a learner's answer
EXPRESSION = "<expression>"
SETUP = "<setup>"  # a code question's given code, run before the learner's
MAX_TRACE_EVENTS = 10_100  # a 5000-step loop check is 10,000 events; a little more
MAX_MESSAGE = 2000  # characters of an exception or warning message kept


class _Tracer:
    """Records LR trace events while `active`; steps nested in other steps are not recorded."""

    def __init__(self) -> None:
        self.active = False
        self.depth = 0
        self.events: list[TraceEvent] = []
        self.truncated = False
        self.counts: dict[int, int] = {}

    def record(
        self, kind: Literal["optimizer", "scheduler"], owner: object, optimizer: Optimizer
    ) -> None:
        if not self.active or self.depth:
            return
        if len(self.events) >= MAX_TRACE_EVENTS:
            self.truncated = True
            return
        count = self.counts[id(owner)] = self.counts.get(id(owner), 0) + 1
        self.events.append(
            TraceEvent(
                kind=kind,
                name=type(owner).__name__,
                call=count,
                line=_snippet_line(sys._getframe(2)),
                lrs=[float(group["lr"]) for group in optimizer.param_groups],
            )
        )


TRACER = _Tracer()


def _snippet_line(frame: FrameType | None) -> int | None:
    while frame is not None:
        if frame.f_code.co_filename == SNIPPET:
            return frame.f_lineno
        frame = frame.f_back
    return None


def _optimizer_post_hook(optimizer: Optimizer, _args: Any, _kwargs: Any) -> None:
    TRACER.record("optimizer", optimizer, optimizer)


def _traced_step(step: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(step)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        TRACER.depth += 1
        try:
            result = step(self, *args, **kwargs)
        finally:
            TRACER.depth -= 1
        TRACER.record("scheduler", self, self.optimizer)
        return result

    return wrapper


def _untraced(method: Callable[..., Any]) -> Callable[..., Any]:
    """Steps a scheduler takes while being constructed are not the learner's steps."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        TRACER.depth += 1
        try:
            return method(self, *args, **kwargs)
        finally:
            TRACER.depth -= 1

    return wrapper


def install_tracing() -> None:
    """Hook every optimizer step and wrap every scheduler's `step` and `__init__`."""
    register_optimizer_step_post_hook(_optimizer_post_hook)
    for value in vars(lr_scheduler).values():
        if isinstance(value, type) and issubclass(value, lr_scheduler.LRScheduler):
            if "step" in value.__dict__:
                value.step = _traced_step(value.__dict__["step"])  # type: ignore[method-assign]
            if "__init__" in value.__dict__:
                value.__init__ = _untraced(value.__dict__["__init__"])  # type: ignore[method-assign]


_WHERE = {SNIPPET: "line {}", EXPRESSION: "in the expression", SETUP: "in the given code, line {}"}


def _error_info(exc: BaseException) -> ErrorInfo:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename in _WHERE]
    lines = [f"{_WHERE[f.filename].format(f.lineno)}: {f.line}" for f in frames]
    line = frames[-1].lineno if frames and frames[-1].filename == SNIPPET else None
    if isinstance(exc, SyntaxError) and exc.filename == SNIPPET:
        line = exc.lineno
        lines.append(f"line {exc.lineno}: {(exc.text or '').strip()}")
    message = str(exc)[:MAX_MESSAGE]
    lines.append(f"{type(exc).__name__}: {message}")
    return ErrorInfo(
        type=type(exc).__name__, message=message, line=line, traceback="\n".join(lines)
    )


def _is_memory_error(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)
    )


def _is_forbidden(exc: BaseException) -> bool:
    return isinstance(exc, PermissionError)


def _is_output_limit(exc: BaseException) -> bool:
    """A file over the size limit (EFBIG; Python ignores SIGXFSZ) or a full scratch space."""
    return isinstance(exc, OSError) and exc.errno in (errno.EFBIG, errno.ENOSPC, errno.EDQUOT)


def run(job: AnyJob) -> RunResult[Any]:
    """Run a job and describe what happened."""
    if isinstance(job, SnippetJob):
        return run_snippet(job)
    if isinstance(job, CodeJob):
        return run_code(job)
    return run_spec(job)


def run_spec(job: PipelineJob | LrOnlyJob) -> RunResult[Any]:
    """Train a pipeline, or step a scheduler alone, from a spec; the numbers go in `data`."""
    torch.default_generator.manual_seed(job.seed)
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            spec = job.spec.model_dump(mode="json")
            record = (
                training.record_pipeline
                if isinstance(job, PipelineJob)
                else training.record_lr_only
            )
            data = record(spec)  # its shape is checked by the runner, as every result's
        except Exception as exc:
            return RunResult(
                status=Verdict.MEMORY if _is_memory_error(exc) else Verdict.ERROR,
                error=ErrorInfo(
                    type=type(exc).__name__,
                    message=str(exc)[:MAX_MESSAGE],
                    line=None,
                    traceback=f"{type(exc).__name__}: {exc}",
                ),
                duration_ms=(time.perf_counter() - started) * 1000,
            )
    return RunResult(
        status=Verdict.OK,
        data=data,
        warnings=[
            WarningRecord(
                category=w.category.__name__, message=str(w.message)[:MAX_MESSAGE], line=None
            )
            for w in caught
        ],
        duration_ms=(time.perf_counter() - started) * 1000,
    )


def _verdict_of(exc: BaseException) -> Verdict:
    if _is_memory_error(exc):
        return Verdict.MEMORY
    if _is_forbidden(exc):
        return Verdict.FORBIDDEN
    if _is_output_limit(exc):
        return Verdict.OUTPUT_LIMIT
    return Verdict.ERROR


def _execute(job: SnippetJob | CodeJob, body: Callable[[dict[str, Any]], Any]) -> RunResult[Any]:
    """Run `body(namespace)` as the snippet's run: seeded, its warnings attributed to the
    snippet's lines, every optimizer and scheduler step traced, any exception a result.
    `body` returns the run's `value` (a repr) or `data` (a dict)."""
    for name, text in (
        (SNIPPET, job.code),
        (EXPRESSION, (job.expression or "") if isinstance(job, SnippetJob) else ""),
        (SETUP, job.setup if isinstance(job, CodeJob) else ""),
    ):
        # Tracebacks quote the code's own lines: let linecache find them.
        linecache.cache[name] = (len(text), None, text.splitlines(True), name)
    # The CPU generator only: torch.manual_seed also seeds every accelerator backend, which
    # costs ~4 ms in a freshly forked process and means nothing on a CPU-only runner.
    torch.default_generator.manual_seed(job.seed)
    random.seed(job.seed)
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    status, outcome, error = Verdict.OK, None, None
    started = time.perf_counter()
    caught: list[WarningRecord] = []

    def record_warning(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        *_: object,
        **__: object,
    ) -> None:
        # Called where the warning is raised: attribute it to the snippet's line, even when
        # torch raised it from deep inside a scheduler.
        line = lineno if filename == SNIPPET else _snippet_line(sys._getframe(1))
        caught.append(
            WarningRecord(category=category.__name__, message=str(message)[:MAX_MESSAGE], line=line)
        )

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = record_warning
        TRACER.active = True
        try:
            outcome = body(namespace)
        except BaseException as exc:
            error = _error_info(exc)
            status = _verdict_of(exc)
        finally:
            TRACER.active = False
            sys.stdout.flush()
            sys.stderr.flush()
    return RunResult(
        status=status,
        value=outcome if isinstance(outcome, str) else None,
        data=outcome if isinstance(outcome, dict) else None,
        error=error,
        trace=TRACER.events,
        trace_truncated=TRACER.truncated,
        warnings=caught,
        duration_ms=(time.perf_counter() - started) * 1000,
    )


def run_snippet(job: SnippetJob) -> RunResult[None]:
    """Run a job's snippet (and expression) and describe what happened.

    The snippet's stdout and stderr go straight to the pipes the runner reads; the runner, not
    this function, decides what they contain.
    """

    def body(namespace: dict[str, Any]) -> str | None:
        exec(compile(job.code, SNIPPET, "exec"), namespace)
        if job.expression is None:
            return None
        return repr(eval(compile(job.expression, EXPRESSION, "eval"), namespace))

    return _execute(job, body)


def run_code(job: CodeJob) -> RunResult[CodeData]:
    """A code question's run: the setup, then the learner's (or reference) code, then, unless
    the code is the loop itself, the checker stepping `scheduler` as training would.

    The result's `data` has the `trajectory` — the LR of every param group at every step —
    and what `scheduler` is (type and simple attributes). Line numbers in errors and warnings
    are those of the code the learner wrote.
    """

    def body(namespace: dict[str, Any]) -> dict[str, Any]:
        exec(compile(job.setup, SETUP, "exec"), namespace)
        exec(compile(job.code, SNIPPET, "exec"), namespace)
        scheduler = namespace.get("scheduler")
        if job.drive.drive == "loop":
            trajectory = [event.lrs for event in TRACER.events if event.kind == "optimizer"]
        else:
            if scheduler is None:
                raise NameError("your code must create `scheduler`")
            trajectory = _drive(scheduler, namespace.get("optimizer"), job.drive)
        # Plain data: the runner checks its shape (a learner's code can forge it anyway).
        return {"trajectory": trajectory, "scheduler": _describe(scheduler)}

    return _execute(job, body)


def _drive(scheduler: Any, optimizer: Any, drive: Drive) -> list[list[float]]:
    """Step `scheduler` as a training loop would: for every step, the LRs in force, then
    optimizer.step(), then scheduler.step() (ReduceLROnPlateau: once an epoch, fed the
    check's metric)."""
    # The optimizer the scheduler drives — the learner may have made their own.
    optimizer = getattr(scheduler, "optimizer", None) or optimizer
    if optimizer is None:
        raise TypeError("`scheduler` has no optimizer: create it with one")
    plateau = isinstance(scheduler, lr_scheduler.ReduceLROnPlateau)
    metrics = drive.metrics or [1.0]
    trajectory = []
    for epoch in range(drive.epochs):
        for _ in range(drive.steps_per_epoch):
            trajectory.append([float(group["lr"]) for group in optimizer.param_groups])
            optimizer.step()
            if not plateau:
                scheduler.step()
        if plateau:
            scheduler.step(metrics[min(epoch, len(metrics) - 1)])
    return trajectory


def _describe(scheduler: Any) -> dict[str, Any] | None:
    """A scheduler's type and its plain attributes (numbers, strings, lists of numbers)."""
    if scheduler is None:
        return None
    plain = (bool, int, float, str)
    params = {
        key: value
        for key, value in vars(scheduler).items()
        if not key.startswith("_")
        and (
            isinstance(value, plain)
            or (isinstance(value, list | tuple) and all(isinstance(v, plain) for v in value))
        )
    }
    children = getattr(scheduler, "_schedulers", None)
    if isinstance(children, list):  # SequentialLR, ChainedScheduler
        params["child_types"] = [type(child).__name__ for child in children]
    milestones = getattr(scheduler, "_milestones", None)
    if isinstance(milestones, list):  # SequentialLR keeps them private
        params["milestones"] = [int(m) for m in milestones]
    return {"type": type(scheduler).__name__, "params": params}


REHEARSAL = """\
import torch
opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
for _ in range(3):
    opt.step()
    scheduler.step()
str(opt.param_groups[0]["lr"])
"""


def rehearse() -> None:
    """A typical run, silently, in a fresh child: its first-touch costs are then paid."""
    run(SnippetJob(code=REHEARSAL, expression="scheduler.get_last_lr()"))
    TRACER.events = []
    TRACER.counts.clear()
    TRACER.truncated = False


WARM_PIPELINE: dict[str, Any] = {
    "dataset": {"rows": 64, "features": 4, "classes": 2, "noise": 0.5, "seed": 0},
    "split": {"train": 48, "test": 16},
    "model": [
        {"type": "linear", "inputs": 4, "outputs": 4},
        {"type": "relu"},
        {"type": "linear", "inputs": 4, "outputs": 2},
    ],
    "optimizer": {"name": "SGD", "lr": 0.1, "momentum": 0.0},
    "epochs": 2,
    "batch_size": 16,
    "seed": 0,
}


def _warm_scheduler(name: str) -> dict[str, Any]:
    params: dict[str, dict[str, Any]] = {
        "StepLR": {"step_size": 1},
        "MultiStepLR": {"milestones": [1]},
        "ExponentialLR": {"gamma": 0.9},
        "CosineAnnealingLR": {"T_max": 2},
        "CosineAnnealingWarmRestarts": {"T_0": 2},
        "CyclicLR": {"base_lr": 0.01, "max_lr": 0.1},
        "OneCycleLR": {"max_lr": 0.1, "total_steps": 5},
        "SequentialLR": {"milestones": [1]},
    }
    children = (
        [
            {"name": "ConstantLR", "params": {}, "schedulers": []},
            {"name": "ExponentialLR", "params": {"gamma": 0.9}, "schedulers": []},
        ]
        if name == "SequentialLR"
        else []
    )
    return {"name": name, "params": params.get(name, {}), "schedulers": children}


def warm_up() -> None:
    """Exercise every optimizer and scheduler once, so children start with nothing to load."""
    model = torch.nn.Sequential(torch.nn.Linear(10, 10), torch.nn.ReLU(), torch.nn.Linear(10, 2))
    loss_fn = torch.nn.CrossEntropyLoss()
    inputs, labels = torch.randn(8, 10), torch.randint(0, 2, (8,))
    optimizers = [
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        torch.optim.Adam(model.parameters(), lr=0.01),
        torch.optim.AdamW(model.parameters(), lr=0.01),
        torch.optim.RMSprop(model.parameters(), lr=0.01),
        torch.optim.Adagrad(model.parameters(), lr=0.01),
    ]
    for optimizer in optimizers:
        loss = loss_fn(model(inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    schedulers: list[Any] = [
        lr_scheduler.StepLR(opt, 2),
        lr_scheduler.MultiStepLR(opt, [1, 2]),
        lr_scheduler.ExponentialLR(opt, 0.9),
        lr_scheduler.CosineAnnealingLR(opt, 3),
        lr_scheduler.LinearLR(opt),
        lr_scheduler.ConstantLR(opt),
        lr_scheduler.PolynomialLR(opt),
        lr_scheduler.LambdaLR(opt, lambda e: 1.0),
        lr_scheduler.MultiplicativeLR(opt, lambda e: 0.9),
        lr_scheduler.CosineAnnealingWarmRestarts(opt, 2),
        lr_scheduler.CyclicLR(opt, 0.01, 0.1),
        lr_scheduler.OneCycleLR(opt, 0.1, total_steps=10),
    ]
    schedulers.append(
        lr_scheduler.SequentialLR(
            opt, [lr_scheduler.ConstantLR(opt), lr_scheduler.ExponentialLR(opt, 0.9)], [1]
        )
    )
    schedulers.append(lr_scheduler.ChainedScheduler([lr_scheduler.ExponentialLR(opt, 0.9)]))
    plateau = lr_scheduler.ReduceLROnPlateau(opt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3):
            opt.step()
            for scheduler in schedulers:
                scheduler.step()
                scheduler.get_last_lr()
            plateau.step(1.0)
            opt.state_dict()
    str(torch.tensor([0.5]))  # tensor printing imports its formatting code lazily
    for name in SCHEDULERS:  # the playground's schedulers, in a real (tiny) run
        spec = WARM_PIPELINE | {"scheduler": _warm_scheduler(name)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            training.record_pipeline(spec)
            training.record_lr_only(
                {"lr": 0.1, "scheduler": spec["scheduler"], "steps": 3, "plateau_metric": 1.0}
            )
    _error_info(ValueError("warm"))
    TRACER.events.clear()
    TRACER.counts.clear()
