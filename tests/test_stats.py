"""Instructors' statistics: facility, discrimination, choice shares, variants, flags, the learner
table and the attempts export."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from html import unescape as html_unescape
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, insert, select
from sqlalchemy.orm import Session

from app import accounts
from app.authoring.stats import (
    CSV_COLUMNS,
    MIN_ATTEMPTS_TO_FLAG,
    MIN_LEARNERS_FOR_DISCRIMINATION,
    ChoiceShare,
    QuestionStats,
    VariantFacility,
    attempts_csv,
    pattern_stats,
    question_stats,
)
from app.bank import service as bank
from app.bank.schema import TITLE_MAX_CHARS, ChoiceQuestion, content_hash
from app.db import Database, begin_write
from app.errors import NotFound
from app.learning.learners import new_token
from app.learning.progress import pattern_progress
from app.markup import plain_text
from app.models import Attempt, Learner, Pattern, QuestionVersion, User
from app.models import Question as QuestionRow
from tests.conftest import CSRF_RE, right_answer

PATTERN = "lr-schedulers"
CHOICE = "lr-purpose"  # four choices, D (index 3) right
CHOICE_TEXTS = [
    "To change the model architecture dynamically",
    "To increase the batch size automatically",
    "To shuffle the training data at each epoch",
    "To adjust the learning rate during training for better model performance",
]
OUTPUT = "lr-output-exponentiallr"  # params: gamma [0.5, 0.8, 0.9] × epochs 1..5
# Other questions of the pattern, to give learners a total score beyond the one studied.
OTHERS = ["lr-steplr-three-steps", "lr-output-steplr-calls", "lr-quiz-softmax-sum"]
START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture
def clients(app: FastAPI) -> Iterator[list[TestClient]]:
    """Four more browsers, each a different guest learner."""
    with ExitStack() as stack:
        yield [stack.enter_context(TestClient(app)) for _ in range(4)]


def submit(client: TestClient, question_id: str, answer: object, **extra: object) -> Any:
    """Answer a question through the JSON API, as a learner's client does; the attempt."""
    response = client.post(
        f"/api/questions/{question_id}/attempts", json={"answer": answer, **extra}
    )
    assert response.status_code == 201, response.text
    return response.json()


def add_learners(db: Session, count: int, *, emails: list[str] | None = None) -> list[int]:
    """Insert `count` guest learners (or, with `emails`, account learners); their ids."""
    begin_write(db)
    learners = []
    for i in range(count):
        learner = Learner(token=new_token())
        if emails is not None:
            user = User(
                email=emails[i], password_hash="x", session_token=new_token(), role="learner"
            )
            db.add(user)
            db.flush()
            learner.user_id = user.id
        db.add(learner)
        learners.append(learner)
    db.commit()
    return [learner.id for learner in learners]


def add_attempt(
    db: Session,
    learner_id: int,
    question_id: str,
    *,
    correct: bool,
    answer: Any = None,
    version: int | None = None,
    rating: int | None = None,
    at: datetime = START,
) -> None:
    """Insert one attempt directly, for cases that are clearer as rows than as requests."""
    if version is None:
        row = db.get(QuestionRow, question_id)
        assert row is not None
        version = row.current_version
    begin_write(db)
    db.add(
        Attempt(
            learner_id=learner_id,
            question_id=question_id,
            question_version=version,
            answer=answer,
            correct=correct,
            score=1.0 if correct else 0.0,
            feedback={},
            hint_seen=False,
            solution_seen=False,
            rating=rating,
            created_at=at,
        )
    )
    db.commit()


def stats_of(db: Session, question_id: str) -> QuestionStats:
    """A question's statistics as the pattern page shows them (and check the API agrees)."""
    db.rollback()  # read what requests committed since this session last looked
    page = pattern_stats(db, pattern=bank.get_pattern_or_raise(db, PATTERN))
    (found,) = [q for q in page.questions if q.question_id == question_id]
    assert question_stats(db, question_id=question_id) == found
    return found


def build_discrimination_case(db: Session, *, strong_get_it_right: bool) -> list[int]:
    """Ten learners on CHOICE, ranked by how many of OTHERS they got right first time.

    learner   others right   CHOICE first try (strong_get_it_right / not)
    0         0              right / right
    1, 2      0              wrong / right
    3, 4      2              right / wrong
    5, 6      3              wrong / wrong
    7, 8, 9   3              right / wrong
    Plus an eleventh who did best of all on OTHERS but never answered CHOICE.
    """
    learners = add_learners(db, 11)
    others_right = [0, 0, 0, 2, 2, 3, 3, 3, 3, 3, 3]
    right = [True, False, False, True, True, False, False, True, True, True]
    if not strong_get_it_right:
        right = [True, True, True, False, False, False, False, False, False, False]
    for learner, count in zip(learners, others_right, strict=True):
        for i, other in enumerate(OTHERS):
            add_attempt(db, learner, other, correct=i < count)
    for i, (learner, first) in enumerate(zip(learners, right, strict=False)):
        wrong = i % 3  # A, B or C: every wrong choice is picked by someone
        add_attempt(db, learner, CHOICE, correct=first, answer=3 if first else wrong)
        add_attempt(db, learner, CHOICE, correct=not first, answer=wrong if first else 3)
    return learners


def parse_csv(lines: Iterator[str]) -> list[list[str]]:
    return list(csv.reader(io.StringIO("".join(lines))))


# --- facility, choices, time, help --------------------------------------------------------------


def test_facility_choice_shares_and_help_from_answers_through_the_app(
    client: TestClient, clients: list[TestClient], db: Session
) -> None:
    first, second, third, fourth = clients[:4]
    assert client.post(f"/api/questions/{CHOICE}/hint", json={}).status_code == 200
    submit(client, CHOICE, 3, time_taken_ms=1000)  # right first time, after the hint
    wrong = submit(first, CHOICE, 0, time_taken_ms=4000)  # wrong…
    assert first.post(f"/api/attempts/{wrong['attempt_id']}/solution", json={}).status_code == 200
    submit(first, CHOICE, 3, time_taken_ms=2000)  # …then right: still wrong first time
    assert second.post(f"/api/questions/{CHOICE}/hint", json={}).status_code == 200
    submit(second, CHOICE, "B", time_taken_ms=3000)  # a letter is an answer too
    submit(third, CHOICE, 3)  # no time measured
    submit(fourth, CHOICE, 0, time_taken_ms=9000)

    stats = stats_of(db, CHOICE)

    assert (stats.attempts, stats.learners) == (6, 5)
    assert stats.facility == 2 / 5
    assert stats.discrimination is None  # five learners are too few
    assert stats.median_time_ms == 3000  # of 1000, 2000, 3000, 4000, 9000
    assert stats.hint_rate == 2 / 6
    assert stats.solution_rate == 1 / 6  # the retry came after the solution was revealed
    assert (stats.kind, stats.difficulty, stats.version, stats.retired) == (
        "choice",
        "easy",
        1,
        False,
    )
    assert stats.choices == [
        ChoiceShare(0, "A", CHOICE_TEXTS[0], False, 2, 2 / 6),
        ChoiceShare(1, "B", CHOICE_TEXTS[1], False, 1, 1 / 6),
        ChoiceShare(2, "C", CHOICE_TEXTS[2], False, 0, 0.0),
        ChoiceShare(3, "D", CHOICE_TEXTS[3], True, 3, 3 / 6),
    ]
    assert stats.variants == []
    assert stats.flags == []  # six attempts are too few to judge


def test_a_question_nobody_answered_has_no_figures(db: Session) -> None:
    stats = stats_of(db, CHOICE)
    assert (stats.attempts, stats.learners) == (0, 0)
    assert stats.facility is None and stats.discrimination is None
    assert stats.median_time_ms is None and stats.hint_rate is None
    assert stats.solution_rate is None
    assert [c.picks for c in stats.choices] == [0, 0, 0, 0]
    assert all(c.share is None for c in stats.choices)
    assert stats.flags == []


def test_choice_shares_follow_choice_texts_across_versions(db: Session) -> None:
    """v2 rewords a choice (its attempts cannot be compared); v3, now current, has v1's
    choices in reverse order: v1's picks count, matched by text."""
    v1 = bank.get_version_or_raise(db, CHOICE, 1)
    assert isinstance(v1, ChoiceQuestion)
    reworded = [v1.choices[0].model_copy(update={"text": "To prune the model"}), *v1.choices[1:]]
    v2 = v1.model_copy(update={"choices": reworded})
    v3 = v1.model_copy(update={"choices": list(reversed(v1.choices))})
    begin_write(db)
    for number, version in ((2, v2), (3, v3)):
        db.add(
            QuestionVersion(
                question_id=CHOICE,
                version=number,
                kind="choice",
                difficulty="easy",
                content=version.model_dump(mode="json"),
                content_hash=content_hash(version),
            )
        )
    question = db.get(QuestionRow, CHOICE)
    assert question is not None
    question.current_version = 3
    db.commit()
    learners = add_learners(db, 4)
    add_attempt(db, learners[0], CHOICE, correct=True, answer=3, version=1)  # D in v1
    add_attempt(db, learners[1], CHOICE, correct=False, answer=0, version=2)  # reworded
    add_attempt(db, learners[2], CHOICE, correct=True, answer=0, version=3)  # same text as v1's D
    add_attempt(db, learners[3], CHOICE, correct=False, answer=1, version=3)  # v1's C

    stats = stats_of(db, CHOICE)

    assert stats.version == 3 and stats.attempts == 4
    assert [(c.label, c.text, c.correct, c.picks) for c in stats.choices] == [
        ("A", CHOICE_TEXTS[3], True, 2),
        ("B", CHOICE_TEXTS[2], False, 1),
        ("C", CHOICE_TEXTS[1], False, 0),
        ("D", CHOICE_TEXTS[0], False, 0),
    ]
    assert [c.share for c in stats.choices] == [2 / 3, 1 / 3, 0.0, 0.0]


# --- discrimination -----------------------------------------------------------------------------


def test_discrimination_of_a_question_the_strong_get_right(db: Session) -> None:
    build_discrimination_case(db, strong_get_it_right=True)

    stats = stats_of(db, CHOICE)

    # Ten learners: groups of round(2.7) = 3. Upper: 7, 8, 9 (total 4, all right), not 5 or 6
    # (total 3, wrong); lower: 1, 2 (total 0) and 0 (total 1, right). The eleventh, who did
    # best but never answered, is in neither group.
    assert stats.learners == MIN_LEARNERS_FOR_DISCRIMINATION
    assert stats.facility == 6 / 10
    assert stats.discrimination == pytest.approx(1 - 1 / 3)
    assert stats.flags == []


def test_negative_discrimination_is_flagged(db: Session) -> None:
    build_discrimination_case(db, strong_get_it_right=False)

    stats = stats_of(db, CHOICE)

    assert stats.facility == 3 / 10
    assert stats.discrimination == -1.0
    assert stats.flags == [
        "Those who do best on the pattern get it wrong more often (discrimination -1.00): "
        "is the key right, or does the wording mislead those who know more?",
    ]


def test_discrimination_needs_enough_learners(db: Session) -> None:
    learners = add_learners(db, MIN_LEARNERS_FOR_DISCRIMINATION - 1)
    for i, learner in enumerate(learners):
        add_attempt(db, learner, OTHERS[0], correct=i % 2 == 0)
        add_attempt(db, learner, CHOICE, correct=i % 2 == 0, answer=3 if i % 2 == 0 else 0)
    stats = stats_of(db, CHOICE)
    assert stats.learners == MIN_LEARNERS_FOR_DISCRIMINATION - 1
    assert stats.discrimination is None


# --- flags --------------------------------------------------------------------------------------


@pytest.mark.parametrize("learners", [MIN_ATTEMPTS_TO_FLAG - 1, MIN_ATTEMPTS_TO_FLAG])
def test_low_facility_and_unpicked_choices_are_flagged_once_there_is_enough_data(
    db: Session, learners: int
) -> None:
    ids = add_learners(db, learners)
    for i, learner in enumerate(ids):
        # One right; the others all fall for A, except one who picks B.
        answer = 3 if i == 0 else 1 if i == 1 else 0
        add_attempt(db, learner, CHOICE, correct=i == 0, answer=answer)

    stats = stats_of(db, CHOICE)

    assert stats.facility == 1 / learners
    if learners < MIN_ATTEMPTS_TO_FLAG:
        assert stats.flags == []
    else:
        assert stats.flags == [
            "Few get it right first time (facility 0.10): is the key right, or the prompt unclear?",
            "Nobody picks choice C (“To shuffle the training data at each epoch”) in 10 "
            "attempts: make it a mistake people really make, or drop it.",
        ]


def test_a_right_answer_nobody_picks_is_a_facility_flag_not_a_distractor_flag(
    db: Session,
) -> None:
    for i, learner in enumerate(add_learners(db, MIN_ATTEMPTS_TO_FLAG)):
        add_attempt(db, learner, CHOICE, correct=False, answer=i % 3)  # A, B and C, never D

    stats = stats_of(db, CHOICE)

    assert stats.facility == 0.0
    assert stats.flags == [
        "Few get it right first time (facility 0.00): is the key right, or the prompt unclear?"
    ]


# --- variants -----------------------------------------------------------------------------------


def test_variant_facility_per_parameter_value(
    app: FastAPI, client: TestClient, clients: list[TestClient], db: Session
) -> None:
    def right(variant: int) -> str:
        return right_answer(app, OUTPUT, 1, variant)

    # Variant i is gamma = [0.5, 0.8, 0.9][i // 5], epochs = i % 5 + 1.
    submit(client, OUTPUT, right(0), variant=0)  # gamma 0.5, epochs 1: right
    submit(clients[0], OUTPUT, "0.5", variant=1)  # gamma 0.5, epochs 2: wrong
    submit(clients[1], OUTPUT, right(5), variant=5)  # gamma 0.8, epochs 1: right
    submit(clients[2], OUTPUT, "0.5", variant=0)  # gamma 0.5, epochs 1: wrong first…
    submit(clients[2], OUTPUT, right(6), variant=6)  # …a later variant is not a first try

    stats = stats_of(db, OUTPUT)

    assert (stats.kind, stats.attempts, stats.learners) == ("output", 5, 4)
    assert stats.facility == 2 / 4
    assert stats.choices == []
    assert stats.variants == [
        VariantFacility("gamma", 0.5, 3, 1 / 3),
        VariantFacility("gamma", 0.8, 1, 1.0),
        VariantFacility("epochs", 1, 3, 2 / 3),
        VariantFacility("epochs", 2, 1, 0.0),
    ]


# --- the pattern page ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("markdown", "limit", "text"),
    [
        ("# Title\n\nA [link](https://example.com) and `code`.", 80, "Title A link and code."),
        ("```python\nprint(1)\n```\nthen **this**", 80, "print(1) then this"),
        ("one two three four", 12, "one two…"),
        ("one, two three", 9, "one…"),
    ],
)
def test_markdown_becomes_plain_text_on_one_line(markdown: str, limit: int, text: str) -> None:
    assert plain_text(markdown, limit) == text
    assert len(plain_text(markdown, limit)) <= limit


def test_the_bank_and_the_statistics_list_questions_by_their_titles(
    db: Session, client: TestClient, database: Database
) -> None:
    pattern = bank.get_pattern_or_raise(db, PATTERN)
    titles = {q.id: q.question.title for q in bank.list_questions(db, pattern)}
    assert titles[OUTPUT] == "ExponentialLR after a few epochs"  # its prompt has placeholders
    assert {q.question_id: q.title for q in pattern_stats(db, pattern=pattern).questions} == (
        titles
    )

    with database.session() as session:
        accounts.create_user(session, email="t@example.com", password="a long pass", role="admin")
    token = CSRF_RE.search(client.get("/login").text)
    assert token
    client.post(
        "/login",
        data={"csrf_token": token.group(1), "email": "t@example.com", "password": "a long pass"},
    )
    for url in ("/instructor", f"/instructor/patterns/{PATTERN}/stats"):
        html = client.get(url).text
        assert "{{" not in html, url
    listed = re.findall(r'<span class="question-name">(.*?)</span>', client.get("/instructor").text)
    assert sorted(html_unescape(title) for title in listed) == sorted(titles.values())


def test_every_question_has_its_title_and_the_page_shows_it_with_the_id(
    db: Session, client: TestClient, database: Database
) -> None:
    page = pattern_stats(db, pattern=bank.get_pattern_or_raise(db, PATTERN))
    titles = {q.question_id: q.title for q in page.questions}
    assert titles[CHOICE] == "Why schedule the rate?"
    assert all(0 < len(title) <= TITLE_MAX_CHARS for title in titles.values())

    with database.session() as session:
        accounts.create_user(session, email="t@example.com", password="a long pass", role="admin")
    login = client.get("/login").text
    token = CSRF_RE.search(login)
    assert token
    client.post(
        "/login",
        data={"csrf_token": token.group(1), "email": "t@example.com", "password": "a long pass"},
    )
    html = client.get(f"/instructor/patterns/{PATTERN}/stats").text
    row = re.search(rf'<tr id="q-{CHOICE}"[^>]*>\s*<th scope="row">(.*?)</th>', html, re.S)
    assert row, "no row for the question"
    assert titles[CHOICE] in row.group(1)
    assert f'<code class="question-id">{CHOICE}</code>' in row.group(1)


def test_pattern_stats_lists_live_questions_in_order_then_retired_ones(db: Session) -> None:
    pattern = bank.get_pattern_or_raise(db, PATTERN)
    live = [q.id for q in bank.list_questions(db, pattern)]
    begin_write(db)
    retired = db.get(QuestionRow, live[0])
    assert retired is not None
    retired.retired_at = START
    db.commit()
    learners = add_learners(db, 2)
    add_attempt(db, learners[0], live[0], correct=True)
    add_attempt(db, learners[1], live[1], correct=False)

    page = pattern_stats(db, pattern=pattern)

    assert page.pattern_slug == PATTERN and page.attempts == 2
    assert [q.question_id for q in page.questions] == [*live[1:], live[0]]
    assert [q.retired for q in page.questions] == [False] * (len(live) - 1) + [True]
    assert page.questions[-1].attempts == 1 and page.questions[-1].facility == 1.0


def test_learner_table(db: Session) -> None:
    account, guest = add_learners(db, 1, emails=["ada@example.com"]) + add_learners(db, 1)
    good, hard, again = 3, 2, 1  # FSRS ratings, as app.learning.review gives them
    add_attempt(db, account, CHOICE, correct=False, answer=0, rating=again, at=START)
    add_attempt(db, account, CHOICE, correct=True, answer=3, rating=good, at=START + timedelta(1))
    add_attempt(db, account, OTHERS[0], correct=True, rating=hard, at=START + timedelta(2))
    add_attempt(db, guest, OTHERS[0], correct=True, rating=good, at=START + timedelta(3))

    page = pattern_stats(db, pattern=bank.get_pattern_or_raise(db, PATTERN))

    rows = {row.learner_id: row for row in page.learners}
    assert [row.learner_id for row in page.learners] == [guest, account]  # latest first
    assert (
        rows[account].name,
        rows[account].questions_seen,
        rows[account].attempts,
        rows[account].first_try_correct,
        rows[account].last_active,
    ) == ("ada@example.com", 2, 3, 1, START + timedelta(2))
    assert (
        rows[guest].name,
        rows[guest].questions_seen,
        rows[guest].attempts,
        rows[guest].first_try_correct,
        rows[guest].last_active,
    ) == (f"Guest #{guest}", 1, 1, 1, START + timedelta(3))
    pattern_id = bank.get_pattern_or_raise(db, PATTERN).id
    for learner_id in (account, guest):
        learner = db.get(Learner, learner_id)
        progress = pattern_progress(db, learner=learner)[pattern_id]
        assert rows[learner_id].mastery == pytest.approx(progress.mastery)
        assert rows[learner_id].mastery > 0
    assert rows[account].mastery != rows[guest].mastery


def test_pattern_stats_costs_the_same_few_queries_for_many_learners(db: Session) -> None:
    pattern = bank.get_pattern_or_raise(db, PATTERN)
    live = [q.id for q in bank.list_questions(db, pattern)]
    versions = {q.id: q.version for q in bank.list_questions(db, pattern)}
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    def queries() -> int:
        statements.clear()
        event.listen(db.get_bind(), "before_cursor_execute", count)
        try:
            pattern_stats(db, pattern=pattern)
        finally:
            event.remove(db.get_bind(), "before_cursor_execute", count)
        return sum(1 for s in statements if s.lstrip().upper().startswith("SELECT"))

    learners = add_learners(db, 2)
    add_attempt(db, learners[0], live[0], correct=True)
    few = queries()
    many = add_learners(db, 200)
    begin_write(db)
    db.execute(
        insert(Attempt),
        [
            {
                "learner_id": learner,
                "question_id": live[i % len(live)],
                "question_version": versions[live[i % len(live)]],
                "answer": 0,
                "correct": i % 3 == 0,
                "score": float(i % 3 == 0),
                "feedback": {},
                "hint_seen": False,
                "solution_seen": False,
                "created_at": START + timedelta(seconds=i),
            }
            for learner in many
            for i in range(25)
        ],
    )
    db.commit()
    assert few == 3  # questions, versions, attempts
    assert queries() == few


# --- errors -------------------------------------------------------------------------------------


def test_unknown_question_is_not_found(db: Session) -> None:
    with pytest.raises(NotFound, match="no question 'nope'"):
        question_stats(db, question_id="nope")


# --- the export ---------------------------------------------------------------------------------


def test_attempts_csv_has_a_header_and_one_row_per_attempt(
    app: FastAPI, client: TestClient, clients: list[TestClient], db: Session
) -> None:
    submit(client, CHOICE, 3, time_taken_ms=1500)
    submit(clients[0], OUTPUT, "=1+1", variant=7)
    account = add_learners(db, 1, emails=["ada@example.com"])[0]
    add_attempt(db, account, CHOICE, correct=False, answer=0, rating=1)

    lines = attempts_csv(db)
    header = next(lines)
    rows = parse_csv(lines)

    assert header == ",".join(CSV_COLUMNS) + "\r\n"
    attempts = db.scalars(select(Attempt).order_by(Attempt.id)).all()
    assert [int(row[0]) for row in rows] == [a.id for a in attempts]
    by_column = [dict(zip(CSV_COLUMNS, row, strict=True)) for row in rows]
    choice, output, rated = by_column
    assert choice["created_at"] == attempts[0].created_at.isoformat()
    assert choice["created_at"].endswith("+00:00")
    assert (choice["email"], choice["pattern"], choice["question_id"]) == ("", PATTERN, CHOICE)
    assert (choice["kind"], choice["difficulty"], choice["question_version"]) == (
        "choice",
        "easy",
        "1",
    )
    assert (choice["variant"], choice["answer"], choice["correct"], choice["score"]) == (
        "",
        "3",
        "true",
        "1.0",
    )
    assert (choice["hint_seen"], choice["solution_seen"], choice["time_taken_ms"]) == (
        "false",
        "false",
        "1500",
    )
    assert output["variant"] == '{"gamma":0.8,"epochs":3}'
    assert output["answer"] == '"=1+1"'  # JSON-quoted: no spreadsheet reads it as a formula
    assert output["correct"] == "false" and output["kind"] == "output"
    assert rated["email"] == "ada@example.com" and rated["rating"] == "1"
    assert rated["learner_id"] == str(account)


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"])
def test_attempts_csv_neutralises_formulas(db: Session, prefix: str) -> None:
    email = f"{prefix}HYPERLINK(1)@example.com"
    (learner,) = add_learners(db, 1, emails=[email])
    add_attempt(db, learner, CHOICE, correct=True, answer=3)

    (row,) = parse_csv(attempts_csv(db))[1:]

    assert row[CSV_COLUMNS.index("email")] == "'" + email


def test_attempts_csv_of_one_pattern(db: Session) -> None:
    begin_write(db)
    other = Pattern(slug="other", content={}, content_hash="0" * 64)
    db.add(other)
    db.flush()
    db.add(QuestionRow(id="other-q", pattern_id=other.id, current_version=1))
    db.add(
        QuestionVersion(
            question_id="other-q",
            version=1,
            kind="choice",
            difficulty="hard",
            content={},
            content_hash="0" * 64,
        )
    )
    db.commit()
    (learner,) = add_learners(db, 1)
    add_attempt(db, learner, CHOICE, correct=True, answer=3)
    add_attempt(db, learner, "other-q", correct=False, answer=1)

    (mine,) = parse_csv(attempts_csv(db, pattern_slug=PATTERN))[1:]
    (theirs,) = parse_csv(attempts_csv(db, pattern_slug="other"))[1:]
    assert len(parse_csv(attempts_csv(db))) == 3

    assert mine[CSV_COLUMNS.index("question_id")] == CHOICE
    assert theirs[CSV_COLUMNS.index("question_id")] == "other-q"
    assert theirs[CSV_COLUMNS.index("difficulty")] == "hard"
    with pytest.raises(NotFound, match="no pattern 'nope'"):
        attempts_csv(db, pattern_slug="nope")  # at once, not when the lines are read
