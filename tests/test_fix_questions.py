"""Fix the bug: questions whose editor starts from a loop with a planted bug. The import runs
the buggy code and refuses a file whose bug is no bug, or is not the one it names; a fix is
graded by its trajectory like any code answer."""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.authoring.importing import import_bank
from app.bank.files import BankError, describe_errors, dump_yaml, read_bank
from app.bank.schema import QUESTION_ADAPTER, CodeCheck, CodeQuestion, FixQuestion
from app.checking import codecheck
from app.checking.runs import Runs
from app.db import Database
from app.sandbox.protocol import CodeData, ErrorInfo, RunResult, TraceEvent, Verdict
from tests.conftest import CSRF_RE, QUESTIONS, SHOWN_AT_RE
from tests.factories import write_bank

LESSON = "lr-schedulers"
FIX_QUESTIONS = [
    s.question
    for p in read_bank(QUESTIONS)
    for s in p.questions
    if isinstance(s.question, FixQuestion)
]
PER_BATCH = "lr-fix-per-batch"
FIXED_PER_BATCH = """\
scheduler = lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)

for epoch in range(6):
    for x, y in batches:
        train_step(x, y)
    scheduler.step()
"""


def _by_id(question_id: str) -> FixQuestion:
    return next(q for q in FIX_QUESTIONS if q.id == question_id)


def _mistake_name(mistake: codecheck.KnownMistake | None) -> str | None:
    return next((k for k, m in codecheck.MISTAKES.items() if m is mistake), None)


# --- the content ------------------------------------------------------------------------------


def test_there_are_enough_fix_questions_each_with_another_correct_fix() -> None:
    assert len(FIX_QUESTIONS) >= 8
    assert {q.difficulty for q in FIX_QUESTIONS} == {"easy", "medium", "hard"}
    assert sum(q.bug is not None for q in FIX_QUESTIONS) >= 8  # most bugs are known mistakes
    for question in FIX_QUESTIONS:
        assert any(t.correct for t in question.self_tests), f"{question.id}: no other fix"
        assert question.hint and question.solution.steps and question.mistakes, question.id
        assert question.buggy.strip() != question.reference.strip(), question.id


@pytest.mark.parametrize("question", FIX_QUESTIONS, ids=lambda q: q.id)
def test_every_planted_bug_is_caught_and_diagnosed_as_the_file_says(
    question: FixQuestion, runs: Runs, db: Session
) -> None:
    reference = runs.stored_reference(db, question)
    assert reference is not None, "stored at import"
    assert codecheck.judge(question.check, reference.result, reference.result).correct
    verdict = codecheck.judge(
        question.check, reference.result, runs.learner(question, question.buggy)
    )
    assert not verdict.correct, verdict.message
    assert _mistake_name(verdict.mistake) == question.bug, verdict.message


# --- the schema -------------------------------------------------------------------------------


def _fix_file(**overrides: Any) -> dict[str, Any]:
    """A small fix question: a StepLR stepped every batch where once per epoch is meant."""
    loop = """\
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
        for epoch in range(4):
            for x in batches:
                train_step(x)
                {step}
        {after}"""
    question: dict[str, Any] = {
        "id": "fix-one",
        "title": "Fix: StepLR stepped every batch",
        "kind": "fix",
        "difficulty": "easy",
        "prompt": "Halve the rate every 2 epochs: epochs 0–1 at 0.1, epochs 2–3 at 0.05.",
        "setup": textwrap.dedent("""\
            import torch
            model = torch.nn.Linear(2, 1)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            batches = [torch.randn(4, 2) for _ in range(3)]

            def train_step(x):
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
            """),
        "buggy": textwrap.dedent(loop.format(step="scheduler.step()", after="")),
        "bug": "per-batch",
        "reference": textwrap.dedent(loop.format(step="pass", after="scheduler.step()")),
        "check": {"drive": "loop", "epochs": 4, "steps_per_epoch": 3},
        "hint": "How often is `scheduler.step()` called?",
        "mistakes": ["Stepping every batch."],
    }
    question.update(overrides)
    return question


def test_the_editor_starts_from_the_buggy_code_and_a_file_cannot_set_another_start() -> None:
    question = QUESTION_ADAPTER.validate_python(_fix_file())
    assert isinstance(question, FixQuestion) and isinstance(question, CodeQuestion)
    assert question.starter == question.buggy
    dumped = dump_yaml(question)
    assert "starter" not in dumped  # never stored or exported: it is `buggy`
    assert QUESTION_ADAPTER.validate_python(question.model_dump(mode="json")) == question
    with pytest.raises(ValidationError) as caught:
        QUESTION_ADAPTER.validate_python(_fix_file(starter="scheduler = ..."))
    (problem,) = describe_errors(caught.value)
    assert problem.field == "starter" and "starts from `buggy`" in problem.message
    with pytest.raises(ValidationError) as caught:
        QUESTION_ADAPTER.validate_python({k: v for k, v in _fix_file().items() if k != "buggy"})
    assert [p.field for p in describe_errors(caught.value)] == ["buggy"]


# --- the import refuses a planted bug that is none, or not the one named ----------------------


@pytest.fixture
def session(empty_db: str) -> Iterator[Session]:
    database = Database(empty_db)
    with database.session() as session:
        yield session
    database.dispose()


def test_a_file_whose_planted_bug_is_diagnosed_as_named_imports(
    tmp_path: Path, session: Session, runs: Runs
) -> None:
    report = import_bank(session, write_bank(tmp_path, [_fix_file()]), runs=runs)
    assert report.created == ["fix-one"]


def test_a_file_whose_buggy_code_is_correct_is_refused(
    tmp_path: Path, session: Session, runs: Runs
) -> None:
    correct = _fix_file()
    correct["buggy"] = correct["reference"].replace("pass", "train_step  # a harmless change")
    with pytest.raises(BankError) as caught:
        import_bank(session, write_bank(tmp_path, [correct]), runs=runs)
    (error,) = caught.value.errors
    assert "test-pattern/fix-one.yaml: buggy: the check accepts it" in error, error
    assert "nothing to fix" in error


def test_a_file_whose_bug_names_the_wrong_mistake_is_refused(
    tmp_path: Path, session: Session, runs: Runs
) -> None:
    with pytest.raises(BankError) as caught:
        import_bank(session, write_bank(tmp_path, [_fix_file(bug="step-order")]), runs=runs)
    (error,) = caught.value.errors
    assert "buggy: it is diagnosed as per-batch, not step-order" in error, error
    assert "`bug: per-batch`" in error


def test_a_file_naming_no_bug_for_a_known_mistake_is_told_which_it_is(
    tmp_path: Path, session: Session, runs: Runs
) -> None:
    unnamed = {k: v for k, v in _fix_file().items() if k != "bug"}
    with pytest.raises(BankError) as caught:
        import_bank(session, write_bank(tmp_path, [unnamed]), runs=runs)
    (error,) = caught.value.errors
    assert "buggy: it is diagnosed as per-batch, not none" in error, error


# --- answering, through the page and the API -------------------------------------------------


def _submit(client: TestClient, question_id: str, code: str) -> str:
    """Open the question page, send `code` through its form, return the result page."""
    url = f"/patterns/{LESSON}/questions/{question_id}"
    page = client.get(url).text
    form = {
        "csrf_token": CSRF_RE.search(page).group(1),  # type: ignore[union-attr]
        "shown_at": SHOWN_AT_RE.search(page).group(1),  # type: ignore[union-attr]
        "answer": code,
    }
    response = client.post(f"{url}/answer", data=form, follow_redirects=False)
    assert response.status_code == 303, response.text
    result = client.get(response.headers["location"])
    assert result.status_code == 200
    return result.text


def _text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_the_page_says_there_is_a_bug_and_the_editor_holds_the_buggy_loop(
    client: TestClient,
) -> None:
    question = _by_id(PER_BATCH)
    page = client.get(f"/patterns/{LESSON}/questions/{PER_BATCH}").text
    label = re.search(r'<label for="answer" class="answer-label">(.*?)</label>', page, re.S)
    assert label and "Fix the bug" in label.group(1) and "has one" in label.group(1)
    editor = re.search(r'<textarea id="answer"[^>]*>(.*?)</textarea>', page, re.S)
    assert editor and html.unescape(editor.group(1)) == question.buggy
    assert "Run and check" in page and "codemirror.js" in page


def test_a_fixed_loop_is_right_and_the_buggy_loop_is_wrong_with_its_diagnosis(
    client: TestClient,
) -> None:
    question = _by_id(PER_BATCH)
    wrong = _text(_submit(client, PER_BATCH, question.buggy + "\n# fixed?\n"))
    assert "Not yet — try again" in wrong and "The reference solution" not in wrong
    assert "first differs from the target at step 2 (epoch 0, batch 2)" in wrong
    assert f"Looks like: {codecheck.MISTAKES['per-batch'].name}" in wrong
    right = _text(_submit(client, PER_BATCH, FIXED_PER_BATCH))
    assert "Correct" in right and "matches the target at every step" in right


def test_the_api_serves_the_buggy_loop_as_the_starter_and_grades_fixes(
    client: TestClient,
) -> None:
    question = _by_id("lr-fix-resume-scheduler-state")
    shown = client.get(f"/api/questions/{question.id}").json()
    assert shown["kind"] == "fix" and shown["starter"] == question.buggy
    assert shown["setup"] == question.setup
    url = f"/api/questions/{question.id}/attempts"
    untouched = client.post(url, json={"answer": question.buggy})
    assert untouched.status_code == 422  # as given, not an answer yet: not run, not stored
    assert "bug and all" in untouched.json()["detail"]
    assert client.get("/api/attempts").json()["total"] == 0
    wrong = client.post(url, json={"answer": question.buggy + "\n# fixed?\n"})
    assert wrong.status_code == 201, wrong.text
    body = wrong.json()
    assert body["correct"] is False
    assert body["feedback"]["divergence"] == 32  # epoch 8, batch 0: 0.025 due, 0.05 used
    assert body["feedback"]["mistake"] == codecheck.MISTAKES["count-restarted"].name
    other_fix = next(t.code for t in question.self_tests if t.correct)
    right = client.post(url, json={"answer": other_fix}).json()
    assert right["correct"] is True and right["feedback"]["divergence"] is None


# --- the diagnoses the planted bugs need, from the numbers alone --------------------------------


def _run(
    lrs: list[float],
    *,
    kind: str = "LambdaLR",
    steps: int = 0,
    error: ErrorInfo | None = None,
    **params: Any,
) -> RunResult[CodeData]:
    """A finished run: its LRs, its scheduler, and `steps` calls of `scheduler.step()`."""
    trace = [
        TraceEvent(kind="scheduler", name=kind, call=n, line=None, lrs=[1.0])
        for n in range(1, steps + 1)
    ]
    return RunResult[CodeData].model_validate(
        {
            "status": Verdict.ERROR if error else Verdict.OK,
            "error": error,
            "trace": trace,
            "data": None
            if error
            else {
                "trajectory": [[lr] for lr in lrs],
                "scheduler": {"type": kind, "params": params},
            },
        }
    )


LOOP = CodeCheck(drive="loop", epochs=3, steps_per_epoch=2)
SMOOTH, FAST = [1, 0.9, 0.7, 0.5, 0.3, 0.1], [1, 0.5, 0, 0.5, 1, 0.5]


@pytest.mark.parametrize(
    ("check", "target", "got", "mistake"),
    [
        (  # T_max counted in epochs while stepped every batch
            LOOP,
            _run(SMOOTH, kind="CosineAnnealingLR", T_max=6),
            _run(FAST, kind="CosineAnnealingLR", T_max=3),
            "length-in-epochs",
        ),
        (  # the same numbers from another length: not that mistake
            LOOP,
            _run(SMOOTH, kind="CosineAnnealingLR", T_max=6),
            _run(FAST, kind="CosineAnnealingLR", T_max=4),
            None,
        ),
        (  # OneCycleLR told the number of epochs, stepped every batch
            LOOP,
            _run(SMOOTH, kind="OneCycleLR", total_steps=6),
            _run(
                [],
                error=ErrorInfo(
                    type="ValueError",
                    message="Tried to step 4 times. The specified number of total steps is 3",
                    line=6,
                    traceback="ValueError: Tried to step 4 times.",
                ),
            ),
            "length-in-epochs",
        ),
        (  # the same mode, a negated metric: a deliberate flip, not a wrong mode
            CodeCheck(epochs=4),
            _run([1, 1, 1, 0.5], kind="ReduceLROnPlateau", mode="max", best=0.8),
            _run([1, 1, 0.5, 0.5], kind="ReduceLROnPlateau", mode="min", best=-0.8),
            None,
        ),
        (
            CodeCheck(epochs=4),
            _run([1, 1, 1, 0.5], kind="ReduceLROnPlateau", mode="max", best=0.8),
            _run([1, 0.5, 0.5, 0.25], kind="ReduceLROnPlateau", mode="min", best=0.5),
            "plateau-mode",
        ),
        (  # as many step() calls, a count far behind: it started over
            CodeCheck(epochs=6),
            _run([1, 1, 1, 0.5, 0.5, 0.5], kind="StepLR", steps=6, last_epoch=12),
            _run([1, 1, 1, 1, 1, 1], kind="StepLR", steps=6, last_epoch=1),
            "count-restarted",
        ),
        (  # fewer calls: a scheduler never stepped has not started over
            CodeCheck(epochs=6),
            _run([1, 1, 1, 0.5, 0.5, 0.5], kind="StepLR", steps=6, last_epoch=6),
            _run([1, 1, 1, 1, 1, 1], kind="StepLR", steps=0, last_epoch=0),
            None,
        ),
        (  # a drop one epoch (two batches) early in a loop
            LOOP,
            _run([1, 1, 1, 1, 0.1, 0.1]),
            _run([1, 1, 0.1, 0.1, 0.1, 0.1]),
            "off-by-one",
        ),
        (  # a drop that never comes is not one epoch late
            LOOP,
            _run([1, 1, 0.1, 0.1, 0.1, 0.1]),
            _run([1, 1, 1, 1, 1, 1]),
            None,
        ),
        (  # SequentialLR stepped once per epoch of a loop: its milestone counts epochs
            LOOP,
            _run([1, 1, 0.5, 0.5, 0.45, 0.45]),
            _run([1, 1, 0.5, 0.5, 1, 1], kind="SequentialLR", milestones=[2]),
            "sequential-restart",
        ),
    ],
)
def test_the_diagnoses_of_planted_bugs_come_from_the_runs(
    check: CodeCheck,
    target: RunResult[CodeData],
    got: RunResult[CodeData],
    mistake: str | None,
) -> None:
    verdict = codecheck.judge(check, target, got)
    assert not verdict.correct
    assert _mistake_name(verdict.mistake) == mistake, verdict.message
