"""Grading: every question's own key is correct, every other choice is not."""

from __future__ import annotations

import pytest

from app.bank.files import read_bank
from app.bank.schema import ChoiceQuestion
from app.errors import Invalid
from app.grading import grade, parse_choice
from tests.conftest import QUESTIONS
from tests.factories import choice_question

ALL_QUESTIONS = [s.question for p in read_bank(QUESTIONS) for s in p.questions]


@pytest.mark.parametrize("question", ALL_QUESTIONS, ids=lambda q: q.id)
def test_own_key_is_correct_and_every_other_choice_is_wrong(question: ChoiceQuestion) -> None:
    for index, choice in enumerate(question.choices):
        result = grade(question, index)
        assert result.correct is choice.correct
        assert result.score == (1.0 if choice.correct else 0.0)
        assert result.feedback.mistake == (None if choice.correct else choice.mistake)


QUESTION = ChoiceQuestion.model_validate(
    choice_question(
        choices=[{"text": "w", "correct": True}, {"text": "x"}, {"text": "y"}, {"text": "z"}]
    )
)


@pytest.mark.parametrize(("raw", "index"), [(0, 0), ("0", 0), ("A", 0), (" b ", 1), ("1", 1)])
def test_an_answer_may_be_an_index_or_a_label(raw: object, index: int) -> None:
    assert parse_choice(QUESTION, raw) == index


@pytest.mark.parametrize("raw", [-1, 4, 99, "E", "AB", "", True, 1.0, None, [0]])
def test_an_answer_that_cannot_be_one_is_invalid(raw: object) -> None:
    with pytest.raises(Invalid) as caught:
        parse_choice(QUESTION, raw)
    assert caught.value.field == "answer"
    assert "answer must be" in caught.value.message
