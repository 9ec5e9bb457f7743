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

from sqlalchemy.orm import Session

from app import audit
from app.authoring import interchange, uploads
from app.authoring.importing import import_bank
from app.bank import service as bank
from app.bank.files import PATTERN_FILE, BankError, dump_yaml
from app.bank.schema import MAX_ID_LENGTH, ChoiceQuestion
from app.bank.store import UPLOAD, ImportReport, export_bank, pattern_file
from app.checking.runs import Runs
from app.models import Pattern
from app.models import Question as QuestionRow
from app.wording import plural

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
    runs: Runs,
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
                    detail=report.changes(),
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
    """Write the upload's question files under `root` in the questions/ layout."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise uploads.UploadError(
            [f"{filename}: the upload is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB"]
        )
    if filename.lower().endswith(GIFT_SUFFIXES):
        _unpack_gift(session, filename, data, pattern_slug, root)
        return
    files = uploads.read_upload(filename, data)
    loose = [file for file in files if len(file.path.parts) == 1]
    filed = [file for file in files if len(file.path.parts) > 1]
    uploads.write_upload(filed, root)
    if loose:
        pattern = _chosen_pattern(session, filename, pattern_slug)
        folder = _new_folder(filename, root, pattern.slug)
        uploads.write_upload(loose, folder)
        if not any(file.path.name == PATTERN_FILE for file in loose):
            _write_pattern_file(pattern, folder)


def _unpack_gift(
    session: Session, filename: str, data: bytes, pattern_slug: str | None, root: Path
) -> None:
    """GIFT questions as YAML files of the chosen pattern. Their ids come from titles or
    prompts, not from us: GIFT only ever adds, and an id already taken gets a fresh one
    (two Moodle quizzes both have a "Q1"). Updates go through YAML."""
    pattern = _chosen_pattern(session, filename, pattern_slug)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise uploads.UploadError([f"{filename}: is not UTF-8 text"]) from None
    questions = interchange.from_gift(text)
    if len(questions) > uploads.MAX_FILES:
        raise uploads.UploadError(
            [f"{filename}: has {len(questions)} questions; upload at most {uploads.MAX_FILES}"]
        )
    folder = _new_folder(filename, root, pattern.slug)
    _write_pattern_file(pattern, folder)
    taken = {question.id for question in questions}
    for question in questions:
        if session.get(QuestionRow, question.id) is not None:
            fresh = _free_id(session, question.id, taken)
            taken.add(fresh)
            question = question.model_copy(update={"id": fresh})
        (folder / f"{question.id}.yaml").write_text(dump_yaml(question), encoding="utf-8")


def _free_id(session: Session, question_id: str, taken: set[str]) -> str:
    for n in range(2, 10_000):
        suffix = f"-{n}"
        candidate = question_id[: MAX_ID_LENGTH - len(suffix)] + suffix
        if candidate not in taken and session.get(QuestionRow, candidate) is None:
            return candidate
    raise uploads.UploadError([f"{question_id}: no free id left for it"])


def _chosen_pattern(session: Session, filename: str, slug: str | None) -> Pattern:
    """The live pattern loose questions go into (never a path: it is looked up)."""
    if not slug:
        raise uploads.UploadError(
            [f"{filename}: these questions are not in a pattern folder: choose their pattern"]
        )
    pattern = bank.live_pattern_row(session, slug)
    if pattern is None:
        raise uploads.UploadError([f"{filename}: there is no pattern {slug!r}"])
    return pattern


def _new_folder(filename: str, root: Path, slug: str) -> Path:
    folder = root / slug
    if folder.exists():
        raise uploads.UploadError(
            [f"{filename}: has a folder {slug}/ and loose files for the same pattern"]
        )
    folder.mkdir()
    return folder


def _write_pattern_file(pattern: Pattern, folder: Path) -> None:
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
            f"// Left out: {plural(skipped, 'output or code question')} "
            "(their keys come from running code, which GIFT cannot express)\n"
        )
    return header + "\n" + interchange.to_gift(_choice_questions(session, pattern))


def export_moodle_xml(session: Session, *, pattern: bank.PatternView) -> str:
    """A pattern's live choice questions as Moodle XML, in a category named after it."""
    return interchange.to_moodle_xml(
        _choice_questions(session, pattern), category=pattern.file.title
    )
