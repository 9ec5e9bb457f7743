"""Errors a user can cause, each carrying its HTTP status.

    AppError (400)
    ├── Unauthorized (401)  log in (or send an API token) first
    ├── NotFound (404)      no such pattern, question or attempt
    ├── Forbidden (403)     it exists, but is not yours to see or do
    ├── Conflict (409)      the thing is not in a state that allows this (a finished test)
    ├── TooLarge (413)      the request's body is over the limit
    ├── Invalid (422)       the input cannot be right; `field` names which part
    ├── UnsupportedMediaType (415)  not JSON where JSON is required
    ├── TooManyRequests (429)  slow down: try again in `retry_after` seconds
    └── Busy (503)          try again in `retry_after` seconds

`Problem` is what is wrong and in which field (a schema error, Markdown that would not show,
a run that failed); `Invalid` and its kin carry them. `validation_message` words a Pydantic
error as ours, for question files and requests alike. Domain code raises these; one handler
in app.main renders them as JSON for API clients and as an HTML page for browsers. Anything
else is a bug and stays a 500.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.wording import plural


@dataclass(frozen=True)
class Problem:
    """What is wrong, in which field (`choices.1.mistake`, `(file)` for the whole), and on
    which line of the YAML when that is known; reads `line 3: field: message`."""

    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.field}: {self.message}"


def validation_message(error: Mapping[str, Any]) -> str:
    """A Pydantic error (its `type`, `ctx` and `msg`) in our words: a short predicate that
    follows the field's name, e.g. `must be a whole number`, `is required`. A check of our
    own (a ValueError raised in a validator) already speaks ours; a kind of error not worded
    here keeps the library's sentence, in brackets."""
    kind = str(error.get("type", ""))
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    if kind in _WORDED:
        return _WORDED[kind]
    match kind, ctx:
        case (("value_error" | "assertion_error"), {"error": cause}) if str(cause):
            return str(cause)
        case "greater_than", {"gt": bound}:
            return f"must be more than {bound}"
        case "greater_than_equal", {"ge": bound}:
            return f"must be at least {bound}"
        case "less_than", {"lt": bound}:
            return f"must be less than {bound}"
        case "less_than_equal", {"le": bound}:
            return f"must be at most {bound}"
        case "multiple_of", {"multiple_of": step}:
            return f"must be a multiple of {step}"
        case "string_too_short", {"min_length": 1}:
            return "must not be empty"
        case "string_too_short", {"min_length": length}:
            return f"must be at least {plural(length, 'character')}"
        case "string_too_long", {"max_length": length}:
            return f"must be at most {plural(length, 'character')}"
        case "string_pattern_mismatch", {"pattern": pattern}:
            return f"must match the pattern {pattern}"
        case "too_short", {"min_length": length}:
            return f"must have at least {plural(length, 'item')}"
        case "too_long", {"max_length": length}:
            return f"must have at most {plural(length, 'item')}"
        case (("literal_error" | "enum"), {"expected": expected}):
            return f"must be {_alternatives(str(expected))}"
        case "union_tag_invalid", {"tag": tag, "expected_tags": expected}:
            return f"{tag!r} is not {_alternatives(str(expected))}"
        case "union_tag_not_found", {"discriminator": name}:
            return "must say its " + str(name).strip("'")
        case "json_invalid", _:
            return f"is not valid JSON{_json_position(ctx)}"
    return f"is not valid ({error.get('msg') or kind})"


def _alternatives(expected: str) -> str:
    """Pydantic's `'easy', 'medium' or 'hard'` as `one of easy, medium, hard`."""
    values = [
        part[1:-1] if len(part) >= 2 and part[0] == part[-1] and part[0] in "'\"" else part
        for part in re.split(r", | or ", expected)
    ]
    return values[0] if len(values) == 1 else "one of " + ", ".join(values)


def _json_position(ctx: Mapping[str, Any]) -> str:
    """`: line 1, column 6`, from a context with `line` and `column` (as app.main gives it
    for a request's body) or from a parser's message that ends `at line 1 column 6`."""
    line, column = ctx.get("line"), ctx.get("column")
    if line is None and (found := re.search(r"line (\d+) column (\d+)", str(ctx.get("error")))):
        line, column = found.groups()
    return f": line {line}, column {column}" if line is not None else ""


# Errors whose kind says it all.
_WORDED: dict[str, str] = {
    "missing": "is required",
    "extra_forbidden": "is not something this takes",
    **dict.fromkeys(("int_type", "int_parsing", "int_from_float"), "must be a whole number"),
    "int_parsing_size": "is too large a number",
    **dict.fromkeys(
        ("float_type", "float_parsing", "decimal_type", "decimal_parsing"), "must be a number"
    ),
    "finite_number": "must be a finite number",
    **dict.fromkeys(("bool_type", "bool_parsing"), "must be true or false"),
    **dict.fromkeys(("string_type", "string_sub_type", "string_unicode"), "must be text"),
    **dict.fromkeys(
        ("dict_type", "mapping_type", "model_type", "model_attributes_type", "dataclass_type"),
        "must be an object (keys and values)",
    ),
    **dict.fromkeys(
        ("list_type", "tuple_type", "set_type", "frozen_set_type", "iterable_type"),
        "must be a list",
    ),
    "none_required": "must be null",
    "json_type": "must be JSON text",
    "recursion_loop": "is nested too deeply",
}


class AppError(Exception):
    """Base of errors that a client caused or can recover from."""

    status = 400
    title = "Bad request"
    extra: dict[str, object] | None = None  # more for API clients, e.g. every problem found

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Unauthorized(AppError):
    """Nobody is logged in (or the API token is wrong), and this needs someone who is."""

    status = 401
    title = "Log in first"


class NotFound(AppError):
    """The thing asked for does not exist (or is hidden from this user)."""

    status = 404
    title = "Not found"


class Forbidden(AppError):
    """The thing exists, but this user may not see or change it."""

    status = 403
    title = "Forbidden"


class Conflict(AppError):
    """The request clashes with the thing's current state."""

    status = 409
    title = "Conflict"


class TooLarge(AppError):
    """The request's body is larger than this route takes."""

    status = 413
    title = "Too large"


class Invalid(AppError):
    """The input is malformed or cannot be a valid answer."""

    status = 422
    title = "Invalid input"


class UnsupportedMediaType(AppError):
    """The body is not in a format this endpoint takes."""

    status = 415
    title = "Unsupported media type"


class TooManyRequests(AppError):
    """This client (or account) has made too many attempts; it may retry later."""

    status = 429
    title = "Too many attempts"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Busy(AppError):
    """The server is at capacity; the client should retry later."""

    status = 503
    title = "Busy"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after
