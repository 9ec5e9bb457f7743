"""Accounts: sign up, log in, log out, rate limits, and the guest's progress coming along."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import accounts
from app.bank import service as bank
from app.config import Settings
from app.db import Database
from app.learning import answering
from app.learning.learners import Visitor
from app.main import create_app
from app.models import ApiToken, Attempt, Exam, Learner, ReviewCard, User
from app.sandbox.client import Sandbox
from tests.conftest import CSRF_RE
from tests.conftest import Learner as Browser

LESSON = "lr-schedulers"
PASSWORD = "correct horse battery"


def _csrf(client: TestClient, url: str = "/login") -> str:
    match = CSRF_RE.search(client.get(url).text)
    assert match
    return match.group(1)


def sign_up(client: TestClient, email: str = "ada@example.com", password: str = PASSWORD) -> object:
    """Submit the sign-up form."""
    return client.post(
        "/signup",
        data={"csrf_token": _csrf(client, "/signup"), "email": email, "password": password},
        follow_redirects=False,
    )


def log_in(client: TestClient, email: str = "ada@example.com", password: str = PASSWORD) -> object:
    """Submit the log-in form."""
    return client.post(
        "/login",
        data={"csrf_token": _csrf(client), "email": email, "password": password},
        follow_redirects=False,
    )


def log_out(client: TestClient) -> None:
    """Press "Log out"."""
    response = client.post("/logout", data={"csrf_token": _csrf(client, "/")})
    assert response.status_code == 200


def _count(db: Session, model: type) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(model)) or 0


def test_sign_up_hashes_the_password_and_logs_in(client: TestClient, db: Session) -> None:
    response = sign_up(client, email="  Ada@Example.COM ")
    assert response.status_code == 303 and response.headers["location"] == "/"  # type: ignore[attr-defined]
    cookie = response.headers["set-cookie"].lower()  # type: ignore[attr-defined]
    assert "httponly" in cookie and "samesite=lax" in cookie
    db.rollback()
    user = db.scalars(select(User)).one()
    assert user.email == "ada@example.com"
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    assert "ada@example.com" in client.get("/").text and "Log out" in client.get("/").text


@pytest.mark.parametrize(
    ("email", "password", "field", "message"),
    [
        ("", PASSWORD, "email", "Enter your email address."),
        ("not-an-email", PASSWORD, "email", "does not look like an email"),
        ("ada@example.com", "short", "password", "at least 8 characters"),
        ("ada@example.com", "x" * 1025, "password", "limited to 1024"),
    ],
)
def test_sign_up_says_which_field_is_wrong(
    client: TestClient, db: Session, email: str, password: str, field: str, message: str
) -> None:
    response = sign_up(client, email=email, password=password)
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert f'id="{field}-error"' in response.text and message in response.text  # type: ignore[attr-defined]
    assert _count(db, User) == 0


TOO_LONG_EMAIL = "a" * 5000 + "@example.com"
TOO_LONG_PASSWORD = "x" * 20_000


@pytest.mark.parametrize(
    ("email", "password", "field", "message"),
    [
        (TOO_LONG_EMAIL, PASSWORD, "email", "does not look like an email"),
        ("ada@example.com", TOO_LONG_PASSWORD, "password", "limited to 1024"),
    ],
)
def test_signing_up_with_a_far_too_long_field_keeps_the_form(
    client: TestClient, db: Session, email: str, password: str, field: str, message: str
) -> None:
    """Longer than any form would send: still the form again, the error beside the field."""
    response = sign_up(client, email=email, password=password)
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert response.template.name == "accounts/signup.html"  # type: ignore[attr-defined]
    assert f'id="{field}-error"' in response.text and message in response.text  # type: ignore[attr-defined]
    assert _count(db, User) == 0


@pytest.mark.parametrize(
    ("email", "password"), [(TOO_LONG_EMAIL, PASSWORD), ("ada@example.com", TOO_LONG_PASSWORD)]
)
def test_logging_in_with_a_far_too_long_field_keeps_the_form(
    client: TestClient, email: str, password: str
) -> None:
    sign_up(client)
    log_out(client)
    response = log_in(client, email=email, password=password)
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert response.template.name == "accounts/login.html"  # type: ignore[attr-defined]
    assert 'id="password-error"' in response.text  # type: ignore[attr-defined]
    assert "Wrong email or password." in response.text  # type: ignore[attr-defined]


def test_an_api_token_name_is_bounded_with_a_form_error(
    client: TestClient, database: Database, db: Session
) -> None:
    with database.session() as session:
        accounts.create_user(
            session, email="teacher@example.com", password=PASSWORD, role="instructor"
        )
    log_in(client, email="teacher@example.com")
    for name, status in (("n" * 5000, 422), ("n" * 101, 422), ("n" * 100, 200)):
        response = client.post(
            "/instructor/tokens",
            data={"csrf_token": _csrf(client, "/instructor/tokens"), "name": name},
        )
        assert response.status_code == status, len(name)
        assert response.template.name == "instructor/tokens.html"  # type: ignore[attr-defined]
        if status == 422:
            assert 'id="name-error"' in response.text
            assert "at most 100 characters" in response.text
    db.rollback()
    assert [len(token.name) for token in db.scalars(select(ApiToken))] == [100]


def test_an_email_has_one_account(client: TestClient, other_client: TestClient) -> None:
    sign_up(client)
    again = sign_up(other_client, email="ADA@example.com")
    assert again.status_code == 422 and "already exists" in again.text  # type: ignore[attr-defined]


def test_log_in_and_out(client: TestClient, other_client: TestClient) -> None:
    sign_up(client)
    wrong = log_in(other_client, password="not the password")
    unknown = log_in(other_client, email="nobody@example.com")
    for response in (wrong, unknown):  # the same answer: no telling which emails exist
        assert response.status_code == 422  # type: ignore[attr-defined]
        assert "Wrong email or password." in response.text  # type: ignore[attr-defined]
    assert log_in(other_client).status_code == 303  # type: ignore[attr-defined]
    assert "ada@example.com" in other_client.get("/").text
    log_out(other_client)
    home = other_client.get("/").text
    assert "ada@example.com" not in home and "Log in" in home


def test_forms_need_the_csrf_token(client: TestClient, db: Session) -> None:
    client.get("/signup")
    response = client.post("/signup", data={"email": "a@example.com", "password": PASSWORD})
    assert response.status_code == 403
    assert client.post("/login", data={"email": "a@example.com"}).status_code == 403
    assert client.post("/logout").status_code == 403
    assert _count(db, User) == 0


def test_after_log_in_you_go_back_where_you_were_but_never_off_site(client: TestClient) -> None:
    sign_up(client)
    log_out(client)
    for target, expected in (
        (f"/patterns/{LESSON}/test", f"/patterns/{LESSON}/test"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
    ):
        response = client.post(
            "/login",
            data={
                "csrf_token": _csrf(client),
                "email": "ada@example.com",
                "password": PASSWORD,
                "next": target,
            },
            follow_redirects=False,
        )
        assert response.headers["location"] == expected, target
        log_out(client)


# --- rate limits ----------------------------------------------------------------------------------


@pytest.fixture
def strict_client(settings: Settings, sandbox: Sandbox) -> Iterator[TestClient]:
    """A browser on an app that allows 4 attempts per address and 2 failures per account."""
    limited = settings.model_copy(
        update={"auth_attempts_per_ip": 4, "login_failures_per_account": 2}
    )
    with TestClient(create_app(limited, sandbox=sandbox)) as client:
        yield client


def test_failed_log_ins_lock_the_account_for_a_while(strict_client: TestClient) -> None:
    sign_up(strict_client)
    log_out(strict_client)
    assert log_in(strict_client, password="guess one").status_code == 422  # type: ignore[attr-defined]
    assert log_in(strict_client, password="guess two").status_code == 422  # type: ignore[attr-defined]
    locked = log_in(strict_client)  # even the right password waits
    assert locked.status_code == 429  # type: ignore[attr-defined]
    assert "Too many failed log-ins to this account" in locked.text  # type: ignore[attr-defined]
    assert 1 <= int(locked.headers["retry-after"]) <= 15 * 60  # type: ignore[attr-defined]


def test_one_address_cannot_keep_trying(strict_client: TestClient) -> None:
    for i in range(4):
        response = log_in(strict_client, email=f"user{i}@example.com")
        assert response.status_code == 422  # type: ignore[attr-defined]
    refused = sign_up(strict_client, email="new@example.com")
    assert refused.status_code == 429  # type: ignore[attr-defined]
    assert "Too many log-in and sign-up attempts from your address" in refused.text  # type: ignore[attr-defined]


def test_one_address_starts_only_so_many_new_guests(
    settings: Settings, sandbox: Sandbox, db: Session
) -> None:
    """A class shares an address: the cap is on new guests, not on what each one does."""
    app = create_app(settings.model_copy(update={"guests_per_ip_per_hour": 2}), sandbox=sandbox)
    first, second, third = (TestClient(app) for _ in range(3))
    for guest in (first, second):
        answer = guest.post("/api/questions/lr-purpose/attempts", json={"answer": 1})
        assert answer.status_code == 201
    refused = third.post("/api/questions/lr-purpose/attempts", json={"answer": 1})
    assert refused.status_code == 429
    assert "Too many new visitors from your network" in refused.json()["detail"]
    assert int(refused.headers["retry-after"]) >= 1
    # A guest's code would not run either: it is admitted first.
    code = third.post(
        "/api/questions/lr-code-steplr/attempts",
        json={"answer": "scheduler = lr_scheduler.StepLR(optimizer, 3, 0.5)"},
    )
    assert code.status_code == 429
    # Guests the address already started go on as before; so does reading.
    again = first.post("/api/questions/lr-purpose/attempts", json={"answer": 2})
    assert again.status_code == 201
    assert third.get("/api/questions/lr-purpose").status_code == 200
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Learner)) == 2


# --- the guest's progress -------------------------------------------------------------------------


def test_signing_up_keeps_what_the_guest_did(
    client: TestClient, learner: Browser, other_client: TestClient, db: Session
) -> None:
    learner.answer(LESSON, "lr-purpose", 3)
    learner.answer(LESSON, "lr-steplr-syntax", 1)
    before = dict(client.cookies)
    db.rollback()
    guest = db.scalars(select(Learner)).one()

    sign_up(client)
    history = client.get("/api/attempts").json()
    assert history["total"] == 2
    db.rollback()
    account = db.scalars(select(Learner)).one()  # the guest became the account's learner
    assert account.id == guest.id and account.user_id is not None

    stale = TestClient(client.app, cookies=before)  # someone holding the pre-sign-up cookie
    assert stale.get("/api/attempts").json()["total"] == 0
    assert "ada@example.com" not in stale.get("/").text


def test_logging_in_merges_the_guest_into_the_account(
    app: FastAPI, client: TestClient, other_client: TestClient, db: Session
) -> None:
    laptop, phone = Browser(client), Browser(other_client)
    laptop.answer(LESSON, "lr-purpose", 3)
    sign_up(client)
    db.rollback()
    due_before = db.scalars(select(ReviewCard.due)).one()
    # on the phone, as a guest: an answer, the same question answered later, an open test
    phone.answer(LESSON, "lr-steplr-syntax", 1)
    phone.answer(LESSON, "lr-purpose", 0)
    phone_test = other_client.post(f"/api/patterns/{LESSON}/tests", json={}).json()
    assert _count(db, Learner) == 2

    assert log_in(other_client).status_code == 303  # type: ignore[attr-defined]
    assert _count(db, Attempt) == 3
    history = other_client.get("/api/attempts").json()
    assert history["total"] == 3
    assert client.get("/api/attempts").json()["total"] == 3  # the laptop sees it all too
    assert other_client.get(f"/api/tests/{phone_test['id']}").status_code == 200
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Exam)) == 1
    guest = db.scalars(select(Learner).where(Learner.merged_into_id.is_not(None))).one()
    assert db.scalar(select(func.count()).where(Attempt.learner_id == guest.id)) == 0
    cards = db.scalars(select(ReviewCard)).all()
    assert {card.learner_id for card in cards} == {guest.merged_into_id}
    assert sorted(card.question_id for card in cards) == ["lr-purpose", "lr-steplr-syntax"]
    purpose = next(card for card in cards if card.question_id == "lr-purpose")
    assert purpose.reviews == 2  # rebuilt from both histories: right (laptop), then wrong
    assert purpose.due < due_before  # the latest answer was wrong: it comes back sooner


def test_both_devices_open_tests_stay_open_after_log_in(
    client: TestClient, other_client: TestClient
) -> None:
    sign_up(client)
    laptop_test = client.post(f"/api/patterns/{LESSON}/tests", json={}).json()
    phone_test = other_client.post(f"/api/patterns/{LESSON}/tests", json={}).json()
    log_in(other_client)
    page = other_client.get(f"/patterns/{LESSON}/test").text
    for test in (laptop_test, phone_test):
        assert f"/tests/{test['id']}/questions/" in page
        assert other_client.get(f"/api/tests/{test['id']}").status_code == 200


def test_a_request_under_way_for_a_merged_guest_lands_in_the_account(
    app: FastAPI, client: TestClient, other_client: TestClient, db: Session
) -> None:
    sign_up(client)
    Browser(other_client).answer(LESSON, "lr-purpose", 3)
    db.rollback()
    guest = db.scalars(select(Learner).where(Learner.user_id.is_(None))).one()
    under_way = Visitor(token=guest.token, learner=guest)  # read before the log-in
    log_in(other_client)
    with app.state.db.session() as session:
        question = bank.get_question_or_raise(session, "lr-steplr-syntax")
        answering.record_attempt(session, visitor=under_way, question=question, answer=1)
    assert client.get("/api/attempts").json()["total"] == 2
    assert _count(db, Learner) == 2  # no orphan learner made for the old token


def test_a_cookie_planted_before_log_in_does_not_become_the_account(
    client: TestClient, db: Session
) -> None:
    sign_up(client)
    log_out(client)
    client.get("/")
    planted = dict(client.cookies)  # an attacker's own guest session, planted in the victim's
    Browser(client).answer(LESSON, "lr-purpose", 3)  # the victim answers as that guest
    log_in(client)  # …and logs in: the guest's answer moves into the account
    attacker = TestClient(client.app, cookies=planted)
    assert "ada@example.com" not in attacker.get("/").text
    assert attacker.get("/api/attempts").json()["total"] == 0
    Browser(attacker).answer(LESSON, "lr-steplr-syntax", 1)  # what the attacker does…
    assert client.get("/api/attempts").json()["total"] == 1  # …stays out of the account


def test_logging_out_ends_the_session_everywhere(client: TestClient) -> None:
    sign_up(client)
    copied = TestClient(client.app, cookies=dict(client.cookies))  # a stolen or second cookie
    assert "ada@example.com" in copied.get("/").text
    log_out(client)
    assert "ada@example.com" not in copied.get("/").text
    assert "Log in" in copied.get("/").text


def test_concurrent_wrong_passwords_stay_within_the_account_limit(
    strict_client: TestClient,
) -> None:
    sign_up(strict_client)
    log_out(strict_client)
    csrf = _csrf(strict_client)

    def guess(i: int) -> int:
        return strict_client.post(
            "/login",
            data={"csrf_token": csrf, "email": "ada@example.com", "password": f"guess {i}"},
            follow_redirects=False,
        ).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(guess, range(8)))
    assert statuses.count(422) <= 2 and statuses.count(429) >= 6


def test_logging_out_leaves_a_new_guest_with_nothing(client: TestClient, learner: Browser) -> None:
    sign_up(client)
    learner.answer(LESSON, "lr-purpose", 3)
    log_out(client)
    assert client.get("/api/attempts").json()["total"] == 0
    assert "Nothing yet" in client.get("/history").text
    log_in(client)
    assert client.get("/api/attempts").json()["total"] == 1
