"""The JSON API. Learner views never contain answer keys, mistakes or instructor notes."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, JsonValue, WithJsonSchema
from sqlalchemy import text

from app.bank import service as bank
from app.bank import variants
from app.bank.schema import (
    MAX_STEP_EPOCHS,
    ChoiceQuestion,
    CodeQuestion,
    Difficulty,
    Explanation,
    OutputQuestion,
    Solution,
    StepsQuestion,
)
from app.checking.grading import (
    MAX_CODE_CHARS,
    MAX_PREDICTION_CHARS,
    Feedback,
    OutputFeedback,
    StepsFeedback,
    choice_label,
)
from app.deps import (
    JsonRequestDep,
    PatternDep,
    QuestionDep,
    RowId,
    RunsDep,
    SessionDep,
    VisitorDep,
)
from app.learning import answering, modes
from app.models import MAX_ROW_INT
from app.routes.openapi import JSON_WRITE, RUNS_CODE, JsonIn, NoInputDep, Responses, errors
from app.sandbox.protocol import ErrorInfo, TraceEvent, WarningRecord

router = APIRouter()

NOT_FOUND = errors(s404="No such pattern, question or attempt (or it is not yours).")
INVALID = errors(s422="Malformed input, or an answer that cannot be one; `field` says where.")
IN_TEST = errors(s409="The question is in your unfinished test: finish the test first.")
WRITE: Responses = {**JSON_WRITE, **NOT_FOUND}  # a learner's write about a thing named


class Health(BaseModel):
    """Liveness and a database round trip."""

    status: str = Field(description="`ok` when the app and its database answer.")
    database: str = Field(description="`ok` when a query succeeded.")


class PatternOut(BaseModel):
    """A pattern in a listing."""

    slug: str = Field(description="URL name of the pattern.")
    title: str
    category: str
    estimated_minutes: int
    summary: str = Field(description="Markdown.")
    question_count: int = Field(description="Live questions in the pattern.")
    by_difficulty: dict[str, int] = Field(description="Live questions per difficulty.")


class QuestionSummaryOut(BaseModel):
    """A question in a listing."""

    id: str
    version: int
    title: str = Field(description="A short plain-text title (at most 60 characters).")
    kind: str
    difficulty: str
    modes: list[str]


class ModeOut(BaseModel):
    """A way to learn a pattern, with a page of its own (app.learning.modes)."""

    key: str = Field(
        description="Which mode.", json_schema_extra={"enum": [m.key for m in modes.MODES]}
    )
    title: str
    description: str
    url: str = Field(description="Its page (HTML).")


class PatternDetailOut(PatternOut):
    """A pattern with its lesson text and questions."""

    key_insight: str = Field(description="Markdown.")
    modes: list[ModeOut] = Field(description="The ways to learn it, in the lesson's order.")
    questions: list[QuestionSummaryOut]


class ChoiceOut(BaseModel):
    """An option as a learner sees it: no `correct`, no `mistake`."""

    index: int
    label: str = Field(description="Letter shown before the option, e.g. `A`.")
    text: str = Field(description="Inline Markdown.")


class QuestionOut(QuestionSummaryOut):
    """A question as a learner sees it before answering (for output questions: as their
    current variant shows it)."""

    pattern: str = Field(description="Slug of the pattern it belongs to.")
    prompt: str = Field(description="Markdown.")
    code: str | None = Field(description="Python source shown with the prompt.")
    setup: str | None = Field(
        default=None,
        description="Code questions: the given code, run before the answer. Step-through "
        "scenarios: the code run before `code`.",
    )
    starter: str | None = Field(
        default=None, description="Code questions: what the answer starts from."
    )
    choices: list[ChoiceOut] = Field(description="The options (choice questions; else empty).")
    variant: int = Field(description="The variant shown (output questions with `params`).")
    variant_count: int = Field(description="How many variants the question has.")
    params: dict[str, Any] = Field(description="The shown variant's parameter values.")
    has_hint: bool = Field(description="Whether `POST .../hint` has a hint to give.")
    tags: list[str]
    epochs: int | None = Field(
        default=None,
        description="Step-through scenarios: how many epochs the run trains (epoch 0 to "
        "epochs − 1); the answer predicts the rate of epochs 1 to epochs − 1.",
    )
    metrics: list[float] | None = Field(
        default=None,
        description="Step-through scenarios of ReduceLROnPlateau: the metric fed to "
        "`scheduler.step()` at the end of each epoch.",
    )


class HintOut(BaseModel):
    """A question's hint; asking for it is recorded on later attempts."""

    hint: str = Field(description="Markdown.")


# What an answer can be: an index or a letter (choice), the text printed or a bare number
# (output), the code (code), the predicted rates (steps). The grader checks it against the
# question and says what is wrong in its own words (422, `field: answer`), for anything else
# too (true, null, an object).
ANSWER_TYPES: list[JsonValue] = [
    {"type": "integer"},
    {"type": "number"},
    {"type": "string", "maxLength": MAX_CODE_CHARS},
    {
        "type": "array",
        "maxItems": MAX_STEP_EPOCHS - 1,
        "items": {
            "anyOf": [{"type": "number"}, {"type": "string", "maxLength": MAX_PREDICTION_CHARS}]
        },
    },
]
Answer = Annotated[JsonValue, WithJsonSchema({"anyOf": ANSWER_TYPES})]


class AttemptIn(JsonIn):
    """An answer to a question."""

    answer: Answer = Field(
        description="Choice question: the 0-based index of the choice, or its letter. Output "
        "question: the text the code prints (or a bare number). Code question: the code. "
        "Step-through scenario: the learning rates you predict for epochs 1 to epochs − 1, "
        'in order (numbers, or their text such as `"0.0125"`). Whether it can answer this '
        "question is checked against the question (422)."
    )
    variant: int | None = Field(
        default=None,
        ge=0,
        le=MAX_ROW_INT,
        strict=True,
        description="Output questions: the variant answered (default: the learner's current).",
    )
    version: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ROW_INT,
        strict=True,
        description="The question's version you were shown (from GET); an answer is graded "
        "against it even if an instructor has saved a newer one since (default: current).",
    )
    time_taken_ms: int | None = Field(
        default=None,
        ge=0,
        strict=True,
        description="How long the learner took, if the client measured it (it can make the "
        "review rating harder, never easier).",
    )


class OutputSolution(BaseModel):
    """An output question's worked solution: the real run, step by step."""

    expected: str = Field(description="What the run printed (or raised): the key.")
    stdout: str = Field(description="Standard output of the run.")
    value: str | None = Field(description="repr() of the question's expression, if any.")
    error: ErrorInfo | None = Field(description="The exception the code raised, if any.")
    trace: list[TraceEvent] = Field(
        description="The LR of every param group after every optimizer and scheduler step."
    )
    warnings: list[WarningRecord] = Field(description="Warnings the code raised.")
    explanation: Explanation = Field(description="The author's explanation.")


class CodeSolution(BaseModel):
    """A code question's worked solution: the reference and the author's explanation."""

    reference: str = Field(description="The reference solution's code.")
    explanation: Explanation = Field(description="The author's explanation.")


class StepsSolution(BaseModel):
    """A step-through's solution: the real rate of every epoch, and why it moves."""

    lrs: list[float] = Field(description="The rate each epoch trained with, epoch 0 first.")
    rule: str = Field(description="Why the rate moves, in a sentence (Markdown).")
    explanation: Explanation = Field(description="The author's explanation.")


class AttemptOut(BaseModel):
    """A graded, stored attempt. Try, then learn: a wrong answer's feedback says what is
    wrong but not the key, and its solution is withheld — until the learner asks for it
    (`POST /api/attempts/{id}/solution`) or has tried three times in a row."""

    attempt_id: int
    question_id: str
    question_version: int
    correct: bool
    score: float = Field(description="0.0 to 1.0.")
    feedback: Feedback = Field(
        description="What was right or wrong; the key (`correct_choice`, `expected`) only "
        "once `revealed`."
    )
    revealed: bool = Field(
        description="Whether the key and the worked solution are given: the answer was "
        "right, the solution was asked for, or this was the third wrong try in a row."
    )
    tries: int = Field(description="Wrong tries in a row, at this variant, ending with this one.")
    solution: Solution | OutputSolution | CodeSolution | StepsSolution | None = Field(
        description="The worked solution of the version (and variant) answered; null until "
        "`revealed`."
    )


def _pattern_out(pattern: bank.PatternView, counts: Counter[Difficulty]) -> PatternOut:
    return PatternOut(
        slug=pattern.slug,
        title=pattern.file.title,
        category=pattern.file.category,
        estimated_minutes=pattern.file.estimated_minutes,
        summary=pattern.file.summary,
        question_count=sum(counts.values()),
        by_difficulty={d.value: counts[d] for d in Difficulty},
    )


def _summary_out(live: bank.LiveQuestion) -> QuestionSummaryOut:
    question = live.question
    return QuestionSummaryOut(
        id=live.id,
        version=live.version,
        title=question.title,
        kind=question.kind,
        difficulty=question.difficulty.value,
        modes=[mode.value for mode in question.modes],
    )


def question_out(live: bank.LiveQuestion, variant: int) -> QuestionOut:
    """A question as a learner sees this variant of it."""
    question = answering.shown(live.question, variant)
    params = (
        variants.variant(question, variant)
        if isinstance(question, OutputQuestion) and question.params
        else {}
    )
    choices = question.choices if isinstance(question, ChoiceQuestion) else []
    return QuestionOut(
        **_summary_out(live).model_dump(),
        pattern=live.pattern_slug,
        prompt=question.prompt,
        code=question.code,
        setup=question.setup if isinstance(question, CodeQuestion | StepsQuestion) else None,
        starter=question.starter if isinstance(question, CodeQuestion) else None,
        choices=[
            ChoiceOut(index=i, label=choice_label(i), text=choice.text)
            for i, choice in enumerate(choices)
        ],
        variant=variant,
        variant_count=answering.variant_count(question),
        params=params,
        has_hint=question.hint is not None,
        tags=list(question.tags),
        epochs=question.epochs if isinstance(question, StepsQuestion) else None,
        metrics=(question.metrics or None) if isinstance(question, StepsQuestion) else None,
    )


def attempt_out(recorded: answering.Recorded) -> AttemptOut:
    """A stored attempt with its feedback and, once revealed, the key and the worked solution
    of what was answered."""
    attempt, answered, feedback, run = (
        recorded.attempt,
        recorded.answered,
        recorded.feedback,
        recorded.run,
    )
    solution: Solution | OutputSolution | CodeSolution | StepsSolution
    if isinstance(answered, ChoiceQuestion):
        solution = answered.solution
    elif isinstance(answered, StepsQuestion) and isinstance(feedback, StepsFeedback):
        solution = StepsSolution(
            lrs=[feedback.first_lr, *(step.lr for step in feedback.steps)],
            rule=answered.rule,
            explanation=answered.solution,
        )
    elif isinstance(answered, CodeQuestion):
        solution = CodeSolution(reference=answered.reference, explanation=answered.solution)
    elif isinstance(feedback, OutputFeedback) and run is not None:
        solution = OutputSolution(
            expected=feedback.expected,
            stdout=run.stdout,
            value=run.value,
            error=run.error,
            trace=run.trace,
            warnings=run.warnings,
            explanation=answered.solution,
        )
    else:  # attempt_details refuses an output attempt whose run is gone
        raise TypeError(f"an attempt at a {answered.kind} question without its run")
    return AttemptOut(
        attempt_id=attempt.id,
        question_id=attempt.question_id,
        question_version=attempt.question_version,
        correct=attempt.correct,
        score=attempt.score,
        feedback=recorded.told,
        revealed=recorded.revealed,
        tries=recorded.tries,
        solution=solution if recorded.revealed else None,
    )


@router.get("/healthz", tags=["system"])
def healthz(session: SessionDep) -> Health:
    """Whether the app is up and its database answers."""
    session.execute(text("SELECT 1"))
    return Health(status="ok", database="ok")


@router.get("/api/patterns", tags=["patterns"])
def list_patterns(session: SessionDep) -> list[PatternOut]:
    """Every pattern with its question counts."""
    counts = bank.count_live_questions(session)
    return [
        _pattern_out(pattern, counts.get(pattern.id, Counter()))
        for pattern in bank.list_patterns(session)
    ]


@router.get("/api/patterns/{slug}", tags=["patterns"], responses=NOT_FOUND)
def get_pattern(request: Request, session: SessionDep, pattern: PatternDep) -> PatternDetailOut:
    """A pattern with its lesson text, its modes and its questions."""
    return PatternDetailOut(
        **_pattern_out(
            pattern, bank.count_live_questions(session).get(pattern.id, Counter())
        ).model_dump(),
        key_insight=pattern.file.key_insight,
        modes=[
            ModeOut(
                key=mode.key,
                title=mode.title,
                description=mode.description,
                url=str(
                    request.url_for(mode.page, slug=pattern.slug)
                    if mode.per_pattern
                    else request.url_for(mode.page)
                ),
            )
            for mode in modes.offered(pattern)
        ],
        questions=[_summary_out(q) for q in bank.list_questions(session, pattern)],
    )


@router.get("/api/patterns/{slug}/questions", tags=["patterns"], responses=NOT_FOUND)
def list_pattern_questions(
    session: SessionDep, pattern: PatternDep, visitor: VisitorDep
) -> list[QuestionOut]:
    """A pattern's live questions, as this learner sees them."""
    return [
        question_out(q, answering.current_variant(session, visitor=visitor, question=q))
        for q in bank.list_questions(session, pattern)
    ]


@router.get("/api/questions/{question_id}", tags=["questions"], responses=NOT_FOUND)
def get_question(session: SessionDep, question: QuestionDep, visitor: VisitorDep) -> QuestionOut:
    """A question as this learner sees it: no key, no mistakes, no solution."""
    variant = answering.current_variant(session, visitor=visitor, question=question)
    return question_out(question, variant)


@router.post(
    "/api/questions/{question_id}/variant",
    tags=["questions"],
    responses={**WRITE, **IN_TEST, **INVALID},
    dependencies=[JsonRequestDep, NoInputDep],
)
def another_variant(session: SessionDep, question: QuestionDep, visitor: VisitorDep) -> QuestionOut:
    """Move to a different variant of an output question; returns the question as it now is."""
    variant = answering.next_variant(session, visitor=visitor, question=question)
    return question_out(question, variant)


@router.post(
    "/api/questions/{question_id}/hint",
    tags=["questions"],
    responses={**WRITE, **IN_TEST},
    dependencies=[JsonRequestDep, NoInputDep],
)
def reveal_hint(session: SessionDep, question: QuestionDep, visitor: VisitorDep) -> HintOut:
    """The question's hint; later attempts record that it was seen."""
    return HintOut(hint=answering.reveal_hint(session, visitor=visitor, question=question))


@router.post(
    "/api/questions/{question_id}/attempts",
    tags=["questions"],
    status_code=201,
    responses={
        **WRITE,
        **errors(
            s409="The question is in your unfinished test (finish the test first), it "
            "changed since the version answered (reload it), or it is a step-through "
            "scenario that no longer runs to its end here."
        ),
        **INVALID,
        **RUNS_CODE,
    },
    dependencies=[JsonRequestDep],
)
def submit_attempt(
    session: SessionDep,
    question: QuestionDep,
    visitor: VisitorDep,
    runs: RunsDep,
    body: AttemptIn,
) -> AttemptOut:
    """Grade an answer and store it as an attempt. A right answer comes with the worked
    solution; a wrong one says what is wrong, without the key, so that the learner can try
    again — the key and solution come on asking (`POST /api/attempts/{id}/solution`), or
    with the third wrong try in a row."""
    recorded = answering.record_attempt(
        session,
        visitor=visitor,
        question=question,
        answer=body.answer,
        runs=runs,
        variant=body.variant,
        version=body.version,
        time_taken_ms=body.time_taken_ms,
    )
    return attempt_out(recorded)


@router.get("/api/attempts/{attempt_id}", tags=["questions"], responses=NOT_FOUND)
def get_attempt(session: SessionDep, attempt_id: RowId, visitor: VisitorDep) -> AttemptOut:
    """One of your own attempts; anyone else's is 404."""
    attempt = answering.get_attempt_or_raise(session, attempt_id, learner=visitor.learner)
    return attempt_out(answering.attempt_details(session, attempt))


@router.post(
    "/api/attempts/{attempt_id}/solution",
    tags=["questions"],
    responses={**WRITE, **IN_TEST},
    dependencies=[JsonRequestDep, NoInputDep],
)
def reveal_solution(session: SessionDep, attempt_id: RowId, visitor: VisitorDep) -> AttemptOut:
    """Reveal the key and the worked solution of one of your attempts (recorded: it counts
    as help for your next answers, and brings the question back sooner for review)."""
    return attempt_out(answering.reveal_solution(session, visitor=visitor, attempt_id=attempt_id))
