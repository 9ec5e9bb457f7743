"""Settings: environment variables, and the secret key generated once with mode 0600."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from app.config import Settings, load_or_create_secret


def test_secret_is_generated_once_with_private_mode(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    first = settings.signing_key()
    path = tmp_path / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 64
    assert Settings(var_dir=tmp_path).signing_key() == first


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


def test_every_setting_is_described() -> None:
    missing = [name for name, field in Settings.model_fields.items() if not field.description]
    assert missing == []
