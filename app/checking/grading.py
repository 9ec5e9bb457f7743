"""Grading an answer against a question. Pure: no database, no HTTP, no sandbox.

Output answers are compared token by token: numbers with a tolerance (or as the key
correctly rounded to the precision the learner wrote, with at least 3 significant digits),
words case-insensitively, punctuation and whitespace ignored. An answer of numbers only is
compared with the numbers of the key: `0.05` is right for `[0.05]` and for `tensor(0.0500)`.
"""

from __future__ import annotations

import math
import re
import string
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.bank.schema import (
    ChoiceQuestion,
    CodeCheck,
    CodeQuestion,
    FixQuestion,
    OutputQuestion,
    Question,
    StepsQuestion,
)
from app.checking import codecheck
from app.errors import Conflict, Invalid
from app.sandbox.protocol import CodeData, ErrorInfo, RunResult, Verdict, WarningRecord
from app.wording import plural

CHOICE_LABELS = string.ascii_uppercase
RELATIVE_TOLERANCE = 1e-6  # float noise such as 0.07290000000000002 vs 0.0729
MIN_ROUNDED_DIGITS = 3  # a rounded answer must keep at least this many significant digits
MAX_ANSWER_LENGTH = 2000
MAX_INDEX_DIGITS = 3  # a choice index as text; longer ones are out of range (8 choices at most)
_TOKEN = re.compile(
    r"(?P<number>[-+]?(?:(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|inf(?![A-Za-z0-9_])|"
    r"nan(?![A-Za-z0-9_])))|(?P<word>[A-Za-z_][A-Za-z0-9_]*)",
    re.IGNORECASE,
)
# "ValueError", "raises ValueError", "it raises a ValueError: Tried to step …" — the exception's
# name first (after an optional "(it) raise(s) (a|an)"), then at most a ": message".
_RAISES = re.compile(
    r"^\s*(?:it\s+)?(?:raises?\s+)?(?:an?\s+)?(?P<name>[A-Za-z_][\w.]*)\s*(?::.*)?$",
    re.IGNORECASE | re.DOTALL,
)


class ChoiceFeedback(BaseModel):
    """What a learner is told after answering a choice question."""

    kind: Literal["choice"] = "choice"
    picked: int = Field(description="0-based index of the picked choice.")
    picked_label: str = Field(description="Letter of the picked choice, e.g. `B`.")
    correct_choice: int | None = Field(
        description="0-based index of the correct choice (null while withheld: see `withheld`)."
    )
    correct_label: str | None = Field(
        description="Letter of the correct choice (null while withheld)."
    )
    mistake: str | None = Field(
        default=None, description="The misconception behind the picked choice, if it is wrong."
    )


class OutputFeedback(BaseModel):
    """What a learner is told after answering an output question."""

    kind: Literal["output"] = "output"
    given: str = Field(description="The answer as typed.")
    expected: str | None = Field(
        description="What the real run printed (or raised): the key (null while withheld)."
    )
    reason: str | None = Field(
        default=None,
        description="Where the answer differs, if it does (never the key itself).",
    )
    diagnosis: str | None = Field(
        default=None,
        description="The misconception the value reveals, read off the run's own trace (one "
        "step early, the rate before any step…), when it does.",
    )
    variant: int = Field(description="Which variant was answered.")
    params: dict[str, Any] = Field(description="That variant's parameter values.")
    run_key: str = Field(description="The stored run the key and the trace come from.")


class CodeFeedback(BaseModel):
    """What a learner is told after submitting code."""

    kind: Literal["code"] = "code"
    message: str = Field(description="The verdict in a sentence.")
    verdict: str = Field(description="How the learner's run ended: ok, error, timeout, …")
    divergence: int | None = Field(
        default=None, description="The first step (epoch, from 0) whose LR differs."
    )
    expected: list[float] | None = Field(default=None, description="The target's LRs there.")
    got: list[float] | None = Field(default=None, description="The learner's LRs there.")
    mistake: str | None = Field(default=None, description="The known mistake behind it.")
    explanation: str | None = Field(default=None, description="What that mistake is.")
    error: ErrorInfo | None = Field(
        default=None, description="The exception the code raised, at the learner's line."
    )
    warnings: list[WarningRecord] = Field(default_factory=list, description="Warnings raised.")
    learner_lrs: list[float] = Field(
        default_factory=list, description="The learner's LR (first param group) at each step."
    )
    target_lrs: list[float] = Field(
        default_factory=list, description="The target's LR (first param group) at each step."
    )
    reference_key: str = Field(description="The stored run of the reference solution.")


class StepOutcome(BaseModel):
    """One epoch of a step-through scenario: the prediction, and the real rate revealed."""

    epoch: int = Field(description="The epoch (from 0).")
    given: str = Field(description="The predicted learning rate, as typed.")
    lr: float = Field(description="The learning rate the real run trained this epoch with.")
    correct: bool = Field(description="Whether the prediction matches it.")


class StepsFeedback(BaseModel):
    """What a learner is told after stepping through a scenario: every epoch's prediction
    beside the real rate (each was revealed as it was predicted: that is the mode's point)."""

    kind: Literal["steps"] = "steps"
    message: str = Field(description="The score in a sentence.")
    first_lr: float = Field(
        description="Epoch 0's rate, given: the optimizer's, as the run recorded it."
    )
    steps: list[StepOutcome] = Field(description="Epochs 1 to the last, predicted and revealed.")
    run_key: str = Field(description="The stored run the rates come from.")


Feedback = ChoiceFeedback | OutputFeedback | CodeFeedback | StepsFeedback


def withheld(feedback: Feedback) -> Feedback:
    """The feedback of a wrong answer whose solution is not revealed yet: what is wrong, but
    not the key — no correct choice, no expected output. (A code answer's feedback never
    holds the reference solution: it is withheld with the solution.)"""
    if isinstance(feedback, ChoiceFeedback):
        return feedback.model_copy(update={"correct_choice": None, "correct_label": None})
    if isinstance(feedback, OutputFeedback):
        return feedback.model_copy(update={"expected": None})
    return feedback


@dataclass(frozen=True)
class Grade:
    """The verdict on one answer."""

    answer: Any
    correct: bool
    score: float
    feedback: Feedback


def choice_label(index: int) -> str:
    """The letter shown before a choice: 0 → "A"."""
    return CHOICE_LABELS[index]


def parse_choice(question: ChoiceQuestion, raw: Any) -> int:
    """A choice answer as its 0-based index: an int, or a label such as "B"; else Invalid."""
    count = len(question.choices)
    if isinstance(raw, bool):
        raise Invalid("answer must be a choice index or a letter, not true/false", field="answer")
    if isinstance(raw, str):
        text = raw.strip()
        if text.isdigit() and len(text) > MAX_INDEX_DIGITS:  # (int() refuses 4300 digits)
            raise Invalid(
                f"answer must be a choice index 0–{count - 1}, got {_shorten(text)}",
                field="answer",
            )
        if text.isdigit():
            raw = int(text)
        elif len(text) == 1 and text.upper() in CHOICE_LABELS[:count]:
            return CHOICE_LABELS.index(text.upper())
        else:
            raise Invalid(
                f"answer must be a choice index 0–{count - 1} or a letter "
                f"A–{choice_label(count - 1)}, got {_shorten(raw)}",
                field="answer",
            )
    if not isinstance(raw, int):
        raise Invalid("answer must be a choice index or a letter", field="answer")
    if not 0 <= raw < count:
        raise Invalid(f"answer must be a choice index 0–{count - 1}, got {raw}", field="answer")
    return raw


def _shorten(value: object, limit: int = 40) -> str:
    """A value as it may be echoed back in a message: never the whole of a huge input."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def grade_choice(question: ChoiceQuestion, raw_answer: Any) -> Grade:
    """Grade a choice answer; an answer that cannot be one raises Invalid."""
    picked = parse_choice(question, raw_answer)
    correct_index = question.correct_index
    correct = picked == correct_index
    feedback = ChoiceFeedback(
        picked=picked,
        picked_label=choice_label(picked),
        correct_choice=correct_index,
        correct_label=choice_label(correct_index),
        mistake=None if correct else question.choices[picked].mistake,
    )
    return Grade(answer=picked, correct=correct, score=1.0 if correct else 0.0, feedback=feedback)


# --- output questions ---------------------------------------------------------------------


def expected_output(question: OutputQuestion, run: RunResult[None]) -> str:
    """The key a run gives: the value of `expression`, what the code printed, or the
    exception it raised ("raises ValueError: …")."""
    if run.status is Verdict.ERROR and run.error is not None:
        return f"raises {run.error.type}: {run.error.message}".rstrip(": ")
    if run.status is not Verdict.OK:
        raise ValueError(f"a run that ended in {run.status} has no key")
    text = run.value if question.expression is not None else run.stdout
    return (text or "").strip()


def _valid_text(text: str) -> str:
    """`text`, if it is text that can be stored and shown (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(
            "answer contains characters that are not valid text", field="answer"
        ) from None
    return text


def parse_output_answer(raw: Any) -> str:
    """An output answer is text (a bare number is accepted too)."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise Invalid("answer must be the text the code prints", field="answer")
    text = _valid_text(str(raw)).strip()
    if not text:
        raise Invalid("Type what the code prints before submitting.", field="answer")
    if len(text) > MAX_ANSWER_LENGTH:
        raise Invalid(f"answer is longer than {MAX_ANSWER_LENGTH} characters", field="answer")
    return text


def _tokens(text: str) -> list[tuple[str, str]]:
    return [
        ("number", match.group("number"))
        if match.group("number")
        else ("word", match.group("word").lower())
        for match in _TOKEN.finditer(text)
    ]


def _significant_digits(text: str) -> int:
    digits = text.lower().split("e")[0].lstrip("+-").replace(".", "").lstrip("0")
    return len(digits)


def numbers_match(given: str, expected: str) -> bool:
    """Equal up to float noise, or the key correctly rounded to the learner's precision."""
    a, b = float(given), float(expected)
    if math.isinf(a) or math.isinf(b) or math.isnan(a) or math.isnan(b):
        return str(a) == str(b)  # inf only matches inf of the same sign; nan matches nan
    if math.isclose(a, b, rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-12):
        return True
    if _significant_digits(given) < MIN_ROUNDED_DIGITS:
        return False
    try:
        quantum = Decimal(given.lstrip("+"))
        exact = Decimal(expected)
        return any(
            exact.quantize(quantum, rounding=mode) == quantum
            for mode in (ROUND_HALF_EVEN, ROUND_HALF_UP)
        )
    except InvalidOperation:
        return False


def compare_output(given: str, expected: str) -> str | None:
    """None when `given` matches `expected`; otherwise, where it differs — in words that never
    hold the key, so that a learner can be told before they try again."""
    if expected.startswith("raises "):
        exception = expected.split()[1].rstrip(":")
        named = _RAISES.match(given)
        if named and named.group("name").rsplit(".", 1)[-1].lower() == exception.lower():
            return None
        if named and named.group("name")[0].isupper():
            return f"the run does not raise {named.group('name')}"
        return "the run does not get as far as printing anything"
    if given_raises := _RAISES.match(given):
        name = given_raises.group("name")
        if name[0].isupper() and name.endswith(("Error", "Exception", "Warning")):
            return f"the run does not raise {name}: it finishes"
    want, got = _tokens(expected), _tokens(given)
    if got and all(kind == "number" for kind, _ in got):
        want = [token for token in want if token[0] == "number"]
    if len(want) != len(got):
        return f"the run printed {plural(len(want), 'value')}, your answer has {len(got)}"
    for position, ((want_kind, want_text), (got_kind, got_text)) in enumerate(
        zip(want, got, strict=True), start=1
    ):
        where = f"value {position} ({got_text})" if len(want) > 1 else got_text
        if want_kind != got_kind:
            printed = "a number" if want_kind == "number" else "a word"
            return f"{where}: the run printed {printed} there"
        if want_kind == "number" and not numbers_match(got_text, want_text):
            return f"{where} is not what the run printed"
        if want_kind == "word" and want_text != got_text:
            return f"{where} is not the word the run printed"
    return None


def diagnose_output(given: str, expected: str, run: RunResult[None]) -> str | None:
    """The misconception a wrong single number reveals, read off the run's own trace: the
    rate before any scheduler step, or after fewer calls of `scheduler.step()` than the code
    makes. None when the trace does not explain it (or the answer is not one number)."""
    got, want = _tokens(given), [t for t in _tokens(expected) if t[0] == "number"]
    if len(got) != 1 or got[0][0] != "number" or len(want) != 1 or not run.trace:
        return None
    value, key = got[0][1], want[0][1]
    calls = [event.lrs[0] for event in run.trace if event.kind == "scheduler" and event.lrs]
    initial = run.trace[0].lrs[0] if run.trace[0].lrs and run.trace[0].kind == "optimizer" else None

    def same(number: float | None) -> bool:
        return number is not None and numbers_match(value, repr(number))

    if same(float(key)):  # the answer is the key in another form: nothing to diagnose
        return None
    if calls and same(calls[-1]):
        return None  # the last rate, printed differently: the comparison said where
    if len(calls) >= 2 and same(calls[-2]):
        return (
            "That is the rate one `scheduler.step()` too early: count the calls the code "
            f"makes ({len(calls)}) — each one moves the schedule on once."
        )
    if initial is not None and same(initial):
        return (
            "That is the rate before any `scheduler.step()`: the scheduler has changed it "
            "since. Follow it through each call."
        )
    for count, rate in enumerate(calls[:-2], start=1):
        if same(rate):
            return (
                f"That is the rate after {plural(count, 'call')} of `scheduler.step()`; the "
                f"code makes {len(calls)}."
            )
    return None


def grade_output(
    question: OutputQuestion,
    run: RunResult[None],
    raw_answer: Any,
    *,
    variant: int,
    params: dict[str, Any],
    run_key: str,
) -> Grade:
    """Grade an output answer against the key of the run of its variant."""
    given = parse_output_answer(raw_answer)
    expected = expected_output(question, run)
    reason = compare_output(given, expected)
    feedback = OutputFeedback(
        given=given,
        expected=expected,
        reason=reason,
        diagnosis=None if reason is None else diagnose_output(given, expected, run),
        variant=variant,
        params=params,
        run_key=run_key,
    )
    correct = reason is None
    return Grade(answer=given, correct=correct, score=1.0 if correct else 0.0, feedback=feedback)


def grade(question: Question, raw_answer: Any) -> Grade:
    """Grade a choice question (output questions need their run: see `grade_output`)."""
    if not isinstance(question, ChoiceQuestion):
        raise TypeError("output questions are graded with grade_output()")
    return grade_choice(question, raw_answer)


# --- code questions -----------------------------------------------------------------------------


MAX_CODE_CHARS = 20_000  # a learner's code, in characters
MAX_CODE_BYTES = 60_000  # …and in UTF-8 bytes, under the sandbox's 64 KiB job limit


def parse_code_answer(raw: Any) -> str:
    """A code answer is the text of the code, not empty and not huge."""
    if not isinstance(raw, str) or not raw.strip():
        raise Invalid("Write some code before submitting.", field="answer")
    if len(raw) > MAX_CODE_CHARS or len(_valid_text(raw).encode()) > MAX_CODE_BYTES:
        raise Invalid(
            f"Your code is longer than {MAX_CODE_CHARS} characters ({MAX_CODE_BYTES // 1000} kB).",
            field="answer",
        )
    return raw.replace("\r\n", "\n")


SYNTAX_ERRORS = ("SyntaxError", "IndentationError", "TabError")


def not_yet_an_answer(question: CodeQuestion, code: str) -> str | None:
    """Why `code` is not an answer to try yet, or None: it is the starting code as given (a
    fix question's: the buggy code itself)."""
    start = question.starter.strip()
    if not start or code.strip() != start:
        return None
    if isinstance(question, FixQuestion):
        return "This is the code as given, bug and all: find the bug and change it, then run it."
    return "This is the starting code as given: complete it (fill in the `...`), then run it."


def unreadable(feedback: Feedback) -> str | None:
    """Why a code answer was not a try, or None: Python could not read it (a typo, an
    indentation slip) — said with its line, so that it is fixed and run again."""
    error = feedback.error if isinstance(feedback, CodeFeedback) else None
    if error is None or error.type not in SYNTAX_ERRORS:
        return None
    where = f"line {error.line}: " if error.line else ""
    return (
        f"Python could not read your code ({where}{error.type}: {error.message}). Fix it and "
        "run it again: a slip like this is not counted as a try."
    )


ONE_STEP_AN_EPOCH = CodeCheck()  # a step-through steps its scheduler once an epoch


def _first_group(run: RunResult[CodeData]) -> list[float]:
    trajectory = run.data.trajectory if run.data is not None else []
    return [step[0] for step in trajectory if step]


def grade_code(
    question: CodeQuestion,
    reference: RunResult[CodeData],
    learner: RunResult[CodeData],
    code: str,
    *,
    reference_key: str,
) -> Grade:
    """Grade code by comparing its run with the reference's, as the question's check says."""
    verdict = codecheck.judge(question.check, reference, learner)
    feedback = CodeFeedback(
        message=verdict.message,
        verdict=learner.status.value,
        divergence=verdict.divergence,
        expected=verdict.expected,
        got=verdict.got,
        mistake=verdict.mistake.name if verdict.mistake else None,
        explanation=verdict.mistake.explanation if verdict.mistake else None,
        error=learner.error,
        warnings=learner.warnings,
        learner_lrs=_first_group(learner),
        target_lrs=_first_group(reference),
        reference_key=reference_key,
    )
    return Grade(
        answer=code,
        correct=verdict.correct,
        score=1.0 if verdict.correct else 0.0,
        feedback=feedback,
    )


# --- step-through scenarios --------------------------------------------------------------------

MAX_PREDICTION_CHARS = 40  # room for any float's repr, and no more
_DECIMAL = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")


def parse_prediction(raw: Any, *, epoch: int, field: str = "answer") -> str:
    """One predicted learning rate, as typed (trimmed): a decimal number such as `0.05` or
    `5e-2` (a JSON number is taken as its text); anything else is Invalid, on `field`."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise Invalid(f"Epoch {epoch}: give a number, such as 0.05.", field=field)
    text = _valid_text(str(raw)).strip()
    if not text:
        raise Invalid(f"Epoch {epoch}: type the learning rate you predict.", field=field)
    if len(text) > MAX_PREDICTION_CHARS or not _DECIMAL.match(text):
        raise Invalid(
            f"Epoch {epoch}: {_shorten(text)} is not a number; write it like 0.05 or 5e-2.",
            field=field,
        )
    return text


def parse_steps_answer(raw: Any, *, count: int, partial: bool = False) -> list[str]:
    """A step-through answer: the predicted rates of epochs 1 to `count`, in order (epoch
    0's is given), as typed. `partial`: the first few of them will do."""
    if not isinstance(raw, list):
        raise Invalid(
            f"answer must be a list of {count} numbers: the learning rates you predict for "
            f"epochs 1 to {count}",
            field="answer",
        )
    if len(raw) > count:
        raise Invalid(
            f"This scenario has {plural(count, 'epoch')} to predict (1 to {count}), "
            f"not {len(raw)}.",
            field="answer",
        )
    if not partial and len(raw) < count:
        raise Invalid(
            f"Predict every epoch from 1 to {count}: the answer has {plural(len(raw), 'number')}.",
            field="answer",
        )
    return [
        parse_prediction(item, epoch=epoch, field="answer")
        for epoch, item in enumerate(raw, start=1)
    ]


def scenario_lrs(run: RunResult[CodeData], epochs: int) -> list[float]:
    """The rate each epoch of a scenario's run trained with (its one param group). Conflict
    if the run does not give them all: import refuses such a scenario, so only a torch that
    changed since can."""
    lrs = _first_group(run)
    if run.status is not Verdict.OK or len(lrs) < epochs:
        raise Conflict(
            "This scenario no longer runs to its end on this server (it did when it was "
            "checked): an instructor needs to look at it."
        )
    return lrs[:epochs]


def step_outcomes(lrs: list[float], predictions: list[str]) -> list[StepOutcome]:
    """Predictions of epochs 1, 2, … (parsed) against the run's rates, with the numeric
    rules of output answers (float noise, or the rate correctly rounded)."""
    return [
        StepOutcome(
            epoch=epoch, given=given, lr=lrs[epoch], correct=numbers_match(given, repr(lrs[epoch]))
        )
        for epoch, given in enumerate(predictions, start=1)
    ]


def grade_steps(
    question: StepsQuestion, run: RunResult[CodeData], raw_answer: Any, *, run_key: str
) -> Grade:
    """Grade a whole step-through: one prediction per epoch after the first; the score is
    the fraction right, and it is correct when all are."""
    predictions = parse_steps_answer(raw_answer, count=question.epochs - 1)
    lrs = scenario_lrs(run, question.epochs)
    steps = step_outcomes(lrs, predictions)
    right = sum(step.correct for step in steps)
    if right == len(steps):
        message = f"All {plural(len(steps), 'epoch')} right."
    else:
        miss = next(step.epoch for step in steps if not step.correct)
        first = codecheck.name_step(ONE_STEP_AN_EPOCH, miss)
        message = f"{right} of {plural(len(steps), 'epoch')} right; the first miss is {first}."
    feedback = StepsFeedback(message=message, first_lr=lrs[0], steps=steps, run_key=run_key)
    return Grade(
        answer=predictions,
        correct=right == len(steps),
        score=right / len(steps),
        feedback=feedback,
    )
