"""What the web asks of traces: a pattern's recorded run, and playground runs.

Every run happens in the sandbox; its result is stored by (kind, spec, torch version), so a
page view never trains.
"""

from __future__ import annotations

import itertools
import math
import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy.orm import Session

from app.bank.service import PatternView
from app.checking import runstore
from app.checking.jobs import pipeline_job, run_key
from app.db import begin_write, end_read
from app.errors import Busy, Invalid, NotFound
from app.sandbox.client import Sandbox, SandboxUnavailable
from app.sandbox.protocol import (
    JobBase,
    LrOnlyData,
    LrOnlyJob,
    PipelineData,
    PipelineJob,
    Prediction,
    RunResult,
    Stage,
    Verdict,
)
from app.sandbox.scheduler import SYSTEM, Owner

PIPELINE = "pipeline"
LR_ONLY = "lr-only"
TraceJob = PipelineJob | LrOnlyJob


class RunRefused(Invalid):
    """torch refused a spec (a parameter it rejects); `errors` maps fields to messages."""

    def __init__(self, errors: dict[str, str]) -> None:
        message = "; ".join(f"{name}: {text}" for name, text in errors.items())
        super().__init__(message, field=next(iter(errors)))
        self.errors = errors


# --- what a trace looks like to the web -------------------------------------------------------


@dataclass(frozen=True)
class Epoch:
    """One epoch (or, LR-only, one step): the LR used during it and what happened. Counted
    from 0, as `for epoch in range(n)` does: epoch e trains at the rate set by e calls of
    `scheduler.step()`."""

    epoch: int
    lr: float
    lr_after: float
    train_loss: float | None = None
    test_loss: float | None = None
    test_accuracy: float | None = None
    observations: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TraceView:
    """A recorded run, ready to show."""

    kind: str
    key: str
    spec: dict[str, Any]
    epochs: list[Epoch]
    stages: list[Stage] = field(default_factory=list)
    prediction: Prediction | None = None
    parameters: int | None = None

    @property
    def lr_changes(self) -> list[int]:
        """Epochs whose LR differs from the epoch before."""
        return [b.epoch for a, b in zip(self.epochs, self.epochs[1:], strict=False) if b.lr != a.lr]

    @cached_property  # asked for by every row of the epochs table
    def lr_jumps(self) -> list[int]:
        """Epochs the LR jumps to — the ones worth a highlight (see `lr_jumps`)."""
        return lr_jumps([e.epoch for e in self.epochs], [e.lr for e in self.epochs])

    @property
    def diverged_at(self) -> int | None:
        """The first epoch whose loss is not a finite number (training diverged), if any."""
        return next(
            (
                e.epoch
                for e in self.epochs
                if any(
                    loss is not None and not math.isfinite(loss)
                    for loss in (e.train_loss, e.test_loss)
                )
            ),
            None,
        )

    @property
    def lr_after_last(self) -> float:
        """The LR the scheduler set after the last epoch (which nothing trained with)."""
        return self.epochs[-1].lr_after


# What a highlight of "the LR changed here" is for: the moments a schedule breaks its course.
# A change is a jump when it comes after the LR held steady (a staircase's step: StepLR,
# MultiStepLR, ReduceLROnPlateau), or turns against the LR's course and is not followed on
# (a warm restart: up once, then down again; a first change that the next does not carry
# on). A change that carries on a course — cosine, exponential, a linear warm-up, a smooth
# turn — is the curve itself: marking those would mark every epoch of a cosine run, and say
# nothing the line does not. Neither is anything marked when jumps are over this share of
# the epochs (an LR that flips up and down every epoch).
MAX_JUMP_SHARE = 0.5


def lr_jumps(epochs: list[int], lrs: list[float]) -> list[int]:
    """The epochs (of `epochs`, whose LRs are `lrs`) that the LR jumps to, by the rule above."""
    moves = [(b > a) - (b < a) for a, b in itertools.pairwise(lrs)]  # into epochs[i + 1]
    jumps = []
    for i, move in enumerate(moves):
        before = moves[i - 1] if i else None
        after = moves[i + 1] if i + 1 < len(moves) else None
        if move and (before == 0 or (before != move and after != move)):
            jumps.append(epochs[i + 1])
    return jumps if len(jumps) <= MAX_JUMP_SHARE * len(epochs) else []


def _percent(a: float, b: float) -> str:
    return f"{abs(b - a) / a:.0%}" if a else "—"


def _non_finite(epoch: dict[str, Any]) -> tuple[str, str] | None:
    """Which loss of an epoch is not a finite number, and what it is instead, in words
    (None: both losses are numbers)."""
    for name, key in (("training", "train_loss"), ("test", "test_loss")):
        value = epoch[key]
        if not math.isfinite(value):
            return name, "nan (not a number)" if math.isnan(value) else f"{value} (infinite)"
    return None


# A test loss that rises while the training loss falls for an epoch or two is as often the
# bounce of the epochs' last steps (SGD with a large step: the lesson's run does it) as the
# start of overfitting; this many epochs in a row is a trend worth naming.
OVERFITTING_EPOCHS = 3


def observations(epochs: list[dict[str, Any]]) -> list[list[str]]:
    """What happened in each epoch (counted from 0: `epochs[e]` is epoch e, trained at the
    rate set by e calls of scheduler.step()), in words, from the numbers alone."""
    notes: list[list[str]] = []
    best = -1.0
    diverging = 0  # epochs in a row whose test loss rose while their training loss fell
    for index, epoch in enumerate(epochs):
        said = []
        apart, diverging = diverging, 0
        previous = epochs[index - 1] if index else None
        if previous is None:
            said.append(
                f"First epoch (epoch 0), at learning rate {epoch['lr']:g}: no scheduler.step() yet."
            )
        elif epoch["lr"] != previous["lr"]:
            factor = epoch["lr"] / previous["lr"] if previous["lr"] else float("inf")
            verb = "cut" if factor < 1 else "raised"
            said.append(
                f"The scheduler {verb} the learning rate from {previous['lr']:g} to "
                f"{epoch['lr']:g} (×{factor:.3g}) at the end of epoch {index - 1}: this "
                f"epoch trains at the rate set by {index} calls of scheduler.step()."
            )
        broken = _non_finite(epoch)
        if broken is not None:  # only a loss that really is no number: one that rose is not
            name, what = broken
            if previous is None or _non_finite(previous) is None:
                lr = epoch["lr"]
                cause = (
                    f"the learning rate ({lr:g}) was too large, and every step overshot further"
                    if math.isfinite(lr)
                    else f"the learning rate itself is {lr:g}"
                )
                said.append(f"Training diverged: the {name} loss is {what} — {cause}.")
            else:
                said.append(f"The loss is still {what}: training has not recovered.")
        elif previous is not None and _non_finite(previous) is None:
            if epoch["test_loss"] < previous["test_loss"]:
                said.append(
                    f"Test loss fell {_percent(previous['test_loss'], epoch['test_loss'])}."
                )
            elif epoch["test_loss"] > previous["test_loss"]:
                rose = _percent(previous["test_loss"], epoch["test_loss"])
                if epoch["train_loss"] < previous["train_loss"]:
                    diverging = apart + 1
                    said.append(
                        f"Test loss rose {rose} while training loss fell, "
                        f"{diverging} epochs running: the model is starting to fit the "
                        "training set more than the task."
                        if diverging >= OVERFITTING_EPOCHS
                        else f"Test loss rose {rose} while training loss fell: a rise or two "
                        "can be the bounce of the last steps; if it lasts, the model is "
                        "fitting the training set more than the task."
                    )
                else:
                    said.append(f"Test loss rose {rose}: the step size may be too large here.")
        if epoch["test_accuracy"] > best and broken is None:
            if previous is not None:
                said.append(f"Best test accuracy so far: {epoch['test_accuracy']:.1%}.")
            best = epoch["test_accuracy"]
        if index == len(epochs) - 1 and epoch["lr_after"] != epoch["lr"]:
            said.append(
                f"After this last epoch the scheduler set the learning rate to "
                f"{epoch['lr_after']:g} — no epoch trains with it."
            )
        notes.append(said)
    return notes


def _view(key: str, job: TraceJob, result: RunResult[Any]) -> TraceView:
    spec = job.spec.model_dump(mode="json")
    data = result.data
    if isinstance(data, LrOnlyData):
        epochs = [
            Epoch(epoch=i, lr=lr, lr_after=after)
            for i, (lr, after) in enumerate(zip(data.lr, data.lr_after, strict=True))
        ]
        return TraceView(LR_ONLY, key, spec, epochs)
    assert isinstance(data, PipelineData)
    notes = observations([e.model_dump() for e in data.epochs])
    epochs = [  # numbered by position: runs recorded before this counted from 1
        Epoch(
            epoch=index,
            lr=e.lr,
            lr_after=e.lr_after,
            train_loss=e.train_loss,
            test_loss=e.test_loss,
            test_accuracy=e.test_accuracy,
            observations=note,
        )
        for index, (e, note) in enumerate(zip(data.epochs, notes, strict=True))
    ]
    return TraceView(
        PIPELINE,
        key,
        spec,
        epochs,
        stages=data.stages,
        prediction=data.prediction,
        parameters=data.parameters,
    )


# --- recording ---------------------------------------------------------------------------------


MAX_CACHED_VIEWS = 256  # a stored trace never changes: its parsed view can be kept
_views: dict[str, TraceView] = {}


def _remember(view: TraceView) -> TraceView:
    if len(_views) >= MAX_CACHED_VIEWS:
        _views.clear()
    _views[view.key] = view
    return view


def stored_trace(session: Session, job: TraceJob) -> TraceView | None:
    """The stored run of a trace job, if there is one (reads only: never runs anything)."""
    key = run_key(job)
    if (cached := _views.get(key)) is not None:
        return cached
    result_type: type[RunResult[Any]] = job.result_type
    result = runstore.find_by_key(session, key, result_type)
    return _remember(_view(key, job, result)) if result is not None else None


# Playground runs stored at most (~45 KB each for 200 epochs): anyone can ask for new ones.
MAX_STORED_PLAYGROUND_TRACES = 10_000


def record(
    session: Session,
    sandbox: Sandbox | None,
    job: TraceJob,
    *,
    gate: threading.Semaphore | None = None,
    owner: Owner = SYSTEM,
) -> TraceView:
    """The stored run of a trace job, or a fresh one from the sandbox, run as `owner`'s
    (then stored). With a `gate`, a fresh run needs one of its places, and is Busy at once
    if none is free."""
    if (found := stored_trace(session, job)) is not None:
        return found
    if sandbox is None:
        raise SandboxUnavailable.switched_off()
    full = (
        gate is not None
        and runstore.count(session, PIPELINE, LR_ONLY) >= MAX_STORED_PLAYGROUND_TRACES
    )
    end_read(session)  # hold no connection while the run trains
    if gate is not None and not gate.acquire(blocking=False):
        raise Busy("The playground is busy with other runs: try again in a moment.", retry_after=2)
    try:
        runnable: JobBase[Any] = job
        result = sandbox.run(runnable, owner)
    finally:
        if gate is not None:
            gate.release()
    if result.status is Verdict.ERROR and result.error is not None:
        raise RunRefused({"params": f"torch refused: {result.error.message}"})
    if result.status is not Verdict.OK or result.data is None:
        raise Busy(
            f"The run could not finish ({result.sentence} {result.detail}) Try fewer "
            "epochs, or again in a moment.",
            retry_after=2,
        )
    run = runstore.run_of(job, result)
    view = _remember(_view(run.key, job, result))
    if full:
        return view  # the store is full of playground runs: this one is kept in memory only
    begin_write(session)
    runstore.keep(session, run)
    session.commit()
    return view


def pattern_trace(
    session: Session,
    sandbox: Sandbox | None,
    pattern: PatternView,
    *,
    timeout_s: float,
    owner: Owner = SYSTEM,
) -> TraceView:
    """The recorded run of a pattern's pipeline (recorded at import; here, as `owner`'s run,
    if it was not)."""
    if pattern.file.pipeline is None:
        raise NotFound(f"The pattern {pattern.slug!r} has no pipeline trace.")
    job = pipeline_job(pattern.file.pipeline, timeout_s=timeout_s)
    return record(session, sandbox, job, owner=owner)
