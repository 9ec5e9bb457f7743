"""Instructors: roles on every route, the editor (preview, run, save), versions, retiring,
files in and out, the API with tokens, admins and the audit log."""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app import accounts
from app.authoring import editor, starters, versions
from app.authoring.importing import import_bank
from app.bank.files import read_bank
from app.bank.store import add_version
from app.checking.runs import Runs
from app.checking.verify import RunProblem
from app.cli import _audit_import as cli_audit
from app.cli import cli
from app.db import Database, begin_write
from app.models import Attempt, AuditEvent, QuestionVersion, User
from app.models import Question as QuestionRow
from app.routes import admin as admin_routes
from app.routes import api, authoring_api, exams, modes, pages, traces
from app.routes import instructor as instructor_routes
from tests import factories
from tests.conftest import CSRF_RE, QUESTIONS

LESSON = "lr-schedulers"
PASSWORD = "correct horse battery"
CHOICE_ID = "lr-steplr-three-steps"


def make_user(database: Database, email: str, role: str) -> User:
    """An account with a role, as `python -m app create-user` makes it."""
    with database.session() as session:
        return accounts.create_user(session, email=email, password=PASSWORD, role=role)


def csrf(client: TestClient, url: str = "/login") -> str:
    """The browser session's CSRF token, from a page's form."""
    match = CSRF_RE.search(client.get(url).text)
    assert match, url
    return match.group(1)


def log_in(client: TestClient, email: str) -> None:
    """Log in through the form."""
    response = client.post(
        "/login",
        data={"csrf_token": csrf(client), "email": email, "password": PASSWORD},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


@pytest.fixture
def instructor(client: TestClient, database: Database) -> TestClient:
    """The `client`, logged in as an instructor."""
    make_user(database, "teacher@example.com", accounts.INSTRUCTOR)
    log_in(client, "teacher@example.com")
    return client


def retire(client: TestClient, question_id: str, *, retired: bool = True) -> Any:
    """Press Retire (or Bring back) on the bank page."""
    return client.post(
        f"/instructor/questions/{question_id}/retire",
        data={"csrf_token": csrf(client, "/instructor"), "retired": str(retired).lower()},
    )


def editor_post(
    client: TestClient,
    source: str,
    action: str,
    *,
    question_id: str | None = None,
    pattern: str = LESSON,
) -> Any:
    """Press Preview, Run or Save in the editor."""
    url = (
        f"/instructor/questions/{question_id}/edit" if question_id else "/instructor/questions/new"
    )
    data = {"csrf_token": csrf(client, url), "source": source, "action": action}
    if question_id is None:
        data["pattern"] = pattern
    return client.post(url, data=data, follow_redirects=False)


OUTPUT_QUESTION = """\
id: steplr-variants-from-the-editor
title: StepLR variants from the editor
kind: output
difficulty: medium
prompt: What does this print?
code: |
  import torch
  model = torch.nn.Linear(2, 1)
  optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
  scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size={{ step_size }}, gamma=0.5)
  for _ in range({{ calls }}):
      optimizer.step()
      scheduler.step()
  print(scheduler.get_last_lr())
params:
  step_size: [2, 3]
  calls: [3, 4]
"""


# --- roles ----------------------------------------------------------------------------------


def _staff_routes(app: FastAPI) -> list[APIRoute]:
    """Every route of the instructors' and admins' routers — and any other route anywhere
    that asks for the role."""
    staff = [
        route
        for router in (instructor_routes.router, admin_routes.router, authoring_api.router)
        for route in router.routes
        if isinstance(route, APIRoute)
    ]
    for router in (api.router, pages.router, modes.router, exams.router, traces.router):
        for route in router.routes:
            assert isinstance(route, APIRoute)
            assert not route.path.startswith(("/instructor", "/admin")), route.path
    assert len(staff) >= 25
    return staff


def _url(route: APIRoute) -> str:
    values = {
        "question_id": CHOICE_ID,
        "slug": LESSON,
        "version": "1",
        "token_id": "1",
        "user_id": "1",
    }
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], route.path)


def _call(client: TestClient, route: APIRoute, token: str) -> int:
    method = sorted(route.methods)[0]
    url = _url(route)
    if method == "GET":
        return client.get(url).status_code
    if url.startswith("/api/"):
        return client.request(method, url, json={}).status_code
    return client.request(method, url, data={"csrf_token": token}).status_code


def test_every_instructor_route_needs_the_role(
    app: FastAPI, client: TestClient, other_client: TestClient, database: Database
) -> None:
    routes = _staff_routes(app)
    guest_token = csrf(other_client)
    for route in routes:
        assert _call(other_client, route, guest_token) == 401, route.path

    make_user(database, "learner@example.com", accounts.LEARNER)
    log_in(client, "learner@example.com")
    token = csrf(client, "/")
    for route in routes:
        assert _call(client, route, token) == 403, route.path


def test_an_instructor_opens_every_page_and_an_admin_the_admin_pages(
    app: FastAPI, instructor: TestClient, database: Database
) -> None:
    for route in _staff_routes(app):
        if "GET" not in route.methods:
            continue
        status = instructor.get(_url(route)).status_code
        expected = 403 if route.path.startswith("/admin") else 200
        assert status == expected, route.path

    make_user(database, "admin@example.com", accounts.ADMIN)
    log_in(instructor, "admin@example.com")
    for route in _staff_routes(app):
        if "GET" in route.methods:
            assert instructor.get(_url(route)).status_code == 200, route.path


def test_posts_as_an_instructor_pass_the_role_check(app: FastAPI, instructor: TestClient) -> None:
    token = csrf(instructor, "/instructor")
    for route in _staff_routes(app):
        if "GET" in route.methods or route.path.startswith("/admin"):
            continue
        assert _call(instructor, route, token) not in (401, 403), route.path


def test_the_instructor_link_shows_for_staff_only(client: TestClient, database: Database) -> None:
    assert 'href="/instructor"' not in client.get("/").text
    make_user(database, "teacher@example.com", accounts.INSTRUCTOR)
    log_in(client, "teacher@example.com")
    assert 'href="/instructor"' in client.get("/").text


def test_create_user_on_the_command_line(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACEWISE_DATABASE_URL", app.state.settings.resolved_database_url)
    monkeypatch.setenv("TRACEWISE_SECRET_KEY", "x" * 40)
    result = CliRunner().invoke(
        cli,
        ["create-user", "--email", "Boss@Example.com", "--role", "admin"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    with app.state.db.session() as session:
        user = session.scalar(select(User).where(User.email == "boss@example.com"))
        assert user is not None and user.role == "admin"
    again = CliRunner().invoke(
        cli, ["create-user", "--email", "boss@example.com", "--password", PASSWORD]
    )
    assert again.exit_code == 1
    assert "already exists" in again.output
    bad = CliRunner().invoke(
        cli, ["create-user", "--email", "x@example.com", "--role", "god", "--password", PASSWORD]
    )
    assert bad.exit_code == 1
    assert "role" in bad.output


# --- the editor ------------------------------------------------------------------------------


def test_preview_shows_the_question_as_learners_see_it(instructor: TestClient) -> None:
    page = instructor.get("/instructor/questions/new?kind=choice")
    assert page.status_code == 200
    assert "What learners see" in page.text
    assert "Worked solution" in page.text  # the learner template's own solution section
    assert "no misconception given" not in page.text  # every wrong choice has one

    source = starters.starter_source("choice").replace("prompt: |\n", "prompt: |\n  **Bold** ")
    response = instructor.post(
        "/instructor/questions/preview",
        data={"csrf_token": csrf(instructor, "/instructor"), "source": source, "pattern": LESSON},
    )
    assert response.status_code == 200
    assert "<strong>Bold</strong>" in response.text
    assert "<html" not in response.text  # a fragment for the editor's script


def test_schema_errors_are_placed_on_their_field_and_line(instructor: TestClient) -> None:
    source = starters.starter_source("choice").replace("difficulty: medium", "difficulty: extreme")
    source = source.replace("    mistake: Halving", "    mistakee: Halving")
    response = editor_post(instructor, source, "preview")
    assert response.status_code == 422
    lines = source.splitlines()
    difficulty_line = next(i for i, line in enumerate(lines, 1) if "extreme" in line)
    typo_line = next(i for i, line in enumerate(lines, 1) if "mistakee" in line)
    assert f'data-line="{difficulty_line}"' in response.text
    assert "<code>difficulty</code>: must be one of easy" in response.text
    assert f'data-line="{typo_line}"' in response.text
    assert "choices.2.mistakee" in response.text
    assert "extreme" in response.text  # what the instructor typed is kept


@pytest.mark.parametrize(
    ("title_line", "message"),
    [
        ("", "<code>title</code>: is required"),
        ("title: The `StepLR` rule", "<code>title</code>: must be plain text on one line"),
        ("title: " + "x" * 61, "<code>title</code>: must be at most 60 characters"),
    ],
)
def test_the_editor_names_a_missing_or_wrong_title(
    instructor: TestClient, title_line: str, message: str
) -> None:
    source = starters.starter_source("choice").replace(
        "title: StepLR after four epochs", title_line
    )
    response = editor_post(instructor, source, "save")
    assert response.status_code == 422
    assert message in response.text


def test_broken_yaml_points_at_its_line(instructor: TestClient) -> None:
    response = editor_post(instructor, "id: a\nkind: [choice\n", "save")
    assert response.status_code == 422
    assert "not valid YAML" in response.text
    assert 'data-line="3"' in response.text or 'data-line="2"' in response.text


@pytest.mark.parametrize(
    ("markdown", "problem"),
    [
        ("<script>alert(1)</script>", "raw HTML"),
        ("Click <img src=x onerror=alert(1)> here", "raw HTML"),
        ("[a link](javascript:alert(1))", "not javascript:"),
        ("![diagram](https://example.com/a.png)", "images are not shown"),
    ],
)
def test_markdown_that_would_not_survive_sanitising_is_refused(
    instructor: TestClient, markdown: str, problem: str
) -> None:
    source = starters.starter_source("choice").replace(
        "hint: Count", f"hint: {json.dumps(markdown)}\nnotes: Count"
    )
    response = editor_post(instructor, source, "save")
    assert response.status_code == 422
    assert "<code>hint</code>" in response.text
    assert problem in response.text


def test_an_output_question_is_run_saved_and_answered(
    instructor: TestClient, other_client: TestClient, db: Session, app: FastAPI
) -> None:
    run = editor_post(instructor, OUTPUT_QUESTION, "run")
    assert run.status_code == 200, run.text
    assert "4 variants" in run.text
    assert "[0.05]" in run.text and "[0.025]" in run.text  # keys from real runs
    assert "scheduler.step()" in run.text  # the step-by-step LR trace

    saved = editor_post(instructor, OUTPUT_QUESTION, "save")
    assert saved.status_code == 303
    assert saved.headers["location"].endswith(
        "/instructor/questions/steplr-variants-from-the-editor/edit?saved=1"
    )
    assert "Saved as version 1" in instructor.get(saved.headers["location"]).text

    learner_page = other_client.get(f"/patterns/{LESSON}/questions/steplr-variants-from-the-editor")
    assert learner_page.status_code == 200
    version = db.get(QuestionVersion, ("steplr-variants-from-the-editor", 1))
    assert version is not None and version.source == "editor"
    author = db.get(User, version.author_id)
    assert author is not None and author.email == "teacher@example.com"
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "question.create"))
    assert event is not None and event.subject == "steplr-variants-from-the-editor"


def test_saving_is_refused_when_the_key_disagrees_with_the_real_run(
    instructor: TestClient, db: Session
) -> None:
    source = (
        OUTPUT_QUESTION.replace("{{ step_size }}", "2")
        .replace("{{ calls }}", "4")
        .split("params:")[0]
        + "answer: '[0.05]'\n"
    )
    response = editor_post(instructor, source, "save")
    assert response.status_code == 422
    assert "the real run disagrees" in response.text
    assert "+[0.025]" in response.text  # the diff shows the real output
    answer_line = source.splitlines().index("answer: '[0.05]'") + 1
    assert f'data-line="{answer_line}"' in response.text
    assert db.get(QuestionRow, "steplr-variants-from-the-editor") is None


def test_saving_is_refused_when_a_variant_fails_to_run(instructor: TestClient) -> None:
    source = OUTPUT_QUESTION.replace(
        "  print(scheduler.get_last_lr())",
        "  if {{ step_size }} == 2:\n      print(scheduler.get_last_lr())",
    )
    response = editor_post(instructor, source, "save")
    assert response.status_code == 422
    assert (
        "2 of 4 variants (step_size=3, calls=3; step_size=3, calls=4): the code prints nothing"
        in response.text
    )
    assert response.text.count('class="variant-problem"') == 2  # marked in the table


def test_a_code_question_is_checked_by_its_reference_and_self_tests(
    instructor: TestClient, db: Session
) -> None:
    saved = editor_post(instructor, starters.starter_source("code"), "save")
    assert saved.status_code == 303, saved.text
    wrong = starters.starter_source("code").replace("divergence: 2", "divergence: 5")
    response = editor_post(instructor, wrong.replace("new-code-question", "other-one"), "save")
    assert response.status_code == 422
    assert "self_tests.0" in response.text
    assert "first differs at epoch 2, not epoch 5" in response.text


def test_ids_are_never_reused_or_renamed(instructor: TestClient) -> None:
    taken = starters.starter_source("choice").replace("new-choice-question", CHOICE_ID)
    response = editor_post(instructor, taken, "save")
    assert response.status_code == 422
    assert "is taken" in response.text

    page = instructor.get(f"/instructor/questions/{CHOICE_ID}/edit")
    source = re.search(r"<textarea[^>]*>(.*?)</textarea>", page.text, re.S)
    assert source
    renamed = source.group(1).replace(f"id: {CHOICE_ID}", "id: renamed")
    response = editor_post(instructor, _unescape(renamed), "save", question_id=CHOICE_ID)
    assert response.status_code == 422
    assert "stays" in response.text


def _unescape(html: str) -> str:
    return (
        html.replace("&#34;", '"')
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
    )


def _current_source(client: TestClient, question_id: str) -> str:
    page = client.get(f"/instructor/questions/{question_id}/edit")
    found = re.search(r"<textarea[^>]*>\n?(.*?)</textarea>", page.text, re.S)
    assert found
    return _unescape(found.group(1))


def test_editing_makes_a_version_and_attempts_keep_theirs(
    instructor: TestClient, other_client: TestClient, db: Session
) -> None:
    from tests.conftest import Learner as Browser

    Browser(other_client).answer(LESSON, CHOICE_ID, 0)
    source = _current_source(instructor, CHOICE_ID)
    assert editor_post(instructor, source, "save", question_id=CHOICE_ID).status_code == 200
    assert "no new version" in editor_post(instructor, source, "save", question_id=CHOICE_ID).text

    changed = source.replace("prompt: ", "prompt: Think twice. ", 1)
    saved = editor_post(instructor, changed, "save", question_id=CHOICE_ID)
    assert saved.status_code == 303
    assert saved.headers["location"].endswith("?saved=2")
    attempt = db.scalar(select(Attempt).where(Attempt.question_id == CHOICE_ID))
    assert attempt is not None and attempt.question_version == 1

    versions = instructor.get(f"/instructor/questions/{CHOICE_ID}/versions")
    assert versions.status_code == 200
    assert "teacher@example.com" in versions.text
    assert "+prompt: Think twice." in _unescape(versions.text)
    assert "diff-remove" in versions.text

    restore = instructor.post(
        f"/instructor/questions/{CHOICE_ID}/versions/1/restore",
        data={"csrf_token": csrf(instructor, "/instructor")},
        follow_redirects=False,
    )
    assert restore.status_code == 303
    assert restore.headers["location"].endswith("?restored=3")
    db.rollback()  # a fresh read
    row = db.get(QuestionRow, CHOICE_ID)
    assert row is not None and row.current_version == 3
    restored = db.get(QuestionVersion, (CHOICE_ID, 3))
    original = db.get(QuestionVersion, (CHOICE_ID, 1))
    assert restored and original and restored.content_hash == original.content_hash
    assert restored.source == "restore"


def test_retiring_hides_a_question_from_learners_but_keeps_its_history(
    instructor: TestClient, other_client: TestClient, db: Session
) -> None:
    url = f"/patterns/{LESSON}/questions/{CHOICE_ID}"
    assert other_client.get(url).status_code == 200
    assert retire(instructor, CHOICE_ID).status_code == 200
    assert other_client.get(url).status_code == 404
    assert CHOICE_ID not in other_client.get(f"/api/patterns/{LESSON}").text
    assert instructor.get(f"/instructor/questions/{CHOICE_ID}/versions").status_code == 200
    assert "retired" in instructor.get(f"/instructor/questions/{CHOICE_ID}/edit").text
    retire(instructor, CHOICE_ID, retired=False)
    assert other_client.get(url).status_code == 200


def test_a_file_import_keeps_editor_work_until_the_file_changes(
    instructor: TestClient, database: Database, runs: Runs, tmp_path: Path
) -> None:
    source = _current_source(instructor, CHOICE_ID)
    edited = source.replace("prompt: ", "prompt: Edited in the browser. ", 1)
    assert editor_post(instructor, edited, "save", question_id=CHOICE_ID).status_code == 303
    assert editor_post(instructor, OUTPUT_QUESTION, "save").status_code == 303
    retire(instructor, "lr-purpose")

    with database.session() as session:  # `make run` imports questions/ on every start
        report = import_bank(session, QUESTIONS, runs=runs)
    assert not report.changed, report.summary()
    with database.session() as session:
        row = session.get(QuestionRow, CHOICE_ID)
        assert row is not None and row.current_version == 2  # the browser's edit stands
        made_here = session.get(QuestionRow, "steplr-variants-from-the-editor")
        assert made_here is not None and made_here.retired_at is None
        retired = session.get(QuestionRow, "lr-purpose")
        assert retired is not None and retired.retired_at is not None

    bank = tmp_path / "bank"
    import shutil

    shutil.copytree(QUESTIONS, bank)
    path = next(bank.rglob("steplr-three-steps.yaml"))
    path.write_text(path.read_text().replace("prompt: ", "prompt: Edited in the file. ", 1))
    with database.session() as session:
        report = import_bank(session, bank, runs=runs)
    assert report.new_versions == [CHOICE_ID]
    with database.session() as session:
        row = session.get(QuestionRow, CHOICE_ID)
        assert row is not None and row.current_version == 3
        latest = session.get(QuestionVersion, (CHOICE_ID, 3))
        assert latest is not None and "Edited in the file" in latest.content["prompt"]


# --- files in and out -------------------------------------------------------------------------


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def upload(client: TestClient, name: str, data: bytes, pattern: str = "") -> Any:
    """Submit the import form."""
    return client.post(
        "/instructor/import",
        data={"csrf_token": csrf(client, "/instructor/import"), "pattern": pattern},
        files={"file": (name, data)},
    )


def test_export_then_import_changes_nothing(
    instructor: TestClient, database: Database, runs: Runs, tmp_path: Path
) -> None:
    assert instructor.get('/instructor/export.zip?pattern=no"such').status_code == 404
    exported = instructor.get("/instructor/export.zip")
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(exported.content)) as archive:
        archive.extractall(tmp_path / "out")
    # what the database exports is what questions/ holds, field for field
    ours = {s.question.id: s.question for p in read_bank(QUESTIONS) for s in p.questions}
    theirs = {s.question.id: s.question for p in read_bank(tmp_path / "out") for s in p.questions}
    assert theirs == ours
    assert read_bank(tmp_path / "out")[0].pattern == read_bank(QUESTIONS)[0].pattern

    response = upload(instructor, "bank.zip", exported.content)
    assert response.status_code == 200, response.text
    assert f"0 new, 0 new versions, {len(ours)} unchanged" in response.text
    with database.session() as session:
        again = import_bank(session, tmp_path / "out", runs=runs)
        assert not again.changed


def test_an_upload_is_all_or_nothing_with_path_field_errors(
    instructor: TestClient, db: Session
) -> None:
    good = factories.choice_question("uploaded-good")
    bad = factories.choice_question("uploaded-bad", difficulty="extreme")
    files = {
        "new-pattern/pattern.yaml": yaml.safe_dump(factories.PATTERN),
        "new-pattern/good.yaml": yaml.safe_dump(good),
        "new-pattern/bad.yaml": yaml.safe_dump(bad),
    }
    response = upload(instructor, "two.zip", _zip(files))
    assert response.status_code == 422
    assert "Nothing was imported" in response.text
    assert "new-pattern/bad.yaml: difficulty: must be one of easy" in response.text
    assert db.get(QuestionRow, "uploaded-good") is None

    del files["new-pattern/bad.yaml"]
    response = upload(instructor, "one.zip", _zip(files))
    assert response.status_code == 200, response.text
    db.rollback()  # a fresh read
    row = db.get(QuestionRow, "uploaded-good")
    assert row is not None and row.file_hash is None  # not tied to a file in questions/
    version = db.get(QuestionVersion, ("uploaded-good", 1))
    assert version is not None and version.source == "upload"


def test_hostile_uploads_are_refused(instructor: TestClient) -> None:
    traversal = upload(instructor, "evil.zip", _zip({"../evil.yaml": "id: x"}))
    assert traversal.status_code == 422
    assert "../evil.yaml" in traversal.text
    bomb = upload(instructor, "bomb.zip", _zip({"p/q.yaml": "#" * (20 * 1024 * 1024)}))
    assert bomb.status_code == 422
    exe = upload(instructor, "tool.exe", b"MZ...")
    assert exe.status_code == 422
    assert ".yaml or .yml file, or a .zip" in exe.text
    too_big = upload(instructor, "big.zip", b"x" * (4 * 1024 * 1024))
    assert too_big.status_code == 413


def test_a_single_question_file_goes_into_the_chosen_pattern(
    instructor: TestClient, db: Session
) -> None:
    text = yaml.safe_dump(factories.choice_question("single-upload"))
    no_pattern = upload(instructor, "single.yaml", text.encode())
    assert no_pattern.status_code == 422
    assert "choose their pattern" in no_pattern.text
    response = upload(instructor, "single.yaml", text.encode(), pattern=LESSON)
    assert response.status_code == 200, response.text
    assert "1 new" in response.text
    assert db.get(QuestionRow, "single-upload") is not None


def test_gift_export_and_import(instructor: TestClient, db: Session) -> None:
    gift = instructor.get(f"/instructor/patterns/{LESSON}/export.gift")
    assert gift.status_code == 200
    assert f"// id: {CHOICE_ID} · " in gift.text
    assert "::StepLR after three steps::" in gift.text  # GIFT's title is the question's
    assert re.search(r"// Left out: \d+ output or code questions \(their keys", gift.text)
    xml = instructor.get(f"/instructor/patterns/{LESSON}/export.xml")
    assert xml.status_code == 200
    assert f"<idnumber>{CHOICE_ID}</idnumber>" in xml.text

    moodle = (
        "// from Moodle\n"
        "::Warm-up first::What does LinearLR do during warm-up? {\n"
        "  =It scales the LR up from start_factor to end_factor\n"
        "  ~It lowers the LR#That is decay, not warm-up.\n"
        "}\n"
    )
    response = upload(instructor, "moodle.gift", moodle.encode(), pattern=LESSON)
    assert response.status_code == 200, response.text
    row = db.get(QuestionRow, "warm-up-first")
    assert row is not None
    bad = upload(instructor, "bad.gift", b"::x::Pick {=a ~b}\n", pattern=LESSON)
    assert bad.status_code == 422
    assert "line 1:" in bad.text


# --- the API ------------------------------------------------------------------------------------


@pytest.fixture
def api_token(instructor: TestClient) -> str:
    """A personal API token, made on the tokens page."""
    response = instructor.post(
        "/instructor/tokens",
        data={"csrf_token": csrf(instructor, "/instructor/tokens"), "name": "sync script"},
    )
    assert response.status_code == 200
    found = re.search(r'<pre class="output token">(tw_[\w-]+)</pre>', response.text)
    assert found
    return found.group(1)


def test_the_api_with_a_token(api_token: str, other_client: TestClient, db: Session) -> None:
    headers = {"Authorization": f"Bearer {api_token}"}
    question = yaml.safe_load(OUTPUT_QUESTION)

    checked = other_client.post(
        "/api/questions/validate", json={"question": question}, headers=headers
    )
    assert checked.status_code == 200, checked.text
    body = checked.json()
    assert body["valid"] is True
    assert {tuple(v["params"].values()): v["answer"] for v in body["variants"]} == {
        (2, 3): "[0.05]",
        (2, 4): "[0.025]",
        (3, 3): "[0.05]",
        (3, 4): "[0.05]",
    }
    assert body["variants"][0]["trace"][0]["kind"] == "optimizer"

    created = other_client.post(
        "/api/questions", json={"question": question, "pattern": LESSON}, headers=headers
    )
    assert created.status_code == 201, created.text
    title = question["title"]
    assert created.json() == {"id": question["id"], "title": title, "version": 1, "changed": True}

    question["prompt"] = "And now?"
    updated = other_client.put(
        f"/api/questions/{question['id']}", json={"question": question}, headers=headers
    )
    assert updated.json() == {"id": question["id"], "title": title, "version": 2, "changed": True}
    same = other_client.put(
        f"/api/questions/{question['id']}", json={"question": question}, headers=headers
    )
    assert same.json()["changed"] is False

    versions = other_client.get(f"/api/questions/{question['id']}/versions", headers=headers)
    assert [v["version"] for v in versions.json()] == [2, 1]
    assert versions.json()[0]["author"] == "teacher@example.com"
    assert versions.json()[0]["source"] == "api"

    stats = other_client.get(f"/api/questions/{CHOICE_ID}/stats", headers=headers)
    assert stats.status_code == 200
    assert stats.json()["question_id"] == CHOICE_ID

    csv = other_client.get("/api/attempts.csv", headers=headers)
    assert csv.status_code == 200
    assert csv.text.startswith("attempt_id,")
    assert other_client.get("/api/attempts.csv?pattern=nope", headers=headers).status_code == 404


def test_the_api_refuses_a_key_the_real_run_contradicts(
    api_token: str, other_client: TestClient
) -> None:
    question = yaml.safe_load(OUTPUT_QUESTION)
    del question["params"]
    question["code"] = question["code"].replace("{{ step_size }}", "2").replace("{{ calls }}", "4")
    question["answer"] = "[0.05]"
    headers = {"Authorization": f"Bearer {api_token}"}
    response = other_client.post(
        "/api/questions", json={"question": question, "pattern": LESSON}, headers=headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "answer"
    assert "[0.025]" in response.json()["errors"][0]["message"]

    question["difficulty"] = "extreme"
    invalid = other_client.post(
        "/api/questions/validate", json={"question": question}, headers=headers
    )
    assert invalid.json()["valid"] is False
    assert invalid.json()["errors"][0]["field"] == "difficulty"


def test_bad_tokens_and_revoked_tokens_get_401(
    api_token: str, instructor: TestClient, other_client: TestClient
) -> None:
    bad = other_client.get(
        f"/api/questions/{CHOICE_ID}/versions", headers={"Authorization": "Bearer tw_nope"}
    )
    assert bad.status_code == 401
    assert bad.headers["www-authenticate"].startswith("Bearer")
    page = instructor.get("/instructor/tokens").text
    token_id = re.search(r"/instructor/tokens/(\d+)/revoke", page)
    assert token_id
    instructor.post(
        f"/instructor/tokens/{token_id.group(1)}/revoke",
        data={"csrf_token": csrf(instructor, "/instructor/tokens")},
    )
    revoked = other_client.get(
        f"/api/questions/{CHOICE_ID}/versions", headers={"Authorization": f"Bearer {api_token}"}
    )
    assert revoked.status_code == 401


def test_cookie_api_calls_must_be_json(instructor: TestClient) -> None:
    response = instructor.post("/api/questions/validate", data={"question": "x"})
    assert response.status_code == 415


# --- admins -------------------------------------------------------------------------------------


def test_an_admin_grants_roles_and_reads_the_audit_log(
    client: TestClient, other_client: TestClient, database: Database
) -> None:
    make_user(database, "admin@example.com", accounts.ADMIN)
    learner = make_user(database, "learner@example.com", accounts.LEARNER)
    log_in(client, "admin@example.com")
    log_in(other_client, "learner@example.com")
    assert other_client.get("/instructor").status_code == 403

    response = client.post(
        f"/admin/users/{learner.id}/role",
        data={"csrf_token": csrf(client, "/admin/users"), "role": "instructor"},
    )
    assert response.status_code == 200
    assert other_client.get("/instructor").status_code == 200  # at once, no new log-in
    assert 'href="/instructor"' in other_client.get("/").text

    log = client.get("/admin/audit").text
    assert "role.grant" in log and "learner@example.com" in log and "admin@example.com" in log

    admin = next(u for u in accounts.list_users(database.session()) if u.role == "admin")
    demote = client.post(
        f"/admin/users/{admin.id}/role",
        data={"csrf_token": csrf(client, "/admin/users"), "role": "learner"},
    )
    assert demote.status_code == 403
    bad_role = client.post(
        f"/admin/users/{learner.id}/role",
        data={"csrf_token": csrf(client, "/admin/users"), "role": "owner"},
    )
    assert bad_role.status_code == 422


def test_the_stats_page_maps_and_flags_a_question_the_strong_get_wrong(
    instructor: TestClient, db: Session
) -> None:
    from tests.test_stats import CHOICE, build_discrimination_case

    build_discrimination_case(db, strong_get_it_right=False)
    page = instructor.get(f"/instructor/patterns/{LESSON}/stats")
    assert page.status_code == 200
    assert "Item map" in page.text
    dot = re.search(
        rf'<circle class="dot dot-flagged"[^>]*><title>Why schedule the rate\? '
        rf"\({CHOICE}\): ([^<]*)</title>",
        page.text,
    )
    assert dot and dot.group(1) == "facility 0.30, discrimination -1.00"
    assert "Look at these first" in page.text and "discrimination -1.00" in page.text


# --- what the review of this workbench found -----------------------------------------------------


def test_an_upload_cannot_write_outside_its_folder(instructor: TestClient, tmp_path: Path) -> None:
    text = yaml.safe_dump(factories.choice_question("escaping")).encode()
    for pattern in (str(tmp_path / "escaped"), "../escaped", "lr-schedulers/../../escaped"):
        response = upload(instructor, "q.yaml", text, pattern=pattern)
        assert response.status_code == 422
        assert "there is no pattern" in response.text
    assert not (tmp_path / "escaped").exists()
    assert not list(Path("/tmp").glob("escaped*"))


def test_a_learner_is_graded_on_the_version_they_were_shown(
    instructor: TestClient, other_client: TestClient, db: Session
) -> None:
    from tests.conftest import SHOWN_AT_RE

    page = other_client.get(f"/patterns/{LESSON}/questions/{CHOICE_ID}").text
    shown_at, token = SHOWN_AT_RE.search(page), CSRF_RE.search(page)
    assert shown_at and token
    source = _current_source(instructor, CHOICE_ID)  # the right choice moves from A to B
    choices = yaml.safe_load(source)["choices"]
    reordered = yaml.safe_load(source) | {"choices": [choices[1], choices[0], *choices[2:]]}
    saved = editor_post(instructor, yaml.safe_dump(reordered), "save", question_id=CHOICE_ID)
    assert saved.status_code == 303

    answered = other_client.post(
        f"/patterns/{LESSON}/questions/{CHOICE_ID}/answer",
        data={"csrf_token": token.group(1), "answer": "0", "shown_at": shown_at.group(1)},
    )
    assert "Correct" in answered.text  # A was right on the page the learner saw
    attempt = db.scalar(select(Attempt).where(Attempt.question_id == CHOICE_ID))
    assert attempt is not None and attempt.question_version == 1 and attempt.correct


def test_a_save_over_someone_elses_newer_version_is_refused(
    instructor: TestClient, other_client: TestClient, database: Database, db: Session
) -> None:
    make_user(database, "colleague@example.com", accounts.INSTRUCTOR)
    log_in(other_client, "colleague@example.com")
    mine = _current_source(instructor, CHOICE_ID)
    theirs = mine.replace("prompt: ", "prompt: Their fix. ", 1)
    form = {"source": theirs, "action": "save", "base_version": "1"}
    url = f"/instructor/questions/{CHOICE_ID}/edit"
    saved = other_client.post(
        url, data={**form, "csrf_token": csrf(other_client, url)}, follow_redirects=False
    )
    assert saved.status_code == 303

    stale = mine.replace("prompt: ", "prompt: My change. ", 1)
    refused = instructor.post(
        url,
        data={
            "csrf_token": csrf(instructor, url),
            "source": stale,
            "action": "save",
            "base_version": "1",
        },
    )
    assert refused.status_code == 422
    assert "Someone saved version 2" in refused.text
    assert "My change." in _unescape(refused.text)  # the typed work is kept on the page
    assert 'name="base_version" value="1"' in refused.text
    db.rollback()
    row = db.get(QuestionRow, CHOICE_ID)
    assert row is not None and row.current_version == 2


def test_the_api_refuses_a_put_on_a_stale_base_version(
    api_token: str, other_client: TestClient
) -> None:
    headers = {"Authorization": f"Bearer {api_token}"}
    question = yaml.safe_load(QUESTIONS.joinpath(LESSON, "steplr-three-steps.yaml").read_text())
    question["prompt"] = "Changed once."
    url = f"/api/questions/{CHOICE_ID}"
    first = other_client.put(url, json={"question": question, "base_version": 1}, headers=headers)
    assert first.json()["version"] == 2
    question["prompt"] = "Changed from the old one."
    stale = other_client.put(url, json={"question": question, "base_version": 1}, headers=headers)
    assert stale.status_code == 409
    moved = other_client.put(url, json={"question": question, "pattern": "x"}, headers=headers)
    assert moved.status_code == 422 and moved.json()["field"] == "pattern"


def test_an_upload_never_overwrites_a_question_of_another_kind(
    instructor: TestClient, db: Session
) -> None:
    clash = factories.choice_question("lr-output-exponentiallr")
    response = upload(instructor, "clash.yaml", yaml.safe_dump(clash).encode(), pattern=LESSON)
    assert response.status_code == 422
    assert "is already a output question of pattern 'lr-schedulers'" in _unescape(response.text)

    gift = "::lr output exponentiallr::Which decays every step? {=ExponentialLR ~StepLR#No.}\n"
    response = upload(instructor, "moodle.gift", gift.encode(), pattern=LESSON)
    assert response.status_code == 200, response.text
    db.rollback()
    original = db.get(QuestionRow, "lr-output-exponentiallr")
    assert original is not None and original.current_version == 1
    assert db.get(QuestionRow, "lr-output-exponentiallr-2") is not None


def test_an_upload_keeps_the_order_of_the_pattern(instructor: TestClient, db: Session) -> None:
    before = {row.id: row.position for row in db.scalars(select(QuestionRow))}
    two_phase = yaml.safe_load(QUESTIONS.joinpath(LESSON, "two-phase.yaml").read_text())
    text = yaml.safe_dump(two_phase | {"prompt": "Again: " + two_phase["prompt"]})
    response = upload(instructor, "two-phase.yaml", text.encode(), pattern=LESSON)
    assert response.status_code == 200, response.text
    db.rollback()
    after = {row.id: row.position for row in db.scalars(select(QuestionRow))}
    assert after == before


def test_markdown_is_checked_on_upload_too(instructor: TestClient) -> None:
    bad = factories.choice_question("sneaky", hint="<script>alert(1)</script>")
    response = upload(instructor, "sneaky.yaml", yaml.safe_dump(bad).encode(), pattern=LESSON)
    assert response.status_code == 422
    assert "sneaky.yaml: hint: raw HTML" in _unescape(response.text)


@pytest.mark.slow
@pytest.mark.parametrize(
    "text", ["? [a]\n: 1\n", "a: " + "[" * 30_000 + "]" * 30_000 + "\n"], ids=["key", "deep"]
)
def test_hostile_yaml_is_a_clear_error_not_a_500(instructor: TestClient, text: str) -> None:
    preview = instructor.post(
        "/instructor/questions/preview",
        data={"csrf_token": csrf(instructor, "/instructor"), "source": text},
    )
    assert preview.status_code == 422
    assert "not valid YAML" in preview.text
    response = upload(instructor, "hostile.yaml", text.encode(), pattern=LESSON)
    assert response.status_code == 422
    assert "not valid YAML" in response.text


def test_a_gift_file_over_the_limit_is_refused_not_cut(instructor: TestClient) -> None:
    question = "::q::Pick {=a ~b#Not b.}\n\n"
    big = (question + "// " + "x" * 1000 + "\n") * 2200
    response = upload(instructor, "big.gift", big.encode(), pattern=LESSON)
    assert response.status_code == 422
    assert "larger than 2 MiB" in response.text


def test_retired_in_the_browser_stays_retired_when_its_file_changes(
    instructor: TestClient, database: Database, runs: Runs, tmp_path: Path
) -> None:
    import shutil

    retire(instructor, CHOICE_ID)
    bank = tmp_path / "bank"
    shutil.copytree(QUESTIONS, bank)
    path = bank / LESSON / "steplr-three-steps.yaml"
    path.write_text(path.read_text().replace("prompt: ", "prompt: Typo fixed. ", 1))
    with database.session() as session:
        report = import_bank(session, bank, runs=runs)
    assert report.kept_retired == [CHOICE_ID] and report.restored == []
    with database.session() as session:
        row = session.get(QuestionRow, CHOICE_ID)
        assert row is not None and row.retired_at is not None and row.current_version == 2


def test_a_pattern_folder_that_goes_and_comes_back(
    instructor: TestClient,
    other_client: TestClient,
    database: Database,
    runs: Runs,
    tmp_path: Path,
) -> None:
    assert editor_post(instructor, OUTPUT_QUESTION, "save").status_code == 303
    made_here = f"/patterns/{LESSON}/questions/steplr-variants-from-the-editor"
    empty = factories.write_bank(tmp_path / "other", [factories.choice_question()])
    with database.session() as session:
        gone = import_bank(session, empty, runs=runs)
    assert gone.patterns_retired == [LESSON]
    assert "steplr-variants-from-the-editor" not in gone.retired
    assert other_client.get(made_here).status_code == 404  # hidden with its pattern
    with database.session() as session:
        back = import_bank(session, QUESTIONS, runs=runs)
    assert CHOICE_ID in back.restored
    assert other_client.get(made_here).status_code == 200


def test_export_over_questions_gives_back_the_same_bytes(
    instructor: TestClient, tmp_path: Path
) -> None:
    exported = instructor.get(f"/instructor/export.zip?pattern={LESSON}")
    with zipfile.ZipFile(io.BytesIO(exported.content)) as archive:
        names = set(archive.namelist())
        for path in (QUESTIONS / LESSON).glob("*.yaml"):
            name = f"{LESSON}/{path.name}"
            assert name in names
            assert archive.read(name) == path.read_bytes(), name


def test_the_editor_keeps_comments_and_layout(instructor: TestClient) -> None:
    source = _current_source(instructor, CHOICE_ID)
    assert source == QUESTIONS.joinpath(LESSON, "steplr-three-steps.yaml").read_text()
    commented = source.replace("prompt: ", "# asked in week 2\nprompt: Now, ", 1)
    assert editor_post(instructor, commented, "save", question_id=CHOICE_ID).status_code == 303
    assert _current_source(instructor, CHOICE_ID) == commented


def test_the_audit_log_names_what_imports_changed(
    instructor: TestClient, database: Database, runs: Runs, tmp_path: Path, db: Session
) -> None:
    text = yaml.safe_dump(factories.choice_question("audited-upload")).encode()
    assert upload(instructor, "one.yaml", text, pattern=LESSON).status_code == 200
    bank = factories.write_bank(tmp_path, [factories.choice_question()])
    with database.session() as session:
        import_bank(session, bank, runs=runs, on_commit=cli_audit(bank))
    db.rollback()
    events = {e.subject: e for e in db.scalars(select(AuditEvent))}
    assert events["one.yaml"].detail["created"] == ["audited-upload"]
    by_cli = events[str(bank)]
    assert by_cli.actor_id is None and by_cli.detail["created"] == ["q-one"]


def test_tokens_end_with_the_role_and_never_open_admin_pages(
    api_token: str, client: TestClient, other_client: TestClient, database: Database
) -> None:
    headers = {"Authorization": f"Bearer {api_token}"}
    versions_url = f"/api/questions/{CHOICE_ID}/versions"
    assert other_client.get(versions_url, headers=headers).status_code == 200
    make_user(database, "admin@example.com", accounts.ADMIN)
    with database.session() as session:
        admin = session.scalar(select(User).where(User.email == "admin@example.com"))
        teacher = session.scalar(select(User).where(User.email == "teacher@example.com"))
        assert admin is not None and teacher is not None
        accounts.set_role(session, actor=admin, user_id=teacher.id, role="learner")
        accounts.set_role(session, actor=admin, user_id=teacher.id, role="instructor")
        _row, admin_token = accounts.create_api_token(session, user=admin, name="x")
    assert other_client.get(versions_url, headers=headers).status_code == 401
    admin_headers = {"Authorization": f"Bearer {admin_token}"}
    assert other_client.get("/admin/users", headers=admin_headers).status_code == 403


def test_validate_says_what_a_create_would_refuse(api_token: str, other_client: TestClient) -> None:
    headers = {"Authorization": f"Bearer {api_token}"}
    question = yaml.safe_load(QUESTIONS.joinpath(LESSON, "steplr-three-steps.yaml").read_text())
    body = other_client.post(
        "/api/questions/validate", json={"question": question, "pattern": "nope"}, headers=headers
    ).json()
    assert body["valid"] is False and body["exists"] is True
    assert {e["field"] for e in body["errors"]} == {"pattern", "id"}


# --- and what the second review found -------------------------------------------------------------


def test_the_api_grades_on_an_older_version_only_just_after_it_changed(
    instructor: TestClient, other_client: TestClient, db: Session
) -> None:
    source = _current_source(instructor, CHOICE_ID)
    changed = source.replace("prompt: ", "prompt: Now, ", 1)
    assert editor_post(instructor, changed, "save", question_id=CHOICE_ID).status_code == 303
    url = f"/api/questions/{CHOICE_ID}/attempts"
    recent = other_client.post(url, json={"answer": 0, "version": 1})
    assert recent.status_code == 201 and recent.json()["question_version"] == 1

    db.rollback()
    begin_write(db)
    v2 = db.get(QuestionVersion, (CHOICE_ID, 2))
    assert v2 is not None
    v2.created_at = v2.created_at - timedelta(days=2)
    db.commit()
    stale = other_client.post(url, json={"answer": 0, "version": 1})
    assert stale.status_code == 409 and stale.json()["field"] == "version"
    future = other_client.post(url, json={"answer": 0, "version": 9})
    assert future.status_code == 422
    huge = other_client.post(url, json={"answer": 0, "version": 2**64})
    assert huge.status_code == 422


def test_an_export_never_lets_two_questions_share_a_file(instructor: TestClient) -> None:
    text = yaml.safe_dump(factories.choice_question("purpose")).encode()
    assert upload(instructor, "purpose.yaml", text, pattern=LESSON).status_code == 200
    exported = instructor.get(f"/instructor/export.zip?pattern={LESSON}")
    with zipfile.ZipFile(io.BytesIO(exported.content)) as archive:
        ids = {
            yaml.safe_load(archive.read(name))["id"]: name
            for name in archive.namelist()
            if not name.endswith("pattern.yaml")
        }
    assert ids["lr-purpose"] == f"{LESSON}/purpose.yaml"
    assert ids["purpose"] == f"{LESSON}/purpose-2.yaml"


def test_a_browser_retirement_survives_its_file_leaving_and_coming_back(
    instructor: TestClient, database: Database, runs: Runs, tmp_path: Path
) -> None:
    import shutil

    retire(instructor, CHOICE_ID)
    bank = tmp_path / "bank"
    shutil.copytree(QUESTIONS, bank)
    (bank / LESSON / "steplr-three-steps.yaml").unlink()
    with database.session() as session:
        import_bank(session, bank, runs=runs)
    with database.session() as session:
        back = import_bank(session, QUESTIONS, runs=runs)
    assert CHOICE_ID not in back.restored and CHOICE_ID in back.kept_retired
    assert "still retired (bring back in the browser): lr-steplr-three-steps" in back.summary()


def test_a_comment_alone_is_saved_without_a_new_version(instructor: TestClient) -> None:
    source = _current_source(instructor, CHOICE_ID)
    commented = "# checked with torch 2.13\n" + source
    response = editor_post(instructor, commented, "save", question_id=CHOICE_ID)
    assert response.status_code == 200
    assert "no new version" in response.text
    assert _current_source(instructor, CHOICE_ID) == commented


def test_gift_only_ever_adds(instructor: TestClient, db: Session) -> None:
    for week in (1, 2):
        gift = f"::Q1::Week {week}: pick one {{=right ~wrong#It is not.}}\n"
        assert (
            upload(instructor, f"week{week}.gift", gift.encode(), pattern=LESSON).status_code == 200
        )
    db.rollback()
    first, second = db.get(QuestionRow, "q1"), db.get(QuestionRow, "q1-2")
    assert first is not None and first.current_version == 1 and second is not None


def test_a_token_cannot_mint_tokens(api_token: str, other_client: TestClient) -> None:
    headers = {"Authorization": f"Bearer {api_token}"}
    assert other_client.get("/instructor/tokens", headers=headers).status_code == 403


def test_restore_from_a_stale_versions_page_is_refused(instructor: TestClient) -> None:
    source = _current_source(instructor, CHOICE_ID)
    for change in ("First. ", "Second. "):
        edited = source.replace("prompt: ", f"prompt: {change}", 1)
        assert editor_post(instructor, edited, "save", question_id=CHOICE_ID).status_code == 303
    refused = instructor.post(
        f"/instructor/questions/{CHOICE_ID}/versions/1/restore",
        data={"csrf_token": csrf(instructor, "/instructor"), "base_version": "2"},
    )
    assert refused.status_code == 409
    assert "Someone saved version 3" in refused.text


def test_browser_work_in_a_vanished_folder_is_listed(
    instructor: TestClient, database: Database, runs: Runs, tmp_path: Path
) -> None:
    assert editor_post(instructor, OUTPUT_QUESTION, "save").status_code == 303
    renamed = tmp_path / "bank"
    import shutil

    shutil.copytree(QUESTIONS / LESSON, renamed / "lr-scheds")
    with database.session() as session:
        report = import_bank(session, renamed, runs=runs)
    assert report.orphaned == ["steplr-variants-from-the-editor"]
    page = instructor.get("/instructor").text
    assert "Hidden with their pattern" in page and "steplr-variants-from-the-editor" in page


# --- what a newcomer met (issue 14) -----------------------------------------------------------

TYPO_QUESTION = OUTPUT_QUESTION.replace("  print(scheduler", "  prnt(scheduler")


def test_a_variant_that_raises_fails_the_run_and_is_not_saved(
    instructor: TestClient, db: Session
) -> None:
    run = editor_post(instructor, TYPO_QUESTION, "run")
    assert run.status_code == 422
    assert 'badge-hard">refused' in run.text and ">passes<" not in run.text
    assert run.text.count('class="variant-problem"') == 4
    assert "raises NameError" in run.text

    saved = editor_post(instructor, TYPO_QUESTION, "save")
    assert saved.status_code == 422
    assert "<code>code</code>: all 4 variants: raises NameError at line 8 of the code" in saved.text
    assert "(`raises: NameError`)" in saved.text  # how to say it is meant
    assert db.get(QuestionRow, "steplr-variants-from-the-editor") is None


def _problems(html: str) -> list[tuple[str, str]]:
    """The problems listed under the editor: (the YAML line, the text)."""
    return re.findall(r'<li data-line="(\d*)">(.*?)</li>', html, re.S)


def test_a_run_error_is_said_once_on_the_line_of_the_code_where_it_happened(
    instructor: TestClient,
) -> None:
    """A newcomer's typo in the output starter: one problem for its 8 variants, under the
    line of the typo (not the `code: |` line), in the editor's problem list."""
    source = starters.starter_source("output").replace("  print(scheduler", "  prnt(scheduler")
    lines = source.splitlines()
    typo = next(number for number, line in enumerate(lines, 1) if "prnt(" in line)
    in_code = typo - lines.index("code: |") - 1
    run = editor_post(instructor, source, "run")
    assert run.status_code == 422
    ((line, text),) = _problems(run.text)
    assert int(line) == typo
    assert f"all 8 variants: raises NameError at line {in_code} of the code: name" in text
    assert run.text.count('class="variant-problem"') == 8
    assert run.text.count(f"error: NameError, line {in_code} — refused") == 8  # the table
    assert run.text.count("a variant that raises is refused") == 1


@pytest.mark.parametrize(
    ("source", "path", "within", "line"),
    [
        ("id: q\ncode: |\n  x = 1\n  prnt(x)\n", "code", 2, 4),
        ("id: q\ncode: |\n  x = 1\n", "code", 5, 2),  # past its end: the field's line
        ("id: q\ncode: prnt(1)\n", "code", 1, 2),
        ('id: q\ncode: "x = 1\\nprnt(x)"\n', "code", 2, 2),  # escaped: the field's line
        ("id: q\nself_tests:\n  - code: |\n      a\n      b\n", "self_tests.0.code", 2, 5),
        ("id: q\nreference: |-\n\n  a\n", "reference", 2, 4),
        ("id: q\n", "code", 3, 1),  # no such field: the nearest enclosing one's
    ],
)
def test_a_line_of_a_field_s_code_is_found_in_the_yaml(
    source: str, path: str, within: int, line: int
) -> None:
    assert editor.line_of(source, path, within=within) == line


def test_an_exception_is_the_key_only_when_the_question_says_so(
    instructor: TestClient, db: Session
) -> None:
    meant = TYPO_QUESTION + "raises: NameError\n"
    saved = editor_post(instructor, meant, "save")
    assert saved.status_code == 303, saved.text

    other = meant.replace("raises: NameError", "raises: ValueError").replace(
        "id: steplr-variants-from-the-editor", "id: raises-another-exception"
    )
    refused = editor_post(instructor, other, "save")
    assert refused.status_code == 422
    assert "raises NameError, not the ValueError that `raises` names" in refused.text

    never = (
        OUTPUT_QUESTION.replace("id: steplr-variants-from-the-editor", "id: never-raises")
        + "raises: ValueError\n"
    )
    refused = editor_post(instructor, never, "save")
    assert refused.status_code == 422
    assert "<code>raises</code>: no variant raises ValueError" in refused.text
    assert db.get(QuestionRow, "never-raises") is None


def _text(html: str) -> str:
    return " ".join(_unescape(re.sub(r"<[^>]+>", " ", html)).split())


@pytest.mark.parametrize("kind", starters.STARTER_KINDS)
def test_a_starter_s_prompt_does_not_repeat_what_the_answer_box_asks(
    instructor: TestClient, kind: str
) -> None:
    """The answer box has a fixed label ("What does this code print?", "Choose one answer"):
    a learner reads a prompt that says it again twice."""
    page = instructor.get(f"/instructor/questions/new?kind={kind}").text
    prompt = re.search(r'<div class="prompt">(.*?)</div>', page, re.S)
    label = r'<(?:label for="answer"|p) class="answer-label">(.*?)</(?:label|p)>'
    labels = re.findall(rf"{label}|<legend>(.*?)</legend>", page, re.S)
    assert prompt and labels
    asked = [
        part.strip().lower()
        for label in labels
        for part in re.split(r"[.?!:;—]", _text(" ".join(label)))
        if len(part.split()) >= 3
    ]
    assert asked, labels
    said = _text(prompt.group(1)).lower()
    assert not [part for part in asked if part in said], said


def test_a_version_from_before_the_raises_rule_is_edited_not_restored(
    instructor: TestClient, db: Session
) -> None:
    """A version saved before an exception had to be named (`raises`) fails today's run: a
    restore, which saves it unchanged, says to edit it and add `raises`, and links to the
    editor with that version's content."""
    qid = "steplr-variants-from-the-editor"
    assert editor_post(instructor, OUTPUT_QUESTION, "save").status_code == 303  # v1
    begin_write(db)  # v2, as the rule found it: an exception for its key, unnamed
    row = db.get(QuestionRow, qid)
    assert row is not None
    old = editor.parse_source(TYPO_QUESTION)
    add_version(db, row, old, source="editor", author_id=None, source_text=TYPO_QUESTION)
    db.commit()
    assert editor_post(instructor, OUTPUT_QUESTION, "save", question_id=qid).status_code == 303

    refused = instructor.post(
        f"/instructor/questions/{qid}/versions/2/restore",
        data={"csrf_token": csrf(instructor, "/instructor"), "base_version": "3"},
    )
    assert refused.status_code == 422
    assert refused.template.name == "instructor/versions.html"  # type: ignore[attr-defined]
    text = _unescape(refused.text)
    assert "Version 2 of 'steplr-variants-from-the-editor' cannot be restored as it is" in text
    assert "edit it and add `raises: NameError`" in text
    assert "<code>code</code>: all 4 variants: raises NameError" in text
    edit_url = f"/instructor/questions/{qid}/edit?version=2"
    assert f'href="{edit_url}"' in text
    db.expire_all()  # a fresh read
    row = db.get(QuestionRow, qid)
    assert row is not None and row.current_version == 3  # nothing saved

    page = instructor.get(edit_url)
    assert page.status_code == 200
    assert "prnt(scheduler" in page.text and "This is the content of version 2" in page.text
    assert 'name="base_version" value="3"' in page.text
    fixed = TYPO_QUESTION + "raises: NameError\n"
    data = {"csrf_token": csrf(instructor, edit_url), "source": fixed, "action": "save"}
    saved = instructor.post(f"/instructor/questions/{qid}/edit", data={**data, "base_version": "3"})
    assert saved.status_code == 200 and "Saved as version 4" in saved.text
    assert instructor.get(f"/instructor/questions/{qid}/edit?version=9").status_code == 404


def test_a_restore_that_met_a_busy_sandbox_says_try_again_not_edit(
    instructor: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that did not finish (a time-out may be load) is not the version's fault: the
    page says to try again (503 + Retry-After) and offers no edit."""
    busy = RunProblem("code", "took too long", transient=True)

    def restore(*args: object, **kwargs: object) -> None:
        raise versions.RestoreRefused(CHOICE_ID, 1, [busy])

    monkeypatch.setattr(versions, "restore", restore)
    page = instructor.post(
        f"/instructor/questions/{CHOICE_ID}/versions/1/restore",
        data={"csrf_token": csrf(instructor, "/instructor"), "base_version": "1"},
    )
    assert page.status_code == 503 and page.headers["Retry-After"] == "5"
    text = _unescape(page.text)
    assert "could not be checked just now" in text and "Try the restore again" in text
    assert "?version=1" not in text  # no "Edit version 1": nothing to fix
    deterministic = versions.RestoreRefused(CHOICE_ID, 1, [RunProblem("code", "raises X")])
    assert not deterministic.retry and "cannot be restored as it is" in deterministic.message


def test_the_api_refuses_a_variant_that_raises(api_token: str, other_client: TestClient) -> None:
    headers = {"Authorization": f"Bearer {api_token}"}
    question = yaml.safe_load(TYPO_QUESTION)
    checked = other_client.post(
        "/api/questions/validate", json={"question": question}, headers=headers
    ).json()
    assert checked["valid"] is False
    assert {v["status"] for v in checked["variants"]} == {"error"}
    assert all("NameError" in (v["problem"] or "") for v in checked["variants"])
    assert checked["errors"][0]["field"] == "code"
    created = other_client.post(
        "/api/questions", json={"question": question, "pattern": LESSON}, headers=headers
    )
    assert created.status_code == 422
    question["raises"] = "NameError"
    created = other_client.post(
        "/api/questions", json={"question": question, "pattern": LESSON}, headers=headers
    )
    assert created.status_code == 201, created.text


def test_questions_typed_in_a_browser_export_with_unix_line_endings(
    instructor: TestClient, api_token: str, other_client: TestClient, db: Session
) -> None:
    """Browsers send a textarea's lines joined by CRLF; an API client may send them too."""
    typed = starters.starter_source("choice").replace("\n", "\r\n")
    assert "\r\n" in typed
    saved = editor_post(instructor, typed, "save")
    assert saved.status_code == 303, saved.text
    version = db.get(QuestionVersion, ("new-choice-question", 1))
    assert version is not None and version.source_text == starters.starter_source("choice")
    again = editor_post(instructor, typed, "save", question_id="new-choice-question")
    assert "no new version" in again.text

    question = factories.choice_question("sent-with-crlf", prompt="Which one?\r\nPick **one**.")
    headers = {"Authorization": f"Bearer {api_token}"}
    created = other_client.post(
        "/api/questions", json={"question": question, "pattern": LESSON}, headers=headers
    )
    assert created.status_code == 201, created.text
    db.rollback()  # a fresh read
    stored = db.get(QuestionVersion, ("sent-with-crlf", 1))
    assert stored is not None and stored.content["prompt"] == "Which one?\nPick **one**."

    exported = instructor.get(f"/instructor/export.zip?pattern={LESSON}")
    with zipfile.ZipFile(io.BytesIO(exported.content)) as archive:
        names = archive.namelist()
        assert f"{LESSON}/new-choice-question.yaml" in names
        assert f"{LESSON}/sent-with-crlf.yaml" in names
        for name in names:
            assert b"\r" not in archive.read(name), name


def test_the_editor_keeps_the_source_with_unix_line_endings_from_where_it_enters(
    db: Session,
) -> None:
    """Preview is where the editor's text enters (Run and Save go through it): the outcome
    carries the text as it is checked and stored."""
    typed = starters.starter_source("output").replace("\n", "\r\n")
    outcome = editor.preview(db, source=typed, pattern_slug=LESSON, editing=None)
    assert outcome.question is not None and not outcome.errors
    assert outcome.source == starters.starter_source("output")
    broken = editor.preview(db, source="id: [\r\n", pattern_slug=LESSON, editing=None)
    assert broken.errors and broken.source == "id: [\n"


@pytest.mark.parametrize("action", ["preview", "run", "save"])
def test_an_empty_editor_is_a_form_error_beside_the_source(
    instructor: TestClient, db: Session, action: str
) -> None:
    for question_id in (None, CHOICE_ID):
        response = editor_post(instructor, "", action, question_id=question_id)
        assert response.status_code == 422
        assert response.template.name == "instructor/editor.html"  # type: ignore[attr-defined]
        assert "<code>source</code>: write the question" in response.text
        assert 'aria-invalid="true"' in response.text  # on the textarea
        assert 'name="csrf_token"' in response.text and 'value="save"' in response.text
    row = db.get(QuestionRow, CHOICE_ID)
    assert row is not None and row.current_version == 1
    fragment = instructor.post(
        "/instructor/questions/preview",
        data={"csrf_token": csrf(instructor, "/instructor"), "source": "", "pattern": LESSON},
    )
    assert fragment.status_code == 422
    assert "<code>source</code>: write the question" in fragment.text


DIFF_LINE_RE = re.compile(r'<span class="diff-(add|remove)">(.*?)</span>')


def _diff_lines(client: TestClient, question_id: str, old: int, new: int) -> tuple[str, list]:
    page = client.get(f"/instructor/questions/{question_id}/versions?old={old}&new={new}")
    assert page.status_code == 200
    return page.text, [(kind, _unescape(text)) for kind, text in DIFF_LINE_RE.findall(page.text)]


def test_the_versions_diff_shows_what_the_author_typed(
    instructor: TestClient, api_token: str, other_client: TestClient
) -> None:
    source = _current_source(instructor, CHOICE_ID)
    edited = "# reviewed in week 3\n" + source.replace("prompt: ", "prompt: Think twice. ", 1)
    assert editor_post(instructor, edited, "save", question_id=CHOICE_ID).status_code == 303
    page, lines = _diff_lines(instructor, CHOICE_ID, 1, 2)
    prompt = next(line for line in source.splitlines() if line.startswith("prompt: "))
    assert lines == [
        ("add", "+# reviewed in week 3"),
        ("remove", f"-{prompt}"),
        ("add", "+" + prompt.replace("prompt: ", "prompt: Think twice. ")),
    ]
    assert "came without YAML as typed" not in page

    # A version that came as JSON has no text as typed: both sides are compared as stored.
    question = yaml.safe_load(edited)
    question["hint"] = "Count the calls."
    headers = {"Authorization": f"Bearer {api_token}"}
    sent = other_client.put(
        f"/api/questions/{CHOICE_ID}", json={"question": question}, headers=headers
    )
    assert sent.json()["version"] == 3
    page, lines = _diff_lines(instructor, CHOICE_ID, 2, 3)
    assert [kind for kind, _ in lines] == ["remove", "add"]
    assert lines[1] == ("add", "+hint: Count the calls.")
    assert "Version 3 came without YAML as typed" in page


@pytest.mark.parametrize(
    "query", ["old=1&new=2147483648", "old=2147483648&new=1", "saved=2147483648"]
)
def test_a_version_number_past_what_a_row_holds_is_refused_in_words(
    instructor: TestClient, query: str
) -> None:
    path = "versions" if "old" in query else "edit"
    page = instructor.get(f"/instructor/questions/{CHOICE_ID}/{path}?{query}")
    assert page.status_code == 422  # on PostgreSQL this reached the database: a 500
    assert "must be at most 2147483647" in page.text
