"""What to run for a question, a code answer, a pipeline or a scheduler alone; and the one
key every run is stored under."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib.metadata import version
from typing import Any

from app.bank import variants
from app.bank.schema import CodeQuestion, OutputQuestion, StepsQuestion
from app.sandbox.protocol import (
    CodeJob,
    Drive,
    JobBase,
    LrOnlyJob,
    PipelineJob,
    SnippetJob,
)
from app.sandbox.specs import LrOnlySpec, PipelineSpec


@cache
def torch_version() -> str:
    """The installed torch version (read from package metadata: the web process never
    imports torch; the runner imports this same installation)."""
    return version("torch")


def run_key(job: JobBase[Any]) -> str:
    """Where a run of `job` is stored: the job itself (not its time limit) on this torch
    version. The same job on the same torch gives the same result, bit for bit."""
    material = json.dumps(
        [job.model_dump(mode="json", exclude={"timeout_s"}), torch_version()],
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(material.encode()).hexdigest()


def variant_job(question: OutputQuestion, variant: int, *, timeout_s: float) -> SnippetJob:
    """The job that runs variant `variant` of an output question."""
    values = variants.variant(question, variant) if question.params else {}
    expression = question.expression
    return SnippetJob(
        code=variants.render_code(question.code, values),
        expression=expression and variants.render_code(expression, values),
        timeout_s=timeout_s,
    )


def code_job(question: CodeQuestion, code: str, *, timeout_s: float) -> CodeJob:
    """The job that runs `code` (a learner's, or the reference) for a code question."""
    check = question.check
    return CodeJob(
        code=code,
        setup=question.setup,
        drive=Drive(
            drive=check.drive,
            epochs=check.epochs,
            steps_per_epoch=check.steps_per_epoch,
            metrics=check.metrics,
        ),
        timeout_s=timeout_s,
    )


def steps_job(question: StepsQuestion, *, timeout_s: float) -> CodeJob:
    """The job that runs a step-through scenario: its scheduler stepped once an epoch, as a
    code question's reference is (the same runner job, the same store)."""
    return CodeJob(
        code=question.code,
        setup=question.setup,
        drive=Drive(
            drive="scheduler", epochs=question.epochs, steps_per_epoch=1, metrics=question.metrics
        ),
        timeout_s=timeout_s,
    )


def pipeline_job(spec: PipelineSpec, *, timeout_s: float) -> PipelineJob:
    """The job that trains a pipeline."""
    return PipelineJob(spec=spec, timeout_s=timeout_s)


def lr_only_job(spec: LrOnlySpec, *, timeout_s: float) -> LrOnlyJob:
    """The job that steps a scheduler alone."""
    return LrOnlyJob(spec=spec, timeout_s=timeout_s)
