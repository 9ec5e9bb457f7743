"""Practice that adapts (app.learning.practice), each rule shown with real attempts in the
database: a new learner starts easy; right answers move the level up, wrong ones down; a
misconception shown comes back; after a test, what it missed comes first, in its order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.authoring.importing import import_bank
from app.bank.files import read_bank
from app.bank.schema import Difficulty, Mode
from app.learning import practice, review
from app.learning.review import Rating
from tests.conftest import QUESTIONS, right_answer
from tests.factories import PATTERN, choice_question, write_bank

LESSON = "lr-schedulers"
BANK = {s.question.id: s.question for p in read_bank(QUESTIONS) for s in p.questions}
DRILL = "drill"
SHARED_MISTAKE = "Counts epochs from 1."


def _drill_question(qid: str, difficulty: str, tags: list[str], mistake: str) -> dict[str, Any]:
    """A choice question: A is right, B wrong with `mistake`."""
    return choice_question(
        qid,
        difficulty=difficulty,
        tags=tags,
        prompt=f"Question {qid}?",
        choices=[
            {"text": "Right", "correct": True},
            {"text": "Wrong", "mistake": mistake},
        ],
    )


# Positions follow the file names: a fresh learner meets them in this order within a level.
DRILL_QUESTIONS = [
    _drill_question("e1", "easy", ["alpha"], "Alpha is not that."),
    _drill_question("e2", "easy", ["beta"], SHARED_MISTAKE),
    _drill_question("e3", "easy", ["gamma"], "Gamma is not that."),
    _drill_question("e4", "easy", ["alpha"], "Alpha is not this either."),
    _drill_question("e5", "easy", ["delta"], SHARED_MISTAKE),
    _drill_question("m1", "medium", ["alpha"], "Medium alpha."),
    _drill_question("m2", "medium", ["beta"], "Medium beta."),
    _drill_question("m3", "medium", ["zeta"], "Medium zeta."),
    _drill_question("h1", "hard", ["alpha"], "Hard alpha."),
    _drill_question("h2", "hard", ["eta"], "Hard eta."),
]
RIGHT, WRONG = 0, 1
DIFFICULTY = {q["id"]: Difficulty(q["difficulty"]) for q in DRILL_QUESTIONS}


@pytest.fixture
def drill(app: FastAPI, tmp_path: Path) -> str:
    """A pattern of ten choice questions beside the lesson, imported into the app's
    database: easy e1–e5, medium m1–m3, hard h1–h2, tagged to share misconceptions."""
    write_bank(tmp_path, DRILL_QUESTIONS, slug=DRILL, pattern=PATTERN)
    with app.state.db.session() as session:
        import_bank(session, tmp_path / DRILL)
    return DRILL


def _next(client: TestClient, slug: str, after: str | None = None) -> str:
    """The id of the practice question the API gives next."""
    params = {"after": after} if after else {}
    response = client.get(f"/api/patterns/{slug}/practice/next", params=params)
    assert response.status_code == 200, response.text
    page = client.get(f"/patterns/{slug}/practice", params=params, follow_redirects=False)
    question_id: str = response.json()["id"]
    assert page.headers["location"].endswith(f"/questions/{question_id}")  # the same rule
    return question_id


def _answer(client: TestClient, question_id: str, choice: int) -> None:
    response = client.post(f"/api/questions/{question_id}/attempts", json={"answer": choice})
    assert response.status_code == 201, response.text
    assert response.json()["correct"] == (choice == RIGHT)


# --- the level --------------------------------------------------------------------------------


def test_the_level_climbs_two_right_answers_a_difficulty_and_falls_one_per_wrong() -> None:
    assert practice.level_of([]) == 0.0
    assert practice.level_of([(True, None)]) == 0.5
    assert practice.level_of([(True, None)] * 2) == 1.0
    assert practice.level_of([(True, None)] * 9) == 2.0  # no harder than hard
    assert practice.level_of([(True, None)] * 3 + [(False, 1)]) == 0.5
    assert practice.level_of([(False, 1)] * 3) == 0.0  # no easier than easy
    # a right answer the learner was helped to (rated Hard) climbs half as far
    assert practice.level_of([(True, Rating.Hard)] * 2) == 0.5


# --- rules, with real attempts ------------------------------------------------------------------


def test_a_new_learner_starts_on_an_easy_choice_question_not_on_writing_code(
    client: TestClient,
) -> None:
    first = BANK[_next(client, LESSON)]
    assert (first.difficulty, first.kind) == (Difficulty.EASY, "choice")


def test_practice_asks_light_questions_before_heavy_ones_of_a_difficulty(
    client: TestClient, app: FastAPI
) -> None:
    """Answering everything right: every question comes once, and no code question comes
    while a choice or output question of its difficulty is left."""
    pool = [q for q in BANK.values() if Mode.PRACTICE in q.modes]
    seen: list[str] = []
    after = None
    for _ in pool:
        question = client.get(
            f"/api/patterns/{LESSON}/practice/next", params={"after": after} if after else {}
        ).json()
        key = right_answer(app, question["id"], question["version"], question["variant"])
        response = client.post(f"/api/questions/{question['id']}/attempts", json={"answer": key})
        assert response.json()["correct"], question["id"]
        seen.append(question["id"])
        after = question["id"]
    assert sorted(seen) == sorted(q.id for q in pool)
    for i, qid in enumerate(seen):
        if BANK[qid].kind == "code":
            lighter_later = [
                later
                for later in seen[i + 1 :]
                if BANK[later].kind in ("choice", "output")
                and BANK[later].difficulty == BANK[qid].difficulty
            ]
            assert not lighter_later, (qid, lighter_later)


def test_right_answers_move_up_a_difficulty_and_a_wrong_one_down(
    client: TestClient, drill: str
) -> None:
    assert _next(client, drill) == "e1"
    _answer(client, "e1", RIGHT)
    assert DIFFICULTY[_next(client, drill, after="e1")] == Difficulty.EASY  # one is not enough
    _answer(client, "e2", RIGHT)
    up = _next(client, drill, after="e2")
    assert DIFFICULTY[up] == Difficulty.MEDIUM
    _answer(client, up, RIGHT)
    _answer(client, "m3", RIGHT)
    top = _next(client, drill, after="m3")
    assert DIFFICULTY[top] == Difficulty.HARD
    _answer(client, top, WRONG)
    down = _next(client, drill, after=top)
    assert DIFFICULTY[down] == Difficulty.MEDIUM
    _answer(client, down, WRONG)
    assert DIFFICULTY[_next(client, drill, after=down)] == Difficulty.EASY


def test_a_misconception_shown_comes_back_through_its_tags(client: TestClient, drill: str) -> None:
    # A fresh learner would go e1, e2, e3 …; a wrong e1 (alpha) brings e4 (alpha) forward.
    _answer(client, "e1", WRONG)
    assert _next(client, drill, after="e1") == "e4"
    _answer(client, "e4", RIGHT)
    assert _next(client, drill, after="e4") == "e1"  # the question missed comes back too


def test_a_question_whose_solution_was_just_read_rests(
    client: TestClient, drill: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # e1 missed, and its solution asked for: asked again at once it would be copied.
    wrong = client.post("/api/questions/e1/attempts", json={"answer": WRONG}).json()
    assert client.post(f"/api/attempts/{wrong['attempt_id']}/solution", json={}).status_code == 200
    _answer(client, "e4", RIGHT)
    assert _next(client, drill, after="e4") != "e1"  # without the solution it would be e1
    later = datetime.now(UTC) + review.LEARNING_STEP + timedelta(minutes=1)
    monkeypatch.setattr(practice, "utcnow", lambda: later)  # the step has passed
    assert _next(client, drill, after="e4") == "e1"


def test_a_misconception_shown_comes_back_through_its_choice_mistake(
    client: TestClient, drill: str
) -> None:
    # e2 (beta) and e5 (delta) share no tag, only the misconception their wrong choice names.
    _answer(client, "e1", RIGHT)
    _answer(client, "e2", WRONG)
    assert _next(client, drill, after="e2") == "e5"


def test_a_code_mistake_is_a_misconception_of_every_question_proven_to_diagnose_it() -> None:
    diagnosed = sorted(
        (qid, test.mistake)
        for qid, question in BANK.items()
        for test in getattr(question, "self_tests", [])
        if test.mistake
    )
    qid, mistake = diagnosed[0]
    shown = practice.shown_misconceptions(BANK[qid], {"kind": "code", "mistake": mistake})
    assert shown == set(BANK[qid].tags) | {mistake}
    assert all(mistake in practice.concepts(BANK[q]) for q, m in diagnosed if m == mistake)


def test_after_a_test_practice_starts_with_what_it_missed_in_order(
    client: TestClient, drill: str
) -> None:
    exam = client.post(f"/api/patterns/{drill}/tests", json={}).json()
    order = [q["question"]["id"] for q in exam["questions"]]
    # Right on the first half, wrong on the second, the last one not answered at all.
    right = set(order[: len(order) // 2])
    for number, qid in enumerate(order[:-1], start=1):
        client.put(
            f"/api/tests/{exam['id']}/questions/{number}/answer",
            json={"answer": RIGHT if qid in right else WRONG},
        )
    finished = client.post(f"/api/tests/{exam['id']}/finish", json={})
    assert finished.status_code == 200, finished.text
    missed = [qid for qid in order if qid not in right]
    assert len(missed) >= 3

    # The result page's "Practise what you missed" goes to the first of them.
    result = client.get(f"/tests/{exam['id']}").text
    assert "Practise what you missed" in result
    assert client.get(f"/patterns/{drill}/practice").url.path.endswith(f"/{missed[0]}")

    after = None
    for qid in missed:  # right or wrong, each comes once, in the test's order
        assert _next(client, drill, after=after) == qid
        _answer(client, qid, WRONG if qid == missed[0] else RIGHT)
        after = qid
    # then practice goes on as ever — but the one answered wrong again rests a while: its
    # solution was read with the test's result minutes ago
    assert _next(client, drill, after=after) not in (missed[0], after)
