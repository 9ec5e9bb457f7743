"""Pydantic's errors, in our words: what app.errors.validation_message makes of each kind."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import pytest
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from app.errors import validation_message


class Level(StrEnum):
    EASY = "easy"
    MEDIUM = "medium"
    HARD = "hard"


class Sample(BaseModel):
    """A model with a field of each kind the app's requests and question files use."""

    model_config = ConfigDict(extra="forbid")

    count: int = Field(default=1, ge=1, le=1000)
    ratio: float = 0.5
    flag: bool = False
    name: str = Field(default="x", min_length=1, max_length=10)
    code: str = Field(default="ab", min_length=2)
    slug: Annotated[str, StringConstraints(pattern=r"^[a-z]+$")] = "ok"
    items: list[int] = Field(default=[1], min_length=1, max_length=2)
    level: Level = Level.EASY
    kind: Literal["trajectory", "final-lr"] = "trajectory"
    only: Literal["choice"] = "choice"
    mapping: dict[str, int] = Field(default_factory=dict)
    required: str


def _message(data: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        Sample.model_validate({"required": "here", **data})
    (error,) = caught.value.errors()
    return validation_message(error)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"count": "abc"}, "must be a whole number"),
        ({"count": 1.5}, "must be a whole number"),
        ({"count": "9" * 5000}, "is too large a number"),
        ({"count": 0}, "must be at least 1"),
        ({"count": 1001}, "must be at most 1000"),
        ({"ratio": "half"}, "must be a number"),
        ({"flag": "maybe"}, "must be true or false"),
        ({"name": ""}, "must not be empty"),
        ({"name": "x" * 11}, "must be at most 10 characters"),
        ({"code": "a"}, "must be at least 2 characters"),
        ({"name": 5}, "must be text"),
        ({"slug": "Not A Slug"}, "must match the pattern ^[a-z]+$"),
        ({"items": []}, "must have at least 1 item"),
        ({"items": [1, 2, 3]}, "must have at most 2 items"),
        ({"items": 3}, "must be a list"),
        ({"level": "brutal"}, "must be one of easy, medium, hard"),
        ({"kind": "other"}, "must be one of trajectory, final-lr"),
        ({"only": "output"}, "must be choice"),
        ({"mapping": 3}, "must be an object (keys and values)"),
        ({"colour": "blue"}, "is not something this takes"),
    ],
)
def test_each_kind_of_error_is_a_short_predicate_of_ours(data: Any, message: str) -> None:
    assert _message(data) == message


def test_a_missing_field_is_required() -> None:
    with pytest.raises(ValidationError) as caught:
        Sample.model_validate({})
    assert [validation_message(error) for error in caught.value.errors()] == ["is required"]


def test_not_an_object_at_all() -> None:
    with pytest.raises(ValidationError) as caught:
        Sample.model_validate([1, 2])
    (error,) = caught.value.errors()
    assert validation_message(error) == "must be an object (keys and values)"


def test_json_that_does_not_parse_says_where() -> None:
    with pytest.raises(ValidationError) as caught:
        TypeAdapter(dict[str, int]).validate_json('{"a": ')
    (error,) = caught.value.errors()
    assert validation_message(error) == "is not valid JSON: line 1, column 6"
    given = {"type": "json_invalid", "ctx": {"error": "Expecting value", "line": 3, "column": 1}}
    assert validation_message(given) == "is not valid JSON: line 3, column 1"


def _positive(value: int) -> int:
    if value <= 0:
        raise ValueError("a step must move forward")
    return value


def test_a_check_of_our_own_keeps_its_words() -> None:
    with pytest.raises(ValidationError) as caught:
        TypeAdapter(Annotated[int, AfterValidator(_positive)]).validate_python(-1)
    (error,) = caught.value.errors()
    assert validation_message(error) == "a step must move forward"


def test_a_kind_not_worded_keeps_the_librarys_sentence_in_brackets() -> None:
    with pytest.raises(ValidationError) as caught:
        TypeAdapter(datetime).validate_python("soon")
    (error,) = caught.value.errors()
    assert validation_message(error) == f"is not valid ({error['msg']})"
