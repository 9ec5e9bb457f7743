"""Grading an answer against a question. Pure: no database, no HTTP."""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.bank.schema import ChoiceQuestion, Question
from app.errors import Invalid

CHOICE_LABELS = string.ascii_uppercase


class ChoiceFeedback(BaseModel):
    """What a learner is told after answering a choice question."""

    kind: Literal["choice"] = "choice"
    picked: int = Field(description="0-based index of the picked choice.")
    picked_label: str = Field(description="Letter of the picked choice, e.g. `B`.")
    correct_choice: int = Field(description="0-based index of the correct choice.")
    correct_label: str = Field(description="Letter of the correct choice.")
    mistake: str | None = Field(
        default=None, description="The misconception behind the picked choice, if it is wrong."
    )


Feedback = ChoiceFeedback


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
        if text.isdigit():
            raw = int(text)
        elif len(text) == 1 and text.upper() in CHOICE_LABELS[:count]:
            return CHOICE_LABELS.index(text.upper())
        else:
            raise Invalid(
                f"answer must be a choice index 0–{count - 1} or a letter "
                f"A–{choice_label(count - 1)}, got {raw!r}",
                field="answer",
            )
    if not isinstance(raw, int):
        raise Invalid("answer must be a choice index or a letter", field="answer")
    if not 0 <= raw < count:
        raise Invalid(f"answer must be a choice index 0–{count - 1}, got {raw}", field="answer")
    return raw


def grade(question: Question, raw_answer: Any) -> Grade:
    """Grade `raw_answer`; an answer that cannot be one raises Invalid."""
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
