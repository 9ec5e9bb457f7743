"""Step through: predict a scenario's learning rate epoch by epoch, each revealed by the real run.

The scenarios' rates come from the sandbox (the bank test below runs each afresh); grading is
pure; the pages carry the predictions so far and re-grade them at every step; the finished
step-through is an attempt like any other; the JSON API grades a scenario whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect, sync_playwright
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import accounts
from app.authoring import starters
from app.authoring.importing import import_bank
from app.bank import schema
from app.bank import service as bank
from app.bank.files import BankError, read_bank
from app.bank.schema import StepsQuestion
from app.checking import grading
from app.checking.jobs import steps_job
from app.checking.runs import Runs
from app.checking.verify import verify
from app.config import Settings
from app.db import Database
from app.errors import Conflict, Invalid
from app.learning import exams, practice
from app.main import create_app
from app.models import Attempt, Reveal
from app.sandbox.protocol import CodeData, RunResult, Verdict
from tests.browser import ARTIFACTS, CHROMIUM_ARGS, chromium_path, live_server
from tests.conftest import CSRF_RE, QUESTIONS, TEST_SECRET, right_answer
from tests.factories import choice_question, write_bank
from tests.test_instructor import editor_post, log_in, make_user

LESSON = "lr-schedulers"
STEPLR = "lr-steps-steplr"  # 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025
STEPLR_RATES = ["0.1", "0.1", "0.05", "0.05", "0.05", "0.025", "0.025"]  # epochs 1–7
PLATEAU = "lr-steps-plateau"
SHOWN_AT_RE = re.compile(r'name="shown_at" value="([^"]+)"')
EARLIER_RE = re.compile(r'name="earlier" value="([^"]*)"')

SCENARIOS = [
    source.question
    for pattern in read_bank(QUESTIONS)
    for source in pattern.questions
    if isinstance(source.question, StepsQuestion)
]


def _scenario(**overrides: Any) -> dict[str, Any]:
    """A valid step-through scenario as a dict, with `overrides` applied."""
    question: dict[str, Any] = {
        "id": "steps-one",
        "title": "StepLR, epoch by epoch",
        "kind": "steps",
        "difficulty": "easy",
        "prompt": "StepLR halves the rate every 2 epochs.",
        "setup": "import torch\n"
        "optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)\n",
        "code": "scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 2, 0.5)\n",
        "epochs": 5,
        "rule": "StepLR multiplies the rate by `gamma` every `step_size` calls.",
        "hint": "Count the calls.",
    }
    question.update(overrides)
    return question


# --- the bank ----------------------------------------------------------------------------------


def test_the_lesson_has_at_least_five_scenarios_across_schedulers() -> None:
    assert len(SCENARIOS) >= 5
    schedulers = {re.search(r"lr_scheduler\.(\w+)\(", q.code).group(1) for q in SCENARIOS}  # type: ignore[union-attr]
    assert len(schedulers) >= 5, schedulers
    assert {q.difficulty for q in SCENARIOS} == set(schema.Difficulty)


def test_every_step_through_scenario_s_steps_come_from_a_real_run(app: FastAPI, runs: Runs) -> None:
    """The rates stored at import are what a fresh sandbox run of each scenario gives now."""
    with app.state.db.session() as session:
        stored = {q.id: app.state.runs.stored_steps(session, q) for q in SCENARIOS}
    for question in SCENARIOS:
        run = stored[question.id]
        assert run is not None, f"{question.id}: no stored run"
        fresh = runs.run(steps_job(question, timeout_s=runs.timeout_s))
        assert fresh.status is Verdict.OK and fresh.data is not None, question.id
        assert len(fresh.data.trajectory) == question.epochs, question.id
        assert run.result.data is not None
        assert run.result.data.trajectory == fresh.data.trajectory, question.id


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"modes": ["practice", "test"]}, "modes: a step-through scenario reveals each epoch"),
        ({"epochs": 3}, "epochs: must be at least 4"),
        ({"epochs": 13}, "epochs: must be at most 12"),
        ({"metrics": [1.0, 0.9]}, "metrics: give one metric per epoch: 5, not 2"),
        (
            {"moments": [{"epoch": 5, "why": "Too late."}]},
            "moments.0.epoch: the scenario stops at epoch 4",
        ),
        (
            {"moments": [{"epoch": 2, "why": "A."}, {"epoch": 2, "why": "B."}]},
            "moments.1.epoch: two moments at the same epoch",
        ),
        ({"moments": [{"epoch": 0, "why": "Given."}]}, "moments.0.epoch: must be at least 1"),
        ({"rule": None}, "rule: "),
    ],
)
def test_a_scenario_that_cannot_be_stepped_through_says_why(
    tmp_path: Path, overrides: dict[str, Any], expected: str
) -> None:
    data = _scenario(**overrides)
    data = {k: v for k, v in data.items() if v is not None}
    write_bank(tmp_path, [data])
    with pytest.raises(BankError) as caught:
        read_bank(tmp_path)
    assert any(expected in error for error in caught.value.errors), caught.value.errors


@pytest.fixture
def session(empty_db: str) -> Iterator[Session]:
    database = Database(empty_db)
    with database.session() as session:
        yield session
    database.dispose()


@pytest.mark.parametrize(
    ("overrides", "field", "expected"),
    [
        (
            {
                "code": "from torch.optim.lr_scheduler import OneCycleLR\n"
                "scheduler = OneCycleLR(optimizer, 1.0, 3, cycle_momentum=False)\n"
            },
            "code",
            "raises ValueError",
        ),
        ({"code": "scheduler = torch.optim.lr_scheduler.StepLR(optimzer, 2)\n"}, "code", "raises"),
        (
            {
                "setup": "import torch\nw = [torch.nn.Parameter(torch.zeros(1)) for _ in '12']\n"
                "optimizer = torch.optim.SGD([{'params': [w[0]]}, {'params': [w[1]]}], lr=0.1)\n"
            },
            "setup",
            "2 param groups",
        ),
        ({"metrics": [1.0] * 5}, "metrics", "only ReduceLROnPlateau is fed a metric"),
        (
            {"code": "scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)\n"},
            "metrics",
            "give one per epoch",
        ),
    ],
)
def test_verification_refuses_a_scenario_that_does_not_run_to_its_end(
    session: Session, runs: Runs, overrides: dict[str, Any], field: str, expected: str
) -> None:
    question = schema.QUESTION_ADAPTER.validate_python(_scenario(**overrides))
    verification = verify(session, runs, questions=[question]).questions[question.id]
    assert not verification.ok and not verification.runs
    assert [p.field for p in verification.problems] == [field]
    assert expected in verification.problems[0].message, verification.problems


def test_verification_keeps_a_good_scenario_s_run(session: Session, runs: Runs) -> None:
    question = schema.QUESTION_ADAPTER.validate_python(_scenario())
    verification = verify(session, runs, questions=[question]).questions[question.id]
    assert verification.ok, verification.problems
    (run,) = verification.runs
    assert run.result.data is not None
    assert [step[0] for step in run.result.data.trajectory] == [0.1, 0.1, 0.05, 0.05, 0.025]


# --- grading (pure) ----------------------------------------------------------------------------


def _run(*lrs: float, status: Verdict = Verdict.OK) -> RunResult[CodeData]:
    return RunResult[CodeData](status=status, data=CodeData(trajectory=[[lr] for lr in lrs]))


SCENARIO = StepsQuestion.model_validate(_scenario())
RUN = _run(0.1, 0.1, 0.05, 0.05, 0.07290000000000002)


def test_every_epoch_right_is_correct_with_full_score() -> None:
    grade = grading.grade_steps(SCENARIO, RUN, ["0.1", "0.05", 0.05, "0.0729"], run_key="k")
    assert grade.correct and grade.score == 1.0
    assert grade.answer == ["0.1", "0.05", "0.05", "0.0729"]
    feedback = grade.feedback
    assert isinstance(feedback, grading.StepsFeedback)
    assert feedback.first_lr == 0.1 and feedback.run_key == "k"
    assert [s.epoch for s in feedback.steps] == [1, 2, 3, 4]
    assert feedback.message == "All 4 epochs right."


@pytest.mark.parametrize(
    ("given", "right"),
    [
        ("0.0729", True),  # float noise
        ("0.07290000000000002", True),
        ("7.29e-2", True),
        ("0.073", False),  # rounded to 2 significant digits: too coarse
        ("0.0730", False),  # 3 digits, but not the correct rounding… of 0.072900…
        ("0.07", False),
        ("+0.0729", True),
    ],
)
def test_a_prediction_matches_as_output_answers_do(given: str, right: bool) -> None:
    grade = grading.grade_steps(SCENARIO, RUN, ["0.1", "0.05", "0.05", given], run_key="k")
    assert isinstance(grade.feedback, grading.StepsFeedback)
    assert grade.feedback.steps[-1].correct is right


def test_a_rate_correctly_rounded_to_three_digits_is_right() -> None:
    run = _run(0.1, 0.08535533905932738, 0.05, 0.014644660940672627, 0.0)
    grade = grading.grade_steps(SCENARIO, run, ["0.0854", "0.05", "0.0146", "0"], run_key="k")
    assert grade.correct


def test_the_score_is_the_fraction_right_and_the_first_miss_is_named() -> None:
    grade = grading.grade_steps(SCENARIO, RUN, ["0.1", "0.1", "0.05", "0.0729"], run_key="k")
    assert not grade.correct and grade.score == 0.75
    assert isinstance(grade.feedback, grading.StepsFeedback)
    assert [s.correct for s in grade.feedback.steps] == [True, False, True, True]
    assert grade.feedback.steps[1].lr == 0.05  # the real rate, revealed
    assert grade.feedback.message == "3 of 4 epochs right; the first miss is epoch 2."


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("0.1, 0.05, 0.05, 0.07", "answer must be a list of 4 numbers"),
        (0.1, "answer must be a list of 4 numbers"),
        (["0.1", "0.05", "0.05"], "Predict every epoch from 1 to 4"),
        (["0.1"] * 5, "This scenario has 4 epochs to predict (1 to 4), not 5."),
        (["0.1", "abc", "0.05", "0.07"], "Epoch 2: 'abc' is not a number"),
        (["0.1", "0,05", "0.05", "0.07"], "Epoch 2: '0,05' is not a number"),
        (["0.1", "", "0.05", "0.07"], "Epoch 2: type the learning rate you predict."),
        (["0.1", True, "0.05", "0.07"], "Epoch 2: give a number"),
        (["0.1", None, "0.05", "0.07"], "Epoch 2: give a number"),
        (["0.1", ["0.05"], "0.05", "0.07"], "Epoch 2: give a number"),
        (["0.1", "inf", "0.05", "0.07"], "Epoch 2: 'inf' is not a number"),
        (["0.1", "1" * 41, "0.05", "0.07"], "is not a number"),
    ],
)
def test_an_answer_that_cannot_be_predictions_is_invalid(answer: Any, message: str) -> None:
    with pytest.raises(Invalid) as caught:
        grading.grade_steps(SCENARIO, RUN, answer, run_key="k")
    assert caught.value.field == "answer"
    assert message in caught.value.message


def test_some_predictions_so_far_are_parsed_as_typed() -> None:
    assert grading.parse_steps_answer([" 0.1 ", 5e-2], count=4, partial=True) == ["0.1", "0.05"]
    assert grading.parse_steps_answer([], count=4, partial=True) == []


def test_a_run_that_stops_short_is_a_conflict_not_a_grade() -> None:
    with pytest.raises(Conflict):
        grading.grade_steps(SCENARIO, _run(0.1, 0.1, 0.05), ["0.1"] * 4, run_key="k")
    with pytest.raises(Conflict):
        grading.grade_steps(SCENARIO, _run(status=Verdict.ERROR), ["0.1"] * 4, run_key="k")


# --- the pages ---------------------------------------------------------------------------------


CARRIED_RE = re.compile(r'name="carried" value="([^"]+)"')


def _open(client: TestClient, question_id: str = STEPLR) -> tuple[str, dict[str, Any]]:
    response = client.get(f"/patterns/{LESSON}/step-through/{question_id}")
    assert response.status_code == 200, response.text
    return response.text, _form(response.text)


def _form(html: str) -> dict[str, Any]:
    return {
        "csrf_token": CSRF_RE.search(html).group(1),  # type: ignore[union-attr]
        "shown_at": SHOWN_AT_RE.search(html).group(1),  # type: ignore[union-attr]
        "carried": CARRIED_RE.search(html).group(1),  # type: ignore[union-attr]
        "earlier": EARLIER_RE.findall(html),
    }


def _step(
    client: TestClient,
    form: dict[str, Any],
    prediction: str,
    qid: str = STEPLR,
    *,
    slug: str = LESSON,
) -> Any:
    return client.post(
        f"/patterns/{slug}/step-through/{qid}",
        data={**form, "prediction": prediction},
        follow_redirects=False,
    )


def _attempts(db: Session) -> list[Attempt]:
    db.rollback()  # a fresh read: the requests wrote since
    return list(db.scalars(select(Attempt)))


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_list_links_every_scenario_and_the_lesson_links_the_list(client: TestClient) -> None:
    page = client.get(f"/patterns/{LESSON}/step-through")
    assert page.status_code == 200
    for question in SCENARIOS:
        assert f'href="/patterns/{LESSON}/step-through/{question.id}"' in page.text
    assert "<h1>Step through</h1>" in page.text
    lesson = client.get(f"/patterns/{LESSON}").text
    assert f'href="/patterns/{LESSON}/step-through"' in lesson


def test_a_scenario_starts_with_its_code_epoch_0_given_and_epoch_1_to_predict(
    client: TestClient,
) -> None:
    html, form = _open(client)
    text = _text(html)
    assert "StepLR" in html and "step_size" in html
    assert "0 given 0.1" in text  # epoch 0's rate, as the run recorded it
    assert 'for="answer"' in html and "Epoch 1: which learning rate" in text
    assert form["earlier"] == []
    assert "0.05" not in text.split("The epochs so far")[1]  # nothing after epoch 0 is shown


def test_the_question_page_of_a_scenario_leads_to_its_step_through(client: TestClient) -> None:
    response = client.get(f"/patterns/{LESSON}/questions/{STEPLR}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].endswith(f"/patterns/{LESSON}/step-through/{STEPLR}")


def test_walking_a_scenario_right_reveals_each_epoch_then_stores_one_attempt(
    client: TestClient, db: Session
) -> None:
    _, form = _open(client)
    for epoch, rate in enumerate(STEPLR_RATES[:-1], start=1):
        response = _step(client, form, rate)
        assert response.status_code == 200, response.text
        text = _text(response.text)
        assert f"Epoch {epoch}: right" in text
        assert f"Epoch {epoch + 1}: which learning rate" in text
        form = _form(response.text)
        assert form["earlier"] == STEPLR_RATES[:epoch]
        assert _attempts(db) == []  # nothing stored before the end
    assert "StepLR multiplies" in text  # the reason, with every reveal
    done = _step(client, form, STEPLR_RATES[-1])
    assert done.status_code == 303
    (attempt,) = _attempts(db)
    assert attempt.question_id == STEPLR and attempt.correct and attempt.score == 1.0
    assert attempt.answer == STEPLR_RATES
    assert attempt.time_taken_ms is not None  # timed from the first page, by the server
    result = client.get(done.headers["location"])
    assert result.status_code == 200
    text = _text(result.text)
    assert "Every epoch right" in text and "All 7 epochs right." in text
    assert "7 0.025 0.025 right" in text  # the whole run, as a table
    assert "Your predictions and the real learning rate" in text  # the chart
    assert "Next scenario" in text or "All scenarios" in text
    history = client.get("/history").text
    assert "All 7 epochs right." in history


def test_walking_a_scenario_wrong_reveals_the_real_rate_and_scores_the_fraction(
    client: TestClient, db: Session
) -> None:
    _, form = _open(client)
    wrong = ["0.05", "0.025", "0.05", "0.05", "0.05", "0.025", "0.025"]  # halving from epoch 1
    response = _step(client, form, wrong[0])
    text = _text(response.text)
    assert "Epoch 1: not quite" in text
    assert "You predicted 0.05 ; the run trained at 0.1 ." in text
    assert "One call of scheduler.step() so far" in text  # the moment of epoch 1
    for prediction in wrong[1:]:
        form = _form(response.text)
        response = _step(client, form, prediction)
    assert response.status_code == 303
    (attempt,) = _attempts(db)
    assert not attempt.correct and attempt.score == pytest.approx(5 / 7)
    # The rates it missed were revealed: help for the next try, as a solution is.
    assert db.scalars(select(Reveal.attempt_id).where(Reveal.kind == "solution")).all() == [
        attempt.id
    ]
    result = _text(client.get(response.headers["location"]).text)
    assert "5 of 7 epochs right; the first miss is epoch 1." in result
    assert "71% right" in result


def test_the_attempt_page_of_a_step_through_is_its_result(client: TestClient, db: Session) -> None:
    _, form = _open(client)
    for rate in STEPLR_RATES:
        response = _step(client, form, rate)
        if response.status_code == 200:
            form = _form(response.text)
    (attempt,) = _attempts(db)
    attempt_id = attempt.id
    page = client.get(
        f"/patterns/{LESSON}/questions/{STEPLR}/attempts/{attempt_id}", follow_redirects=True
    )
    assert page.status_code == 200 and "All 7 epochs right." in page.text
    assert page.url.path == f"/patterns/{LESSON}/step-through/{STEPLR}/attempts/{attempt_id}"


@pytest.mark.parametrize(
    ("prediction", "message"),
    [
        ("abc", "Epoch 3: &#39;abc&#39; is not a number"),
        ("", "Epoch 3: type the learning rate you predict."),
        ("0,05", "Epoch 3: &#39;0,05&#39; is not a number; write it like 0.05 or 5e-2."),
    ],
)
def test_a_prediction_that_is_not_a_number_is_said_beside_its_field(
    client: TestClient, prediction: str, message: str
) -> None:
    _, form = _open(client)
    form = _form(_step(client, form, "0.1").text)
    form = _form(_step(client, form, "0.1").text)
    response = _step(client, form, prediction)
    assert response.status_code == 422
    html = response.text
    assert f'<p class="form-error" id="answer-error" role="alert">{message}' in html
    assert 'aria-invalid="true"' in html and f'value="{prediction}"' in html
    assert _form(html)["earlier"] == ["0.1", "0.1"]  # what was predicted so far stays
    assert "Epoch 3: which learning rate" in _text(html)


@pytest.mark.parametrize(
    "earlier",
    [["0.1", "x"], ["0.1"] * 7, ["0.1"] * 20],
)
def test_predictions_so_far_that_the_scenario_cannot_have_start_it_again(
    client: TestClient, db: Session, earlier: list[str]
) -> None:
    _, form = _open(client)
    response = _step(client, {**form, "earlier": earlier}, "0.1")
    assert response.status_code == 422
    assert "starts again from epoch 1" in response.text
    assert _form(response.text)["earlier"] == []
    assert "Epoch 1: which learning rate" in _text(response.text)
    assert _attempts(db) == []


def test_predictions_changed_once_revealed_start_it_again(client: TestClient, db: Session) -> None:
    """The real rates, once revealed, cannot be written over the predictions that missed
    them: the page signs what it carries."""
    _, form = _open(client)
    form = _form(_step(client, form, "0.5").text)  # epoch 1 predicted wrong, then revealed
    assert form["earlier"] == ["0.5"]
    forged = _step(client, {**form, "earlier": [STEPLR_RATES[0]]}, STEPLR_RATES[1])
    assert forged.status_code == 422
    assert "changed after their epochs were revealed" in forged.text
    assert "Epoch 1: which learning rate" in _text(forged.text)
    assert _attempts(db) == []


def test_the_hint_is_offered_before_the_first_step_and_stays_once_asked_for(
    client: TestClient, db: Session
) -> None:
    html, form = _open(client)
    assert "Show a hint" in html
    after_one = _step(client, form, "0.1").text
    assert "Show a hint" not in after_one and 'id="hint"' not in after_one  # the rule says more
    asked = client.post(
        f"/patterns/{LESSON}/questions/{STEPLR}/hint", data={"csrf_token": form["csrf_token"]}
    )
    assert asked.status_code == 200 and asked.url.path.endswith(f"/step-through/{STEPLR}")
    assert "<h2>Hint</h2>" in asked.text and "After how many calls" in _text(asked.text)
    form = _form(asked.text)
    for rate in STEPLR_RATES:
        response = _step(client, form, rate)
        if response.status_code == 200:
            assert "<h2>Hint</h2>" in response.text
            form = _form(response.text)
    (attempt,) = _attempts(db)
    assert attempt.correct and attempt.hint_seen


@contextmanager
def _small_bank(
    tmp_path: Path, empty_db: str, runs: Runs, questions: list[dict[str, Any]]
) -> Iterator[TestClient]:
    """A client on a bank of `questions` (imported with the sandbox), served with running
    code switched off: pages can use only what import stored."""
    root = write_bank(tmp_path / "bank", questions)
    database = Database(empty_db)
    with database.session() as session:
        import_bank(session, root, runs=runs)
    database.dispose()
    settings = Settings(
        var_dir=tmp_path / "var",
        database_url=empty_db,
        secret_key=TEST_SECRET,  # type: ignore[arg-type]
        allowed_hosts=["testserver"],
        sandbox_mode="off",
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_scenario_steps_through_from_its_stored_run_with_no_sandbox(
    tmp_path: Path, empty_db: str, runs: Runs
) -> None:
    with _small_bank(tmp_path, empty_db, runs, [choice_question(), _scenario()]) as client:
        assert (
            'href="/patterns/test-pattern/step-through"'
            in client.get("/patterns/test-pattern").text
        )
        response = client.get("/patterns/test-pattern/step-through/steps-one")
        assert response.status_code == 200 and "0 given 0.1" in _text(response.text)
        form = _form(response.text)
        for epoch, rate in enumerate(["0.1", "0.05", "0.05"], start=1):
            response = _step(client, form, rate, "steps-one", slug="test-pattern")
            assert f"Epoch {epoch}: right" in _text(response.text)
            form = _form(response.text)
        done = _step(client, form, "0.025", "steps-one", slug="test-pattern")
        assert done.status_code == 303
        assert "All 4 epochs right." in client.get(done.headers["location"]).text


def test_a_pattern_without_scenarios_says_so(tmp_path: Path, empty_db: str, runs: Runs) -> None:
    with _small_bank(tmp_path, empty_db, runs, [choice_question()]) as client:
        card = client.get("/patterns/test-pattern").text.split('data-mode="step-through"')[1]
        assert "No scenarios yet" in card.split("</li>")[0]  # the mode is there, empty
        page = client.get("/patterns/test-pattern/step-through")
        assert page.status_code == 200 and "no step-through scenarios yet" in page.text


def test_a_step_without_the_form_s_token_is_refused(client: TestClient) -> None:
    _, form = _open(client)
    response = _step(client, {**form, "csrf_token": "forged"}, "0.1")
    assert response.status_code == 403


def test_a_question_that_is_not_a_scenario_has_no_step_through(client: TestClient) -> None:
    response = client.get(f"/patterns/{LESSON}/step-through/lr-steplr-syntax")
    assert response.status_code == 404
    assert client.get("/patterns/no-such-pattern/step-through").status_code == 404


def test_a_plateau_scenario_shows_the_losses_it_feeds(client: TestClient) -> None:
    html, _ = _open(client, PLATEAU)
    text = _text(html)
    assert "Loss 1 0.8 0.85 0.9 0.7 0.75 0.72 0.71" in text
    assert "scheduler.step(loss)" in text


# --- authoring ---------------------------------------------------------------------------------


def test_an_instructor_runs_a_new_scenario_sees_its_rates_and_saves_it(
    client: TestClient, database: Database
) -> None:
    make_user(database, "teacher@example.com", accounts.INSTRUCTOR)
    log_in(client, "teacher@example.com")
    source = starters.starter_source("steps")
    preview = editor_post(client, source, "preview")
    assert "press <strong>Run</strong> to see them" in preview.text
    ran = editor_post(client, source, "run")
    assert ran.status_code == 200, ran.text
    text = _text(ran.text)
    assert "The run: the rate learners predict, epoch by epoch" in text
    assert "0 0.1 given 1 0.1 2 0.05 Two calls" in text and "5 0.025" in text
    broken = source.replace("StepLR(optimizer", "StepLR(optimiser")
    refused = editor_post(client, broken, "save")
    assert refused.status_code == 422 and "raises NameError" in refused.text
    saved = editor_post(client, source, "save")
    assert saved.status_code == 303, saved.text
    listed = client.get(f"/patterns/{LESSON}/step-through").text
    assert f"/patterns/{LESSON}/step-through/new-steps-scenario" in listed


def test_step_throughs_count_in_an_instructor_s_statistics(
    client: TestClient, other_client: TestClient, database: Database, app: FastAPI
) -> None:
    key = right_answer(app, STEPLR, 1, 0)
    for answer in (key, ["0.1"] * 7):
        assert client.post(f"/api/questions/{STEPLR}/attempts", json={"answer": answer}).is_success
    make_user(database, "teacher@example.com", accounts.INSTRUCTOR)
    log_in(other_client, "teacher@example.com")
    page = other_client.get(f"/instructor/patterns/{LESSON}/stats")
    assert page.status_code == 200 and STEPLR in page.text
    figures = other_client.get(f"/api/questions/{STEPLR}/stats")
    assert figures.status_code == 200, figures.text
    assert figures.json()["attempts"] == 2
    export = other_client.get("/api/attempts.csv", params={"pattern": LESSON})
    assert export.status_code == 200 and export.text.count(STEPLR) == 2


# --- the JSON API ------------------------------------------------------------------------------


def test_the_api_shows_a_scenario_s_code_and_epochs_but_not_its_rates(client: TestClient) -> None:
    body = client.get(f"/api/questions/{STEPLR}").json()
    assert body["kind"] == "steps" and body["epochs"] == 8 and body["metrics"] is None
    assert "StepLR" in body["code"] and "optimizer" in body["setup"]
    assert "0.05" not in str(body) and "0.025" not in str(body)
    plateau = client.get(f"/api/questions/{PLATEAU}").json()
    assert plateau["metrics"][:3] == [1.0, 0.8, 0.85]


def test_the_api_grades_a_whole_step_through(client: TestClient, app: FastAPI) -> None:
    key = right_answer(app, STEPLR, 1, 0)
    assert [float(x) for x in key] == [float(x) for x in STEPLR_RATES]
    right = client.post(f"/api/questions/{STEPLR}/attempts", json={"answer": [0.1, *key[1:]]})
    assert right.status_code == 201, right.text
    body = right.json()
    assert body["correct"] and body["score"] == 1.0
    assert body["feedback"]["kind"] == "steps" and len(body["feedback"]["steps"]) == 7
    assert body["solution"]["lrs"][:4] == [0.1, 0.1, 0.1, 0.05]
    wrong = client.post(f"/api/questions/{STEPLR}/attempts", json={"answer": ["0.1"] * 7})
    assert wrong.status_code == 201 and wrong.json()["score"] == pytest.approx(2 / 7)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("0.1 0.1", "answer must be a list of 7 numbers"),
        (["0.1"] * 6, "Predict every epoch from 1 to 7"),
        (["0.1"] * 8, "not 8"),
        ([0.1, "x", 0.05, 0.05, 0.05, 0.025, 0.025], "Epoch 2: 'x' is not a number"),
        ([0.1, {}, 0.05, 0.05, 0.05, 0.025, 0.025], "Epoch 2: give a number"),
    ],
)
def test_the_api_refuses_what_cannot_be_predictions(
    client: TestClient, answer: Any, message: str
) -> None:
    response = client.post(f"/api/questions/{STEPLR}/attempts", json={"answer": answer})
    assert response.status_code == 422
    assert response.json()["field"] == "answer" and message in response.json()["detail"]


def test_a_list_answers_no_other_kind_of_question(client: TestClient) -> None:
    response = client.post("/api/questions/lr-steplr-syntax/attempts", json={"answer": [0.1]})
    assert response.status_code == 422 and response.json()["field"] == "answer"


def test_scenarios_are_practised_never_drawn_in_tests(db: Session) -> None:
    pattern = bank.get_pattern_or_raise(db, LESSON)
    assert not [q.id for q in exams.test_pool(db, pattern) if q.question.kind == "steps"]
    ordered = practice.practice_order(bank.list_questions(db, pattern), practice.PracticeRecord())
    assert {q.id for q in ordered} >= {q.id for q in SCENARIOS}


# --- a real browser, the keyboard alone ----------------------------------------------------------


@pytest.fixture
def tab(app: FastAPI) -> Iterator[tuple[Page, str]]:
    ARTIFACTS.mkdir(exist_ok=True)
    with live_server(app) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 390, "height": 844})
        context.set_default_timeout(10_000)
        yield context.new_page(), base
        context.close()
        browser.close()


FOCUSED = "() => document.activeElement.outerHTML.slice(0, 120)"


def _tab_to(page: Page, marker: str) -> None:
    """Press Tab until the focused element's HTML holds `marker`."""
    for _ in range(60):
        page.keyboard.press("Tab")
        if marker in page.evaluate(FOCUSED):
            return
    pytest.fail(f"Tab never reached {marker}")


@pytest.mark.slow
def test_a_keyboard_alone_steps_through_a_scenario_on_a_phone(tab: tuple[Page, str]) -> None:
    page, base = tab
    page.goto(f"{base}/patterns/{LESSON}/step-through")
    _tab_to(page, 'href="/patterns/lr-schedulers/step-through/lr-steps-steplr"')
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("StepLR, epoch by epoch")
    expect(page.locator(".prompt")).to_contain_text("StepLR halves the rate every 3 epochs.")
    _tab_to(page, 'name="prediction"')
    answers = ["0.1", "0.05", *STEPLR_RATES[2:]]  # epoch 2 wrong
    for epoch, answer in enumerate(answers, start=1):
        expect(page.get_by_label(f"Epoch {epoch}: which learning rate")).to_be_focused()
        page.keyboard.type(answer)
        page.keyboard.press("Enter")  # submits the form
        if epoch < len(answers):
            verdict = page.get_by_role("heading", name=f"Epoch {epoch}: ")
            expect(verdict).to_be_focused()  # said first: the revealed rate
            expected = "right" if answer == STEPLR_RATES[epoch - 1] else "not quite"
            expect(verdict).to_have_text(f"Epoch {epoch}: {expected}")
            if epoch == 2:
                page.screenshot(path=str(ARTIFACTS / "step-through-step.png"), full_page=True)
            page.keyboard.press("Tab")  # from the verdict, on to the next prediction
    expect(page.get_by_role("heading", name="86% right")).to_be_focused()
    expect(page.get_by_text("6 of 7 epochs right; the first miss is epoch 2.")).to_be_visible()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390
    page.screenshot(path=str(ARTIFACTS / "step-through-result.png"), full_page=True)
