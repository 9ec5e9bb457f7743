"""Moodle interchange: choice questions out as GIFT or Moodle XML, GIFT questions back in.

GIFT (https://docs.moodle.org/en/GIFT_format) is Moodle's plain-text quiz format. Both
formats carry what Moodle knows of a question: its title (GIFT's `::title::`, Moodle XML's
`<name>`), the prompt with its code, the options, the misconception behind each wrong option
(as that option's feedback) and the final answer with its quick check (as general feedback).
Hints, worked steps, modes and notes stay in the bank. `to_gift` writes an
`// id: … · difficulty: … · tags: …` comment before each question so that `from_gift` gets
back what GIFT itself has no place for. A GIFT question from elsewhere without a title gets
one from its prompt.
"""

from __future__ import annotations

import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from app.bank.files import BankError, format_validation_error
from app.bank.schema import (
    MAX_ID_LENGTH,
    NOT_PLAIN_TEXT,
    TITLE_MAX_CHARS,
    ChoiceQuestion,
    Difficulty,
)
from app.bank.variants import without_placeholders
from app.markup import plain_text

# GIFT's markup characters; a backslash before one makes it text. `\n` is Moodle's newline.
GIFT_SPECIAL = re.compile(r"([\\~=#{}:])")
GIFT_ESCAPE = re.compile(r"\\([\\~=#{}:n])")
# Moodle strips a leading `[format]` from every text; an answer starting with `%` reads as a
# weight. Prefixing such texts with the format Moodle would assume anyway keeps them intact.
TEXT_FORMAT = "markdown"
FORMAT_MARKER = re.compile(r"^\[(markdown|plain|html|moodle)\]")
MISREAD_STARTS = ("[", "%")
WEIGHT = re.compile(r"^\s*%-?\d+(\.\d*)?%")
TRUE_FALSE_ANSWERS = ("T", "TRUE", "F", "FALSE")
MISSING_WORD_BLANK = "_____"  # what Moodle shows where a missing-word question's gap is
METADATA_PREFIX = "id:"  # Moodle's own export comments start `// question:`, never this
METADATA_SEPARATOR = "·"  # not in slugs or difficulty names, so fields split cleanly
QUICK_CHECK_LABEL = "Quick check: "  # starts the general feedback's last paragraph
ANSWER_STEP_TITLE = "Answer"
WORDS_IN_DERIVED_ID = 6  # enough to tell questions apart, short enough for a URL
ANSWER_SHOWN_CHARS = 40  # enough to recognise an answer in an error, short enough for one line
FALLBACK_ID = "question"  # for a text with no letters or digits to make an id from
HTML_TAG = re.compile(r"</?[A-Za-z][^>]*>")  # Moodle's texts are often HTML ([html] format)
FALLBACK_TITLE = "Untitled question"  # for a question whose title and prompt have no words
CODE_LANGUAGE = "python"
MIN_FENCE = 3  # CommonMark's shortest code fence
# Moodle XML: every question weighs the same, loses a third of its mark per wrong try in
# interactive mode (Moodle's own default), and numbers its options a, b, c.
DEFAULT_GRADE = "1"
PENALTY = "0.3333333"
ANSWER_NUMBERING = "abc"
# Characters XML 1.0 cannot carry at all, not even escaped.
XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

# While a question is cut into parts, each escaped character waits as a private-use code point
# so that only unescaped ones act as markup.
_SPECIALS = "\\~=#{}:"
_PLACEHOLDERS = {char: chr(0xE000 + i) for i, char in enumerate(_SPECIALS)}
_RESTORE = str.maketrans({hold: char for char, hold in _PLACEHOLDERS.items()})


# --- export -------------------------------------------------------------------------------


def to_gift(questions: Sequence[ChoiceQuestion]) -> str:
    """The questions as Moodle GIFT text, one block per question."""
    if not questions:
        return ""
    return "\n\n".join(_gift_question(question) for question in questions) + "\n"


def _gift_question(question: ChoiceQuestion) -> str:
    separator = f" {METADATA_SEPARATOR} "
    metadata = separator.join(
        [
            f"id: {question.id}",
            f"difficulty: {question.difficulty.value}",
            f"tags: {', '.join(question.tags)}",
        ]
    )
    lines = [
        f"// {metadata}".rstrip(),
        f"::{_escape(question.title)}::[{TEXT_FORMAT}]{_escape(_question_text(question))}{{",
    ]
    for choice in question.choices:
        answer = f"\t{'=' if choice.correct else '~'}{_guarded(choice.text)}"
        if choice.mistake:
            answer += f"#{_guarded(choice.mistake)}"
        lines.append(answer)
    lines.append(f"\t####{_guarded(_general_feedback(question))}")
    lines.append("}")
    return "\n".join(lines)


def _escape(text: str) -> str:
    """GIFT text: markup characters escaped, and no line that would end or comment out
    the question (a blank line, or one starting `//`), which becomes Moodle's `\\n`."""
    escaped = GIFT_SPECIAL.sub(r"\\\1", text.replace("\r\n", "\n").replace("\r", "\n"))
    first, *rest = escaped.split("\n")
    parts = [first]
    for line in rest:
        unsafe = not line.strip() or line.lstrip().startswith("//")
        parts.append(("\\n" if unsafe else "\n") + line)
    return "".join(parts)


def _guarded(text: str) -> str:
    marker = f"[{TEXT_FORMAT}]" if text.startswith(MISREAD_STARTS) else ""
    return marker + _escape(text)


def _question_text(question: ChoiceQuestion) -> str:
    if not question.code:
        return question.prompt
    code = question.code.rstrip("\n")
    # A fence longer than any backtick run inside, so the code cannot close it early.
    longest_run = max((len(run) for run in re.findall(r"`+", code)), default=0)
    fence = "`" * max(MIN_FENCE, longest_run + 1)
    return f"{question.prompt}\n\n{fence}{CODE_LANGUAGE}\n{code}\n{fence}"


def _general_feedback(question: ChoiceQuestion) -> str:
    solution = question.solution
    if solution.quick_check:
        return f"{solution.final_answer}\n\n{QUICK_CHECK_LABEL}{solution.quick_check}"
    return solution.final_answer


def to_moodle_xml(questions: Sequence[ChoiceQuestion], *, category: str) -> str:
    """The questions as a Moodle XML quiz file in the course category `category`."""
    if not category.strip():
        raise ValueError("a Moodle category needs a name")
    quiz = ET.Element("quiz")
    header = ET.SubElement(quiz, "question", type="category")
    _text_child(header, "category", f"$course$/top/{category.strip()}")
    for question in questions:
        quiz.append(_xml_question(question))
    ET.indent(quiz)
    # Moodle reads `<text></text>` and `<text />` alike; the long form is what it writes.
    return (
        ET.tostring(quiz, encoding="unicode", xml_declaration=True, short_empty_elements=False)
        + "\n"
    )


def _xml_question(question: ChoiceQuestion) -> ET.Element:
    element = ET.Element("question", type="multichoice")
    _text_child(element, "name", question.title)
    _text_child(element, "questiontext", _question_text(question), format=TEXT_FORMAT)
    _text_child(element, "generalfeedback", _general_feedback(question), format=TEXT_FORMAT)
    for tag, value in [
        ("defaultgrade", DEFAULT_GRADE),
        ("penalty", PENALTY),
        ("hidden", "0"),
        ("idnumber", question.id),
        ("single", "true"),
        ("shuffleanswers", "false"),  # final answers name options by letter
        ("answernumbering", ANSWER_NUMBERING),
    ]:
        ET.SubElement(element, tag).text = value
    for choice in question.choices:
        fraction = "100" if choice.correct else "0"
        answer = _text_child(element, "answer", choice.text, fraction=fraction, format=TEXT_FORMAT)
        _text_child(answer, "feedback", choice.mistake or "", format=TEXT_FORMAT)
    if question.tags:
        tags = ET.SubElement(element, "tags")
        for tag in question.tags:
            _text_child(tags, "tag", tag)
    return element


def _text_child(parent: ET.Element, tag: str, text: str, **attributes: str) -> ET.Element:
    """Moodle wraps every text in a `<text>` element inside the named one."""
    child = ET.SubElement(parent, tag, attributes)
    ET.SubElement(child, "text").text = XML_INVALID.sub("", text)
    return child


# --- import -------------------------------------------------------------------------------


class _NotChoice(Exception):
    """A GIFT question that cannot become a ChoiceQuestion; the message says why."""


@dataclass(frozen=True)
class _Block:
    """One question's lines: where it starts, its text without comments, our metadata."""

    line: int
    text: str
    metadata: dict[str, str]


@dataclass(frozen=True)
class _Answer:
    text: str
    correct: bool
    feedback: str | None


@dataclass(frozen=True)
class _GiftQuestion:
    title: str | None
    text: str
    answers: list[_Answer]
    general_feedback: str | None


def from_gift(text: str, *, difficulty: Difficulty = Difficulty.MEDIUM) -> list[ChoiceQuestion]:
    """Single-answer multiple-choice questions from GIFT text; raise BankError otherwise."""
    questions: list[ChoiceQuestion] = []
    errors: list[str] = []
    used_ids: set[str] = set()
    for block in _blocks(text):
        if block.text.startswith("$CATEGORY:"):
            continue  # a Moodle category switch, not a question
        try:
            parsed = _parse_question(block.text)
        except _NotChoice as problem:
            errors.append(f"line {block.line}: {problem}")
            continue
        if unexplained := _unexplained_wrong_answers(parsed):
            errors.extend(f"line {block.line}: {problem}" for problem in unexplained)
            continue
        try:
            questions.append(_build(parsed, block, difficulty, used_ids))
        except ValidationError as invalid:
            errors.extend(format_validation_error(f"line {block.line}", invalid))
    if errors:
        raise BankError(errors)
    return questions


def _blocks(text: str) -> Iterator[_Block]:
    """Questions are separated by blank lines; `//` lines are comments."""
    lines = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    current: list[str] = []
    metadata: dict[str, str] = {}
    start = 0
    for number, line in enumerate([*lines, ""], start=1):
        stripped = line.strip()
        if not stripped:
            if current:
                yield _Block(start, "\n".join(current).strip(), metadata)
            current, metadata = [], {}
        elif stripped.startswith("//"):
            metadata.update(_metadata(stripped.removeprefix("//").strip()))
        else:
            start = start if current else number
            current.append(line)


def _metadata(comment: str) -> dict[str, str]:
    if not comment.startswith(METADATA_PREFIX):
        return {}
    fields = (part.partition(":") for part in comment.split(METADATA_SEPARATOR))
    return {key.strip(): value.strip() for key, _, value in fields}


def _parse_question(text: str) -> _GiftQuestion:
    if any(hold in text for hold in _PLACEHOLDERS.values()):
        raise _NotChoice("characters U+E000–U+E006 are reserved by the importer; remove them")
    held = GIFT_ESCAPE.sub(lambda m: "\n" if m[1] == "n" else _PLACEHOLDERS[m[1]], text)
    title = None
    if held.startswith("::"):
        end = held.find("::", 2)
        if end == -1:
            raise _NotChoice("the title opened by `::` is never closed with `::`")
        title, held = _restore(held[2:end]), held[end + 2 :]
    start, finish = held.find("{"), held.find("}")
    if start == -1 and finish == -1:
        raise _NotChoice(
            "no answer block `{…}`: this is a description, not a multiple-choice question"
        )
    if finish == -1:
        raise _NotChoice("the answer block `{` is never closed with `}`")
    if start == -1 or finish < start:
        raise _NotChoice("`}` without an opening `{` (escape it as `\\}` if it is text)")
    if "{" in held[start + 1 : finish] or "{" in held[finish:] or "}" in held[finish + 1 :]:
        raise _NotChoice(
            "more than one answer block, or an unescaped `{`/`}` (escape text braces as `\\{`)"
        )
    before, block, after = held[:start], held[start + 1 : finish], held[finish + 1 :]
    # Moodle's missing-word format: the options fill a gap in the sentence.
    question_text = f"{before}{MISSING_WORD_BLANK}{after}" if after.strip() else before
    general = None
    if (separator := block.rfind("####")) != -1:
        block, general = block[:separator], _text(block[separator + 4 :])
    return _GiftQuestion(title, _text(question_text), _answers(block.strip()), general or None)


def _answers(block: str) -> list[_Answer]:
    """The options of a multiple-choice block, refusing GIFT's other question types."""
    if not block:
        raise _NotChoice("an empty answer block `{}` is an essay question, not multiple choice")
    if block.startswith("#"):
        raise _NotChoice("`{#…}` is a numerical question, not multiple choice")
    if "~" not in block:
        if "=" in block and "->" in block:
            raise _NotChoice("`=… -> …` pairs make a matching question, not multiple choice")
        if block.split("#", 1)[0].strip() in TRUE_FALSE_ANSWERS:
            raise _NotChoice("`{T}`/`{F}` is a true/false question, not multiple choice")
        raise _NotChoice(
            "only `=` answers make a short-answer question; multiple choice needs `~` options"
        )
    leading, *items = re.split(r"([=~])", block)
    if leading.strip():
        raise _NotChoice(f"text before the first `=` or `~` option: {_restore(leading.strip())!r}")
    answers = []
    weighted = []
    for marker, body in zip(items[::2], items[1::2], strict=True):
        if weight := WEIGHT.match(body):
            weighted.append(f"{marker}{weight[0].strip()}")
        choice, hash_mark, feedback = body.partition("#")
        answers.append(
            _Answer(_text(choice), marker == "=", _text(feedback) if hash_mark else None)
        )
    if weighted:
        raise _NotChoice(
            f"weighted answers ({', '.join(weighted)}) are not supported: "
            "mark one option `=` and the others `~`"
        )
    right = sum(answer.correct for answer in answers)
    if right != 1:
        raise _NotChoice(
            f"{right} right answers (`=`): a multiple-choice question here has exactly one"
        )
    return answers


def _unexplained_wrong_answers(parsed: _GiftQuestion) -> list[str]:
    """Wrong answers without `#feedback`, said in GIFT's terms: their feedback becomes the
    choice's `mistake`, which the schema requires (and still checks, as the last guard)."""
    return [
        f'wrong answer "{_shortened(answer.text)}" has no feedback: add `#why it is wrong` '
        "— every wrong answer names the misconception it catches"
        for answer in parsed.answers
        if not answer.correct and not answer.feedback
    ]


def _shortened(text: str) -> str:
    """The text on one line, cut to ANSWER_SHOWN_CHARS with an ellipsis if longer."""
    flat = " ".join(text.split())
    if len(flat) <= ANSWER_SHOWN_CHARS:
        return flat
    return flat[: ANSWER_SHOWN_CHARS - 1].rstrip() + "…"


def _text(held: str) -> str:
    """A part of a question as plain text: format marker dropped, escapes resolved."""
    return _restore(FORMAT_MARKER.sub("", held.strip())).strip()


def _restore(held: str) -> str:
    return held.translate(_RESTORE)


def _build(
    parsed: _GiftQuestion, block: _Block, difficulty: Difficulty, used_ids: set[str]
) -> ChoiceQuestion:
    prompt, code = _split_code(parsed.text)
    right = next(answer for answer in parsed.answers if answer.correct)
    # to_gift writes the final answer (and quick check) as the general feedback; a file
    # from elsewhere may use it for anything, so there the right option is the final answer.
    final_answer, quick_check = right.text, None
    ours = "id" in block.metadata  # written by to_gift: its title is one of ours, verbatim
    if ours and parsed.general_feedback:
        final_answer, _, quick_check = parsed.general_feedback.partition(f"\n\n{QUICK_CHECK_LABEL}")
    body = parsed.general_feedback or f"The right answer is: {right.text}"
    data: dict[str, Any] = {
        "id": _unique_id(_base_id(parsed, block, prompt), used_ids),
        "title": parsed.title if ours and parsed.title else title_from(parsed.title, prompt),
        "kind": "choice",
        "difficulty": block.metadata.get("difficulty", difficulty),
        "tags": [tag.strip() for tag in block.metadata.get("tags", "").split(",") if tag.strip()],
        "prompt": prompt,
        "code": code,
        "choices": [
            {
                "text": answer.text,
                "correct": answer.correct,
                # Moodle shows a right option's feedback as praise; it is no misconception.
                "mistake": None if answer.correct else answer.feedback or None,
            }
            for answer in parsed.answers
        ],
        "solution": {
            "steps": [{"title": ANSWER_STEP_TITLE, "body": body}],
            "final_answer": final_answer,
            "quick_check": quick_check or None,
        },
    }
    return ChoiceQuestion.model_validate(data)


def title_from(*texts: str | None) -> str:
    """A title for a question that came without one of ours, from the first of `texts` (a
    title from elsewhere, then the prompt) with words in it: its first paragraph as plain
    text on one line, placeholders as "…", cut at a word to the schema's length."""
    for text in texts:
        paragraph = HTML_TAG.sub(" ", (text or "").strip().split("\n\n", 1)[0])
        plain = plain_text(without_placeholders(paragraph), TITLE_MAX_CHARS)
        if title := " ".join(NOT_PLAIN_TEXT.sub(" ", plain).split()):
            return title
    return FALLBACK_TITLE


def _split_code(text: str) -> tuple[str, str | None]:
    """A trailing fenced Python block is the question's code, as `to_gift` wrote it."""
    # The greedy prompt makes this the last opening fence, not one inside the prompt.
    match = re.fullmatch(
        rf"(?P<prompt>.*)\n(?P<fence>`{{{MIN_FENCE},}}){CODE_LANGUAGE}\n(?P<code>.*?)\n(?P=fence)",
        text,
        re.DOTALL,
    )
    if match is None or not match["prompt"].strip():
        return text, None
    # Code in the bank's files ends with a newline; the fence drops it.
    return match["prompt"].strip(), match["code"] + "\n"


def _base_id(parsed: _GiftQuestion, block: _Block, prompt: str) -> str:
    if "id" in block.metadata:
        return block.metadata["id"]  # ours, exact; validation reports it if it is not a slug
    words = " ".join(prompt.split()[:WORDS_IN_DERIVED_ID])
    return _slugify(parsed.title or "") or _slugify(words) or FALLBACK_ID


def _slugify(text: str) -> str:
    """Lowercase ASCII letters and digits joined by dashes, as the schema's Slug wants."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:MAX_ID_LENGTH].rstrip("-")


def _unique_id(base: str, used: set[str]) -> str:
    candidate, number = base, 2
    while candidate in used:
        suffix = f"-{number}"
        candidate = base[: MAX_ID_LENGTH - len(suffix)].rstrip("-") + suffix
        number += 1
    used.add(candidate)
    return candidate
