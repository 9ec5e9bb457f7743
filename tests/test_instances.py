"""Two instances of the app on one database, learners split between them: what must agree
across instances lives in the database (make test-postgres runs this on PostgreSQL).

One instance is an app served in this process, the other `python -m app serve` in a process
of its own — its own engine, pool, write lock, admission gate, caches and sandbox runner —
as on two machines; they share only the database and the secret key. Every learner sends
every other request to the other instance.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import accounts
from app.config import Settings
from app.main import create_app
from app.models import Attempt, Exam, ExamItem
from app.sandbox.client import Sandbox
from tests.browser import live_server, served
from tests.conftest import QUESTIONS, TEST_SECRET

pytestmark = pytest.mark.slow  # servers of their own, in processes of their own

LEARNERS = 8
ANSWERS_EACH = 6
WRONG_PASSWORDS = 30
TIMEOUT_S = 60
ANSWER_BY_KIND = {
    "choice": 0,
    "output": "[0.05]",
    "code": "scheduler = None",
    "fix": "scheduler = None",
}
QUIZ_QUESTION = "lr-quiz-epoch-5"


@pytest.fixture
def instances(settings: Settings, sandbox: Sandbox, tmp_path: Path) -> Iterator[list[str]]:
    """Two instances' base URLs: here, and in a process of their own."""
    assert settings.database_url is not None
    env = {
        **os.environ,
        "TRACEWISE_DATABASE_URL": settings.database_url,
        "TRACEWISE_SECRET_KEY": TEST_SECRET,
        "TRACEWISE_VAR_DIR": str(tmp_path / "other-machine"),
        "PYTHONWARNINGS": "ignore",
    }
    with live_server(create_app(settings, sandbox=sandbox)) as here, served(env) as (_, there):
        yield [here, there]


class Learner:
    """A browser-less learner whose requests alternate between the instances (one cookie
    jar: cookies do not tell ports apart, as a browser behind a balancer sees one host)."""

    def __init__(self, bases: list[str], first: int) -> None:
        self.client = httpx.Client(timeout=TIMEOUT_S)
        self.bases = bases
        self.turn = first
        self.statuses: list[int] = []

    def request(
        self, method: str, path: str, body: object = None, *, to: int | None = None
    ) -> httpx.Response:
        """Send to instance `to`, or else to the next one."""
        if to is None:
            to, self.turn = self.turn, self.turn + 1
        base = self.bases[to % len(self.bases)]
        response = self.client.request(method, base + path, json=body)
        self.statuses.append(response.status_code)
        return response

    def close(self) -> None:
        self.client.close()


def _csrf(html: str) -> str:
    return html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def test_learners_split_between_two_instances_lose_and_double_nothing(
    instances: list[str], db: Session
) -> None:
    def study(n: int) -> tuple[list[int], int, list[int]]:
        learner = Learner(instances, first=n)
        acknowledged = []
        for i in range(ANSWERS_EACH):
            answer = learner.request(
                "POST", "/api/questions/lr-purpose/attempts", {"answer": (n + i) % 4}
            )
            assert answer.status_code == 201, answer.text
            acknowledged.append(answer.json()["attempt_id"])
        test = learner.request("POST", "/api/patterns/lr-schedulers/tests", {}).json()
        for item in test["questions"]:
            answer = ANSWER_BY_KIND[item["question"]["kind"]]
            saved = learner.request(
                "PUT",
                f"/api/tests/{test['id']}/questions/{item['number']}/answer",
                {"answer": answer},
            )
            assert saved.status_code == 200, saved.text
        with ThreadPoolExecutor(max_workers=2) as both:  # finished on both instances at once
            finishes = list(
                both.map(
                    lambda to: learner.request(
                        "POST", f"/api/tests/{test['id']}/finish", {}, to=to
                    ),
                    range(2),
                )
            )
        assert {finish.status_code for finish in finishes} == {200}, [f.text for f in finishes]
        assert finishes[0].json() == finishes[1].json()  # one result, whoever finished it
        learner.close()
        return acknowledged, test["id"], learner.statuses

    with ThreadPoolExecutor(max_workers=LEARNERS) as pool:
        results = list(pool.map(study, range(LEARNERS)))

    statuses = Counter(status for _, _, seen in results for status in seen)
    assert not [status for status in statuses if status >= 500], statuses
    acknowledged = [attempt for attempts, _, _ in results for attempt in attempts]
    exams = [exam for _, exam, _ in results]
    db.rollback()
    stored = db.scalars(select(Attempt.id).where(Attempt.id.in_(acknowledged))).all()
    assert sorted(stored) == sorted(acknowledged)  # every one, once
    for exam in exams:
        assert db.get(Exam, exam).finished_at is not None  # type: ignore[union-attr]
        items = db.scalar(select(func.count()).where(ExamItem.exam_id == exam))
        graded = db.scalar(
            select(func.count(func.distinct(ExamItem.attempt_id))).where(ExamItem.exam_id == exam)
        )
        assert graded == items  # each question graded into exactly one attempt
    learners_attempts = db.scalar(select(func.count()).select_from(Attempt))
    assert learners_attempts == len(acknowledged) + sum(  # nothing more was recorded
        db.scalar(select(func.count()).where(ExamItem.exam_id == exam)) or 0 for exam in exams
    )


def test_a_question_saved_on_one_instance_is_what_the_other_shows(
    instances: list[str], db: Session
) -> None:
    instructor = accounts.create_user(
        db, email="teacher@example.com", password="a long passphrase", role="instructor"
    )
    _, token = accounts.create_api_token(db, user=instructor, name="two instances")
    headers = {"Authorization": f"Bearer {token}"}
    question = yaml.safe_load((QUESTIONS / "lr-schedulers" / "quiz-epoch-5.yaml").read_text())
    with httpx.Client(timeout=TIMEOUT_S) as client:
        lesson = [client.get(f"{base}/patterns/lr-schedulers") for base in instances]
        assert [page.status_code for page in lesson] == [200, 200]  # its run drawn on both now

        def save(n: int) -> httpx.Response:  # an edit on each instance at once
            edited = {**question, "prompt": f"Edit {n}: what happens at the end of epoch 5?"}
            return client.put(
                f"{instances[n]}/api/questions/{QUIZ_QUESTION}",
                json={"question": edited},
                headers=headers,
            )

        with ThreadPoolExecutor(max_workers=2) as both:
            saves = list(both.map(save, range(2)))
        assert [saved.status_code for saved in saves] == [200, 200], [s.text for s in saves]
        assert sorted(saved.json()["version"] for saved in saves) == [2, 3]
        last = max(range(2), key=lambda n: saves[n].json()["version"])
        for base in instances:
            shown = client.get(f"{base}/api/questions/{QUIZ_QUESTION}").json()
            assert shown["version"] == 3
            assert f"Edit {last}:" in shown["prompt"]
            page = client.get(f"{base}/patterns/lr-schedulers").text
            assert f"Edit {last}:" in page  # the lesson's quiz too, beside its cached run


def test_wrong_passwords_spread_over_two_instances_are_limited_as_on_one(
    instances: list[str], settings: Settings
) -> None:
    with httpx.Client(base_url=instances[0], timeout=TIMEOUT_S) as browser:
        form = {
            "csrf_token": _csrf(browser.get("/signup").text),
            "email": "ada@example.com",
            "password": "the right one",
        }
        assert browser.post("/signup", data=form).status_code == 303

    def guess(n: int) -> int:
        with httpx.Client(base_url=instances[n % 2], timeout=TIMEOUT_S) as browser:
            csrf = _csrf(browser.get("/login").text)
            wrong = {"csrf_token": csrf, "email": "ada@example.com", "password": f"guess {n}"}
            return browser.post("/login", data=wrong).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = Counter(pool.map(guess, range(WRONG_PASSWORDS)))
    checked = answers[422]  # "wrong email or password": the password was checked
    assert checked <= settings.login_failures_per_account
    assert answers[429] == WRONG_PASSWORDS - checked  # the rest were refused before
