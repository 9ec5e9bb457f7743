"""Variants of output questions: parameters filled into the code and the text around it.

`{{ name }}` in `code` becomes the value as a Python literal (repr); in prose (prompt, hint,
mistakes, explanation) it becomes the value as text. Every combination of parameter values is
one variant, numbered 0..n-1 in the order the file lists them.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.bank.schema import OutputQuestion

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
MAX_VARIANTS = 256  # every variant is run at import: keep that a few seconds at most

Value = bool | int | float | str
Variant = dict[str, Value]


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


def count(question: OutputQuestion) -> int:
    """How many variants the question has (1 without parameters)."""
    total = 1
    for spec in question.params.values():
        total *= size_of(spec)
    return total


def variant(question: OutputQuestion, index: int) -> Variant:
    """The parameter values of variant `index`."""
    names = list(question.params)
    pools = [values_of(question.params[name]) for name in names]
    for i, combination in enumerate(itertools.product(*pools)):
        if i == index:
            return dict(zip(names, combination, strict=True))
    raise IndexError(f"variant {index} of {count(question)}")


def all_variants(question: OutputQuestion) -> list[Variant]:
    """Every variant, in order."""
    names = list(question.params)
    pools = [values_of(question.params[name]) for name in names]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*pools)]


def render_code(template: str, values: Variant) -> str:
    """Fill `{{ name }}` with Python literals."""
    return PLACEHOLDER.sub(lambda match: repr(values[match.group(1)]), template)


def render_text(template: str, values: Variant) -> str:
    """Fill `{{ name }}` with plain text."""
    return PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), template)


def render(question: OutputQuestion, index: int) -> OutputQuestion:
    """The question as variant `index` shows it: code and text filled in."""
    if not question.params:
        return question
    values = variant(question, index)
    solution = question.solution.model_copy(
        update={
            "steps": [
                step.model_copy(
                    update={
                        "body": render_text(step.body, values),
                        "title": render_text(step.title, values),
                    }
                )
                for step in question.solution.steps
            ],
            "quick_check": question.solution.quick_check
            and render_text(question.solution.quick_check, values),
        }
    )
    return question.model_copy(
        update={
            "code": render_code(question.code, values),
            "expression": question.expression and render_code(question.expression, values),
            "prompt": render_text(question.prompt, values),
            "hint": question.hint and render_text(question.hint, values),
            "mistakes": [render_text(mistake, values) for mistake in question.mistakes],
            "solution": solution,
        }
    )


def pick(learner_key: str, question_id: str, total: int) -> int:
    """A variant index seeded by learner and question: the same one every time."""
    digest = hashlib.sha256(f"{learner_key}:{question_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % total


def _texts(question: OutputQuestion) -> list[str]:
    texts = [
        question.prompt,
        *question.mistakes,
        *(s.body for s in question.solution.steps),
        *(s.title for s in question.solution.steps),
    ]
    return texts + [t for t in (question.hint, question.solution.quick_check) if t]


def check(question: OutputQuestion) -> None:
    """Every placeholder names a parameter, every parameter is used in the code, ranges and
    value lists make sense, and there are not too many variants."""
    from app.bank.schema import FieldValueError  # the schema calls this check

    declared = set(question.params)
    used_in_code = set(PLACEHOLDER.findall(question.code + "\n" + (question.expression or "")))
    used = used_in_code.union(*(PLACEHOLDER.findall(text) for text in _texts(question)))
    if unknown := sorted(used - declared):
        raise FieldValueError("code", f"placeholders without a parameter: {', '.join(unknown)}")
    if unused := sorted(declared - used_in_code):
        raise FieldValueError(
            f"params.{unused[0]}",
            f"parameters not used in `code` or `expression`: {', '.join(unused)}",
        )
    if (total := count(question)) > MAX_VARIANTS:
        raise FieldValueError("params", f"{total} variants is more than {MAX_VARIANTS}")
    for name, spec in question.params.items():
        if size_of(spec) == 0:
            raise FieldValueError(f"params.{name}", f"parameter {name!r} has no values")
        values = values_of(spec)  # small now: the count is checked above
        if len({repr(v) for v in values}) != len(values):
            raise FieldValueError(f"params.{name}", f"parameter {name!r} repeats a value")
    if question.answer is not None and question.params:
        raise FieldValueError(
            "answer",
            "`answer` can only be checked without `params` (each variant has its "
            "own key, computed by running it)",
        )
