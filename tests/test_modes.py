"""Practice, spaced review, progress and history — scheduled from what really happened."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.authoring.importing import import_bank
from app.bank.files import read_bank
from app.bank.schema import ChoiceQuestion, Difficulty, Mode
from app.learning import modes, review
from app.learning.progress import OpenTest
from app.models import Attempt, Reveal, ReviewCard, utcnow
from tests.conftest import CSRF_RE, QUESTIONS, ROOT, Learner, right_answer, wrong_answer
from tests.factories import PATTERN, choice_question, write_bank

LESSON = "lr-schedulers"
BANK = {s.question.id: s.question for p in read_bank(QUESTIONS) for s in p.questions}
EASY_CHOICE = "lr-purpose"  # right answer: 3
WRONG = {"lr-purpose": 0, "lr-steplr-syntax": 1}
VARIED_OUTPUT = "lr-output-steplr-calls"


def _card(db: Session, question_id: str) -> ReviewCard:
    db.rollback()
    card = db.scalars(select(ReviewCard).where(ReviewCard.question_id == question_id)).one()
    return card


def _last_attempt(db: Session) -> Attempt:
    db.rollback()
    return db.scalars(select(Attempt).order_by(Attempt.id.desc())).first()  # type: ignore[return-value]


def _let_days_pass(db: Session, days: int) -> None:
    """Move everything the learner did `days` into the past: cards fall due, help seen
    becomes old."""
    day = timedelta(days=days)
    for card in db.scalars(select(ReviewCard)):
        card.due -= day
        card.card = {
            **card.card,
            "due": card.due.isoformat(),
            "last_review": (datetime.fromisoformat(card.card["last_review"]) - day).isoformat(),
        }
    for row in [*db.scalars(select(Attempt)), *db.scalars(select(Reveal))]:
        row.created_at -= day
    db.commit()


# --- the rating -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("correct", "assisted", "seconds", "rating"),
    [
        (False, False, 5, review.Rating.Again),
        (False, True, 5, review.Rating.Again),
        (True, True, 5, review.Rating.Hard),
        (True, False, None, review.Rating.Good),
        (True, False, 5, review.Rating.Easy),  # under half the 20 s an easy choice takes
        (True, False, 15, review.Rating.Good),
        (True, False, 61, review.Rating.Hard),  # over three times as long
    ],
)
def test_the_rating_comes_from_what_happened(
    correct: bool, assisted: bool, seconds: int | None, rating: review.Rating
) -> None:
    question = BANK[EASY_CHOICE]
    assert question.difficulty is Difficulty.EASY and isinstance(question, ChoiceQuestion)
    got = review.rate(
        question=question,
        correct=correct,
        assisted=assisted,
        time_taken_ms=None if seconds is None else seconds * 1000,
    )
    assert got is rating


@pytest.mark.parametrize(("correct", "rating"), [(False, "Again"), (True, "Good")])
def test_in_a_due_learning_step_right_is_good_whatever_the_help_or_time(
    correct: bool, rating: str
) -> None:
    got = review.rate(
        question=BANK[EASY_CHOICE], correct=correct, assisted=True, time_taken_ms=1, due_step=True
    )
    assert got is review.Rating[rating]


def _minutes(delta: timedelta) -> int:
    return round(delta / timedelta(minutes=1))


def test_the_docs_give_the_steps_the_scheduler_keeps() -> None:
    # The docstring and the README name numbers; FSRS decides them. Hard on a lone step is
    # 1.5 × the step — on a first answer, and again on each right answer before it is due.
    at = utcnow()
    step = review.next_card(None, review.Rating.Again, at).due - at
    hard = review.next_card(None, review.Rating.Hard, at)
    later = at + timedelta(minutes=5)  # before the step is due
    hard_again = review.next_card(hard.to_dict(), review.Rating.Hard, later).due - later
    assert step == review.LEARNING_STEP and hard.due - at == hard_again == 1.5 * step
    learning = (ROOT / "README.md").read_text().split("\n## Learning\n")[1].split("\n## ")[0]
    for docs in (review.__doc__ or "", " ".join(learning.split())):
        assert f"{_minutes(step)} minutes" in docs
        assert f"{_minutes(hard.due - at)} minutes" in docs
        assert "LEARNING_STEP later, and a right answer then passes" not in docs
    assert f"within {_minutes(review.ASSIST_WINDOW) // 60} h" in learning
    assert f"slower than {review.SLOW:g}× the expected time" in " ".join(learning.split())


class Clock:
    """The time the learning code sees, moved by hand (help asked for and signed pages keep
    the real time: the clock starts at it)."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    for module in ("answering", "review", "progress"):
        monkeypatch.setattr(f"app.learning.{module}.utcnow", clock)
    return clock


SAME_SESSION = timedelta(minutes=15)  # "come back in the same session": well within an hour


def test_wrong_answers_come_back_in_the_same_session_a_right_one_days_later(
    client: TestClient, learner: Learner, db: Session, clock: Clock
) -> None:
    wrong = {
        q.id: next(i for i, c in enumerate(q.choices) if not c.correct)
        for q in BANK.values()
        if isinstance(q, ChoiceQuestion) and q.id != EASY_CHOICE
    }
    missed = list(wrong)[:8]
    assert len(missed) == 8
    for qid in missed:
        learner.answer(LESSON, qid, wrong[qid])
    assert _last_attempt(db).rating == review.Rating.Again
    assert all(_card(db, qid).due - clock.now <= SAME_SESSION for qid in missed)
    assert "Nothing due now" in client.get("/").text

    clock.advance(SAME_SESSION)
    home = client.get("/").text
    assert "Start reviewing" in home and "8 due for review" in home
    assert {item["question_id"] for item in client.get("/api/review").json()} == set(missed)
    assert client.get("/review").text.count('class="button small">Review</button>') == 8

    learner.answer(LESSON, EASY_CHOICE, 3)  # quickly, no help
    assert _last_attempt(db).rating == review.Rating.Easy
    assert _card(db, EASY_CHOICE).due - clock.now > timedelta(days=7)


def test_a_right_answer_once_the_step_falls_due_passes_it_despite_the_help_seen(
    learner: Learner, db: Session, clock: Clock
) -> None:
    learner.ask_hint(LESSON, EASY_CHOICE)  # shown on every later visit
    learner.answer(LESSON, EASY_CHOICE, WRONG[EASY_CHOICE])  # and now the solution too
    clock.advance(timedelta(minutes=1))
    learner.answer(LESSON, EASY_CHOICE, 3)  # right with the solution just seen: not yet
    assert _last_attempt(db).rating == review.Rating.Hard
    assert _card(db, EASY_CHOICE).due - clock.now <= SAME_SESSION  # the step again

    clock.advance(SAME_SESSION)
    learner.answer(LESSON, EASY_CHOICE, 3)  # asked again after the step: that is the check
    attempt = _last_attempt(db)
    assert attempt.hint_seen and attempt.rating == review.Rating.Good
    assert _card(db, EASY_CHOICE).due - clock.now >= timedelta(days=1)  # no loop of steps


def test_a_hint_makes_a_right_answer_hard_and_it_comes_back_sooner(
    learner: Learner, db: Session
) -> None:
    learner.ask_hint(LESSON, EASY_CHOICE)
    learner.answer(LESSON, EASY_CHOICE, 3)
    attempt = _last_attempt(db)
    assert attempt.correct and attempt.hint_seen and attempt.rating == review.Rating.Hard
    assert _card(db, EASY_CHOICE).due - utcnow() <= timedelta(days=1)


def test_answering_again_after_seeing_the_solution_is_hard(learner: Learner, db: Session) -> None:
    url = learner.answer(LESSON, EASY_CHOICE, WRONG[EASY_CHOICE]).headers["location"]  # type: ignore[attr-defined]
    learner.reveal(url)
    learner.answer(LESSON, EASY_CHOICE, 3)  # right — but the solution was just on screen
    assert _last_attempt(db).rating == review.Rating.Hard
    assert _card(db, EASY_CHOICE).reviews == 2


def test_the_due_queue_asks_a_fresh_variant(
    client: TestClient, learner: Learner, app: FastAPI, db: Session
) -> None:
    learner.answer(LESSON, EASY_CHOICE, 3)
    html = learner.open_question(LESSON, VARIED_OUTPUT)
    csrf = CSRF_RE.search(html).group(1)  # type: ignore[union-attr]
    client.post(
        f"/patterns/{LESSON}/questions/{VARIED_OUTPUT}/answer",
        data={"csrf_token": csrf, "answer": "1.0"},
    )
    assert "Nothing due now" in client.get("/").text

    _let_days_pass(db, 9)  # the right answer was easy: due in 8 days; the wrong one tomorrow
    home = client.get("/").text
    assert "Start reviewing" in home and "2 due for review" in home
    queue = client.get("/api/review").json()
    assert {item["question_id"] for item in queue} == {EASY_CHOICE, VARIED_OUTPUT}

    before = client.get(f"/api/questions/{VARIED_OUTPUT}").json()["variant"]  # answered
    page = client.post(f"/review/{VARIED_OUTPUT}", data={"csrf_token": csrf})
    assert page.url.path == f"/patterns/{LESSON}/questions/{VARIED_OUTPUT}"
    after = client.get(f"/api/questions/{VARIED_OUTPUT}").json()["variant"]
    assert after != before

    # answering it right takes it off the queue, for longer than a day
    question = client.get(f"/api/questions/{VARIED_OUTPUT}").json()
    key = right_answer(app, VARIED_OUTPUT, question["version"], question["variant"])
    answered = client.post(
        f"/api/questions/{VARIED_OUTPUT}/attempts", json={"answer": key, "time_taken_ms": 20_000}
    )
    assert answered.json()["correct"] is True
    assert [item["question_id"] for item in client.get("/api/review").json()] == [EASY_CHOICE]
    assert _card(db, VARIED_OUTPUT).due - utcnow() > timedelta(days=1)


def test_the_review_api_moves_to_a_fresh_variant(client: TestClient) -> None:
    first = client.get(f"/api/questions/{VARIED_OUTPUT}").json()["variant"]
    reviewed = client.post(f"/api/review/{VARIED_OUTPUT}", json={})
    assert reviewed.status_code == 200 and reviewed.json()["variant"] != first


# --- practice ---------------------------------------------------------------------------------


def test_practice_brings_back_what_you_get_wrong_most(client: TestClient, learner: Learner) -> None:
    learner.answer(LESSON, "lr-steplr-syntax", WRONG["lr-steplr-syntax"])
    learner.answer(LESSON, EASY_CHOICE, WRONG[EASY_CHOICE])
    learner.answer(LESSON, EASY_CHOICE, WRONG[EASY_CHOICE])
    nxt = client.get(f"/patterns/{LESSON}/practice")
    assert nxt.url.path.endswith(f"/questions/{EASY_CHOICE}")  # missed twice
    after = client.get(f"/patterns/{LESSON}/practice?after={EASY_CHOICE}")
    assert after.url.path.endswith("/questions/lr-steplr-syntax")
    api = client.get(f"/api/patterns/{LESSON}/practice/next?after={EASY_CHOICE}").json()
    assert api["id"] == "lr-steplr-syntax" and "correct" not in api


def test_the_attempt_page_offers_practise_next(client: TestClient, learner: Learner) -> None:
    location = learner.answer(LESSON, EASY_CHOICE, 3).headers["location"]  # type: ignore[attr-defined]
    page = client.get(location).text
    assert f"/patterns/{LESSON}/practice?after={EASY_CHOICE}" in page


# --- progress and history ---------------------------------------------------------------------


def test_mastery_grows_with_right_answers_and_weighs_hard_ones_more(
    client: TestClient, app: FastAPI
) -> None:
    def mastery() -> float:
        (progress,) = client.get("/api/progress").json()
        return float(progress["mastery"])

    assert mastery() == 0
    easy = next(q for q in BANK.values() if q.difficulty is Difficulty.EASY and q.kind == "choice")
    hard = next(q for q in BANK.values() if q.difficulty is Difficulty.HARD and q.kind == "choice")
    client.post(
        f"/api/questions/{easy.id}/attempts", json={"answer": right_answer(app, easy.id, 1, 0)}
    )
    after_easy = mastery()
    client.post(
        f"/api/questions/{hard.id}/attempts", json={"answer": right_answer(app, hard.id, 1, 0)}
    )
    after_hard = mastery()
    assert 0 < after_easy < after_hard
    assert after_hard - after_easy == pytest.approx(3 * after_easy, rel=0.01)
    (progress,) = client.get("/api/progress").json()
    assert (progress["seen"], progress["solved"], progress["streak_days"]) == (2, 2, 1)


def test_a_newer_wrong_answer_lowers_mastery(client: TestClient, learner: Learner) -> None:
    learner.answer(LESSON, EASY_CHOICE, 3)
    high = client.get("/api/progress").json()[0]["mastery"]
    learner.answer(LESSON, EASY_CHOICE, WRONG[EASY_CHOICE])
    assert client.get("/api/progress").json()[0]["mastery"] < high


def test_history_lists_every_attempt_with_its_feedback(
    client: TestClient, learner: Learner
) -> None:
    learner.answer(LESSON, EASY_CHOICE, WRONG[EASY_CHOICE])
    learner.answer(LESSON, EASY_CHOICE, 3)
    page = client.get("/history").text
    assert "2 answers, newest first." in page
    assert "You chose A." in page and "You chose D." in page  # no key with a wrong answer
    api = client.get("/api/attempts").json()
    assert [a["correct"] for a in api["attempts"]] == [True, False]
    assert api["attempts"][1]["rating"] == review.Rating.Again


def test_a_learner_sees_only_their_own_history(
    learner: Learner, other_client: TestClient, client: TestClient
) -> None:
    location = learner.answer(LESSON, EASY_CHOICE, 3).headers["location"]  # type: ignore[attr-defined]
    attempt_id = int(location.rsplit("/", 1)[1])
    assert other_client.get("/api/attempts").json()["total"] == 0
    assert "Nothing yet" in other_client.get("/history").text
    assert other_client.get(f"/api/attempts/{attempt_id}").status_code == 404
    assert other_client.get(location).status_code == 404
    assert other_client.get("/api/review").json() == []
    assert other_client.get("/api/progress").json()[0]["seen"] == 0
    assert client.get("/api/progress").json()[0]["seen"] == 1


def test_history_pages_are_bounded(client: TestClient) -> None:
    assert client.get("/history?page=0").status_code == 200  # the first page (test_pages)
    assert client.get("/history?page=999").status_code == 200
    assert client.get("/api/attempts?page=abc").status_code == 422


# --- the ways to learn (app.learning.modes) ------------------------------------------------------

ALL_MODES = frozenset(mode.key for mode in modes.MODES)
NO_PIPELINE = ALL_MODES - {"trace", "playground"}


def _standing(**given: Any) -> modes.Standing:
    """A learner's standing: everything solved unless `tallies` says otherwise."""
    tallies = {
        "quiz": modes.Tally(3, 3),
        "practice": modes.Tally(20, 20),
        "predict": modes.Tally(10, 10),
        "step-through": modes.Tally(5, 5),
        "write": modes.Tally(5, 5),
        "fix": modes.Tally(0, 0),
    }
    tallies.update(given.pop("tallies", {}))
    return modes.Standing(**{"offered": ALL_MODES, "answered": 30, **given}, tallies=tallies)


@pytest.mark.parametrize(
    ("standing", "key", "words"),
    [
        (_standing(answered=0), "trace", "start with the trace"),
        (
            _standing(offered=NO_PIPELINE, answered=0, tallies={"quiz": modes.Tally(0, 3)}),
            "quiz",
            "quiz",
        ),
        (_standing(answered=1, tallies={"quiz": modes.Tally(1, 3)}), "quiz", "2 quiz questions"),
        (
            _standing(answered=0, open_test=OpenTest(exam_id=1, answered=4, total=10)),
            "test",
            "answered 4 of its 10 questions",
        ),
        (_standing(due=3), "review", "3 questions are due"),
        (_standing(due=1), "review", "1 question is due"),
        (_standing(tallies={"practice": modes.Tally(2, 20)}), "practice", "solve 3 more"),
        (
            _standing(tallies={"practice": modes.Tally(5, 20)}),
            "test",
            "solved 5 practice questions",
        ),
        (
            _standing(last_test=modes.LastTest(score=0.4, missed_to_practise=6)),
            "practice",
            "missed 6 questions",
        ),
        (
            _standing(last_test=modes.LastTest(score=0.4, missed_to_practise=0)),
            "test",
            "take the test again",
        ),
        (
            _standing(
                last_test=modes.LastTest(score=0.9, missed_to_practise=0),
                tallies={"predict": modes.Tally(4, 10)},
            ),
            "predict",
            "4 of the 10 output questions: 6 to go",
        ),
        (
            _standing(
                last_test=modes.LastTest(score=0.9, missed_to_practise=0),
                tallies={"write": modes.Tally(1, 5)},
            ),
            "write",
            "1 of the 5 code questions",
        ),
        (
            _standing(last_test=modes.LastTest(score=1.0, missed_to_practise=0)),
            "playground",
            "every question",
        ),
    ],
)
def test_the_recommendation_follows_the_learners_progress(
    standing: modes.Standing, key: str, words: str
) -> None:
    recommended = modes.recommend(standing)
    assert recommended.key == key
    assert words in recommended.reason
    assert recommended.key in standing.offered


def test_every_mode_has_a_page_and_a_description() -> None:
    keys = [mode.key for mode in modes.MODES]
    assert len(set(keys)) == len(keys) == 10
    assert all(mode.title and mode.description.endswith(".") for mode in modes.MODES)


def test_the_api_lists_the_modes_and_each_url_is_its_page(client: TestClient) -> None:
    listed = client.get(f"/api/patterns/{LESSON}").json()["modes"]
    assert [m["key"] for m in listed] == [mode.key for mode in modes.MODES]
    for mode in listed:
        assert set(mode) == {"key", "title", "description", "url"}
        assert mode["title"] == modes.BY_KEY[mode["key"]].title
        response = client.get(mode["url"], follow_redirects=False)
        assert response.status_code in (200, 303), mode
    urls = {m["key"]: m["url"] for m in listed}
    assert urls["review"] == "http://testserver/review"
    assert urls["predict"] == f"http://testserver/patterns/{LESSON}/predict"


def _mode_cards(html: str) -> list[tuple[str, bool]]:
    """(key, recommended) of each mode card on a lesson page, in order."""
    cards = re.findall(r'<li class="card mode( mode-recommended)?" data-mode="([a-z-]+)"', html)
    return [(key, bool(recommended)) for recommended, key in cards]


def test_the_lesson_page_draws_every_mode_and_recommends_one_first(
    client: TestClient, learner: Learner, app: FastAPI
) -> None:
    page = client.get(f"/patterns/{LESSON}").text
    cards = _mode_cards(page)
    assert sorted(key for key, _ in cards) == sorted(ALL_MODES)
    assert cards[0] == ("trace", True) and sum(r for _, r in cards) == 1
    assert page.count("Recommended next") == 1 and "start with the trace" in page
    assert "0 of 3 quiz questions solved" in page
    assert page.count('<h2 id="modes-title">Ways to learn</h2>') == 1

    quiz = [q for q in BANK.values() if Mode.QUIZ in q.modes]
    first = quiz[0]
    client.post(
        f"/api/questions/{first.id}/attempts",
        json={"answer": right_answer(app, first.id, 1, 0)},
    )
    page = client.get(f"/patterns/{LESSON}").text
    assert _mode_cards(page)[0] == ("quiz", True)
    assert f"1 of {len(quiz)} quiz questions solved" in page


def test_the_quiz_page_asks_its_questions_where_the_learner_left_each(
    client: TestClient, app: FastAPI
) -> None:
    quiz = [q.id for q in BANK.values() if Mode.QUIZ in q.modes]
    page = client.get(f"/patterns/{LESSON}/quiz")
    assert page.status_code == 200 and page.template.name == "modes/quiz.html"  # type: ignore[attr-defined]
    for qid in quiz:
        assert f'id="q-{qid}"' in page.text
    assert page.text.count('<input type="hidden" name="back" value="quiz">') >= len(quiz)
    client.post(
        f"/api/questions/{quiz[0]}/attempts", json={"answer": right_answer(app, quiz[0], 1, 0)}
    )
    client.post(
        f"/api/questions/{quiz[1]}/attempts", json={"answer": wrong_answer(app, quiz[1], 1)}
    )
    page = client.get(f"/patterns/{LESSON}/quiz")
    assert f"1 of {len(quiz)} quiz questions solved" in page.text
    cards = {qid: page.text.split(f'id="q-{qid}"')[1].split("</article>")[0] for qid in quiz}
    assert "Correct" in cards[quiz[0]] and "Worked solution" in cards[quiz[0]]
    assert "Not yet — try again" in cards[quiz[1]] and "Worked solution" not in cards[quiz[1]]
    assert "Not yet" not in cards[quiz[2]] and ">Check</button>" in cards[quiz[2]]

    csrf = CSRF_RE.search(page.text).group(1)  # type: ignore[union-attr]
    hint = client.post(
        f"/patterns/{LESSON}/questions/{quiz[2]}/hint",
        data={"csrf_token": csrf, "back": "quiz"},
        follow_redirects=False,
    )
    assert hint.headers["location"].endswith(f"/patterns/{LESSON}/quiz#q-{quiz[2]}")


def _redirected_to(response: Any) -> str:
    assert response.status_code == 303, response.text
    location: str = response.headers["location"]
    return location.rsplit("/questions/", 1)[1]


def test_predict_the_output_goes_through_the_output_questions_easy_first(
    client: TestClient, app: FastAPI
) -> None:
    outputs = [q for q in BANK.values() if q.kind == "output" and Mode.PRACTICE in q.modes]
    order = list(Difficulty)
    seen = []
    after = None
    for _ in outputs:
        params = {"after": after} if after else {}
        qid = _redirected_to(
            client.get(f"/patterns/{LESSON}/predict", params=params, follow_redirects=False)
        )
        question = client.get(f"/api/questions/{qid}").json()
        key = right_answer(app, qid, question["version"], question["variant"])
        client.post(f"/api/questions/{qid}/attempts", json={"answer": key})
        seen.append(qid)
        after = qid
    assert sorted(seen) == sorted(q.id for q in outputs)
    difficulties = [BANK[qid].difficulty for qid in seen]
    assert difficulties == sorted(difficulties, key=order.index)
    done = client.get(f"/patterns/{LESSON}/predict", params={"after": after})
    assert done.status_code == 200 and "You have solved every one of them" in done.text
    assert f"{len(outputs)} of {len(outputs)} output questions solved" in done.text


def test_a_sequence_sends_back_to_the_question_missed_when_it_is_the_last_one_left(
    client: TestClient, app: FastAPI
) -> None:
    first = _redirected_to(client.get(f"/patterns/{LESSON}/predict", follow_redirects=False))
    for question in BANK.values():
        if question.kind == "output" and Mode.PRACTICE in question.modes:
            shown = client.get(f"/api/questions/{question.id}").json()
            key = right_answer(app, question.id, shown["version"], shown["variant"])
            answer = "not what it prints" if question.id == first else key
            client.post(f"/api/questions/{question.id}/attempts", json={"answer": answer})
    again = client.get(
        f"/patterns/{LESSON}/predict", params={"after": first}, follow_redirects=False
    )
    assert _redirected_to(again) == first


def test_write_the_code_starts_on_an_easy_code_question(client: TestClient) -> None:
    first = _redirected_to(client.get(f"/patterns/{LESSON}/write", follow_redirects=False))
    assert BANK[first].kind == "code" and BANK[first].difficulty == Difficulty.EASY


def test_after_an_answer_the_page_goes_on_in_the_questions_mode(
    client: TestClient, learner: Learner
) -> None:
    output = VARIED_OUTPUT
    html = learner.open_question(LESSON, output)
    data = {"csrf_token": CSRF_RE.search(html).group(1), "answer": "0"}  # type: ignore[union-attr]
    data["shown_at"] = re.search(r'name="shown_at" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    answered = client.post(f"/patterns/{LESSON}/questions/{output}/answer", data=data)
    assert f"/patterns/{LESSON}/predict?after={output}" in answered.text
    assert "Next: predict the output →" in answered.text
    quiz = next(q.id for q in BANK.values() if Mode.QUIZ in q.modes)
    answered_quiz = learner.answer(LESSON, quiz, 0)
    page = client.get(answered_quiz.headers["location"]).text  # type: ignore[attr-defined]
    assert f'href="/patterns/{LESSON}/quiz"' in page and "Back to the quiz" in page


def test_a_mode_without_questions_yet_says_so(
    client: TestClient, app: FastAPI, tmp_path: Path
) -> None:
    write_bank(tmp_path, [choice_question("only-choice")], slug="choices")
    with app.state.db.session() as session:
        import_bank(session, tmp_path / "choices")
    for key, noun in (("fix", "fix-the-bug questions"), ("predict", "output questions")):
        page = client.get(f"/patterns/choices/{key}")
        assert page.status_code == 200
        assert f"This pattern has no {noun} yet" in page.text
    lesson = client.get("/patterns/choices").text
    assert "No fix-the-bug questions yet" in lesson
    assert {key for key, _ in _mode_cards(lesson)} == NO_PIPELINE


def test_a_mode_the_pattern_does_not_offer_is_not_found(
    client: TestClient, app: FastAPI, tmp_path: Path
) -> None:
    write_bank(
        tmp_path,
        [choice_question("practice-only", modes=["practice"])],
        slug="practice-only",
        pattern={**PATTERN, "modes": ["practice"]},
    )
    with app.state.db.session() as session:
        import_bank(session, tmp_path / "practice-only")
    assert client.get("/patterns/practice-only/quiz").status_code == 404
    listed = client.get("/api/patterns/practice-only").json()["modes"]
    assert [m["key"] for m in listed] == [
        "practice",
        "predict",
        "step-through",
        "write",
        "fix",
        "review",
    ]
    assert "Recommended next" in client.get("/patterns/practice-only").text
