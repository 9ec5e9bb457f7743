"""The question bank in the database: import with versions, export back to files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.bank.files import (
    PATTERN_FILE,
    BankError,
    PatternSource,
    QuestionSource,
    dump_yaml,
    is_pattern_folder,
    text_hash,
    write_bank,
)
from app.bank.schema import (
    PATTERN_ADAPTER,
    QUESTION_ADAPTER,
    PatternFile,
    Question,
    content_hash,
)
from app.bank.service import CURRENT_VERSION
from app.models import Pattern, QuestionVersion, utcnow
from app.models import Question as QuestionRow


@dataclass
class ImportReport:
    """What an import changed, by question id."""

    patterns_created: list[str] = field(default_factory=list)
    patterns_updated: list[str] = field(default_factory=list)
    patterns_retired: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    new_versions: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    # made in the browser, in a pattern whose folder left questions/: hidden with it
    orphaned: list[str] = field(default_factory=list)
    # a file changed over a version saved in the browser: the file won (both are versions)
    overrode: list[str] = field(default_factory=list)
    kept_retired: list[str] = field(default_factory=list)  # retired in the browser; stays so

    @property
    def changed(self) -> bool:
        """Whether the import wrote anything."""
        return any(
            (
                self.patterns_created,
                self.patterns_updated,
                self.patterns_retired,
                self.created,
                self.new_versions,
                self.retired,
                self.restored,
            )
        )

    def summary(self) -> str:
        """One line for the command line."""
        return (
            f"{len(self.created)} new, {len(self.new_versions)} new versions, "
            f"{len(self.unchanged)} unchanged, {len(self.retired)} retired, "
            f"{len(self.restored)} restored; patterns: {len(self.patterns_created)} new, "
            f"{len(self.patterns_updated)} updated, {len(self.patterns_retired)} retired"
            + "".join(
                f"; {label}: {', '.join(ids)}"
                for label, ids in (
                    ("the file won over a browser edit", self.overrode),
                    ("still retired (bring back in the browser)", self.kept_retired),
                    ("hidden with their pattern's folder", self.orphaned),
                )
                if ids
            )
        )

    def changes(self) -> dict[str, list[str]]:
        """What changed, by kind, for the audit log (unchanged questions left out)."""
        return {name: ids for name, ids in vars(self).items() if ids and name != "unchanged"}


FILES, UPLOAD = "file", "upload"  # where an import comes from (QuestionVersion.source)
RETIRED_BY_FILE, RETIRED_BY_BROWSER = "file", "browser"  # Question.retired_by


def apply_import(
    session: Session,
    sources: list[PatternSource],
    *,
    root: Path,
    source: str = FILES,
    author_id: int | None = None,
) -> ImportReport:
    """Bring the database in line with validated (and verified) files read from `root` —
    inside the caller's write transaction.

    From `questions/` (source `file`), the files lead: a question whose file changed since
    the last import gets a new version, and file-made questions whose file is gone are
    retired (hidden from learners, history kept); a question whose file did not change is
    left as the editor last saved it. An `upload` only adds and updates, never retires.
    """
    report = ImportReport()
    importer = _Importer(session, report, source=source, author_id=author_id)
    for position, pattern_source in enumerate(sources):
        importer.pattern(pattern_source, position)
    if source == FILES and not is_pattern_folder(root):
        # a whole bank: file-made patterns no longer in it are retired
        _retire_missing_patterns(session, {p.slug for p in sources}, report)
    return report


def current_hashes(session: Session, ids: list[str]) -> dict[str, str]:
    """The content hash of each question's current version, by id (for those that exist)."""
    rows = session.execute(
        select(QuestionRow.id, QuestionVersion.content_hash)
        .join(QuestionVersion, CURRENT_VERSION)
        .where(QuestionRow.id.in_(ids))
    )
    return {question_id: digest for question_id, digest in rows}


def check_upload(session: Session, sources: list[PatternSource]) -> None:
    """An upload may add questions, and update a question only of the same kind in the same
    pattern: an id that clashes with another question is an error, not an overwrite."""
    ids = [q.question.id for p in sources for q in p.questions]
    current = {
        qid: (slug, kind)
        for qid, slug, kind in session.execute(
            select(QuestionRow.id, Pattern.slug, QuestionVersion.kind)
            .join(Pattern, Pattern.id == QuestionRow.pattern_id)
            .join(QuestionVersion, CURRENT_VERSION)
            .where(QuestionRow.id.in_(ids))
        )
    }
    errors = []
    for pattern in sources:
        for source in pattern.questions:
            found = current.get(source.question.id)
            if found is not None and found != (pattern.slug, source.question.kind):
                errors.append(
                    f"{source.path}: id: {source.question.id!r} is already a {found[1]} "
                    f"question of pattern {found[0]!r}; an upload updates only a question of "
                    "the same kind in the same pattern — give this one another id"
                )
    if errors:
        raise BankError(errors)


def _retire_missing_patterns(session: Session, present: set[str], report: ImportReport) -> None:
    now = utcnow()
    query = select(Pattern).where(Pattern.retired_at.is_(None), Pattern.file_hash.is_not(None))
    for pattern in session.scalars(query):
        if pattern.slug in present:
            continue
        pattern.retired_at = now
        pattern.file_hash = None  # its folder is gone: when it comes back, it is restored
        report.patterns_retired.append(pattern.slug)
        for row in pattern.questions:
            if row.file_hash is None:
                if row.retired_at is None:  # made in the browser: hidden with its pattern
                    report.orphaned.append(row.id)
                continue
            row.file_hash = None
            if row.retired_at is None:
                row.retired_at, row.retired_by = now, RETIRED_BY_FILE
                report.retired.append(row.id)


class _Importer:
    """Brings patterns and questions in line with validated files, within one transaction."""

    def __init__(
        self, session: Session, report: ImportReport, *, source: str, author_id: int | None
    ) -> None:
        self.session = session
        self.report = report
        self.source = source
        self.author_id = author_id
        self.from_files = source == FILES

    def pattern(self, source: PatternSource, position: int) -> None:
        """Create or update a pattern and its questions."""
        session, report = self.session, self.report
        pattern = session.scalar(select(Pattern).where(Pattern.slug == source.slug))
        digest = content_hash(source.pattern)
        file_hash = text_hash(source.text)
        if pattern is None:
            pattern = Pattern(slug=source.slug, position=position, content_hash="")
            session.add(pattern)
            report.patterns_created.append(source.slug)
        file_changed = not self.from_files or pattern.file_hash != file_hash
        if file_changed and pattern.content_hash != digest:
            if pattern.content_hash:
                report.patterns_updated.append(source.slug)
            pattern.content = source.pattern.model_dump(mode="json")
            pattern.content_hash = digest
            pattern.updated_at = utcnow()
            pattern.source_text = source.text or None
        if self.from_files:
            pattern.file_hash = file_hash
            if pattern.content_hash == digest:
                pattern.source_text = source.text or None
        pattern.retired_at = None
        session.flush()

        seen: set[str] = set()
        next_position = (
            session.scalar(
                select(func.max(QuestionRow.position)).where(QuestionRow.pattern_id == pattern.id)
            )
            or 0
        )
        for position_in_pattern, question_source in enumerate(source.questions):
            seen.add(question_source.question.id)
            if not self.from_files:  # an upload keeps the order; new questions go last
                next_position += 1
                position_in_pattern = next_position
            self.question(pattern, question_source, position_in_pattern, source.path)
        if self.from_files:
            query = select(QuestionRow).where(
                QuestionRow.pattern_id == pattern.id, QuestionRow.file_hash.is_not(None)
            )
            for row in session.scalars(query):
                if row.id not in seen:
                    row.file_hash = None
                    if row.retired_at is None:  # when its file comes back, it is restored
                        row.retired_at, row.retired_by = utcnow(), RETIRED_BY_FILE
                        report.retired.append(row.id)

    def question(
        self, pattern: Pattern, source: QuestionSource, position: int, folder: Path
    ) -> None:
        """Create a question, or give it a new version if its file says something new."""
        session, report = self.session, self.report
        question = source.question
        file_hash = source.file_hash if self.from_files else None
        file_name = source.path.relative_to(folder).as_posix() if self.from_files else None
        row = session.get(QuestionRow, question.id)
        if row is None:
            row = QuestionRow(
                id=question.id,
                pattern_id=pattern.id,
                position=position,
                current_version=0,
                file_hash=file_hash,
                file_name=file_name,
            )
            session.add(row)
            self._version(row, source)
            report.created.append(question.id)
            return
        if self.from_files:
            row.pattern_id = pattern.id
            row.position = position
            row.file_name = file_name
            if row.file_hash == file_hash:
                # The file did not change since it was last imported: what the editor saved
                # since (a new version, retiring the question) stands.
                report.unchanged.append(question.id)
                return
            current = session.get(QuestionVersion, (row.id, row.current_version))
            edited_here = current is not None and current.source != FILES
            row.file_hash = file_hash
        else:
            edited_here = False
        # Only what the files retired comes back with a file; an instructor's retirement stays.
        retired_here = row.retired_at is not None and row.retired_by != RETIRED_BY_FILE
        if self._version(row, source):
            report.new_versions.append(question.id)
            if edited_here:
                report.overrode.append(question.id)
        else:
            report.unchanged.append(question.id)
        if row.retired_at is not None and retired_here:
            report.kept_retired.append(question.id)  # an instructor retired it: it stays so
        elif row.retired_at is not None:
            row.retired_at, row.retired_by = None, None
            report.restored.append(question.id)

    def _version(self, row: QuestionRow, source: QuestionSource) -> QuestionVersion | None:
        return add_version(
            self.session,
            row,
            source.question,
            source=self.source,
            author_id=self.author_id,
            source_text=source.text or None,
        )


def add_version(
    session: Session,
    row: QuestionRow,
    question: Question,
    *,
    source: str,
    author_id: int | None,
    source_text: str | None = None,
) -> QuestionVersion | None:
    """Make `question` the current version of `row`, unless that is what it already says
    (then None); `source_text` is the YAML as written, if it came as YAML. Part of the
    caller's write transaction."""
    digest = content_hash(question)
    if row.current_version:
        current = session.get(QuestionVersion, (row.id, row.current_version))
        if current is not None and current.content_hash == digest:
            if source_text is not None:  # the same question; its comments or layout changed
                current.source_text = source_text
            return None
    row.current_version += 1
    version = QuestionVersion(
        question_id=question.id,
        version=row.current_version,
        kind=question.kind,
        difficulty=question.difficulty.value,
        content=question.model_dump(mode="json"),
        content_hash=digest,
        source=source,
        author_id=author_id,
        source_text=source_text,
    )
    session.add(version)
    return version


def export_bank(session: Session, root: Path, *, slug: str | None = None) -> int:
    """Write the current version of every live question (of one pattern, if given) to `root`
    in the questions/ layout: each as its author wrote it (comments and layout kept) where
    it came as YAML, under the file name it was imported from. Exported over `questions/`,
    files nobody changed come back byte for byte."""
    query = (
        select(Pattern).where(Pattern.retired_at.is_(None)).order_by(Pattern.position, Pattern.slug)
    )
    if slug is not None:
        query = query.where(Pattern.slug == slug)
    files: list[tuple[PurePosixPath, str]] = []
    for pattern in session.scalars(query):
        folder = PurePosixPath(pattern.slug)
        files.append(
            (folder / PATTERN_FILE, pattern.source_text or dump_yaml(pattern_file(pattern)))
        )
        used = {PATTERN_FILE}
        for row in pattern.questions:
            version = session.get(QuestionVersion, (row.id, row.current_version))
            if row.retired_at is not None or version is None:
                continue
            text = version.source_text or dump_yaml(
                QUESTION_ADAPTER.validate_python(version.content)
            )
            files.append((folder / _free_name(row, used), text))
    return write_bank(root, files)


def _free_name(row: QuestionRow, used: set[str]) -> str:
    """The file name a question is exported under: the one it came from, else its id — never
    one another question of the folder already has (a browser-made `purpose` must not
    overwrite the file that holds `lr-purpose`)."""
    candidates = [row.file_name, f"{row.id}.yaml"] if row.file_name else [f"{row.id}.yaml"]
    candidates += [f"{row.id}-{n}.yaml" for n in range(2, 100)]
    name = next(c for c in candidates if c is not None and c.lower() not in used)
    used.add(name.lower())
    return name


def pattern_file(pattern: Pattern) -> PatternFile:
    """The validated pattern file stored for a pattern row."""
    return PATTERN_ADAPTER.validate_python(pattern.content)
