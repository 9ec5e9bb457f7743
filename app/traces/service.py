"""What the web asks of traces: a pattern's recorded run, and playground runs.

Every run happens in the sandbox; its result is stored by (kind, spec, torch version), so a
page view never trains.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.bank.service import PatternView
from app.db import begin_write
from app.errors import Busy, Invalid, NotFound
from app.models import Trace
from app.runs import torch_version
from app.sandbox.client import Sandbox, SandboxUnavailable
from app.sandbox.protocol import Job, Verdict
from app.sandbox.scheduler import SYSTEM, Owner
from app.traces.spec import spec_json

PIPELINE = "pipeline"
LR_ONLY = "lr-only"


class RunRefused(Invalid):
    """torch refused a spec (a parameter it rejects); `errors` maps fields to messages."""

    def __init__(self, errors: dict[str, str]) -> None:
        message = "; ".join(f"{name}: {text}" for name, text in errors.items())
        super().__init__(message, field=next(iter(errors)))
        self.errors = errors


# --- what a trace looks like to the web -------------------------------------------------------


@dataclass(frozen=True)
class Epoch:
    """One epoch (or, LR-only, one step): the LR used during it and what happened."""

    epoch: int
    lr: float
    lr_after: float
    train_loss: float | None = None
    test_loss: float | None = None
    test_accuracy: float | None = None
    observations: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LayerShape:
    """A layer of the model and the shapes of its parameters (torch's: outputs × inputs)."""

    name: str
    weight: list[int] | None = None
    bias: list[int] | None = None


@dataclass(frozen=True)
class Stage:
    """One stage of the data flow, with real shapes and a few real rows."""

    name: str
    input: str
    output: str
    sample: list[list[float]] = field(default_factory=list)
    layers: list[LayerShape] = field(default_factory=list)


@dataclass(frozen=True)
class LayerOutput:
    """What one layer made of the traced sample."""

    name: str
    values: list[float]


@dataclass(frozen=True)
class Prediction:
    """One test sample through the layers."""

    input: list[float]
    layers: list[LayerOutput]
    probabilities: list[float]
    predicted: int
    label: int


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

    @property
    def lr_after_last(self) -> float:
        """The LR the scheduler set after the last epoch (which nothing trained with)."""
        return self.epochs[-1].lr_after


def _percent(a: float, b: float) -> str:
    return f"{abs(b - a) / a:.0%}" if a else "—"


def observations(epochs: list[dict[str, Any]]) -> list[list[str]]:
    """What happened in each epoch, in words, from the numbers alone."""
    notes: list[list[str]] = []
    best = -1.0
    for index, epoch in enumerate(epochs):
        said = []
        previous = epochs[index - 1] if index else None
        if previous is None:
            said.append(f"First epoch, at learning rate {epoch['lr']:g}.")
        elif epoch["lr"] != previous["lr"]:
            factor = epoch["lr"] / previous["lr"] if previous["lr"] else float("inf")
            verb = "cut" if factor < 1 else "raised"
            said.append(
                f"The scheduler {verb} the learning rate from {previous['lr']:g} to "
                f"{epoch['lr']:g} (×{factor:.3g}) before this epoch."
            )
        if previous is not None:
            if epoch["test_loss"] < previous["test_loss"]:
                said.append(
                    f"Test loss fell {_percent(previous['test_loss'], epoch['test_loss'])}."
                )
            elif epoch["test_loss"] > previous["test_loss"]:
                rose = _percent(previous["test_loss"], epoch["test_loss"])
                if epoch["train_loss"] < previous["train_loss"]:
                    said.append(
                        f"Test loss rose {rose} while training loss fell: the model is "
                        "starting to fit the training set more than the task."
                    )
                else:
                    said.append(f"Test loss rose {rose}: the step size may be too large here.")
        if epoch["test_accuracy"] > best:
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


def _view(kind: str, key: str, spec: dict[str, Any], data: dict[str, Any]) -> TraceView:
    if kind == LR_ONLY:
        epochs = [
            Epoch(epoch=i + 1, lr=lr, lr_after=after)
            for i, (lr, after) in enumerate(zip(data["lr"], data["lr_after"], strict=True))
        ]
        return TraceView(kind, key, spec, epochs)
    notes = observations(data["epochs"])
    epochs = [
        Epoch(
            epoch=e["epoch"],
            lr=e["lr"],
            lr_after=e["lr_after"],
            train_loss=e["train_loss"],
            test_loss=e["test_loss"],
            test_accuracy=e["test_accuracy"],
            observations=note,
        )
        for e, note in zip(data["epochs"], notes, strict=True)
    ]
    stages = [
        Stage(
            name=s["name"],
            input=s["input"],
            output=s["output"],
            sample=s.get("sample", []),
            layers=[LayerShape(**layer) for layer in s.get("layers", [])],
        )
        for s in data["stages"]
    ]
    p = data["prediction"]
    prediction = Prediction(
        input=p["input"],
        layers=[LayerOutput(**layer) for layer in p["layers"]],
        probabilities=p["probabilities"],
        predicted=p["predicted"],
        label=p["label"],
    )
    return TraceView(
        kind, key, spec, epochs, stages=stages, prediction=prediction, parameters=data["parameters"]
    )


# --- recording ---------------------------------------------------------------------------------


MAX_CACHED_VIEWS = 256  # a stored trace never changes: its parsed view can be kept
_views: dict[str, TraceView] = {}


def _remember(view: TraceView) -> TraceView:
    if len(_views) >= MAX_CACHED_VIEWS:
        _views.clear()
    _views[view.key] = view
    return view


def trace_key(kind: str, spec: dict[str, Any]) -> str:
    """Where a run of `spec` is stored."""
    material = json.dumps([kind, spec, torch_version()], sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


def _job(kind: str, spec: dict[str, Any], timeout_s: float) -> Job:
    return Job(kind=kind, spec=spec, timeout_s=timeout_s)


def stored_trace(session: Session, *, kind: str, spec: BaseModel) -> TraceView | None:
    """The stored run of `spec`, if there is one (reads only: never runs anything)."""
    key = trace_key(kind, spec_json(spec))
    if (cached := _views.get(key)) is not None:
        return cached
    row = session.get(Trace, key)
    return _remember(_view(kind, key, row.spec, row.data)) if row is not None else None


# Playground runs stored at most (~45 KB each for 200 epochs): anyone can ask for new ones.
MAX_STORED_PLAYGROUND_TRACES = 10_000


def record(
    session: Session,
    sandbox: Sandbox | None,
    *,
    kind: str,
    spec: BaseModel,
    timeout_s: float,
    gate: threading.Semaphore | None = None,
    owner: Owner = SYSTEM,
) -> TraceView:
    """The stored run of `spec`, or a fresh one from the sandbox, run as `owner`'s (then
    stored). With a `gate`, a fresh run needs one of its places, and is Busy at once if
    none is free."""
    if (found := stored_trace(session, kind=kind, spec=spec)) is not None:
        return found
    data_spec = spec_json(spec)
    key = trace_key(kind, data_spec)
    if sandbox is None:
        raise SandboxUnavailable.switched_off()
    session.commit()  # hold no connection while the run trains
    if gate is not None and not gate.acquire(blocking=False):
        raise Busy("The playground is busy with other runs: try again in a moment.", retry_after=2)
    try:
        result = sandbox.run(_job(kind, data_spec, timeout_s), owner)
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
    view = _remember(_view(kind, key, data_spec, result.data))
    stored_count = session.scalar(select(func.count()).select_from(Trace)) or 0
    if gate is not None and stored_count >= MAX_STORED_PLAYGROUND_TRACES:
        session.commit()
        return view  # the store is full of playground runs: this one is kept in memory only
    begin_write(session)
    store(session, key=key, kind=kind, spec=data_spec, data=result.data)
    session.commit()
    return view


def store(
    session: Session, *, key: str, kind: str, spec: dict[str, Any], data: dict[str, Any]
) -> None:
    """Keep a run, once per key (a concurrent duplicate is ignored); part of the caller's
    write transaction."""
    values = {
        "key": key,
        "kind": kind,
        "torch_version": torch_version(),
        "spec": spec,
        "data": data,
    }
    if session.get_bind().dialect.name == "sqlite":
        session.execute(sqlite_insert(Trace).values(values).on_conflict_do_nothing())
    elif session.get(Trace, key) is None:
        session.add(Trace(**values))


def record_for_import(
    sandbox: Sandbox, spec: BaseModel, *, timeout_s: float
) -> tuple[str, dict[str, Any], dict[str, Any]] | str:
    """Train a pattern's pipeline during an import: (key, spec, data), or what went wrong."""
    data_spec = spec_json(spec)
    result = sandbox.run(_job(PIPELINE, data_spec, timeout_s))
    if result.status is not Verdict.OK or result.data is None:
        reason = result.error.message if result.error else f"{result.sentence} {result.detail}"
        return f"the pipeline did not train: {reason}"
    return trace_key(PIPELINE, data_spec), data_spec, result.data


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
    return record(
        session,
        sandbox,
        kind=PIPELINE,
        spec=pattern.file.pipeline,
        timeout_s=timeout_s,
        owner=owner,
    )
