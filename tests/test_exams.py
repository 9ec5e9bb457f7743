"""The 10-question test: the draw, no feedback before the end, resume, one result per test."""

from __future__ import annotations

import random
import re
import threading
from dataclasses import replace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.bank import service as bank
from app.bank.schema import ChoiceQuestion, Difficulty
from app.bank.service import LiveQuestion
from app.checking import grading
from app.config import Settings
from app.db import Database, begin_write
from app.learning import answering, exams, learners, review
from app.main import create_app
from app.models import Attempt, Exam, Learner, ReviewCard
from app.sandbox.client import Sandbox
from tests.conftest import CSRF_RE, right_answer, wrong_answer

LESSON = "lr-schedulers"
JSON = {"Content-Type": "application/json"}


def _start(client: TestClient) -> dict[str, Any]:
    response = client.post(f"/api/patterns/{LESSON}/tests", json={})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _key(app: FastAPI, question: dict[str, Any]) -> str:
    q = question["question"]
    return right_answer(app, q["id"], q["version"], q["variant"])


def _save(client: TestClient, exam_id: int, number: int, answer: object) -> Any:
    return client.put(f"/api/tests/{exam_id}/questions/{number}/answer", json={"answer": answer})


def _attempt_count(db: Session) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(Attempt)) or 0


# --- the draw ---------------------------------------------------------------------------------


def _pool(easy: int, medium: int, hard: int) -> list[LiveQuestion]:
    pool = []
    for difficulty, count in (
        (Difficulty.EASY, easy),
        (Difficulty.MEDIUM, medium),
        (Difficulty.HARD, hard),
    ):
        for i in range(count):
            question: Any = type("Q", (), {"difficulty": difficulty})()
            pool.append(LiveQuestion(f"{difficulty}-{i}", 1, "p", i, question))
    return pool


def _difficulties(drawn: list[LiveQuestion]) -> list[str]:
    return [q.question.difficulty.value for q in drawn]


def test_a_test_draws_three_easy_four_medium_three_hard_easy_first() -> None:
    drawn = exams.draw(_pool(8, 8, 8), random.Random(1))
    assert _difficulties(drawn) == ["easy"] * 3 + ["medium"] * 4 + ["hard"] * 3
    assert len({q.id for q in drawn}) == 10


def test_a_difficulty_that_runs_short_is_filled_from_its_neighbour() -> None:
    assert _difficulties(exams.draw(_pool(8, 8, 1), random.Random(1))) == (
        ["easy"] * 3 + ["medium"] * 6 + ["hard"]
    )
    assert _difficulties(exams.draw(_pool(1, 8, 8), random.Random(1))) == (
        ["easy"] + ["medium"] * 6 + ["hard"] * 3
    )
    assert _difficulties(exams.draw(_pool(8, 0, 1), random.Random(1))) == ["easy"] * 8 + ["hard"]


def test_a_small_pool_gives_a_shorter_test() -> None:
    assert len(exams.draw(_pool(1, 1, 1), random.Random(1))) == 3


def test_draws_differ_between_tests() -> None:
    pool = _pool(8, 8, 8)
    draws = {tuple(q.id for q in exams.draw(pool, random.Random(seed))) for seed in range(5)}
    assert len(draws) > 1


# --- taking a test ------------------------------------------------------------------------------


def test_a_test_in_the_browser_shows_no_feedback_until_the_end(
    client: TestClient, app: FastAPI, db: Session
) -> None:
    page = client.get(f"/patterns/{LESSON}/test")
    assert page.status_code == 200 and "Start the test" in page.text
    csrf = CSRF_RE.search(page.text).group(1)  # type: ignore[union-attr]
    started = client.post(f"/patterns/{LESSON}/test", data={"csrf_token": csrf})
    assert started.status_code == 200
    assert started.url.path.endswith("/questions/1")
    assert "Test question 1 of 10" in started.text
    exam_id = int(started.url.path.split("/")[2])

    api = client.get(f"/api/tests/{exam_id}").json()
    for number, question in enumerate(api["questions"], start=1):
        html = client.get(f"/tests/{exam_id}/questions/{number}").text
        assert f"Test question {number} of 10" in html
        csrf = CSRF_RE.search(html).group(1)  # type: ignore[union-attr]
        answer = wrong_answer(app, question["question"]["id"], question["question"]["version"])
        saved = client.post(
            f"/tests/{exam_id}/questions/{number}",
            data={"csrf_token": csrf, "answer": answer, "go": "next"},
        )
        assert saved.status_code == 200
        for verdict in ("Correct", "Not quite", "Worked solution", "right answer"):
            assert verdict not in saved.text
    assert saved.url.path == f"/tests/{exam_id}/finish"
    assert "answered <strong>10 of 10</strong>" in saved.text
    assert _attempt_count(db) == 0  # nothing graded yet

    csrf = CSRF_RE.search(saved.text).group(1)  # type: ignore[union-attr]
    result = client.post(f"/tests/{exam_id}/finish", data={"csrf_token": csrf})
    assert result.status_code == 200 and result.url.path == f"/tests/{exam_id}"
    assert "You scored 0 / 10" in result.text
    assert "Not yet" in result.text and "Practise what you missed" in result.text
    assert result.text.count("Worked solution") + result.text.count("reference solution") >= 10
    assert _attempt_count(db) == 10


def test_finishing_grades_every_answer_and_breaks_the_score_down(
    client: TestClient, app: FastAPI, db: Session
) -> None:
    exam = _start(client)
    questions = exam["questions"]
    assert [q["question"]["difficulty"] for q in questions] == (
        ["easy"] * 3 + ["medium"] * 4 + ["hard"] * 3
    )
    for q in questions[:7]:  # right: all easy and medium
        assert _save(client, exam["id"], q["number"], _key(app, q)).status_code == 200
    for q in questions[7:9]:  # wrong: two hard
        bad = wrong_answer(app, q["question"]["id"], q["question"]["version"])
        assert _save(client, exam["id"], q["number"], bad).status_code == 200
    # question 10 left unanswered

    during = client.get(f"/api/tests/{exam['id']}").json()
    assert during["result"] is None and during["answered"] == 9
    assert '"correct"' not in client.get(f"/api/tests/{exam['id']}").text

    result = client.post(f"/api/tests/{exam['id']}/finish", json={}).json()
    assert (result["correct"], result["total"], result["score"]) == (7, 10, 0.7)
    assert result["breakdown"] == [
        {"difficulty": "easy", "correct": 3, "total": 3},
        {"difficulty": "medium", "correct": 4, "total": 4},
        {"difficulty": "hard", "correct": 0, "total": 3},
    ]
    assert result["verdict"]["level"] == "developing"
    assert "hard" in result["verdict"]["advice"]
    items = result["items"]
    assert [i["correct"] for i in items] == [True] * 7 + [False] * 3
    assert items[9]["answered"] is False and items[9]["attempt"] is None
    assert items[0]["attempt"]["solution"]  # the worked solution comes with each answer
    assert _attempt_count(db) == 9
    # test answers count like any other: each question now has a review card
    assert db.scalar(select(func.count()).select_from(ReviewCard)) == 9

    page = client.get(f"/tests/{exam['id']}")
    assert "You scored 7 / 10" in page.text and "Getting there" in page.text
    assert "You did not answer this one." in page.text


def test_finishing_twice_records_one_result(client: TestClient, app: FastAPI, db: Session) -> None:
    exam = _start(client)
    for q in exam["questions"]:
        _save(client, exam["id"], q["number"], _key(app, q))
    first = client.post(f"/api/tests/{exam['id']}/finish", json={})
    second = client.post(f"/api/tests/{exam['id']}/finish", json={})
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert first.json()["verdict"]["level"] == "strong"
    assert _attempt_count(db) == 10
    changed = _save(client, exam["id"], 1, "0")
    assert changed.status_code == 409 and "finished" in changed.json()["detail"]


def test_two_finishes_at_once_record_one_result(
    client: TestClient, app: FastAPI, database: Database, db: Session
) -> None:
    exam = _start(client)
    for q in exam["questions"]:
        _save(client, exam["id"], q["number"], _key(app, q))
    db.rollback()
    learner_id = db.scalar(select(Exam.learner_id).where(Exam.id == exam["id"]))

    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def finish() -> None:
        with database.session() as session:
            learner = session.get(Learner, learner_id)
            assert learner is not None
            visitor = learners.Visitor(token=learner.token, learner=learner)
            barrier.wait()
            try:
                exams.finish_exam(session, visitor=visitor, exam_id=exam["id"], runs=app.state.runs)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

    threads = [threading.Thread(target=finish) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _attempt_count(db) == 10


def test_a_test_resumes_after_the_browser_and_the_server_restart(
    client: TestClient, app: FastAPI, settings: Settings, sandbox: Sandbox
) -> None:
    exam = _start(client)
    for q in exam["questions"][:3]:
        _save(client, exam["id"], q["number"], _key(app, q))
    cookies = dict(client.cookies)

    restarted = create_app(settings, sandbox=sandbox)  # a new process on the same database
    with TestClient(restarted, cookies=cookies) as browser:
        page = browser.get(f"/patterns/{LESSON}/test")
        # where the learner was (question 3) is answered: resume at the next one that is not
        assert "Resume at question 4" in page.text and "answered 3 of 10" in page.text
        resumed = browser.get(f"/tests/{exam['id']}")
        assert resumed.url.path == f"/tests/{exam['id']}/questions/4"
        again = browser.post(f"/api/patterns/{LESSON}/tests", json={}).json()
        assert again["id"] == exam["id"]  # one open test per pattern: starting resumes it
        assert [q["answer"] for q in again["questions"][:3]] == [
            q["answer"] for q in client.get(f"/api/tests/{exam['id']}").json()["questions"][:3]
        ]
        assert all(q["answer"] is not None for q in again["questions"][:3])


def test_back_and_forth_keeps_answers_and_skip_keeps_the_saved_one(
    client: TestClient, app: FastAPI
) -> None:
    exam = _start(client)
    first = exam["questions"][0]
    html = client.get(f"/tests/{exam['id']}/questions/1").text
    csrf = CSRF_RE.search(html).group(1)  # type: ignore[union-attr]
    key = _key(app, first)
    client.post(f"/tests/{exam['id']}/questions/1", data={"csrf_token": csrf, "answer": key})
    back = client.post(
        f"/tests/{exam['id']}/questions/2", data={"csrf_token": csrf, "go": "previous"}
    )
    assert back.url.path == f"/tests/{exam['id']}/questions/1"
    shown_again = (
        f'value="{key}" required checked'
        if first["question"]["kind"] == "choice"
        else f">{escape(key)}</textarea>"  # as the template writes it: quotes escaped
    )
    assert shown_again in back.text
    skip = client.post(f"/tests/{exam['id']}/questions/1", data={"csrf_token": csrf, "go": "skip"})
    assert skip.url.path == f"/tests/{exam['id']}/questions/2"
    assert client.get(f"/api/tests/{exam['id']}").json()["questions"][0]["answer"] is not None


def test_a_question_pages_bar_and_its_words_both_count_the_answers(
    client: TestClient, app: FastAPI
) -> None:
    # Question 3 of a test with one answer saved: the bar is 10 % full and says "1 of 10
    # answered", as the words above it do — not 30 %, where the learner is.
    exam = _start(client)
    assert _save(client, exam["id"], 1, _key(app, exam["questions"][0])).status_code == 200
    html = client.get(f"/tests/{exam['id']}/questions/3").text
    assert "Test question 3 of 10" in html and "1 of 10 answered" in html
    bar = re.search(r'<div class="progress" role="progressbar"[^>]*>\s*<span[^>]*>', html)
    assert bar is not None
    assert 'aria-valuenow="1"' in bar[0] and 'aria-valuemax="10"' in bar[0]
    assert 'aria-valuetext="1 of 10 answered"' in bar[0] and "width: 10%" in bar[0]


def test_a_malformed_answer_is_refused_with_the_field(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A draw of seed 0, which holds a choice question: a random one may hold none (it did).
    monkeypatch.setattr(exams.secrets, "randbits", lambda bits: 0)
    exam = _start(client)
    choice = next(q for q in exam["questions"] if q["question"]["kind"] == "choice")
    refused = _save(client, exam["id"], choice["number"], 99)
    assert refused.status_code == 422 and refused.json()["field"] == "answer"
    assert _save(client, exam["id"], 11, "0").status_code == 404
    assert (
        client.put(
            f"/api/tests/{exam['id']}/questions/1/answer", content="{", headers=JSON
        ).status_code
        == 422
    )

    html = client.get(f"/tests/{exam['id']}/questions/{choice['number']}").text
    csrf = CSRF_RE.search(html).group(1)  # type: ignore[union-attr]
    page = client.post(
        f"/tests/{exam['id']}/questions/{choice['number']}",
        data={"csrf_token": csrf, "answer": "Z"},
    )
    assert page.status_code == 422 and 'class="form-error"' in page.text


def test_someone_else_cannot_see_or_touch_your_test(
    client: TestClient, other_client: TestClient, app: FastAPI
) -> None:
    exam = _start(client)
    _save(client, exam["id"], 1, _key(app, exam["questions"][0]))
    exam_id = exam["id"]
    other_client.get("/")  # a session of their own, with a CSRF token
    for url in (
        f"/api/tests/{exam_id}",
        f"/tests/{exam_id}",
        f"/tests/{exam_id}/questions/1",
        f"/tests/{exam_id}/finish",
    ):
        assert other_client.get(url).status_code == 404, url
    assert _save(other_client, exam_id, 1, "0").status_code == 404
    assert other_client.post(f"/api/tests/{exam_id}/finish", json={}).status_code == 404
    client.post(f"/api/tests/{exam_id}/finish", json={})
    assert other_client.get(f"/tests/{exam_id}").status_code == 404
    assert other_client.get(f"/api/tests/{exam_id}").status_code == 404


@pytest.mark.parametrize("bad", ["0", "-1", "abc", str(2**70)])
def test_bad_test_ids_are_4xx(client: TestClient, bad: str) -> None:
    assert client.get(f"/api/tests/{bad}").status_code in (404, 422)


def test_an_answer_saved_while_finishing_is_never_lost_or_misgraded(
    client: TestClient, app: FastAPI, database: Database, db: Session, monkeypatch: Any
) -> None:
    exam = _start(client)
    first = exam["questions"][0]
    _save(client, exam["id"], 1, wrong_answer(app, first["question"]["id"], 1))
    real_grade = exams.answering.grade_answer
    key = _key(app, first)

    def grade_while_the_learner_saves(*args: Any, **kwargs: Any) -> Any:
        graded = real_grade(*args, **kwargs)
        monkeypatch.setattr(exams.answering, "grade_answer", real_grade)  # only once
        assert _save(client, exam["id"], 1, key).status_code == 200  # the other tab saves
        return graded

    monkeypatch.setattr(exams.answering, "grade_answer", grade_while_the_learner_saves)
    refused = client.post(f"/api/tests/{exam['id']}/finish", json={})
    assert refused.status_code == 409 and "finish again" in refused.json()["detail"]
    assert _attempt_count(db) == 0
    result = client.post(f"/api/tests/{exam['id']}/finish", json={}).json()
    assert result["items"][0]["correct"] is True  # the answer the learner left is the one graded


def test_no_feedback_on_a_tests_questions_until_it_is_finished(
    client: TestClient, app: FastAPI
) -> None:
    exam = _start(client)
    question = exam["questions"][0]["question"]
    qid, variant = question["id"], question["variant"]
    answer = right_answer(app, qid, question["version"], variant)
    sneaky = client.post(f"/api/questions/{qid}/attempts", json={"answer": answer})
    assert sneaky.status_code == 409 and "unfinished test" in sneaky.json()["detail"]
    assert client.post(f"/api/questions/{qid}/hint", json={}).status_code in (404, 409)
    page = client.get(f"/patterns/{LESSON}/questions/{qid}").text
    assert "in the test you have not finished" in page and 'name="answer"' not in page
    client.post(f"/api/tests/{exam['id']}/finish", json={})
    after = client.post(f"/api/questions/{qid}/attempts", json={"answer": answer})
    assert after.status_code == 201


def test_a_hint_seen_in_practice_does_not_mark_a_test_answer(
    client: TestClient, app: FastAPI, db: Session
) -> None:
    # A test shows no hints, so a hint asked for in practice before it helped none of its
    # answers: they are neither flagged "hint seen" nor rated Hard for it.
    for question in client.get(f"/api/patterns/{LESSON}/questions").json():
        assert client.post(f"/api/questions/{question['id']}/hint", json={}).status_code == 200
    exam = _start(client)
    answered = [q for q in exam["questions"] if q["question"]["kind"] not in ("code", "fix")]
    for q in answered:  # right, with no time measured: Good unless help is counted
        assert _save(client, exam["id"], q["number"], _key(app, q)).status_code == 200
    assert client.post(f"/api/tests/{exam['id']}/finish", json={}).status_code == 200
    db.rollback()
    attempts = db.scalars(select(Attempt)).all()
    assert len(attempts) == len(answered) > 0
    assert [(a.hint_seen, a.rating) for a in attempts] == [(False, int(review.Rating.Good))] * len(
        attempts
    )


def test_storing_an_attempt_counts_the_help_it_is_told_was_seen(db: Session) -> None:
    # Leaving out a practice hint is the test's rule (exams), not the store's: given a
    # standing with a hint seen, an attempt is flagged with it and rated Hard.
    question = bank.get_question_or_raise(db, "lr-purpose")
    assert isinstance(question.question, ChoiceQuestion)
    graded = answering.Graded(grading.grade(question.question, question.question.correct_index))
    begin_write(db)
    learner = Learner(token="store-test")
    db.add(learner)
    db.flush()
    seen = replace(answering.standing(db, learner=learner, question_id=question.id), hint_seen=True)
    attempt = answering.store_attempt(
        db,
        learner=learner,
        question=question,
        graded=graded,
        seen=seen,
        time_taken_ms=None,
        time_measured=False,
    )
    db.commit()
    assert attempt.correct and attempt.hint_seen and attempt.rating == int(review.Rating.Hard)


def test_a_stale_form_after_logging_in_elsewhere_keeps_the_answer(client: TestClient) -> None:
    exam = _start(client)
    number = next(q["number"] for q in exam["questions"] if q["question"]["kind"] != "choice")
    page = client.post(  # a typed answer (a choice question's answer is a radio button)
        f"/tests/{exam['id']}/questions/{number}",
        data={"csrf_token": "stale", "answer": "my answer"},
    )
    assert page.status_code == 403
    assert "my answer" in page.text and "logged in or out in another tab" in page.text


def test_a_lone_surrogate_in_a_test_answer_is_a_422(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exams.secrets, "randbits", lambda bits: 0)  # a draw with an output one
    exam = _start(client)
    output = next(q for q in exam["questions"] if q["question"]["kind"] == "output")
    response = client.put(
        f"/api/tests/{exam['id']}/questions/{output['number']}/answer",
        content='{"answer": "0.1\\ud800"}',
        headers=JSON,
    )
    assert response.status_code == 422
    assert client.get(f"/api/tests/{exam['id']}").status_code == 200


def test_the_starting_code_as_given_is_no_answer_in_a_test(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A code question's page sends its editor's content with every move; untouched, that is
    the starting code, and the question stays unanswered."""
    monkeypatch.setattr(exams.secrets, "randbits", lambda bits: 0)
    exam = _start(client)
    number, question = next(
        (n, q["question"])
        for n, q in enumerate(exam["questions"], start=1)
        if q["question"]["kind"] in ("code", "fix")
    )
    saved = _save(client, exam["id"], number, question["starter"])
    assert saved.status_code == 200, saved.text
    assert saved.json()["answer"] is None
    shown = client.get(f"/api/tests/{exam['id']}").json()["questions"][number - 1]
    assert shown["answer"] is None
