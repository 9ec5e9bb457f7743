"""Moodle interchange: GIFT and Moodle XML out, GIFT back in, and what GIFT cannot carry."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from app.authoring.interchange import from_gift, to_gift, to_moodle_xml
from app.bank.files import BankError, read_bank
from app.bank.schema import MAX_ID_LENGTH, TITLE_MAX_CHARS, ChoiceQuestion, Difficulty
from tests.conftest import QUESTIONS
from tests.factories import choice_question

TRICKY = r"Braces {x}, a = b, ~tilde, #hash, a: colon, C:\path\n and \\ two"
CODE = (
    "import torch\n"
    "\n"
    "x = {'a': 1}  # a comment with = and ~\n"
    "    \n"
    "// not a GIFT comment\n"
    "y = 7 // 2\n"
    "print(f'{x}')\n"
)


def _question(qid: str = "q-one", **overrides: Any) -> ChoiceQuestion:
    return ChoiceQuestion.model_validate(choice_question(qid, **overrides))


def _tricky_question() -> ChoiceQuestion:
    return _question(
        "tricky-one",
        title="Tricky: a = b, ~tilde, #hash, C:\\path",
        difficulty="hard",
        tags=["escaping", "gift"],
        prompt=f"What does **this** print?\n\nMind: {TRICKY}",
        code=CODE,
        choices=[
            {"text": "`{'a': 1}`", "correct": True},
            {"text": "a = b ~ c", "mistake": f"Paragraph one: {TRICKY}\n\nParagraph # two."},
            {"text": "%50% of it", "mistake": "[plain] looks like a format marker"},
            {"text": "[1, 2] -> {3}", "mistake": "Arrows are not matching here."},
            {"text": r"back\slash \n", "mistake": "Line one\n// line two\n\nline four"},
        ],
        solution={
            "steps": [{"title": "Think", "body": "Not exported."}],
            "final_answer": "`{'a': 1}` → **A**",
            "quick_check": "Braces {} survive; so does = and :",
        },
    )


def _gift_errors(text: str) -> list[str]:
    with pytest.raises(BankError) as raised:
        from_gift(text)
    return raised.value.errors


# --- GIFT out and back in -----------------------------------------------------------------


def test_gift_round_trip_keeps_everything_gift_carries() -> None:
    original = [_tricky_question(), _question("plain-one", tags=[])]

    back = from_gift(to_gift(original))

    assert [q.id for q in back] == ["tricky-one", "plain-one"]
    for before, after in zip(original, back, strict=True):
        assert after.title == before.title
        assert after.difficulty == before.difficulty
        assert after.tags == before.tags
        assert after.prompt == before.prompt
        assert after.code == before.code
        assert after.choices == before.choices
        assert after.solution.final_answer == before.solution.final_answer
        assert after.solution.quick_check == before.solution.quick_check
    assert back[0].solution.steps[0].title == "Answer"
    assert back[0].solution.steps[0].body.startswith("`{'a': 1}` → **A**\n\nQuick check: ")


def test_every_choice_question_in_the_bank_survives_a_gift_round_trip() -> None:
    questions = [
        source.question
        for pattern in read_bank(QUESTIONS)
        for source in pattern.questions
        if isinstance(source.question, ChoiceQuestion)
    ]
    assert questions

    back = from_gift(to_gift(questions))

    def carried(q: ChoiceQuestion) -> tuple[Any, ...]:
        answer = (q.solution.final_answer, q.solution.quick_check)
        return (q.id, q.title, q.difficulty, q.tags, q.prompt, q.code, q.choices, *answer)

    assert [carried(q) for q in back] == [carried(q) for q in questions]


def test_gift_escapes_every_special_character() -> None:
    question = _question(
        "esc",
        prompt=r"a {b} = c ~ d # e : f \ g",
        choices=[{"text": "x=1", "correct": True}, {"text": "y", "mistake": "{~#}"}],
        solution={"steps": [{"title": "T", "body": "B"}], "final_answer": "a:b"},
    )

    lines = to_gift([question]).splitlines()

    assert lines == [
        "// id: esc · difficulty: easy · tags:",
        r"::A question::[markdown]a \{b\} \= c \~ d \# e \: f \\ g{",
        "\t=x\\=1",
        "\t~y#\\{\\~\\#\\}",
        "\t####a\\:b",
        "}",
    ]


def test_gift_never_breaks_a_question_with_a_blank_or_comment_line() -> None:
    gift = to_gift([_tricky_question(), _question("second")])

    blocks = gift.strip().split("\n\n")
    assert len(blocks) == 2
    for block in blocks:
        first, *rest = block.splitlines()
        assert first.startswith("// id: ")
        assert all(line.strip() and not line.lstrip().startswith("//") for line in rest)
    # Blank lines and `//` lines of the code travel as Moodle's `\n` escape instead.
    assert "import torch\\n\nx \\= " in gift
    assert "\\n    \\n// not a GIFT comment\ny \\= 7 // 2" in gift


def test_gift_guards_answers_moodle_would_misread_as_weights_or_formats() -> None:
    gift = to_gift([_tricky_question()])

    assert "\t~[markdown]%50% of it#[markdown][plain] looks like a format marker\n" in gift
    assert "\t~[markdown][1, 2] -> \\{3\\}#Arrows are not matching here.\n" in gift


def test_gift_writes_the_code_in_a_fence_longer_than_any_backticks_inside() -> None:
    code = 'doc = """\n```python\nx = 1\n```\n"""\n'
    question = _question("fenced", code=code)

    gift = to_gift([question])

    assert "\n````python\ndoc \\= " in gift
    assert from_gift(gift)[0].code == code


def test_only_the_trailing_python_block_becomes_the_code() -> None:
    prompt = "Compare with:\n\n```python\nold = 1\n```\n\nWhat changes?"
    question = _question("two-blocks", prompt=prompt, code="new = 2\n")

    (back,) = from_gift(to_gift([question]))

    assert (back.prompt, back.code) == (prompt, "new = 2\n")


def test_to_gift_of_nothing_is_empty() -> None:
    assert to_gift([]) == ""
    assert from_gift("") == []


# --- Moodle XML ---------------------------------------------------------------------------


def test_moodle_xml_has_the_category_and_every_question_field() -> None:
    xml = to_moodle_xml([_tricky_question(), _question("plain-one")], category="Tracewise/LR")

    assert xml.startswith("<?xml version='1.0' encoding='utf-8'?>\n<quiz>")
    quiz = ET.fromstring(xml)
    header, tricky, plain = quiz.findall("question")
    assert header.get("type") == "category"
    assert header.findtext("category/text") == "$course$/top/Tracewise/LR"
    assert tricky.get("type") == "multichoice"
    assert tricky.findtext("name/text") == _tricky_question().title
    assert tricky.findtext("idnumber") == "tricky-one"
    fields = ["defaultgrade", "penalty", "hidden", "single", "shuffleanswers", "answernumbering"]
    assert [tricky.findtext(field) for field in fields] == [
        "1",
        "0.3333333",
        "0",
        "true",
        "false",  # not shuffled: final answers name the options by letter
        "abc",
    ]
    question_text = tricky.find("questiontext")
    assert question_text is not None
    assert question_text.get("format") == "markdown"
    assert question_text.findtext("text") == f"What does **this** print?\n\nMind: {TRICKY}\n\n" + (
        f"```python\n{CODE.rstrip()}\n```"
    )
    assert tricky.findtext("generalfeedback/text") == (
        "`{'a': 1}` → **A**\n\nQuick check: Braces {} survive; so does = and :"
    )
    answers = tricky.findall("answer")
    assert [a.get("fraction") for a in answers] == ["100", "0", "0", "0", "0"]
    assert [a.findtext("text") for a in answers] == [c.text for c in _tricky_question().choices]
    assert [a.findtext("feedback/text") for a in answers] == [
        "",
        f"Paragraph one: {TRICKY}\n\nParagraph # two.",
        "[plain] looks like a format marker",
        "Arrows are not matching here.",
        "Line one\n// line two\n\nline four",
    ]
    assert [t.text for t in tricky.findall("tags/tag/text")] == ["escaping", "gift"]
    assert plain.findtext("idnumber") == "plain-one"
    assert plain.findtext("generalfeedback/text") == "This one → **A**"


def test_moodle_xml_escapes_markup_and_drops_what_xml_cannot_carry() -> None:
    question = _question(
        "markup",
        prompt="Is `a < b && c > d`? <script>alert(1)</script>\x01",
        choices=[
            {"text": "Yes & no", "correct": True},
            {"text": "<b>No</b>", "mistake": "Tags & all."},
        ],
    )

    xml = to_moodle_xml([question], category="Markup")

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in xml
    assert "<script>" not in xml
    assert "\x01" not in xml
    parsed = ET.fromstring(xml)
    assert parsed.findtext("question/questiontext/text") == (
        "Is `a < b && c > d`? <script>alert(1)</script>"
    )
    assert [t.text for t in parsed.findall("question/answer/text")] == ["Yes & no", "<b>No</b>"]


def test_moodle_xml_needs_a_category_name() -> None:
    with pytest.raises(ValueError, match="category"):
        to_moodle_xml([_question()], category="  ")


# --- GIFT from elsewhere ------------------------------------------------------------------

MOODLE_SAMPLE = """\
// question: 0  name: Switch category to $course$/top/Default
$CATEGORY: $course$/top/Default

// A hand-written question, Moodle style.
::Grant's Tomb\\: who?::[html]<p>Who is buried
in Grant's tomb?</p>{
    ~Grant#No one is buried there.
    =no one#Right answer!
    ~Jefferson#He lies at Monticello.
    ####He is <em>entombed</em>, not buried.
}

Grant is {~buried#His tomb is above ground. =entombed ~living#He died in 1885.} in Grant's tomb.

::Grant's Tomb\\: who?::Same title again {=one ~two#Too many. ~three#Far too many.}

What is 2 \\+ 2 \\= ?
{
  =4
  ~5 # one too many
  ~22 # that joins the digits \\# no sum
}
"""


def test_a_moodle_style_gift_file_imports() -> None:
    questions = from_gift(MOODLE_SAMPLE, difficulty=Difficulty.EASY)

    tomb, missing_word, again, arithmetic = questions
    assert tomb.id == "grant-s-tomb-who"
    assert tomb.title == "Grant's Tomb: who?"  # Moodle's question name
    assert tomb.prompt == "<p>Who is buried\nin Grant's tomb?</p>"
    assert [(c.text, c.correct, c.mistake) for c in tomb.choices] == [
        ("Grant", False, "No one is buried there."),
        ("no one", True, None),  # praise for the right option is no misconception
        ("Jefferson", False, "He lies at Monticello."),
    ]
    assert tomb.solution.steps[0].title == "Answer"
    assert tomb.solution.steps[0].body == "He is <em>entombed</em>, not buried."
    assert tomb.solution.final_answer == "no one"
    assert tomb.solution.quick_check is None
    assert tomb.difficulty == Difficulty.EASY
    assert tomb.tags == []
    assert tomb.code is None

    assert missing_word.id == "grant-is-in-grant-s-tomb"
    assert missing_word.title == "Grant is _____ in Grant's tomb."  # no name: from the prompt
    assert missing_word.prompt == "Grant is _____ in Grant's tomb."
    assert missing_word.solution.steps[0].body == "The right answer is: entombed"
    assert again.id == "grant-s-tomb-who-2"

    assert arithmetic.prompt == "What is 2 \\+ 2 = ?"
    assert [(c.text, c.mistake) for c in arithmetic.choices] == [
        ("4", None),
        ("5", "one too many"),
        ("22", "that joins the digits # no sum"),
    ]


def test_gift_newline_escape_and_escaped_backslash() -> None:
    (question,) = from_gift(r"Two\nlines, one \\n backslash {=a\nb ~c#not\nc}")

    assert question.prompt == "Two\nlines, one \\n backslash"
    assert question.choices[0].text == "a\nb"
    assert question.choices[1].mistake == "not\nc"


def test_ids_are_slugs_unique_within_the_file_and_at_most_the_schema_length() -> None:
    long_title = "Ünïcode " + "word " * 40
    gift = "\n\n".join(
        [
            f"::{long_title}::First {{=a ~b#not b}}",
            f"::{long_title}::Second {{=a ~b#not b}}",
            "::???::Only symbols in the title, so the words count {=a ~b#not b}",
            "::!!::… {=a ~b#not b}",
            "::!!::… {=a ~b#not b}",
        ]
    )

    ids = [question.id for question in from_gift(gift)]

    assert ids[0].startswith("unicode-word-word")
    assert len(ids[0]) <= MAX_ID_LENGTH
    assert ids[1] == ids[0][: MAX_ID_LENGTH - 2].rstrip("-") + "-2"
    assert len(ids[1]) <= MAX_ID_LENGTH
    assert ids[2] == "only-symbols-in-the-title-so"
    assert ids[3:] == ["question", "question-2"]


@pytest.mark.parametrize(
    ("gift", "title"),
    [
        ("::A *bold* `name`::Pick {=a ~b#not b}", "A bold name"),
        ("::<b>Tagged</b>::Pick {=a ~b#not b}", "Tagged"),
        ("Which **one** of these\nlines? {=a ~b#not b}", "Which one of these lines?"),
        ("::" + "word " * 30 + "::Pick {=a ~b#not b}", "word " * 10 + "word…"),
        ("::`**`::Pick {=a ~b#not b}", "Pick"),
        ("::!!::… {=a ~b#not b}", "!!"),
        ("::??::`**` {=a ~b#not b}", "??"),
        ("`**` {=a ~b#not b}", "Untitled question"),
    ],
)
def test_a_question_from_elsewhere_gets_a_plain_title_from_its_name_or_prompt(
    gift: str, title: str
) -> None:
    (question,) = from_gift(gift)
    assert question.title == title
    assert len(question.title) <= TITLE_MAX_CHARS


# --- what cannot be imported --------------------------------------------------------------


@pytest.mark.parametrize(
    ("gift", "problem"),
    [
        ("Just a description.", "no answer block"),
        ("Write an essay. {}", "essay"),
        ("Grant is buried in Grant's tomb. {T}", "true/false"),
        ("Grant is buried in Grant's tomb. {FALSE#He is entombed.}", "true/false"),
        ("When was Grant born? {#1822:5}", "numerical"),
        ("Match them. {=Canada -> Ottawa =Italy -> Rome}", "matching"),
        ("Who is buried there? {=no one =nobody}", "short-answer"),
        ("Pick two. {=a =b ~c}", "2 right answers"),
        ("Pick none. {~a ~b}", "0 right answers"),
        ("Half marks. {~%50%a ~%50%b ~c}", "weighted answers (~%50%, ~%50%)"),
        ("Full marks spelled out. {=%100%a ~b}", "weighted answers (=%100%)"),
        ("Never closed {=a ~b", "never closed with `}`"),
        ("Stray } here {=a ~b}", "`}` without an opening `{`"),
        ("Two {=a ~b} blocks {=c ~d}", "more than one answer block"),
        ("::Unclosed title Pick {=a ~b}", "title opened by `::` is never closed"),
        ("Loose text {oops ~a =b}", "text before the first `=` or `~` option: 'oops'"),
        ("Private \ue001 use {=a ~b}", "reserved by the importer"),
    ],
)
def test_anything_but_single_answer_multiple_choice_is_an_error(gift: str, problem: str) -> None:
    errors = _gift_errors(f"// a comment first\n{gift}")

    assert len(errors) == 1
    assert errors[0].startswith("line 2: ")
    assert problem in errors[0]


def test_every_broken_question_is_reported_with_its_line() -> None:
    gift = "\n".join(
        [
            "Fine {=a ~b#not b}",  # 1
            "",
            "// header",  # 3
            "True or false?",  # 4
            "{T}",
            "",
            "Fine again {=c ~d#not d}",  # 7
            "",
            "Essay? {}",  # 9
            "",
            "Same text twice {=x ~x#x twice}",  # 11
        ]
    )

    errors = _gift_errors(gift)

    assert errors == [
        "line 4: `{T}`/`{F}` is a true/false question, not multiple choice",
        "line 9: an empty answer block `{}` is an essay question, not multiple choice",
        "line 11: choices.1.text: two choices have the same text",
    ]


def test_schema_failures_of_built_questions_name_the_line_and_field() -> None:
    too_many = " ".join(f"~w{i}#not w{i}" for i in range(8))
    gift = "\n".join(
        [
            "// id: Not A Slug · difficulty: impossible · tags: fine, Not-Fine",
            "Bad metadata {=a ~b#not b}",
            "",
            f"Nine options {{=a {too_many}}}",
        ]
    )

    errors = _gift_errors(gift)

    assert errors[0].startswith("line 2: id: must match the pattern")
    assert errors[1].startswith("line 2: difficulty: must be one of easy, medium, hard")
    assert errors[2].startswith("line 2: tags.1: must match the pattern")
    assert errors[3].startswith("line 4: choices: must have at most 8 items")
    assert len(errors) == 4


def test_a_wrong_answer_without_feedback_is_refused_in_gift_terms() -> None:
    long_answer = "A wrong answer far longer than anyone would read in an error line"
    gift = "\n".join(
        [
            "Which? {=a ~b#b is wrong ~c}",  # 1
            "",
            "// header",
            "Which again?",  # 4
            f"{{=a ~b ~{long_answer} ~d#d is wrong}}",
        ]
    )

    errors = _gift_errors(gift)

    why = "add `#why it is wrong` — every wrong answer names the misconception it catches"
    assert errors == [
        f'line 1: wrong answer "c" has no feedback: {why}',
        f'line 4: wrong answer "b" has no feedback: {why}',
        f'line 4: wrong answer "A wrong answer far longer than anyone w…" has no feedback: {why}',
    ]
