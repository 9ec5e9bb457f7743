"""Trace and playground: the pages and their JSON API."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from markupsafe import Markup
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from app.bank import service as bank
from app.deps import (
    JsonRequestDep,
    OwnerDep,
    PatternDep,
    RunningOwnerDep,
    SandboxDep,
    SessionDep,
    SettingsDep,
)
from app.errors import NotFound
from app.routes.openapi import JSON_WRITE, RUNS_CODE, errors
from app.sandbox.client import Sandbox
from app.sandbox.protocol import Prediction, Stage
from app.sandbox.scheduler import Owner
from app.templating import render, render_fragment
from app.traces import charts, playground, service
from app.traces.playground import PlaygroundRequest

router = APIRouter()
MAX_CACHED_PAGES = 256  # drawn recorded runs kept (one per pattern and host), ~20 KiB each


# --- JSON -----------------------------------------------------------------------------------


class EpochOut(BaseModel):
    """One epoch (LR-only: one step)."""

    epoch: int = Field(
        description="Counted from 0, as `for epoch in range(n)` does: epoch e trains at the "
        "rate set by e calls of scheduler.step() (LR-only: step e)."
    )
    lr: float | None = Field(
        description="The learning rate in force during this epoch (null if not finite)."
    )
    lr_after: float | None = Field(
        description="The learning rate after this epoch's scheduler.step() (null if not finite)."
    )
    train_loss: float | None = None
    test_loss: float | None = None
    test_accuracy: float | None = None
    observations: list[str] = Field(default_factory=list)


class TraceOut(BaseModel):
    """A recorded run."""

    kind: Literal["pipeline", "lr-only"]
    spec: dict[str, Any] = Field(description="The spec that was run.")
    stages: list[Stage] = Field(description="Data-flow stages with real shapes and rows.")
    epochs: list[EpochOut]
    prediction: Prediction | None = Field(
        description="One test sample through the layers (pipeline runs)."
    )
    lr_changes: list[int] = Field(description="Epochs whose learning rate differs from the last.")
    lr_after_last: float = Field(description="The LR set after the last epoch (never used).")


def _trace_out(trace: service.TraceView) -> TraceOut:
    return TraceOut(
        kind=trace.kind,
        spec=trace.spec,
        stages=trace.stages,
        epochs=[EpochOut(**asdict(epoch)) for epoch in trace.epochs],
        prediction=trace.prediction,
        lr_changes=trace.lr_changes,
        lr_after_last=trace.lr_after_last,
    )


def _first_pipeline(session: Session, slug: str | None) -> bank.PatternView:
    if slug is not None:
        return bank.get_pattern_or_raise(session, slug)
    for pattern in bank.list_patterns(session):
        if pattern.file.pipeline is not None:
            return pattern
    raise NotFound("No pattern has a pipeline to play with.")


@router.get(
    "/api/patterns/{slug}/trace",
    tags=["traces"],
    responses={**errors(s404="No such pattern, or it has no pipeline."), **RUNS_CODE},
)
def get_trace(
    session: SessionDep,
    pattern: PatternDep,
    sandbox: SandboxDep,
    settings: SettingsDep,
    owner: OwnerDep,
) -> TraceOut:
    """The pattern's recorded training run; `lr` of an epoch is the LR used during it."""
    trace = service.pattern_trace(
        session, sandbox, pattern, timeout_s=settings.sandbox_timeout_s, owner=owner
    )
    return _trace_out(trace)


@router.post(
    "/api/playground",
    tags=["traces"],
    responses={
        **JSON_WRITE,
        **errors(
            s404="No such pattern, or it has no pipeline.",
            s422="A parameter that cannot run (torch's signature of the scheduler says which "
            "values it takes); `field` names it.",
        ),
        **RUNS_CODE,
    },
    dependencies=[JsonRequestDep],
)
def playground_api(
    request: Request,
    session: SessionDep,
    sandbox: SandboxDep,
    settings: SettingsDep,
    owner: RunningOwnerDep,
    body: PlaygroundRequest,
) -> TraceOut:
    """Run (or fetch the stored run of) a scheduler on the pattern's pipeline, or alone."""
    pattern = _first_pipeline(session, body.pattern)
    trace = playground.run_playground(
        session,
        sandbox,
        pattern,
        body,
        timeout_s=settings.sandbox_timeout_s,
        gate=request.app.state.playground_gate,
        owner=owner,
    )
    return _trace_out(trace)


# --- pages ----------------------------------------------------------------------------------


def recorded_run(
    request: Request,
    session: Session,
    pattern: bank.PatternView,
    sandbox: Sandbox | None,
    *,
    timeout_s: float,
    owner: Owner,
) -> Markup:
    """The recorded run of `pattern`'s pipeline drawn as HTML: stages, the epoch table,
    charts, the prediction trace. Once recorded (at import) a trace is only read, and its
    drawing is kept: it is a function of the trace and the host alone."""
    trace = service.pattern_trace(session, sandbox, pattern, timeout_s=timeout_s, owner=owner)
    key = (trace.key, str(request.base_url))
    drawn: OrderedDict[tuple[Any, ...], Markup] = request.app.state.trace_pages
    html = drawn.get(key)
    if html is None:
        html = render_fragment(
            request,
            "traces/_trace_body.html",
            {"trace": trace, "charts": charts.trace_charts(trace)},
        )
        drawn[key] = html
        if len(drawn) > MAX_CACHED_PAGES:  # the least recently used goes (one per Host
            drawn.popitem(last=False)  # header: a client inventing hosts evicts only its own)
    else:
        drawn.move_to_end(key)
    return html


@router.get("/patterns/{slug}/trace", name="trace", include_in_schema=False)
def trace_page(
    request: Request,
    session: SessionDep,
    pattern: PatternDep,
    sandbox: SandboxDep,
    settings: SettingsDep,
    owner: OwnerDep,
) -> Response:
    """The pipeline trace alone: stages, the epoch table, charts, the prediction trace."""
    html = recorded_run(
        request, session, pattern, sandbox, timeout_s=settings.sandbox_timeout_s, owner=owner
    )
    return render(request, "traces/trace.html", {"pattern": pattern, "recorded": html})


@router.get("/patterns/{slug}/playground", name="playground", include_in_schema=False)
def playground_page(
    request: Request,
    session: SessionDep,
    pattern: PatternDep,
    sandbox: SandboxDep,
    settings: SettingsDep,
    owner: RunningOwnerDep,
) -> Response:
    """Pick a scheduler and its parameters; see its real LR, loss and accuracy curves over the
    lesson's. The form uses GET, so every state is a URL."""
    page = playground.playground_page(
        session,
        sandbox,
        pattern,
        request.query_params,
        timeout_s=settings.sandbox_timeout_s,
        gate=request.app.state.playground_gate,
        owner=owner,
    )
    return render(
        request,
        "traces/playground.html",
        {"page": page, "pattern": pattern},
        status_code=422 if page.errors else 200,
    )
