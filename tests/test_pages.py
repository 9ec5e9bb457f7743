"""Learner pages: every page renders, and a learner can answer and see the worked solution."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import accounts
from app.bank.files import read_bank
from app.db import Database
from app.models import Attempt, Reveal
from app.templating import plural
from tests.conftest import CSRF_RE, QUESTIONS, Learner, wrong_answer

LESSON = "lr-schedulers"
QUESTIONS_BY_ID = {s.question.id: s.question for p in read_bank(QUESTIONS) for s in p.questions}
QUESTION_IDS = list(QUESTIONS_BY_ID)
# Answered on the question page; step-through scenarios have pages of their own
# (tests/test_step_through.py).
ANSWERED_HERE = [qid for qid in QUESTION_IDS if QUESTIONS_BY_ID[qid].kind != "steps"]


def _attempts(db: Session) -> list[Attempt]:
    db.rollback()  # end the read snapshot, to see what requests committed since
    return list(db.scalars(select(Attempt).order_by(Attempt.id)))


def test_home_lists_the_patterns(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.template.name == "patterns/index.html"  # type: ignore[attr-defined]
    assert "Learning rate schedulers in PyTorch" in response.text
    assert f"{len(QUESTION_IDS)} questions" in response.text


SEED_PRACTICE = [
    "lr-purpose",
    "lr-steplr-syntax",
    "lr-steplr-three-steps",
    "lr-step-order",
    "lr-two-phase-schedule",
]


def test_the_lesson_page_reads_top_to_bottom_in_the_seeds_order(client: TestClient) -> None:
    response = client.get(f"/patterns/{LESSON}")
    assert response.status_code == 200
    html = response.text
    seed_order = [
        "Data flow —",
        "Training, epoch by epoch",
        "Prediction trace",
        'id="key-insight-title"',
        "Quiz — 3 questions",
        "Practice — 5 questions",
        'id="modes-title"',
        'data-mode="test"',  # "Test this pattern", among the ways to learn
        "Every question —",
    ]
    places = [html.find(text) for text in seed_order]
    assert -1 not in places, dict(zip(seed_order, places, strict=True))
    assert places == sorted(places), "the lesson is out of the seed's order"
    practice = html[html.index("Practice — 5 questions") : html.index('id="modes-title"')]
    assert [qid for qid in SEED_PRACTICE if f'id="q-{qid}"' in practice] == SEED_PRACTICE
    assert practice.index("q-lr-purpose") < practice.index("q-lr-two-phase-schedule")
    assert html.count('<details class="question-group">') >= 2  # grouped by kind, collapsed
    for qid in QUESTION_IDS:
        assert f"/patterns/{LESSON}/questions/{qid}" in html
    assert "| epoch |" not in html  # titles, not flattened Markdown


def test_a_question_answered_in_the_lesson_comes_back_to_it(
    client: TestClient, learner: Learner, db: Session
) -> None:
    lesson = client.get(f"/patterns/{LESSON}").text
    token = CSRF_RE.search(lesson).group(1)  # type: ignore[union-attr]
    card = lesson[lesson.index('id="q-lr-purpose"') :]
    shown_at = re.search(r'name="shown_at" value="([^"]+)"', card).group(1)  # type: ignore[union-attr]
    form = {"csrf_token": token, "shown_at": shown_at, "back": "lesson"}

    wrong = client.post(
        f"/patterns/{LESSON}/questions/lr-purpose/answer",
        data={**form, "answer": "1"},
        follow_redirects=False,
    )
    assert wrong.status_code == 303
    assert wrong.headers["location"].endswith(f"/patterns/{LESSON}#q-lr-purpose")
    card = (
        client.get(f"/patterns/{LESSON}").text.split('id="q-lr-purpose"')[1].split("</article>")[0]
    )
    assert "Not yet — try again" in card and "DataLoader" in card  # choice B's misconception
    assert "right answer" not in card and "Worked solution" not in card
    assert "Wrong tries in a row: 1 of 3" in card and ">Try again</button>" in card

    hint = client.post(
        f"/patterns/{LESSON}/questions/lr-purpose/hint",
        data={"csrf_token": token, "back": "lesson"},
        follow_redirects=False,
    )
    assert hint.headers["location"].endswith("#q-lr-purpose")
    right = client.post(
        f"/patterns/{LESSON}/questions/lr-purpose/answer", data={**form, "answer": "3"}
    )
    card = right.text.split('id="q-lr-purpose"')[1].split("</article>")[0]
    assert "Correct" in card and "Worked solution" in card and "data-stepwise" in card
    attempts = _attempts(db)
    assert [a.correct for a in attempts] == [False, True]
    # Asked among others, a question's time is not the page's age: none is measured.
    assert [a.time_taken_ms for a in attempts] == [None, None]
    assert attempts[1].rating == 2 and attempts[1].hint_seen  # Hard for the hint, not for time


def test_back_to_a_page_that_does_not_ask_the_question_shows_its_own_result(
    client: TestClient, learner: Learner
) -> None:
    html = learner.open_question(LESSON, "lr-code-steplr")
    token = CSRF_RE.search(html).group(1)  # type: ignore[union-attr]
    hint = client.post(
        f"/patterns/{LESSON}/questions/lr-code-steplr/hint",
        data={"csrf_token": token, "back": "quiz"},
        follow_redirects=False,
    )
    assert hint.headers["location"].endswith("/questions/lr-code-steplr#hint")


def test_the_lessons_question_groups_are_named_by_kind(client: TestClient) -> None:
    html = client.get(f"/patterns/{LESSON}").text
    groups = re.findall(r"<summary>([^<]+) <span", html)
    assert groups == [
        "Multiple choice",
        "Predict the output",
        "Step through",
        "Write the code",
        "Fix the bug",
    ]


def test_a_bad_back_is_a_form_error_not_a_500(client: TestClient, learner: Learner) -> None:
    html = learner.open_question(LESSON, "lr-purpose")
    token = CSRF_RE.search(html).group(1)  # type: ignore[union-attr]
    response = client.post(
        f"/patterns/{LESSON}/questions/lr-purpose/hint",
        data={"csrf_token": token, "back": "elsewhere"},
        follow_redirects=False,
    )
    assert response.status_code == 303  # a harmless field typed wrong: its default
    assert response.headers["location"].endswith("/questions/lr-purpose#hint")


SOLUTION_SHOWN = {
    "code": "The reference solution",
    "fix": "The reference solution",
    "choice": "Worked solution",
}


@pytest.mark.parametrize("question_id", ANSWERED_HERE)
def test_every_question_page_renders_and_every_wrong_answer_teaches_before_it_tells(
    app: FastAPI, client: TestClient, learner: Learner, question_id: str
) -> None:
    html = learner.open_question(LESSON, question_id)
    kind = QUESTIONS_BY_ID[question_id].kind
    if kind == "choice":
        assert 'type="radio" name="answer"' in html
    else:
        assert '<textarea id="answer" name="answer"' in html
        assert "{{" not in html  # every placeholder filled with the variant's values
    response = learner.answer(LESSON, question_id, wrong_answer(app, question_id, 1))
    assert response.status_code == 303  # type: ignore[attr-defined]
    url = response.headers["location"]  # type: ignore[attr-defined]
    result = client.get(url)
    assert result.status_code == 200
    solution = SOLUTION_SHOWN.get(kind, "Worked solution, from the real run")
    assert "Not yet — try again" in result.text and solution not in result.text
    assert "Show the worked solution" in result.text and 'name="answer"' in result.text
    if kind in ("code", "fix"):
        assert "Your code" in result.text

    assert learner.reveal(url).status_code == 303  # type: ignore[attr-defined]
    result = client.get(url)
    assert solution in result.text and "Show the worked solution" not in result.text
    if kind not in ("code", "fix"):
        assert "Final answer" in result.text


def test_answering_stores_the_attempt_and_shows_the_verdict(
    client: TestClient, learner: Learner, db: Session
) -> None:
    response = learner.answer(LESSON, "lr-purpose", 3)
    page = client.get(response.headers["location"])  # type: ignore[attr-defined]
    assert "Correct" in page.text
    (attempt,) = _attempts(db)
    assert (attempt.question_id, attempt.question_version) == ("lr-purpose", 1)
    assert (attempt.answer, attempt.correct, attempt.score) == (3, True, 1.0)
    assert attempt.time_taken_ms is not None and 0 <= attempt.time_taken_ms < 60_000
    assert not attempt.hint_seen and not attempt.solution_seen


def test_a_wrong_answer_shows_the_misconception_behind_it_not_the_key(
    client: TestClient, learner: Learner
) -> None:
    response = learner.answer(LESSON, "lr-purpose", 1)
    page = client.get(response.headers["location"])  # type: ignore[attr-defined]
    assert "Not yet — try again" in page.text
    assert "Why B is tempting, and wrong" in page.text
    assert "DataLoader" in page.text  # the mistake text of choice B
    assert "right answer" not in page.text and "Worked solution" not in page.text
    assert "Wrong tries in a row: 1 of 3" in page.text


def test_the_hint_is_recorded_and_flags_the_next_attempt(
    client: TestClient, learner: Learner, db: Session
) -> None:
    assert "Show a hint" in learner.open_question(LESSON, "lr-purpose")
    response = learner.ask_hint(LESSON, "lr-purpose")
    assert response.status_code == 303  # type: ignore[attr-defined]
    html = learner.open_question(LESSON, "lr-purpose")
    assert "Show a hint" not in html and "<h2>Hint</h2>" in html
    assert db.scalars(select(Reveal.kind)).all() == ["hint"]

    learner.answer(LESSON, "lr-purpose", 0)
    learner.answer(LESSON, "lr-purpose", 3)
    first, second = _attempts(db)
    assert first.hint_seen and not first.solution_seen
    assert second.hint_seen and not second.solution_seen  # a wrong answer shows no solution


def test_a_revealed_solution_is_recorded_and_flags_the_next_attempt(
    client: TestClient, learner: Learner, db: Session
) -> None:
    wrong = learner.answer(LESSON, "lr-purpose", 0)
    url = wrong.headers["location"]  # type: ignore[attr-defined]
    shown = learner.reveal(url)
    assert shown.headers["location"].endswith(f"{url}#solution-title")  # type: ignore[attr-defined]
    page = client.get(url).text
    assert "Not quite" in page and "right answer" in page and "Worked solution" in page
    (reveal,) = db.scalars(select(Reveal)).all()
    assert (reveal.kind, reveal.attempt_id) == ("solution", _attempts(db)[0].id)

    learner.reveal(url)  # pressed twice (a second tab): recorded once
    assert len(db.scalars(select(Reveal)).all()) == 1
    learner.answer(LESSON, "lr-purpose", 3)
    first, second = _attempts(db)
    assert not first.solution_seen and second.solution_seen
    assert second.rating == 2  # right, but with the solution just read: Hard


def test_the_third_wrong_try_in_a_row_shows_the_solution(
    client: TestClient, learner: Learner, db: Session
) -> None:
    for tries, choice in enumerate((0, 1, 2), start=1):
        response = learner.answer(LESSON, "lr-purpose", choice)
        page = client.get(response.headers["location"]).text  # type: ignore[attr-defined]
        if tries < 3:
            assert f"Wrong tries in a row: {tries} of 3" in page
            assert "Worked solution" not in page
    assert "Worked solution" in page and "right answer" in page
    assert "Try again</h2>" not in page and "Try another variant" not in page  # one variant
    third = _attempts(db)[-1]
    assert db.scalars(select(Reveal.attempt_id)).all() == [third.id]

    # Having seen it, the next wrong try starts counting again: it is not shown at once.
    response = learner.answer(LESSON, "lr-purpose", 0)
    page = client.get(response.headers["location"]).text  # type: ignore[attr-defined]
    assert "Wrong tries in a row: 1 of 3" in page and "Worked solution" not in page


def test_a_right_answer_resets_the_count_of_wrong_tries(
    client: TestClient, learner: Learner
) -> None:
    for choice in (0, 1, 3, 0):
        response = learner.answer(LESSON, "lr-purpose", choice)
    page = client.get(response.headers["location"]).text  # type: ignore[attr-defined]
    assert "Wrong tries in a row: 1 of 3" in page


def test_nobody_reveals_an_attempt_of_someone_else(
    app: FastAPI, client: TestClient, learner: Learner, db: Session
) -> None:
    url = learner.answer(LESSON, "lr-purpose", 0).headers["location"]  # type: ignore[attr-defined]
    with TestClient(app) as other_client:
        other = Learner(other_client)
        html = other.open_question(LESSON, "lr-purpose")
        token = html.split('name="csrf_token" value="')[1].split('"')[0]
        response = other_client.post(f"{url}/solution", data={"csrf_token": token})
        assert response.status_code == 404
    assert db.scalars(select(Reveal)).all() == []


def test_submitting_without_a_choice_is_a_form_error_not_a_record(
    learner: Learner, db: Session
) -> None:
    response = learner.answer(LESSON, "lr-purpose", None)
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert "Pick one of the choices" in response.text  # type: ignore[attr-defined]
    assert _attempts(db) == []


def test_an_impossible_choice_is_a_form_error(client: TestClient, learner: Learner) -> None:
    html = learner.open_question(LESSON, "lr-purpose")
    token = html.split('name="csrf_token" value="')[1].split('"')[0]
    response = client.post(
        f"/patterns/{LESSON}/questions/lr-purpose/answer",
        data={"csrf_token": token, "answer": "7"},
    )
    assert response.status_code == 422
    assert "answer must be a choice index 0–3" in response.text


def test_a_form_without_the_csrf_token_is_refused(client: TestClient, db: Session) -> None:
    client.get(f"/patterns/{LESSON}/questions/lr-purpose")
    response = client.post(f"/patterns/{LESSON}/questions/lr-purpose/answer", data={"answer": "3"})
    assert response.status_code == 403
    assert "Reload the page" in response.text
    assert _attempts(db) == []


def test_someone_elses_attempt_is_not_found(learner: Learner, other_client: TestClient) -> None:
    location = learner.answer(LESSON, "lr-purpose", 3).headers["location"]  # type: ignore[attr-defined]
    assert learner.client.get(location).status_code == 200
    response = other_client.get(location)
    assert response.status_code == 404
    assert "Correct" not in response.text


def test_progress_shows_on_home_and_pattern_page(client: TestClient, learner: Learner) -> None:
    learner.answer(LESSON, "lr-purpose", 3)
    learner.answer(LESSON, "lr-steplr-syntax", 1)
    total = len(QUESTION_IDS)
    weights = {"easy": 1, "medium": 2, "hard": 3}
    # one easy question right (quickly: credit 1), one wrong (credit 0), weighted by difficulty
    mastery = max(1, round(100 / sum(weights[q.difficulty] for q in QUESTIONS_BY_ID.values())))
    for page in (client.get("/").text, client.get(f"/patterns/{LESSON}").text):
        label = " ".join(page.split('class="progress-label">')[1].split("</p>")[0].split())
        assert (
            label == f"<strong>Mastery {mastery}%</strong> · 2 / {total} seen · 1 solved "
            "· 1-day streak"
        )


def test_an_open_test_is_offered_on_home_and_pattern_page(client: TestClient) -> None:
    started = client.post(f"/api/patterns/{LESSON}/tests", json={}).json()
    exam_id, first = started["id"], started["questions"][0]["question"]
    wrong = "0" if first["kind"] == "choice" else "not this"
    saved = client.put(f"/api/tests/{exam_id}/questions/1/answer", json={"answer": wrong})
    assert saved.status_code == 200, saved.text
    link = f'href="/tests/{exam_id}"'
    for url in ("/", f"/patterns/{LESSON}"):
        page = client.get(url).text
        assert link in page, url
        assert "1 of 10 answered" in page and "Continue your test" in page, url
    assert client.post(f"/api/tests/{exam_id}/finish", json={}).status_code == 200
    for url in ("/", f"/patterns/{LESSON}"):
        page = client.get(url).text
        assert link not in page and "Continue your test" not in page, url


def test_counts_agree_with_their_nouns() -> None:
    assert [plural(n, "epoch") for n in (0, 1, 2)] == ["0 epochs", "1 epoch", "2 epochs"]
    assert plural(3, "match", "matches") == "3 matches"


NOT_PROSE = {"code", "reference", "expression", "answer", "notes", "params", "check"}


def _prose(value: object, key: str = "") -> list[str]:
    """The texts of a question a learner reads (not its code, nor its authors' notes)."""
    if key in NOT_PROSE:
        return []
    if isinstance(value, str):
        return [re.sub(r"`[^`]*`", "", value)]  # inline code is code
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in _prose(v, k)]
    if isinstance(value, list):
        return [t for v in value for t in _prose(v, key)]
    return []


def test_no_question_counts_with_a_programs_plural() -> None:
    # "after 1 epoch(s)", "stepped 2 time(s)": a count in a question's words agrees with its
    # noun, or the sentence is written so that it needs no count.
    read = 0
    for qid, question in QUESTIONS_BY_ID.items():
        texts = _prose(question.model_dump())
        assert question.prompt in " ".join(texts) or "`" in question.prompt, qid
        for text in texts:
            assert not re.search(r"\w\((s|es)\)", text), (qid, text)
        read += len(texts)
    assert read > 3 * len(QUESTIONS_BY_ID)  # prompts, hints, solutions, mistakes


def test_an_output_answer_with_too_many_values_is_told_so_in_words(client: TestClient) -> None:
    # The run prints one value (a float): the reason reads "1 value", not "1 value(s)".
    answered = client.post(
        "/api/questions/lr-output-exponentiallr/attempts", json={"answer": "0.05 0.1"}
    )
    assert answered.status_code == 201, answered.text
    assert answered.json()["feedback"]["reason"] == "the run printed 1 value, your answer has 2"


@pytest.mark.parametrize(
    "url",
    [
        "/patterns/no-such-pattern",
        f"/patterns/{LESSON}/questions/no-such-question",
        f"/patterns/other-pattern/questions/{QUESTION_IDS[0]}",
        f"/patterns/{LESSON}/questions/lr-purpose/attempts/999",
        "/no/such/page",
    ],
)
def test_unknown_things_are_a_404_page(client: TestClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 404
    assert response.template.name == "errors/error.html"  # type: ignore[attr-defined]
    assert "<title>Not found · Tracewise</title>" in response.text


def test_a_malformed_attempt_id_is_a_404_page_in_words(client: TestClient) -> None:
    response = client.get(f"/patterns/{LESSON}/questions/lr-purpose/attempts/abc")
    assert response.status_code == 404
    assert "<title>Not found · Tracewise</title>" in response.text
    assert "There is nothing here called &#39;abc&#39;." in response.text
    assert "attempt_id" not in response.text and "parse" not in response.text


MALFORMED_NUMBERS = ["abc", "-1", "0", "1.5", "99999999999", ""]


@pytest.mark.parametrize("value", MALFORMED_NUMBERS)
def test_a_malformed_from_is_ignored_and_the_question_shows(client: TestClient, value: str) -> None:
    """`?from=` starts a code editor from an earlier answer: one that cannot be an attempt's
    number is left out, as if not given (nothing is lost but a prefill)."""
    response = client.get(f"/patterns/{LESSON}/questions/lr-code-steplr?from={value}")
    assert response.status_code == 200
    assert response.template.name == "questions/detail.html"  # type: ignore[attr-defined]
    assert not response.context["given"]  # type: ignore[attr-defined]  # the starter, no prefill


@pytest.mark.parametrize("value", MALFORMED_NUMBERS)
def test_a_malformed_history_page_shows_the_first_page(client: TestClient, value: str) -> None:
    response = client.get(f"/history?page={value}")
    assert response.status_code == 200
    assert response.context["history"].page == 1  # type: ignore[attr-defined]


def test_a_malformed_after_in_practice_is_ignored(client: TestClient) -> None:
    response = client.get(f"/patterns/{LESSON}/practice?after={'x' * 500}", follow_redirects=False)
    assert response.status_code == 303


def test_a_malformed_next_goes_home_after_log_in(client: TestClient) -> None:
    response = client.get(f"/login?next=/{'x' * 3000}")
    assert response.status_code == 200
    assert response.context["next"] == "/"  # type: ignore[attr-defined]


def _log_in_as(client: TestClient, database: Database, role: str) -> None:
    email = f"{role}@example.com"
    with database.session() as session:
        accounts.create_user(session, email=email, password="a long passphrase", role=role)
    match = CSRF_RE.search(client.get("/login").text)
    assert match
    response = client.post(
        "/login",
        data={"csrf_token": match.group(1), "email": email, "password": "a long passphrase"},
        follow_redirects=False,
    )
    assert response.status_code == 303


@pytest.mark.parametrize("value", MALFORMED_NUMBERS)
def test_a_malformed_audit_position_shows_the_newest(
    client: TestClient, database: Database, value: str
) -> None:
    _log_in_as(client, database, accounts.ADMIN)
    response = client.get(f"/admin/audit?before={value}")
    assert response.status_code == 200
    newest = client.get("/admin/audit").context["events"]  # type: ignore[attr-defined]
    assert response.context["events"] == newest  # type: ignore[attr-defined]


def test_a_malformed_value_that_matters_is_a_422_page_in_our_words(
    client: TestClient, database: Database
) -> None:
    _log_in_as(client, database, accounts.INSTRUCTOR)
    response = client.get("/instructor/questions/lr-purpose/versions?old=abc")
    assert response.status_code == 422
    assert response.template.name == "errors/error.html"  # type: ignore[attr-defined]
    assert "old: must be a whole number" in response.text
    assert "Input should" not in response.text


def test_the_session_cookie_is_signed_httponly_and_samesite(client: TestClient) -> None:
    response = client.get(f"/patterns/{LESSON}/questions/lr-purpose")
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


def test_a_tampered_cookie_is_a_new_guest(client: TestClient, learner: Learner) -> None:
    location = learner.answer(LESSON, "lr-purpose", 3).headers["location"]  # type: ignore[attr-defined]
    value = client.cookies["tracewise"]
    client.cookies.set("tracewise", value[:-3] + "AAA", domain="testserver.local")
    assert client.get(location).status_code == 404


def test_the_history_keeps_a_wrong_answers_key_until_it_is_revealed(
    client: TestClient, learner: Learner
) -> None:
    url = learner.answer(LESSON, "lr-purpose", 1).headers["location"]  # type: ignore[attr-defined]
    entry = client.get("/history").text.split('class="history-feedback"')[1].split("</p>")[0]
    assert "You chose B" in entry and "the answer was" not in entry
    learner.reveal(url)
    entry = client.get("/history").text.split('class="history-feedback"')[1].split("</p>")[0]
    assert "You chose B; the answer was D" in entry
