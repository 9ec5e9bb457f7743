"""The command line: serve, migrate, and move questions between files and the database."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from app import accounts, audit
from app.bank import schema
from app.bank.files import BankError, read_bank
from app.bank.store import ImportReport, export_bank, import_bank
from app.config import Settings
from app.db import Database, alembic_config, migrate
from app.errors import Invalid
from app.runs import QuestionRuns
from app.sandbox.client import from_settings as sandbox_from_settings
from app.sandbox.protocol import Job

cli = typer.Typer(
    help="Tracewise: learn PyTorch patterns by tracing real runs.",
    no_args_is_help=True,
    add_completion=False,
)

SCHEMA_PATH = Path("questions/schema.json")
PathArg = Annotated[Path, typer.Argument(help="A questions/ folder, or one pattern's folder.")]


def _fail(errors: list[str]) -> typer.Exit:
    for line in errors:
        typer.echo(line, err=True)
    typer.echo(f"{len(errors)} error(s); nothing was changed.", err=True)
    return typer.Exit(code=1)


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (TRACEWISE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (TRACEWISE_PORT).")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (TRACEWISE_WORKERS).")
    ] = None,
    questions: Annotated[
        Path | None,
        typer.Option(help="Migrate the database and import this questions/ folder first."),
    ] = None,
) -> None:
    """Serve the app with uvicorn: one process, or several sharing the port (each with its
    own sandbox runner and uid range; uvicorn starts a worker again if one dies). With
    --questions, `migrate` and `import-questions` first, in this one process (faster)."""
    import uvicorn

    from app.main import create_app

    settings = Settings()
    workers = workers or settings.workers
    host, port = host or settings.host, port or settings.port
    if workers > 1:
        if settings.sandbox_uid_base is not None and settings.sandbox_mode == "strict":
            raise _fail(
                [
                    "TRACEWISE_SANDBOX_UID_BASE names one range of sandbox uids, and each of "
                    f"the {workers} workers needs its own: leave it unset (each worker then "
                    "claims a free range), or run one worker per base."
                ]
            )
        if questions is not None:
            migrate(settings.resolved_database_url)
            _import(settings, questions)
        settings.signing_key()  # generated here once, not by workers racing to create it
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            forwarded_allow_ips=settings.forwarded_allow_ips,
        )
        return
    app = create_app(settings)
    if questions is not None:
        if app.state.sandbox is not None:
            app.state.sandbox.start()  # warming up while the database is brought up to date
        migrate(settings.resolved_database_url)
        _import(settings, questions, runs=app.state.runs)
    uvicorn.run(app, host=host, port=port, forwarded_allow_ips=settings.forwarded_allow_ips)


@cli.command("migrate")
def migrate_command() -> None:
    """Create or upgrade the database schema (Alembic migrations)."""
    url = Settings().resolved_database_url
    migrate(url)
    typer.echo(f"Database is at the latest schema: {url}")


@cli.command("adopt-secret-key")
def adopt_secret_key_command() -> None:
    """Make this environment's secret key the one every instance on the database must use
    (after changing it on purpose: instances with the old key then refuse to start)."""
    from app.instances import adopt_secret_key

    settings = Settings()
    database = Database(settings.resolved_database_url)
    try:
        with database.session() as session:
            adopt_secret_key(session, settings)
    finally:
        database.dispose()
    typer.echo("Every instance on this database must now use this secret key.")


@cli.command("make-migration")
def make_migration(
    message: Annotated[str, typer.Argument(help="What the migration does.")],
) -> None:
    """Write a new migration from the difference between models and database (developers)."""
    from alembic import command

    command.revision(alembic_config(Settings().resolved_database_url), message, autogenerate=True)


@cli.command("check-questions")
def check_questions(path: PathArg) -> None:
    """Validate question files without touching the database."""
    try:
        patterns = read_bank(path)
    except BankError as exc:
        raise _fail(exc.errors) from None
    count = sum(len(pattern.questions) for pattern in patterns)
    typer.echo(f"OK: {len(patterns)} pattern(s), {count} question(s).")


@contextmanager
def _question_runs(settings: Settings, given: QuestionRuns | None = None) -> Iterator[QuestionRuns]:
    """A sandbox for the length of a command (output questions are checked by running them);
    it starts only if something has to run. `given`: runs to use instead (the server's)."""
    if given is not None:
        yield given
        return
    sandbox = None if settings.sandbox_mode == "off" else sandbox_from_settings(settings)
    try:
        yield QuestionRuns(
            sandbox, use_cache=settings.sandbox_cache, timeout_s=settings.sandbox_timeout_s
        )
    finally:
        if sandbox is not None:
            sandbox.close()


def _audit_import(path: Path) -> Callable[[Session, ImportReport], None]:
    """An import that changed something goes into the audit log, by the command line."""

    def record(session: Session, report: ImportReport) -> None:
        if report.changed:
            audit.record(
                session,
                actor_id=None,
                action="questions.import",
                subject=str(path),
                detail=report.changes(),
            )

    return record


@cli.command("import-questions")
def import_questions(path: PathArg) -> None:
    """Validate and import question files, all or nothing; changed questions get a new version.

    Output questions are run, every variant, in the sandbox; their keys come from those runs.
    """
    _import(Settings(), path)


def _import(settings: Settings, path: Path, runs: QuestionRuns | None = None) -> None:
    """Import `path`, running what must run in `runs`' sandbox (default: one of its own)."""
    database = Database(settings.resolved_database_url)
    try:
        with _question_runs(settings, runs) as runs, database.session() as session:
            report = import_bank(session, path, runs=runs, on_commit=_audit_import(path))
    except BankError as exc:
        raise _fail(exc.errors) from None
    finally:
        database.dispose()
    typer.echo(f"Imported {path}: {report.summary()}.")


@cli.command("export-questions")
def export_questions(
    path: Annotated[Path, typer.Argument(help="Folder to write the questions/ layout into.")],
    pattern: Annotated[str | None, typer.Option(help="Only this pattern's slug.")] = None,
) -> None:
    """Write the current version of every live question to YAML files."""
    database = Database(Settings().resolved_database_url)
    try:
        with database.session() as session:
            count = export_bank(session, path, slug=pattern)
    finally:
        database.dispose()
    typer.echo(f"Exported {count} question(s) to {path}.")


@cli.command("create-user")
def create_user(
    email: Annotated[str, typer.Option(help="The account's email address.")],
    role: Annotated[str, typer.Option(help="learner, instructor or admin.")] = accounts.INSTRUCTOR,
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            help="Asked for when not given (never put it in shell history on a shared machine).",
        ),
    ] = "",
) -> None:
    """Create an account with a role: the first instructor or admin comes from here; after
    that, admins grant roles in the browser (/admin/users)."""
    database = Database(Settings().resolved_database_url)
    try:
        with database.session() as session:
            user = accounts.create_user(session, email=email, password=password, role=role)
    except Invalid as exc:
        raise _fail([f"{exc.field}: {exc.message}"]) from None
    finally:
        database.dispose()
    typer.echo(f"Created {user.email} ({user.role}).")


@cli.command("export-schema")
def export_schema(
    path: Annotated[Path, typer.Argument(help="Where to write it.")] = SCHEMA_PATH,
) -> None:
    """Write the JSON Schema of question files (for editors)."""
    path.write_text(json.dumps(schema.json_schema(), indent=2, ensure_ascii=False) + "\n")
    typer.echo(f"Wrote {path}.")


sandbox_cli = typer.Typer(help="The sandboxed PyTorch runner.", no_args_is_help=True)
cli.add_typer(sandbox_cli, name="sandbox")


@sandbox_cli.command("run")
def sandbox_run(
    file: Annotated[Path, typer.Argument(help="A Python file to run in the sandbox.")],
    expression: Annotated[
        str | None, typer.Option(help="An expression to evaluate after the code.")
    ] = None,
    timeout: Annotated[float | None, typer.Option(help="Wall-clock limit, seconds.")] = None,
) -> None:
    """Run a file in the sandbox and print the run as JSON (status, stdout, stderr, value,
    trace, warnings, duration_ms)."""
    settings = Settings()
    sandbox = sandbox_from_settings(settings)
    sandbox.start()
    try:
        job = Job(
            code=file.read_text(encoding="utf-8"),
            expression=expression,
            timeout_s=timeout or settings.sandbox_timeout_s,
        )
        result = sandbox.run(job)
    finally:
        sandbox.close()
    typer.echo(json.dumps(result.to_json(), indent=2))
