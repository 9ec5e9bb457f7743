"""The question bank: file schema, import with versions, export round trip."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.authoring.importing import import_bank
from app.bank import schema
from app.bank.files import BankError, read_bank
from app.bank.service import (
    get_question_or_raise,
    get_version_or_raise,
    get_version_row_or_raise,
    list_patterns,
)
from app.bank.store import export_bank
from app.checking.runs import Runs
from app.db import Database
from app.errors import NotFound
from app.learning.answering import record_attempt
from app.learning.learners import Visitor
from app.models import Attempt, Pattern, Question, QuestionVersion
from tests.conftest import QUESTIONS
from tests.factories import PATTERN, choice_question, write_bank

LESSON = "lr-schedulers"


@pytest.fixture
def session(empty_db: str) -> Any:
    database = Database(empty_db)
    with database.session() as session:
        yield session
    database.dispose()


def _counts(session: Session) -> tuple[int, int, int]:
    return (
        session.scalar(select(func.count()).select_from(Pattern)) or 0,
        session.scalar(select(func.count()).select_from(Question)) or 0,
        session.scalar(select(func.count()).select_from(QuestionVersion)) or 0,
    )


# --- the content in questions/ ---------------------------------------------------------


def test_every_question_file_validates() -> None:
    patterns = read_bank(QUESTIONS)
    assert [p.slug for p in patterns] == [LESSON]


def test_the_lessons_inline_practice_names_its_own_practice_questions() -> None:
    for pattern in read_bank(QUESTIONS):
        practice = {
            s.question.id for s in pattern.questions if schema.Mode.PRACTICE in s.question.modes
        }
        listed = pattern.pattern.lesson_practice
        assert listed and len(set(listed)) == len(listed), pattern.slug
        assert set(listed) <= practice, set(listed) - practice


@pytest.mark.parametrize(("kind", "at_least"), [("choice", 12), ("output", 12)])
def test_the_lesson_has_enough_questions_across_difficulties(kind: str, at_least: int) -> None:
    (lesson,) = read_bank(QUESTIONS / LESSON)
    questions = [s.question for s in lesson.questions if s.question.kind == kind]
    assert len(questions) >= at_least
    by_difficulty = {d: sum(q.difficulty == d for q in questions) for d in schema.Difficulty}
    assert all(count >= 3 for count in by_difficulty.values()), by_difficulty


def test_every_question_explains_itself() -> None:
    for pattern in read_bank(QUESTIONS):
        for source in pattern.questions:
            question = source.question
            assert question.hint, f"{source.path}: no hint"
            assert question.mistakes, f"{source.path}: no common mistakes"
            assert question.notes, f"{source.path}: no notes on what was checked"
            if isinstance(question, schema.ChoiceQuestion):
                wrong = [c for c in question.choices if not c.correct]
                assert all(c.mistake for c in wrong), (
                    f"{source.path}: a wrong choice lacks `mistake`"
                )


# Questions that ask the same computation, in other forms (choice, output, code): a learner
# who meets them in any order must find them equally hard (issue 13, item 7).
SAME_COMPUTATION = {
    "StepLR's rate after n calls": [
        "lr-steplr-three-steps",
        "lr-output-steplr-calls",
        "lr-code-steplr",
    ],
    "LinearLR's rate per epoch": ["lr-linearlr-warmup", "lr-output-linearlr-warmup"],
    "MultiStepLR's milestones": [
        "lr-multisteplr-milestones",
        "lr-output-multisteplr",
        "lr-code-multisteplr",
    ],
    "CosineAnnealingLR past T_max": ["lr-cosine-past-tmax", "lr-output-cosine-past-tmax"],
    "bad epochs against patience": [
        "lr-plateau-patience",
        "lr-output-plateau-patience",
        "lr-code-plateau",
    ],
    "SequentialLR's hand-over": [
        "lr-two-phase-schedule",
        "lr-code-two-phase",
        "lr-output-sequentiallr-restart",
    ],
    "ChainedScheduler's product": ["lr-chained-vs-sequential", "lr-output-chained-constant-exp"],
    "get_last_lr() per param group": ["lr-get-last-lr", "lr-output-get-last-lr-groups"],
    "the order of the two step() calls": ["lr-step-order", "lr-output-step-order-warning"],
    "OneCycleLR stepped per batch": ["lr-onecycle-per-epoch", "lr-code-onecycle-loop"],
    "a scheduler stepped per batch counts batches": [
        "lr-output-steplr-per-batch",
        "lr-code-steplr-loop",
        "lr-cosine-tmax-iterations",
    ],
}


def test_questions_that_ask_the_same_computation_are_equally_hard() -> None:
    difficulty = {
        s.question.id: s.question.difficulty.value
        for pattern in read_bank(QUESTIONS)
        for s in pattern.questions
    }
    for computation, ids in SAME_COMPUTATION.items():
        found = {qid: difficulty[qid] for qid in ids}
        assert len(set(found.values())) == 1, f"{computation}: {found}"


def _plain(text: str) -> str:
    """Text as it reads: no code ticks or emphasis, one space between words, lower case."""
    return " ".join(re.sub(r"[`*_]", "", text).split()).lower()


def gives_away(text: str, question: schema.ChoiceQuestion) -> list[str]:
    """How `text` (a wrong choice's mistake, or the hint) gives the key away: it quotes the
    correct choice's text (a number as a number, not inside a longer one), or names its
    letter ("**B**", "option B", "(B)")."""
    index = question.correct_index
    letter = chr(ord("A") + index)
    found = []
    key = _plain(question.choices[index].text)
    if re.search(rf"(?<![\w.]){re.escape(key)}(?![\w]|\.\d)", _plain(text)):
        found.append(f"quotes the correct choice {question.choices[index].text!r}")
    if re.search(
        rf"\*\*{letter}\*\*|\b(?:option|choice|answer)\s+\(?{letter}\b|\({letter}\)", text
    ):
        found.append(f"names the correct choice's letter {letter}")
    return found


def test_no_mistake_or_hint_gives_the_key_away() -> None:
    """A wrong answer's feedback shows the picked choice's `mistake`, and the hint and the
    title come before any answer: none may hand over the key (issue 13: try, then learn)."""
    problems = []
    for pattern in read_bank(QUESTIONS):
        for source in pattern.questions:
            question = source.question
            if not isinstance(question, schema.ChoiceQuestion):
                continue
            texts = {f"choices.{i}.mistake": c.mistake for i, c in enumerate(question.choices)}
            texts["hint"] = question.hint
            texts["title"] = question.title  # shown in lists, before any answer
            for where, text in texts.items():
                for problem in gives_away(text or "", question):
                    problems.append(f"{source.path.name}: {where} {problem}")
    assert problems == []


@pytest.mark.parametrize(
    ("mistake", "found"),
    [
        ("That counts both milestones: the rate is `0.1` after them.", True),
        ("Multiplying by 0.1 each time gives 0.01.", True),
        ("The right one is **C**.", True),
        ("Compare with option C.", True),
        ("That is 0.125, not 0.01: count again.", False),  # 0.1 only inside longer numbers
        ("Count the calls before epoch 4.", False),
    ],
)
def test_a_mistake_quoting_the_key_is_found(mistake: str, found: bool) -> None:
    question = schema.ChoiceQuestion.model_validate(
        choice_question(
            choices=[
                {"text": "0.01", "mistake": mistake},
                {"text": "1.0", "mistake": "Not this."},
                {"text": "`0.1`", "correct": True},
            ]
        )
    )
    assert bool(gives_away(mistake, question)) is found


def test_schema_json_is_current() -> None:
    on_disk = json.loads((QUESTIONS / "schema.json").read_text())
    assert on_disk == schema.json_schema(), "run `python -m app export-schema`"


def _properties(node: Any) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for definition in node["$defs"].values():
        for name, prop in definition.get("properties", {}).items():
            found.append((f"{definition.get('title')}.{name}", prop))
    return found


def test_every_schema_field_is_described() -> None:
    undescribed = [
        name for name, prop in _properties(schema.json_schema()) if not prop.get("description")
    ]
    assert undescribed == []


# --- validation errors name the file and the field ---------------------------------------


def test_unknown_key_is_rejected_with_path_and_field(tmp_path: Path) -> None:
    write_bank(tmp_path, [choice_question(colour="blue")])
    with pytest.raises(BankError) as caught:
        read_bank(tmp_path)
    (error,) = caught.value.errors
    assert error == f"{tmp_path}/test-pattern/q-one.yaml: colour: is not something this takes"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"difficulty": "brutal"}, "difficulty: must be one of easy, medium, hard"),
        ({"id": "Has Spaces"}, "id: must match the pattern"),
        (
            {"choices": [{"text": "a"}, {"text": "b"}]},
            "choices: exactly one choice must be correct, found 0",
        ),
        (
            {"choices": [{"text": "a", "correct": True, "mistake": "x"}, {"text": "b"}]},
            "choices.0.mistake: the correct choice cannot have a `mistake`",
        ),
        (
            {"solution": {"steps": [], "final_answer": "x"}},
            "solution.steps: must have at least 1 item",
        ),
        ({"choices": [{"text": "a", "correct": True}, {"text": "a"}]}, "choices.1.text: two"),
        (
            {"choices": [{"text": "a", "correct": True}, {"text": "b"}]},
            "choices.1: every wrong choice names the misconception it catches (`mistake`); "
            "choice B ('b') has none",
        ),
    ],
)
def test_invalid_questions_say_what_is_wrong(
    tmp_path: Path, overrides: dict[str, Any], expected: str
) -> None:
    write_bank(tmp_path, [choice_question(**overrides)])
    with pytest.raises(BankError) as caught:
        read_bank(tmp_path)
    assert any(expected in error for error in caught.value.errors), caught.value.errors


def test_duplicate_yaml_keys_are_an_error(tmp_path: Path) -> None:
    write_bank(tmp_path, [])
    (tmp_path / "test-pattern" / "dup.yaml").write_text("id: a\nid: b\n")
    with pytest.raises(BankError, match="duplicate key 'id'"):
        read_bank(tmp_path)


def test_duplicate_ids_across_files_are_an_error(tmp_path: Path) -> None:
    write_bank(tmp_path, [choice_question("same")])
    (tmp_path / "test-pattern" / "copy.yaml").write_text(
        (tmp_path / "test-pattern" / "same.yaml").read_text()
    )
    with pytest.raises(BankError, match="'same' is already used by"):
        read_bank(tmp_path)


def test_every_broken_file_is_reported_not_just_the_first(tmp_path: Path) -> None:
    write_bank(tmp_path, [choice_question("a", difficulty="x"), choice_question("b", prompt="")])
    with pytest.raises(BankError) as caught:
        read_bank(tmp_path)
    assert len(caught.value.errors) == 2


# --- import ---------------------------------------------------------------------------------


def test_import_is_all_or_nothing(tmp_path: Path, session: Session) -> None:
    write_bank(tmp_path, [choice_question("good"), choice_question("bad", kind="essay")])
    with pytest.raises(BankError):
        import_bank(session, tmp_path)
    session.rollback()
    assert _counts(session) == (0, 0, 0)


def test_broken_file_leaves_previous_import_untouched(tmp_path: Path, session: Session) -> None:
    write_bank(tmp_path, [choice_question("good")])
    import_bank(session, tmp_path)
    before = _counts(session)
    write_bank(
        tmp_path,
        [choice_question("good", prompt="changed"), choice_question("bad", difficulty="?")],
    )
    with pytest.raises(BankError):
        import_bank(session, tmp_path)
    session.rollback()
    assert _counts(session) == before
    assert get_question_or_raise(session, "good").question.prompt == "Which is right?"


def test_reimporting_unchanged_files_changes_nothing(session: Session, runs: Runs) -> None:
    first = import_bank(session, QUESTIONS, runs=runs)
    assert first.created and first.changed
    counts = _counts(session)
    again = import_bank(session, QUESTIONS, runs=runs)
    assert not again.changed
    assert len(again.unchanged) == len(first.created)
    assert _counts(session) == counts


def test_a_changed_question_becomes_a_new_version_and_attempts_keep_theirs(
    tmp_path: Path, session: Session
) -> None:
    write_bank(tmp_path, [choice_question("q")])
    import_bank(session, tmp_path)
    visitor = Visitor(token="a-learner", learner=None)
    attempt = record_attempt(
        session, visitor=visitor, question=get_question_or_raise(session, "q"), answer=0
    ).attempt

    write_bank(tmp_path, [choice_question("q", prompt="Which one is right, really?")])
    report = import_bank(session, tmp_path)

    assert report.new_versions == ["q"]
    live = get_question_or_raise(session, "q")
    assert (live.version, live.question.prompt) == (2, "Which one is right, really?")
    stored = session.get(Attempt, attempt.id)
    assert stored is not None and stored.question_version == 1


def test_a_stored_version_is_found_as_a_row_or_parsed_with_one_message_when_missing(
    tmp_path: Path, session: Session
) -> None:
    write_bank(tmp_path, [choice_question("q")])
    import_bank(session, tmp_path)
    row = get_version_row_or_raise(session, "q", 1)
    assert (row.question_id, row.version) == ("q", 1)
    assert get_version_or_raise(session, "q", 1).id == "q"
    for get in (get_version_row_or_raise, get_version_or_raise):
        with pytest.raises(NotFound, match="There is no version 2 of question 'q'"):
            get(session, "q", 2)


def test_a_question_removed_from_its_pattern_is_retired_then_restored(
    tmp_path: Path, session: Session
) -> None:
    write_bank(tmp_path, [choice_question("keep"), choice_question("drop")])
    import_bank(session, tmp_path)
    write_bank(tmp_path, [choice_question("keep")])
    assert import_bank(session, tmp_path).retired == ["drop"]
    with pytest.raises(NotFound):
        get_question_or_raise(session, "drop")
    assert session.get(QuestionVersion, ("drop", 1)) is not None  # history kept

    write_bank(tmp_path, [choice_question("keep"), choice_question("drop")])
    assert import_bank(session, tmp_path).restored == ["drop"]
    assert get_question_or_raise(session, "drop").version == 1


def test_a_pattern_folder_removed_from_the_bank_is_retired_then_restored(
    tmp_path: Path, session: Session
) -> None:
    bank = tmp_path / "bank"
    write_bank(bank, [choice_question("a1")], slug="alpha")
    write_bank(bank, [choice_question("b1")], slug="beta")
    import_bank(session, bank)
    shutil.rmtree(bank / "beta")
    report = import_bank(session, bank)
    assert (report.patterns_retired, report.retired) == (["beta"], ["b1"])
    with pytest.raises(NotFound):
        get_question_or_raise(session, "b1")
    assert [p.slug for p in list_patterns(session)] == ["alpha"]

    write_bank(bank, [choice_question("b1")], slug="beta")
    report = import_bank(session, bank)
    assert report.restored == ["b1"]
    assert [p.slug for p in list_patterns(session)] == ["alpha", "beta"]


def test_importing_one_pattern_folder_leaves_the_others_alone(
    tmp_path: Path, session: Session
) -> None:
    bank = tmp_path / "bank"
    write_bank(bank, [choice_question("a1")], slug="alpha")
    write_bank(bank, [choice_question("b1")], slug="beta")
    import_bank(session, bank)
    assert not import_bank(session, bank / "alpha").retired
    assert get_question_or_raise(session, "b1").id == "b1"


def test_export_then_import_is_lossless(tmp_path: Path, session: Session, runs: Runs) -> None:
    import_bank(session, QUESTIONS, runs=runs)
    exported = tmp_path / "exported"
    count = export_bank(session, exported)
    assert count == sum(len(p.questions) for p in read_bank(QUESTIONS))

    originals = {s.question.id: s.question for p in read_bank(QUESTIONS) for s in p.questions}
    round_tripped = {s.question.id: s.question for p in read_bank(exported) for s in p.questions}
    assert round_tripped == originals
    assert not import_bank(session, exported, runs=runs).changed


def test_markdown_that_would_not_render_as_written_is_refused(tmp_path: Path) -> None:
    write_bank(
        tmp_path,
        [choice_question(prompt="Pick <b>one</b>", hint="See [this](javascript:alert(1))")],
        pattern={**PATTERN, "key_insight": "![chart](https://example.com/c.png)"},
    )
    with pytest.raises(BankError) as caught:
        read_bank(tmp_path)
    errors = "\n".join(caught.value.errors)
    assert "pattern.yaml: key_insight: images are not shown" in errors
    assert "q-one.yaml: prompt: raw HTML (<b>) is not allowed" in errors
    assert (
        "q-one.yaml: hint: links may go to http, https or mailto addresses, not javascript:"
        in errors
    )
