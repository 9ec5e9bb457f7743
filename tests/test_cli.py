"""The command line: check, import and export questions, migrate."""

from __future__ import annotations

from pathlib import Path

import pytest
import uvicorn
from typer.testing import CliRunner

from app.bank.files import read_bank
from app.cli import cli
from app.db import Database
from app.models import QuestionVersion
from tests.conftest import QUESTIONS
from tests.databases import Databases
from tests.factories import choice_question, write_bank

runner = CliRunner()


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_db: str) -> None:
    monkeypatch.setenv("TRACEWISE_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("TRACEWISE_DATABASE_URL", empty_db)


def test_serve_believes_forwarded_addresses_from_its_proxies_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRACEWISE_SANDBOX_MODE", "off")
    monkeypatch.setenv("TRACEWISE_FORWARDED_ALLOW_IPS", "10.0.0.5,10.0.0.6")
    served: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.update(options))
    result = runner.invoke(cli, ["serve", "--port", "8765"])
    assert result.exit_code == 0, result.output
    assert served["forwarded_allow_ips"] == "10.0.0.5,10.0.0.6"


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_refuses_an_unmigrated_database_in_a_line_and_a_failing_status(
    monkeypatch: pytest.MonkeyPatch, databases: Databases, workers: str
) -> None:
    url = databases.create()
    monkeypatch.setenv("TRACEWISE_DATABASE_URL", url)
    monkeypatch.setenv("TRACEWISE_SANDBOX_MODE", "off")
    served: list[object] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.append(app))
    try:
        result = runner.invoke(cli, ["serve", "--workers", workers])
    finally:
        databases.drop(url)
    assert result.exit_code == 1  # uvicorn's workers that cannot start would exit 0
    assert "run `python -m app migrate` first" in result.output
    assert served == []


def test_only_a_key_set_by_the_administrator_can_be_adopted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TRACEWISE_SECRET_KEY", raising=False)
    refused = runner.invoke(cli, ["adopt-secret-key"])
    assert refused.exit_code == 1
    assert "Set TRACEWISE_SECRET_KEY to the new key first" in refused.output
    monkeypatch.setenv("TRACEWISE_SECRET_KEY", "the course's key")
    adopted = runner.invoke(cli, ["adopt-secret-key"])
    assert adopted.exit_code == 0, adopted.output


def test_an_import_that_needs_code_run_where_running_is_off_says_so_in_a_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRACEWISE_SANDBOX_MODE", "off")
    result = runner.invoke(cli, ["import-questions", str(QUESTIONS)])
    assert result.exit_code == 1
    assert "the questions could not be run: Running code is switched off" in result.output
    assert "Traceback" not in result.output and "nothing was changed" in result.output


def test_check_questions_ok() -> None:
    result = runner.invoke(cli, ["check-questions", str(QUESTIONS)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: 1 pattern, ")


def test_check_questions_names_file_and_field(tmp_path: Path) -> None:
    write_bank(tmp_path, [choice_question(difficulty="impossible")])
    result = runner.invoke(cli, ["check-questions", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{tmp_path}/test-pattern/q-one.yaml: difficulty: must be one of easy" in result.output
    assert "nothing was changed" in result.output


@pytest.mark.slow
def test_migrate_import_export_round_trip(tmp_path: Path) -> None:
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    imported = runner.invoke(cli, ["import-questions", str(QUESTIONS)])
    assert imported.exit_code == 0, imported.output
    assert "0 unchanged" in imported.output
    again = runner.invoke(cli, ["import-questions", str(QUESTIONS)])
    assert "0 new, 0 new versions" in again.output

    out = tmp_path / "out"
    exported = runner.invoke(cli, ["export-questions", str(out), "--pattern", "lr-schedulers"])
    assert exported.exit_code == 0, exported.output

    def questions(root: Path) -> dict[str, object]:
        return {s.question.id: s.question for s in read_bank(root)[0].questions}

    assert questions(out) == questions(QUESTIONS)


def test_a_broken_import_fails_with_exit_code_1(tmp_path: Path) -> None:
    runner.invoke(cli, ["migrate"])
    write_bank(tmp_path / "bank", [choice_question(kind="essay")])
    result = runner.invoke(cli, ["import-questions", str(tmp_path / "bank")])
    assert result.exit_code == 1
    assert "kind" in result.output


def test_export_schema_writes_json(tmp_path: Path) -> None:
    target = tmp_path / "schema.json"
    assert runner.invoke(cli, ["export-schema", str(target)]).exit_code == 0
    assert '"PatternFile"' in target.read_text()


def test_export_writes_unix_line_endings_whatever_was_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_db: str
) -> None:
    """A version typed in a browser before line endings were normalised on the way in holds
    CRLF: the export still writes `\\n`, as the README promises."""
    monkeypatch.setenv("TRACEWISE_SANDBOX_MODE", "off")  # choice questions run nothing
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    write_bank(tmp_path / "bank", [choice_question()])
    imported = runner.invoke(cli, ["import-questions", str(tmp_path / "bank")])
    assert imported.exit_code == 0, imported.output
    database = Database(empty_db)
    try:
        with database.session() as session:
            version = session.get(QuestionVersion, ("q-one", 1))
            assert version is not None and version.source_text
            version.source_text = version.source_text.replace("\n", "\r\n")
            session.commit()
    finally:
        database.dispose()

    exported = runner.invoke(cli, ["export-questions", str(tmp_path / "out")])
    assert exported.exit_code == 0, exported.output
    written = (tmp_path / "out" / "test-pattern" / "q-one.yaml").read_bytes()
    assert b"\r" not in written and written.count(b"\n") > 5
