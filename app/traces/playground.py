"""The scheduler playground: any epoch-wise scheduler of torch, validated against its real
signature (which the runner reads from torch and reports when it starts), run on a pattern's
pipeline or stepped alone, and cached like every trace.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session

from app.bank.service import PatternView
from app.checking.jobs import lr_only_job, pipeline_job
from app.errors import NotFound
from app.sandbox.client import Sandbox, SandboxUnavailable
from app.sandbox.protocol import Catalog, SchedulerParam
from app.sandbox.scheduler import Owner
from app.sandbox.specs import (
    MAX_EPOCHS,
    MAX_LR_ONLY_STEPS,
    SCHEDULERS,
    LrOnlySpec,
    PipelineSpec,
    SchedulerSpec,
)
from app.traces import charts
from app.traces.service import (
    PIPELINE,
    RunRefused,
    TraceJob,
    TraceView,
    pattern_trace,
    record,
)

DEFAULT_LR_ONLY_STEPS = 100
DEFAULT_SCHEDULER = "StepLR"
SEQUENTIAL = "SequentialLR"
# Form fields of SequentialLR's two schedulers, and the schedulers a fresh form starts with.
PARTS = (("first", "LinearLR"), ("second", "ExponentialLR"))
# Starting values for parameters torch leaves without a default (and a few whose defaults
# suit per-batch stepping, not a short epoch-wise run). "epochs" means the run's length.
SUGGESTED: dict[str, dict[str, Any]] = {
    "StepLR": {"step_size": 5, "gamma": 0.5},
    "MultiStepLR": {"milestones": [3, 7], "gamma": 0.5},
    "ExponentialLR": {"gamma": 0.8},
    "CosineAnnealingLR": {"T_max": "epochs"},
    "CosineAnnealingWarmRestarts": {"T_0": 3},
    # Both would otherwise cycle the momentum too (between 0.8 or 0.85 and 0.9 or 0.95, in
    # place of the lesson's fixed 0.95), and the comparison with the lesson would no longer be
    # of the learning rate alone.
    "CyclicLR": {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 2, "cycle_momentum": False},
    "OneCycleLR": {"max_lr": 0.1, "total_steps": "epochs", "cycle_momentum": False},
    "PolynomialLR": {"total_iters": "epochs"},
    "SequentialLR": {"milestones": [3]},
}


class PlaygroundInvalid(RunRefused):
    """Playground input that cannot run; `errors` maps each field to what is wrong."""


class PlaygroundRequest(BaseModel):
    """A playground run: a scheduler with its parameters, trained or stepped alone."""

    # As every JSON body of the API (app.routes.openapi.JsonIn): an unknown key is an error.
    model_config = ConfigDict(extra="forbid")

    pattern: str | None = Field(
        default=None, description="Whose pipeline to vary (default: the first with one)."
    )
    scheduler: str = Field(
        description="Class name in torch.optim.lr_scheduler.",
        json_schema_extra={"enum": list(SCHEDULERS)},
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Its keyword arguments. SequentialLR also takes `schedulers`: a list of "
        'two {"scheduler": name, "params": {...}}.',
    )
    epochs: int | None = Field(
        default=None,
        ge=1,
        json_schema_extra={"maximum": max(MAX_EPOCHS, MAX_LR_ONLY_STEPS)},  # checked per mode
        description=f"Epochs to train (≤ {MAX_EPOCHS}), or, LR-only, steps (≤ "
        f"{MAX_LR_ONLY_STEPS}). Default: the pattern's epochs, or {DEFAULT_LR_ONLY_STEPS}.",
    )
    mode: Literal["train", "lr-only"] = Field(
        default="train", description="`train`: the real pipeline; `lr-only`: no training."
    )


# --- validation --------------------------------------------------------------------------------


def suggested_params(catalog: Catalog, name: str, epochs: int) -> dict[str, Any]:
    """The values a fresh form starts from: torch's defaults, and ours where torch has none."""
    values = {p.name: p.default for p in catalog[name].params if not p.required}
    for key, value in SUGGESTED.get(name, {}).items():
        values[key] = epochs if value == "epochs" else value
    return values


def _coerce(param: SchedulerParam, raw: Any) -> Any:
    """A form or JSON value as the type torch's signature asks for; ValueError says why not."""
    kind = param.kind
    if raw is None or raw == "":
        if param.required:
            raise ValueError("is required")
        return param.default
    if kind == "bool":
        text = str(raw).lower()
        if isinstance(raw, bool) or text in ("true", "false", "on", "off", "1", "0"):
            return raw if isinstance(raw, bool) else text in ("true", "on", "1")
        raise ValueError("must be true or false")
    if kind == "choice":
        if raw not in param.choices:
            raise ValueError(f"must be one of {', '.join(param.choices)}")
        return raw
    if kind == "int-list":
        items = raw if isinstance(raw, list) else str(raw).replace(",", " ").split()
        if not all(
            (isinstance(item, int) and not isinstance(item, bool))
            or (isinstance(item, str) and item.isdecimal())
            for item in items
        ):
            raise ValueError("must be whole numbers, e.g. 3, 7")
        values = [int(item) for item in items]
        if not values or values != sorted(values) or min(values) < 1:
            raise ValueError("must be positive whole numbers in increasing order, e.g. 3, 7")
        return values
    if isinstance(raw, bool):
        raise ValueError("must be a number")
    if not isinstance(raw, int | float | str):
        raise ValueError("must be a number")
    try:
        number = float(raw)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(
            "must be a whole number" if kind == "int" else "must be a number"
        ) from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError("must be a finite number")
    if kind == "int":
        if not number.is_integer():
            raise ValueError("must be a whole number")
        return int(number)
    return number


def _semantic_errors(name: str, params: dict[str, Any], epochs: int, prefix: str) -> dict[str, str]:
    """Mistakes torch would only report halfway through a run, said up front."""
    errors = {}
    if name == "OneCycleLR":
        total = params.get("total_steps")
        if total is None and params.get("epochs") and params.get("steps_per_epoch"):
            total = params["epochs"] * params["steps_per_epoch"]
        if total is None:
            errors[f"{prefix}.total_steps"] = (
                "total_steps is required (or epochs and steps_per_epoch)"
            )
        elif total < epochs:
            times = "once" if epochs == 1 else f"{epochs} times"
            errors[f"{prefix}.total_steps"] = (
                f"total_steps is {total}, but the scheduler steps once per epoch, {times}, "
                f"and OneCycleLR raises after total_steps steps: use at least {epochs}"
            )
    for key in ("step_size", "T_max", "T_0", "total_iters", "step_size_up"):
        if key in params and params[key] is not None and params[key] < 1:
            errors[f"{prefix}.{key}"] = f"{key} must be at least 1"
    if params.get("gamma") is not None and params["gamma"] <= 0:
        errors[f"{prefix}.gamma"] = "gamma must be positive"
    return errors


def scheduler_spec(
    catalog: Catalog,
    name: str,
    raw: Mapping[str, Any],
    *,
    epochs: int,
    prefix: str = "params",
) -> SchedulerSpec:
    """Validate a scheduler and its parameters against torch's real signature; every problem
    is reported under the parameter's name."""
    if name not in catalog:
        raise PlaygroundInvalid({"scheduler": f"must be one of {', '.join(catalog)}"})
    known = {p.name: p for p in catalog[name].params if p.kind != "schedulers"}
    errors: dict[str, str] = {
        f"{prefix}.{unknown}": f"{name} has no parameter {unknown!r}"
        for unknown in sorted(set(raw) - set(known) - {"schedulers"})
    }
    params: dict[str, Any] = {}
    for pname, param in known.items():
        try:
            value = _coerce(param, raw.get(pname))
        except ValueError as exc:
            errors[f"{prefix}.{pname}"] = f"{pname} {exc}"
            continue
        if value is not None:
            params[pname] = value
    children: list[SchedulerSpec] = []
    if name == SEQUENTIAL:
        items = raw.get("schedulers")
        if not isinstance(items, list) or len(items) != 2:
            errors[f"{prefix}.schedulers"] = "SequentialLR here takes exactly two schedulers"
        else:
            for index, item in enumerate(items):
                where = f"{prefix}.schedulers.{index}"
                child = item.get("scheduler") if isinstance(item, dict) else None
                if not isinstance(child, str) or child == SEQUENTIAL:
                    errors[f"{where}.scheduler"] = "must name a scheduler other than SequentialLR"
                    continue
                if not isinstance(item.get("params", {}), dict):
                    errors[f"{where}.params"] = "must be an object of parameter values"
                    continue
                try:
                    children.append(
                        scheduler_spec(
                            catalog,
                            child,
                            item.get("params") or {},
                            epochs=epochs,
                            prefix=f"{where}.params",
                        )
                    )
                except PlaygroundInvalid as exc:
                    errors.update(exc.errors)
    errors.update(_semantic_errors(name, params, epochs, prefix))
    if errors:
        raise PlaygroundInvalid(errors)
    return SchedulerSpec(name=name, params=params, schedulers=children)


def run_playground(
    session: Session,
    sandbox: Sandbox | None,
    pattern: PatternView,
    request: PlaygroundRequest,
    *,
    timeout_s: float,
    gate: threading.Semaphore,
    owner: Owner,
) -> TraceView:
    """Validate and run (or fetch the stored run of) a playground request, as `owner`'s run;
    fresh runs take one of the `gate`'s places (so that the playground never starves
    grading)."""
    if pattern.file.pipeline is None:
        raise NotFound(f"The pattern {pattern.slug!r} has no pipeline to play with.")
    if sandbox is None:
        raise SandboxUnavailable.switched_off()
    base = pattern.file.pipeline
    train = request.mode == "train"
    limit = MAX_EPOCHS if train else MAX_LR_ONLY_STEPS
    epochs = request.epochs or (base.epochs if train else DEFAULT_LR_ONLY_STEPS)
    if epochs > limit:
        raise PlaygroundInvalid({"epochs": f"at most {limit} in {request.mode} mode"})
    scheduler = scheduler_spec(
        sandbox.scheduler_catalog, request.scheduler, request.params, epochs=epochs
    )
    job: TraceJob
    try:
        if train:
            spec = PipelineSpec.model_validate(
                {**base.model_dump(), "scheduler": scheduler.model_dump(), "epochs": epochs}
            )
            job = pipeline_job(spec, timeout_s=timeout_s)
        else:
            lr_only = LrOnlySpec(lr=base.optimizer.lr, scheduler=scheduler, steps=epochs)
            job = lr_only_job(lr_only, timeout_s=timeout_s)
    except ValidationError as exc:
        raise PlaygroundInvalid({"params": str(exc)}) from None
    return record(session, sandbox, job, gate=gate, owner=owner)


# --- the page -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fieldset:
    """A scheduler's parameters as form fields: (param, field name, value, error)."""

    part: str | None  # None for the main scheduler, else "first" / "second"
    scheduler: str
    fields: list[tuple[SchedulerParam, str, Any, str | None]]


@dataclass(frozen=True)
class PlaygroundPage:
    """Everything the playground page shows."""

    catalog: Catalog
    request: PlaygroundRequest
    epochs: int
    fieldsets: list[Fieldset]
    errors: dict[str, str] = field(default_factory=dict)  # by form field name
    trace: TraceView | None = None
    charts: list[charts.Chart] = field(default_factory=list)

    @property
    def other_errors(self) -> list[str]:
        """Errors not shown beside a field of the form."""
        shown = {name for fs in self.fieldsets for _, name, _, _ in fs.fields}
        shown |= {"scheduler", "epochs", "mode"}
        return [message for key, message in self.errors.items() if key not in shown]


def _field_name(error_key: str) -> str:
    """`params.gamma` → `p.gamma`; `params.schedulers.1.params.gamma` → `second.gamma`."""
    parts = error_key.split(".")
    if parts[:2] == ["params", "schedulers"] and len(parts) >= 5 and parts[2].isdigit():
        return f"{PARTS[int(parts[2])][0]}.{parts[4]}"
    if parts[0] == "params" and len(parts) == 2:
        return f"p.{parts[1]}"
    return error_key


def _params_from(
    query: Mapping[str, str], prefix: str, suggested: dict[str, Any], names: list[str]
) -> dict[str, Any]:
    """A scheduler's parameters from the form: what it sent for this scheduler's parameters,
    the suggested values for any it did not send (a scheduler just picked sends none; fields
    of the previous one are left behind). A field sent empty stays empty, and is an error if
    the parameter is required."""
    given = {name: query[prefix + name] for name in names if prefix + name in query}
    defaults = {name: value for name, value in suggested.items() if value is not None}
    return {**defaults, **given}


def playground_page(
    session: Session,
    sandbox: Sandbox | None,
    pattern: PatternView,
    query: Mapping[str, str],
    *,
    timeout_s: float,
    gate: threading.Semaphore,
    owner: Owner,
) -> PlaygroundPage:
    """The playground for a query string (the form submits with GET, so a URL is a state);
    runs are `owner`'s."""
    if pattern.file.pipeline is None:
        raise NotFound(f"The pattern {pattern.slug!r} has no pipeline to play with.")
    if sandbox is None:
        raise SandboxUnavailable.switched_off()
    catalog = sandbox.scheduler_catalog
    errors: dict[str, str] = {}
    name = query.get("scheduler", DEFAULT_SCHEDULER)
    if name not in catalog:
        errors["scheduler"] = f"must be one of {', '.join(catalog)}"
        name = DEFAULT_SCHEDULER
    mode = query.get("mode", "train")
    if mode not in ("train", "lr-only"):
        errors["mode"] = "must be train or lr-only"
        mode = "train"
    epochs = pattern.file.pipeline.epochs if mode == "train" else DEFAULT_LR_ONLY_STEPS
    if text := query.get("epochs", ""):
        if text.isdecimal() and int(text) >= 1:
            epochs = int(text)
        else:
            errors["epochs"] = "must be a whole number, at least 1"

    def names(scheduler: str) -> list[str]:
        return [p.name for p in catalog[scheduler].params if p.kind != "schedulers"]

    params = _params_from(query, "p.", suggested_params(catalog, name, epochs), names(name))
    fieldsets = [Fieldset(None, name, [])]
    if name == SEQUENTIAL:
        children = []
        for part, default in PARTS:
            child = query.get(part, default)
            if child not in catalog or child == SEQUENTIAL:
                child = default
            child_params = _params_from(
                query, f"{part}.", suggested_params(catalog, child, epochs), names(child)
            )
            children.append({"scheduler": child, "params": child_params})
            fieldsets.append(Fieldset(part, child, []))
        params["schedulers"] = children
    request = PlaygroundRequest(scheduler=name, params=params, epochs=epochs, mode=mode)

    trace = None
    if "run" in query and not errors:
        try:
            trace = run_playground(
                session, sandbox, pattern, request, timeout_s=timeout_s, gate=gate, owner=owner
            )
        except RunRefused as exc:
            errors.update({_field_name(key): message for key, message in exc.errors.items()})
    baseline = pattern_trace(session, sandbox, pattern, timeout_s=timeout_s, owner=owner)
    filled = [
        Fieldset(
            fs.part,
            fs.scheduler,
            [
                (
                    param,
                    f"{fs.part or 'p'}.{param.name}",
                    (
                        params
                        if fs.part is None
                        else params["schedulers"][0 if fs.part == PARTS[0][0] else 1]["params"]
                    ).get(param.name),
                    errors.get(f"{fs.part or 'p'}.{param.name}"),
                )
                for param in catalog[fs.scheduler].params
                if param.kind != "schedulers"
            ],
        )
        for fs in fieldsets
    ]
    if trace is not None:
        shown = charts.trace_charts(trace, baseline if trace.kind == PIPELINE else None)
    else:
        shown = charts.trace_charts(baseline)
    return PlaygroundPage(catalog, request, epochs, filled, errors, trace, shown)
