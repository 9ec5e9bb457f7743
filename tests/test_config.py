"""Settings: environment variables, the secret key generated once with mode 0600, and the
one every instance of a deployment must share."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from app.cli import cli
from app.config import Settings, load_or_create_secret
from app.instances import SchemaNotCurrent, SecretKeyMismatch
from app.main import create_app
from tests.databases import Databases


def test_secret_is_generated_once_with_private_mode(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    first = settings.signing_key()
    path = tmp_path / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 64
    assert Settings(var_dir=tmp_path).signing_key() == first


def test_processes_starting_at_once_read_one_generated_secret(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        secrets = set(pool.map(lambda _: load_or_create_secret(tmp_path / "secret_key"), range(8)))
    assert len(secrets) == 1
    assert [path.name for path in tmp_path.iterdir()] == ["secret_key"]  # nothing left aside


def test_configured_secret_wins_and_writes_nothing(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, secret_key="from-the-environment")  # type: ignore[arg-type]
    assert settings.signing_key() == "from-the-environment"
    assert not (tmp_path / "secret_key").exists()


def test_empty_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("")
    with pytest.raises(RuntimeError, match="empty"):
        load_or_create_secret(tmp_path / "secret_key")


def test_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRACEWISE_PORT", "9123")
    monkeypatch.setenv("TRACEWISE_HOST", "0.0.0.0")
    monkeypatch.setenv("TRACEWISE_VAR_DIR", str(tmp_path))
    settings = Settings()
    assert (settings.host, settings.port) == ("0.0.0.0", 9123)
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'tracewise.sqlite3'}"


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgresql://ada:pw@db.example.edu/tw", "postgresql+psycopg://ada:pw@db.example.edu/tw"),
        ("postgres://ada@db/tw", "postgresql+psycopg://ada@db/tw"),
        ("postgresql+psycopg://ada@db/tw", "postgresql+psycopg://ada@db/tw"),
        ("sqlite:////srv/tw.sqlite3", "sqlite:////srv/tw.sqlite3"),
    ],
)
def test_a_postgresql_url_uses_the_installed_driver(given: str, used: str) -> None:
    assert Settings(database_url=given).resolved_database_url == used


def test_every_setting_is_described() -> None:
    missing = [name for name, field in Settings.model_fields.items() if not field.description]
    assert missing == []


def _instance(settings: Settings, var_dir: Path, secret: str | None = None) -> TestClient:
    """An instance of the app on the test's database, with its own var_dir (machine)."""
    key = SecretStr(secret) if secret else None
    own = settings.model_copy(update={"var_dir": var_dir, "secret_key": key, "sandbox_mode": "off"})
    return TestClient(create_app(own))


def test_instances_on_one_database_must_share_the_secret_key(
    settings: Settings, tmp_path: Path
) -> None:
    with _instance(settings, tmp_path / "first"):
        pass  # the first instance records its generated key
    with _instance(settings, tmp_path / "first"):
        pass  # the same machine's key again: fine
    another_machine = _instance(settings, tmp_path / "second")  # a key of its own
    with pytest.raises(
        SecretKeyMismatch, match="give this one the TRACEWISE_SECRET_KEY the others have"
    ):
        another_machine.__enter__()


def test_a_changed_key_is_refused_until_adopted(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _instance(settings, tmp_path / "first", secret="the first key"):
        pass
    changed = _instance(settings, tmp_path / "second", secret="another key")
    with pytest.raises(SecretKeyMismatch, match="adopt-secret-key"):
        changed.__enter__()
    monkeypatch.setenv("TRACEWISE_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("TRACEWISE_SECRET_KEY", "another key")
    adopted = CliRunner().invoke(cli, ["adopt-secret-key"])
    assert adopted.exit_code == 0, adopted.output
    with _instance(settings, tmp_path / "second", secret="another key"):
        pass  # the adopted key starts
    old = _instance(settings, tmp_path / "first", secret="the first key")
    with pytest.raises(SecretKeyMismatch):  # and the old one no longer does
        old.__enter__()


def test_an_unmigrated_database_is_refused_with_what_to_do(
    settings: Settings, databases: Databases
) -> None:
    url = databases.create()
    try:
        unmigrated = settings.model_copy(update={"database_url": url, "sandbox_mode": "off"})
        with pytest.raises(SchemaNotCurrent, match="python -m app migrate"):
            TestClient(create_app(unmigrated)).__enter__()
    finally:
        databases.drop(url)
