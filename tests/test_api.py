"""The JSON API contract: shapes, no answer keys for learners, 404/422 with messages."""

from __future__ import annotations

import html
import http.client
import json
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.bank.files import read_bank
from app.middleware import MAX_BODY_BYTES
from app.models import Attempt, Reveal
from tests.browser import live_server
from tests.conftest import QUESTIONS

LESSON = "lr-schedulers"
QUESTION_IDS = [s.question.id for p in read_bank(QUESTIONS) for s in p.questions]
SECRET_KEYS = ("correct", "mistake", "solution", "notes", "final_answer", "answer", "expected")


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}


def test_openapi_documents_the_api(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/patterns",
        "/api/patterns/{slug}",
        "/api/patterns/{slug}/questions",
        "/api/questions/{question_id}",
        "/api/questions/{question_id}/attempts",
    ):
        assert path in paths
    assert client.get("/docs").status_code == 200


def test_patterns(client: TestClient) -> None:
    (pattern,) = client.get("/api/patterns").json()
    assert pattern["slug"] == LESSON
    assert pattern["question_count"] == len(QUESTION_IDS)
    assert sum(pattern["by_difficulty"].values()) == len(QUESTION_IDS)

    detail = client.get(f"/api/patterns/{LESSON}").json()
    assert [q["id"] for q in detail["questions"]] == QUESTION_IDS
    assert all(0 < len(q["title"]) <= 60 for q in detail["questions"])
    assert detail["key_insight"]


def test_learner_views_never_contain_answer_keys(client: TestClient) -> None:
    bodies = [client.get(f"/api/patterns/{LESSON}/questions").text]
    bodies += [client.get(f"/api/questions/{qid}").text for qid in QUESTION_IDS]
    for body in bodies:
        for key in SECRET_KEYS:
            assert f'"{key}"' not in body


def test_question_view(client: TestClient) -> None:
    question = client.get("/api/questions/lr-steplr-three-steps").json()
    assert question["title"] == "StepLR after three steps"
    assert question["kind"] == "choice" and question["difficulty"] == "easy"
    assert question["code"].startswith("import torch")
    assert [c["label"] for c in question["choices"]] == ["A", "B", "C", "D"]
    assert question["has_hint"] is True


@pytest.mark.parametrize("answer", [0, "A", "a"])
def test_submit_attempt(client: TestClient, db: Session, answer: object) -> None:
    response = client.post(
        "/api/questions/lr-steplr-three-steps/attempts",
        json={"answer": answer, "time_taken_ms": 4200},
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) >= {"attempt_id", "correct", "score", "feedback", "solution"}
    assert body["correct"] is True and body["score"] == 1.0
    assert body["solution"]["steps"]
    attempt = db.get(Attempt, body["attempt_id"])
    assert attempt is not None and attempt.time_taken_ms == 4200


def test_a_wrong_attempt_carries_the_misconception_and_not_the_key(client: TestClient) -> None:
    body = client.post("/api/questions/lr-steplr-three-steps/attempts", json={"answer": "D"}).json()
    assert (body["correct"], body["revealed"], body["tries"]) == (False, False, 1)
    assert "every `step_size` calls" in body["feedback"]["mistake"]
    assert body["feedback"]["correct_label"] is None and body["feedback"]["correct_choice"] is None
    assert body["solution"] is None
    url = f"/api/attempts/{body['attempt_id']}"
    assert client.get(url).json()["solution"] is None  # asked again: still withheld

    shown = client.post(f"{url}/solution", json={})
    assert shown.status_code == 200
    body = shown.json()
    assert body["revealed"] is True and body["feedback"]["correct_label"] == "A"
    assert body["solution"]["steps"] and body["solution"]["final_answer"]
    assert client.get(url).json() == body  # revealed for good


def test_the_third_wrong_try_in_a_row_reveals_the_key(client: TestClient, db: Session) -> None:
    url = "/api/questions/lr-steplr-three-steps/attempts"
    bodies = [client.post(url, json={"answer": answer}).json() for answer in "DCD"]
    assert [(b["tries"], b["revealed"]) for b in bodies] == [(1, False), (2, False), (3, True)]
    assert bodies[-1]["feedback"]["correct_label"] == "A" and bodies[-1]["solution"]
    assert db.scalars(select(Reveal.attempt_id)).all() == [bodies[-1]["attempt_id"]]


def test_revealing_someone_elses_attempt_is_404(app: FastAPI, client: TestClient) -> None:
    attempt = client.post("/api/questions/lr-purpose/attempts", json={"answer": 0}).json()
    with TestClient(app) as stranger:
        response = stranger.post(f"/api/attempts/{attempt['attempt_id']}/solution", json={})
    assert response.status_code == 404
    assert client.post("/api/attempts/2147483647/solution", json={}).status_code == 404


def test_hint_is_recorded_on_later_attempts(client: TestClient, db: Session) -> None:
    assert client.post("/api/questions/lr-purpose/hint", json={}).json()["hint"]
    attempt_id = client.post("/api/questions/lr-purpose/attempts", json={"answer": 3}).json()[
        "attempt_id"
    ]
    attempt = db.get(Attempt, attempt_id)
    assert attempt is not None and attempt.hint_seen


def test_own_attempt_is_readable_and_others_are_not(
    client: TestClient, other_client: TestClient
) -> None:
    attempt_id = client.post("/api/questions/lr-purpose/attempts", json={"answer": 3}).json()[
        "attempt_id"
    ]
    assert client.get(f"/api/attempts/{attempt_id}").json()["correct"] is True
    response = other_client.get(f"/api/attempts/{attempt_id}")
    assert response.status_code == 404
    assert "correct" not in response.json()


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/patterns/nope"),
        ("get", "/api/patterns/nope/questions"),
        ("get", "/api/questions/nope"),
        ("post", "/api/questions/nope/attempts"),
        ("post", "/api/questions/nope/hint"),
        ("get", "/api/attempts/12345"),
    ],
)
def test_unknown_ids_are_404_with_a_message(client: TestClient, method: str, url: str) -> None:
    kwargs = {"json": {"answer": 0}} if method == "post" else {}
    response = getattr(client, method)(url, **kwargs)
    assert response.status_code == 404
    assert "nope" in response.json()["detail"] or "12345" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"answer": 4}, "answer", "answer must be a choice index 0–3, got 4"),
        ({"answer": -1}, "answer", "answer must be a choice index 0–3, got -1"),
        ({"answer": "Z"}, "answer", "got 'Z'"),
        ({"answer": True}, "answer", "answer"),
        ({"answer": 1.5}, "answer", "answer"),
        ({}, "answer", "answer: is required"),
        ({"answer": 0, "time_taken_ms": -5}, "time_taken_ms", "time_taken_ms: must be at least 0"),
        ({"answer": 0, "version": "1"}, "version", "version: must be a whole number"),
    ],
)
def test_bad_answers_are_422_with_a_message_and_store_nothing(
    client: TestClient, db: Session, body: dict[str, object], field: str, message: str
) -> None:
    response = client.post("/api/questions/lr-purpose/attempts", json=body)
    assert response.status_code == 422
    assert response.json()["field"] == field
    assert message in response.json()["detail"]
    assert db.scalars(select(Attempt)).all() == []


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        ("{not json", "application/json", 422),
        ("answer=1", "application/x-www-form-urlencoded", 415),
        (json.dumps([1, 2]), "application/json", 422),
        ('{"answer": ' + "9" * 5000 + "}", "application/json", 422),
        (b'{"answer": "\xff"}', "application/json", 422),  # not UTF-8
        ("[" * 100_000 + "]" * 100_000, "application/json", 422),  # nested past any parser
    ],
)
def test_malformed_bodies_are_4xx_with_a_message_never_500(
    client: TestClient, content: str | bytes, content_type: str, status: int
) -> None:
    response = client.post(
        "/api/questions/lr-purpose/attempts",
        content=content,
        headers={"content-type": content_type},
    )
    assert response.status_code == status
    assert response.json()["detail"]
    assert "error parsing the body" not in response.json()["detail"]  # FastAPI's words


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/api/questions/lr-purpose/attempts", {"answer": 1, "extra": 2}),
        ("/api/questions/lr-purpose/hint", {"extra": 2}),
        (
            "/api/playground",
            {"scheduler": "StepLR", "params": {"step_size": 2}, "mode": "lr-only", "extra": 2},
        ),
    ],
)
def test_a_key_a_body_does_not_take_is_422_naming_it(
    client: TestClient, db: Session, url: str, body: dict[str, object]
) -> None:
    """Not ignored: a misspelt optional key (`verison`) would otherwise do nothing, silently.
    (Every request body's schema says so: tests/test_contract.py.)"""
    response = client.post(url, json=body)
    assert response.status_code == 422
    assert response.json() == {"detail": "extra: is not something this takes", "field": "extra"}
    assert db.scalars(select(Attempt)).all() == []


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        ("[1, 2]", "body: must be an object (keys and values)"),
        ('"an answer"', "body: must be an object (keys and values)"),
        ('{"answer": [1, 2], "version": 1.5}', "version: must be a whole number"),
    ],
)
def test_a_body_of_the_wrong_shape_is_422_in_our_words(
    client: TestClient, content: str, detail: str
) -> None:
    response = client.post(
        "/api/questions/lr-purpose/attempts",
        content=content,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json() == {"detail": detail, "field": detail.split(":")[0]}


@pytest.mark.parametrize("content", ["{not json", '{"answer": 1,}', '{\n  "answer": 1,\n}', "{"])
def test_json_that_does_not_parse_says_the_line_and_column(
    client: TestClient, content: str
) -> None:
    with pytest.raises(json.JSONDecodeError) as parsing:
        json.loads(content)
    response = client.post(
        "/api/questions/lr-purpose/attempts",
        content=content,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    where = f"line {parsing.value.lineno}, column {parsing.value.colno}"
    assert response.json() == {"detail": f"body: is not valid JSON: {where}", "field": "body"}


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("page=abc", "page: must be a whole number"),
        ("page=0", "page: must be at least 1"),
        ("page=1.5", "page: must be a whole number"),
        ("page=99999999999", "page: must be at most 1000000"),
    ],
)
def test_a_malformed_query_to_the_api_is_422_in_our_words(
    client: TestClient, query: str, detail: str
) -> None:
    response = client.get(f"/api/attempts?{query}")
    assert response.status_code == 422
    assert response.json() == {"detail": detail, "field": "page"}


def test_a_body_that_is_not_utf8_says_so(client: TestClient) -> None:
    response = client.post(
        "/api/questions/lr-purpose/attempts",
        content=b'{"answer": "\xff"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json() == {
        "detail": "The body could not be read: it is not UTF-8 text.",
        "field": "body",
    }


@pytest.mark.parametrize(
    "url",
    [
        "/api/questions/lr-purpose/hint",
        "/api/questions/lr-purpose/attempts",
        "/api/questions/lr-output-steplr-calls/variant",
        "/api/playground",
    ],
)
def test_api_writes_must_be_json_from_our_own_origin(client: TestClient, url: str) -> None:
    form = client.post(url, data={"answer": "3"})
    assert form.status_code == 415
    assert "Content-Type: application/json" in form.json()["detail"]
    foreign = client.post(url, json={"answer": 3}, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403


def test_huge_bodies_are_refused_with_413_not_echoed(client: TestClient) -> None:
    over = MAX_BODY_BYTES + 1000
    big = client.post("/api/questions/lr-purpose/attempts", json={"answer": "A" * over})
    assert big.status_code == 413
    assert len(big.content) < 200
    medium = client.post("/api/questions/lr-purpose/attempts", json={"answer": "B" * 100_000})
    assert medium.status_code == 422
    assert len(medium.content) < 500  # the message quotes a few characters, not the input


def test_a_chunked_body_over_the_limit_is_413_too(client: TestClient) -> None:
    pieces = MAX_BODY_BYTES // 100_000 + 1  # over the limit
    chunks = (b'{"answer": "' + b"C" * 100_000 if n == 0 else b"C" * 100_000 for n in range(pieces))
    big = client.post(
        "/api/questions/lr-purpose/attempts",
        content=chunks,  # no Content-Length: it is counted as it comes
        headers={"Content-Type": "application/json"},
    )
    assert big.status_code == 413
    assert "larger than" in big.json()["detail"]


# 2147483648: one past PostgreSQL's integer, where a row id would overflow the database
@pytest.mark.parametrize(
    "attempt_id", ["99999999999999999999", "2147483648", "0", "-1", "abc", "1.5"]
)
def test_ids_that_cannot_name_anything_are_404_in_words_not_422(
    client: TestClient, attempt_id: str
) -> None:
    api = client.get(f"/api/attempts/{attempt_id}")
    assert api.status_code == 404
    assert api.json() == {"detail": f"There is nothing here called {attempt_id!r}."}
    page = client.get(f"/patterns/lr-schedulers/questions/lr-purpose/attempts/{attempt_id}")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert f"There is nothing here called {attempt_id!r}." in html.unescape(page.text)
    assert "parse" not in page.text and "Input should be" not in page.text


@pytest.mark.parametrize(
    "url",
    ["/tests/0", "/tests/abc", "/tests/2147483648", "/tests/1/questions/0", "/tests/1/finish"],
)
def test_a_test_address_that_cannot_be_one_is_a_404_page(client: TestClient, url: str) -> None:
    page = client.get(url, headers={"accept": "text/html"})
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "There is nothing here called" in page.text or "There is no test" in page.text
    api = client.get("/api" + url.removesuffix("/finish"))
    assert api.status_code in (404, 405) and api.json()["detail"]


@pytest.mark.parametrize("version", [2**31 - 1, 999])
def test_a_version_never_saved_is_422_naming_it_even_the_largest(
    client: TestClient, version: int
) -> None:
    response = client.post(
        "/api/questions/lr-purpose/attempts", json={"answer": 1, "version": version}
    )
    assert response.status_code == 422
    assert response.json()["field"] == "version"


@pytest.mark.parametrize("field", ["version", "variant"])
def test_a_version_or_variant_past_what_a_row_holds_is_422_naming_it(
    client: TestClient, field: str
) -> None:
    response = client.post("/api/questions/lr-purpose/attempts", json={"answer": 1, field: 2**31})
    assert response.status_code == 422
    assert response.json()["field"] == field


def test_a_non_ascii_csrf_token_is_403_not_500(client: TestClient) -> None:
    client.get("/patterns/lr-schedulers/questions/lr-purpose")
    response = client.post(
        "/patterns/lr-schedulers/questions/lr-purpose/answer",
        data={"csrf_token": "é", "answer": "1"},
    )
    assert response.status_code == 403


def test_malformed_json_names_the_body_not_an_offset(client: TestClient) -> None:
    response = client.post(
        "/api/questions/lr-purpose/attempts",
        content="{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["field"] == "body"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "content_type", "head"),
    [
        ("/api/questions/lr-purpose/attempts", "application/json", b'{"answer": "'),
        (
            "/patterns/lr-schedulers/questions/lr-purpose/answer",
            "application/x-www-form-urlencoded",
            b"answer=",
        ),
        (
            "/patterns/lr-schedulers/questions/lr-purpose/answer",
            "multipart/form-data; boundary=b",
            b'--b\r\nContent-Disposition: form-data; name="answer"\r\n\r\n',
        ),
    ],
)
def test_a_chunked_body_over_the_limit_is_413_from_a_real_server(
    app: FastAPI, path: str, content_type: str, head: bytes
) -> None:
    """Sent in chunks with no Content-Length, the body is counted as it arrives (the
    TestClient hands the app a body in one piece: only a server sends it in parts)."""
    with live_server(app) as base:
        address = urlsplit(base)
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        chunks = [head] + [b"C" * 100_000] * (MAX_BODY_BYTES // 100_000 + 1)  # over the limit
        connection.request(
            "POST",
            path,
            body=iter(chunks),
            headers={"Content-Type": content_type, "Accept": "application/json"},
            encode_chunked=True,
        )
        response = connection.getresponse()
        body = json.loads(response.read())
        connection.close()
    assert response.status == 413
    assert body == {"detail": f"The request body is larger than {MAX_BODY_BYTES} bytes."}
