"""Output questions: keys from real runs, variants, grading, the trace as the worked solution."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.authoring.importing import import_bank
from app.bank.files import BankError, read_bank
from app.bank.schema import OutputQuestion
from app.checking import runstore
from app.checking.grading import compare_output, expected_output
from app.checking.jobs import variant_job
from app.checking.runs import Runs
from app.config import Settings
from app.db import Database
from app.errors import Busy
from app.main import create_app
from app.models import Attempt, SandboxRun
from app.models import Learner as LearnerRow
from app.sandbox.client import Sandbox
from app.sandbox.protocol import RunResult, Verdict
from tests.conftest import QUESTIONS, SANDBOX_TIMEOUT_S, Learner
from tests.factories import write_bank

LESSON = "lr-schedulers"
OUTPUT_QUESTIONS = [
    s.question
    for p in read_bank(QUESTIONS)
    for s in p.questions
    if isinstance(s.question, OutputQuestion)
]
STEPLR = "lr-output-steplr-calls"  # 30 variants
EXPECTED_RE = re.compile(
    r'<dt>The real run (?:gave|raised)</dt><dd><pre class="output">(.*?)</pre>', re.S
)


def output_question(qid: str = "out", **overrides: Any) -> dict[str, Any]:
    question: dict[str, Any] = {
        "id": qid,
        "title": "An output question",
        "kind": "output",
        "difficulty": "easy",
        "prompt": "What does it print?",
        "code": "print(0.1 * 0.5)",
        "hint": "Multiply.",
    }
    question.update(overrides)
    return question


# --- every key comes from a real run ----------------------------------------------------------


@pytest.mark.parametrize("question", OUTPUT_QUESTIONS, ids=lambda q: q.id)
def test_every_variant_key_is_reproduced_by_a_fresh_run_and_the_cache_agrees(
    question: OutputQuestion, sandbox: Sandbox, template_db: str
) -> None:
    database = Database(template_db)  # closed whatever happens: a template is copied only
    try:  # while nobody is connected to it
        with database.session() as session:
            for index in range(question.variant_count):
                job = variant_job(question, index, timeout_s=SANDBOX_TIMEOUT_S)
                fresh = sandbox.run(job)
                assert fresh.status in (Verdict.OK, Verdict.ERROR), (index, fresh)
                found = runstore.find(session, job)
                assert found is not None, f"variant {index} has no stored run"
                cached = found.result
                key = expected_output(question, fresh)
                assert key and key == expected_output(question, cached)
                assert [e.lrs for e in fresh.trace] == [e.lrs for e in cached.trace]
                if question.answer is not None:
                    assert compare_output(question.answer, key) is None
    finally:
        database.dispose()


def test_the_lesson_has_output_questions_on_every_required_topic() -> None:
    code = "\n".join(q.code for q in OUTPUT_QUESTIONS)
    for name in (
        "StepLR",
        "MultiStepLR",
        "ExponentialLR",
        "CosineAnnealingLR",
        "LinearLR",
        "OneCycleLR",
        "ReduceLROnPlateau",
        "SequentialLR",
        "ChainedScheduler",
        "get_last_lr",
    ):
        assert name in code, name
    assert sum(1 for q in OUTPUT_QUESTIONS if q.params) >= 5


# --- import refuses what real torch contradicts ------------------------------------------------


def _import(tmp_path: Path, empty_db: str, runs: Runs, *questions: dict[str, Any]) -> Any:
    write_bank(tmp_path / "bank", list(questions))
    database = Database(empty_db)
    try:
        with database.session() as session:
            return import_bank(session, tmp_path / "bank", runs=runs)
    finally:
        database.dispose()


def test_an_answer_the_real_run_contradicts_is_refused_with_a_diff(
    tmp_path: Path, empty_db: str, runs: Runs
) -> None:
    with pytest.raises(BankError) as caught:
        _import(tmp_path, empty_db, runs, output_question(answer="0.5"))
    (error,) = caught.value.errors
    assert error.startswith(
        f"{tmp_path}/bank/test-pattern/out.yaml: answer: the real run disagrees with the file:"
    )
    assert "-0.5" in error and "+0.05" in error
    assert "real output (torch 2.13" in error


def test_an_answer_the_real_run_confirms_is_imported_with_its_run(
    tmp_path: Path, empty_db: str, runs: Runs
) -> None:
    report = _import(tmp_path, empty_db, runs, output_question(answer="0.05"))
    assert report.created == ["out"]
    database = Database(empty_db)
    with database.session() as session:
        assert len(session.scalars(select(SandboxRun)).all()) == 1
    database.dispose()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"code": "while True: pass"}, "code: The code took too long"),
        ({"code": "x = 1"}, "code: the code prints nothing"),
        ({"code": "import os\nos.fork()"}, "code: The code tried to do something"),
    ],
)
def test_a_variant_that_cannot_give_a_key_is_refused(
    tmp_path: Path,
    empty_db: str,
    runs: Runs,
    overrides: dict[str, Any],
    message: str,
) -> None:
    question = output_question(**overrides)
    with pytest.raises(BankError) as caught:
        _import(tmp_path, empty_db, runs, question)
    assert message in caught.value.errors[0]


RAISES_FOR_TWO = {"code": "print({{ n }} / 0 if {{ n }} > 1 else 1)", "params": {"n": [1, 2]}}
TWO_LINES = "x = 0.1\nprnt(x)"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"code": TWO_LINES},
            "code: raises NameError at line 2 of the code: name 'prnt' is not defined — a variant",
        ),
        (
            RAISES_FOR_TWO,
            "code: variant n=2: raises ZeroDivisionError at line 1 of the code: division by zero",
        ),
        (
            {**RAISES_FOR_TWO, "params": {"n": [1, 2, 3]}},
            "code: 2 of 3 variants (n=2; n=3): raises ZeroDivisionError at line 1 of the code",
        ),
        (
            {**RAISES_FOR_TWO, "params": {"n": "1..6"}},
            "code: 5 of 6 variants (n=2; n=3; n=4; and 2 more): raises ZeroDivisionError",
        ),
        (
            {"code": "prnt({{ n }})", "params": {"n": [1, 2]}},
            "code: both variants: raises NameError at line 1 of the code: name 'prnt'",
        ),
        ({**RAISES_FOR_TWO, "raises": "ValueError"}, "raises ZeroDivisionError, not the Value"),
        ({"raises": "ValueError"}, "raises: no variant raises ValueError"),
        ({"code": "prnt(0.1)", "answer": "0.1"}, "answer: the real run disagrees"),
        ({**RAISES_FOR_TWO, "raises": "ZeroDivisionError"}, None),
        ({"code": "1 / 0", "answer": "raises ZeroDivisionError"}, None),
    ],
)
def test_a_variant_that_raises_is_imported_only_where_the_file_says_it_raises(
    tmp_path: Path,
    empty_db: str,
    runs: Runs,
    overrides: dict[str, Any],
    message: str | None,
) -> None:
    question = output_question(**overrides)
    if message is None:  # the exception is the key the author means: "raises …"
        assert _import(tmp_path, empty_db, runs, question).created == ["out"]
        return
    with pytest.raises(BankError) as caught:
        _import(tmp_path, empty_db, runs, question)
    (error,) = caught.value.errors  # once, however many variants it concerns
    assert message in error, error


def test_placeholders_in_the_expression_are_filled_per_variant(
    tmp_path: Path, empty_db: str, runs: Runs
) -> None:
    question = output_question(code="x = 0.5", expression="x * {{ n }}", params={"n": [2, 4]})
    assert _import(tmp_path, empty_db, runs, question).created == ["out"]
    database = Database(empty_db)
    with database.session() as session:
        values = sorted(
            RunResult[None].model_validate(row.result).value or ""
            for row in session.scalars(select(SandboxRun))
        )
    database.dispose()
    assert values == ["1.0", "2.0"]


def test_import_without_a_sandbox_says_why(tmp_path: Path, empty_db: str) -> None:
    write_bank(tmp_path / "bank", [output_question()])
    database = Database(empty_db)
    with database.session() as session, pytest.raises(BankError, match="no sandbox was given"):
        import_bank(session, tmp_path / "bank", runs=None)
    database.dispose()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"code": "print({{ n }})"}, "placeholders without a parameter: n"),
        ({"params": {"n": [1, 2]}}, "parameters not used in `code` or `expression`: n"),
        ({"code": "print({{ n }})", "params": {"n": "5..2"}}, "parameter 'n' has no values"),
        ({"code": "print({{ n }})", "params": {"n": [1, 1]}}, "repeats a value"),
        ({"code": "print({{ n }})", "params": {"n": "1..300"}}, "more than 256"),
        ({"code": "print({{ n }})", "params": {"n": "0..1000000000"}}, "more than 256"),
        ({"code": "print({{ n }})", "params": {"n": [1]}, "answer": "1"}, "without `params`"),
    ],
)
def test_variant_mistakes_are_schema_errors(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    write_bank(tmp_path, [output_question(**overrides)])
    with pytest.raises(BankError) as caught:
        read_bank(tmp_path)
    assert message in caught.value.errors[0]
    assert caught.value.errors[0].startswith(f"{tmp_path}/test-pattern/out.yaml: ")


# --- learners answer in the browser ---------------------------------------------------------------


def _expected_from_result(html: str) -> str:
    match = EXPECTED_RE.search(html)
    assert match, "no expected output on the result page"
    return match.group(1).replace("&#39;", "'").replace("&quot;", '"')


def test_a_learner_answers_an_output_question_and_sees_the_real_trace(
    client: TestClient, learner: Learner, db: Session
) -> None:
    wrong = learner.answer(LESSON, STEPLR, 42)
    url = wrong.headers["location"]  # type: ignore[attr-defined]
    page = client.get(url).text
    assert "Not yet — try again" in page and "42 is not what the run printed" in page
    assert "Follow the learning rate" not in page and "The real run" not in page  # no key yet
    learner.reveal(url)
    page = client.get(url).text
    assert "Not quite" in page and "The real run gave" in page
    assert "Follow the learning rate, step by step" in page
    assert '<table class="trace">' in page and "StepLR #1" in page
    expected = _expected_from_result(page)

    right = learner.client.post(
        f"/patterns/{LESSON}/questions/{STEPLR}/answer",
        data={
            "csrf_token": _csrf(learner, STEPLR),
            "answer": expected,
            "shown_at": _shown_at(learner, STEPLR),
        },
        follow_redirects=True,
    )
    assert "Correct" in right.text
    db.rollback()
    first, second = db.scalars(select(Attempt).order_by(Attempt.id)).all()
    assert (first.correct, second.correct) == (False, True)
    assert first.variant_index == second.variant_index is not None
    assert set(second.variant or {}) == {"step_size", "gamma", "calls"}


def test_the_variant_is_reproducible_and_another_one_can_be_asked_for(
    learner: Learner,
) -> None:
    def shown_code() -> str:
        html = learner.open_question(LESSON, STEPLR)
        return re.search(r"Variant (\d+) of 30", html).group(1)  # type: ignore[union-attr]

    learner.answer(LESSON, STEPLR, 1)  # the guest now exists and keeps the variant answered
    first = shown_code()
    assert shown_code() == first
    response = learner.client.post(
        f"/patterns/{LESSON}/questions/{STEPLR}/variant",
        data={"csrf_token": _csrf(learner, STEPLR)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert shown_code() != first


def test_the_answer_is_graded_against_the_variant_the_page_showed(
    learner: Learner, db: Session
) -> None:
    learner.answer(LESSON, STEPLR, 1)
    html = learner.open_question(LESSON, STEPLR)
    shown_at, csrf = _find_shown_at(html), _find_csrf(html)
    shown_variant = int(re.search(r"Variant (\d+) of 30", html).group(1)) - 1  # type: ignore[union-attr]
    learner.client.post(
        f"/patterns/{LESSON}/questions/{STEPLR}/variant", data={"csrf_token": csrf}
    )  # another tab moves on
    learner.client.post(
        f"/patterns/{LESSON}/questions/{STEPLR}/answer",
        data={"csrf_token": csrf, "answer": "1", "shown_at": shown_at},
    )
    db.rollback()
    last = db.scalars(select(Attempt).order_by(Attempt.id.desc())).first()
    assert last is not None and last.variant_index == shown_variant


def test_warnings_of_the_run_are_part_of_the_worked_solution(
    client: TestClient, learner: Learner
) -> None:
    qid = next(q.id for q in OUTPUT_QUESTIONS if "step-order" in q.id)
    url = learner.answer(LESSON, qid, 0).headers["location"]  # type: ignore[attr-defined]
    learner.reveal(url)
    page = client.get(url).text
    assert "What torch warned about" in page
    assert "before <code>optimizer.step()</code>" in page or "before `optimizer.step()`" in page


def test_an_exception_is_a_key_a_learner_can_name(client: TestClient) -> None:
    qid = next(q.id for q in OUTPUT_QUESTIONS if q.answer and q.answer.startswith("raises"))
    body = client.post(f"/api/questions/{qid}/attempts", json={"answer": "ValueError"}).json()
    assert body["correct"] is True
    assert body["solution"]["error"]["type"] == "ValueError"


def test_an_empty_answer_is_a_form_error(learner: Learner, db: Session) -> None:
    html = learner.open_question(LESSON, STEPLR)
    response = learner.client.post(
        f"/patterns/{LESSON}/questions/{STEPLR}/answer",
        data={"csrf_token": _find_csrf(html), "answer": "  ", "shown_at": _find_shown_at(html)},
    )
    assert response.status_code == 422
    assert "Type what the code prints" in response.text
    db.rollback()
    assert db.scalars(select(Attempt)).all() == []


# --- the API ------------------------------------------------------------------------------------


def test_api_question_shows_the_variant_but_no_key(client: TestClient) -> None:
    question = client.get(f"/api/questions/{STEPLR}").json()
    assert question["kind"] == "output" and question["variant_count"] == 30
    assert set(question["params"]) == {"step_size", "gamma", "calls"}
    assert "{{" not in question["code"] + question["prompt"]
    assert question["choices"] == []


def test_api_attempt_returns_the_run_as_the_solution(client: TestClient) -> None:
    question = client.get(f"/api/questions/{STEPLR}").json()
    wrong = client.post(
        f"/api/questions/{STEPLR}/attempts", json={"answer": "999", "variant": question["variant"]}
    ).json()
    assert wrong["correct"] is False and wrong["feedback"]["reason"].startswith("999 is not")
    assert wrong["feedback"]["expected"] is None and wrong["solution"] is None
    solution = client.post(f"/api/attempts/{wrong['attempt_id']}/solution", json={}).json()[
        "solution"
    ]
    assert solution["trace"] and {e["kind"] for e in solution["trace"]} == {
        "optimizer",
        "scheduler",
    }
    right = client.post(
        f"/api/questions/{STEPLR}/attempts",
        json={"answer": solution["expected"], "variant": question["variant"]},
    ).json()
    assert right["correct"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"answer": "0.1", "variant": 30}, "variant"),
        ({"answer": "0.1", "variant": -1}, "variant"),
        ({"answer": ""}, "answer"),
        ({"answer": ["0.1"]}, "answer"),
    ],
)
def test_api_bad_output_answers_are_422(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    response = client.post(f"/api/questions/{STEPLR}/attempts", json=body)
    assert response.status_code == 422
    assert response.json()["field"] == field


def test_api_another_variant(client: TestClient) -> None:
    before = client.get(f"/api/questions/{STEPLR}").json()["variant"]
    client.post(f"/api/questions/{STEPLR}/attempts", json={"answer": "1"})
    after = client.post(f"/api/questions/{STEPLR}/variant", json={}).json()["variant"]
    assert after != before
    assert client.get(f"/api/questions/{STEPLR}").json()["variant"] == after
    single = next(q.id for q in OUTPUT_QUESTIONS if not q.params)
    assert client.post(f"/api/questions/{single}/variant", json={}).status_code == 422


# --- caching off, and a busy sandbox ----------------------------------------------------------


def test_with_caching_off_every_submission_runs_the_code_and_grades_the_same(
    settings: Settings, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_run = sandbox.run

    def counting_run(job: Any, *args: Any) -> Any:
        calls.append(job.code)
        return real_run(job, *args)

    monkeypatch.setattr(sandbox, "run", counting_run)
    app = create_app(settings.model_copy(update={"sandbox_cache": False}), sandbox=sandbox)
    with TestClient(app) as client:
        variant = client.get(f"/api/questions/{STEPLR}").json()["variant"]
        first = client.post(
            f"/api/questions/{STEPLR}/attempts", json={"answer": "0", "variant": variant}
        ).json()
        attempt = first["attempt_id"]
        shown = client.post(f"/api/attempts/{attempt}/solution", json={}).json()
        expected = shown["solution"]["expected"]
        second = client.post(
            f"/api/questions/{STEPLR}/attempts", json={"answer": expected, "variant": variant}
        ).json()
    assert len(calls) == 2 and calls[0] == calls[1]
    assert second["correct"] is True


def test_a_busy_sandbox_is_503_with_retry_after_and_nothing_is_stored(
    app: FastAPI,
    client: TestClient,
    learner: Learner,
    db: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def busy(*_: Any, **__: Any) -> Any:
        raise Busy("The code runner is busy. Try again in a moment.", retry_after=1)

    monkeypatch.setattr(Runs, "stored_key", lambda *_: None)
    monkeypatch.setattr(Runs, "run_for_key", busy)
    response = client.post(f"/api/questions/{STEPLR}/attempts", json={"answer": "0.1"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "busy" in response.json()["detail"]

    page = learner.answer(LESSON, STEPLR, 3)
    assert page.status_code == 503  # type: ignore[attr-defined]
    assert "was not graded yet" in page.text  # type: ignore[attr-defined]
    assert ">3</textarea>" in page.text  # type: ignore[attr-defined]
    db.rollback()
    assert db.scalars(select(Attempt)).all() == []


def _find_csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]


def _find_shown_at(html: str) -> str:
    return re.search(r'name="shown_at" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]


def _csrf(learner: Learner, qid: str) -> str:
    return _find_csrf(learner.open_question(LESSON, qid))


def _shown_at(learner: Learner, qid: str) -> str:
    return _find_shown_at(learner.open_question(LESSON, qid))


def test_the_variant_shown_before_any_answer_is_the_one_graded(client: TestClient) -> None:
    shown = client.get(f"/api/questions/{STEPLR}").json()
    client.post(f"/api/questions/{STEPLR}/hint", json={})  # the learner row is born here
    assert client.get(f"/api/questions/{STEPLR}").json()["variant"] == shown["variant"]
    graded = client.post(f"/api/questions/{STEPLR}/attempts", json={"answer": "0"}).json()
    assert graded["feedback"]["variant"] == shown["variant"]


def test_rejected_requests_create_no_learner(client: TestClient, db: Session) -> None:
    for body in ({"answer": ""}, {"answer": "1", "variant": 99}, {}):
        assert client.post(f"/api/questions/{STEPLR}/attempts", json=body).status_code == 422
    db.rollback()
    assert db.scalars(select(LearnerRow)).all() == []
