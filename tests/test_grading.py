"""Grading: every question's own key is correct, every other choice is not."""

from __future__ import annotations

import re

import pytest

from app.bank.files import read_bank
from app.bank.schema import ChoiceQuestion
from app.checking.grading import (
    compare_output,
    diagnose_output,
    grade,
    parse_choice,
    parse_output_answer,
)
from app.errors import Invalid
from app.sandbox.protocol import RunResult, TraceEvent, Verdict
from tests.conftest import QUESTIONS
from tests.factories import choice_question

CHOICE_QUESTIONS = [
    s.question
    for p in read_bank(QUESTIONS)
    for s in p.questions
    if isinstance(s.question, ChoiceQuestion)
]


@pytest.mark.parametrize("question", CHOICE_QUESTIONS, ids=lambda q: q.id)
def test_own_key_is_correct_and_every_other_choice_is_wrong(question: ChoiceQuestion) -> None:
    for index, choice in enumerate(question.choices):
        result = grade(question, index)
        assert result.correct is choice.correct
        assert result.score == (1.0 if choice.correct else 0.0)
        assert result.feedback.mistake == (None if choice.correct else choice.mistake)


QUESTION = ChoiceQuestion.model_validate(
    choice_question(
        choices=[
            {"text": "w", "correct": True},
            *({"text": text, "mistake": f"Not {text}."} for text in "xyz"),
        ]
    )
)


@pytest.mark.parametrize(("raw", "index"), [(0, 0), ("0", 0), ("A", 0), (" b ", 1), ("1", 1)])
def test_an_answer_may_be_an_index_or_a_label(raw: object, index: int) -> None:
    assert parse_choice(QUESTION, raw) == index


@pytest.mark.parametrize(
    "raw", [-1, 4, 99, "E", "AB", "", True, 1.0, None, [0], "0" * 20_000, "1" * 5000]
)
def test_an_answer_that_cannot_be_one_is_invalid(raw: object) -> None:
    with pytest.raises(Invalid) as caught:
        parse_choice(QUESTION, raw)
    assert caught.value.field == "answer"
    assert "answer must be" in caught.value.message


# --- output answers ------------------------------------------------------------------------

RIGHT = [
    ("[0.05]", "[0.05]"),
    ("0.05", "[0.05]"),
    ("0.050", "[0.05]"),
    ("  0.05 \n\n", "[0.05]"),
    ("0.0729", "[0.07290000000000002]"),
    ("0.07290000000000002", "0.07290000000000002"),
    ("0.1476", "0.14762250000000005"),  # correctly rounded, 4 significant digits
    ("1e-3", "0.001"),
    ("0.05, 0.1", "0.05\n0.1\n"),
    ("tensor(0.5)", "tensor([0.5000])"),
    ("true", "True"),
    ("ValueError", "raises ValueError: Tried to step 13 times"),
    ("it raises a valueerror", "raises ValueError: Tried to step 13 times"),
    ("raises ValueError: Tried to step 13 times", "raises ValueError: Tried to step 13 times"),
    ("builtins.ValueError", "raises ValueError: x"),
    ("inf", "inf"),
    ("[-inf, 0.5]", "[-inf, 0.5]"),
    ("nan", "tensor(nan)"),
    ("10 0.05", "10 0.05"),
]
WRONG = [
    ("0.5", "[0.05]"),
    ("0.15", "0.14762250000000005"),  # rounded to too few digits to tell
    ("0.1477", "0.14762250000000005"),  # not the correct rounding
    ("0.05", "[0.05, 0.1]"),
    ("0.05 0.1 0.2", "[0.05, 0.1]"),
    ("False", "True"),
    ("TypeError", "raises ValueError: x"),
    ("0.05", "raises ValueError: x"),
    ("ValueError", "0.05"),
    ("no ValueError is raised, it prints 0.1", "raises ValueError: x"),
    ("TypeError KeyError ValueError RuntimeError", "raises ValueError: x"),
    ("ValueError or TypeError", "raises ValueError: x"),
    ("-inf", "inf"),
    ("inf", "1e308"),
]


@pytest.mark.parametrize(("given", "expected"), RIGHT)
def test_output_answers_that_are_right(given: str, expected: str) -> None:
    assert compare_output(given, expected) is None


@pytest.mark.parametrize(("given", "expected"), WRONG)
def test_output_answers_that_are_wrong_say_where_but_never_the_key(
    given: str, expected: str
) -> None:
    reason = compare_output(given, expected)
    assert reason, f"{given!r} should not match {expected!r}"
    for token in re.findall(r"[A-Za-z_]\w*|\d[\d.e+-]*", expected.removeprefix("raises ")):
        if token not in given and token not in ("value", "the", "run", "printed"):
            assert token not in reason, f"{reason!r} gives away {token!r} of the key"


def _run(*events: tuple[str, float]) -> RunResult[None]:
    """A run whose trace is these (kind, lr) events, in order."""
    trace = [
        TraceEvent(
            kind=kind, name="SGD" if kind == "optimizer" else "StepLR", call=i, line=None, lrs=[lr]
        )  # type: ignore[arg-type]
        for i, (kind, lr) in enumerate(events, start=1)
    ]
    return RunResult[None](status=Verdict.OK, stdout="", trace=trace)


# StepLR(step_size=2, gamma=0.5) from 0.1, three epochs: optimizer, then scheduler, each time.
THREE_EPOCHS = _run(
    ("optimizer", 0.1),
    ("scheduler", 0.1),
    ("optimizer", 0.1),
    ("scheduler", 0.05),
    ("optimizer", 0.05),
    ("scheduler", 0.05),
)
FOUR_CALLS = _run(
    ("optimizer", 0.1),
    ("scheduler", 0.1),
    ("scheduler", 0.05),
    ("scheduler", 0.05),
    ("scheduler", 0.025),
)


@pytest.mark.parametrize(
    ("given", "expected", "run", "says"),
    [
        ("0.05", "0.025", FOUR_CALLS, "one `scheduler.step()` too early"),
        ("0.1", "0.05", THREE_EPOCHS, "before any `scheduler.step()`"),
        ("[0.1]", "[0.025]", FOUR_CALLS, "before any `scheduler.step()`"),
        ("0.3", "0.025", FOUR_CALLS, None),  # nothing in the run explains it
        ("0.05", "0.025 0.025", FOUR_CALLS, None),  # not one number: no single rate to match
        ("0.025", "0.025", FOUR_CALLS, None),  # right: nothing to diagnose
    ],
)
def test_a_wrong_number_is_diagnosed_from_the_runs_own_trace(
    given: str, expected: str, run: RunResult[None], says: str | None
) -> None:
    diagnosis = diagnose_output(given, expected, run)
    if says is None:
        assert diagnosis is None
    else:
        assert diagnosis is not None and says in diagnosis
        assert "0.025" not in diagnosis  # the key stays the learner's to find


@pytest.mark.parametrize("raw", ["", "   ", None, True, ["0.05"], "x" * 5000])
def test_an_output_answer_that_cannot_be_one_is_invalid(raw: object) -> None:
    with pytest.raises(Invalid) as caught:
        parse_output_answer(raw)
    assert caught.value.field == "answer"
