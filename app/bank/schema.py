"""The schema of question files. Unknown keys are rejected and every field is described.

`questions/schema.json` is generated from these models (`python -m app export-schema`), so
editors can complete and check question files; a test fails when it is stale.
"""

from __future__ import annotations

import hashlib
import json
import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    TypeAdapter,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from app.sandbox.specs import PipelineSpec

SLUG_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
MAX_ID_LENGTH = 80  # matches the String(80) id columns in app.models

Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN, max_length=MAX_ID_LENGTH)]
# Marks the fields rendered as Markdown, so that the editor can check each before saving.
MARKDOWN_FIELD = "markdown"
Markdown = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True), MARKDOWN_FIELD]
Text = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]

TITLE_MAX_CHARS = 60  # a list row on a 390 px phone: two lines at most beside its badges
# Titles are shown as plain text (lists, the API): Markdown or HTML marks would show as typed.
NOT_PLAIN_TEXT = re.compile(r"[`*<>{}\x00-\x1f\x7f]")


def _plain_title(title: str) -> str:
    if mark := NOT_PLAIN_TEXT.search(title):
        shown = "a line break" if mark[0] in "\n\r" else repr(mark[0])
        raise ValueError(
            f"must be plain text on one line, shown as typed — no Markdown, HTML or "
            f"placeholders (found {shown})"
        )
    return title


Title = Annotated[
    str,
    StringConstraints(min_length=1, max_length=TITLE_MAX_CHARS, strip_whitespace=True),
    AfterValidator(_plain_title),
]


# --- parameters of output questions --------------------------------------------------------
#
# `{{ name }}` in `code` is filled with a value as a Python literal, in prose as text; every
# combination of values is one variant (app.bank.variants computes them).

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
MAX_VARIANTS = 256  # every variant is run at import: keep that a few seconds at most
Value = bool | int | float | str


def values_of(spec: list[Value] | str) -> list[Value]:
    """A parameter's values: the list itself, or the integers of an inclusive range `a..b`."""
    if isinstance(spec, str):
        low, high = (int(part) for part in spec.split(".."))
        return list(range(low, high + 1))
    return list(spec)


def size_of(spec: list[Value] | str) -> int:
    """How many values a parameter has, without listing a range."""
    if isinstance(spec, str):
        low, high = (int(part) for part in spec.split(".."))
        return max(0, high - low + 1)
    return len(spec)


class FieldValueError(ValueError):
    """A check across fields that can still say which field is wrong (`choices.1.mistake`),
    so that errors point at it rather than at the whole file."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class StrictModel(BaseModel):
    """Base for file models: unknown keys are errors; numbers are accepted where text is due."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class Difficulty(StrEnum):
    """How hard a question is."""

    EASY = "easy"
    MEDIUM = "medium"
    HARD = "hard"


class Mode(StrEnum):
    """A way of learning a pattern; questions say in which modes they appear."""

    QUIZ = "quiz"
    PRACTICE = "practice"
    TEST = "test"


class PatternFile(StrictModel):
    """`questions/<slug>/pattern.yaml`: a topic, its lesson text and the modes it offers."""

    title: Text = Field(description="Title shown on the home page and the pattern page.")
    category: Text = Field(description="Library or area, e.g. `PyTorch`.")
    estimated_minutes: int = Field(
        ge=1, le=600, description="How long the lesson takes, in minutes."
    )
    summary: Markdown = Field(description="What the pattern is about (Markdown).")
    key_insight: Markdown = Field(description="The one idea to remember (Markdown).")
    modes: list[Mode] = Field(
        default_factory=lambda: list(Mode),
        min_length=1,
        description="Learning modes offered for this pattern.",
    )
    pipeline: PipelineSpec | None = Field(
        default=None,
        description="The training run the trace page records and the playground varies.",
    )
    lesson_practice: list[Slug] = Field(
        default_factory=list,
        max_length=10,
        description="Ids of this pattern's questions the lesson page asks inline after its "
        "quiz, in this order, each with its step-by-step solution once answered (an id that "
        "names no live question of the pattern is left out).",
    )
    notes: str | None = Field(default=None, description="For instructors; never shown to learners.")


class Choice(StrictModel):
    """One option of a multiple-choice question."""

    text: Markdown = Field(description="The option as shown (inline Markdown).")
    correct: bool = Field(default=False, description="Whether this option is the right answer.")
    mistake: Markdown | None = Field(
        default=None,
        description="The misconception behind this wrong option, shown to whoever picks it "
        "(required for every wrong option).",
    )


class SolutionStep(StrictModel):
    """One step of a worked solution."""

    title: Text = Field(description="Short heading of the step.")
    body: Markdown = Field(description="The reasoning of the step (Markdown).")


class Solution(StrictModel):
    """The worked solution, revealed after answering."""

    steps: list[SolutionStep] = Field(min_length=1, description="Ordered reasoning steps.")
    final_answer: Markdown = Field(description="The answer in one line (Markdown).")
    quick_check: Markdown | None = Field(
        default=None, description="A one-line rule of thumb to check the answer (Markdown)."
    )


class Explanation(StrictModel):
    """The author's explanation of an output question, shown beside the run's own trace."""

    steps: list[SolutionStep] = Field(
        default_factory=list,
        description="Reasoning steps (Markdown; `{{ param }}` is replaced by the variant's value).",
    )
    quick_check: Markdown | None = Field(
        default=None, description="A one-line rule of thumb to check the answer (Markdown)."
    )


class QuestionBase(StrictModel):
    """Fields every kind of question has."""

    id: Slug = Field(
        description="Stable, unique id (lowercase, digits, dashes). The database and learners' "
        "attempts refer to it: never reuse or rename it."
    )
    title: Title = Field(
        description=f"A short title for lists (at most {TITLE_MAX_CHARS} characters, plain "
        "text on one line), e.g. `StepLR after three steps`. It names what the question is "
        "about and never gives the answer away."
    )
    kind: str = Field(
        description="What kind of question: `choice`, `output`, `code`, `fix` or `steps`."
    )
    difficulty: Difficulty = Field(description="easy, medium or hard.")
    modes: list[Mode] = Field(
        default_factory=lambda: [Mode.PRACTICE, Mode.TEST],
        min_length=1,
        description="Learning modes this question appears in.",
    )
    tags: list[Slug] = Field(default_factory=list, description="Topics, for search and stats.")
    prompt: Markdown = Field(description="The question (Markdown).")
    code: str | None = Field(
        default=None, description="Python code shown with the prompt, highlighted."
    )
    hint: Markdown | None = Field(
        default=None, description="A nudge a learner may ask for before answering (Markdown)."
    )
    mistakes: list[Markdown] = Field(
        default_factory=list, description="Common mistakes, explained after answering."
    )
    notes: str | None = Field(
        default=None,
        description="For instructors: sources, what was checked and changed; never shown "
        "to learners.",
    )


class ChoiceQuestion(QuestionBase):
    """A multiple-choice question with exactly one correct option."""

    kind: Literal["choice"] = Field(description="`choice`: pick one of several options.")
    choices: list[Choice] = Field(
        min_length=2, max_length=8, description="The options, in the order shown."
    )
    solution: Solution = Field(description="The worked solution.")

    @model_validator(mode="after")
    def _one_correct_choice(self) -> ChoiceQuestion:
        correct = [i for i, choice in enumerate(self.choices) if choice.correct]
        if len(correct) != 1:
            raise FieldValueError(
                "choices", f"exactly one choice must be correct, found {len(correct)}"
            )
        texts = [choice.text for choice in self.choices]
        for i, text in enumerate(texts):
            if text in texts[:i]:
                raise FieldValueError(f"choices.{i}.text", "two choices have the same text")
        for i, choice in enumerate(self.choices):
            if choice.correct and choice.mistake:
                raise FieldValueError(
                    f"choices.{i}.mistake", "the correct choice cannot have a `mistake`"
                )
        missing = [i for i, c in enumerate(self.choices) if not c.correct and not c.mistake]
        if missing:
            # Every wrong choice teaches: whoever picks it is told which misconception it is.
            named = ", ".join(f"{chr(65 + i)} ({self.choices[i].text[:30]!r})" for i in missing)
            raise FieldValueError(
                f"choices.{missing[0]}",
                f"every wrong choice names the misconception it catches (`mistake`); "
                f"choice{'s' if len(missing) > 1 else ''} {named} "
                f"{'have' if len(missing) > 1 else 'has'} none",
            )
        return self

    @property
    def correct_index(self) -> int:
        """Index of the correct choice."""
        return next(i for i, choice in enumerate(self.choices) if choice.correct)


Scalar = StrictBool | StrictInt | StrictFloat | StrictStr
IntRange = Annotated[str, StringConstraints(pattern=r"^-?\d+\.\.-?\d+$")]
ParamName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
ExceptionName = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=MAX_ID_LENGTH)
]


class OutputQuestion(QuestionBase):
    """What does this code print? The key comes from running the code, never from a file."""

    kind: Literal["output"] = Field(
        description="`output`: the learner types what the code prints (or what `expression` "
        "evaluates to)."
    )
    code: str = Field(
        min_length=1,
        description="The Python code, run in the sandbox. `{{ param }}` is replaced by the "
        "variant's value (as a Python literal).",
    )
    expression: str | None = Field(
        default=None,
        description="A Python expression evaluated after the code; the answer is its repr(). "
        "Without it, the answer is what the code prints.",
    )
    params: dict[ParamName, list[Scalar] | IntRange] = Field(
        default_factory=dict,
        description="Variants: each parameter's values (a list, or an inclusive integer range "
        "`2..6`); every combination is one variant, each with its own real run.",
    )
    answer: str | None = Field(
        default=None,
        description="What the author expects the code to print (only without `params`). "
        "Import runs the code and refuses the file when the real output disagrees.",
    )
    raises: ExceptionName | None = Field(
        default=None,
        description="The exception the code is meant to raise, by class name (`ValueError`), "
        "when raising it is the point: a variant that raises it has the exception as its key "
        "(learners answer `ValueError`). Without it, a variant that raises is refused (a typo "
        "such as `prnt` must not make `NameError` the key), unless `answer` names the "
        "exception.",
    )
    solution: Explanation = Field(
        default_factory=Explanation,
        description="The author's explanation; the worked solution also shows the run's "
        "step-by-step learning-rate trace.",
    )

    @model_validator(mode="after")
    def _params_fit_the_code(self) -> OutputQuestion:
        """Every placeholder names a parameter, every parameter is used in the code, ranges
        and value lists make sense, and there are not too many variants."""
        declared = set(self.params)
        used_in_code = set(PLACEHOLDER.findall(self.code + "\n" + (self.expression or "")))
        used = used_in_code.union(*(PLACEHOLDER.findall(text) for text in self._texts()))
        if unknown := sorted(used - declared):
            raise FieldValueError("code", f"placeholders without a parameter: {', '.join(unknown)}")
        if unused := sorted(declared - used_in_code):
            raise FieldValueError(
                f"params.{unused[0]}",
                f"parameters not used in `code` or `expression`: {', '.join(unused)}",
            )
        if (total := self.variant_count) > MAX_VARIANTS:
            raise FieldValueError("params", f"{total} variants is more than {MAX_VARIANTS}")
        for name, spec in self.params.items():
            if size_of(spec) == 0:
                raise FieldValueError(f"params.{name}", f"parameter {name!r} has no values")
            values = values_of(spec)  # small now: the count is checked above
            if len({repr(v) for v in values}) != len(values):
                raise FieldValueError(f"params.{name}", f"parameter {name!r} repeats a value")
        if self.answer is not None and self.params:
            raise FieldValueError(
                "answer",
                "`answer` can only be checked without `params` (each variant has its "
                "own key, computed by running it)",
            )
        return self

    @property
    def variant_count(self) -> int:
        """How many variants the question has (1 without parameters)."""
        total = 1
        for spec in self.params.values():
            total *= size_of(spec)
        return total

    def _texts(self) -> list[str]:
        texts = [
            self.prompt,
            *self.mistakes,
            *(s.body for s in self.solution.steps),
            *(s.title for s in self.solution.steps),
        ]
        return texts + [t for t in (self.hint, self.solution.quick_check) if t]


MAX_CHECK_STEPS = 5000  # a trajectory longer than this tells a learner nothing more


class CodeCheck(StrictModel):
    """How a learner's code is checked against the reference, both run in the sandbox."""

    kind: Literal["trajectory", "final-lr", "exception", "object"] = Field(
        default="trajectory",
        description="`trajectory`: the LR of every param group at every step must match the "
        "reference's; `final-lr`: only the last one; `exception`: the code must raise "
        "`exception`; `object`: `scheduler` must be of the reference's type with the same "
        "`compare` parameters.",
    )
    drive: Literal["scheduler", "loop"] = Field(
        default="scheduler",
        description="`scheduler`: the code builds `scheduler`, and the checker steps it "
        "(`optimizer.step()` first, as in training) for `epochs` × `steps_per_epoch` steps; "
        "`loop`: the code is the training loop itself, and the LR every `optimizer.step()` "
        "used is the trajectory.",
    )
    epochs: int = Field(default=10, ge=1, le=1000, description="Epochs the checker runs.")
    steps_per_epoch: int = Field(
        default=1,
        ge=1,
        le=1000,
        description="scheduler.step() calls per epoch the checker makes (drive: scheduler).",
    )
    metrics: list[float] = Field(
        default_factory=list,
        description="What ReduceLROnPlateau is fed, one value per epoch (repeats the last).",
    )
    from_epoch: int = Field(
        default=0, ge=0, description="Compare the trajectory from this step on (0-based)."
    )
    tolerance: float = Field(
        default=1e-9, gt=0, lt=1, description="Relative tolerance of each LR comparison."
    )
    exception: str | None = Field(
        default=None, description="For `exception`: the class name the code must raise."
    )
    compare: list[str] = Field(
        default_factory=list,
        description="For `object`: the scheduler attributes that must equal the reference's.",
    )

    @model_validator(mode="after")
    def _complete(self) -> CodeCheck:
        if self.kind == "exception" and not self.exception:
            raise ValueError("an `exception` check names the `exception` to expect")
        if self.epochs * self.steps_per_epoch > MAX_CHECK_STEPS:
            raise ValueError(f"epochs × steps_per_epoch is more than {MAX_CHECK_STEPS}")
        if self.from_epoch >= self.epochs * self.steps_per_epoch:
            raise ValueError("`from_epoch` is past the last step")
        return self


MistakeName = Literal[
    "step-order",
    "per-batch",
    "per-epoch",
    "sequential-restart",
    "cosine-past-tmax",
    "off-by-one",
    "length-in-epochs",
    "plateau-mode",
    "count-restarted",
]


class SelfTest(StrictModel):
    """An answer the import runs and judges, to prove the check says what the author means:
    other correct ways are accepted, known-wrong ways fail where and why they should."""

    code: str = Field(min_length=1, description="An answer, as a learner would write it.")
    correct: bool = Field(default=False, description="Whether it must be accepted.")
    divergence: int | None = Field(
        default=None, description="Wrong answers: the epoch (from 0) where it must first differ."
    )
    mistake: MistakeName | None = Field(
        default=None,
        description="Wrong answers: the known mistake it must be diagnosed as (none: it "
        "must not be diagnosed as any).",
    )
    why: str | None = Field(default=None, description="For instructors: what this answer shows.")


class CodeQuestion(QuestionBase):
    """Write the code: the learner builds a scheduler (or writes the loop); the server runs it
    and the reference side by side and compares what they do, step by step."""

    kind: Literal["code"] = Field(
        description="`code`: the learner writes code, graded by running it against `reference`."
    )
    setup: str = Field(
        min_length=1,
        description="Code run before the learner's (shown, read-only): imports, the model, "
        "`optimizer`… Whatever the learner should use.",
    )
    starter: str = Field(default="", description="What the editor starts with.")
    reference: str = Field(
        min_length=1, description="The instructor's solution, run exactly like the learner's."
    )
    check: CodeCheck = Field(default_factory=CodeCheck, description="How the two are compared.")
    self_tests: list[SelfTest] = Field(
        default_factory=list,
        description="Answers the import runs and judges: accepted ones and known-wrong ones.",
    )
    solution: Explanation = Field(
        default_factory=Explanation,
        description="The author's explanation, shown with the reference solution.",
    )


class FixQuestion(CodeQuestion):
    """Fix the bug: the learner is given code with a planted bug (`buggy`) and fixes it. The
    fix is graded like a code question's answer, by running it against `reference`.

    The editor starts from `buggy`, so a fix question has no `starter` of its own: the file
    may not set one, and `starter` reads as `buggy` (it is never stored or exported), so
    whatever shows a code question's starting code shows the buggy code."""

    kind: Literal["fix"] = Field(  # type: ignore[assignment]  # a code question of its own kind
        description="`fix`: the learner fixes `buggy`, graded by running it against `reference`."
    )
    buggy: str = Field(
        min_length=1,
        description="The code with the planted bug, run after `setup`: what the editor starts "
        "from. Import runs it: the check must refuse it, and diagnose it as `bug`.",
    )
    bug: MistakeName | None = Field(
        default=None,
        description="The known mistake the planted bug is: what the check must diagnose "
        "`buggy` as. None: a bug no known mistake describes — `buggy` must not be diagnosed "
        "as any, and where it diverges is the learner's clue.",
    )
    starter: SkipJsonSchema[str] = Field(
        default="", exclude=True, description="Always `buggy`: the editor starts from it."
    )

    @model_validator(mode="before")
    @classmethod
    def _starts_from_buggy(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if "starter" in data:
            raise FieldValueError(
                "starter", "a fix question's editor starts from `buggy`: leave `starter` out"
            )
        return {**data, "starter": data["buggy"]} if isinstance(data.get("buggy"), str) else data


# A step-through scenario is predicted one epoch at a time: enough epochs to see a schedule's
# shape (a step, a restart), few enough that predicting each one stays a game, not a chore.
MIN_STEP_EPOCHS, MAX_STEP_EPOCHS = 4, 12


class Moment(StrictModel):
    """What happens at one epoch of a step-through scenario, said when it is revealed."""

    epoch: int = Field(
        ge=1, description="The epoch (from 0; epoch 0's rate is given, so from 1 on)."
    )
    why: Markdown = Field(
        description="Why the rate is what it is at this epoch (Markdown), shown with it."
    )


class StepsQuestion(QuestionBase):
    """Step through: the learner predicts the learning rate of each next epoch, and the real
    run reveals it, one epoch at a time. The rates come from running `setup` and `code` in the
    sandbox, never from the file."""

    kind: Literal["steps"] = Field(
        description="`steps`: the learner predicts the learning rate of every epoch, one at a "
        "time, each revealed by the real run before the next."
    )
    modes: list[Mode] = Field(
        default_factory=lambda: [Mode.PRACTICE],
        min_length=1,
        description="Learning modes this question appears in: only `practice` (each epoch "
        "is revealed as it is predicted, which a test or a quiz never does).",
    )
    setup: str = Field(
        min_length=1,
        description="Code run first (shown): imports, the model and `optimizer`, with one "
        "param group (one rate to predict).",
    )
    code: str = Field(
        min_length=1,
        description="Builds `scheduler` (shown). The run then trains as a loop would: every "
        "epoch, optimizer.step(), then scheduler.step() — or scheduler.step(metric) for "
        "ReduceLROnPlateau.",
    )
    epochs: int = Field(
        ge=MIN_STEP_EPOCHS,
        le=MAX_STEP_EPOCHS,
        description="How many epochs to step through (epoch 0 … epochs − 1); epoch 0's rate "
        "is given, the learner predicts the others.",
    )
    metrics: list[float] = Field(
        default_factory=list,
        description="ReduceLROnPlateau only: the metric fed to scheduler.step() at the end of "
        "each epoch, one per epoch (shown to the learner).",
    )
    rule: Markdown = Field(
        description="Why the rate moves, in a sentence (e.g. `StepLR` multiplies it by "
        "`gamma` every `step_size` calls), shown with every revealed epoch (Markdown)."
    )
    moments: list[Moment] = Field(
        default_factory=list,
        description="What happens at particular epochs, shown when each is revealed.",
    )
    solution: Explanation = Field(
        default_factory=Explanation,
        description="The author's explanation, shown with the whole trajectory at the end.",
    )

    @model_validator(mode="after")
    def _fits_the_epochs(self) -> StepsQuestion:
        if other := [mode.value for mode in self.modes if mode is not Mode.PRACTICE]:
            raise FieldValueError(
                "modes",
                f"a step-through scenario reveals each epoch as it is predicted, so it is "
                f"practice only, not {', '.join(other)}",
            )
        if self.metrics and len(self.metrics) != self.epochs:
            raise FieldValueError(
                "metrics",
                f"give one metric per epoch: {self.epochs}, not {len(self.metrics)}",
            )
        seen: set[int] = set()
        for index, moment in enumerate(self.moments):
            if moment.epoch >= self.epochs:
                raise FieldValueError(
                    f"moments.{index}.epoch",
                    f"the scenario stops at epoch {self.epochs - 1} (epochs count from 0)",
                )
            if moment.epoch in seen:
                raise FieldValueError(f"moments.{index}.epoch", "two moments at the same epoch")
            seen.add(moment.epoch)
        return self

    def moment(self, epoch: int) -> str | None:
        """What the author says of `epoch`, if anything."""
        return next((m.why for m in self.moments if m.epoch == epoch), None)


# Question kinds are told apart by `kind`.
QUESTION_KINDS = ("choice", "output", "code", "fix", "steps")
Question = Annotated[
    ChoiceQuestion | OutputQuestion | CodeQuestion | FixQuestion | StepsQuestion,
    Field(discriminator="kind"),
]
QUESTION_ADAPTER: TypeAdapter[Question] = TypeAdapter(Question)
PATTERN_ADAPTER: TypeAdapter[PatternFile] = TypeAdapter(PatternFile)


# Fields added after questions were stored, left out of the hash while unset: adding one must
# not make every stored question look changed (a new version at its next save, for nothing).
LATER_FIELDS = ("raises",)


def content_hash(model: BaseModel) -> str:
    """A stable hash of a validated file's content: equal content, equal hash."""
    data = model.model_dump(mode="json")
    for name in LATER_FIELDS:
        if name in data and data[name] is None:
            del data[name]
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def json_schema() -> dict[str, Any]:
    """The JSON Schema of question files and pattern files, for `questions/schema.json`."""
    question = QUESTION_ADAPTER.json_schema(ref_template="#/$defs/{model}")
    pattern = PATTERN_ADAPTER.json_schema(ref_template="#/$defs/{model}")
    defs: dict[str, Any] = {**question.pop("$defs", {}), **pattern.pop("$defs", {})}
    defs[pattern["title"]] = pattern
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Tracewise question bank file",
        "description": "A pattern.yaml (PatternFile) or a question file (ChoiceQuestion, "
        "OutputQuestion, CodeQuestion, FixQuestion or StepsQuestion, told apart by `kind`).",
        "anyOf": [{"$ref": f"#/$defs/{pattern['title']}"}, question],
        "$defs": dict(sorted(defs.items())),
    }
