"""The JSON API keeps its OpenAPI contract: schemathesis runs every operation of
/openapi.json against the app, in-process, as a guest and with an instructor's API token —
every phase (examples, coverage, fuzzing, stateful) and every standard check — and finds
nothing; the error bodies are the documented one; /docs works offline."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from schemathesis.engine import events, from_schema
from schemathesis.python import asgi

from app import accounts
from app.config import Settings
from app.main import create_app
from app.sandbox.client import Sandbox
from tests.conftest import TEST_SECRET
from tests.databases import Databases

MAX_EXAMPLES = 10  # per operation and phase: the whole run stays around 15 s per identity
SEED = 20261206  # the same cases on every run: a failure here is reproducible

# Operations whose input is checked against the thing it names, which a schema cannot say:
# a schema-valid request may be refused with 422 (documented, with `field`). Anything else
# refused with 422 — a request the schema calls valid — is a failure.
CHECKED_AGAINST_DATA = {
    # whether an answer can answer it depends on the question's kind (an index, a letter,
    # a printed text, code) and its choices
    ("POST", "/api/questions/{question_id}/attempts"),
    ("PUT", "/api/tests/{exam_id}/questions/{number}/answer"),
    # a question with one variant has no other to move to
    ("POST", "/api/questions/{question_id}/variant"),
    # a pattern without test questions cannot be tested
    ("POST", "/api/patterns/{slug}/tests"),
    # each scheduler's parameters are the ones torch's signature takes
    ("POST", "/api/playground"),
    # a question file is checked like an import: its schema, its Markdown, its real run
    ("POST", "/api/questions"),
    ("PUT", "/api/questions/{question_id}"),
}


def schemathesis_config(headers: dict[str, str]) -> schemathesis.Config:
    """Every phase and check, bounded and seeded; 422 allowed for a schema-valid request
    only where CHECKED_AGAINST_DATA says why."""
    positive = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]  # schemathesis' own
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "headers": headers,
            # no example database: the seed alone decides the cases, and nothing is written
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
            "operations": [
                {
                    "include-method": method,
                    "include-path": path,
                    "checks": {
                        "positive_data_acceptance": {"expected-statuses": [*positive, "422"]}
                    },
                }
                for method, path in sorted(CHECKED_AGAINST_DATA)
            ],
        }
    )


@pytest.fixture(scope="module")
def contract_app(
    tmp_path_factory: pytest.TempPathFactory,
    databases: Databases,
    template_db: str,
    sandbox: Sandbox,
) -> Iterator[FastAPI]:
    """One app (and database) for the whole run, as a server serving many clients is."""
    url = databases.copy(template_db)
    app = create_app(
        Settings(
            var_dir=tmp_path_factory.mktemp("contract") / "var",
            database_url=url,
            secret_key=TEST_SECRET,  # type: ignore[arg-type]
            allowed_hosts=[asgi.HOST],
        ),
        sandbox=sandbox,
    )
    yield app
    asgi.shutdown_lifespans()  # schemathesis started the app; stop it before its database goes
    app.state.db.dispose()
    databases.drop(url)


def instructor_headers(app: FastAPI) -> dict[str, str]:
    """An instructor's API token, as a script would send it."""
    with app.state.db.session() as session:
        user = accounts.create_user(
            session, email="contract@example.com", password="a long passphrase", role="instructor"
        )
        _, token = accounts.create_api_token(session, user=user, name="contract")
    return {"Authorization": f"Bearer {token}"}


def failures_of(app: FastAPI, headers: dict[str, str]) -> list[str]:
    """Run schemathesis against the app; one line per failed check or error."""
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", app, config=schemathesis_config(headers)
    )
    found: list[str] = []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            found += _failed_checks(event)
        elif isinstance(event, events.NonFatalError):
            found.append(f"{event.label}: error {event.value!r}")
        elif isinstance(event, events.FatalError):
            found.append(f"fatal: {event.exception!r}")
    return sorted(set(found))


def _failed_checks(event: events.ScenarioFinished) -> list[str]:
    lines = []
    for case_id, checks in event.recorder.checks.items():
        for check in checks:
            if check.failure_info is None:
                continue
            case = event.recorder.cases[case_id].value
            interaction = event.recorder.interactions.get(case_id)
            response = interaction.response if interaction else None
            answer = f"{response.status_code} {response.content[:160]!r}" if response else "-"
            body: Any = case.body if isinstance(case.body, dict | list | str | bytes) else "-"
            lines.append(
                f"{event.phase.value}: {check.name}: {check.failure_info.failure.title} — "
                f"{case.method} {case.formatted_path} query={case.query} "
                f"body={str(body)[:160]} → {answer}"
            )
    return lines


@pytest.mark.slow
@pytest.mark.parametrize("who", ["guest", "instructor"])
# Hypothesis warns when it prints a large generated example (a body of 20,000 characters): about
# its own report, not our API, and with warnings as errors it would count as a failure.
@pytest.mark.filterwarnings(
    "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning"
)
def test_the_api_keeps_its_openapi_contract(contract_app: FastAPI, who: str) -> None:
    headers = instructor_headers(contract_app) if who == "instructor" else {}
    failures = failures_of(contract_app, headers)
    assert not failures, f"{len(failures)} contract failures:\n" + "\n".join(failures)


def test_every_error_is_documented_with_the_one_error_body(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            statuses = operation["responses"]
            for status in ("400", "413", "503"):  # refused before any route
                assert status in statuses, (method, path, status)
            for status, response in statuses.items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (path, status)


def test_every_request_body_refuses_keys_it_does_not_know(client: TestClient) -> None:
    """A JSON body with a key its operation does not take is refused (422), and the schema
    says so: `additionalProperties: false` on every request body object."""
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    bodies = [
        (method, path, operation["requestBody"]["content"]["application/json"]["schema"])
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    ]
    assert len(bodies) >= 8
    for method, path, schema in bodies:
        if "$ref" in schema:
            schema = schemas[schema["$ref"].rsplit("/", 1)[-1]]
        assert schema.get("additionalProperties") is False, (method, path)


def test_error_bodies_are_the_documented_error_body(client: TestClient) -> None:
    documented = client.get("/openapi.json").json()["components"]["schemas"]["ErrorBody"]
    allowed = set(documented["properties"])
    for response in (
        client.get("/api/questions/nope"),
        client.post("/api/questions/lr-purpose/attempts", json={"answer": 99}),
        client.post("/api/questions/lr-purpose/attempts", data={"answer": "1"}),
        client.get("/api/attempts?page=0"),
    ):
        assert response.status_code >= 400
        assert set(response.json()) <= allowed and "detail" in response.json()


def test_the_docs_page_needs_nothing_from_the_internet(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r'<(?:script|link)[^>]* (?:src|href)="([^"]+)"', page.text)
    assert any("swagger-ui-bundle.js" in asset for asset in assets), assets
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert client.get(asset).status_code == 200, asset
    assert any(asset.endswith("/js/docs.js") for asset in assets), assets
    script = client.get("/static/js/docs.js").text
    # no call to swagger.io's validator either
    assert re.search(r"^\s*validatorUrl: null,", script, re.MULTILINE), script
    assert client.get("/redoc").status_code == 404  # ReDoc would come from a CDN


def test_the_docs_page_has_no_inline_script_or_style(client: TestClient) -> None:
    """So that a Content-Security-Policy without 'unsafe-inline' can serve it."""
    page = client.get("/docs").text
    assert re.findall(r"<script(?![^>]*\ssrc=)[^>]*>", page) == []
    assert "<style" not in page and " style=" not in page


def test_the_docs_page_finds_the_description_under_a_root_path(app: FastAPI) -> None:
    """Behind a proxy that serves the app under a prefix (uvicorn --root-path), the docs
    load the API's description from under the prefix too."""
    with TestClient(app, root_path="/tracewise") as prefixed:
        page = prefixed.get("/tracewise/docs")
        assert page.status_code == 200
        assert 'data-openapi-url="/tracewise/openapi.json"' in page.text
        assert 'href="/tracewise/openapi.json"' in page.text
        assert prefixed.get("/tracewise/openapi.json").status_code == 200


@pytest.mark.parametrize(
    ("path", "allow"),
    [("/api/questions/validate", "POST"), ("/api/questions/lr-purpose", "GET, PUT")],
)
def test_a_405_allows_the_methods_of_the_resource_asked_for(
    client: TestClient, path: str, allow: str
) -> None:
    """`validate` also fits `/api/questions/{question_id}`: the Allow header still names
    the methods of what was asked for, as the schema documents them."""
    response = client.request("OPTIONS", path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
