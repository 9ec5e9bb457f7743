"""Variants of output questions: parameters filled into the code and the text around it.

`{{ name }}` in `code` becomes the value as a Python literal (repr); in prose (prompt, hint,
mistakes, explanation) it becomes the value as text. Every combination of parameter values is
one variant, numbered 0..n-1 in the order the file lists them.
"""

from __future__ import annotations

import hashlib
import itertools

from app.bank.schema import PLACEHOLDER, OutputQuestion, Value, values_of

Variant = dict[str, Value]


def variant(question: OutputQuestion, index: int) -> Variant:
    """The parameter values of variant `index` (the index read as a mixed-radix number, the
    last parameter changing fastest, as itertools.product orders them)."""
    if not 0 <= index < question.variant_count:
        raise IndexError(f"variant {index} of {question.variant_count}")
    values: Variant = {}
    for name in reversed(list(question.params)):
        pool = values_of(question.params[name])
        index, position = divmod(index, len(pool))
        values[name] = pool[position]
    return {name: values[name] for name in question.params}


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


def without_placeholders(text: str) -> str:
    """Text with every `{{ name }}` shown as "…": the question named in a list, not one of
    its variants."""
    return PLACEHOLDER.sub("…", text)


MAX_REMEMBERED = 4096  # rendered variants kept: a bank's worth, a few kB each


class _Rendered:
    """Variants rendered before, by question object and index: a question (the bank keeps
    one object per version) always renders a variant the same way. An entry holds its
    question, so the object's id cannot be reused while the entry lives."""

    def __init__(self) -> None:
        self.entries: dict[tuple[int, int], tuple[OutputQuestion, OutputQuestion]] = {}

    def get(self, question: OutputQuestion, index: int) -> OutputQuestion:
        entry = self.entries.get((id(question), index))
        if entry is not None and entry[0] is question:
            return entry[1]
        if len(self.entries) >= MAX_REMEMBERED:
            self.entries.clear()
        rendered = _render(question, index)
        self.entries[id(question), index] = (question, rendered)
        return rendered


_rendered = _Rendered()


def render(question: OutputQuestion, index: int) -> OutputQuestion:
    """The question as variant `index` shows it: code and text filled in."""
    if not question.params:
        return question
    return _rendered.get(question, index)


def _render(question: OutputQuestion, index: int) -> OutputQuestion:
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
