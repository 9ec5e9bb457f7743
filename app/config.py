"""Settings: one typed object, read from TRACEWISE_* environment variables when built."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SECRET_KEY_FILE = "secret_key"
SECRET_KEY_BYTES = 32  # 256 bits, as itsdangerous recommends for HMAC-SHA256 signing


class Settings(BaseSettings):
    """Everything that can differ between one Tracewise installation and another."""

    model_config = SettingsConfigDict(env_prefix="TRACEWISE_", extra="forbid")

    var_dir: Path = Field(
        default=Path("var"),
        description="Directory for the SQLite database, the generated secret key and caches.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the database; default: a SQLite file under var_dir. "
        "PostgreSQL: postgresql://user:password@host/name (psycopg 3 is the driver).",
    )
    host: str = Field(default="127.0.0.1", description="Address `serve` binds to.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `serve` listens on.")
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Worker processes `serve` runs, sharing its port. Each has its own "
        "sandbox runner (about 330 MiB) and uid range. Python runs one thread at a time per "
        "process: a second worker lets the web side use a second core.",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default=["localhost", "127.0.0.1", "[::1]"],
        description="Host names the server answers to, comma-separated (`*.example.edu` "
        "matches subdomains, `*` anything). A request for any other name is refused with "
        "400: a page on another site cannot reach this server by renaming itself (DNS "
        "rebinding). Add the server's public name when it is served beyond this machine.",
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description="Addresses of the proxies (load balancers) whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed, comma-separated: a request through one of them is "
        "taken to come from the client the proxy saw, as the per-address limits need. Add "
        "a balancer on another machine; `*` only when nothing else can reach the server.",
    )
    max_requests: int = Field(
        default=8,
        ge=2,
        le=1000,
        description="Requests served at once. Each may hold one database connection and one "
        "worker thread, so the connection pool has this size. Python runs one thread at a "
        "time: more than a few only contend (measured: 4 → 116 req/s, 32 → 96 req/s), and a "
        "request waiting for the sandbox lends its place meanwhile. On PostgreSQL keep "
        "(this + 4) × workers × instances under the server's `max_connections`.",
    )
    max_waiting_requests: int = Field(
        default=2000,
        ge=0,
        description="Requests that may wait for one of `max_requests`; past that a request "
        "is answered 503 with Retry-After at once.",
    )
    request_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="The longest a request waits — to be served, for the database's write "
        "lock, for a sandbox slot — before it is answered 503 with Retry-After. Code then "
        "runs for at most `sandbox_timeout_s`.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Key that signs cookies and form tokens. When unset, one is generated once "
        "and kept in var_dir/secret_key (mode 0600).",
    )
    https_only_cookies: bool = Field(
        default=False,
        description="Mark cookies Secure; turn on when the app is served over HTTPS.",
    )
    session_max_age_days: int = Field(
        default=365, ge=1, description="How long the session cookie (guest or account) lasts."
    )
    auth_window_minutes: int = Field(
        default=15, ge=1, description="The window the two limits below count over."
    )
    auth_attempts_per_ip: int = Field(
        default=200,
        ge=1,
        description="Log-in and sign-up attempts one client address may make per window. A "
        "class shares one address (a campus NAT): this is for a whole class signing in at "
        "once; the per-account limit below is what stops password guessing.",
    )
    guests_per_ip_per_hour: int = Field(
        default=1000,
        ge=1,
        description="New guest learners one client address may start per hour (a class "
        "shares one). Each guest has its own fair share of the sandbox, so this bounds the "
        "shares one address can take; a guest starts at its first answer, hint or run.",
    )
    login_failures_per_account: int = Field(
        default=5,
        ge=1,
        description="Failed log-ins one account may take per window before it must wait.",
    )
    sandbox_mode: Literal["strict", "trusted", "off"] = Field(
        default="strict",
        description="How code runs: `strict` locks every run down (Linux, root: own uid per "
        "slot, Landlock, seccomp, namespaces); `trusted` only limits time, memory and output — "
        "for a trusted local set-up where all code is your own; `off` runs nothing (output "
        "questions then use only keys cached at import).",
    )
    sandbox_slots: int = Field(
        default=4, ge=1, le=64, description="Runs that may execute at the same time."
    )
    sandbox_queue: int = Field(
        default=64,
        ge=1,
        le=10_000,
        description="Learners whose run may wait for a slot at once; when it is full, the "
        "heaviest user's run makes room for a lighter one's, or the newcomer is answered 503. "
        "A waiting run holds a worker thread, not one of `max_requests`.",
    )
    sandbox_budget_s: float = Field(
        default=30.0,
        gt=0,
        description="Seconds of running time one learner may use per minute; past that their "
        "runs are refused (429) until enough of the minute has passed.",
    )
    sandbox_lock_dir: Path = Field(
        default=Path("/run/tracewise"),
        description="Host-wide directory of the lock files that claim sandbox uids: every "
        "server on a host must use the same one.",
    )
    sandbox_timeout_s: float = Field(
        default=5.0, gt=0, le=60, description="Wall-clock limit of one run, in seconds."
    )
    sandbox_memory_mb: int = Field(
        default=512, ge=64, description="Memory one run may allocate, in MiB."
    )
    sandbox_uid_base: int | None = Field(
        default=None,
        ge=1000,
        description="Slot i runs as uid and gid uid_base + i (strict mode). Unset: the first "
        "free range from 61000 up, claimed for this host while the server runs; set: exactly "
        "this range, and the server refuses to start if another holds it.",
    )
    sandbox_cache: bool = Field(
        default=True,
        description="Reuse the stored run of the same code on the same torch version instead of "
        "running it again (keys are computed at import either way).",
    )

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [host.strip() for host in value.split(",") if host.strip()]
        return value

    @field_validator("database_url")
    @classmethod
    def _psycopg_for_postgresql(cls, value: str | None) -> str | None:
        """postgresql:// (and Heroku-style postgres://) mean our driver, psycopg 3, not
        SQLAlchemy's default psycopg2, which is not installed."""
        for bare in ("postgresql://", "postgres://"):
            if value is not None and value.startswith(bare):
                return "postgresql+psycopg://" + value.removeprefix(bare)
        return value

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to var_dir/tracewise.sqlite3."""
        return self.database_url or f"sqlite:///{(self.var_dir / 'tracewise.sqlite3').resolve()}"

    def signing_key(self) -> str:
        """The secret key: the configured one, or the one generated under var_dir."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        return load_or_create_secret(self.var_dir / SECRET_KEY_FILE)


def load_or_create_secret(path: Path) -> str:
    """Read the secret at `path`, creating it (mode 0600, never overwritten) when missing.
    It appears whole or not at all — written aside, then linked into place — so processes
    starting at once all read the one that won."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        secret = secrets.token_hex(SECRET_KEY_BYTES)
        aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secret + "\n")
            with contextlib.suppress(FileExistsError):  # another process's came first
                os.link(aside, path)
        finally:
            aside.unlink()
    secret = path.read_text().strip()
    if not secret:
        raise RuntimeError(f"{path} is empty; delete it to generate a new secret key")
    return secret
