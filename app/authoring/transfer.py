"""Questions in and out of the database as files: uploads (YAML, a zip in the questions/
layout, GIFT) and exports (a zip of YAML, GIFT, Moodle XML).

An upload goes through exactly the import that `questions/` goes through — schema, runs,
keys — in one transaction: all of it is imported, or nothing. Unlike `questions/`, an upload
only adds and updates; it never retires what it does not mention.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit
from app.authoring import interchange, uploads
from app.bank import service as bank
from app.bank.files import PATTERN_FILE, BankError, dump_yaml
from app.bank.schema import ChoiceQuestion
from app.bank.store import UPLOAD, ImportReport, export_bank, import_bank, pattern_file
from app.models import Pattern
from app.runs import QuestionRuns

MAX_UPLOAD_BYTES = uploads.MAX_UPLOAD_BYTES
GIFT_SUFFIXES = (".gift", ".txt")


@dataclass
class ImportResult:
    """What an upload did, or every reason it was refused (`path: field: what is wrong`)."""

    filename: str
    report: ImportReport | None = None
    errors: list[str] = field(default_factory=list)


def run_import(
    session: Session,
    *,
    filename: str,
    data: bytes,
    pattern_slug: str | None,
    runs: QuestionRuns,
    author_id: int,
) -> ImportResult:
    """Import an uploaded file, all or nothing. Loose question files (a single YAML file, a
    zip's top-level files, GIFT) go into `pattern_slug`. Commits on success."""
    result = ImportResult(filename=filename)
    with tempfile.TemporaryDirectory(prefix="tracewise-upload-") as folder:
        root = Path(folder)
        try:
            _unpack(session, filename, data, pattern_slug, root)
            result.report = import_bank(
                session,
                root,
                runs=runs,
                source=UPLOAD,
                author_id=author_id,
                on_commit=lambda s, report: audit.record(
                    s,
                    actor_id=author_id,
                    action="questions.import",
                    subject=filename,
                    detail={"summary": report.summary()},
                ),
            )
        except (uploads.UploadError, BankError) as exc:
            session.rollback()
            result.errors = [
                line.replace(f"{root}/", "").replace(str(root), filename) for line in exc.errors
            ]
    return result


def _unpack(
    session: Session, filename: str, data: bytes, pattern_slug: str | None, root: Path
) -> None:
    if filename.lower().endswith(GIFT_SUFFIXES):
        folder = _pattern_folder(session, filename, pattern_slug, root, with_file=True)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise uploads.UploadError([f"{filename}: is not UTF-8 text"]) from None
        for question in interchange.from_gift(text):
            (folder / f"{question.id}.yaml").write_text(dump_yaml(question), encoding="utf-8")
        return
    files = uploads.read_upload(filename, data)
    loose = [file for file in files if len(file.path.parts) == 1]
    filed = [file for file in files if len(file.path.parts) > 1]
    uploads.write_upload(filed, root)
    if loose:
        has_pattern_file = any(file.path.name == PATTERN_FILE for file in loose)
        folder = _pattern_folder(session, filename, pattern_slug, root, with_file=False)
        uploads.write_upload(loose, folder)
        if not has_pattern_file:
            _write_pattern_file(session, filename, pattern_slug, folder)


def _pattern_folder(
    session: Session, filename: str, slug: str | None, root: Path, *, with_file: bool
) -> Path:
    """The folder loose question files go into; with the pattern's stored pattern.yaml
    when the upload brings none."""
    if not slug:
        raise uploads.UploadError(
            [f"{filename}: these questions are not in a pattern folder: choose their pattern"]
        )
    folder = root / slug
    if folder.exists():
        raise uploads.UploadError(
            [f"{filename}: has a folder {slug}/ and loose files for the same pattern"]
        )
    folder.mkdir()
    if with_file:
        _write_pattern_file(session, filename, slug, folder)
    return folder


def _write_pattern_file(session: Session, filename: str, slug: str | None, folder: Path) -> None:
    pattern = session.scalar(
        select(Pattern).where(Pattern.slug == slug, Pattern.retired_at.is_(None))
    )
    if pattern is None:
        raise uploads.UploadError(
            [f"{filename}: there is no pattern {slug!r}; upload its {PATTERN_FILE} too"]
        )
    (folder / PATTERN_FILE).write_text(dump_yaml(pattern_file(pattern)), encoding="utf-8")


def export_zip(session: Session, *, slug: str | None = None) -> bytes:
    """The live bank (or one pattern) as a zip in the questions/ layout, as an upload or
    `import-questions` takes it back."""
    if slug is not None:
        bank.get_pattern_or_raise(session, slug)  # NotFound, rather than an empty zip
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="tracewise-export-") as folder:
        root = Path(folder)
        export_bank(session, root, slug=slug)
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(root.rglob("*.yaml")):
                archive.write(path, path.relative_to(root).as_posix())
    return buffer.getvalue()


def _choice_questions(session: Session, pattern: bank.PatternView) -> list[ChoiceQuestion]:
    return [
        live.question
        for live in bank.list_questions(session, pattern)
        if isinstance(live.question, ChoiceQuestion)
    ]


def _skipped_note(session: Session, pattern: bank.PatternView) -> int:
    return sum(
        not isinstance(live.question, ChoiceQuestion)
        for live in bank.list_questions(session, pattern)
    )


def export_gift(session: Session, *, pattern: bank.PatternView) -> str:
    """A pattern's live choice questions in GIFT (the format holds no code-running kinds:
    a comment says how many were left out)."""
    skipped = _skipped_note(session, pattern)
    header = f"// {pattern.file.title}: exported from Tracewise\n"
    if skipped:
        header += (
            f"// {skipped} output and code question(s) left out: their keys come from "
            "running code, which GIFT cannot express\n"
        )
    return header + "\n" + interchange.to_gift(_choice_questions(session, pattern))


def export_moodle_xml(session: Session, *, pattern: bank.PatternView) -> str:
    """A pattern's live choice questions as Moodle XML, in a category named after it."""
    return interchange.to_moodle_xml(
        _choice_questions(session, pattern), category=pattern.file.title
    )
